//! The channels session ([`crate::session::Session`]) behind the Qt `Megatorrent::Session`.
//!
//! The session starts on the engine's runtime; commands from C++ return a request id at once and
//! run there (subscribe, unsubscribe and stop-publishing in the order they were given; each
//! publish on its own). Session events, preceded by fresh snapshots of the subscriptions,
//! published channels and status, reach C++ through the engine's event queue, so the Qt side
//! answers `subscriptions()` from its snapshot without ever waiting for the engine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use crate::identity::Identity;
use crate::manifest::ReadKey;
use crate::session::{
    ChannelRef, PublishSettings, Session, SessionConfig, SessionError, SessionEvent,
    SubscriptionSettings, SyncState,
};

use super::bridge::{
    ErrorKind, Event, FileStatusData, Operation, PublishedData, SessionSettingsData, StatusData,
    SubscriptionData, SyncStateData,
};
use super::engine::{Engine, Queue};
use super::FfiError;

/// How long dropping the engine lets the session persist its state and stop its tasks: most of
/// the second that destroying a Qt `Session` may take.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(700);
/// How often the subscriptions snapshot is refreshed while no event comes (rates fall to zero,
/// peers leave); C++ is woken only when it changed.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// How often the status snapshot (which lists the blob store) is refreshed at most.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// Where the session is.
#[derive(Clone)]
enum Phase {
    Starting,
    Running(Session),
    Failed(ErrorKind, String),
}

/// A command that runs in order with the others.
enum Command {
    Subscribe(u64, ChannelRef, SubscriptionSettings),
    Unsubscribe(u64, ChannelRef, bool),
    StopPublishing(u64, [u8; 32]),
}

struct Started {
    phase: watch::Receiver<Phase>,
    commands: mpsc::UnboundedSender<Command>,
}

/// The engine's session, once `session_start` was called.
#[derive(Default)]
pub(crate) struct SessionSlot(Mutex<Option<Started>>);

impl SessionSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Started>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The running session, if it started.
    pub(crate) fn running(&self) -> Option<Session> {
        match &*self.lock().as_ref()?.phase.borrow() {
            Phase::Running(session) => Some(session.clone()),
            Phase::Starting | Phase::Failed(..) => None,
        }
    }

    fn phase(&self) -> Result<watch::Receiver<Phase>, FfiError> {
        self.lock()
            .as_ref()
            .map(|s| s.phase.clone())
            .ok_or_else(not_started)
    }

    fn send(&self, command: Command) -> Result<(), FfiError> {
        self.lock()
            .as_ref()
            .ok_or_else(not_started)?
            .commands
            .send(command)
            .map_err(|_| FfiError::Runtime("the session has stopped".into()))
    }
}

fn not_started() -> FfiError {
    FfiError::InvalidArgument("the session is not started".into())
}

/// The session's configuration from C++ settings. Empty bootstrap: the public routers; the
/// listen address applies to the blob server and the DHT's UDP socket alike.
fn config_from(settings: &SessionSettingsData) -> Result<SessionConfig, FfiError> {
    if settings.state_folder.is_empty() {
        return Err(FfiError::InvalidArgument(
            "the state folder is empty".into(),
        ));
    }
    let address: IpAddr = if settings.listen_address.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        settings.listen_address.parse().map_err(|_| {
            FfiError::InvalidArgument(format!(
                "listen address {:?} is not an IP address",
                settings.listen_address
            ))
        })?
    };
    // The DHT is IPv4 (BEP 5): "all interfaces" in either family binds all IPv4 interfaces.
    let dht_bind = match address {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) if v6.is_unspecified() => Ipv4Addr::UNSPECIFIED,
        IpAddr::V6(_) => {
            return Err(FfiError::InvalidArgument(format!(
                "listen address {} is IPv6; the DHT needs an IPv4 address",
                settings.listen_address
            )))
        }
    };
    let bootstrap = if settings.bootstrap.is_empty() {
        crate::dht::DEFAULT_BOOTSTRAP
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        settings.bootstrap.clone()
    };
    let limit = |bytes: u64| (bytes > 0).then_some(bytes);
    Ok(SessionConfig::new(&settings.state_folder)
        .bootstrap(bootstrap)
        .listen(SocketAddr::new(address, settings.listen_port))
        .dht(IpAddr::V4(dht_bind), settings.dht_port)
        .download_rate_limit(limit(settings.download_rate_limit))
        .upload_rate_limit(limit(settings.upload_rate_limit)))
}

