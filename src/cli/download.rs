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
use megatorrent::id::decode_hex_array;
use megatorrent::manifest::ReadKey;
use megatorrent::node::{DownloadOptions, Downloader};

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
    #[command(flatten)]
    channel: ChannelArgs,
}

/// The options `download` and `publish` share, in this order at the end of both: the DHT
/// nodes to start from and which channel (sub-channel, read key). `publish` words the
/// `--read-key` help for its side with `mut_arg`.
#[derive(Args)]
pub struct ChannelArgs {
    /// DHT nodes to bootstrap from (repeatable).
    #[arg(long, value_name = "HOST:PORT", required = true, num_args = 1..)]
    bootstrap: Vec<String>,
    /// Read key (64 hex) of a private channel.
    #[arg(long, value_name = "HEX")]
    read_key: Option<String>,
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    salt: Option<String>,
}

impl ChannelArgs {
    /// The parsed `--read-key`, if given.
    pub fn read_key(&self) -> anyhow::Result<Option<ReadKey>> {
        read_key(self.read_key.as_deref())
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

fn parse_pubkey(s: &str) -> Result<[u8; 32], String> {
    decode_hex_array::<32>(s).map_err(|e| format!("invalid public key: {e}"))
}

/// Parse a read key given on the command line.
pub fn read_key(text: Option<&str>) -> anyhow::Result<Option<ReadKey>> {
    text.map(|t| ReadKey::from_hex(t).context("bad --read-key"))
        .transpose()
}

/// A client-mode DHT node, never on the default port, bound to loopback when every bootstrap
/// node is on loopback (so local networks stay local).
pub fn dht_client(bootstrap: &[String]) -> anyhow::Result<DhtClient> {
    let mut loopback = true;
    for b in bootstrap {
        let addr = b
            .to_socket_addrs()
            .with_context(|| format!("bad bootstrap address {b:?} (expected HOST:PORT)"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{b:?} has no IPv4 address (the DHT is IPv4)"))?;
        loopback &= addr.ip().is_loopback();
    }
    let mut config = client_config(bootstrap, loopback);
    if loopback {
        // Loopback nodes answer at once; a lost packet should not cost the default 2 s.
        config.request_timeout = Duration::from_millis(500);
    }
    Ok(DhtClient::start(&config)?)
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

/// Find the manifest, download, print each file written and a summary.
pub fn run(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let key = args.channel.read_key()?;
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    runtime()?.block_on(async {
        let dht = args
            .channel
            .dht_client()?
            .with_part_fetcher(Arc::new(TransportFetcher::default()));
        let manifest = dht
            .get_manifest(&args.pubkey, args.channel.salt())
            .await
            .context("cannot get the channel's manifest")?;
        eprintln!(
            "manifest: sequence {}{}",
            manifest.sequence(),
            if manifest.is_private() {
                " (private)"
            } else {
                ""
            }
        );
        let view = ProgressView::new();
        let downloader = Downloader::new(store, Some(dht), DownloadOptions::default())
            .with_events(view.event_fn());
        let outcome = downloader
            .download(&manifest, key.as_ref(), &args.out)
            .await;
        view.finish();
        let report = outcome.context("download failed")?;
        for f in &report.files {
            println!("{}", f.display());
        }
        let secs = report.fetch_time.as_secs_f64();
        eprintln!(
            "done: {} file(s), {} bytes; {} blob(s) fetched, {} already here; {} peer(s) used{}",
            report.files.len(),
            report.bytes_total,
            report.blobs_fetched,
            report.blobs_present,
            report.peers_used.len(),
            if secs > 0.0 && report.blobs_fetched > 0 {
                let bytes = report.blobs_fetched as f64 * megatorrent::manifest::BLOB_LEN as f64;
                format!("; {:.1} MiB/s", bytes / secs / (1 << 20) as f64)
            } else {
                String::new()
            }
        );
        Ok(ExitCode::SUCCESS)
    })
}
