//! [`DhtClient`]: manifests as BEP 44 records and blob discovery (BEP 5) on `mainline`.
//!
//! `mainline` runs its own actor thread; its async API ([`mainline::async_dht::AsyncDht`]) is
//! runtime-agnostic, so its futures are awaited directly on the caller's tokio runtime.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use mainline::errors::{ConcurrencyError, PutMutableError, PutQueryError};
use mainline::{async_dht::AsyncDht, Dht, Id};

use crate::blob::{BlobStore, StoreError};
use crate::dht::bep44::{salt_option, Bep44Error, MutableRecord, MAX_VALUE_LEN};
use crate::dht::manifest_glue::check_manifest;
use crate::dht::parts::fetch_manifest;
use crate::dht::record::{decode_value, PartError, PointerRecord, RecordError, RecordValue};
use crate::id::BlobId;
use crate::identity::Identity;
use crate::manifest::{ManifestError, SignedManifest};

/// Part announces in flight at once when a pointer record is put.
const ANNOUNCE_CONCURRENCY: usize = 8;

/// The public Mainline bootstrap routers, used when no bootstrap node is given.
pub const DEFAULT_BOOTSTRAP: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// Why a DHT operation failed. Every refusal whose cause is known has its own variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The UDP socket could not be bound.
    #[error("cannot start the DHT node on {addr}")]
    Bind {
        /// Requested address.
        addr: SocketAddrV4,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A bootstrap address not of the form `HOST:PORT` (IPv4 or a name).
    #[error("bad bootstrap address {0:?} (expected HOST:PORT, IPv4)")]
    BadBootstrap(String),
    /// The item breaks a BEP 44 rule (size, salt, signature).
    #[error(transparent)]
    Bep44(#[from] Bep44Error),
    /// The record value is malformed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A manifest too large for an inline record, and no blob store/port to serve its parts.
    #[error("manifest of {len} bytes does not fit in one DHT record ({MAX_VALUE_LEN} bytes); it must be published as a pointer record, which needs a blob store for its parts and the port of the server that serves them")]
    NeedsParts {
        /// The manifest's size.
        len: usize,
    },
    /// The manifest is not signed by the identity publishing it.
    #[error("the manifest's publicKey is not the publishing identity's key")]
    KeyMismatch,
    /// The manifest inside a record is invalid.
    #[error("invalid manifest")]
    InvalidManifest(#[source] ManifestError),
    /// The manifest inside a record does not match the record.
    #[error("the manifest's {field} differs from the record's")]
    RecordMismatch {
        /// `publicKey` or `sequence`.
        field: &'static str,
    },
    /// The nodes hold a higher sequence number (BEP 44 error 302).
    #[error("sequence {seq} is lower than the one already stored (302)")]
    LowerSeq {
        /// The refused sequence number.
        seq: u64,
    },
    /// The stored sequence is not the expected `cas` (BEP 44 error 301).
    #[error("compare-and-swap failed: the stored sequence is not {cas} (301)")]
    CasMismatch {
        /// The expected sequence.
        cas: u64,
    },
    /// Another put for the same record is still in flight without a matching `cas`.
    #[error("another put of this record is in flight; retry with its sequence as cas")]
    ConflictRisk,
    /// No DHT node is known near the target (empty routing table: bootstrap failed).
    #[error("no DHT nodes found near the target (bootstrap failed?)")]
    NoNodes,
    /// The put reached nodes but none stored it and none said why.
    #[error("no DHT node stored the item (all requests timed out)")]
    NotStored,
    /// Nodes refused the put with a BEP 44 error.
    #[error("DHT nodes refused the item: {code} {description}")]
    Rejected {
        /// KRPC error code.
        code: i32,
        /// Its description.
        description: String,
    },
    /// No item was found for the key and salt.
    #[error("no record found for this key and salt")]
    NotFound,
    /// No DHT node ever answered: the bootstrap nodes are unreachable (or none were given), so
    /// nothing could be looked up or stored.
    #[error("no DHT node answered at {}", bootstrap_list(.bootstrap))]
    NoNodeAnswered {
        /// The bootstrap nodes that were tried (`HOST:PORT`).
        bootstrap: Vec<String>,
    },
    /// Items were found but none was valid; the reason is that of the most recent one.
    #[error("no valid record found")]
    NoValidRecord(#[source] Box<DhtError>),
    /// Only records older than one already seen were found.
    #[error("only sequence {found} found, lower than sequence {seen} already seen")]
    Stale {
        /// Best sequence found.
        found: u64,
        /// Sequence seen before.
        seen: u64,
    },
    /// A pointer record was found but no part fetcher is configured.
    #[error("the record points to manifest parts but no part fetcher is configured")]
    NoFetcher,
    /// A manifest part could not be fetched from any peer.
    #[error("manifest part {id}: {reason}")]
    PartUnavailable {
        /// The part.
        id: BlobId,
        /// Why.
        reason: String,
    },
    /// Fetched parts do not make up the announced manifest.
    #[error(transparent)]
    Parts(#[from] PartError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A background task (an announce) panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The state folder could not be read or written.
    #[error("DHT state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn bootstrap_list(nodes: &[String]) -> String {
    if nodes.is_empty() {
        "(no bootstrap node given)".into()
    } else {
        nodes.join(", ")
    }
}

/// Configuration of a [`DhtClient`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DhtConfig {
    /// Bootstrap nodes (`HOST:PORT`). Defaults to [`DEFAULT_BOOTSTRAP`]; empty means none.
    pub bootstrap: Vec<String>,
    /// Address to bind the UDP socket to. Defaults to 0.0.0.0.
    pub bind_address: Ipv4Addr,
    /// UDP port; 0 (the default) picks any free port. Never 6881 unless asked.
    pub port: u16,
    /// Answer other nodes' requests. Off by default: on the real DHT our node is a client
    /// (PROTOCOL.md 4.1); local testnets made only of our nodes turn it on.
    pub server_mode: bool,
    /// How long to wait for one node's answer.
    pub request_timeout: Duration,
    /// Folder where the highest sequence seen per (key, salt) is remembered across restarts.
    pub state_dir: Option<PathBuf>,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            bind_address: Ipv4Addr::UNSPECIFIED,
            port: 0,
            server_mode: false,
            request_timeout: mainline::DEFAULT_REQUEST_TIMEOUT,
            state_dir: None,
        }
    }
}

impl DhtConfig {
    /// A configuration for a loopback network: binds 127.0.0.1 on any port, with `bootstrap`.
    pub fn local(bootstrap: &[String]) -> Self {
        Self {
            bootstrap: bootstrap.to_vec(),
            bind_address: Ipv4Addr::LOCALHOST,
            ..Self::default()
        }
    }
}

setters!(DhtConfig {
    bootstrap: Vec<String>,
    bind_address: Ipv4Addr,
    port: u16,
    server_mode: bool,
    request_timeout: Duration,
    state_dir: Option<PathBuf>,
});

/// Why a part fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// A boxed fetch future.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + 'a>>;

/// Fetches a blob or manifest part by id from some peers (the transport's fetcher in practice).
/// The returned bytes are checked against the id by the caller.
pub trait PartFetcher: Send + Sync {
    /// Fetch `id` from one of `peers`.
    fn fetch<'a>(&'a self, id: BlobId, peers: &'a [SocketAddr]) -> FetchFuture<'a>;
}

/// A [`PartFetcher`] that reads a local blob store and ignores the peers: for parts this
/// process already holds (its own channels, a shared serve folder).
#[derive(Debug, Clone)]
pub struct StoreFetcher(pub BlobStore);

impl PartFetcher for StoreFetcher {
    fn fetch<'a>(&'a self, id: BlobId, _peers: &'a [SocketAddr]) -> FetchFuture<'a> {
        Box::pin(async move {
            match self.0.get_verified(&id) {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(FetchError("not in the local store".into())),
                Err(e) => Err(FetchError(crate::error::chain(&e))),
            }
        })
    }
}

/// Where the parts of a manifest too large for one record go.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PartsTarget<'a> {
    /// The store that the blob server serves.
    pub store: &'a BlobStore,
    /// The TCP port of that server, announced for each part.
    pub port: u16,
}

