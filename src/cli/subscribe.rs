//! `megatorrent subscribe` (follow a channel with a session) and `megatorrent ls` (list a
//! channel's current version).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use megatorrent::dht::TransportFetcher;
use megatorrent::node::Progress;
use megatorrent::session::{
    entry_path, ChannelRef, Session, SessionConfig, SessionError, SessionEvent,
    SubscriptionSettings,
};

use super::dht::StopSignals;
use super::download::{all_loopback, dht_client, runtime, LOOPBACK_TIMEOUT};
use super::keys::ReadKeyArgs;
use super::progress::ProgressView;

/// Follow a channel: sync its current version into a folder, then every new one; seed what
/// is held. Runs until SIGINT/SIGTERM.
#[derive(Args)]
pub struct SubscribeArgs {
    /// The channel: 64-hex public key or `megatorrent://<pubkey>[:<readkey>][?salt=<text>]`.
    #[arg(value_name = "CHANNEL")]
    channel: String,
    /// Folder the channel's files go to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// State folder (subscription, sync state, blob store); resumed after a restart.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// DHT nodes to bootstrap from (repeatable).
    #[arg(long, value_name = "HOST:PORT", required = true, num_args = 1..)]
    bootstrap: Vec<String>,
    /// Address the blob server listens on (seeding); default any port.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    #[command(flatten)]
    read_key: ReadKeyArgs,
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    salt: Option<String>,
    /// Seconds between two polls of the DHT.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    interval: Option<u64>,
    /// Download rate limit in bytes per second (default unlimited).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    download_rate: Option<u64>,
}

