//! `megatorrent publish`: publish files and folders to a channel (incrementally) and keep
//! serving them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use megatorrent::identity::Identity;
use megatorrent::session::{PublishSettings, Session};

use super::download::{runtime, ChannelArgs};
use super::subscribe::session_config;

/// The state folder inside the blob folder when `--state` is not given (the blob server
/// serves only names that are blob ids, so it is never served).
const DEFAULT_STATE: &str = ".megatorrent-state";

/// Publish files to the channel of an identity, then serve and re-announce them until
/// SIGINT/SIGTERM.
#[derive(Args)]
// The shared `--read-key` help speaks of reading; here the key is what the manifest is
// encrypted for.
#[command(mut_arg("read_key", |a| {
    a.help("Publish a private manifest readable with this key (64 hex)")
}))]
pub struct PublishArgs {
    /// Files and folders to publish (a file under its name; a folder's files under their path
    /// inside it).
    #[arg(value_name = "PATH", required = true)]
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
    /// State folder: last sequence and file index of the channel, so publishing again
    /// re-uses unchanged files. Default: `.megatorrent-state` inside --blobs.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    #[command(flatten)]
    channel: ChannelArgs,
}

/// Publish, print `public key ...`, `listening ...` and
/// `published seq N (K of M files unchanged)`, then serve.
pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let identity = Arc::new(Identity::load(&args.identity).context("cannot read the identity")?);
    let key = args.channel.read_key()?;
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| args.blobs.join(DEFAULT_STATE));
    let config = session_config(state, &args.channel.bootstrap, Some(&args.listen))?
        .blob_dir(&args.blobs)
        // Peers that ask for binding learn that this server is the channel's owner.
        .server_identity(Some(identity.clone()));
    let mut stdout = std::io::stdout();
    writeln!(stdout, "public key {}", identity.public_key_hex())?;
    stdout.flush()?;
    runtime()?.block_on(async {
        // Watch the signals from the start, so that a stop during publishing also exits 0.
        let mut stop = StopSignals::new()?;
        let session = tokio::select! {
            r = Session::start(config) => r.context("cannot start the session")?,
            _ = stop.wait() => return Ok(ExitCode::SUCCESS),
        };
        let settings = PublishSettings::new()
            .salt(args.channel.salt.clone().unwrap_or_default())
            .read_key(key)
            .identity_file(Some(args.identity.clone()));
        let outcome = tokio::select! {
            r = session.publish(&identity, &args.files, settings) => r,
            _ = stop.wait() => {
                session.shutdown().await;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                session.shutdown().await;
                return Err(anyhow::Error::new(e).context("publish failed"));
            }
        };
        let mut stdout = std::io::stdout();
        if let Some(addr) = session.listen_addr() {
            writeln!(stdout, "listening {addr}")?;
        }
        writeln!(
            stdout,
            "published seq {} ({} of {} files unchanged)",
            outcome.sequence, outcome.files_unchanged, outcome.files_total
        )?;
        stdout.flush()?;
        stop.wait().await;
        session.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGINT and SIGTERM.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Watch both (inside a runtime).
    pub fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// The next of either.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
