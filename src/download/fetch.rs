//! Fetching, with one owner of the scheduling state: the coordinator
//! ([`Downloader::fetch_all`]) holds the queue of needed blobs, the peer list and the DHT
//! lookups, and is fed by messages from the tasks it starts: one worker per connected peer
//! (which asks for batches and fetches them pipelined over one connection), the store writes
//! and the lookups. Nothing polls: a worker that asks while nothing is left for it is answered
//! when blobs come back to the queue, or let go when the download ends.
//!
//! Discovery is per file: the first needed blob of each file is looked up (its holders
//! usually hold the rest), then only blobs no running peer has; each connected peer is asked
//! for the peers it knows (FIND_PEERS), and, when this node serves its store, told the files
//! it holds (ANNOUNCE of each file's first blob), so later downloaders find it there. A
//! failed blob goes back to the front of the queue for another peer; a peer that sends a
//! blob whose hash is wrong is dropped for the rest of the download. Memory stays bounded:
//! each worker holds at most one reply being read and [`WRITE_AHEAD`] being written (the rest
//! wait in socket buffers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use super::rate::RateLimit;
use super::writer::{FileWriter, Finished};
use super::{DownloadError, DownloadEvent, DownloadOptions, Downloader, EventFn, Progress};
use crate::blob::{BlobStore, Committed};
use crate::dht::DhtClient;
use crate::id::BlobId;
use crate::peer::{BlobFetcher, FetcherOptions, PeerError};
use crate::transport::ConnectOptions;

/// Store writes a worker may have pending while it reads the next replies.
const WRITE_AHEAD: usize = 4;

/// How long workers get to close their connections once the download ended.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// How a worker ended.
enum WorkerEnd {
    /// Nothing left to fetch.
    Done,
    /// Could not connect, or the connection broke.
    Lost(String),
    /// Sent a wrong blob.
    Banned,
}

/// What the tasks of a download tell its coordinator.
enum Msg {
    /// `peer` is connected.
    Connected(SocketAddr),
    /// `peer` wants up to `max` blobs. Answered with a batch when there is one for it; the
    /// sender is dropped when the download ends.
    Want {
        peer: SocketAddr,
        max: usize,
        reply: oneshot::Sender<Vec<BlobId>>,
    },
    /// Blob `id` from `peer` is verified, stored and in place; `finished` are the files it
    /// completed.
    Placed {
        id: BlobId,
        peer: SocketAddr,
        finished: Vec<Finished>,
    },
    /// Blob `id` goes back to the queue; `refused_by` did not have it (or is not trusted).
    Requeue {
        id: BlobId,
        refused_by: Option<SocketAddr>,
    },
    /// `peer` sent a wrong blob `id`.
    Banned { peer: SocketAddr, id: BlobId },
    /// Storing or writing blob `id` failed: the download fails.
    Failed { id: BlobId, error: DownloadError },
    /// Peers heard of (a DHT lookup or a FIND_PEERS answer).
    Found(Vec<SocketAddr>),
}

/// What every task of a download reads: the store, the files being written, the rate limit
/// and the event callback.
pub(super) struct Ctx {
    store: BlobStore,
    /// Where each verified blob's plaintext goes.
    pub(super) writer: FileWriter,
    rate: Option<RateLimit>,
    events: Option<EventFn>,
}

impl Ctx {
    pub(super) fn new(
        store: BlobStore,
        writer: FileWriter,
        events: Option<EventFn>,
        rate: Option<RateLimit>,
    ) -> Self {
        Self {
            store,
            writer,
            rate,
            events,
        }
    }

    pub(super) fn emit(&self, event: DownloadEvent) {
        if let Some(f) = &self.events {
            f(&event);
        }
    }

    /// Tell about files just finished.
    pub(super) fn finished_files(&self, finished: Vec<Finished>) {
        for Finished { path, how } in finished {
            self.emit(match how {
                Committed::Written => DownloadEvent::FileDone { path },
                Committed::Unchanged => DownloadEvent::FileUnchanged { path },
            });
        }
    }
}

