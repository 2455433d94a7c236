//! The downloader: every blob of every file of a manifest, from several peers at once.
//!
//! One coordinator owns the peer list; one worker per connected peer takes batches of needed
//! blobs from a shared queue and fetches them pipelined over one connection. Discovery (DHT
//! `get_peers` per blob, FIND_PEERS on each connected peer) runs alongside, so fetching
//! starts with the first peer found. A failed blob goes back to the front of the queue for
//! another peer; a peer that sends a blob whose hash is wrong is dropped for the rest of the
//! download. Memory stays bounded: each worker holds at most one reply being read and
//! [`WRITE_AHEAD`] being written (the rest wait in socket buffers).
//!
//! Each blob is hashed once: the fetcher checks a reply's SHA-256 as it arrives, and that
//! same in-memory blob is then written to the store (without hashing again) and decrypted
//! straight into its place in the output file ([`FileWriter`]), so the hot path never reads a
//! blob back. Blobs already in the store (resume) are read, hashed and decrypted once before
//! fetching; a damaged one is removed and fetched again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::blob::{
    check_entry, decrypt_hashed_in_place, destination, BlobError, BlobStore, StoreError,
};
use crate::dht::DhtClient;
use crate::id::BlobId;
use crate::manifest::BLOB_LEN;
use crate::manifest::{FileEntry, ManifestContent, ManifestError, ReadKey, SignedManifest};
use crate::node::NodeError;
use crate::peer::{BlobFetcher, FetcherOptions, PeerError};
use crate::transport::ConnectOptions;

/// Where progress goes: called from the download's tasks, so it must be cheap (push to a
/// queue, update a bar).
pub type EventFn = Arc<dyn Fn(&DownloadEvent) + Send + Sync>;

/// A snapshot of a download's progress. Bytes count file content (what the user gets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Content bytes verified so far (already present ones included).
    pub bytes_done: u64,
    /// Content bytes of every file.
    pub bytes_total: u64,
    /// Blobs verified and stored so far (already present ones included).
    pub blobs_done: usize,
    /// Distinct blobs of the manifest.
    pub blobs_total: usize,
    /// Peers connected now.
    pub peers_in_use: usize,
}

/// Something that happened during a download.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DownloadEvent {
    /// The plan: totals, and what the store already holds.
    Started(Progress),
    /// One blob verified and stored.
    BlobDone {
        /// The blob.
        blob: BlobId,
        /// The peer that sent it.
        peer: SocketAddr,
        /// Progress after it.
        progress: Progress,
    },
    /// A connection to a peer is established.
    PeerConnected(SocketAddr),
    /// A peer could not be reached or its connection ended; its blobs go to others.
    PeerLost {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A peer sent a blob that does not hash to its id: it is not used again.
    PeerDropped {
        /// The peer.
        peer: SocketAddr,
        /// The blob it got wrong.
        blob: BlobId,
    },
    /// A file is complete, verified and in place.
    FileDone {
        /// Where it was written.
        path: PathBuf,
    },
}

/// Settings of a [`Downloader`].
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Peers fetched from at once.
    pub max_peers: usize,
    /// REQUESTs in flight per peer.
    pub pipeline_depth: usize,
    /// Blobs a worker takes from the queue at a time.
    pub batch: usize,
    /// Time allowed to connect and complete the key exchange.
    pub connect_timeout: Duration,
    /// Time allowed for each reply.
    pub reply_timeout: Duration,
    /// DHT lookups in flight at once.
    pub lookup_concurrency: usize,
    /// Discovery rounds before giving up on blobs no connected peer has.
    pub rounds: usize,
    /// Pause before another discovery round.
    pub round_delay: Duration,
    /// Peers to try besides those discovered.
    pub peers: Vec<SocketAddr>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            max_peers: 8,
            pipeline_depth: 8,
            batch: 32,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            lookup_concurrency: 8,
            rounds: 3,
            round_delay: Duration::from_secs(1),
            peers: Vec::new(),
        }
    }
}

/// What a finished download did.
#[derive(Debug, Clone, Default)]
pub struct DownloadReport {
    /// The files written, in manifest order.
    pub files: Vec<PathBuf>,
    /// Content bytes of every file.
    pub bytes_total: u64,
    /// Distinct blobs of the manifest.
    pub blobs_total: usize,
    /// Blobs that were already in the store (not fetched).
    pub blobs_present: usize,
    /// Blobs fetched from peers.
    pub blobs_fetched: usize,
    /// Peers that delivered at least one blob, with how many.
    pub peers_used: Vec<(SocketAddr, usize)>,
    /// Peers dropped for sending a wrong blob.
    pub peers_dropped: Vec<SocketAddr>,
    /// Time spent fetching.
    pub fetch_time: Duration,
    /// Time spent outside fetching on getting files in place: reading, checking and
    /// decrypting the blobs already in the store (resume), and writing files that have no
    /// blob to fetch. Fetched blobs are decrypted into their files as they arrive, and a
    /// file is synced and renamed as soon as its last blob is in, so that counts as
    /// fetching.
    pub reassemble_time: Duration,
}

