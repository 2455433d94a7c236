//! The session's settings, statuses, events and error type.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::identity::Identity;
use crate::manifest::ReadKey;

use super::channel::{ChannelRef, ChannelRefError};

/// Settings of a [`Session`](super::Session). Build with [`SessionConfig::new`] and the
/// setters; every field has a default except the state folder.
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The state folder: subscriptions, sync state, publisher index, blob store (`blobs/`).
    pub state_dir: PathBuf,
    /// Blob store folder; default `<state_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// DHT nodes to bootstrap from (`HOST:PORT`); empty: none (a lone node).
    pub bootstrap: Vec<String>,
    /// Where the blob server listens; port 0 picks a free port. Default 0.0.0.0:0.
    pub listen: SocketAddr,
    /// Address the DHT's UDP socket binds to. Default 0.0.0.0 (IPv4: the DHT is IPv4).
    pub dht_bind: IpAddr,
    /// DHT UDP port; 0 (default) picks any free port (never 6881 unless asked).
    pub dht_port: u16,
    /// Time allowed for one DHT node's answer (default: mainline's 2 s).
    pub dht_request_timeout: Option<Duration>,
    /// Download rate limit in bytes/s (None: unlimited).
    pub download_rate_limit: Option<u64>,
    /// Upload rate limit in bytes/s (None: unlimited).
    pub upload_rate_limit: Option<u64>,
    /// Peers one download fetches from at once.
    pub max_peers_per_download: usize,
    /// Connections the blob server serves at once.
    pub max_connections: usize,
    /// Poll interval of subscriptions that do not set their own.
    pub default_poll_interval: Duration,
    /// Identity the blob server answers binding HELLOs with (PROTOCOL.md 5.4).
    pub server_identity: Option<Arc<Identity>>,
    /// Answer other DHT nodes (only for local testnets made of our own nodes).
    pub dht_server_mode: bool,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("state_dir", &self.state_dir)
            .field("bootstrap", &self.bootstrap)
            .field("listen", &self.listen)
            .field("dht_bind", &self.dht_bind)
            .field("dht_port", &self.dht_port)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// Defaults, with state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            blob_dir: None,
            bootstrap: Vec::new(),
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            dht_bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dht_port: 0,
            dht_request_timeout: None,
            download_rate_limit: None,
            upload_rate_limit: None,
            max_peers_per_download: 8,
            max_connections: 256,
            default_poll_interval: crate::dht::POLL_INTERVAL,
            server_identity: None,
            dht_server_mode: false,
        }
    }

    /// Bootstrap nodes.
    pub fn bootstrap(mut self, nodes: Vec<String>) -> Self {
        self.bootstrap = nodes;
        self
    }
    /// Blob store folder.
    pub fn blob_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.blob_dir = Some(dir.into());
        self
    }
    /// Blob server address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// DHT bind address and port.
    pub fn dht(mut self, bind: IpAddr, port: u16) -> Self {
        self.dht_bind = bind;
        self.dht_port = port;
        self
    }
    /// Time allowed for one DHT node's answer.
    pub fn dht_request_timeout(mut self, t: Duration) -> Self {
        self.dht_request_timeout = Some(t);
        self
    }
    /// Download rate limit (bytes/s).
    pub fn download_rate_limit(mut self, limit: Option<u64>) -> Self {
        self.download_rate_limit = limit;
        self
    }
    /// Upload rate limit (bytes/s).
    pub fn upload_rate_limit(mut self, limit: Option<u64>) -> Self {
        self.upload_rate_limit = limit;
        self
    }
    /// Peers per download.
    pub fn max_peers_per_download(mut self, n: usize) -> Self {
        self.max_peers_per_download = n;
        self
    }
    /// Connections served at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Default poll interval.
    pub fn default_poll_interval(mut self, d: Duration) -> Self {
        self.default_poll_interval = d;
        self
    }
    /// Identity for binding HELLOs.
    pub fn server_identity(mut self, id: Option<Arc<Identity>>) -> Self {
        self.server_identity = id;
        self
    }
    /// DHT server mode (local testnets).
    pub fn dht_server_mode(mut self, on: bool) -> Self {
        self.dht_server_mode = on;
        self
    }
}

/// What to do with files a new version of a channel no longer has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RemovedFiles {
    /// Leave them in the save folder (default).
    #[default]
    Keep,
    /// Delete them, unless the user changed them.
    Delete,
}