/// What a download tells the peers it connects to about itself, when it serves its store
/// ([`DownloadOptions::serve_port`]): which files it holds the first blob of.
pub(super) struct Holdings {
    /// Each blob's file key: the first blob of its file.
    key_of: HashMap<BlobId, BlobId>,
    /// File keys held, in the order they were got; each worker announces those it has not
    /// yet, so a peer connected late hears of the earlier ones too.
    held: Mutex<Vec<BlobId>>,
}

impl Holdings {
    pub(super) fn new(key_of: HashMap<BlobId, BlobId>, held: Vec<BlobId>) -> Self {
        Self {
            key_of,
            held: Mutex::new(held),
        }
    }

    /// The file key of `id` (itself when it is of no known file).
    fn key(&self, id: &BlobId) -> BlobId {
        self.key_of.get(id).copied().unwrap_or(*id)
    }

    /// Note that `id` is held now, when it is a file key.
    fn got(&self, id: &BlobId) {
        if self.key_of.get(id) == Some(id) {
            if let Ok(mut held) = self.held.lock() {
                held.push(*id);
            }
        }
    }

    /// The keys held from position `from` on.
    fn since(&self, from: usize) -> Vec<BlobId> {
        self.held
            .lock()
            .map(|h| h.get(from..).map(<[_]>::to_vec).unwrap_or_default())
            .unwrap_or_default()
    }
}

/// The scheduling state of a download, owned by its coordinator.
#[derive(Default)]
pub(super) struct Sched {
    /// Needed and not in flight, front first.
    pending: VecDeque<BlobId>,
    /// Needed (pending or in flight).
    remaining: HashSet<BlobId>,
    in_flight: usize,
    /// Peers that answered Not Found (or refused) for a blob.
    failed_on: HashMap<BlobId, HashSet<SocketAddr>>,
    progress: Progress,
    /// Content bytes of each blob.
    sizes: HashMap<BlobId, u64>,
    /// Peers with a live worker (connecting or connected).
    running: HashSet<SocketAddr>,
    /// Peers connected now.
    connected: HashSet<SocketAddr>,
    /// Blobs each peer delivered.
    pub(super) delivered: HashMap<SocketAddr, usize>,
    /// Peers dropped for sending a wrong blob.
    pub(super) banned: HashSet<SocketAddr>,
    /// Blobs fetched.
    pub(super) fetched: usize,
    /// DHT lookups started.
    pub(super) lookups: usize,
    fatal: Option<DownloadError>,
}

impl Sched {
    /// Blobs and bytes of `sizes`, of which `progress` says how many are done already.
    pub(super) fn new(progress: Progress, sizes: HashMap<BlobId, u64>) -> Self {
        Self {
            progress,
            sizes,
            ..Self::default()
        }
    }

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

    /// A batch for `peer` of at most `max` blobs: a fair share of what is left among the
    /// running peers, so that small downloads (and the end of large ones) still spread over
    /// every peer.
    fn batch_for(&mut self, peer: SocketAddr, max: usize) -> Vec<BlobId> {
        let fair = self.pending.len() / self.running.len().max(1) / 2;
        self.take(peer, fair.clamp(1, max.max(1)))
    }

    fn requeue(&mut self, id: BlobId, refused_by: Option<SocketAddr>) {
        if let Some(peer) = refused_by {
            self.failed_on.entry(id).or_default().insert(peer);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        // Front: a blob that failed once is the most likely to hold up the end.
        self.pending.push_front(id);
    }

    /// Blob `id` arrived from `peer`: the progress to report, or `None` when it was not
    /// needed any more.
    fn done(&mut self, id: BlobId, peer: SocketAddr) -> Option<Progress> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !self.remaining.remove(&id) {
            return None;
        }
        self.progress.blobs_done += 1;
        self.progress.bytes_done += self.sizes.get(&id).copied().unwrap_or(0);
        self.fetched += 1;
        *self.delivered.entry(peer).or_default() += 1;
        Some(self.progress)
    }

