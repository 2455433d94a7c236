//! Fetching: one coordinator owns the peer list; one worker per connected peer takes batches
//! of needed blobs from a shared queue and fetches them pipelined over one connection.
//! Discovery (DHT `get_peers`, FIND_PEERS on each connected peer) runs alongside, so fetching
//! starts with the first peer found. A failed blob goes back to the front of the queue for
//! another peer; a peer that sends a blob whose hash is wrong is dropped for the rest of the
//! download. Memory stays bounded: each worker holds at most one reply being read and
//! [`WRITE_AHEAD`] being written (the rest wait in socket buffers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::rate::RateLimit;
use super::writer::{FileWriter, Finished};
use super::{DownloadError, DownloadEvent, DownloadOptions, Downloader, EventFn, Progress};
use crate::blob::{BlobStore, Committed};
use crate::id::BlobId;
use crate::manifest::BLOB_LEN;
use crate::peer::{BlobFetcher, FetcherOptions, PeerError};
use crate::transport::ConnectOptions;

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
pub(super) struct Sched {
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
    pub(super) delivered: HashMap<SocketAddr, usize>,
    pub(super) banned: HashSet<SocketAddr>,
    pub(super) fetched: usize,
    fatal: Option<DownloadError>,
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

pub(super) struct Shared {
    sched: Mutex<Sched>,
    wake: Notify,
    store: BlobStore,
    /// Where each verified blob's plaintext goes.
    pub(super) writer: FileWriter,
    /// DHT lookups started.
    pub(super) lookups: AtomicUsize,
    rate: Option<RateLimit>,
    sizes: HashMap<BlobId, u64>,
    events: Option<EventFn>,
}

impl Shared {
    pub(super) fn new(
        progress: Progress,
        store: BlobStore,
        writer: FileWriter,
        sizes: HashMap<BlobId, u64>,
        events: Option<EventFn>,
        rate: Option<RateLimit>,
    ) -> Self {
        Self {
            sched: Mutex::new(Sched {
                progress,
                ..Sched::default()
            }),
            wake: Notify::new(),
            store,
            writer,
            lookups: AtomicUsize::new(0),
            rate,
            sizes,
            events,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Sched> {
        // A poisoned scheduler is still consistent enough to finish or fail cleanly.
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
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
                if let Some(limit) = &self.rate {
                    limit.blob().await;
                }
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
                    tokio::task::spawn_blocking(move || -> Result<Vec<Finished>, DownloadError> {
                        shared.store.put_hashed(&id, &bytes)?;
                        Ok(shared.writer.place(&id, bytes)?)
                    })
                };
                tokio::spawn(async move {
                    match write.await {
                        Ok(Ok(finished)) => {
                            shared.done(id, peer);
                            shared.finished_files(finished);
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
    /// True when the store holds a file of the right size for `id` (its hash is checked at
    /// reassembly, which fetches it again if it is corrupt).
    pub(super) fn holds(&self, id: &BlobId) -> bool {
        std::fs::metadata(self.store.path_of(id)).is_ok_and(|m| m.len() == BLOB_LEN as u64)
    }

    /// Fetch every blob of `todo` into the store.
    pub(super) async fn fetch_all(
        &self,
        shared: &Arc<Shared>,
        todo: Vec<BlobId>,
    ) -> Result<(), DownloadError> {
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
        let mut done_at_last_round = shared.lock().progress.blobs_done;
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
                // Only rounds that got nothing count towards giving up: discovery is lazy,
                // so a swarm of partial holders may take a round per holder.
                let done = shared.lock().progress.blobs_done;
                if done > done_at_last_round {
                    done_at_last_round = done;
                    rounds = 1;
                }
                if rounds >= self.opts.rounds {
                    let s = shared.lock();
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

    /// Look up in the DHT the peers of the blobs of `ids` that no known peer can serve, a few
    /// lookups at a time: before any peer runs, the first blobs (their peers usually hold the
    /// rest too); after that, only a blob that every running peer has refused. A blob skipped
    /// here is looked up in a later round if it gets stuck, so a download from peers that hold
    /// everything costs a handful of lookups, not one per blob.
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
                    if !shared.lock().needs_lookup(&id) {
                        continue;
                    }
                    let (dht, tx) = (dht.clone(), tx.clone());
                    shared.lookups.fetch_add(1, Ordering::Relaxed);
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
}
