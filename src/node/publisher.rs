//! The publisher: files -> blobs -> signed manifest -> DHT record, plus serving and
//! announcing the blobs for as long as the channel is published.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use crate::blob::{ingest_file, BlobStore};
use crate::dht::bep44::salt_option;
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
    ids: Arc<Mutex<Vec<BlobId>>>,
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
        let port = server.local_addr().port();
        if let Err(e) = announce_all(&dht, &ids, port, opts.announce_concurrency).await {
            server.shutdown().await;
            return Err(e);
        }
        let ids = Arc::new(Mutex::new(ids));
        let rounds = Arc::new(AtomicU64::new(0));
        let task = {
            let (ids, rounds) = (ids.clone(), rounds.clone());
            let interval = opts.reannounce_interval;
            let conc = opts.announce_concurrency;
            tokio::spawn(async move {
                let mut ticker = periodic(interval);
                loop {
                    ticker.tick().await;
                    let now: Vec<BlobId> = ids.lock().map(|v| v.clone()).unwrap_or_default();
                    match announce_all(&dht, &now, port, conc).await {
                        Ok(()) => {
                            rounds.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!("re-announce failed: {e}"),
                    }
                }
            })
        };
        Ok(Self {
            server,
            ids,
            rounds,
            task,
        })
    }

    /// How many periodic re-announce rounds have succeeded so far (the first announce, made
    /// by [`Seeding::start`], is not counted).
    pub fn reannounced(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Also re-announce `more` from now on (they must be in the served store).
    pub fn add(&self, more: &[BlobId]) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.extend_from_slice(more);
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

/// Announce every id at `port`, `conc` at a time. Succeeds when at least one announce did
/// (or there was nothing to announce); else returns the first failure.
async fn announce_all(
    dht: &DhtClient,
    ids: &[BlobId],
    port: u16,
    conc: usize,
) -> Result<(), NodeError> {
    let mut set = JoinSet::new();
    let mut next = ids.iter().copied();
    let mut ok = 0usize;
    let mut first_err: Option<DhtError> = None;
    loop {
        while set.len() < conc.max(1) {
            let Some(id) = next.next() else { break };
            let dht = dht.clone();
            set.spawn(async move { dht.announce_blob(&id, port).await });
        }
        match set.join_next().await {
            Some(Ok(Ok(()))) => ok += 1,
            Some(Ok(Err(e))) => {
                tracing::debug!("announce failed: {e}");
                first_err.get_or_insert(e);
            }
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
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
    republish: JoinHandle<()>,
    // Successful periodic re-puts of the record.
    reputs: Arc<AtomicU64>,
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
        self.reputs.load(Ordering::Relaxed)
    }

    /// How many periodic re-announce rounds of the blobs have succeeded so far.
    pub fn reannounced(&self) -> u64 {
        self.seeding.reannounced()
    }

    /// Stop re-publishing, announcing and serving.
    pub async fn shutdown(self) {
        self.republish.abort();
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
/// number ([`next_sequence`]), serve the store on `listen`, announce every blob, put the
/// record (a pointer record with its parts when the manifest is too large), and keep
/// re-announcing and re-putting in the background.
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
    let mut blobs = Vec::new();
    for e in &entries {
        for c in &e.chunks {
            if !blobs.contains(&c.blob_id) {
                blobs.push(c.blob_id);
            }
        }
    }
    let content = ManifestContent {
        collections: vec![Collection {
            title: opts.title.clone(),
            items: entries,
        }],
        timestamp: now_ms(),
    };
    let public_key = identity.public_key_bytes();
    let sequence = next_sequence(&public_key, &opts.salt, store, dht).await?;
    let manifest = match &opts.read_key {
        Some(key) => create_private_manifest(identity, sequence, &content, key)?,
        None => create_manifest(identity, sequence, &content)?,
    };
    let seeding = Seeding::start(
        store.clone(),
        blobs.clone(),
        dht.clone(),
        listen,
        &opts.seeding,
    )
    .await?;
    let port = seeding.local_addr().port();
    let put = PutOptions {
        salt: &opts.salt,
        cas: None,
        parts: Some(PartsTarget { store, port }),
    };
    let report = match dht.put_manifest(identity, &manifest, &put).await {
        Ok(r) => r,
        Err(e) => {
            seeding.shutdown().await;
            return Err(e.into());
        }
    };
    seeding.add(&report.parts);
    record_sequence(store, &public_key, &opts.salt, sequence)?;

    let reputs = Arc::new(AtomicU64::new(0));
    let republish = {
        let (identity, manifest, store, dht, reputs) = (
            identity.clone(),
            manifest.clone(),
            store.clone(),
            dht.clone(),
            reputs.clone(),
        );
        let salt = opts.salt.clone();
        let interval = opts.republish_interval;
        tokio::spawn(async move {
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
                // Same sequence, same value: nodes refresh the item's lifetime.
                match dht.put_manifest(&identity, &manifest, &put).await {
                    Ok(r) => {
                        reputs.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(nodes = r.stored_at, "manifest re-put");
                    }
                    Err(e) => tracing::warn!("manifest re-put failed: {e}"),
                }
            }
        })
    };
    Ok(Published {
        manifest,
        report,
        blobs,
        seeding,
        republish,
        reputs,
    })
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
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NodeError::State {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(NodeError::State {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

fn record_sequence(
    store: &BlobStore,
    public_key: &[u8; 32],
    salt: &[u8],
    sequence: u64,
) -> Result<(), NodeError> {
    let path = store.dir().join(SEQ_STATE);
    let err = |reason: String| NodeError::State {
        path: path.clone(),
        reason,
    };
    let mut state = read_state(&path)?;
    let entry = state.entry(state_key(public_key, salt)).or_insert(0);
    *entry = (*entry).max(sequence);
    let text = serde_json::to_vec(&state).map_err(|e| err(e.to_string()))?;
    // Write then rename: a crash never leaves a truncated record.
    let mut tmp = tempfile::NamedTempFile::new_in(store.dir()).map_err(|e| err(e.to_string()))?;
    tmp.write_all(&text).map_err(|e| err(e.to_string()))?;
    tmp.persist(&path).map_err(|e| err(e.error.to_string()))?;
    Ok(())
}

/// The sequence number for a new version of the channel `(public_key, salt)`: the current
/// time in milliseconds (as the reference client does), but always above the last one this
/// store published, the highest the DHT client has seen, and the one the DHT holds now, so a
/// clock that went back never makes nodes refuse (302) or keep the old version.
pub async fn next_sequence(
    public_key: &[u8; 32],
    salt: &[u8],
    store: &BlobStore,
    dht: &DhtClient,
) -> Result<u64, NodeError> {
    let local = read_state(&store.dir().join(SEQ_STATE))?
        .get(&state_key(public_key, salt))
        .copied();
    let seen = dht.seen_sequence(public_key, salt);
    let current = dht
        .mainline()
        .get_mutable_most_recent(public_key, salt_option(salt))
        .await
        .and_then(|item| u64::try_from(item.seq()).ok());
    let above = [local, seen, current]
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |s| s.saturating_add(1));
    Ok(now_ms().max(above).max(1))
}