fn channel_from(text: &str) -> Result<ChannelRef, FfiError> {
    Ok(ChannelRef::from_str(text.trim()).map_err(SessionError::from)?)
}

fn read_key_from(bytes: &[u8]) -> Result<Option<ReadKey>, FfiError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| FfiError::InvalidArgument("read key must be 32 bytes".into()))?;
    Ok(Some(ReadKey::from_bytes(key)))
}

fn public_key_from(bytes: &[u8]) -> Result<[u8; 32], FfiError> {
    bytes.try_into().map_err(|_| {
        FfiError::InvalidArgument(format!(
            "public key must be 32 bytes, got {} bytes",
            bytes.len()
        ))
    })
}

/// A failed event of `operation` for a session error.
fn failed(operation: Operation, request: u64, subject: String, error: &SessionError) -> Event {
    Event::failed(operation, request, subject, error)
}

impl Engine {
    /// Starts the session; a `SessionStart` event follows (ports on success).
    pub(crate) fn session_start(&self, settings: &SessionSettingsData) -> Result<u64, FfiError> {
        self.report(Operation::SessionStart, || {
            let config = config_from(settings)?;
            let mut slot = self.session.lock();
            if slot.is_some() {
                return Err(FfiError::InvalidArgument(
                    "the session is already started".into(),
                ));
            }
            let (phase_tx, phase) = watch::channel(Phase::Starting);
            let (commands, command_rx) = mpsc::unbounded_channel();
            let queue = Arc::clone(&self.queue);
            let request =
                self.submit(
                    Operation::SessionStart,
                    String::new(),
                    move |request| async move {
                        start(config, request, phase_tx, command_rx, queue).await
                    },
                )?;
            *slot = Some(Started { phase, commands });
            Ok(request)
        })
    }

    /// Subscribes to `channel` (hex key or link); a `Subscribe` event reports the outcome.
    pub(crate) fn session_subscribe(
        &self,
        channel: &str,
        save_path: &str,
        label: &str,
        auto_download: bool,
    ) -> Result<u64, FfiError> {
        self.report(Operation::Subscribe, || {
            let channel = channel_from(channel)?;
            let settings = SubscriptionSettings::new(save_path)
                .label(label)
                .auto_download(auto_download);
            let request = self.next_request();
            self.session
                .send(Command::Subscribe(request, channel, settings))?;
            Ok(request)
        })
    }

    /// Unsubscribes from `channel`; an `Unsubscribe` event reports the outcome.
    pub(crate) fn session_unsubscribe(
        &self,
        channel: &str,
        delete_files: bool,
    ) -> Result<u64, FfiError> {
        self.report(Operation::Unsubscribe, || {
            let channel = channel_from(channel)?;
            let request = self.next_request();
            self.session
                .send(Command::Unsubscribe(request, channel, delete_files))?;
            Ok(request)
        })
    }

    /// Stops keeping `public_key`'s channels alive; a `StopPublishing` event reports it.
    pub(crate) fn session_stop_publishing(&self, public_key: &[u8]) -> Result<u64, FfiError> {
        self.report(Operation::StopPublishing, || {
            let key = public_key_from(public_key)?;
            let request = self.next_request();
            self.session.send(Command::StopPublishing(request, key))?;
            Ok(request)
        })
    }