/// Downloads the files of manifests into a folder, through a blob store.
#[derive(Clone)]
pub struct Downloader {
    store: BlobStore,
    dht: Option<DhtClient>,
    opts: DownloadOptions,
    events: Option<EventFn>,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("store", &self.store.dir())
            .field("dht", &self.dht.is_some())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// Store writes a worker may have pending while it reads the next replies.
const WRITE_AHEAD: usize = 4;

/// How a worker ended.
enum WorkerEnd {
    /// Nothing left to fetch.
    Done,
    /// Could not connect, or the connection broke.
    Lost(String),
    /// Sent a wrong blob.
    Banned,
}

#[derive(Default)]
struct Sched {
    /// Needed and not in flight, front first.
    pending: VecDeque<BlobId>,
    /// Needed (pending or in flight).
    remaining: HashSet<BlobId>,
    in_flight: usize,
    /// Peers that answered Not Found (or refused) for a blob.
    failed_on: HashMap<BlobId, HashSet<SocketAddr>>,
    progress: Progress,
    /// Peers with a live worker (connecting or connected).
    running: HashSet<SocketAddr>,
    /// Peers connected now.
    connected: HashSet<SocketAddr>,
    delivered: HashMap<SocketAddr, usize>,
    banned: HashSet<SocketAddr>,
    fetched: usize,
    fatal: Option<NodeError>,
}

impl Sched {
    /// Up to `n` pending blobs that `peer` has not failed, marked in flight.
    fn take(&mut self, peer: SocketAddr, n: usize) -> Vec<BlobId> {
        let mut batch = Vec::new();
        let mut i = 0;
        while i < self.pending.len() && batch.len() < n {
            let id = self.pending[i];
            let failed = self.failed_on.get(&id).is_some_and(|s| s.contains(&peer));
            if failed {
                i += 1;
            } else if let Some(id) = self.pending.remove(i) {
                batch.push(id);
            }
        }
        self.in_flight += batch.len();
        batch
    }

    fn requeue(&mut self, id: BlobId) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Front: a blob that failed once is the most likely to hold up the end.
        self.pending.push_front(id);
    }

    fn finished(&self) -> bool {
        self.remaining.is_empty()
    }

    /// True when no running worker can make progress: nothing in flight, and every pending
    /// blob failed on every running peer (or no peer runs).
    fn stuck(&self) -> bool {
        self.in_flight == 0
            && !self.pending.is_empty()
            && self.pending.iter().all(|b| {
                let failed = self.failed_on.get(b);
                self.running
                    .iter()
                    .all(|p| failed.is_some_and(|s| s.contains(p)))
            })
    }
}

