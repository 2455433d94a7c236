//! One [`Session`] that owns it all: one DHT client, one blob store, one blob server, the
//! seeding of every blob it holds, its subscriptions, its published channels and one state
//! folder (see [`state`](self) docs in `session.json`).
//!
//! - **Subscribe** ([`Session::subscribe`]): each subscription polls the DHT (and looks at
//!   once when a peer gossips a higher sequence: a hint only wakes the poll). Each new
//!   verified version is synced into the save folder: new and changed files downloaded,
//!   unchanged ones untouched, files the user changed kept ([`SessionEvent::LocalChangeKept`]).
//! - **Publish** ([`Session::publish`]): incremental; unchanged files keep their entries, and
//!   the channel is kept alive (re-put, re-announce, served) while the session runs.
//! - **Seed**: every blob held, published or downloaded, complete or partial, is served and
//!   announced (BEP 5), and re-announced periodically.
//! - **Events** ([`Session::events`]): one typed stream for UIs, the CLI and the FFI.
//!
//! ```no_run
//! # async fn f() -> Result<(), megatorrent::session::SessionError> {
//! use megatorrent::session::{ChannelRef, Session, SessionConfig, SubscriptionSettings};
//! let session = Session::start(SessionConfig::new("state")
//!     .bootstrap(vec!["127.0.0.1:6881".into()])).await?;
//! let channel: ChannelRef = "megatorrent://3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29".parse()?;
//! session.subscribe(channel, SubscriptionSettings::new("downloads")).await?;
//! let mut events = session.events();
//! while let Ok(event) = events.recv().await { println!("{event:?}"); }
//! # Ok(()) }
//! ```

mod channel;
mod files;
mod publish;
mod state;
mod sync;
mod types;

pub use channel::{ChannelId, ChannelRef, ChannelRefError, LINK_SCHEME};
pub use files::{collect as collect_files, SourceFile};
pub use sync::entry_path;
pub use types::{
    ChannelFile, ErrorKind, IngestProgress, PublishOutcome, PublishSettings, PublishStage,
    PublishStageFn, PublishedStatus, RemovedFiles, SessionConfig, SessionError, SessionEvent,
    SessionStatus, SubscriptionSettings, SubscriptionStatus, SyncState,
};

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::blob::BlobStore;
use crate::dht::{
    ChannelUpdate, DhtClient, DhtConfig, GossipBridge, SubscribeOptions, SubscriptionEvent,
    TransportFetcher,
};
use crate::download::DownloadOptions;
use crate::id::BlobId;
use crate::identity::Identity;
use crate::manifest::ReadKey;
use crate::node::{
    entry_blobs, next_sequence, put_version, AnnounceProgress, ChannelVersion, NodeError,
    Republisher, Seeding, SeedingOptions,
};
use crate::peer::ServerConfig;

use state::{PubRecord, State, SubRecord};
use sync::{Live, SyncCtx};

/// Events buffered per receiver; a slower receiver loses the oldest (and learns how many).
const EVENT_CAPACITY: usize = 4096;
/// Longest wait between two retries of a failed sync.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the cached DHT node count is refreshed.
const STATUS_REFRESH: Duration = Duration::from_secs(5);

/// A running session: a cheap handle (clones share it). Stop it with [`Session::shutdown`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state_dir", &self.inner.config.state_dir)
            .finish_non_exhaustive()
    }
}

type AnnounceReq = (
    Vec<BlobId>,
    Option<oneshot::Sender<Result<usize, NodeError>>>,
    Option<AnnounceProgress>,
);

/// What the per-channel tasks share with the session.
#[derive(Clone)]
struct Ctx {
    config: Arc<SessionConfig>,
    dht: DhtClient,
    store: BlobStore,
    events: broadcast::Sender<SessionEvent>,
    state: Arc<Mutex<State>>,
    // Serializes state writes, each taking its snapshot under it: the file never goes back.
    save_lock: Arc<tokio::sync::Mutex<()>>,
    announce: mpsc::UnboundedSender<AnnounceReq>,
    /// The blob server's port, told to the peers a download connects to.
    listen_port: u16,
}

struct SubRuntime {
    task: JoinHandle<()>,
    live: Arc<Mutex<Live>>,
    status: Arc<Mutex<(SyncState, Option<String>)>>,
}

