//! What a download tells while it runs ([`DownloadEvent`], [`Progress`]) and once it is done
//! ([`DownloadReport`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::id::BlobId;

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
    /// Distinct blobs of the files.
    pub blobs_total: usize,
    /// Peers connected now.
    pub peers_in_use: usize,
}

/// Something that happened during a download.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DownloadEvent {
    /// The plan: totals, and what the store (or the destination) already holds.
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
    /// A file was already at its destination with exactly the right content: left untouched.
    FileUnchanged {
        /// The file.
        path: PathBuf,
    },
}

/// What a finished download did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DownloadReport {
    /// Every destination, in job (manifest) order: written or found already right.
    pub files: Vec<PathBuf>,
    /// The destinations that already held the right content and were left untouched.
    pub files_unchanged: Vec<PathBuf>,
    /// Content bytes of every file.
    pub bytes_total: u64,
    /// Distinct blobs of the files.
    pub blobs_total: usize,
    /// Blobs not fetched: already in the store, or remade from a destination file that
    /// already held their content.
    pub blobs_present: usize,
    /// Blobs fetched from peers.
    pub blobs_fetched: usize,
    /// DHT lookups (BEP 5 `get_peers`) made to find peers.
    pub dht_lookups: usize,
    /// Peers that delivered at least one blob, with how many.
    pub peers_used: Vec<(SocketAddr, usize)>,
    /// Peers dropped for sending a wrong blob.
    pub peers_dropped: Vec<SocketAddr>,
    /// Time spent fetching.
    pub fetch_time: Duration,
    /// Time spent outside fetching on getting files in place: checking destinations that
    /// exist, reading, checking and decrypting the blobs already in the store (resume), and
    /// writing files that have no blob to fetch. Fetched blobs are decrypted into their files
    /// as they arrive, and a file is synced and renamed as soon as its last blob is in, so
    /// that counts as fetching.
    pub reassemble_time: Duration,
}
