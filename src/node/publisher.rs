//! The publisher: files -> blobs -> signed manifest -> DHT record, plus serving and
//! announcing the blobs for as long as the channel is published.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use crate::blob::{ingest_file, BlobStore};
use crate::dht::{DhtClient, DhtError, PartsTarget, PutOptions, PutReport, RESEED_INTERVAL};
use crate::id::BlobId;
use crate::identity::Identity;
use crate::manifest::{
    create_manifest, create_private_manifest, Collection, FileEntry, ManifestContent, ReadKey,
    SignedManifest,
};
use crate::node::NodeError;
use crate::peer::{BlobServer, ServerConfig, ServerHandle};

/// Where the publisher remembers the last sequence it published per channel, inside the blob
/// folder (the server only serves names that are blob ids, so this file is never served).
const SEQ_STATE: &str = ".published-sequences.json";

/// Settings of a [`Seeding`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeedingOptions {
    /// The blob server's limits.
    pub server: ServerConfig,
    /// Time between two announces of every blob (BEP 5 peers expire after about 30 min).
    pub reannounce_interval: Duration,
    /// DHT announces in flight at once.
    pub announce_concurrency: usize,
}

impl Default for SeedingOptions {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            reannounce_interval: RESEED_INTERVAL,
            announce_concurrency: 16,
        }
    }
}

setters!(SeedingOptions {
    server: ServerConfig,
    reannounce_interval: Duration,
    announce_concurrency: usize,
});

/// Serving a set of blobs: a running blob server plus their announces in the DHT, repeated
/// periodically. Stop it with [`Seeding::shutdown`].
#[derive(Debug)]
pub struct Seeding {
    server: ServerHandle,
    ids: Arc<Mutex<HashSet<BlobId>>>,
    dht: DhtClient,
    concurrency: usize,
    // Re-announce rounds in which at least one announce succeeded.
    rounds: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Seeding {
    /// Serve `store` on `listen`, announce each of `ids` at the server's port (waiting for
    /// those announces), and re-announce them every [`SeedingOptions::reannounce_interval`].
    /// Fails when no announce succeeds.
    pub async fn start(
        store: BlobStore,
        ids: Vec<BlobId>,
        dht: DhtClient,
        listen: SocketAddr,
        opts: &SeedingOptions,
    ) -> Result<Self, NodeError> {
        let server = BlobServer::bind(listen, store, opts.server.clone())
            .await?
            .spawn()?;
        Self::start_on(server, ids, dht, opts).await
    }

    /// [`Seeding::start`] on a server already running (its store must hold `ids`); the
    /// server's settings in `opts` are not used.
    pub async fn start_on(
        server: ServerHandle,
        ids: Vec<BlobId>,
        dht: DhtClient,
        opts: &SeedingOptions,
    ) -> Result<Self, NodeError> {
        let port = server.local_addr().port();
        if let Err(e) = announce_all(&dht, &ids, port, opts.announce_concurrency, None).await {
            server.shutdown().await;
            return Err(e);
        }
        let ids = Arc::new(Mutex::new(ids.into_iter().collect::<HashSet<_>>()));
        let rounds = Arc::new(AtomicU64::new(0));
        let task = {
            let (ids, rounds, dht) = (ids.clone(), rounds.clone(), dht.clone());
            let interval = opts.reannounce_interval;
            let conc = opts.announce_concurrency;
            tokio::spawn(async move {
                let mut ticker = periodic(interval);
                loop {
                    ticker.tick().await;
                    let now: Vec<BlobId> = ids
                        .lock()
                        .map(|v| v.iter().copied().collect())
                        .unwrap_or_default();
                    match announce_all(&dht, &now, port, conc, None).await {
                        Ok(()) => {
                            rounds.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!("re-announce failed: {}", crate::error::ErrorChain(&e))
                        }
                    }
                }
            })
        };
        Ok(Self {
            server,
            ids,
            dht,
            concurrency: opts.announce_concurrency,
            rounds,
            task,
        })
    }

    /// Announce those of `ids` not announced yet (waiting for it) and re-announce them from
    /// now on (they must be in the served store). Returns how many were new; fails only when
    /// every new announce failed.
    pub async fn announce(&self, ids: &[BlobId]) -> Result<usize, NodeError> {
        self.announce_reporting(ids, None).await
    }

    /// [`Seeding::announce`], calling `progress(done, total)` once before the first announce
    /// and after each one finishes (succeeded or failed), `total` being the new ids; not
    /// called when none is new.
    pub async fn announce_reporting(
        &self,
        ids: &[BlobId],
        progress: Option<&AnnounceProgress>,
    ) -> Result<usize, NodeError> {
        let new: Vec<BlobId> = match self.ids.lock() {
            Ok(mut held) => ids.iter().copied().filter(|id| held.insert(*id)).collect(),
            Err(_) => Vec::new(),
        };
        let port = self.server.local_addr().port();
        announce_all(&self.dht, &new, port, self.concurrency, progress).await?;
        Ok(new.len())
    }

    /// How many distinct blobs are announced.
    pub fn announced(&self) -> usize {
        self.ids.lock().map_or(0, |ids| ids.len())
    }

    /// How many periodic re-announce rounds have succeeded so far (the first announce, made
    /// by [`Seeding::start`], is not counted).
    pub fn reannounced(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Also re-announce `more` from now on (they must be in the served store).
    pub fn add(&self, more: &[BlobId]) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.extend(more.iter().copied());
        }
    }