impl<'a> PartsTarget<'a> {
    /// Parts go into `store`, served at TCP `port`.
    pub fn new(store: &'a BlobStore, port: u16) -> Self {
        Self { store, port }
    }
}

/// Options of [`DhtClient::put_manifest`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct PutOptions<'a> {
    /// Sub-channel name; empty for none.
    pub salt: &'a [u8],
    /// Compare-and-swap: store only if the nodes hold this sequence.
    pub cas: Option<u64>,
    /// Needed when the manifest does not fit inline.
    pub parts: Option<PartsTarget<'a>>,
}

setters!(PutOptions<'a> {
    salt: &'a [u8],
    cas: Option<u64>,
    parts: Option<PartsTarget<'a>>,
});

/// How a manifest was published.
#[derive(Clone, PartialEq, Eq)]
pub struct PutReport {
    /// The record's DHT target.
    pub target: [u8; 20],
    /// How many nodes acknowledged the record.
    pub stored_at: u32,
    /// The parts of a pointer record (empty for an inline record).
    pub parts: Vec<BlobId>,
}

impl std::fmt::Debug for PutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            target,
            stored_at,
            parts,
        } = self;
        f.debug_struct("PutReport")
            .field("target", &crate::id::HexDebug(target))
            .field("stored_at", stored_at)
            .field("parts", parts)
            .finish()
    }
}