/// Settings of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionSettings {
    /// Folder the channel's files go to (created if missing); nothing is written outside.
    pub save_path: PathBuf,
    /// Free text shown to users.
    pub label: String,
    /// Time between polls; None: the session's default.
    pub poll_interval: Option<Duration>,
    /// Download each new version at once (else only report it).
    pub auto_download: bool,
    /// Files the channel removed.
    pub removed_files: RemovedFiles,
}

impl SubscriptionSettings {
    /// Defaults: save into `save_path`, no label, default interval, auto download, keep
    /// removed files.
    pub fn new(save_path: impl Into<PathBuf>) -> Self {
        Self {
            save_path: save_path.into(),
            label: String::new(),
            poll_interval: None,
            auto_download: true,
            removed_files: RemovedFiles::Keep,
        }
    }
    /// Label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    /// Poll interval.
    pub fn poll_interval(mut self, d: Option<Duration>) -> Self {
        self.poll_interval = d;
        self
    }
    /// Auto download.
    pub fn auto_download(mut self, on: bool) -> Self {
        self.auto_download = on;
        self
    }
    /// Removed files.
    pub fn removed_files(mut self, r: RemovedFiles) -> Self {
        self.removed_files = r;
        self
    }
}

/// Where a subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum SyncState {
    /// Looking for the channel's current version.
    Checking,
    /// Downloading a version.
    Downloading,
    /// The last version found is on disk.
    Synced,
    /// Not running (session stopping, or auto download off with a newer version pending).
    Stopped,
    /// The last sync failed; it is retried.
    Failed,
}

/// A subscription as a UI shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriptionStatus {
    /// Publisher key.
    pub public_key: [u8; 32],
    /// Sub-channel.
    pub salt: String,
    /// Label.
    pub label: String,
    /// Save folder.
    pub save_path: PathBuf,
    /// Highest sequence found (0: none yet).
    pub last_sequence: u64,
    /// Sequence on disk (0: none yet).
    pub synced_sequence: u64,
    /// State.
    pub state: SyncState,
    /// Bytes of the current version on disk.
    pub bytes_done: u64,
    /// Bytes of the current version.
    pub bytes_total: u64,
    /// Peers connected by the download now.
    pub peers: usize,
    /// Download rate (bytes/s) over the last progress interval.
    pub download_rate: u64,
    /// The last error, if the last sync failed.
    pub error: Option<String>,
}

/// One file of a subscribed channel's current version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelFile {
    /// Path inside the save folder, `/`-separated.
    pub path: String,
    /// Size.
    pub size: u64,
    /// Bytes on disk (== size once complete).
    pub bytes_done: u64,
}

/// Settings of a publish.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct PublishSettings {
    /// Title of the manifest's collection (default "files").
    pub title: String,
    /// Sub-channel name.
    pub salt: String,
    /// Publish a private manifest readable with this key.
    pub read_key: Option<ReadKey>,
    /// The identity's file, when it has one: remembered in the state folder so that a new
    /// session on it keeps the channel alive again (re-put, served) without a new publish.
    pub identity_file: Option<PathBuf>,
    /// Called with the number of bytes read each time the ingest of changed files advances
    /// (on a blocking thread: keep it short).
    pub progress: Option<IngestProgress>,
    /// Called as the publish moves through its stages after the ingest (on a session task:
    /// keep it short).
    pub stages: Option<PublishStageFn>,
}

/// A publish's ingest progress callback (bytes read since the last call).
pub type IngestProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// A publish's stage callback, see [`PublishSettings::stages`].
pub type PublishStageFn = Arc<dyn Fn(PublishStage) + Send + Sync>;

/// Where a publish is after its ingest, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishStage {
    /// Looking up the sequence the DHT holds now, to publish above it.
    Sequence,
    /// Announcing (BEP 5) the version's blobs this session has not announced yet: `done` of
    /// `total` announces finished (succeeded or failed). Reported with `done` 0 first, then
    /// after each one; not at all when every blob was announced already.
    Announcing {
        /// Announces finished.
        done: usize,
        /// Blobs to announce.
        total: usize,
    },
    /// Putting the channel's record (BEP 44), with its parts when the manifest is large.
    Putting,
}

impl std::fmt::Debug for PublishSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishSettings")
            .field("title", &self.title)
            .field("salt", &self.salt)
            .field("read_key", &self.read_key.as_ref().map(|_| "<redacted>"))
            .field("identity_file", &self.identity_file)
            .field("progress", &self.progress.is_some())
            .field("stages", &self.stages.is_some())
            .finish()
    }
}

