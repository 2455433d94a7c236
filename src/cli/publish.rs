//! `megatorrent publish`: publish files to a channel and keep serving them.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use megatorrent::blob::{ingest_reader, BlobStore};
use megatorrent::identity::Identity;
use megatorrent::manifest::FileEntry;
use megatorrent::node::{publish_entries, PublishOptions, SeedingOptions};
use megatorrent::peer::ServerConfig;
use serde_json::json;

use super::download::{runtime, ChannelArgs};
use super::interrupt::{interrupted, WatchedReader};
use super::json::{self, JsonFlag};
use super::progress::ByteProgress;

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
    #[command(flatten)]
    json: JsonFlag,
}

/// Publish, print `public key ...`, `listening ...` and `published seq N`, then serve.
///
/// Everything that can be checked before the (long) ingest is checked first: the identity,
/// the files, the listen address. SIGINT or SIGTERM before `published seq` exits 130 (the
/// blobs ingested so far are removed again: their keys were never published); after it, the
/// publisher stops serving and exits 0.
pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let identity = Arc::new(Identity::load(&args.identity).context("cannot read the identity")?);
    let key = args.channel.read_key()?;
    let mut total = 0u64;
    let mut names: Vec<&str> = Vec::new();
    for path in &args.files {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", path.display());
        }
        let name = file_name(path)?;
        if names.contains(&name) {
            bail!("two files are named {name:?}: downloaders could not tell them apart");
        }
        names.push(name);
        total += meta.len();
    }
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("bad --listen {:?} (expected HOST:PORT)", args.listen))?
        .next()
        .with_context(|| format!("--listen {:?} resolves to nothing", args.listen))?;
    // Bind once now, so that a port in use is said before minutes of ingesting. Released
    // at once; the blob server binds it again (a fixed port stays free in between unless
    // another program takes it in that instant).
    drop(
        std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?,
    );
    let store = BlobStore::open(&args.blobs).context("cannot open the blob store")?;
    let as_json = args.json.json;
    runtime()?.block_on(async {
        // Watch the signals from the start: the ingest polls `stop`, the rest waits on `rx`.
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let mut signals = StopSignals::new()?;
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
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                signals.wait().await;
                stop.store(true, Ordering::SeqCst);
                let _ = tx.send(true);
            });
        }

        let progress = ByteProgress::new("ingest", total, true, as_json);
        let mut entries: Vec<FileEntry> = Vec::with_capacity(args.files.len());
        for path in &args.files {
            let (task_store, task_stop, seen, path) =
                (store.clone(), stop.clone(), progress.clone(), path.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let name = file_name(&path)?;
                let reader = WatchedReader::new(file, task_stop, move |n| seen.inc(n));
                ingest_reader(reader, name, &task_store)
                    .with_context(|| format!("cannot ingest {}", path.display()))
            })
            .await
            .context("ingest task failed")?;
            match outcome {
                Ok(entry) => {
                    if as_json {
                        json::event(
                            "ingested",
                            json!({ "file": entry.name, "size": entry.size, "blobs": entry.chunks.len() }),
                        )?;
                    }
                    entries.push(entry);
                }
                // An interrupted ingest removed its own blobs; the earlier files' go too.
                Err(_) if stop.load(Ordering::SeqCst) => {
                    progress.finish();
                    remove_blobs(&store, &entries);
                    return Ok(interrupted());
                }
                Err(e) => {
                    progress.finish();
                    remove_blobs(&store, &entries);
                    return Err(e);
                }
            }
        }
        progress.finish();

        let blobs: usize = entries.iter().map(|e| e.chunks.len()).sum();
        let spinner = Spinner::new(
            &format!("announcing {blobs} blob(s) and putting the record"),
            as_json,
        );
        let dht = args.channel.dht_client()?;
        let opts = PublishOptions {
            salt: args.channel.salt().to_vec(),
            read_key: key,
            seeding: SeedingOptions {
                server: ServerConfig {
                    // Peers that ask for binding learn that this server is the channel's owner.
                    identity: Some(identity.clone()),
                    ..ServerConfig::default()
                },
                ..SeedingOptions::default()
            },
            ..PublishOptions::default()
        };
        let files = entries.len();
        let bytes: u64 = entries.iter().map(|e| e.size).sum();
        let published = tokio::select! {
            r = publish_entries(&identity, entries, &store, &dht, listen, &opts) => {
                spinner.finish();
                r.context("publish failed")?
            }
            // The blobs stay: the record may already be out, naming them.
            _ = rx.wait_for(|stopped| *stopped) => {
                spinner.finish();
                return Ok(interrupted());
            }
        };
        if as_json {
            json::event("listening", json!({ "addr": published.local_addr().to_string() }))?;
            json::event(
                "published",
                json!({
                    "public_key": identity.public_key_hex(),
                    "sequence": published.sequence(),
                    "files": files,
                    "bytes": bytes,
                    "blobs": published.blobs().len(),
                    "target": hex::encode(published.put_report().target),
                    "nodes": published.put_report().stored_at,
                }),
            )?;
        } else {
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening {}", published.local_addr())?;
            writeln!(stdout, "published seq {}", published.sequence())?;
            stdout.flush()?;
        }
        let _ = rx.wait_for(|stopped| *stopped).await;
        let (reputs, rounds) = (published.republished(), published.reannounced());
        published.shutdown().await;
        if as_json {
            json::event(
                "done",
                json!({ "sequence_republished": reputs, "reannounce_rounds": rounds }),
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The name a file is published under: its file name, which must be UTF-8.
fn file_name(path: &std::path::Path) -> anyhow::Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}

/// Remove the blobs of entries that will not be published (fresh keys: nothing else uses
/// them). Best effort: a blob that cannot be removed is only wasted space.
fn remove_blobs(store: &BlobStore, entries: &[FileEntry]) {
    for chunk in entries.iter().flat_map(|e| &e.chunks) {
        if let Err(e) = store.remove(&chunk.blob_id) {
            tracing::warn!("{}", megatorrent::error::ErrorChain(&e));
        }
    }
}

/// An elapsed-time spinner on a terminal for work whose length is not known.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new(message: &str, quiet: bool) -> Self {
        use std::io::IsTerminal;
        Self((!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            {
                bar.set_style(style);
            }
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        }))
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
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