struct Inner {
    config: Arc<SessionConfig>,
    ctx: Ctx,
    seeding: Mutex<Option<Arc<Seeding>>>,
    listen_port: u16,
    dht_port: u16,
    dht_nodes: Arc<AtomicUsize>,
    subs: Mutex<HashMap<ChannelId, SubRuntime>>,
    published: Arc<Mutex<HashMap<ChannelId, Republisher>>>,
    // Background tasks: the announcer, the status refresher, the first announce.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    _gossip: GossipBridge,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        for (_, s) in lock(&self.subs).drain() {
            s.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned map is still a valid map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ctx {
    fn emit(&self, e: SessionEvent) {
        let _ = self.events.send(e);
    }

    fn error(&self, channel: Option<&ChannelRef>, e: &SessionError) {
        self.emit(SessionEvent::Error {
            channel: channel.cloned(),
            kind: e.kind(),
            message: e.to_string(),
        });
    }

    /// Persist the state (on a blocking thread, atomically).
    async fn save(&self) -> Result<(), SessionError> {
        let _guard = self.save_lock.lock().await;
        let bytes = lock(&self.state).to_bytes()?;
        crate::state_file::write_async(State::path(&self.config.state_dir), bytes).await?;
        Ok(())
    }

    /// Announce `ids` (those not announced yet), waiting for it; `progress` as in
    /// [`Seeding::announce_reporting`].
    async fn announce(
        &self,
        ids: Vec<BlobId>,
        progress: Option<AnnounceProgress>,
    ) -> Result<usize, SessionError> {
        let (tx, rx) = oneshot::channel();
        self.announce
            .send((ids, Some(tx), progress))
            .map_err(|_| SessionError::Stopped)?;
        Ok(rx.await.map_err(|_| SessionError::Stopped)??)
    }
}

impl Session {
    /// Start a session: open (or create) the state folder and blob store, start the DHT
    /// client and the blob server, announce every blob held, and resume every subscription.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        let state_dir = config.state_dir.clone();
        let blob_dir = config
            .blob_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("blobs"));
        let (state, store) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&state_dir).map_err(|source| SessionError::Io {
                path: state_dir.clone(),
                source,
            })?;
            let state = State::load(&state_dir)?;
            let store = BlobStore::open(&blob_dir)?;
            remove_store_temporaries(&blob_dir);
            Ok::<_, SessionError>((state, store))
        })
        .await??;

        let IpAddr::V4(bind) = config.dht_bind else {
            return Err(SessionError::InvalidChannel(
                "the DHT binds an IPv4 address (BEP 5 is IPv4)".into(),
            ));
        };
        let mut dht_config = DhtConfig {
            bootstrap: config.bootstrap.clone(),
            bind_address: bind,
            port: config.dht_port,
            server_mode: config.dht_server_mode,
            state_dir: Some(config.state_dir.clone()),
            ..DhtConfig::default()
        };
        if let Some(t) = config.dht_request_timeout {
            dht_config.request_timeout = t;
        }
        let dht = start_dht(&dht_config)
            .await?
            .with_part_fetcher(Arc::new(TransportFetcher::default()));
        let dht_port = dht.local_addr().await.port();

        let seeding_opts = SeedingOptions {
            server: ServerConfig {
                max_connections: config.max_connections.max(1),
                identity: config.server_identity.clone(),
                upload_rate_limit: config.upload_rate_limit,
                ..ServerConfig::default()
            },
            ..SeedingOptions::default()
        };
        // The same wait for a fixed listen port as for the DHT's (see `start_dht`).
        let deadline = tokio::time::Instant::now() + BIND_RETRY;
        let seeding = loop {
            match Seeding::start(
                store.clone(),
                Vec::new(),
                dht.clone(),
                config.listen,
                &seeding_opts,
            )
            .await
            {
                Err(NodeError::Peer(crate::peer::PeerError::Bind { source, .. }))
                    if config.listen.port() != 0
                        && source.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => break Arc::new(r?),
            }
        };
        let listen_port = seeding.local_addr().port();
        let gossip = dht.follow_gossip(seeding.server().subscribe_gossip());

        let (announce_tx, mut announce_rx) = mpsc::unbounded_channel::<AnnounceReq>();
        let announcer = {
            let seeding = seeding.clone();
            tokio::spawn(async move {
                while let Some((ids, reply, progress)) = announce_rx.recv().await {
                    let r = seeding.announce_reporting(&ids, progress.as_ref()).await;
                    if let Err(e) = &r {
                        tracing::debug!(error = %e, "announce failed");
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
            })
        };
        let config = Arc::new(config);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let ctx = Ctx {
            config: config.clone(),
            dht: dht.clone(),
            store: store.clone(),
            events,
            state: Arc::new(Mutex::new(state)),
            save_lock: Arc::default(),
            announce: announce_tx,
            listen_port,
        };
        // Everything held is seeded, in the background (a large store takes a while).
        let first_announce = {
            let (store, tx) = (store.clone(), ctx.announce.clone());
            tokio::spawn(async move {
                if let Ok(Ok(ids)) = tokio::task::spawn_blocking(move || store.list()).await {
                    let _ = tx.send((ids, None, None));
                }
            })
        };
        let dht_nodes = Arc::new(AtomicUsize::new(0));
        let refresher = {
            let (dht, nodes) = (dht.clone(), dht_nodes.clone());
            tokio::spawn(async move {
                let mut t = tokio::time::interval(STATUS_REFRESH);
                loop {
                    t.tick().await;
                    nodes.store(dht.routing_nodes().await, Ordering::Relaxed);
                }
            })
        };
        let inner = Arc::new(Inner {
            config,
            ctx,
            seeding: Mutex::new(Some(seeding)),
            listen_port,
            dht_port,
            dht_nodes,
            subs: Mutex::new(HashMap::new()),
            published: Arc::default(),
            tasks: Mutex::new(vec![announcer, first_announce, refresher]),
            _gossip: gossip,
        });
        let session = Session { inner };
        session.resume_publishing();
        let records: Vec<SubRecord> = lock(&session.inner.ctx.state).subscriptions.clone();
        for r in records {
            match channel_of(&r) {
                Ok(channel) => session.spawn_follow(channel),
                Err(e) => session.inner.ctx.error(None, &e),
            }
        }
        Ok(session)
    }

    /// A new receiver of the event stream (events from now on).
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.ctx.events.subscribe()
    }

    /// Follow `channel` with `settings` (persisted): sync its current version, then every new
    /// one. Fails if already subscribed.
    pub async fn subscribe(
        &self,
        channel: ChannelRef,
        settings: SubscriptionSettings,
    ) -> Result<(), SessionError> {
        if settings.save_path.as_os_str().is_empty() {
            return Err(SessionError::InvalidChannel("empty save folder".into()));
        }
        {
            let mut state = lock(&self.inner.ctx.state);
            if state.sub(&channel.public_key, &channel.salt).is_some() {
                return Err(SessionError::AlreadySubscribed(channel.to_string()));
            }
            state.subscriptions.push(SubRecord {
                public_key: channel.public_key_hex(),
                salt: channel.salt.clone(),
                read_key: channel.read_key.as_ref().map(|k| k.to_hex().to_string()),
                save_path: settings.save_path.clone(),
                label: settings.label.clone(),
                poll_interval: settings.poll_interval.map(|d| d.as_secs().max(1)),
                auto_download: settings.auto_download,
                removed_files: settings.removed_files,
                last_sequence: 0,
                synced: Default::default(),
            });
        }
        self.inner.ctx.save().await?;
        self.spawn_follow(channel);
        self.inner.ctx.emit(SessionEvent::SubscriptionsChanged);
        Ok(())
    }

    /// Stop following `channel` (forgotten by the state folder). With `delete_files`, the
    /// files it wrote are deleted, except those the user changed.
    pub async fn unsubscribe(
        &self,
        channel: &ChannelRef,
        delete_files: bool,
    ) -> Result<(), SessionError> {
        if let Some(rt) = lock(&self.inner.subs).remove(&channel.id()) {
            rt.task.abort();
        }
        let record = {
            let mut state = lock(&self.inner.ctx.state);
            let key = channel.public_key_hex();
            let pos = state
                .subscriptions
                .iter()
                .position(|s| s.public_key == key && s.salt == channel.salt)
                .ok_or_else(|| SessionError::NotFound(channel.to_string()))?;
            state.subscriptions.remove(pos)
        };
        self.inner.ctx.save().await?;
        if delete_files {
            tokio::task::spawn_blocking(move || {
                for (path, rec) in &record.synced.files {
                    if let Ok(dest) = files::dest_in(&record.save_path, path) {
                        if sync::still_ours_pub(&dest, rec) {
                            let _ = std::fs::remove_file(&dest);
                        }
                    }
                }
            })
            .await?;
        }
        self.inner.ctx.emit(SessionEvent::SubscriptionsChanged);
        Ok(())
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<SubscriptionStatus> {
        let state = lock(&self.inner.ctx.state);
        let subs = lock(&self.inner.subs);
        state
            .subscriptions
            .iter()
            .filter_map(|r| {
                let channel = channel_of(r).ok()?;
                let rt = subs.get(&channel.id());
                let live = rt.map(|rt| lock(&rt.live).clone()).unwrap_or_default();
                let (st, error) = rt
                    .map(|rt| lock(&rt.status).clone())
                    .unwrap_or((SyncState::Stopped, None));
                let synced_bytes: u64 = r.synced.files.values().map(|f| f.size).sum();
                let (bytes_done, bytes_total) = if st == SyncState::Downloading {
                    (live.bytes_done, live.bytes_total)
                } else {
                    (synced_bytes, synced_bytes)
                };
                Some(SubscriptionStatus {
                    public_key: channel.public_key,
                    salt: r.salt.clone(),
                    label: r.label.clone(),
                    save_path: r.save_path.clone(),
                    last_sequence: r.last_sequence,
                    synced_sequence: r.synced.sequence,
                    state: st,
                    bytes_done,
                    bytes_total,
                    peers: live.peers,
                    download_rate: if st == SyncState::Downloading {
                        live.rate
                    } else {
                        0
                    },
                    error,
                })
            })
            .collect()
    }

    /// The files of a subscribed channel's version being synced (or last synced).
    pub fn channel_files(&self, channel: &ChannelRef) -> Result<Vec<ChannelFile>, SessionError> {
        let state = lock(&self.inner.ctx.state);
        let record = state
            .sub(&channel.public_key, &channel.salt)
            .ok_or_else(|| SessionError::NotFound(channel.to_string()))?;
        let live = lock(&self.inner.subs)
            .get(&channel.id())
            .map(|rt| lock(&rt.live).files.clone())
            .unwrap_or_default();
        if !live.is_empty() {
            return Ok(live
                .into_iter()
                .map(|(path, (size, bytes_done))| ChannelFile {
                    path,
                    size,
                    bytes_done,
                })
                .collect());
        }
        Ok(record
            .synced
            .files
            .iter()
            .map(|(path, f)| ChannelFile {
                path: path.clone(),
                size: f.size,
                bytes_done: f.size,
            })
            .collect())
    }

    /// Publish `paths` (files, or folders whose files are published relative to them) as a
    /// new version of `identity`'s channel `settings.salt`. Files whose content is unchanged
    /// since the last publish from this state folder keep their entries; the rest are
    /// ingested. The channel is then kept alive (re-put, announced, served) until
    /// [`Session::stop_publishing`] or shutdown.
    pub async fn publish(
        &self,
        identity: &Identity,
        paths: &[PathBuf],
        settings: PublishSettings,
    ) -> Result<PublishOutcome, SessionError> {
        let ctx = &self.inner.ctx;
        let public_key = identity.public_key_bytes();
        let previous = lock(&ctx.state).publ(&public_key, &settings.salt).cloned();
        // Dropping this future (a caller that gave up) stops the ingest and removes the
        // blobs it stored.
        let cancel = CancelOnDrop::default();
        let prepared = {
            let (paths, store, prev) = (paths.to_vec(), ctx.store.clone(), previous.clone());
            let (flag, progress) = (cancel.0.clone(), settings.progress.clone());
            tokio::task::spawn_blocking(move || {
                let sources = files::collect(&paths)?;
                if sources.is_empty() {
                    return Err(SessionError::Node(NodeError::NoFiles));
                }
                publish::prepare(&sources, prev.as_ref(), &store, &flag, progress.as_ref())
            })
            .await??
        };
        let stage = |s: PublishStage| {
            if let Some(f) = &settings.stages {
                f(s);
            }
        };
        let salt = settings.salt.as_bytes();
        stage(PublishStage::Sequence);
        let sequence = next_sequence(
            &public_key,
            salt,
            previous.as_ref().map(|p| p.sequence),
            &ctx.dht,
        )
        .await;
        // Blobs first, so the record never points at something nobody serves.
        let announced = settings.stages.clone().map(|f| -> AnnounceProgress {
            Arc::new(move |done, total| f(PublishStage::Announcing { done, total }))
        });
        ctx.announce(entry_blobs(&prepared.entries), announced)
            .await?;
        let title = if settings.title.is_empty() {
            "files".to_owned()
        } else {
            settings.title.clone()
        };
        let version = ChannelVersion {
            title: &title,
            salt,
            read_key: settings.read_key.as_ref(),
            sequence,
        };
        let files_total = prepared.entries.len();
        stage(PublishStage::Putting);
        let (manifest, report) = put_version(
            identity,
            prepared.entries,
            &version,
            &ctx.store,
            &ctx.dht,
            self.inner.listen_port,
        )
        .await?;
        if !report.parts.is_empty() {
            ctx.announce(report.parts.clone(), None).await?;
        }
        {
            let mut state = lock(&ctx.state);
            let key = hex::encode(public_key);
            state
                .published
                .retain(|p| !(p.public_key == key && p.salt == settings.salt));
            state.published.push(PubRecord {
                public_key: key,
                salt: settings.salt.clone(),
                title,
                sequence,
                files: prepared.index,
                identity_file: settings.identity_file.clone(),
                manifest: Some(manifest.as_str().to_owned()),
            });
        }
        ctx.save().await?;
        let republisher = Republisher::spawn(
            identity.clone(),
            manifest,
            salt.to_vec(),
            ctx.store.clone(),
            ctx.dht.clone(),
            self.inner.listen_port,
            crate::node::PublishOptions::default().republish_interval,
        );
        lock(&self.inner.published).insert((public_key, settings.salt.clone()), republisher);
        // Tell the peers that hold the channel's blobs (its subscribers, mostly) that a new
        // sequence exists: their gossip hint wakes their poll now rather than at the next
        // interval. Best effort, in the background.
        if let Some(blob) = previous
            .as_ref()
            .and_then(|p| p.files.first())
            .and_then(|f| crate::manifest::FileEntry::from_json(&f.entry).ok())
            .and_then(|e| e.chunks.first().map(|c| c.blob_id))
        {
            let task = tokio::spawn(push_gossip(
                ctx.dht.clone(),
                blob,
                public_key,
                sequence,
                self.inner.listen_port,
            ));
            lock(&self.inner.tasks).push(task);
        }
        ctx.emit(SessionEvent::Published {
            public_key,
            salt: settings.salt.clone(),
            sequence,
            files_total,
            files_unchanged: prepared.unchanged,
        });
        Ok(PublishOutcome {
            public_key,
            salt: settings.salt,
            sequence,
            files_total,
            files_unchanged: prepared.unchanged,
            blobs_new: prepared.blobs_new,
        })
    }

    /// Stop keeping the channels of `public_key` alive (every salt). Their blobs stay in the
    /// store and are still served; the state folder keeps the file index.
    pub async fn stop_publishing(&self, public_key: &[u8; 32]) -> Result<(), SessionError> {
        let mut published = lock(&self.inner.published);
        let before = published.len();
        published.retain(|(k, _), _| k != public_key);
        if published.len() == before {
            return Err(SessionError::NotFound(hex::encode(public_key)));
        }
        Ok(())
    }

    /// Channels published from this state folder.
    pub fn published(&self) -> Vec<PublishedStatus> {
        let state = lock(&self.inner.ctx.state);
        let active = lock(&self.inner.published);
        state
            .published
            .iter()
            .filter_map(|p| {
                let key = crate::id::decode_hex_array::<32>(&p.public_key).ok()?;
                Some(PublishedStatus {
                    public_key: key,
                    salt: p.salt.clone(),
                    title: p.title.clone(),
                    sequence: p.sequence,
                    files: p.files.len(),
                    bytes: p.files.iter().map(|f| f.size).sum(),
                    active: active.contains_key(&(key, p.salt.clone())),
                })
            })
            .collect()
    }

    /// The session as a whole.
    pub fn status(&self) -> SessionStatus {
        let (blobs, blob_bytes) = match self.inner.ctx.store.list() {
            Ok(ids) => {
                let bytes = ids
                    .iter()
                    .filter_map(|id| std::fs::metadata(self.inner.ctx.store.path_of(id)).ok())
                    .map(|m| m.len())
                    .sum();
                (ids.len(), bytes)
            }
            Err(_) => (0, 0),
        };
        let state = lock(&self.inner.ctx.state);
        SessionStatus {
            dht_port: self.inner.dht_port,
            listen_port: self.inner.listen_port,
            dht_nodes: self.inner.dht_nodes.load(Ordering::Relaxed),
            blobs,
            blob_bytes,
            subscriptions: state.subscriptions.len(),
            published: state.published.len(),
        }
    }

    /// The blob server's address.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        lock(&self.inner.seeding).as_ref().map(|s| s.local_addr())
    }

    /// The DHT client (for tools that read records directly, e.g. `ls`).
    pub fn dht(&self) -> &DhtClient {
        &self.inner.ctx.dht
    }

    /// Stop everything (bounded: under a second), persisting the state. Downloads in progress
    /// stop; their verified blobs stay in the store and the next start resumes them.
    pub async fn shutdown(self) {
        let inner = &self.inner;
        for (_, s) in lock(&inner.subs).drain() {
            s.task.abort();
        }
        lock(&inner.published).clear();
        for t in lock(&inner.tasks).drain(..) {
            t.abort();
        }
        if let Err(e) = tokio::time::timeout(Duration::from_millis(500), inner.ctx.save())
            .await
            .unwrap_or(Ok(()))
        {
            tracing::warn!(error = %e, "cannot save the session state");
        }
        let seeding = lock(&inner.seeding).take();
        if let Some(seeding) = seeding {
            // The announcer was aborted above; give its Arc a moment to drop.
            let mut seeding = seeding;
            for _ in 0..10 {
                match Arc::try_unwrap(seeding) {
                    Ok(s) => {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(400), s.shutdown()).await;
                        return;
                    }
                    Err(s) => {
                        seeding = s;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }

    /// Keep alive again the channels published with an identity file (their record is put
    /// again now, then periodically), in the background.
    fn resume_publishing(&self) {
        let records: Vec<PubRecord> = lock(&self.inner.ctx.state)
            .published
            .iter()
            .filter(|p| p.identity_file.is_some() && p.manifest.is_some())
            .cloned()
            .collect();
        for record in records {
            let ctx = self.inner.ctx.clone();
            let published = self.inner.published.clone();
            let port = self.inner.listen_port;
            let task = tokio::spawn(async move {
                if let Err(e) = resume_one(&ctx, &published, port, record).await {
                    ctx.error(None, &e);
                }
            });
            lock(&self.inner.tasks).push(task);
        }
    }

    fn spawn_follow(&self, channel: ChannelRef) {
        let live = Arc::new(Mutex::new(Live::default()));
        let status = Arc::new(Mutex::new((SyncState::Checking, None)));
        let task = tokio::spawn(follow(
            self.inner.ctx.clone(),
            channel.clone(),
            live.clone(),
            status.clone(),
        ));
        let old = lock(&self.inner.subs).insert(channel.id(), SubRuntime { task, live, status });
        if let Some(old) = old {
            old.task.abort();
        }
    }
}

async fn resume_one(
    ctx: &Ctx,
    published: &Mutex<HashMap<ChannelId, Republisher>>,
    port: u16,
    record: PubRecord,
) -> Result<(), SessionError> {
    let (Some(file), Some(text)) = (record.identity_file.clone(), record.manifest.clone()) else {
        return Ok(());
    };
    let (identity, manifest) = tokio::task::spawn_blocking(move || {
        let identity = Identity::load(&file).map_err(|e| SessionError::BadPath {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let manifest = crate::manifest::SignedManifest::verify(text.as_bytes())
            .map_err(|e| SessionError::State(format!("published manifest: {e}")))?;
        Ok::<_, SessionError>((identity, manifest))
    })
    .await??;
    if identity.public_key_hex() != record.public_key
        || manifest.public_key_hex() != record.public_key
    {
        return Err(SessionError::State(format!(
            "the identity file of channel {} holds another key",
            record.public_key
        )));
    }
    let salt = record.salt.as_bytes().to_vec();
    let put = crate::dht::PutOptions {
        salt: &salt,
        cas: None,
        parts: Some(crate::dht::PartsTarget {
            store: &ctx.store,
            port,
        }),
    };
    ctx.dht.put_manifest(&identity, &manifest, &put).await?;
    let republisher = Republisher::spawn(
        identity.clone(),
        manifest,
        salt,
        ctx.store.clone(),
        ctx.dht.clone(),
        port,
        crate::node::PublishOptions::default().republish_interval,
    );
    // A publish made meanwhile wins: it inserted its own keeper of a newer version.
    let still_last = lock(&ctx.state)
        .publ(&identity.public_key_bytes(), &record.salt)
        .is_some_and(|p| p.sequence == record.sequence);
    if still_last {
        lock(published)
            .entry((identity.public_key_bytes(), record.salt))
            .or_insert(republisher);
    }
    Ok(())
}

/// A manifest too large for one DHT record is read through its parts: keep them in the store
/// and announce them, so the channel stays readable from subscribers when the publisher is
/// gone. Splitting is deterministic, so these are the publisher's very part ids.
async fn seed_manifest_parts(
    ctx: &Ctx,
    manifest: &crate::manifest::SignedManifest,
) -> Result<(), SessionError> {
    let bytes = manifest.as_bytes();
    if bytes.len() <= crate::dht::bep44::MAX_VALUE_LEN {
        return Ok(());
    }
    let (_, parts) =
        crate::dht::PointerRecord::split(manifest.public_key(), manifest.sequence(), bytes)
            .map_err(|e| SessionError::Internal(format!("manifest parts: {e}")))?;
    let parts: Vec<(BlobId, Vec<u8>)> = parts.iter().map(|(id, p)| (*id, p.to_vec())).collect();
    let ids: Vec<BlobId> = parts.iter().map(|(id, _)| *id).collect();
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || {
        parts.iter().try_for_each(|(id, part)| store.put(id, part))
    })
    .await??;
    let _ = ctx.announce.send((ids, None, None));
    Ok(())
}

/// Peers a gossip push reaches at most.
const GOSSIP_FANOUT: usize = 32;

/// Send a HELLO gossiping `(public_key, sequence)` to the peers that announced `blob`.
async fn push_gossip(
    dht: DhtClient,
    blob: BlobId,
    public_key: [u8; 32],
    sequence: u64,
    own_port: u16,
) {
    let Ok(seq) = i64::try_from(sequence) else {
        return;
    };
    let opts = crate::transport::ConnectOptions {
        handshake_timeout: Duration::from_secs(5),
        gossip: Some(std::iter::once((public_key, seq)).collect()),
        ..Default::default()
    };
    let peers = dht.find_blob_peers(&blob).await;
    let mut set = tokio::task::JoinSet::new();
    for peer in peers
        .into_iter()
        .filter(|p| p.port() != own_port)
        .take(GOSSIP_FANOUT)
    {
        let opts = opts.clone();
        set.spawn(async move {
            if let Ok(stream) = crate::transport::connect(peer, &opts).await {
                let _ = stream.close_within(Duration::from_secs(2)).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

fn channel_of(r: &SubRecord) -> Result<ChannelRef, SessionError> {
    let key = crate::id::decode_hex_array::<32>(&r.public_key)
        .map_err(|e| SessionError::State(format!("bad public key in the state: {e}")))?;
    let read_key = r
        .read_key
        .as_deref()
        .map(ReadKey::from_hex)
        .transpose()
        .map_err(|_| SessionError::State("bad read key in the state".into()))?;
    Ok(ChannelRef {
        public_key: key,
        salt: r.salt.clone(),
        read_key,
    })
}

/// Temporary files a killed store write left (`.tmp-*`, the store's names).
fn remove_store_temporaries(dir: &std::path::Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn set_status(status: &Mutex<(SyncState, Option<String>)>, st: SyncState, err: Option<String>) {
    *lock(status) = (st, err);
}

/// A subscription's task: take each new verified version, sync it (retrying with backoff
/// after a failure), until aborted.
async fn follow(
    ctx: Ctx,
    channel: ChannelRef,
    live: Arc<Mutex<Live>>,
    status: Arc<Mutex<(SyncState, Option<String>)>>,
) {
    let interval = lock(&ctx.state)
        .sub(&channel.public_key, &channel.salt)
        .and_then(|r| r.poll_interval)
        .map(Duration::from_secs)
        .unwrap_or(ctx.config.default_poll_interval);
    let mut sub = ctx.dht.subscribe(
        channel.public_key,
        SubscribeOptions {
            salt: channel.salt.as_bytes().to_vec(),
            interval,
            read_key: channel.read_key.clone(),
        },
    );
    let mut pending: Option<ChannelUpdate> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        if let Some(update) = pending.take() {
            match sync_update(&ctx, &channel, &update, &live, &status).await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    ctx.error(Some(&channel), &e);
                    set_status(&status, SyncState::Failed, Some(e.to_string()));
                    pending = Some(update);
                }
            }
        }
        let retry = async {
            if pending.is_some() {
                tokio::time::sleep(backoff).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            event = sub.next_event() => match event {
                Some(SubscriptionEvent::Update(u)) => {
                    if let Some(u) = on_update(&ctx, &channel, u, &status).await {
                        pending = Some(u);
                    }
                }
                // Said once per outage; the subscription keeps polling.
                Some(SubscriptionEvent::Unreachable(e)) => {
                    let e = SessionError::Dht(e);
                    ctx.error(Some(&channel), &e);
                    set_status(&status, SyncState::Failed, Some(e.to_string()));
                }
                Some(SubscriptionEvent::Reachable) if pending.is_none() => {
                    let synced = lock(&ctx.state)
                        .sub(&channel.public_key, &channel.salt)
                        .is_some_and(|r| r.synced.sequence >= r.last_sequence);
                    let state = if synced { SyncState::Synced } else { SyncState::Checking };
                    set_status(&status, state, None);
                }
                Some(_) => {}
                None => break,
            },
            _ = retry => backoff = (backoff * 2).min(MAX_BACKOFF),
        }
    }
}

/// Record a new version; return it when it is to be synced.
async fn on_update(
    ctx: &Ctx,
    channel: &ChannelRef,
    update: ChannelUpdate,
    status: &Mutex<(SyncState, Option<String>)>,
) -> Option<ChannelUpdate> {
    let seq = update.manifest.sequence();
    let (is_new, synced, auto) = {
        let mut state = lock(&ctx.state);
        let r = state.sub_mut(&channel.public_key, &channel.salt)?;
        let is_new = seq > r.last_sequence;
        if is_new {
            r.last_sequence = seq;
        }
        (is_new, r.synced.sequence, r.auto_download)
    };
    if is_new {
        if let Err(e) = ctx.save().await {
            ctx.error(Some(channel), &e);
        }
        ctx.emit(SessionEvent::NewVersion {
            channel: channel.clone(),
            sequence: seq,
        });
    }
    if synced >= seq {
        set_status(status, SyncState::Synced, None);
        return None;
    }
    if !auto {
        set_status(status, SyncState::Stopped, None);
        return None;
    }
    Some(update)
}

async fn sync_update(
    ctx: &Ctx,
    channel: &ChannelRef,
    update: &ChannelUpdate,
    live: &Arc<Mutex<Live>>,
    status: &Mutex<(SyncState, Option<String>)>,
) -> Result<(), SessionError> {
    let Some(content) = &update.content else {
        return Err(SessionError::WrongReadKey);
    };
    let sequence = update.manifest.sequence();
    seed_manifest_parts(ctx, &update.manifest).await?;
    let (save, removed, prev) = {
        let state = lock(&ctx.state);
        let r = state
            .sub(&channel.public_key, &channel.salt)
            .ok_or_else(|| SessionError::NotFound(channel.to_string()))?;
        (r.save_path.clone(), r.removed_files, r.synced.clone())
    };
    set_status(status, SyncState::Downloading, None);
    // Overwrite: every existing destination was checked to hold what we wrote before.
    let options = DownloadOptions::default()
        .max_peers(ctx.config.max_peers_per_download.max(1))
        .rate_limit(ctx.config.download_rate_limit)
        .serve_port(Some(ctx.listen_port))
        .overwrite(true);
    let announce = ctx.announce.clone();
    let sync_ctx = SyncCtx {
        store: ctx.store.clone(),
        dht: ctx.dht.clone(),
        options,
        events: ctx.events.clone(),
        live: live.clone(),
        // Partial versions are seeded too: each verified blob is announced as it arrives.
        on_blob: Arc::new(move |id| {
            let _ = announce.send((vec![id], None, None));
        }),
    };
    let outcome =
        sync::sync_version(&sync_ctx, channel, &save, removed, sequence, content, &prev).await?;
    {
        let mut state = lock(&ctx.state);
        if let Some(r) = state.sub_mut(&channel.public_key, &channel.salt) {
            r.synced = outcome.record.clone();
        }
    }
    ctx.save().await?;
    // Seed the whole version (blobs already held included).
    let all: Vec<BlobId> = sync::version_files(content)?
        .values()
        .flat_map(|e| e.chunks.iter().map(|c| c.blob_id))
        .collect();
    let _ = ctx.announce.send((all, None, None));
    set_status(status, SyncState::Synced, None);
    ctx.emit(SessionEvent::Synced {
        channel: channel.clone(),
        sequence,
        blobs_fetched: outcome.blobs_fetched,
        blobs_present: outcome.blobs_present,
        files_unchanged: outcome.files_unchanged,
    });
    Ok(())
}

/// Start the DHT node. A fixed port still held by a session that is shutting down (a UI that
/// turns channels off and on again, reusing its port) is waited for, up to [`BIND_RETRY`].
async fn start_dht(config: &DhtConfig) -> Result<DhtClient, SessionError> {
    let deadline = tokio::time::Instant::now() + BIND_RETRY;
    loop {
        match DhtClient::start(config) {
            Err(crate::dht::DhtError::Bind { source, .. })
                if config.port != 0
                    && source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return Ok(r?),
        }
    }
}

/// How long a session waits for its fixed DHT port to be released.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// Raises its flag when dropped: tells blocking work that its caller has gone.
#[derive(Default)]
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