struct Shared {
    sched: Mutex<Sched>,
    wake: Notify,
    store: BlobStore,
    /// Where each verified blob's plaintext goes.
    writer: FileWriter,
    sizes: HashMap<BlobId, u64>,
    events: Option<EventFn>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        // A poisoned scheduler is still consistent enough to finish or fail cleanly.
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: DownloadEvent) {
        if let Some(f) = &self.events {
            f(&event);
        }
    }

    /// Any blob still pending (for FIND_PEERS).
    fn some_pending(&self) -> Option<BlobId> {
        self.lock().pending.front().copied()
    }

    fn set_connected(&self, peer: SocketAddr, connected: bool) {
        {
            let mut s = self.lock();
            if connected {
                s.connected.insert(peer);
            } else {
                s.connected.remove(&peer);
            }
            s.progress.peers_in_use = s.connected.len();
        }
        if connected {
            self.emit(DownloadEvent::PeerConnected(peer));
        }
    }

    fn requeue(&self, id: BlobId, failed_on: Option<SocketAddr>) {
        {
            let mut s = self.lock();
            if let Some(peer) = failed_on {
                s.failed_on.entry(id).or_default().insert(peer);
            }
            s.requeue(id);
        }
        self.wake.notify_waiters();
    }

    fn done(&self, id: BlobId, peer: SocketAddr) {
        let progress = {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.remaining.remove(&id) {
                s.progress.blobs_done += 1;
                s.progress.bytes_done += self.sizes.get(&id).copied().unwrap_or(0);
                s.fetched += 1;
                *s.delivered.entry(peer).or_default() += 1;
            }
            s.progress
        };
        if progress.blobs_done == progress.blobs_total {
            self.wake.notify_waiters();
        }
        self.emit(DownloadEvent::BlobDone {
            blob: id,
            peer,
            progress,
        });
    }

    /// Handle one reply of a worker's batch. A good blob is written to the store on a
    /// blocking thread while the worker goes on reading replies; `writes` bounds how many
    /// such writes (and so how many blobs in memory) a worker has pending.
    async fn on_result(
        self: &Arc<Self>,
        peer: SocketAddr,
        id: BlobId,
        result: Result<Vec<u8>, PeerError>,
        banned: &AtomicBool,
        writes: &Arc<Semaphore>,
    ) {
        if banned.load(Ordering::Relaxed) {
            // Nothing more is taken from a peer that lied once.
            self.requeue(id, Some(peer));
            return;
        }
        match result {
            Ok(bytes) => {
                let Ok(permit) = writes.clone().acquire_owned().await else {
                    self.requeue(id, None);
                    return;
                };
                let shared = self.clone();
                // The fetcher checked the hash of these very bytes: store them and decrypt
                // them into the output without hashing again. File writes block, so not on
                // the async workers.
                let write = {
                    let shared = shared.clone();
                    tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>, NodeError> {
                        shared.store.put_hashed(&id, &bytes)?;
                        Ok(shared.writer.place(&id, bytes)?)
                    })
                };
                tokio::spawn(async move {
                    match write.await {
                        Ok(Ok(completed)) => {
                            shared.done(id, peer);
                            for path in completed {
                                shared.emit(DownloadEvent::FileDone { path });
                            }
                        }
                        Ok(Err(e)) => {
                            shared.lock().fatal.get_or_insert(e);
                            shared.requeue(id, None);
                        }
                        Err(e) => {
                            shared.lock().fatal.get_or_insert(e.into());
                            shared.requeue(id, None);
                        }
                    }
                    drop(permit);
                });
            }
            Err(PeerError::HashMismatch { .. }) => {
                banned.store(true, Ordering::Relaxed);
                self.lock().banned.insert(peer);
                tracing::warn!(%peer, "blob {id}: wrong content; peer dropped for this download");
                self.emit(DownloadEvent::PeerDropped { peer, blob: id });
                self.requeue(id, Some(peer));
            }
            Err(e @ (PeerError::NotFound(_) | PeerError::Refused(_))) => {
                tracing::debug!(%peer, "blob {id}: {e}");
                self.requeue(id, Some(peer));
            }
            // The connection broke or stalled: the worker ends; others take the blob.
            Err(_) => self.requeue(id, None),
        }
    }
}

impl Downloader {
    /// A downloader writing blobs into `store`, finding peers through `dht` (when given) and
    /// [`DownloadOptions::peers`].
    pub fn new(store: BlobStore, dht: Option<DhtClient>, opts: DownloadOptions) -> Self {
        Self {
            store,
            dht,
            opts,
            events: None,
        }
    }

    /// Report progress to `events`.
    pub fn with_events(mut self, events: EventFn) -> Self {
        self.events = Some(events);
        self
    }

