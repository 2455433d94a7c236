//! `megatorrent download`: fetch a channel's files through the DHT and its peers.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use megatorrent::blob::BlobStore;
use megatorrent::dht::{DhtClient, DhtConfig, TransportFetcher};
use megatorrent::manifest::ReadKey;
use megatorrent::node::{DownloadOptions, Downloader};

use serde_json::json;

use super::interrupt::interrupted;
use super::json::{self, JsonFlag};
use super::keys::{parse_pubkey, ReadKeyArgs};
use super::progress::ProgressView;

/// Download every file of a channel into a folder; exit 0 once all are complete and verified.
#[derive(Args)]
pub struct DownloadArgs {
    /// The channel's public key (64 hex).
    #[arg(value_name = "PUBKEY", value_parser = parse_pubkey)]
    pubkey: [u8; 32],
    /// Folder the files are written to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Blob store folder (created if missing); blobs already there are not fetched again.
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
    /// Replace existing files whose content differs (by default such a file is kept and
    /// the download fails, naming it; a file with the same content is fine).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    channel: ChannelArgs,
    #[command(flatten)]
    json: JsonFlag,
}

/// The options `download` and `publish` share, in this order at the end of both: the DHT
/// nodes to start from and which channel (sub-channel, read key). `publish` words the
/// `--read-key` help for its side with `mut_arg`.
#[derive(Args)]
pub struct ChannelArgs {
    /// DHT nodes to bootstrap from (repeatable).
    #[arg(long, value_name = "HOST:PORT", required = true, num_args = 1..)]
    pub bootstrap: Vec<String>,
    #[command(flatten)]
    pub read_key: ReadKeyArgs,
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    pub salt: Option<String>,
}

impl ChannelArgs {
    /// The read key (`--read-key`, `--read-key-file` or `MEGATORRENT_READ_KEY`), if given.
    pub fn read_key(&self) -> anyhow::Result<Option<ReadKey>> {
        self.read_key.get()
    }

    /// The `--salt` bytes (empty: the main channel).
    pub fn salt(&self) -> &[u8] {
        self.salt.as_deref().unwrap_or_default().as_bytes()
    }

    /// A client-mode DHT node on the `--bootstrap` nodes: see [`dht_client`].
    pub fn dht_client(&self) -> anyhow::Result<DhtClient> {
        dht_client(&self.bootstrap)
    }
}

/// A client-mode DHT node, never on the default port, bound to loopback when every bootstrap
/// node is on loopback (so local networks stay local).
pub fn dht_client(bootstrap: &[String]) -> anyhow::Result<DhtClient> {
    let loopback = all_loopback(bootstrap)?;
    let mut config = client_config(bootstrap, loopback);
    if loopback {
        config.request_timeout = LOOPBACK_TIMEOUT;
    }
    Ok(DhtClient::start(&config)?)
}

/// Loopback nodes answer at once; a lost packet should not cost the default 2 s.
pub const LOOPBACK_TIMEOUT: Duration = Duration::from_millis(500);

/// True when every bootstrap node resolves to a loopback address (checks the HOST:PORT form).
pub fn all_loopback(bootstrap: &[String]) -> anyhow::Result<bool> {
    let mut loopback = true;
    for b in bootstrap {
        let addr = b
            .to_socket_addrs()
            .with_context(|| format!("bad bootstrap address {b:?} (expected HOST:PORT)"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{b:?} has no IPv4 address (the DHT is IPv4)"))?;
        loopback &= addr.ip().is_loopback();
    }
    Ok(loopback)
}

/// The configuration of a client-mode node on `bootstrap`: never the default port (0 = any),
/// and bound to loopback when `loopback` (every bootstrap node is on loopback).
pub fn client_config(bootstrap: &[String], loopback: bool) -> DhtConfig {
    DhtConfig::default()
        .bootstrap(bootstrap.to_vec())
        .bind_address(if loopback {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::UNSPECIFIED
        })
        .port(0)
}

/// The multi-threaded runtime the long-running commands use.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Find the manifest, download, print each file written and a summary. SIGINT stops it
/// with exit status 130: the temporary files go, the verified blobs stay in the store for
/// the next run.
pub fn run(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let key = args.channel.read_key()?;
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    let as_json = args.json.json;
    runtime()?.block_on(async {
        let work = async {
            let dht = args
                .channel
                .dht_client()?
                .with_part_fetcher(Arc::new(TransportFetcher::default()));
            let manifest = dht
                .get_manifest(&args.pubkey, args.channel.salt())
                .await
                .context("cannot get the channel's manifest")?;
            if as_json {
                json::event(
                    "manifest",
                    json!({
                        "public_key": hex::encode(args.pubkey),
                        "sequence": manifest.sequence(),
                        "private": manifest.is_private(),
                    }),
                )?;
            } else {
                eprintln!(
                    "manifest: sequence {}{}",
                    manifest.sequence(),
                    if manifest.is_private() {
                        " (private)"
                    } else {
                        ""
                    }
                );
            }
            let view = ProgressView::new(as_json);
            let opts = DownloadOptions::default().overwrite(args.overwrite);
            let downloader =
                Downloader::new(store.clone(), Some(dht), opts).with_events(view.event_fn());
            let outcome = downloader
                .download(&manifest, key.as_ref(), &args.out)
                .await;
            view.finish();
            anyhow::Ok(outcome.context("download failed")?)
        };
        let report = tokio::select! {
            r = work => r?,
            // Dropping the download removes its temporary files; its blobs are verified.
            _ = tokio::signal::ctrl_c() => {
                return Ok(interrupted());
            }
        };
        let secs = report.fetch_time.as_secs_f64();
        let rate = (secs > 0.0 && report.blobs_fetched > 0).then(|| {
            report.blobs_fetched as f64 * megatorrent::manifest::BLOB_LEN as f64 / secs
        });
        if as_json {
            json::event(
                "done",
                json!({
                    "files": report.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                    "bytes": report.bytes_total,
                    "blobs_fetched": report.blobs_fetched,
                    "blobs_present": report.blobs_present,
                    "peers_used": report.peers_used.len(),
                    "dht_lookups": report.dht_lookups,
                    "bytes_per_second": rate,
                }),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        for f in &report.files {
            println!("{}", f.display());
        }
        eprintln!(
            "done: {} file(s), {} bytes; {} blob(s) fetched, {} already here; {} peer(s) used; {} DHT lookup(s){}",
            report.files.len(),
            report.bytes_total,
            report.blobs_fetched,
            report.blobs_present,
            report.peers_used.len(),
            report.dht_lookups,
            match rate {
                Some(r) => format!("; {:.1} MiB/s", r / (1 << 20) as f64),
                None => String::new(),
            }
        );
        Ok(ExitCode::SUCCESS)
    })
}