    /// Publishes `paths` with the identity in `identity_file`; a `Publish` event reports the
    /// outcome (the session's `Published` event the new version).
    pub(crate) fn session_publish(
        &self,
        identity_file: &str,
        paths: Vec<String>,
        title: &str,
        salt: &str,
        read_key: &[u8],
    ) -> Result<u64, FfiError> {
        self.report(Operation::Publish, || {
            let mut phase = self.session.phase()?;
            let mut settings = PublishSettings::new()
                .salt(salt)
                .read_key(read_key_from(read_key)?)
                .identity_file(Some(PathBuf::from(identity_file)));
            if !title.is_empty() {
                settings = settings.title(title);
            }
            let identity_file = PathBuf::from(identity_file);
            let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
            self.submit(
                Operation::Publish,
                String::new(),
                move |request| async move {
                    let session = match running(&mut phase).await {
                        Ok(session) => session,
                        Err((kind, message)) => {
                            return start_failure(Operation::Publish, request, kind, message)
                        }
                    };
                    let loaded =
                        tokio::task::spawn_blocking(move || Identity::load(&identity_file)).await;
                    let identity = match loaded {
                        Ok(Ok(identity)) => identity,
                        Ok(Err(e)) => {
                            return Event::failed(
                                Operation::Publish,
                                request,
                                String::new(),
                                &FfiError::from(e),
                            )
                        }
                        Err(e) => {
                            return Event::failed(
                                Operation::Publish,
                                request,
                                String::new(),
                                &FfiError::Runtime(e.to_string()),
                            )
                        }
                    };
                    let subject = identity.public_key_hex();
                    match session.publish(&identity, &paths, settings).await {
                        Ok(outcome) => Event {
                            sequence: outcome.sequence,
                            ..Event::succeeded(Operation::Publish, request, subject)
                        },
                        Err(e) => failed(Operation::Publish, request, subject, &e),
                    }
                },
            )
        })
    }

    /// The files of a subscribed channel (empty while the session starts).
    pub(crate) fn session_channel_files(
        &self,
        channel: &str,
    ) -> Result<Vec<FileStatusData>, FfiError> {
        let channel = channel_from(channel)?;
        let Some(session) = self.session.running() else {
            return Ok(Vec::new());
        };
        let files = session.channel_files(&channel).map_err(FfiError::from)?;
        Ok(files
            .into_iter()
            .map(|f| FileStatusData {
                path: f.path,
                size: f.size,
                bytes_done: f.bytes_done,
            })
            .collect())
    }
}

/// A new identity file (mode 0600, never over an existing file); returns its public key.
pub(crate) fn identity_create(path: &str) -> Result<Vec<u8>, FfiError> {
    if path.is_empty() {
        return Err(FfiError::InvalidArgument(
            "the identity file name is empty".into(),
        ));
    }
    let identity = Identity::generate();
    identity.save(std::path::Path::new(path))?;
    Ok(identity.public_key_bytes().to_vec())
}

/// Waits until the session runs (or failed to start).
async fn running(phase: &mut watch::Receiver<Phase>) -> Result<Session, (ErrorKind, String)> {
    let current = phase
        .wait_for(|p| !matches!(p, Phase::Starting))
        .await
        .map(|p| p.clone());
    match current {
        Ok(Phase::Running(session)) => Ok(session),
        Ok(Phase::Failed(kind, message)) => Err((kind, message)),
        Ok(Phase::Starting) | Err(_) => {
            Err((ErrorKind::Internal, "the session has stopped".into()))
        }
    }
}

fn start_failure(operation: Operation, request: u64, kind: ErrorKind, message: String) -> Event {
    Event {
        kind,
        message,
        ok: false,
        ..Event::succeeded(operation, request, String::new())
    }
}