impl PublishSettings {
    /// Defaults: title "files", main channel, public.
    pub fn new() -> Self {
        Self {
            title: "files".into(),
            ..Self::default()
        }
    }
    /// Title.
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = t.into();
        self
    }
    /// Sub-channel.
    pub fn salt(mut self, s: impl Into<String>) -> Self {
        self.salt = s.into();
        self
    }
    /// Read key.
    pub fn read_key(mut self, k: Option<ReadKey>) -> Self {
        self.read_key = k;
        self
    }
    /// Identity file (for resuming after a restart).
    pub fn identity_file(mut self, f: Option<PathBuf>) -> Self {
        self.identity_file = f;
        self
    }
    /// Ingest progress callback.
    pub fn progress(mut self, f: Option<IngestProgress>) -> Self {
        self.progress = f;
        self
    }
    /// Stage callback (announcing, putting).
    pub fn stages(mut self, f: Option<PublishStageFn>) -> Self {
        self.stages = f;
        self
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// Channel key.
    pub public_key: [u8; 32],
    /// Sub-channel.
    pub salt: String,
    /// The new sequence.
    pub sequence: u64,
    /// Files in the version.
    pub files_total: usize,
    /// Files whose entry was reused from the previous version (not re-ingested).
    pub files_unchanged: usize,
    /// Blobs of the version that were new in the store.
    pub blobs_new: usize,
}

/// A channel this session publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishedStatus {
    /// Channel key.
    pub public_key: [u8; 32],
    /// Sub-channel.
    pub salt: String,
    /// Title.
    pub title: String,
    /// Last sequence published.
    pub sequence: u64,
    /// Files.
    pub files: usize,
    /// Content bytes.
    pub bytes: u64,
    /// True while this session keeps it alive (re-put, re-announce); false for a channel
    /// known from the state folder but not published since this session started.
    pub active: bool,
}

/// The session as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStatus {
    /// DHT UDP port.
    pub dht_port: u16,
    /// Blob server TCP port.
    pub listen_port: u16,
    /// Nodes in the DHT routing table.
    pub dht_nodes: usize,
    /// Blobs held (and seeded).
    pub blobs: usize,
    /// Their bytes on disk.
    pub blob_bytes: u64,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Published channels.
    pub published: usize,
}

/// The kind of an error, for UIs and the FFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A channel reference or argument is not valid.
    InvalidChannel,
    /// The channel (or a subscription) does not exist.
    NotFound,
    /// Peers or DHT failed.
    Network,
    /// The manifest is invalid.
    BadManifest,
    /// The read key is missing or does not open the manifest.
    WrongReadKey,
    /// The state folder or blob store failed.
    Storage,
    /// A file outside the store failed.
    Io,
    /// A bug or a dead task.
    Internal,
}

/// Something a UI shows. Channels are named by [`ChannelRef`] (Display never shows keys).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Subscriptions were added or removed.
    SubscriptionsChanged,
    /// A version higher than any seen was found.
    NewVersion {
        /// Channel.
        channel: ChannelRef,
        /// Its sequence.
        sequence: u64,
    },
    /// Syncing a version started.
    SyncStarted {
        /// Channel.
        channel: ChannelRef,
        /// Sequence.
        sequence: u64,
    },
    /// Download progress of a channel.
    Progress {
        /// Channel.
        channel: ChannelRef,
        /// Content bytes on disk or verified.
        bytes_done: u64,
        /// Content bytes to get in this sync.
        bytes_total: u64,
        /// Blobs verified.
        blobs_done: usize,
        /// Blobs of this sync.
        blobs_total: usize,
        /// Peers connected.
        peers: usize,
        /// Bytes/s.
        rate: u64,
    },
    /// A file is complete and in place.
    FileCompleted {
        /// Channel.
        channel: ChannelRef,
        /// Path inside the save folder, `/`-separated.
        path: String,
    },
    /// A file the user changed was kept; the channel's new version of it was not written.
    LocalChangeKept {
        /// Channel.
        channel: ChannelRef,
        /// Path inside the save folder.
        path: String,
    },
    /// A version is complete on disk.
    Synced {
        /// Channel.
        channel: ChannelRef,
        /// Sequence.
        sequence: u64,
        /// Blobs fetched from peers for this version.
        blobs_fetched: usize,
        /// Blobs the store already held.
        blobs_present: usize,
        /// Files left untouched because they did not change.
        files_unchanged: usize,
    },
    /// A version was published.
    Published {
        /// Channel key.
        public_key: [u8; 32],
        /// Sub-channel.
        salt: String,
        /// Sequence.
        sequence: u64,
        /// Files.
        files_total: usize,
        /// Files reused unchanged.
        files_unchanged: usize,
    },
    /// Something failed.
    Error {
        /// The channel concerned, if any.
        channel: Option<ChannelRef>,
        /// Kind.
        kind: ErrorKind,
        /// Message (never holds keys).
        message: String,
    },
}

