//! `megatorrent publish`: publish files and folders to a channel (incrementally) and keep
//! serving them.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use megatorrent::identity::Identity;
use megatorrent::session::{collect_files, PublishSettings, Session, SessionError};
use serde_json::json;

use super::dht::StopSignals;
use super::download::{runtime, ChannelArgs};
use super::interrupt::interrupted;
use super::json::{self, JsonFlag};
use super::progress::{ByteProgress, StageView};
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
    #[command(flatten)]
    json: JsonFlag,
}

/// Publish, print `public key ...`, `listening ...` and
/// `published seq N (K of M files unchanged)`, then serve.
///
/// Everything that can be checked before the (long) ingest is checked first: the identity,
/// the files, the listen address. SIGINT or SIGTERM before `published seq` exits 130 (the
/// blobs ingested so far are removed again: their keys were never published); after it, the
/// publisher stops serving and exits 0.
pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let identity = Arc::new(Identity::load(&args.identity).context("cannot read the identity")?);
    let key = args.channel.read_key()?;
    let sources = collect_files(&args.files)?;
    if sources.is_empty() {
        anyhow::bail!("nothing to publish: the folders hold no files");
    }
    let mut total = 0u64;
    for f in &sources {
        total += std::fs::metadata(&f.abs)
            .with_context(|| format!("cannot read {}", f.abs.display()))?
            .len();
    }
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("bad --listen {:?} (expected HOST:PORT)", args.listen))?
        .next()
        .with_context(|| format!("--listen {:?} resolves to nothing", args.listen))?;
    // Bind once now, so that a port in use is said before minutes of ingesting. Released at
    // once; the session binds it again (a fixed port stays free in between unless another
    // program takes it in that instant).
    drop(
        std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?,
    );
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| args.blobs.join(DEFAULT_STATE));
    let config = session_config(state, &args.channel.bootstrap, Some(&args.listen))?
        .blob_dir(&args.blobs)
        // Peers that ask for binding learn that this server is the channel's owner.
        .server_identity(Some(identity.clone()));
    let as_json = args.json.json;
    runtime()?.block_on(async {
        // Watch the signals from the start: a stop before `published seq` exits 130.
        let mut stop = StopSignals::new()?;
        // The first line comes once the signals are watched: scripts may answer it with one.
        if as_json {
            json::event(
                "public_key",
                json!({ "public_key": identity.public_key_hex() }),
            )?;
        } else {
            let mut stdout = std::io::stdout();
            writeln!(stdout, "public key {}", identity.public_key_hex())?;
            stdout.flush()?;
        }
        let session = tokio::select! {
            r = Session::start(config) => r.context("cannot start the session")?,
            _ = stop.wait() => return Ok(interrupted()),
        };
        let progress = ByteProgress::new("ingest", total, true, as_json);
        let seen = progress.clone();
        // After the ingest: the sequence lookup, the announces and the put (long on a slow DHT).
        let stages = StageView::new(as_json);
        let ingested = progress.clone();
        let settings = PublishSettings::new()
            .salt(args.channel.salt.clone().unwrap_or_default())
            .read_key(key)
            .identity_file(Some(args.identity.clone()))
            .progress(Some(Arc::new(move |n| seen.inc(n))))
            .stages(Some(stages.stage_fn(move || ingested.finish())));
        let outcome = tokio::select! {
            r = session.publish(&identity, &args.files, settings) => r,
            // Dropping the publish stops its ingest, which removes the blobs it stored.
            _ = stop.wait() => {
                progress.finish();
                stages.finish();
                session.shutdown().await;
                return Ok(interrupted());
            }
        };
        progress.finish();
        stages.finish();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                session.shutdown().await;
                return Err(publish_error(e));
            }
        };
        let addr = session
            .listen_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if as_json {
            json::event("listening", json!({ "addr": addr }))?;
            json::event(
                "published",
                json!({
                    "public_key": identity.public_key_hex(),
                    "sequence": outcome.sequence,
                    "files": outcome.files_total,
                    "files_unchanged": outcome.files_unchanged,
                    "bytes": total,
                    "blobs_new": outcome.blobs_new,
                }),
            )?;
        } else {
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening {addr}")?;
            writeln!(
                stdout,
                "published seq {} ({} of {} files unchanged)",
                outcome.sequence, outcome.files_unchanged, outcome.files_total
            )?;
            stdout.flush()?;
        }
        stop.wait().await;
        session.shutdown().await;
        if as_json {
            json::event("done", json!({ "sequence": outcome.sequence }))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The error of a failed publish, worded for the command line.
fn publish_error(e: SessionError) -> anyhow::Error {
    anyhow::Error::new(e).context("publish failed")
}