/// Starts the session, reports it, then runs the commands in order until the engine stops.
async fn start(
    config: SessionConfig,
    request: u64,
    phase: watch::Sender<Phase>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    queue: Queue,
) -> Event {
    let session = match Session::start(config).await {
        Ok(session) => session,
        Err(e) => {
            let event = failed(Operation::SessionStart, request, String::new(), &e);
            let (kind, message) = (event.kind, event.message.clone());
            phase.send_replace(Phase::Failed(kind, message.clone()));
            // Every command given meanwhile or later fails with the reason.
            tokio::spawn(async move {
                while let Some(command) = commands.recv().await {
                    let (operation, request) = command.identity();
                    queue.push(start_failure(operation, request, kind, message.clone()));
                }
            });
            return event;
        }
    };
    let status = session.status();
    let events = session.events();
    phase.send_replace(Phase::Running(session.clone()));
    tokio::spawn(forward(session.clone(), events, Arc::clone(&queue)));
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            queue.push(run(&session, command).await);
        }
    });
    Event {
        port: status.listen_port,
        dht_port: status.dht_port,
        ..Event::succeeded(Operation::SessionStart, request, String::new())
    }
}

impl Command {
    fn identity(&self) -> (Operation, u64) {
        match self {
            Self::Subscribe(request, ..) => (Operation::Subscribe, *request),
            Self::Unsubscribe(request, ..) => (Operation::Unsubscribe, *request),
            Self::StopPublishing(request, _) => (Operation::StopPublishing, *request),
        }
    }
}

async fn run(session: &Session, command: Command) -> Event {
    let (operation, request) = command.identity();
    let (subject, result) = match command {
        Command::Subscribe(_, channel, settings) => {
            let subject = channel.public_key_hex();
            (subject, session.subscribe(channel, settings).await)
        }
        Command::Unsubscribe(_, channel, delete_files) => {
            let subject = channel.public_key_hex();
            (subject, session.unsubscribe(&channel, delete_files).await)
        }
        Command::StopPublishing(_, key) => (hex::encode(key), session.stop_publishing(&key).await),
    };
    match result {
        Ok(()) => Event::succeeded(operation, request, subject),
        Err(e) => failed(operation, request, subject, &e),
    }
}

/// What C++ last received, so that unchanged snapshots are not sent again.
#[derive(Default)]
struct Sent {
    subscriptions: Option<Vec<SubscriptionData>>,
    published: Option<Vec<PublishedData>>,
    status: Option<StatusData>,
    status_at: Option<Instant>,
}

/// Forwards the session's events to the queue, each batch preceded by the snapshots that
/// changed, until the session stops.
async fn forward(session: Session, mut events: broadcast::Receiver<SessionEvent>, queue: Queue) {
    let mut sent = Sent::default();
    let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => batch.push(event),
                // Missed events: the snapshots below still bring C++ up to date.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {}
        }
        loop {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let status_now = batch.iter().any(|e| {
            matches!(
                e,
                SessionEvent::Synced { .. }
                    | SessionEvent::Published { .. }
                    | SessionEvent::SubscriptionsChanged
            )
        });
        snapshots(&session, &queue, &mut sent, status_now).await;
        for event in batch {
            if let Some(event) = event_from(event) {
                queue.push(event);
            }
        }
    }
}