    /// The address the blob server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The blob server.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// Stop announcing and serving (connections are closed gracefully).
    pub async fn shutdown(self) {
        self.task.abort();
        self.server.shutdown().await;
    }
}

/// A ticker whose first tick is one `interval` from now (the work was just done), and which
/// delays rather than bursts after a slow round.
fn periodic(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Progress of announcing blobs: `(done, total)`, see [`Seeding::announce_reporting`].
pub type AnnounceProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Announce every id at `port`, `conc` at a time. Succeeds when at least one announce did
/// (or there was nothing to announce); else returns the first failure.
async fn announce_all(
    dht: &DhtClient,
    ids: &[BlobId],
    port: u16,
    conc: usize,
    progress: Option<&AnnounceProgress>,
) -> Result<(), NodeError> {
    let mut set = JoinSet::new();
    let mut next = ids.iter().copied();
    let mut ok = 0usize;
    let mut first_err: Option<DhtError> = None;
    let report = |done: usize| {
        if let (Some(p), false) = (progress, ids.is_empty()) {
            p(done, ids.len());
        }
    };
    // Before the first answer, which may take seconds: the total is known now.
    report(0);
    let mut done = 0usize;
    loop {
        while set.len() < conc.max(1) {
            let Some(id) = next.next() else { break };
            let dht = dht.clone();
            set.spawn(async move { dht.announce_blob(&id, port).await });
        }
        match set.join_next().await {
            Some(Ok(Ok(()))) => ok += 1,
            Some(Ok(Err(e))) => {
                tracing::debug!("announce failed: {}", crate::error::ErrorChain(&e));
                first_err.get_or_insert(e);
            }
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
        done += 1;
        report(done);
    }
    match first_err {
        Some(e) if ok == 0 => Err(e.into()),
        _ => Ok(()),
    }
}

/// Settings of [`publish_files`] / [`publish_entries`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Title of the manifest's one collection.
    pub title: String,
    /// Sub-channel name (BEP 44 salt); empty for none.
    pub salt: Vec<u8>,
    /// Publish a private manifest readable with this key.
    pub read_key: Option<ReadKey>,
    /// Time between two puts of the manifest record (BEP 44 items expire after about 2 h).
    pub republish_interval: Duration,
    /// Serving and announcing.
    pub seeding: SeedingOptions,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            title: "files".into(),
            salt: Vec::new(),
            read_key: None,
            republish_interval: Duration::from_secs(30 * 60),
            seeding: SeedingOptions::default(),
        }
    }
}

setters!(PublishOptions {
    title: String,
    salt: Vec<u8>,
    read_key: Option<ReadKey>,
    republish_interval: Duration,
    seeding: SeedingOptions,
});

/// A published channel version: the manifest, its record, and the seeding that serves it.
/// Stop it with [`Published::shutdown`].
#[derive(Debug)]
pub struct Published {
    manifest: SignedManifest,
    report: PutReport,
    blobs: Vec<BlobId>,
    seeding: Seeding,
    republisher: Republisher,
}

impl Published {
    /// The signed manifest.
    pub fn manifest(&self) -> &SignedManifest {
        &self.manifest
    }

    /// Its sequence number.
    pub fn sequence(&self) -> u64 {
        self.manifest.sequence()
    }

    /// How the record was stored (target, nodes, parts of a pointer record).
    pub fn put_report(&self) -> &PutReport {
        &self.report
    }

    /// The content blobs, in file order.
    pub fn blobs(&self) -> &[BlobId] {
        &self.blobs
    }

    /// The address of the blob server.
    pub fn local_addr(&self) -> SocketAddr {
        self.seeding.local_addr()
    }