type SeenKey = ([u8; 32], Vec<u8>);

/// A DHT node (client mode by default) that publishes and reads manifests and finds blobs.
/// Cloning shares the node.
#[derive(Clone)]
pub struct DhtClient {
    dht: AsyncDht,
    fetcher: Option<Arc<dyn PartFetcher>>,
    seen: Arc<Mutex<HashMap<SeenKey, u64>>>,
    state_file: Option<PathBuf>,
    // Serializes state-file writes; each writer snapshots under it, so the file never goes back.
    save_lock: Arc<Mutex<()>>,
    hints: Arc<Mutex<HintRegistry>>,
    bootstrap: Arc<Vec<String>>,
}

/// Where gossiped sequences go: the live subscriptions of each key.
type HintRegistry = HashMap<[u8; 32], Vec<tokio::sync::mpsc::UnboundedSender<u64>>>;

impl std::fmt::Debug for DhtClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtClient")
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

const STATE_FILE: &str = "dht-seen.json";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned map is still a valid map: keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn seen_key_text(key: &SeenKey) -> String {
    format!("{}:{}", hex::encode(key.0), hex::encode(&key.1))
}

fn parse_seen_key(text: &str) -> Option<SeenKey> {
    let (k, s) = text.split_once(':')?;
    let key = crate::id::decode_hex_array::<32>(k).ok()?;
    let salt = crate::id::decode_hex_vec(s).ok()?;
    Some((key, salt))
}

fn load_state(path: &Path) -> Result<HashMap<SeenKey, u64>, DhtError> {
    let err = |reason: String| DhtError::State {
        path: path.to_owned(),
        reason,
    };
    let Some(bytes) = crate::state_file::read(path).map_err(|e| err(e.to_string()))? else {
        return Ok(HashMap::new());
    };
    let map: HashMap<String, u64> =
        serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    map.into_iter()
        .map(|(k, v)| {
            parse_seen_key(&k)
                .map(|key| (key, v))
                .ok_or_else(|| err(format!("bad entry {k:?}")))
        })
        .collect()
}