async fn snapshots(session: &Session, queue: &Queue, sent: &mut Sent, status_now: bool) {
    let subscriptions: Vec<SubscriptionData> = session
        .subscriptions()
        .into_iter()
        .map(|s| SubscriptionData {
            public_key: s.public_key.to_vec(),
            salt: s.salt,
            label: s.label,
            save_path: s.save_path.to_string_lossy().into_owned(),
            last_sequence: s.last_sequence,
            state: sync_state(s.state),
            bytes_done: s.bytes_done,
            bytes_total: s.bytes_total,
            peers: u32::try_from(s.peers).unwrap_or(u32::MAX),
            download_rate: s.download_rate,
            error: s.error.unwrap_or_default(),
        })
        .collect();
    if sent.subscriptions.as_ref() != Some(&subscriptions) {
        queue.push(Event {
            subscriptions: subscriptions.clone(),
            ..Event::succeeded(Operation::SubscriptionsSnapshot, 0, String::new())
        });
        sent.subscriptions = Some(subscriptions);
    }
    let published: Vec<PublishedData> = session
        .published()
        .into_iter()
        .map(|p| PublishedData {
            public_key: p.public_key.to_vec(),
            salt: p.salt,
            title: p.title,
            sequence: p.sequence,
            files: u64::try_from(p.files).unwrap_or(u64::MAX),
            bytes: p.bytes,
            active: p.active,
        })
        .collect();
    if sent.published.as_ref() != Some(&published) {
        queue.push(Event {
            published: published.clone(),
            ..Event::succeeded(Operation::PublishedSnapshot, 0, String::new())
        });
        sent.published = Some(published);
    }
    let due = sent
        .status_at
        .is_none_or(|at| at.elapsed() >= STATUS_INTERVAL);
    if status_now || due {
        // Listing the blob store touches the disk: off the runtime's worker threads.
        let session = session.clone();
        if let Ok(s) = tokio::task::spawn_blocking(move || session.status()).await {
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let status = StatusData {
                dht_port: s.dht_port,
                listen_port: s.listen_port,
                dht_nodes: count(s.dht_nodes),
                blobs: count(s.blobs),
                blob_bytes: s.blob_bytes,
                subscriptions: count(s.subscriptions),
                published: count(s.published),
            };
            sent.status_at = Some(Instant::now());
            if sent.status.as_ref() != Some(&status) {
                queue.push(Event {
                    status: status.clone(),
                    ..Event::succeeded(Operation::StatusSnapshot, 0, String::new())
                });
                sent.status = Some(status);
            }
        }
    }
}

fn sync_state(state: SyncState) -> SyncStateData {
    match state {
        SyncState::Checking => SyncStateData::Checking,
        SyncState::Downloading => SyncStateData::Downloading,
        SyncState::Synced => SyncStateData::Synced,
        SyncState::Failed => SyncStateData::Failed,
        // Stopped, and any state a later session adds.
        _ => SyncStateData::Stopped,
    }
}

/// The bridge event for a session event; None for those C++ does not show.
fn event_from(event: SessionEvent) -> Option<Event> {
    let channel_event = |operation, channel: &ChannelRef| Event {
        salt: channel.salt.clone(),
        ..Event::succeeded(operation, 0, channel.public_key_hex())
    };
    Some(match event {
        SessionEvent::SubscriptionsChanged => {
            Event::succeeded(Operation::SubscriptionsChanged, 0, String::new())
        }
        SessionEvent::NewVersion { channel, sequence } => Event {
            sequence,
            ..channel_event(Operation::ChannelUpdated, &channel)
        },
        SessionEvent::Progress {
            channel,
            bytes_done,
            bytes_total,
            ..
        } => Event {
            bytes_done,
            bytes_total,
            ..channel_event(Operation::SyncProgress, &channel)
        },
        SessionEvent::FileCompleted { channel, path } => Event {
            path,
            ..channel_event(Operation::FileCompleted, &channel)
        },
        SessionEvent::LocalChangeKept { channel, path } => Event {
            path,
            ..channel_event(Operation::LocalChangeKept, &channel)
        },
        SessionEvent::Synced {
            channel,
            sequence,
            blobs_fetched,
            blobs_present,
            ..
        } => Event {
            sequence,
            blobs_fetched: u64::try_from(blobs_fetched).unwrap_or(u64::MAX),
            blobs_present: u64::try_from(blobs_present).unwrap_or(u64::MAX),
            ..channel_event(Operation::Synced, &channel)
        },
        SessionEvent::Published {
            public_key,
            salt,
            sequence,
            ..
        } => Event {
            salt,
            sequence,
            ..Event::succeeded(Operation::Published, 0, hex::encode(public_key))
        },
        SessionEvent::Error {
            channel,
            kind,
            message,
        } => Event {
            ok: false,
            kind: kind.for_bridge(),
            message,
            salt: channel.as_ref().map(|c| c.salt.clone()).unwrap_or_default(),
            ..Event::succeeded(
                Operation::SessionError,
                0,
                channel.map(|c| c.public_key_hex()).unwrap_or_default(),
            )
        },
        _ => return None,
    })
}