    /// Download every file of `manifest` into `out_dir` (created if needed), each at its
    /// validated path (its `path` folders, created below `out_dir` without following links,
    /// then its name), written atomically once every blob of it is verified. A private
    /// manifest needs its `read_key`. Blobs already in the store are not fetched again.
    pub async fn download(
        &self,
        manifest: &SignedManifest,
        read_key: Option<&ReadKey>,
        out_dir: &Path,
    ) -> Result<DownloadReport, NodeError> {
        let content = manifest_content(manifest, read_key)?;
        let files = distinct_files(&content)?;
        std::fs::create_dir_all(out_dir).map_err(|source| NodeError::Io {
            path: out_dir.to_owned(),
            source,
        })?;

        let mut order = Vec::new();
        let mut sizes = HashMap::new();
        for f in &files {
            for c in &f.chunks {
                if sizes.insert(c.blob_id, c.real_size).is_none() {
                    order.push(c.blob_id);
                }
            }
        }
        let bytes_total: u64 = sizes.values().sum();
        let (present, absent): (Vec<BlobId>, Vec<BlobId>) =
            order.iter().copied().partition(|id| self.holds(id));
        let mut report = DownloadReport {
            bytes_total,
            blobs_total: order.len(),
            blobs_present: present.len(),
            ..DownloadReport::default()
        };

        // Blobs already in the store go into place first (each hashed before it is
        // decrypted); a damaged one is removed and joins the blobs to fetch.
        let start = Instant::now();
        let writer = FileWriter::new(out_dir, files);
        let (writer, damaged, completed) = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                writer
                    .place_stored(&store, &present)
                    .map(|(damaged, completed)| (writer, damaged, completed))
            })
            .await??
        };
        report.reassemble_time += start.elapsed();
        let absent: HashSet<BlobId> = absent.into_iter().chain(damaged).collect();
        let todo: Vec<BlobId> = order
            .iter()
            .copied()
            .filter(|id| absent.contains(id))
            .collect();
        let done_bytes: u64 = order
            .iter()
            .filter(|id| !absent.contains(id))
            .filter_map(|id| sizes.get(id))
            .sum();
        let shared = Arc::new(Shared {
            sched: Mutex::new(Sched {
                progress: Progress {
                    bytes_done: done_bytes,
                    bytes_total,
                    blobs_done: order.len() - todo.len(),
                    blobs_total: order.len(),
                    peers_in_use: 0,
                },
                ..Sched::default()
            }),
            wake: Notify::new(),
            store: self.store.clone(),
            writer,
            sizes,
            events: self.events.clone(),
        });
        shared.emit(DownloadEvent::Started(shared.lock().progress));
        for path in completed {
            shared.emit(DownloadEvent::FileDone { path });
        }

        if !todo.is_empty() {
            let start = Instant::now();
            self.fetch_all(&shared, todo).await?;
            report.fetch_time += start.elapsed();
        }
        let written = shared.writer.finished()?;
        report.files = written;
        let s = shared.lock();
        report.blobs_fetched = s.fetched;
        report.peers_used = s.delivered.iter().map(|(p, n)| (*p, *n)).collect();
        report.peers_used.sort();
        report.peers_dropped = s.banned.iter().copied().collect();
        report.peers_dropped.sort();
        Ok(report)
    }

    /// True when the store holds a file of the right size for `id` (its hash is checked at
    /// reassembly, which fetches it again if it is corrupt).
    fn holds(&self, id: &BlobId) -> bool {
        std::fs::metadata(self.store.path_of(id)).is_ok_and(|m| m.len() == BLOB_LEN as u64)
    }

    /// Fetch every blob of `todo` into the store.
    async fn fetch_all(&self, shared: &Arc<Shared>, todo: Vec<BlobId>) -> Result<(), NodeError> {
        {
            let mut s = shared.lock();
            s.remaining = todo.iter().copied().collect();
            s.pending = todo.iter().copied().collect();
            s.in_flight = 0;
            s.failed_on.clear();
        }
        let (found_tx, mut found_rx) = mpsc::unbounded_channel::<Vec<SocketAddr>>();
        let mut known: HashSet<SocketAddr> = HashSet::new();
        let mut candidates: VecDeque<SocketAddr> = VecDeque::new();
        let mut tried: HashSet<SocketAddr> = HashSet::new();
        for p in &self.opts.peers {
            if known.insert(*p) {
                candidates.push_back(*p);
            }
        }
        let mut workers: JoinSet<(SocketAddr, WorkerEnd)> = JoinSet::new();
        let mut discovery = self.spawn_discovery(shared, &todo, found_tx.clone());
        let mut rounds = 1;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let outcome = loop {
            while workers.len() < self.opts.max_peers.max(1) {
                let Some(peer) = candidates.pop_front() else {
                    break;
                };
                if shared.lock().banned.contains(&peer) {
                    continue;
                }
                tried.insert(peer);
                shared.lock().running.insert(peer);
                workers.spawn(worker(
                    shared.clone(),
                    peer,
                    self.opts.clone(),
                    found_tx.clone(),
                ));
            }
            let (stuck, fatal, finished) = {
                let mut s = shared.lock();
                (s.stuck(), s.fatal.take(), s.finished())
            };
            if let Some(e) = fatal {
                break Err(e);
            }
            if finished {
                break Ok(());
            }
            let discovering = discovery.as_ref().is_some_and(|d| !d.is_finished());
            if stuck && candidates.is_empty() && !discovering {
                if rounds >= self.opts.rounds {
                    let s = shared.lock();
                    // Stuck implies a pending blob.
                    if let Some(first) = s.pending.front().copied() {
                        break Err(NodeError::Unavailable {
                            missing: s.remaining.len(),
                            first,
                            peers_tried: tried.len(),
                        });
                    }
                }
                rounds += 1;
                tokio::time::sleep(self.opts.round_delay).await;
                // Another round: peers may have come back or fetched what they lacked.
                let pending: Vec<BlobId> = {
                    let mut s = shared.lock();
                    s.failed_on.clear();
                    s.pending.iter().copied().collect()
                };
                let banned = shared.lock().banned.clone();
                known.retain(|p| banned.contains(p) || shared.lock().running.contains(p));
                for p in &self.opts.peers {
                    if known.insert(*p) {
                        candidates.push_back(*p);
                    }
                }
                discovery = self.spawn_discovery(shared, &pending, found_tx.clone());
                continue;
            }
            tokio::select! {
                Some(list) = found_rx.recv() => {
                    let banned = shared.lock().banned.clone();
                    for p in list {
                        if !banned.contains(&p) && known.insert(p) {
                            candidates.push_back(p);
                        }
                    }
                }
                Some(joined) = workers.join_next(), if !workers.is_empty() => {
                    if let Ok((peer, end)) = joined {
                        shared.lock().running.remove(&peer);
                        shared.set_connected(peer, false);
                        if let WorkerEnd::Lost(reason) = end {
                            shared.emit(DownloadEvent::PeerLost { peer, reason });
                        }
                    }
                }
                _ = tick.tick() => {}
            }
        };

        if let Some(d) = discovery {
            d.abort();
        }
        // Idle workers see the end and close their connections gracefully.
        shared.wake.notify_waiters();
        let closing = async {
            while let Some(joined) = workers.join_next().await {
                if let Ok((peer, _)) = joined {
                    shared.lock().running.remove(&peer);
                    shared.set_connected(peer, false);
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(3), closing)
            .await
            .is_err()
        {
            workers.shutdown().await;
        }
        {
            let mut s = shared.lock();
            s.running.clear();
            s.connected.clear();
            s.progress.peers_in_use = 0;
        }
        outcome
    }

    /// Look up the peers of every blob of `ids` in the DHT, a few lookups at a time, skipping
    /// blobs fetched meanwhile.
    fn spawn_discovery(
        &self,
        shared: &Arc<Shared>,
        ids: &[BlobId],
        tx: mpsc::UnboundedSender<Vec<SocketAddr>>,
    ) -> Option<JoinHandle<()>> {
        let dht = self.dht.clone()?;
        let ids = ids.to_vec();
        let shared = shared.clone();
        let limit = self.opts.lookup_concurrency.max(1);
        Some(tokio::spawn(async move {
            let mut lookups = JoinSet::new();
            let mut next = ids.into_iter();
            loop {
                while lookups.len() < limit {
                    let Some(id) = next.next() else { break };
                    if !shared.lock().remaining.contains(&id) {
                        continue;
                    }
                    let (dht, tx) = (dht.clone(), tx.clone());
                    lookups.spawn(async move {
                        use futures_lite::StreamExt;
                        // Each batch as it arrives: the first peers need not wait for the
                        // whole lookup (which ends on the slowest node).
                        let mut found =
                            dht.mainline().get_peers(mainline::Id::from(id.info_hash()));
                        while let Some(batch) = found.next().await {
                            let peers: Vec<SocketAddr> =
                                batch.into_iter().map(SocketAddr::V4).collect();
                            if tx.send(peers).is_err() {
                                return;
                            }
                        }
                    });
                }
                if lookups.join_next().await.is_none() {
                    return;
                }
            }
        }))
    }
}

/// One peer: connect, ask it for more peers, then fetch batches until nothing is left.
async fn worker(
    shared: Arc<Shared>,
    peer: SocketAddr,
    opts: DownloadOptions,
    found: mpsc::UnboundedSender<Vec<SocketAddr>>,
) -> (SocketAddr, WorkerEnd) {
    let fopts = FetcherOptions {
        connect: ConnectOptions {
            handshake_timeout: opts.connect_timeout,
            ..ConnectOptions::default()
        },
        pipeline_depth: opts.pipeline_depth,
        reply_timeout: opts.reply_timeout,
    };
    let mut fetcher = match tokio::time::timeout(
        opts.connect_timeout,
        BlobFetcher::connect(peer, &fopts),
    )
    .await
    {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return (peer, WorkerEnd::Lost(format!("cannot connect: {e}"))),
        Err(_) => return (peer, WorkerEnd::Lost("connect timed out".into())),
    };
    shared.set_connected(peer, true);
    // Peer exchange: the peer may know others that announced to it.
    if let Some(id) = shared.some_pending() {
        match fetcher.find_peers(id).await {
            Ok(list) => {
                let addrs: Vec<SocketAddr> = list.iter().filter_map(|a| a.parse().ok()).collect();
                if !addrs.is_empty() {
                    let _ = found.send(addrs);
                }
            }
            Err(e) => tracing::debug!(%peer, "FIND_PEERS: {e}"),
        }
    }
    let banned = AtomicBool::new(false);
    let writes = Arc::new(Semaphore::new(WRITE_AHEAD));
    let end = loop {
        if !fetcher.is_usable() {
            break WorkerEnd::Lost("connection lost".into());
        }
        let batch = {
            let mut s = shared.lock();
            // Share what is left among the running peers, so that small downloads (and the
            // end of large ones) still spread over every peer.
            let fair = s.pending.len() / s.running.len().max(1) / 2;
            s.take(peer, fair.clamp(1, opts.batch.max(1)))
        };
        if batch.is_empty() {
            if shared.lock().finished() {
                break WorkerEnd::Done;
            }
            // Wait for blobs to come back to the queue (a peer failed) or for the end.
            let _ = tokio::time::timeout(Duration::from_millis(200), shared.wake.notified()).await;
            continue;
        }
        let shared_ref = &shared;
        let banned_ref = &banned;
        let writes_ref = &writes;
        fetcher
            .fetch_each(&batch, |id, r| async move {
                shared_ref
                    .on_result(peer, id, r, banned_ref, writes_ref)
                    .await
            })
            .await;
        if banned.load(Ordering::Relaxed) {
            break WorkerEnd::Banned;
        }
    };
    if fetcher.is_usable() {
        fetcher.close().await;
    }
    // The worker ends only once its blobs are written (or requeued).
    let _ = writes.acquire_many(WRITE_AHEAD as u32).await;
    (peer, end)
}

/// One place a blob's plaintext fills: a chunk of a file of the download.
#[derive(Debug, Clone, Copy)]
struct Place {
    file: usize,
    chunk: usize,
    /// Where the chunk starts in the file.
    offset: u64,
}

/// A file being written.
#[derive(Default)]
struct Slot {
    /// The temporary file in the output folder, made when the first chunk arrives.
    tmp: Option<tempfile::NamedTempFile>,
    /// Which chunks are written.
    written: Vec<bool>,
    /// How many are not.
    left: usize,
    /// Its final path, once synced and renamed into place.
    done: Option<PathBuf>,
}

/// Writes the files of a download as their blobs arrive, in any order. Each blob's plaintext
/// goes straight to its offset in a temporary file in the output folder; once every chunk of
/// a file is written the file is synced and renamed to its validated name, so nothing
/// appears under that name before it is complete. Temporary files of an abandoned download
/// are removed when this is dropped.
struct FileWriter {
    dir: PathBuf,
    files: Vec<FileEntry>,
    places: HashMap<BlobId, Vec<Place>>,
    slots: Mutex<Vec<Slot>>,
}

impl FileWriter {
    /// `files` have been checked ([`check_entry`]): names valid, sizes consistent.
    fn new(dir: &Path, files: Vec<FileEntry>) -> Self {
        let mut places: HashMap<BlobId, Vec<Place>> = HashMap::new();
        let mut slots = Vec::with_capacity(files.len());
        for (file, entry) in files.iter().enumerate() {
            let mut offset = 0u64;
            for (chunk, c) in entry.chunks.iter().enumerate() {
                places.entry(c.blob_id).or_default().push(Place {
                    file,
                    chunk,
                    offset,
                });
                offset += c.real_size;
            }
            slots.push(Slot {
                written: vec![false; entry.chunks.len()],
                left: entry.chunks.len(),
                ..Slot::default()
            });
        }
        Self {
            dir: dir.to_owned(),
            files,
            places,
            slots: Mutex::new(slots),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // Every update of a slot is a single assignment: a poisoned lock is still consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError {
        let path = path.to_owned();
        move |source| BlobError::Io { path, source }
    }

    /// Put the blobs of `ids` that `store` holds into place, each hashed before it is
    /// decrypted, and write the files that have no chunk. Returns the blobs that turned out
    /// damaged or missing (removed from the store, to be fetched) and the files completed.
    fn place_stored(
        &self,
        store: &BlobStore,
        ids: &[BlobId],
    ) -> Result<(Vec<BlobId>, Vec<PathBuf>), NodeError> {
        let mut damaged = Vec::new();
        let mut completed = Vec::new();
        for id in ids {
            match store.get_verified(id) {
                Ok(Some(blob)) => completed.extend(self.place(id, blob)?),
                Ok(None) | Err(StoreError::HashMismatch { .. } | StoreError::TooLarge { .. }) => {
                    tracing::warn!("blob {id} bad in the store; fetching it again");
                    store.remove(id)?;
                    damaged.push(*id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let empty: Vec<usize> = self
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.left == 0 && s.done.is_none())
            .map(|(i, _)| i)
            .collect();
        for file in empty {
            self.handle(file)?;
            completed.extend(self.complete(file)?);
        }
        Ok((damaged, completed))
    }

    /// Decrypt `blob`, whose SHA-256 the caller has checked against `id` on these very
    /// bytes, into every place it fills. Returns the files this completed (synced and in
    /// place).
    fn place(&self, id: &BlobId, mut blob: Vec<u8>) -> Result<Vec<PathBuf>, BlobError> {
        let Some(places) = self.places.get(id) else {
            return Ok(Vec::new());
        };
        let mut completed = Vec::new();
        for (i, place) in places.iter().enumerate() {
            if self.lock()[place.file].written[place.chunk] {
                continue;
            }
            // A blob listed twice (rare) decrypts a copy for all but its last place.
            let mut plain = if i + 1 == places.len() {
                std::mem::take(&mut blob)
            } else {
                blob.clone()
            };
            let chunk = &self.files[place.file].chunks[place.chunk];
            decrypt_hashed_in_place(&mut plain, chunk)?;
            let file = self.handle(place.file)?;
            let rel = self.files[place.file].relative_path();
            write_at(&file, &plain, place.offset).map_err(Self::io(&self.dir.join(rel)))?;
            let last = {
                let mut slots = self.lock();
                let slot = &mut slots[place.file];
                if std::mem::replace(&mut slot.written[place.chunk], true) {
                    false
                } else {
                    slot.left -= 1;
                    slot.left == 0
                }
            };
            if last {
                completed.extend(self.complete(place.file)?);
            }
        }
        Ok(completed)
    }

    /// A handle on the temporary file of `file` (made now if it is the first chunk), to
    /// write at offsets without holding the lock.
    fn handle(&self, file: usize) -> Result<std::fs::File, BlobError> {
        let mut slots = self.lock();
        let slot = &mut slots[file];
        if slot.tmp.is_none() {
            // Next to its destination, so the final rename never crosses file systems.
            let dest = destination(&self.dir, &self.files[file])?;
            let parent = dest.parent().unwrap_or(&self.dir);
            let tmp = tempfile::Builder::new()
                .prefix(".megatorrent-")
                .suffix(".part")
                .tempfile_in(parent)
                .map_err(Self::io(parent))?;
            slot.tmp = Some(tmp);
        }
        match &slot.tmp {
            Some(tmp) => tmp.as_file().try_clone().map_err(Self::io(tmp.path())),
            None => Err(Self::io(&self.dir)(std::io::ErrorKind::NotFound.into())),
        }
    }

    /// Sync the temporary file of `file` (every chunk written) and rename it into place.
    fn complete(&self, file: usize) -> Result<Option<PathBuf>, BlobError> {
        let Some(tmp) = self.lock()[file].tmp.take() else {
            return Ok(None);
        };
        let entry = &self.files[file];
        // Checked again just before the rename: folders are never followed through a link.
        let path = destination(&self.dir, entry)?;
        let len = tmp.as_file().metadata().map_err(Self::io(&path))?.len();
        if len != entry.size {
            return Err(BlobError::SizeMismatch {
                name: entry.name.clone(),
                declared: entry.size,
                actual: len,
            });
        }
        tmp.as_file().sync_all().map_err(Self::io(&path))?;
        tmp.persist(&path).map_err(|e| Self::io(&path)(e.error))?;
        self.lock()[file].done = Some(path.clone());
        Ok(Some(path))
    }

    /// Every file's path in manifest order, once all are complete.
    fn finished(&self) -> Result<Vec<PathBuf>, NodeError> {
        let slots = self.lock();
        let mut paths = Vec::with_capacity(slots.len());
        for (entry, slot) in self.files.iter().zip(slots.iter()) {
            if let Some(path) = &slot.done {
                paths.push(path.clone());
                continue;
            }
            // Not reached when every blob was placed; a typed error rather than a panic.
            let missing = slot.written.iter().position(|w| !w);
            return Err(match missing.and_then(|i| entry.chunks.get(i)) {
                Some(c) => BlobError::Missing { blob_id: c.blob_id }.into(),
                None => NodeError::Task(format!("{} was not completed", entry.name)),
            });
        }
        Ok(paths)
    }
}

/// Write all of `buf` at `offset` of `file`, without moving a shared cursor (several blobs
/// of one file are written at once from different threads).
#[cfg(unix)]
fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Write all of `buf` at `offset` of `file`, without moving a shared cursor (several blobs
/// of one file are written at once from different threads).
#[cfg(windows)]
fn write_at(file: &std::fs::File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// The content of `manifest`, decrypted with `read_key` when it is private.
fn manifest_content(
    manifest: &SignedManifest,
    read_key: Option<&ReadKey>,
) -> Result<ManifestContent, NodeError> {
    if let Some(content) = manifest.content() {
        return Ok(content.clone());
    }
    let key = read_key.ok_or(NodeError::ReadKeyRequired)?;
    manifest.decrypt(key).map_err(|e| match e {
        ManifestError::WrongReadKey => NodeError::WrongReadKey,
        e => NodeError::Manifest(e),
    })
}

/// Every file of every collection once, checked (the manifest's content was validated, so
/// paths are safe and never collide). The same entry listed twice is written once; two
/// different files on one path are refused.
fn distinct_files(content: &ManifestContent) -> Result<Vec<FileEntry>, NodeError> {
    content.validate()?;
    let mut by_path: HashMap<String, &FileEntry> = HashMap::new();
    let mut files = Vec::new();
    for entry in content.collections.iter().flat_map(|c| c.items.iter()) {
        check_entry(entry)?;
        let path = entry.path_string();
        match by_path.get(&path) {
            Some(seen) if *seen == entry => {}
            Some(_) => return Err(NodeError::DuplicateName { name: path }),
            None => {
                by_path.insert(path, entry);
                files.push(entry.clone());
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::seal_chunk;
    use crate::manifest::{Chunk, CHUNK_SIZE};

    /// A file of `len` bytes sealed into blobs: its content, entry and blobs.
    fn sealed(name: &str, len: usize) -> (Vec<u8>, FileEntry, Vec<Vec<u8>>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (blobs, chunks): (Vec<Vec<u8>>, Vec<Chunk>) = data
            .chunks(CHUNK_SIZE)
            .map(|c| seal_chunk(c).unwrap())
            .unzip();
        let entry = FileEntry {
            name: name.into(),
            path: Vec::new(),
            size: len as u64,
            chunks,
        };
        (data, entry, blobs)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn file_writer_places_blobs_in_any_order_and_renames_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (data, entry, blobs) = sealed("f.bin", 2 * CHUNK_SIZE + 1000);
        let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
        let empty = FileEntry {
            name: "empty".into(),
            path: Vec::new(),
            size: 0,
            chunks: Vec::new(),
        };
        let w = FileWriter::new(&out, vec![entry, empty]);
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        // A file without chunks is written at once.
        let (damaged, done) = w.place_stored(&store, &[]).unwrap();
        assert!(damaged.is_empty());
        assert_eq!(done, vec![out.join("empty")]);

        assert!(w.place(&ids[2], blobs[2].clone()).unwrap().is_empty());
        assert!(w.place(&ids[0], blobs[0].clone()).unwrap().is_empty());
        // A blob delivered twice is written once.
        assert!(w.place(&ids[0], blobs[0].clone()).unwrap().is_empty());
        assert!(!out.join("f.bin").exists());
        match w.finished() {
            Err(NodeError::Blob(BlobError::Missing { blob_id })) => assert_eq!(blob_id, ids[1]),
            other => panic!("expected Missing, got {other:?}"),
        }
        assert_eq!(
            w.place(&ids[1], blobs[1].clone()).unwrap(),
            vec![out.join("f.bin")]
        );
        assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), data);
        assert_eq!(
            w.finished().unwrap(),
            vec![out.join("f.bin"), out.join("empty")]
        );
        // No temporary file is left behind.
        assert_eq!(names(&out), ["empty", "f.bin"]);
    }

    #[test]
    fn file_writer_refuses_damaged_stored_blobs_and_wrong_keys_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (_, mut entry, blobs) = sealed("g.bin", 3 * CHUNK_SIZE);
        // The last chunk's key is wrong: its blob hashes right but does not decrypt.
        entry.chunks[2].key[0] ^= 1;
        let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        store.put(&ids[0], &blobs[0]).unwrap();
        let mut rotten = blobs[1].clone();
        rotten[7] ^= 1;
        std::fs::write(store.path_of(&ids[1]), &rotten).unwrap();

        let w = FileWriter::new(&out, vec![entry]);
        let (damaged, done) = w.place_stored(&store, &ids[..2]).unwrap();
        assert_eq!(damaged, vec![ids[1]]);
        assert!(done.is_empty());
        assert!(!store.contains(&ids[1]));
        assert!(matches!(
            w.place(&ids[2], blobs[2].clone()),
            Err(BlobError::Decrypt { blob_id }) if blob_id == ids[2]
        ));
        // The partial file is a temporary one, removed with the writer.
        assert_eq!(names(&out).len(), 1);
        assert!(!out.join("g.bin").exists());
        drop(w);
        assert!(names(&out).is_empty());
    }

    fn id(n: u8) -> BlobId {
        BlobId::of(&[n])
    }

    #[test]
    fn take_skips_blobs_the_peer_failed_and_stuck_detects_dead_ends() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut s = Sched::default();
        s.pending = [id(1), id(2), id(3)].into_iter().collect();
        s.remaining = s.pending.iter().copied().collect();
        s.running.insert(a);
        s.failed_on.entry(id(1)).or_default().insert(a);
        assert_eq!(s.take(a, 10), vec![id(2), id(3)]);
        assert_eq!(s.in_flight, 2);
        assert!(!s.stuck());
        s.requeue(id(3));
        s.requeue(id(2));
        s.failed_on.entry(id(2)).or_default().insert(a);
        s.failed_on.entry(id(3)).or_default().insert(a);
        assert_eq!(s.pending.front(), Some(&id(2)));
        assert!(s.stuck());
        // Another running peer that has not failed them unblocks.
        s.running.insert(b);
        assert!(!s.stuck());
        assert_eq!(s.take(b, 2), vec![id(2), id(3)]);
    }
}