fn save_state(path: &Path, seen: &HashMap<SeenKey, u64>) -> Result<(), DhtError> {
    let map: std::collections::BTreeMap<String, u64> =
        seen.iter().map(|(k, v)| (seen_key_text(k), *v)).collect();
    let text = serde_json::to_vec(&map).map_err(|e| DhtError::State {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    crate::state_file::write(path, &text).map_err(|e| DhtError::State {
        path: path.to_owned(),
        reason: e.reason(),
    })
}

/// Check the `HOST:PORT` form only: names are resolved by `mainline` when it bootstraps (an
/// unreachable default router must not stop a node that has other ways in).
fn check_bootstrap(nodes: &[String]) -> Result<Vec<String>, DhtError> {
    for n in nodes {
        let ok = match n.rsplit_once(':') {
            Some((host, port)) => {
                !host.is_empty() && !host.contains([':', '[', ']']) && port.parse::<u16>().is_ok()
            }
            None => false,
        };
        if !ok {
            return Err(DhtError::BadBootstrap(n.clone()));
        }
    }
    Ok(nodes.to_vec())
}

fn map_put_error(e: PutMutableError, seq: u64, cas: Option<u64>) -> DhtError {
    match e {
        PutMutableError::Concurrency(ConcurrencyError::CasFailed) => DhtError::CasMismatch {
            cas: cas.unwrap_or_default(),
        },
        PutMutableError::Concurrency(ConcurrencyError::NotMostRecent) => DhtError::LowerSeq { seq },
        PutMutableError::Concurrency(ConcurrencyError::ConflictRisk) => DhtError::ConflictRisk,
        PutMutableError::Query(q) => map_query_error(q),
    }
}

fn map_query_error(e: PutQueryError) -> DhtError {
    match e {
        PutQueryError::NoClosestNodes => DhtError::NoNodes,
        PutQueryError::Timeout => DhtError::NotStored,
        PutQueryError::ErrorResponse(e) => DhtError::Rejected {
            code: e.code,
            description: e.description,
        },
    }
}

impl DhtClient {
    /// Start a node with `config`. Binds the socket now; bootstrapping goes on in the background
    /// (see [`DhtClient::bootstrapped`]).
    pub fn start(config: &DhtConfig) -> Result<Self, DhtError> {
        // State first: a bad state folder must not leave a node running.
        let (seen, state_file) = match &config.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| DhtError::State {
                    path: dir.clone(),
                    reason: e.to_string(),
                })?;
                let file = dir.join(STATE_FILE);
                (load_state(&file)?, Some(file))
            }
            None => (HashMap::new(), None),
        };
        let mut builder = Dht::builder();
        let bootstrap = check_bootstrap(&config.bootstrap)?;
        if bootstrap.is_empty() {
            builder.no_bootstrap();
        } else {
            builder.bootstrap(&bootstrap);
        }
        builder
            .bind_address(config.bind_address)
            .port(config.port)
            .request_timeout(config.request_timeout);
        if config.server_mode {
            builder.server_mode();
        }
        let dht = builder.build().map_err(|source| DhtError::Bind {
            addr: SocketAddrV4::new(config.bind_address, config.port),
            source,
        })?;
        Ok(Self {
            dht: dht.as_async(),
            fetcher: None,
            seen: Arc::new(Mutex::new(seen)),
            state_file,
            save_lock: Arc::default(),
            hints: Arc::default(),
            bootstrap: Arc::new(bootstrap),
        })
    }

    /// Use `fetcher` to fetch the parts of pointer records.
    pub fn with_part_fetcher(mut self, fetcher: Arc<dyn PartFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The UDP address the node listens on.
    pub async fn local_addr(&self) -> SocketAddrV4 {
        self.dht.info().await.local_addr()
    }

    /// Wait for the bootstrap lookup; true when some node answered.
    pub async fn bootstrapped(&self) -> bool {
        self.dht.bootstrapped().await
    }

    /// How many nodes this node's routing table holds: nodes that answered it (0 when no
    /// bootstrap node ever did).
    pub async fn known_nodes(&self) -> usize {
        self.dht.to_bootstrap().await.len()
    }

    /// `error`, unless no node ever answered: then [`DhtError::NoNodeAnswered`], which says why.
    async fn or_unreachable(&self, error: DhtError) -> DhtError {
        if self.known_nodes().await == 0 {
            DhtError::NoNodeAnswered {
                bootstrap: self.bootstrap.to_vec(),
            }
        } else {
            error
        }
    }

    /// This node's DHT id.
    pub async fn node_id(&self) -> [u8; 20] {
        *self.dht.info().await.id().as_bytes()
    }

    /// The most recent record the DHT holds now for `(public_key, salt)`, its signature
    /// checked but its value not decoded (for tools and tests that look at the raw record;
    /// readers use [`DhtClient::get_manifest`]).
    pub async fn latest_record(&self, public_key: &[u8; 32], salt: &[u8]) -> Option<MutableRecord> {
        let item = self
            .dht
            .get_mutable_most_recent(public_key, salt_option(salt))
            .await?;
        MutableRecord::from_mainline(&item).ok()
    }

    /// The peers that announced `blob` (one BEP 5 lookup), batch by batch as nodes answer, so
    /// the first peers need not wait for the slowest node.
    pub fn blob_peers(
        &self,
        blob: &BlobId,
    ) -> impl futures_lite::Stream<Item = Vec<SocketAddr>> + Send + 'static {
        self.dht
            .get_peers(Id::from(blob.info_hash()))
            .map(|batch| batch.into_iter().map(SocketAddr::V4).collect())
    }

    /// The highest sequence seen (and reported) for `(public_key, salt)`.
    pub fn seen_sequence(&self, public_key: &[u8; 32], salt: &[u8]) -> Option<u64> {
        lock(&self.seen).get(&(*public_key, salt.to_vec())).copied()
    }

    pub(crate) fn register_hints(
        &self,
        public_key: [u8; 32],
        sender: tokio::sync::mpsc::UnboundedSender<u64>,
    ) {
        lock(&self.hints)
            .entry(public_key)
            .or_default()
            .push(sender);
    }

    pub(crate) fn send_hints(&self, public_key: &[u8; 32], sequence: u64) {
        let mut hints = lock(&self.hints);
        if let Some(senders) = hints.get_mut(public_key) {
            // Ended subscriptions drop out here.
            senders.retain(|s| s.send(sequence).is_ok());
            if senders.is_empty() {
                hints.remove(public_key);
            }
        }
    }

    async fn note_seen(
        &self,
        public_key: &[u8; 32],
        salt: &[u8],
        seq: u64,
    ) -> Result<(), DhtError> {
        {
            let mut seen = lock(&self.seen);
            let entry = seen.entry((*public_key, salt.to_vec())).or_insert(0);
            if *entry >= seq {
                return Ok(());
            }
            *entry = seq;
        }
        let Some(path) = self.state_file.clone() else {
            return Ok(());
        };
        // fsync belongs on a blocking thread, never on an async worker.
        let (seen, save_lock) = (self.seen.clone(), self.save_lock.clone());
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = lock(&save_lock);
            let snapshot = lock(&seen).clone();
            save_state(&p, &snapshot)
        })
        .await
        .map_err(|e| DhtError::State {
            path,
            reason: e.to_string(),
        })?
    }

    /// Put an already signed record (the gateway's relay, or a manifest record).
    pub async fn put_record(
        &self,
        record: &MutableRecord,
        cas: Option<u64>,
    ) -> Result<mainline::PutOutcome, DhtError> {
        let seq = u64::try_from(record.seq()).map_err(|_| Bep44Error::NegativeSeq(record.seq()))?;
        let cas_i64 = match cas {
            Some(c) => Some(i64::try_from(c).map_err(|_| DhtError::CasMismatch { cas: c })?),
            None => None,
        };
        match self.dht.put_mutable(record.to_mainline(), cas_i64).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let error = map_put_error(e, seq, cas);
                Err(match error {
                    DhtError::NoNodes | DhtError::NotStored => self.or_unreachable(error).await,
                    other => other,
                })
            }
        }
    }

    /// Publish `manifest` under `identity`'s key (and `opts.salt`): inline when it fits in one
    /// record, else as a pointer record whose parts go into `opts.parts.store` and are announced
    /// at `opts.parts.port`.
    pub async fn put_manifest(
        &self,
        identity: &Identity,
        manifest: &SignedManifest,
        opts: &PutOptions<'_>,
    ) -> Result<PutReport, DhtError> {
        let key = identity.public_key_bytes();
        if manifest.public_key() != key {
            return Err(DhtError::KeyMismatch);
        }
        let seq = manifest.sequence();
        let seq_i64 = i64::try_from(seq).map_err(|_| RecordError::BadSequence(seq))?;
        let bytes = manifest.as_bytes();
        let (value, parts) = if bytes.len() <= MAX_VALUE_LEN {
            (bytes.to_vec(), Vec::new())
        } else {
            let target = opts
                .parts
                .ok_or(DhtError::NeedsParts { len: bytes.len() })?;
            let (pointer, parts) = PointerRecord::split(key, seq, bytes)?;
            for (id, part) in &parts {
                target.store.put(id, part)?;
            }
            let ids: Vec<BlobId> = parts.iter().map(|(id, _)| *id).collect();
            self.announce_parts(&ids, target.port).await?;
            (pointer.encode(), ids)
        };
        let record = MutableRecord::sign(identity, seq_i64, &value, opts.salt)?;
        let outcome = self.put_record(&record, opts.cas).await?;
        self.note_seen(&key, opts.salt, seq).await?;
        Ok(PutReport {
            target: record.target(),
            stored_at: outcome.stored_at,
            parts,
        })
    }

    /// The most recent valid manifest published under `public_key` (and `salt`). Never returns
    /// a lower sequence than one already returned (or published) for that key and salt.
    pub async fn get_manifest(
        &self,
        public_key: &[u8; 32],
        salt: &[u8],
    ) -> Result<SignedManifest, DhtError> {
        let mut items: Vec<mainline::MutableItem> = self
            .dht
            .get_mutable(public_key, salt_option(salt), None)
            .collect()
            .await;
        if items.is_empty() {
            return Err(self.or_unreachable(DhtError::NotFound).await);
        }
        // Most recent first; the same item comes from several nodes.
        items.sort_by(|a, b| b.seq().cmp(&a.seq()).then(b.value().cmp(a.value())));
        items.dedup_by(|a, b| a.seq() == b.seq() && a.value() == b.value());
        let seen = self.seen_sequence(public_key, salt);
        let mut first_error = None;
        for item in &items {
            match self.check_item(item, public_key, salt).await {
                Ok(manifest) => {
                    let seq = manifest.sequence();
                    if let Some(seen) = seen.filter(|s| *s > seq) {
                        return Err(DhtError::Stale { found: seq, seen });
                    }
                    self.note_seen(public_key, salt, seq).await?;
                    return Ok(manifest);
                }
                Err(e) => {
                    tracing::debug!(seq = item.seq(), error = %crate::error::ErrorChain(&e), "DHT record refused");
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(DhtError::NoValidRecord(Box::new(
            first_error.unwrap_or(DhtError::NotFound),
        )))
    }

    async fn check_item(
        &self,
        item: &mainline::MutableItem,
        public_key: &[u8; 32],
        salt: &[u8],
    ) -> Result<SignedManifest, DhtError> {
        let record = MutableRecord::from_mainline(item)?;
        if record.public_key() != public_key || record.salt() != salt {
            return Err(DhtError::RecordMismatch { field: "publicKey" });
        }
        let seq = u64::try_from(record.seq()).map_err(|_| Bep44Error::NegativeSeq(record.seq()))?;
        match decode_value(record.value())? {
            RecordValue::Inline(bytes) => check_manifest(&bytes, public_key, seq),
            RecordValue::Pointer(pointer) => {
                if pointer.public_key != *public_key {
                    return Err(DhtError::RecordMismatch { field: "publicKey" });
                }
                if pointer.sequence != seq {
                    return Err(DhtError::RecordMismatch { field: "sequence" });
                }
                let bytes = self.fetch_parts(&pointer).await?;
                check_manifest(&bytes, public_key, seq)
            }
        }
    }

    async fn fetch_parts(&self, pointer: &PointerRecord) -> Result<Vec<u8>, DhtError> {
        let fetcher = self.fetcher.as_ref().ok_or(DhtError::NoFetcher)?;
        fetch_manifest(pointer, fetcher.as_ref(), |id| async move {
            self.find_blob_peers(&id).await
        })
        .await
    }

    /// Announce every part at `port`, [`ANNOUNCE_CONCURRENCY`] at a time (a two-level record
    /// has hundreds of parts). Concurrent queries sometimes find no node on a busy network, so
    /// each failed announce is tried once more, alone; the first failure that persists is
    /// returned.
    async fn announce_parts(&self, ids: &[BlobId], port: u16) -> Result<(), DhtError> {
        let mut pending = ids.iter().copied();
        let mut running = tokio::task::JoinSet::new();
        let mut failed = Vec::new();
        loop {
            while running.len() < ANNOUNCE_CONCURRENCY {
                let Some(id) = pending.next() else { break };
                let dht = self.clone();
                running.spawn(async move { (id, dht.announce_blob(&id, port).await) });
            }
            match running.join_next().await {
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((id, Err(e)))) => {
                    tracing::debug!("announce of part {id} failed ({e}); trying again");
                    failed.push(id);
                }
                Some(Err(e)) => return Err(DhtError::Task(e.to_string())),
                None => break,
            }
        }
        for id in failed {
            self.announce_blob(&id, port).await?;
        }
        Ok(())
    }

    /// The highest sequence the DHT holds now for `(public_key, salt)`, unverified (for
    /// choosing a publisher's next sequence; readers use [`DhtClient::get_manifest`]).
    pub async fn latest_sequence(&self, public_key: &[u8; 32], salt: &[u8]) -> Option<u64> {
        self.dht
            .get_mutable_most_recent(public_key, salt_option(salt))
            .await
            .and_then(|item| u64::try_from(item.seq()).ok())
    }

    /// How many nodes the routing table holds (for status displays).
    pub async fn routing_nodes(&self) -> usize {
        self.dht.to_bootstrap().await.len()
    }

    /// Announce (BEP 5) that this host serves `blob` on TCP `port`.
    pub async fn announce_blob(&self, blob: &BlobId, port: u16) -> Result<(), DhtError> {
        match self
            .dht
            .announce_peer(Id::from(blob.info_hash()), Some(port))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.or_unreachable(map_query_error(e)).await),
        }
    }

    /// Peers that announced `blob`, deduplicated, in the order found.
    pub async fn find_blob_peers(&self, blob: &BlobId) -> Vec<SocketAddr> {
        let mut stream = self.dht.get_peers(Id::from(blob.info_hash()));
        let mut out: Vec<SocketAddr> = Vec::new();
        while let Some(batch) = stream.next().await {
            for peer in batch {
                let peer = SocketAddr::V4(peer);
                if !out.contains(&peer) {
                    out.push(peer);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        assert!(load_state(&path).unwrap().is_empty());
        let mut seen = HashMap::new();
        seen.insert(([1; 32], Vec::new()), 5);
        seen.insert(([1; 32], b"videos".to_vec()), 9);
        save_state(&path, &seen).unwrap();
        assert_eq!(load_state(&path).unwrap(), seen);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load_state(&path), Err(DhtError::State { .. })));
        std::fs::write(&path, br#"{"zz:00":1}"#).unwrap();
        assert!(matches!(load_state(&path), Err(DhtError::State { .. })));
    }

    #[test]
    fn config_refusals() {
        assert!(matches!(
            check_bootstrap(&["no-port".into()]),
            Err(DhtError::BadBootstrap(_))
        ));
        assert!(matches!(
            check_bootstrap(&["[::1]:6881".into()]),
            Err(DhtError::BadBootstrap(_))
        ));
        assert!(matches!(
            check_bootstrap(&["host:99999".into()]),
            Err(DhtError::BadBootstrap(_))
        ));
        assert!(check_bootstrap(&["router.example:6881".into(), "127.0.0.1:1".into()]).is_ok());
        let defaults = DhtConfig::default();
        assert_eq!(defaults.port, 0, "never 6881 by default");
        assert!(!defaults.server_mode, "client mode by default");
        assert_eq!(defaults.bootstrap.len(), DEFAULT_BOOTSTRAP.len());
        // A state folder that cannot be created is a typed error.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let cfg = DhtConfig {
            state_dir: Some(file.join("sub")),
            ..DhtConfig::local(&[])
        };
        assert!(matches!(
            DhtClient::start(&cfg),
            Err(DhtError::State { .. })
        ));
    }
}