    fn set_connected(&mut self, peer: SocketAddr, connected: bool) {
        if connected {
            self.connected.insert(peer);
        } else {
            self.connected.remove(&peer);
        }
        self.progress.peers_in_use = self.connected.len();
    }

    fn finished(&self) -> bool {
        self.remaining.is_empty()
    }

    /// True when `id` is still wanted and no running peer may have it (none runs, or each
    /// refused it): only then is a DHT lookup worth its cost.
    fn needs_lookup(&self, id: &BlobId) -> bool {
        let refused = self.failed_on.get(id);
        self.remaining.contains(id)
            && self
                .running
                .iter()
                .all(|p| refused.is_some_and(|r| r.contains(p)))
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

/// A worker waiting for a batch.
struct Parked {
    peer: SocketAddr,
    max: usize,
    reply: oneshot::Sender<Vec<BlobId>>,
}

/// The DHT lookups of a download, a few at a time.
struct Lookups {
    dht: Option<DhtClient>,
    limit: usize,
    /// Blobs to look up, in order.
    queue: VecDeque<BlobId>,
    /// Skip a queued blob while a running peer may have it (the first discovery), rather than
    /// look it up as long as it is needed (after the download got stuck).
    lazy: bool,
    running: JoinSet<()>,
}

impl Lookups {
    fn new(dht: Option<DhtClient>, limit: usize) -> Self {
        Self {
            dht,
            limit: limit.max(1),
            queue: VecDeque::new(),
            lazy: true,
            running: JoinSet::new(),
        }
    }

    fn start(&mut self, ids: Vec<BlobId>, lazy: bool) {
        self.queue = ids.into();
        self.lazy = lazy;
    }

    /// Start queued lookups up to the limit; each sends the peers it finds, batch by batch as
    /// nodes answer, so the first peers need not wait for the slowest node.
    fn fill(&mut self, s: &mut Sched, tx: &mpsc::UnboundedSender<Msg>) {
        let Some(dht) = &self.dht else {
            self.queue.clear();
            return;
        };
        while self.running.len() < self.limit {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let wanted = if self.lazy {
                s.needs_lookup(&id)
            } else {
                s.remaining.contains(&id)
            };
            if !wanted {
                continue;
            }
            s.lookups += 1;
            let (found, tx) = (dht.blob_peers(&id), tx.clone());
            self.running.spawn(async move {
                let mut found = std::pin::pin!(found);
                while let Some(peers) = found.next().await {
                    if tx.send(Msg::Found(peers)).is_err() {
                        return;
                    }
                }
            });
        }
    }

    fn busy(&self) -> bool {
        !self.queue.is_empty() || !self.running.is_empty()
    }
}

/// The first blob of each file among `ids` (in their order), files told apart by their key
/// in `key_of`; a blob of no known file counts as its own.
fn first_of_each_file(
    ids: impl IntoIterator<Item = BlobId>,
    key_of: &HashMap<BlobId, BlobId>,
) -> Vec<BlobId> {
    let mut seen = HashSet::new();
    ids.into_iter()
        .filter(|id| key_of.get(id).is_none_or(|f| seen.insert(*f)))
        .collect()
}

/// Hand batches to the parked workers that can get one. A worker whose peer refused every
/// pending blob is let go when `release_refusers` (a new peer is waiting for its slot).
fn serve_parked(s: &mut Sched, parked: &mut Vec<Parked>, release_refusers: bool) {
    for p in std::mem::take(parked) {
        if p.reply.is_closed() {
            continue;
        }
        let batch = s.batch_for(p.peer, p.max);
        if batch.is_empty() {
            // Empty with blobs pending: this peer refused every one of them.
            if !release_refusers || s.pending.is_empty() {
                parked.push(p);
            }
            continue;
        }
        if let Err(batch) = p.reply.send(batch) {
            for id in batch {
                s.requeue(id, None);
            }
        }
    }
}

impl Downloader {
    /// True when the store holds a blob-sized item for `id` (its hash is checked at
    /// reassembly, which fetches it again if it is corrupt).
    pub(super) fn holds(&self, id: &BlobId) -> bool {
        self.store.holds_blob(id)
    }

    /// Fetch every blob of `todo` into the store; `holdings` tells which file each blob
    /// belongs to (for looking up peers per file) and which files are held already.
    pub(super) async fn fetch_all(
        &self,
        ctx: &Arc<Ctx>,
        s: &mut Sched,
        todo: Vec<BlobId>,
        holdings: Holdings,
    ) -> Result<(), DownloadError> {
        let holdings = Arc::new(holdings);
        s.remaining = todo.iter().copied().collect();
        s.pending = todo.iter().copied().collect();
        s.in_flight = 0;
        s.failed_on.clear();
        let max_peers = self.opts.max_peers.max(1);
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let mut known: HashSet<SocketAddr> = HashSet::new();
        let mut candidates: VecDeque<SocketAddr> = VecDeque::new();
        let mut tried: HashSet<SocketAddr> = HashSet::new();
        for p in &self.opts.peers {
            if known.insert(*p) {
                candidates.push_back(*p);
            }
        }
        let mut workers: JoinSet<(SocketAddr, WorkerEnd)> = JoinSet::new();
        let mut parked: Vec<Parked> = Vec::new();
        let mut lookups = Lookups::new(self.dht.clone(), self.opts.lookup_concurrency);
        lookups.start(first_of_each_file(todo, &holdings.key_of), true);
        let mut rounds = 1;
        let mut done_at_last_round = s.progress.blobs_done;

        let outcome = loop {
            // Before any blob is handed out again: a failed write ends the download at once.
            if let Some(e) = s.fatal.take() {
                break Err(e);
            }
            if s.finished() {
                break Ok(());
            }
            while workers.len() < max_peers {
                let Some(peer) = candidates.pop_front() else {
                    break;
                };
                if s.banned.contains(&peer) {
                    continue;
                }
                tried.insert(peer);
                s.running.insert(peer);
                workers.spawn(worker(
                    ctx.clone(),
                    tx.clone(),
                    peer,
                    self.opts.clone(),
                    holdings.clone(),
                ));
            }
            lookups.fill(s, &tx);
            let waiting = !candidates.is_empty() && workers.len() >= max_peers;
            serve_parked(s, &mut parked, waiting);
            if s.stuck() && candidates.is_empty() && !lookups.busy() {
                // Only rounds that got nothing count towards giving up: discovery is lazy,
                // so a swarm of partial holders may take a round per holder.
                if s.progress.blobs_done > done_at_last_round {
                    done_at_last_round = s.progress.blobs_done;
                    rounds = 1;
                }
                if rounds >= self.opts.rounds {
                    // Stuck implies a pending blob.
                    if let Some(first) = s.pending.front().copied() {
                        break Err(DownloadError::Unavailable {
                            missing: s.remaining.len(),
                            first,
                            peers_tried: tried.len(),
                        });
                    }
                }
                rounds += 1;
                tokio::time::sleep(self.opts.round_delay).await;
                // Another round: every running peer refused what is left, so look it up (per
                // file), and ask the running peers again: they may have fetched it meanwhile.
                let stuck = first_of_each_file(s.pending.iter().copied(), &holdings.key_of);
                lookups.start(stuck, false);
                s.failed_on.clear();
                known.retain(|p| s.banned.contains(p) || s.running.contains(p));
                for p in &self.opts.peers {
                    if known.insert(*p) {
                        candidates.push_back(*p);
                    }
                }
                continue;
            }
            tokio::select! {
                Some(msg) = rx.recv() => match msg {
                    Msg::Connected(peer) => {
                        s.set_connected(peer, true);
                        ctx.emit(DownloadEvent::PeerConnected(peer));
                    }
                    Msg::Want { peer, max, reply } => parked.push(Parked { peer, max, reply }),
                    Msg::Placed { id, peer, finished } => {
                        if let Some(progress) = s.done(id, peer) {
                            holdings.got(&id);
                            ctx.emit(DownloadEvent::BlobDone { blob: id, peer, progress });
                        }
                        ctx.finished_files(finished);
                    }
                    Msg::Requeue { id, refused_by } => s.requeue(id, refused_by),
                    Msg::Banned { peer, id } => {
                        s.banned.insert(peer);
                        ctx.emit(DownloadEvent::PeerDropped { peer, blob: id });
                        s.requeue(id, Some(peer));
                    }
                    Msg::Failed { id, error } => {
                        s.fatal.get_or_insert(error);
                        s.requeue(id, None);
                    }
                    Msg::Found(list) => {
                        for p in list {
                            if !s.banned.contains(&p) && known.insert(p) {
                                candidates.push_back(p);
                            }
                        }
                    }
                },
                Some(joined) = workers.join_next(), if !workers.is_empty() => {
                    if let Ok((peer, end)) = joined {
                        s.running.remove(&peer);
                        s.set_connected(peer, false);
                        parked.retain(|p| p.peer != peer);
                        if let WorkerEnd::Lost(reason) = end {
                            ctx.emit(DownloadEvent::PeerLost { peer, reason });
                        }
                    }
                }
                Some(_) = lookups.running.join_next(), if !lookups.running.is_empty() => {}
            }
        };

        // Parked workers are let go (their reply dropped) and close their connections
        // gracefully; the others finish their batch first.
        drop(parked);
        drop(lookups);
        let closing = async {
            loop {
                tokio::select! {
                    joined = workers.join_next() => match joined {
                        Some(Ok((peer, _))) => {
                            s.running.remove(&peer);
                            s.set_connected(peer, false);
                        }
                        Some(Err(_)) => {}
                        None => break,
                    },
                    // A late request is dropped unanswered: its worker ends.
                    Some(_) = rx.recv() => {}
                }
            }
        };
        if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
            workers.shutdown().await;
        }
        s.running.clear();
        s.connected.clear();
        s.progress.peers_in_use = 0;
        outcome
    }
}

/// One peer: connect, then ask the coordinator for batches and fetch them until it has no
/// more. The peer is asked for other peers of the first batch's first file, and, when this
/// node serves, told between batches of the files this node holds.
async fn worker(
    ctx: Arc<Ctx>,
    tx: mpsc::UnboundedSender<Msg>,
    peer: SocketAddr,
    opts: DownloadOptions,
    holdings: Arc<Holdings>,
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
    let _ = tx.send(Msg::Connected(peer));
    let banned = AtomicBool::new(false);
    let writes = Arc::new(Semaphore::new(WRITE_AHEAD));
    let mut asked_for_peers = false;
    // Our blob server as this peer reaches us: the connection's local IP.
    let ours = opts
        .serve_port
        .map(|port| SocketAddr::new(fetcher.local_addr().ip(), port).to_string());
    let mut announced = 0;
    let end = loop {
        tell(&mut fetcher, &holdings, ours.as_deref(), &mut announced).await;
        if !fetcher.is_usable() {
            break WorkerEnd::Lost("connection lost".into());
        }
        let (reply, batch) = oneshot::channel();
        let want = Msg::Want {
            peer,
            max: opts.batch,
            reply,
        };
        if tx.send(want).is_err() {
            break WorkerEnd::Done;
        }
        // Dropped unanswered: the download is over.
        let Ok(batch) = batch.await else {
            break WorkerEnd::Done;
        };
        if !asked_for_peers {
            asked_for_peers = true;
            // Peer exchange: the peer may know others that announced to it.
            if let Some(id) = batch.first() {
                match fetcher.find_peers(holdings.key(id)).await {
                    Ok(list) => {
                        let addrs: Vec<SocketAddr> =
                            list.iter().filter_map(|a| a.parse().ok()).collect();
                        if !addrs.is_empty() {
                            let _ = tx.send(Msg::Found(addrs));
                        }
                    }
                    Err(e) => tracing::debug!(%peer, "FIND_PEERS: {e}"),
                }
            }
        }
        let (ctx_ref, tx_ref, banned_ref, writes_ref) = (&ctx, &tx, &banned, &writes);
        fetcher
            .fetch_each(&batch, |id, r| async move {
                on_reply(ctx_ref, tx_ref, peer, id, r, banned_ref, writes_ref).await
            })
            .await;
        if banned.load(Ordering::Relaxed) {
            break WorkerEnd::Banned;
        }
    };
    if fetcher.is_usable() {
        // The files completed by the last batches.
        tell(&mut fetcher, &holdings, ours.as_deref(), &mut announced).await;
        fetcher.close().await;
    }
    // The worker ends only once its blobs are written (or requeued).
    let _ = writes.acquire_many(WRITE_AHEAD as u32).await;
    (peer, end)
}

/// Tell the peer of `fetcher` that `ours` (our blob server) holds the file keys it has not
/// been told of yet; `announced` counts those told.
async fn tell(
    fetcher: &mut BlobFetcher,
    holdings: &Holdings,
    ours: Option<&str>,
    announced: &mut usize,
) {
    let Some(ours) = ours else {
        return;
    };
    let keys = holdings.since(*announced);
    *announced += keys.len();
    for key in keys {
        if let Err(e) = fetcher.announce(key, ours).await {
            tracing::debug!(peer = %fetcher.peer_addr(), "ANNOUNCE: {e}");
            return;
        }
    }
}

/// Handle one reply of a worker's batch. A good blob is written to the store on a blocking
/// thread while the worker goes on reading replies; `writes` bounds how many such writes (and
/// so how many blobs in memory) a worker has pending.
async fn on_reply(
    ctx: &Arc<Ctx>,
    tx: &mpsc::UnboundedSender<Msg>,
    peer: SocketAddr,
    id: BlobId,
    result: Result<Vec<u8>, PeerError>,
    banned: &AtomicBool,
    writes: &Arc<Semaphore>,
) {
    // A send fails only once the coordinator is gone: nothing is waiting for the blob then.
    if banned.load(Ordering::Relaxed) {
        // Nothing more is taken from a peer that lied once.
        let _ = tx.send(Msg::Requeue {
            id,
            refused_by: Some(peer),
        });
        return;
    }
    match result {
        Ok(bytes) => {
            if let Some(limit) = &ctx.rate {
                limit.blob().await;
            }
            let Ok(permit) = writes.clone().acquire_owned().await else {
                let _ = tx.send(Msg::Requeue {
                    id,
                    refused_by: None,
                });
                return;
            };
            let (ctx, tx) = (ctx.clone(), tx.clone());
            tokio::spawn(async move {
                // The fetcher checked the hash of these very bytes: store them and decrypt
                // them into the output without hashing again. File writes block, so not on
                // the async workers.
                let write = {
                    let ctx = ctx.clone();
                    tokio::task::spawn_blocking(move || -> Result<Vec<Finished>, DownloadError> {
                        ctx.store.put_hashed(&id, &bytes)?;
                        Ok(ctx.writer.place(&id, bytes)?)
                    })
                };
                let msg = match write.await {
                    Ok(Ok(finished)) => Msg::Placed { id, peer, finished },
                    Ok(Err(error)) => Msg::Failed { id, error },
                    Err(e) => Msg::Failed {
                        id,
                        error: e.into(),
                    },
                };
                let _ = tx.send(msg);
                drop(permit);
            });
        }
        Err(PeerError::HashMismatch { .. }) => {
            banned.store(true, Ordering::Relaxed);
            tracing::warn!(%peer, "blob {id}: wrong content; peer dropped for this download");
            let _ = tx.send(Msg::Banned { peer, id });
        }
        Err(e @ (PeerError::NotFound(_) | PeerError::Refused(_))) => {
            tracing::debug!(%peer, "blob {id}: {e}");
            let _ = tx.send(Msg::Requeue {
                id,
                refused_by: Some(peer),
            });
        }
        // The connection broke or stalled: the worker ends; others take the blob.
        Err(_) => {
            let _ = tx.send(Msg::Requeue {
                id,
                refused_by: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        s.requeue(id(3), Some(a));
        s.requeue(id(2), Some(a));
        assert_eq!(s.pending.front(), Some(&id(2)));
        assert!(s.stuck());
        // Another running peer that has not failed them unblocks.
        s.running.insert(b);
        assert!(!s.stuck());
        assert_eq!(s.take(b, 2), vec![id(2), id(3)]);
    }

    #[test]
    fn lookups_only_for_blobs_no_running_peer_may_have() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut s = Sched {
            remaining: [id(1), id(2)].into_iter().collect(),
            ..Sched::default()
        };
        // No peer yet: every wanted blob is worth a lookup; a fetched one is not.
        assert!(s.needs_lookup(&id(1)));
        assert!(!s.needs_lookup(&id(3)));
        // A running peer may serve them: no lookup until it refuses.
        s.running.insert(a);
        assert!(!s.needs_lookup(&id(1)));
        s.failed_on.entry(id(1)).or_default().insert(a);
        assert!(s.needs_lookup(&id(1)));
        assert!(!s.needs_lookup(&id(2)));
        // Every running peer must have refused it.
        s.running.insert(b);
        assert!(!s.needs_lookup(&id(1)));
    }

    #[test]
    fn done_counts_a_blob_once_and_first_of_each_file_is_per_file() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let sizes = [(id(1), 10), (id(2), 20)].into_iter().collect();
        let mut s = Sched::new(
            Progress {
                blobs_total: 2,
                bytes_total: 30,
                ..Progress::default()
            },
            sizes,
        );
        s.pending = [id(1), id(2)].into_iter().collect();
        s.remaining = s.pending.iter().copied().collect();
        s.running.insert(a);
        assert_eq!(s.batch_for(a, 8), vec![id(1)], "a fair share, at least one");
        let p = s.done(id(1), a).unwrap();
        assert_eq!((p.blobs_done, p.bytes_done), (1, 10));
        assert!(s.done(id(1), a).is_none(), "counted once");
        assert_eq!((s.fetched, s.delivered[&a]), (1, 1));

        let key_of = [(id(1), id(1)), (id(2), id(1)), (id(3), id(3))]
            .into_iter()
            .collect();
        let firsts = first_of_each_file([id(2), id(1), id(3), id(4)], &key_of);
        assert_eq!(firsts, vec![id(2), id(3), id(4)]);
    }

    #[test]
    fn parked_workers_get_batches_or_are_let_go_for_a_waiting_peer() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut s = Sched::default();
        s.pending = [id(1)].into_iter().collect();
        s.remaining = s.pending.iter().copied().collect();
        s.running.insert(a);
        s.failed_on.entry(id(1)).or_default().insert(a);
        let (reply, mut got) = oneshot::channel();
        let mut parked = vec![Parked {
            peer: a,
            max: 8,
            reply,
        }];
        // Nothing for it: it waits (no polling) ...
        serve_parked(&mut s, &mut parked, false);
        assert_eq!(parked.len(), 1);
        assert!(got.try_recv().is_err());
        // ... and is answered once the blob is free for it again.
        s.failed_on.clear();
        serve_parked(&mut s, &mut parked, false);
        assert!(parked.is_empty());
        assert_eq!(got.try_recv().unwrap(), vec![id(1)]);
        // A refuser is let go when another peer waits for its slot.
        s.requeue(id(1), Some(a));
        let (reply, mut got) = oneshot::channel();
        let mut parked = vec![Parked {
            peer: a,
            max: 8,
            reply,
        }];
        serve_parked(&mut s, &mut parked, true);
        assert!(parked.is_empty());
        assert!(matches!(
            got.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }
}
