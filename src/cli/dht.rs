//! `megatorrent dht ...`: run a DHT node, publish and read manifests, announce and find blobs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{DhtClient, DhtConfig, DhtError, PartsTarget, PutOptions, TransportFetcher};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::SignedManifest;

use serde_json::json;

use super::download::client_config;
use super::json::{self, JsonFlag};
use super::keys::{parse_pubkey, ReadKeyArgs};

/// DHT commands (PROTOCOL.md section 4).
#[derive(Subcommand)]
pub enum DhtCommand {
    /// Run a DHT node in server mode (for local networks) until SIGINT/SIGTERM.
    Node(NodeArgs),
    /// Publish a signed manifest file as a BEP 44 record.
    Put(PutArgs),
    /// Print the most recent verified manifest of a channel.
    Get(GetArgs),
    /// Announce that this host serves a blob on a TCP port.
    Announce(AnnounceArgs),
    /// Print the peers that announced a blob, one ip:port per line.
    Peers(PeersArgs),
}

/// Arguments of `dht node`.
#[derive(Args)]
pub struct NodeArgs {
    /// UDP address to listen on (IPv4 HOST:PORT; port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    listen: String,
    /// Nodes to bootstrap from (none: this node starts a new network).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
}

/// Bootstrap nodes of a client command.
#[derive(Args)]
pub struct Bootstrap {
    /// DHT nodes to bootstrap from (repeat the option for several: the arguments may follow).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    bootstrap: Vec<String>,
}

/// Arguments of `dht put`.
#[derive(Args)]
pub struct PutArgs {
    /// The signed manifest (JSON) to publish.
    #[arg(value_name = "MANIFEST_FILE")]
    manifest: PathBuf,
    /// Identity file of the channel (must be the manifest's signer).
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    salt: Option<String>,
    #[command(flatten)]
    bootstrap: Bootstrap,
    /// Blob folder (served by `serve`) where the parts of a large manifest are stored.
    #[arg(long, value_name = "DIR", requires = "port")]
    blobs: Option<PathBuf>,
    /// TCP port of the server that serves `--blobs`, announced for each part.
    #[arg(long, value_name = "PORT", requires = "blobs")]
    port: Option<u16>,
}

/// Arguments of `dht get`.
#[derive(Args)]
pub struct GetArgs {
    /// The channel's public key (64 hex).
    #[arg(value_name = "PUBKEY", value_parser = parse_pubkey)]
    pubkey: [u8; 32],
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    salt: Option<String>,
    /// With a read key of a private channel: print the decrypted content.
    #[command(flatten)]
    read_key: ReadKeyArgs,
    #[command(flatten)]
    bootstrap: Bootstrap,
    #[command(flatten)]
    json: JsonFlag,
}

/// Arguments of `dht announce`.
#[derive(Args)]
pub struct AnnounceArgs {
    /// Blob id (64 hex).
    #[arg(value_name = "BLOBID")]
    blob: String,
    /// TCP port of the server holding it.
    #[arg(value_name = "PORT")]
    port: u16,
    #[command(flatten)]
    bootstrap: Bootstrap,
}

/// Arguments of `dht peers`.
#[derive(Args)]
pub struct PeersArgs {
    /// Blob id (64 hex).
    #[arg(value_name = "BLOBID")]
    blob: String,
    #[command(flatten)]
    bootstrap: Bootstrap,
    #[command(flatten)]
    json: JsonFlag,
}

/// Run a `dht` subcommand.
pub fn run(cmd: DhtCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cmd {
            DhtCommand::Node(a) => node(a).await,
            DhtCommand::Put(a) => put(a).await,
            DhtCommand::Get(a) => get(a).await,
            DhtCommand::Announce(a) => announce(a).await,
            DhtCommand::Peers(a) => peers(a).await,
        }
    })
}

fn parse_v4(text: &str) -> anyhow::Result<std::net::SocketAddrV4> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .with_context(|| format!("bad address {text:?} (expected HOST:PORT)"))?
        .collect();
    addrs
        .into_iter()
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .with_context(|| format!("{text:?} has no IPv4 address (the DHT is IPv4)"))
}

/// A client node: never the default port (0 = any), and on loopback when every bootstrap node
/// is on loopback, so that local networks stay local.
fn client(bootstrap: &Bootstrap) -> anyhow::Result<DhtClient> {
    let mut loopback = true;
    for b in &bootstrap.bootstrap {
        loopback &= parse_v4(b)?.ip().is_loopback();
    }
    let cfg = client_config(&bootstrap.bootstrap, loopback);
    Ok(DhtClient::start(&cfg)?)
}