/// Why a session operation failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The channel reference or a setting is invalid.
    #[error("invalid channel: {0}")]
    InvalidChannel(String),
    /// Bad channel text.
    #[error(transparent)]
    ChannelRef(#[from] ChannelRefError),
    /// No such subscription or published channel.
    #[error("not found: {0}")]
    NotFound(String),
    /// Already subscribed.
    #[error("already subscribed to {0}")]
    AlreadySubscribed(String),
    /// A file to publish, or the save folder, is not usable.
    #[error("{path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The state folder failed or holds something unreadable.
    #[error("state folder: {0}")]
    State(String),
    /// DHT, peers, blob store, manifest (see [`SessionError::kind`]).
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// The DHT failed.
    #[error("DHT: {0}")]
    Dht(#[from] crate::dht::DhtError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] crate::blob::StoreError),
    /// Ingest failed.
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    /// A download failed.
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    /// A file outside the store failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The read key is missing or wrong.
    #[error("the channel is private and the read key is missing or does not open it")]
    WrongReadKey,
    /// The session has stopped.
    #[error("the session has stopped")]
    Stopped,
    /// The publish was cancelled (its future dropped) before it was done.
    #[error("cancelled")]
    Cancelled,
    /// A task died.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::state_file::StateFileError> for SessionError {
    fn from(e: crate::state_file::StateFileError) -> Self {
        SessionError::State(e.to_string())
    }
}

impl From<tokio::task::JoinError> for SessionError {
    fn from(e: tokio::task::JoinError) -> Self {
        SessionError::Internal(e.to_string())
    }
}

impl SessionError {
    /// The kind, for UIs and the FFI.
    pub fn kind(&self) -> ErrorKind {
        use crate::node::NodeError as N;
        match self {
            SessionError::InvalidChannel(_)
            | SessionError::ChannelRef(_)
            | SessionError::AlreadySubscribed(_) => ErrorKind::InvalidChannel,
            SessionError::NotFound(_) => ErrorKind::NotFound,
            SessionError::BadPath { .. } | SessionError::Io { .. } => ErrorKind::Io,
            SessionError::State(_) | SessionError::Store(_) => ErrorKind::Storage,
            SessionError::WrongReadKey => ErrorKind::WrongReadKey,
            SessionError::Dht(e) => dht_kind(e),
            SessionError::Blob(_) => ErrorKind::Io,
            SessionError::Download(e) => download_kind(e),
            SessionError::Node(n) => match n {
                N::Download(e) => download_kind(e),
                N::Manifest(_) | N::DuplicateName { .. } => ErrorKind::BadManifest,
                N::Peer(_) => ErrorKind::Network,
                N::Dht(e) => dht_kind(e),
                N::Store(_) | N::State { .. } => ErrorKind::Storage,
                N::Blob(_) | N::Io { .. } | N::NoFiles => ErrorKind::Io,
                _ => ErrorKind::Internal,
            },
            SessionError::Stopped | SessionError::Cancelled | SessionError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }
}

fn dht_kind(e: &crate::dht::DhtError) -> ErrorKind {
    use crate::dht::DhtError as D;
    match e {
        D::NotFound => ErrorKind::NotFound,
        D::State { .. } => ErrorKind::Storage,
        _ => ErrorKind::Network,
    }
}

fn download_kind(e: &crate::download::DownloadError) -> ErrorKind {
    use crate::download::DownloadError as D;
    match e {
        D::ReadKeyRequired | D::WrongReadKey => ErrorKind::WrongReadKey,
        D::Manifest(_) | D::DuplicateName { .. } | D::ConflictingJobs { .. } => {
            ErrorKind::BadManifest
        }
        D::Unavailable { .. } => ErrorKind::Network,
        D::Store(_) => ErrorKind::Storage,
        D::DestinationExists { .. } | D::Blob(_) | D::Io { .. } => ErrorKind::Io,
        _ => ErrorKind::Internal,
    }
}
