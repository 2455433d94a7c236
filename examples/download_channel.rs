//! Download the files of a channel from a local DHT testnet, e.g. the one the `publish_folder`
//! example runs (it prints this command line for you).
//!
//! ```text
//! cargo run --example download_channel -- PUBKEY --bootstrap HOST:PORT --out DIR
//!                                         [--salt TEXT] [--read-key-file FILE] [--blobs DIR]
//! ```
//!
//! It reads the newest verified manifest of the channel PUBKEY (64 hex) from the DHT (fetching
//! the parts of a manifest too large for one record from their peers), finds the peers of every
//! blob, fetches and verifies them, and writes the files into DIR, each atomically. A private
//! channel opens with the read key in FILE (64 hex; a key never goes on a command line). Blobs
//! are kept in a temporary store unless `--blobs` names one, where a second run finds them.
//! Only loopback bootstrap addresses are accepted: this example never joins the public DHT.

use anyhow::{bail, Context};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{DhtClient, DhtConfig, TransportFetcher};
use megatorrent::id::decode_hex_array;
use megatorrent::manifest::ReadKey;
use megatorrent::node::{DownloadOptions, Downloader};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Args {
    public_key: [u8; 32],
    bootstrap: Vec<String>,
    out: PathBuf,
    salt: String,
    read_key_file: Option<PathBuf>,
    blobs: Option<PathBuf>,
}

const USAGE: &str = "usage: download_channel PUBKEY --bootstrap HOST:PORT --out DIR \
                     [--salt TEXT] [--read-key-file FILE] [--blobs DIR]";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let (mut public_key, mut out) = (None, None);
    let mut parsed = Args {
        public_key: [0; 32],
        bootstrap: Vec::new(),
        out: PathBuf::new(),
        salt: String::new(),
        read_key_file: None,
        blobs: None,
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bootstrap" => parsed.bootstrap.push(value("--bootstrap")?),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--salt" => parsed.salt = value("--salt")?,
            "--read-key-file" => parsed.read_key_file = Some(value("--read-key-file")?.into()),
            "--blobs" => parsed.blobs = Some(value("--blobs")?.into()),
            _ if a.starts_with("--") => bail!("unknown option {a}\n{USAGE}"),
            _ if public_key.is_none() => {
                public_key = Some(
                    decode_hex_array::<32>(&a.to_ascii_lowercase())
                        .with_context(|| format!("{a:?} is not a public key (64 hex)"))?,
                )
            }
            _ => bail!("one PUBKEY only\n{USAGE}"),
        }
    }
    parsed.public_key = public_key.context(USAGE)?;
    parsed.out = out.context(USAGE)?;
    if parsed.bootstrap.is_empty() {
        bail!("at least one --bootstrap is needed\n{USAGE}");
    }
    Ok(parsed)
}

/// Refuse anything but loopback: the example is for local testnets only.
fn check_loopback(bootstrap: &[String]) -> anyhow::Result<()> {
    for b in bootstrap {
        let addrs: Vec<SocketAddr> = b
            .to_socket_addrs()
            .with_context(|| format!("bad bootstrap address {b:?} (expected HOST:PORT)"))?
            .collect();
        if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
            bail!("{b} is not a loopback address: this example only joins local testnets");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    check_loopback(&args.bootstrap)?;
    let read_key = match &args.read_key_file {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
            Some(ReadKey::from_hex(&text).with_context(|| format!("{}", path.display()))?)
        }
        None => None,
    };
    let temp = tempfile::tempdir()?;
    let store = BlobStore::open(match &args.blobs {
        Some(dir) => dir.clone(),
        None => temp.path().join("blobs"),
    })?;

    let mut config = DhtConfig::local(&args.bootstrap);
    // Loopback nodes answer at once: a lost packet should not cost the default 2 s.
    config.request_timeout = Duration::from_millis(500);
    let dht = DhtClient::start(&config)?.with_part_fetcher(Arc::new(TransportFetcher::default()));
    let manifest = dht
        .get_manifest(&args.public_key, args.salt.as_bytes())
        .await
        .context("cannot get the channel's manifest")?;
    println!(
        "manifest: sequence {}{}",
        manifest.sequence(),
        if manifest.is_private() {
            " (private)"
        } else {
            ""
        }
    );

    let downloader = Downloader::new(store, Some(dht), DownloadOptions::default());
    let report = downloader
        .download(&manifest, read_key.as_ref(), &args.out)
        .await
        .context("download failed")?;
    for f in &report.files {
        println!("{}", f.display());
    }
    println!(
        "done: {} file(s), {} bytes; {} blob(s) fetched, {} already here, from {} peer(s)",
        report.files.len(),
        report.bytes_total,
        report.blobs_fetched,
        report.blobs_present,
        report.peers_used.len()
    );
    Ok(())
}