async fn node(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let listen = parse_v4(&args.listen)?;
    for b in &args.bootstrap {
        parse_v4(b)?;
    }
    let cfg = DhtConfig::default()
        .bootstrap(args.bootstrap.clone())
        .bind_address(*listen.ip())
        .port(listen.port())
        .server_mode(true);
    let dht = DhtClient::start(&cfg)?;
    // Watched before the first line: a script may answer it with a signal.
    let mut stop = StopSignals::new()?;
    println!("dht listening {}", dht.local_addr().await);
    if !args.bootstrap.is_empty() {
        // A node whose bootstrap nodes are all unreachable still serves whoever contacts it.
        let (dht, bootstrap) = (dht.clone(), args.bootstrap.join(", "));
        tokio::spawn(async move {
            if !dht.bootstrapped().await {
                eprintln!("warning: no DHT node answered at {bootstrap}; waiting to be contacted");
            }
        });
    }
    stop.wait().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM, watched from creation on.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Start watching both.
    pub fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Until the next of them arrives.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

async fn put(args: PutArgs) -> anyhow::Result<ExitCode> {
    let identity = Identity::load(&args.identity).context("cannot read the identity")?;
    let bytes = std::fs::read(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let manifest = SignedManifest::verify(&bytes)
        .with_context(|| format!("{} is not a valid manifest", args.manifest.display()))?;
    let store = match &args.blobs {
        Some(dir) => Some(BlobStore::open(dir)?),
        None => None,
    };
    let salt = args.salt.unwrap_or_default();
    let opts = PutOptions::default().salt(salt.as_bytes()).parts(
        store
            .as_ref()
            .zip(args.port)
            .map(|(store, port)| PartsTarget::new(store, port)),
    );
    let dht = client(&args.bootstrap)?;
    let report = match dht.put_manifest(&identity, &manifest, &opts).await {
        Err(e @ DhtError::NeedsParts { .. }) => {
            bail!("{e}: pass --blobs DIR (the folder a `megatorrent serve` serves) and --port PORT (its port)")
        }
        other => other.context("publish failed")?,
    };
    let form = if report.parts.is_empty() {
        "inline".to_string()
    } else {
        format!("pointer to {} parts", report.parts.len())
    };
    println!(
        "published sequence {} ({form}) at target {} on {} nodes",
        manifest.sequence(),
        hex::encode(report.target),
        report.stored_at
    );
    Ok(ExitCode::SUCCESS)
}

async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let key = args.pubkey;
    let read_key = args.read_key.get()?;
    let salt = args.salt.unwrap_or_default();
    // Parts of a pointer record come from the peers that announced them.
    let dht = client(&args.bootstrap)?
        .with_part_fetcher(std::sync::Arc::new(TransportFetcher::default()));
    let manifest = dht
        .get_manifest(&key, salt.as_bytes())
        .await
        .context("cannot get the channel's manifest")?;
    let text = match &read_key {
        Some(key) => manifest
            .decrypted_json(key)
            .context("cannot decrypt the manifest with this read key")?
            .to_string(),
        None => manifest.as_str().to_owned(),
    };
    if args.json.json {
        // The manifest (or its decrypted content) as a JSON value, not a string in a string.
        let value: serde_json::Value =
            serde_json::from_str(&text).context("the manifest is not JSON")?;
        json::emit(&json!({
            "public_key": hex::encode(key),
            "salt": salt,
            "sequence": manifest.sequence(),
            "private": manifest.is_private(),
            "decrypted": read_key.is_some(),
            "manifest": value,
        }))?;
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn announce(args: AnnounceArgs) -> anyhow::Result<ExitCode> {
    let blob = BlobId::from_hex(&args.blob).context("bad BLOBID")?;
    let dht = client(&args.bootstrap)?;
    dht.announce_blob(&blob, args.port).await?;
    println!("announced {blob} on port {}", args.port);
    Ok(ExitCode::SUCCESS)
}

async fn peers(args: PeersArgs) -> anyhow::Result<ExitCode> {
    let blob = BlobId::from_hex(&args.blob).context("bad BLOBID")?;
    let dht = client(&args.bootstrap)?;
    let peers = dht.find_blob_peers(&blob).await;
    if peers.is_empty() && dht.known_nodes().await == 0 {
        bail!(
            "no DHT node answered at {}",
            args.bootstrap.bootstrap.join(", ")
        );
    }
    if args.json.json {
        for peer in &peers {
            json::event("peer", json!({ "peer": peer.to_string() }))?;
        }
        json::event(
            "done",
            json!({ "blob": blob.to_hex(), "peers": peers.len() }),
        )?;
    } else {
        for peer in peers {
            println!("{peer}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