    /// The blob server.
    pub fn server(&self) -> &ServerHandle {
        self.seeding.server()
    }

    /// How many periodic re-puts of the record have succeeded so far (BEP 44 items expire
    /// after about two hours unless put again).
    pub fn republished(&self) -> u64 {
        self.republisher.republished()
    }

    /// How many periodic re-announce rounds of the blobs have succeeded so far.
    pub fn reannounced(&self) -> u64 {
        self.seeding.reannounced()
    }

    /// Stop re-publishing, announcing and serving.
    pub async fn shutdown(self) {
        self.republisher.stop();
        self.seeding.shutdown().await;
    }
}

/// Ingest each file into `store` (streamed, one file after another). File names must be
/// distinct, since they are the names the files get on the downloader's side.
pub async fn ingest_files(
    files: &[PathBuf],
    store: &BlobStore,
) -> Result<Vec<FileEntry>, NodeError> {
    if files.is_empty() {
        return Err(NodeError::NoFiles);
    }
    let mut entries: Vec<FileEntry> = Vec::with_capacity(files.len());
    for path in files {
        let store = store.clone();
        let path = path.clone();
        let entry = tokio::task::spawn_blocking(move || ingest_file(&path, &store)).await??;
        if entries.iter().any(|e| e.name == entry.name) {
            return Err(NodeError::DuplicateName { name: entry.name });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Ingest `files` and publish them: see [`publish_entries`].
pub async fn publish_files(
    identity: &Identity,
    files: &[PathBuf],
    store: &BlobStore,
    dht: &DhtClient,
    listen: SocketAddr,
    opts: &PublishOptions,
) -> Result<Published, NodeError> {
    let entries = ingest_files(files, store).await?;
    publish_entries(identity, entries, store, dht, listen, opts).await
}

/// Publish files already in `store`: sign a manifest of `entries` with the next sequence
/// number ([`next_sequence`], above the last one this store published), serve the store on
/// `listen`, announce every blob, put the record (a pointer record with its parts when the
/// manifest is too large), and keep re-announcing and re-putting in the background.
pub async fn publish_entries(
    identity: &Identity,
    entries: Vec<FileEntry>,
    store: &BlobStore,
    dht: &DhtClient,
    listen: SocketAddr,
    opts: &PublishOptions,
) -> Result<Published, NodeError> {
    if entries.is_empty() {
        return Err(NodeError::NoFiles);
    }
    let blobs = entry_blobs(&entries);
    let public_key = identity.public_key_bytes();
    let log = store.dir().join(SEQ_STATE);
    let last = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || read_state(&log)).await??
    }
    .get(&state_key(&public_key, &opts.salt))
    .copied();
    let sequence = next_sequence(&public_key, &opts.salt, last, dht).await;
    let seeding = Seeding::start(
        store.clone(),
        blobs.clone(),
        dht.clone(),
        listen,
        &opts.seeding,
    )
    .await?;
    let port = seeding.local_addr().port();
    let version = ChannelVersion {
        title: &opts.title,
        salt: &opts.salt,
        read_key: opts.read_key.as_ref(),
        sequence,
    };
    let (manifest, report) = match put_version(identity, entries, &version, store, dht, port).await
    {
        Ok(r) => r,
        Err(e) => {
            seeding.shutdown().await;
            return Err(e);
        }
    };
    seeding.add(&report.parts);
    record_sequence(log, public_key, opts.salt.clone(), sequence).await?;
    let republisher = Republisher::spawn(
        identity.clone(),
        manifest.clone(),
        opts.salt.clone(),
        store.clone(),
        dht.clone(),
        port,
        opts.republish_interval,
    );
    Ok(Published {
        manifest,
        report,
        blobs,
        seeding,
        republisher,
    })
}

/// The distinct blobs of `entries`, in file order.
pub fn entry_blobs(entries: &[FileEntry]) -> Vec<BlobId> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .flat_map(|e| e.chunks.iter().map(|c| c.blob_id))
        .filter(|id| seen.insert(*id))
        .collect()
}

/// What a new version of a channel is, besides its files.
#[derive(Debug, Clone, Copy)]
pub struct ChannelVersion<'a> {
    /// Title of the manifest's one collection.
    pub title: &'a str,
    /// Sub-channel name (BEP 44 salt); empty for none.
    pub salt: &'a [u8],
    /// Publish a private manifest readable with this key.
    pub read_key: Option<&'a ReadKey>,
    /// Its sequence (see [`next_sequence`]).
    pub sequence: u64,
}

