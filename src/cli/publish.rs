//! `megatorrent publish`: publish files to a channel and keep serving them.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use megatorrent::blob::BlobStore;
use megatorrent::identity::Identity;
use megatorrent::node::{publish_files, PublishOptions, SeedingOptions};
use megatorrent::peer::ServerConfig;

use super::download::{runtime, ChannelArgs};

/// Publish files to the channel of an identity, then serve and re-announce them until
/// SIGINT/SIGTERM.
#[derive(Args)]
// The shared `--read-key` help speaks of reading; here the key is what the manifest is
// encrypted for.
#[command(mut_arg("read_key", |a| {
    a.help("Publish a private manifest readable with this key (64 hex)")
}))]
pub struct PublishArgs {
    /// Files to publish (their names are what downloaders get).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Identity file of the channel (see `megatorrent keygen`).
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// Blob store folder (created if missing).
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
    /// Address the blob server listens on; port 0 picks a free port (printed).
    #[arg(long, value_name = "HOST:PORT")]
    listen: String,
    #[command(flatten)]
    channel: ChannelArgs,
}

/// Publish, print `public key ...`, `listening ...` and `published seq N`, then serve.
pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let identity = Arc::new(Identity::load(&args.identity).context("cannot read the identity")?);
    let key = args.channel.read_key()?;
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("bad --listen {:?} (expected HOST:PORT)", args.listen))?
        .next()
        .with_context(|| format!("--listen {:?} resolves to nothing", args.listen))?;
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "public key {}", identity.public_key_hex())?;
    stdout.flush()?;
    runtime()?.block_on(async {
        // Watch the signals from the start, so that a stop during publishing also exits 0.
        let mut stop = StopSignals::new()?;
        let dht = args.channel.dht_client()?;
        let opts = PublishOptions::default()
            .salt(args.channel.salt().to_vec())
            .read_key(key)
            .seeding(SeedingOptions::default().server(
                // Peers that ask for binding learn that this server is the channel's owner.
                ServerConfig::default().identity(Some(identity.clone())),
            ));
        let published = tokio::select! {
            r = publish_files(&identity, &args.files, &store, &dht, listen, &opts) => {
                r.context("publish failed")?
            }
            _ = stop.wait() => return Ok(ExitCode::SUCCESS),
        };
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening {}", published.local_addr())?;
        writeln!(stdout, "published seq {}", published.sequence())?;
        stdout.flush()?;
        stop.wait().await;
        published.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGINT and SIGTERM.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