/// List a channel's current version: its sequence and every file's path and size.
#[derive(Args)]
pub struct LsArgs {
    /// The channel: 64-hex public key or `megatorrent://<pubkey>[:<readkey>][?salt=<text>]`.
    #[arg(value_name = "CHANNEL")]
    channel: String,
    /// DHT nodes to bootstrap from (repeatable).
    #[arg(long, value_name = "HOST:PORT", required = true, num_args = 1..)]
    bootstrap: Vec<String>,
    #[command(flatten)]
    read_key: ReadKeyArgs,
    /// Sub-channel name.
    #[arg(long, value_name = "TEXT")]
    salt: Option<String>,
    /// One JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// The channel of the CHANNEL argument with `--read-key` and `--salt` applied (each may be
/// given once, in the link or as an option).
fn channel_of(
    text: &str,
    read_key: &ReadKeyArgs,
    salt: Option<&str>,
) -> anyhow::Result<ChannelRef> {
    let mut channel: ChannelRef = text.parse().context("bad CHANNEL")?;
    if let Some(k) = read_key.get()? {
        if channel.read_key.is_some() {
            bail!("the read key is given twice (in the link and as --read-key)");
        }
        channel.read_key = Some(k);
    }
    if let Some(s) = salt {
        if !channel.salt.is_empty() && channel.salt != s {
            bail!("the sub-channel is given twice (salt in the link and --salt differ)");
        }
        channel.salt = s.to_owned();
    }
    Ok(channel)
}

/// Session settings for a CLI process: loopback-only when every bootstrap node is.
pub fn session_config(
    state: PathBuf,
    bootstrap: &[String],
    listen: Option<&str>,
) -> anyhow::Result<SessionConfig> {
    let loopback = all_loopback(bootstrap)?;
    let host = if loopback {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let listen: SocketAddr = match listen {
        Some(l) => l
            .to_socket_addrs()
            .with_context(|| format!("bad --listen {l:?} (expected HOST:PORT)"))?
            .next()
            .with_context(|| format!("--listen {l:?} resolves to nothing"))?,
        None => SocketAddr::from((host, 0)),
    };
    let mut config = SessionConfig::new(state)
        .bootstrap(bootstrap.to_vec())
        .listen(listen)
        .dht(host.into(), 0);
    if loopback {
        config = config.dht_request_timeout(LOOPBACK_TIMEOUT);
    }
    Ok(config)
}

/// Run `subscribe`: prints `listening ADDR`, then `synced seq N` each time version N is
/// complete on disk; details and problems go to stderr.
pub fn run_subscribe(args: SubscribeArgs) -> anyhow::Result<ExitCode> {
    let channel = channel_of(&args.channel, &args.read_key, args.salt.as_deref())?;
    let mut config = session_config(args.state.clone(), &args.bootstrap, args.listen.as_deref())?;
    if let Some(i) = args.interval {
        config = config.default_poll_interval(Duration::from_secs(i));
    }
    config = config.download_rate_limit(args.download_rate);
    runtime()?.block_on(async {
        let mut stop = StopSignals::new()?;
        let session = Session::start(config)
            .await
            .context("cannot start the session")?;
        let mut events = session.events();
        let settings = SubscriptionSettings::new(&args.out)
            .poll_interval(args.interval.map(Duration::from_secs));
        match session.subscribe(channel.clone(), settings).await {
            Ok(()) => {}
            // Resumed from --state.
            Err(SessionError::AlreadySubscribed(_)) => {
                if let Some(s) = session
                    .subscriptions()
                    .into_iter()
                    .find(|s| s.public_key == channel.public_key && s.salt == channel.salt)
                {
                    if s.save_path != args.out {
                        eprintln!(
                            "warning: resuming the subscription in --state, which saves into {}",
                            s.save_path.display()
                        );
                    }
                }
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot subscribe")),
        }
        let mut stdout = std::io::stdout();
        if let Some(addr) = session.listen_addr() {
            writeln!(stdout, "listening {addr}")?;
            stdout.flush()?;
        }
        // The download of each version of this channel (a resumed --state may hold others).
        let view = ProgressView::new(false);
        let ours = |c: &ChannelRef| c.public_key == channel.public_key && c.salt == channel.salt;
        let outcome = loop {
            tokio::select! {
                _ = stop.wait() => break Ok(()),
                event = events.recv() => match event {
                    Ok(e) => {
                        if let Err(e) = report(&e, &view, ours) {
                            break Err(e);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        view.line(format!("warning: {n} event(s) not shown (output too slow)"));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break Ok(()),
                },
            }
        };
        view.finish();
        session.shutdown().await;
        outcome.map(|()| ExitCode::SUCCESS)
    })
}

/// Show `event`: lines on stderr (above the bar), `synced seq N` on stdout, the bar (or a
/// plain line every 10 %) while a version of the channel `ours` accepts downloads.
fn report(
    event: &SessionEvent,
    view: &ProgressView,
    ours: impl Fn(&ChannelRef) -> bool,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    match event {
        SessionEvent::NewVersion { sequence, .. } => view.line(format!("found seq {sequence}")),
        // A sync that failed and starts again counts from 0 again.
        SessionEvent::SyncStarted { channel, .. } if ours(channel) => view.finish(),
        SessionEvent::Progress {
            channel,
            bytes_done,
            bytes_total,
            blobs_done,
            blobs_total,
            peers,
            ..
        } if ours(channel) => view.update(&Progress {
            bytes_done: *bytes_done,
            bytes_total: *bytes_total,
            blobs_done: *blobs_done,
            blobs_total: *blobs_total,
            peers_in_use: *peers,
        }),
        SessionEvent::Synced {
            channel,
            sequence,
            blobs_fetched,
            blobs_present,
            files_unchanged,
        } => {
            if ours(channel) {
                // Cleared before stdout is written: the bar is drawn on the same terminal.
                view.finish();
            }
            view.line(format!(
                "seq {sequence}: {blobs_fetched} blob(s) fetched, {blobs_present} already here, {files_unchanged} file(s) unchanged"
            ));
            writeln!(stdout, "synced seq {sequence}")?;
            stdout.flush()?;
        }
        SessionEvent::FileCompleted { path, .. } => view.line(format!("wrote {path}")),
        SessionEvent::LocalChangeKept { path, .. } => view.line(format!(
            "kept local change: {path} (the channel's version was not written)"
        )),
        SessionEvent::Error {
            channel, message, ..
        } => {
            if channel.as_ref().is_some_and(&ours) {
                // The sync stopped; it is tried again later.
                view.finish();
            }
            view.line(format!("warning: {message} (retrying)"));
        }
        _ => {}
    }
    Ok(())
}

/// Run `ls`.
pub fn run_ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let channel = channel_of(&args.channel, &args.read_key, args.salt.as_deref())?;
    runtime()?.block_on(async {
        let dht = dht_client(&args.bootstrap)?.with_part_fetcher(Arc::new(TransportFetcher::default()));
        let manifest = dht
            .get_manifest(&channel.public_key, channel.salt.as_bytes())
            .await
            .context("cannot get the channel's manifest")?;
        let content = match manifest.content() {
            Some(c) => c.clone(),
            None => {
                let key = channel
                    .read_key
                    .as_ref()
                    .context("the channel is private: its read key is needed (--read-key)")?;
                manifest
                    .decrypt(key)
                    .context("the read key does not open this private manifest")?
            }
        };
        let files: Vec<(String, u64)> = content
            .collections
            .iter()
            .flat_map(|c| c.items.iter())
            .map(|e| (entry_path(e), e.size))
            .collect();
        let mut stdout = std::io::stdout();
        if args.json {
            let value = serde_json::json!({
                "sequence": manifest.sequence(),
                "files": files.iter().map(|(p, s)| serde_json::json!({"path": p, "size": s})).collect::<Vec<_>>(),
            });
            writeln!(stdout, "{value}")?;
        } else {
            writeln!(stdout, "sequence {}", manifest.sequence())?;
            for (path, size) in files {
                writeln!(stdout, "{size}\t{path}")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
