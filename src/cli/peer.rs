//! `megatorrent serve` and `megatorrent fetch`: the blob server and fetcher from the shell.

use anyhow::Context;
use clap::Args;
use megatorrent::blob::BlobStore;
use megatorrent::error::chain;
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::node::{Seeding, SeedingOptions};
use megatorrent::peer::{BlobFetcher, BlobServer, FetcherOptions, PeerError, ServerConfig};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Serve the blobs of a folder to v5 peers until SIGINT or SIGTERM.
#[derive(Args)]
pub struct ServeArgs {
    /// Blob store folder (created if missing).
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed).
    #[arg(long, value_name = "HOST:PORT")]
    listen: String,
    /// Identity file with which to answer identity-binding requests.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// DHT nodes to bootstrap from (repeatable). With them the server runs a DHT node: it
    /// relays PUBLISH and answers KRPC ping in DHT_QUERY.
    #[arg(long, value_name = "HOST:PORT", num_args = 1..)]
    bootstrap: Vec<String>,
    /// Announce every blob of the store in the DHT (BEP 5) at the server's port, and again
    /// every 15 minutes, so downloaders find this server; prints `announced N blob(s)`.
    #[arg(long, requires = "bootstrap")]
    announce: bool,
}

/// Fetch blobs from one peer into a folder, verifying each against its id.
#[derive(Args)]
pub struct FetchArgs {
    /// The peer to fetch from.
    #[arg(value_name = "HOST:PORT")]
    peer: String,
    /// Blob ids (64 lowercase hex characters each).
    #[arg(value_name = "BLOBID", required = true, value_parser = parse_blob_id)]
    ids: Vec<BlobId>,
    /// Blob store folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
    /// Require the peer to prove this identity (Ed25519 public key, hex).
    #[arg(long, value_name = "PUBKEY", value_parser = parse_pubkey)]
    expect_identity: Option<[u8; 32]>,
}

fn parse_blob_id(s: &str) -> Result<BlobId, String> {
    BlobId::from_hex(s).map_err(|e| format!("invalid blob id: {e}"))
}

fn parse_pubkey(s: &str) -> Result<[u8; 32], String> {
    super::keys::parse_pubkey(s)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Run the server until SIGINT/SIGTERM.
pub fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    let identity = match &args.identity {
        Some(path) => Some(Arc::new(
            Identity::load(path).context("cannot read the identity")?,
        )),
        None => None,
    };
    runtime()?.block_on(async {
        let config = ServerConfig::default().identity(identity);
        let server = BlobServer::bind(args.listen.as_str(), store.clone(), config).await?;
        let handle = server.spawn()?;
        // Watched before the first line: a script may answer it with a signal.
        let mut stop = super::dht::StopSignals::new()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening {}", handle.local_addr())?;
        stdout.flush()?;
        if args.bootstrap.is_empty() {
            stop.wait().await;
            handle.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }
        let dht = super::download::dht_client(&args.bootstrap)?;
        let id = dht.node_id().await;
        let dht_addr = dht.local_addr().await;
        // Attached before the line is out: whoever reads it may query at once.
        handle.set_gateway(Some(Arc::new(dht.clone())));
        writeln!(stdout, "dht listening {dht_addr} id {}", hex::encode(id))?;
        stdout.flush()?;
        if !args.announce {
            stop.wait().await;
            handle.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }
        let ids = store.list().context("cannot list the blob store")?;
        let count = ids.len();
        let opts = SeedingOptions::default();
        let seeding = tokio::select! {
            r = Seeding::start_on(handle, ids, dht, &opts) => {
                r.context("cannot announce the blobs")?
            }
            _ = stop.wait() => return Ok(ExitCode::SUCCESS),
        };
        writeln!(stdout, "announced {count} blob(s)")?;
        stdout.flush()?;
        stop.wait().await;
        seeding.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Fetch every id; fail (exit 1) naming each blob that could not be fetched.
pub fn run_fetch(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    let mut opts = FetcherOptions::default();
    opts.connect.expect_identity = args.expect_identity;
    runtime()?.block_on(async {
        let mut fetcher = BlobFetcher::connect(args.peer.as_str(), &opts)
            .await
            .with_context(|| format!("cannot connect to {}", args.peer))?;
        let results = fetcher.fetch_into(&store, &args.ids).await;
        fetcher.close().await;
        let failures: Vec<String> = args
            .ids
            .iter()
            .zip(&results)
            .filter_map(|(id, r)| {
                r.as_ref().err().map(|e| match e {
                    // These already name the blob.
                    PeerError::NotFound(_) | PeerError::HashMismatch { .. } => chain(e),
                    _ => format!("blob {id}: {}", chain(e)),
                })
            })
            .collect();
        if failures.is_empty() {
            println!(
                "fetched {} blob(s) into {}",
                args.ids.len(),
                args.blobs.display()
            );
            Ok(ExitCode::SUCCESS)
        } else {
            anyhow::bail!(
                "{} of {} blob(s) not fetched: {}",
                failures.len(),
                args.ids.len(),
                failures.join("; ")
            )
        }
    })
}