/// Sign a manifest of `entries` (blobs already in `store`) and put its record; the parts of a
/// large manifest go into `store`, announced at `port`. Serving and announcing the blobs is
/// the caller's.
pub async fn put_version(
    identity: &Identity,
    entries: Vec<FileEntry>,
    version: &ChannelVersion<'_>,
    store: &BlobStore,
    dht: &DhtClient,
    port: u16,
) -> Result<(SignedManifest, PutReport), NodeError> {
    if entries.is_empty() {
        return Err(NodeError::NoFiles);
    }
    let content = ManifestContent {
        collections: vec![Collection {
            title: version.title.to_owned(),
            items: entries,
        }],
        timestamp: now_ms(),
    };
    let manifest = match version.read_key {
        Some(key) => create_private_manifest(identity, version.sequence, &content, key)?,
        None => create_manifest(identity, version.sequence, &content)?,
    };
    let put = PutOptions {
        salt: version.salt,
        cas: None,
        parts: Some(PartsTarget { store, port }),
    };
    let report = dht.put_manifest(identity, &manifest, &put).await?;
    Ok((manifest, report))
}

/// Keeps a published record alive: puts it again every interval (BEP 44 items expire after
/// about two hours). Dropping it (or [`Republisher::stop`]) stops.
#[derive(Debug)]
pub struct Republisher {
    task: JoinHandle<()>,
    reputs: Arc<AtomicU64>,
}

impl Republisher {
    /// Re-put `manifest` (same sequence, same value: nodes refresh its lifetime) every
    /// `interval`, its parts (if any) stored in `store` and served at `port`.
    pub fn spawn(
        identity: Identity,
        manifest: SignedManifest,
        salt: Vec<u8>,
        store: BlobStore,
        dht: DhtClient,
        port: u16,
        interval: Duration,
    ) -> Self {
        let reputs = Arc::new(AtomicU64::new(0));
        let count = reputs.clone();
        let task = tokio::spawn(async move {
            let mut ticker = periodic(interval);
            loop {
                ticker.tick().await;
                let put = PutOptions {
                    salt: &salt,
                    cas: None,
                    parts: Some(PartsTarget {
                        store: &store,
                        port,
                    }),
                };
                match dht.put_manifest(&identity, &manifest, &put).await {
                    Ok(r) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(nodes = r.stored_at, "manifest re-put");
                    }
                    Err(e) => {
                        tracing::warn!("manifest re-put failed: {}", crate::error::ErrorChain(&e))
                    }
                }
            }
        });
        Self { task, reputs }
    }

    /// Successful periodic re-puts so far.
    pub fn republished(&self) -> u64 {
        self.reputs.load(Ordering::Relaxed)
    }

    /// Stop re-putting.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Republisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn state_key(public_key: &[u8; 32], salt: &[u8]) -> String {
    format!("{}:{}", hex::encode(public_key), hex::encode(salt))
}

fn read_state(path: &Path) -> Result<BTreeMap<String, u64>, NodeError> {
    let err = |reason: String| NodeError::State {
        path: path.to_owned(),
        reason,
    };
    match crate::state_file::read(path).map_err(|e| err(e.to_string()))? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
        None => Ok(BTreeMap::new()),
    }
}

async fn record_sequence(
    path: PathBuf,
    public_key: [u8; 32],
    salt: Vec<u8>,
    sequence: u64,
) -> Result<(), NodeError> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let mut state = read_state(&p)?;
        let entry = state.entry(state_key(&public_key, &salt)).or_insert(0);
        *entry = (*entry).max(sequence);
        let text = serde_json::to_vec(&state).map_err(|e| NodeError::State {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        crate::state_file::write(&p, &text).map_err(|e| NodeError::State {
            path: p.clone(),
            reason: e.reason(),
        })
    })
    .await?
}

/// The one sequence policy of every publisher (CLI, session, FFI): the current time in
/// milliseconds (as the reference client does), but always above `last_published` (what this
/// publisher's state records), the highest the DHT client has seen, and the one the DHT holds
/// now, so a clock that went back never makes nodes refuse (302) or keep the old version.
pub async fn next_sequence(
    public_key: &[u8; 32],
    salt: &[u8],
    last_published: Option<u64>,
    dht: &DhtClient,
) -> u64 {
    let seen = dht.seen_sequence(public_key, salt);
    let current = dht.latest_sequence(public_key, salt).await;
    sequence_above([last_published, seen, current])
}

/// Now in milliseconds, or one above the highest of `known`, whichever is larger (at least 1).
pub fn sequence_above(known: [Option<u64>; 3]) -> u64 {
    let above = known
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |s| s.saturating_add(1));
    now_ms().max(above).max(1)
}
