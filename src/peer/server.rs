//! The blob server: answers v5 peers from a blob store.
//!
//! Each connection runs as a reader loop plus a writer task joined by a bounded queue, so
//! replies leave in request order while the next requests are parsed. Every limit (connection
//! count, queue depth, handshake, idle and write time-outs, frame size) is per connection: a
//! misbehaving peer only ever ends its own connection, and the reason is logged and published
//! to [`ServerHandle::subscribe_closed`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{broadcast, mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::{PeerError, PeerTable};
use crate::blob::BlobStore;
use crate::id::BlobId;
use crate::identity::Identity;
use crate::transport::{
    accept, close_halves, AcceptOptions, FrameBuf, KrpcQuery, KrpcResponse, Message, MessageType,
    Publish, SecureWriter, SessionInfo, TransportError, MAX_PAYLOAD_LEN, PROTOCOL_VERSION,
};

/// ERROR text for a blob the store does not hold (the reference wording).
pub const NOT_FOUND: &str = "Not Found";
/// ERROR text for PUBLISH on a server without a DHT.
pub const NOT_A_GATEWAY: &str = "Not a Gateway";
/// OK text after a gateway relayed a PUBLISH.
pub const PUBLISHED: &str = "Published";
// Gossip keys remembered (the latest sequence per channel key); more are only broadcast.
const MAX_GOSSIP_KEYS: usize = 4096;

/// What [`Gateway::publish`] returns: `Ok` relayed, `Err(reason)` refused.
pub type GatewayFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What [`Gateway::node_id`] returns.
pub type NodeIdFuture = Pin<Box<dyn Future<Output = Option<[u8; 20]>> + Send + 'static>>;

/// The server's DHT (attached by the DHT layer): relays PUBLISH and answers KRPC `ping` in
/// DHT_QUERY. `publish` must verify the item's BEP 44 signature before relaying it; an `Err`
/// reason goes back to the peer as ERROR.
pub trait Gateway: Send + Sync + 'static {
    /// Verify and store `item` in the DHT.
    fn publish(&self, item: Publish) -> GatewayFuture;

    /// The DHT node id with which to answer a KRPC `ping`; `None` leaves DHT_QUERY unanswered.
    fn node_id(&self) -> NodeIdFuture {
        Box::pin(async { None })
    }
}

/// A gossiped sequence number from a peer's HELLO: a hint to look the key up in the DHT,
/// never to be trusted by itself.
#[derive(Clone, PartialEq, Eq)]
pub struct GossipHint {
    /// Who sent it.
    pub peer: SocketAddr,
    /// The channel's public key.
    pub key: [u8; 32],
    /// The sequence number the peer claims to know.
    pub seq: i64,
}

impl std::fmt::Debug for GossipHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { peer, key, seq } = self;
        f.debug_struct("GossipHint")
            .field("peer", peer)
            .field("key", &crate::id::HexDebug(key))
            .field("seq", seq)
            .finish()
    }
}

/// Why the server ended a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side and every reply was sent.
    #[error("peer closed the connection")]
    PeerClosed,
    /// Nothing received (and nothing pending) for the idle time-out.
    #[error("idle time-out")]
    IdleTimeout,
    /// The peer did not read our replies within the time-out.
    #[error("write time-out (peer not reading)")]
    WriteTimeout,
    /// The server is shutting down.
    #[error("server shutting down")]
    Shutdown,
    /// The connection limit was reached; refused right after accept.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// The key exchange failed (time-out, low-order key, early end).
    #[error("handshake failed")]
    Handshake(#[source] Arc<TransportError>),
    /// Framing, authentication or socket failure on an established connection.
    #[error("transport failure")]
    Transport(#[source] Arc<TransportError>),
    /// A message whose payload does not parse; answered with ERROR.
    #[error("malformed message")]
    BadMessage(#[source] Arc<TransportError>),
    /// A message only a server sends (DATA, PEERS, OK, ERROR); answered with ERROR.
    #[error("unexpected {} from a client", .0.name())]
    Unexpected(MessageType),
    /// HELLO with an explicit version below 5; answered with ERROR.
    #[error("protocol version {0} is not supported")]
    OldVersion(u64),
}

/// A connection the server ended, and why.
#[derive(Debug, Clone)]
pub struct ConnectionClosed {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Why it ended.
    pub reason: CloseReason,
}

/// Limits and settings of a [`BlobServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Connections served at once; more are closed right after accept.
    pub max_connections: usize,
    /// Requests queued per connection before the server stops reading from it.
    pub queue_depth: usize,
    /// Time allowed for the key exchange.
    pub handshake_timeout: Duration,
    /// A connection with nothing received and nothing pending for this long is closed; also
    /// the limit for writing one reply.
    pub idle_timeout: Duration,
    /// How long a closing connection waits for the peer to finish writing.
    pub drain_timeout: Duration,
    /// Addresses held in the ANNOUNCE table.
    pub max_announced: usize,
    /// Addresses held per blob.
    pub max_announced_per_blob: usize,
    /// Lifetime of an announced address.
    pub announce_ttl: Duration,
    /// Addresses returned in one PEERS.
    pub max_peers_per_reply: usize,
    /// Identity with which to answer binding HELLOs (PROTOCOL.md 5.4); without one, binding
    /// requests are ignored as a reference server does.
    pub identity: Option<Arc<Identity>>,
    /// Upload rate limit in bytes per second across all connections (None: unlimited).
    pub upload_rate_limit: Option<u64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 256,
            queue_depth: 32,
            handshake_timeout: crate::transport::HANDSHAKE_TIMEOUT,
            idle_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(2),
            max_announced: 10_000,
            max_announced_per_blob: 50,
            announce_ttl: Duration::from_secs(30 * 60),
            max_peers_per_reply: 50,
            identity: None,
            upload_rate_limit: None,
        }
    }
}

setters!(ServerConfig {
    max_connections: usize,
    queue_depth: usize,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    drain_timeout: Duration,
    max_announced: usize,
    max_announced_per_blob: usize,
    announce_ttl: Duration,
    max_peers_per_reply: usize,
    identity: Option<Arc<Identity>>,
});

struct Shared {
    store: BlobStore,
    config: ServerConfig,
    peers: Mutex<PeerTable>,
    gateway: RwLock<Option<Arc<dyn Gateway>>>,
    gossip_tx: broadcast::Sender<GossipHint>,
    gossip_latest: Mutex<HashMap<[u8; 32], i64>>,
    closed_tx: broadcast::Sender<ConnectionClosed>,
    active: AtomicUsize,
    pacer: Option<super::pacer::Pacer>,
}

impl Shared {
    fn closed(&self, peer: SocketAddr, reason: CloseReason) {
        match &reason {
            CloseReason::PeerClosed | CloseReason::Shutdown => {
                tracing::debug!(%peer, "connection closed: {reason}")
            }
            _ => tracing::info!(%peer, "connection closed: {reason}"),
        }
        let _ = self.closed_tx.send(ConnectionClosed { peer, reason });
    }

    fn record_gossip(&self, peer: SocketAddr, gossip: &std::collections::BTreeMap<[u8; 32], i64>) {
        if let Ok(mut latest) = self.gossip_latest.lock() {
            for (key, seq) in gossip {
                let room = latest.len() < MAX_GOSSIP_KEYS || latest.contains_key(key);
                if room {
                    let e = latest.entry(*key).or_insert(*seq);
                    *e = (*e).max(*seq);
                }
            }
        }
        for (key, seq) in gossip {
            let _ = self.gossip_tx.send(GossipHint {
                peer,
                key: *key,
                seq: *seq,
            });
        }
    }
}

/// A bound, not yet running blob server.
pub struct BlobServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BlobServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("store", &self.shared.store.dir())
            .finish_non_exhaustive()
    }
}

impl BlobServer {
    /// Listen on `addr` (port 0 picks a free port) to serve `store`.
    pub async fn bind(
        addr: impl ToSocketAddrs + std::fmt::Debug,
        store: BlobStore,
        config: ServerConfig,
    ) -> Result<Self, PeerError> {
        let shown = format!("{addr:?}");
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| PeerError::Bind {
                addr: shown,
                source,
            })?;
        let (gossip_tx, _) = broadcast::channel(1024);
        let (closed_tx, _) = broadcast::channel(1024);
        let peers = PeerTable::new(
            config.max_announced,
            config.max_announced_per_blob,
            config.announce_ttl,
        );
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                pacer: config.upload_rate_limit.map(super::pacer::Pacer::new),
                store,
                config,
                peers: Mutex::new(peers),
                gateway: RwLock::new(None),
                gossip_tx,
                gossip_latest: Mutex::new(HashMap::new()),
                closed_tx,
                active: AtomicUsize::new(0),
            }),
        })
    }

    /// The address actually bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> Result<SocketAddr, PeerError> {
        self.listener
            .local_addr()
            .map_err(|e| PeerError::Transport(e.into()))
    }

    /// Start accepting on the current tokio runtime.
    pub fn spawn(self) -> Result<ServerHandle, PeerError> {
        let local_addr = self.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let task = tokio::spawn(accept_loop(self.listener, self.shared, stop_rx));
        tracing::info!(%local_addr, "blob server listening");
        Ok(ServerHandle {
            local_addr,
            shared,
            stop: stop_tx,
            task,
        })
    }
}

/// A running blob server. [`ServerHandle::shutdown`] stops it and waits for its connections
/// to close; dropping the handle also stops it (accepting ends, connections close gracefully
/// in the background), so a server never outlives its owner.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("active", &self.active_connections())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections being served now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Attach (or detach) the DHT gateway that answers PUBLISH.
    pub fn set_gateway(&self, gateway: Option<Arc<dyn Gateway>>) {
        if let Ok(mut g) = self.shared.gateway.write() {
            *g = gateway;
        }
    }

    /// Gossiped sequence numbers as they arrive in HELLOs.
    pub fn subscribe_gossip(&self) -> broadcast::Receiver<GossipHint> {
        self.shared.gossip_tx.subscribe()
    }

    /// The highest sequence any peer gossiped for `key` (a hint, not a verified value).
    pub fn gossiped_sequence(&self, key: &[u8; 32]) -> Option<i64> {
        self.shared
            .gossip_latest
            .lock()
            .ok()
            .and_then(|m| m.get(key).copied())
    }

    /// Every connection the server ends, with the reason.
    pub fn subscribe_closed(&self) -> broadcast::Receiver<ConnectionClosed> {
        self.shared.closed_tx.subscribe()
    }

    /// Stop accepting, close every connection gracefully, and wait for them (at most the
    /// drain time-out plus a second).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    // Refusals close gracefully too, but their number is capped as well: past it, a flood
    // is simply dropped.
    let refusals = Arc::new(Semaphore::new(64));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!("connection task panicked: {e}");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        shared.closed(peer, CloseReason::ConnectionLimit);
                        if let Ok(r) = refusals.clone().try_acquire_owned() {
                            let drain = shared.config.drain_timeout;
                            conns.spawn(async move {
                                refuse(tcp, drain).await;
                                drop(r);
                            });
                        }
                        continue;
                    };
                    let shared = shared.clone();
                    let stop = stop.clone();
                    conns.spawn(async move {
                        shared.active.fetch_add(1, Ordering::Relaxed);
                        let reason = serve_connection(tcp, peer, &shared, stop).await;
                        shared.active.fetch_sub(1, Ordering::Relaxed);
                        shared.closed(peer, reason);
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let grace = shared.config.drain_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        conns.shutdown().await;
    }
}

/// Close a connection over the limit without a reset: FIN, then drain briefly.
async fn refuse(tcp: TcpStream, drain: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = tcp.into_split();
    let _ = wr.shutdown().await;
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(drain, async {
        while let Ok(n) = rd.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Work for the writer, in request order.
enum Job {
    Request(BlobId),
    Reply(Message),
    Publish(Publish),
    /// Answer a KRPC `ping` with this transaction id, if a DHT is attached.
    DhtPing(Vec<u8>),
    /// Send ERROR with this text, then stop.
    Reject(String),
}

/// Aborts the task when dropped, so a connection task aborted at shutdown takes its writer
/// with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serve one accepted socket until it ends; returns why it ended.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> CloseReason {
    let opts = AcceptOptions {
        handshake_timeout: shared.config.handshake_timeout,
    };
    let stream = tokio::select! {
        r = accept(tcp, &opts) => match r {
            Ok(s) => s,
            Err(e) => return CloseReason::Handshake(Arc::new(e)),
        },
        _ = stop.changed() => return CloseReason::Shutdown,
    };
    tracing::debug!(%peer, "handshake complete");
    let info = *stream.info();
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(shared.config.queue_depth.max(1));
    let pending = Arc::new(AtomicUsize::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let mut writer_task = AbortOnDrop(tokio::spawn(run_writer(
        writer,
        rx,
        shared.clone(),
        pending.clone(),
        cancel.clone(),
    )));
    let idle = shared.config.idle_timeout;
    let mut writer_result = None;
    // Set when a send to the writer fails: the writer has stopped, and its reason is the real one.
    let mut writer_gone = false;
    let reason = loop {
        let next = tokio::select! {
            _ = stop.changed() => break CloseReason::Shutdown,
            w = &mut writer_task.0 => {
                // The writer stops early only on a write failure.
                let reason = match &w {
                    Ok((_, Some(reason))) => reason.clone(),
                    _ => CloseReason::Transport(Arc::new(TransportError::Closed)),
                };
                writer_result = Some(w);
                break reason;
            }
            r = tokio::time::timeout(idle, reader.recv_plaintext()) => r,
        };
        let plaintext = match next {
            Err(_) if pending.load(Ordering::Relaxed) > 0 => continue,
            Err(_) => break CloseReason::IdleTimeout,
            Ok(Err(e)) => break CloseReason::Transport(Arc::new(e)),
            Ok(Ok(None)) => break CloseReason::PeerClosed,
            Ok(Ok(Some(p))) => p,
        };
        let msg_type = plaintext.msg_type();
        let (job, end) = match plaintext.into_message() {
            // PROTOCOL.md 5.3: an unknown type is ignored; a HELLO that does not parse is
            // ignored, as the reference ignores it.
            Err(TransportError::UnknownType(t)) => {
                tracing::debug!(%peer, "ignored a message of unknown type 0x{t:02x}");
                (None, None)
            }
            Err(e) if msg_type == MessageType::Hello as u8 => {
                tracing::debug!(%peer, "ignored a HELLO: {}", crate::error::ErrorChain(&e));
                (None, None)
            }
            Err(e) => {
                let text = format!("Bad Request: {}", crate::error::ErrorChain(&e));
                (
                    Some(Job::Reject(text)),
                    Some(CloseReason::BadMessage(Arc::new(e))),
                )
            }
            Ok(msg) => handle(msg, peer, &info, shared),
        };
        if let Some(job) = job {
            pending.fetch_add(1, Ordering::Relaxed);
            let sent = tokio::select! {
                r = tx.send(job) => r.is_ok(),
                _ = stop.changed() => break CloseReason::Shutdown,
            };
            if !sent {
                writer_gone = true;
                break CloseReason::Transport(Arc::new(TransportError::Closed));
            }
        }
        if let Some(reason) = end {
            break reason;
        }
    };
    if matches!(reason, CloseReason::Shutdown) {
        cancel.store(true, Ordering::Relaxed);
    }
    // Let the writer send what is queued (the replies, or the closing ERROR), then close.
    drop(tx);
    let result = match writer_result {
        Some(r) => r,
        None => (&mut writer_task.0).await,
    };
    match result {
        Ok((Some(writer), None)) => {
            let _ = close_halves(reader, writer, shared.config.drain_timeout).await;
            reason
        }
        // The writer failed: that is the more precise reason unless we already had one.
        Ok((_, Some(werr))) if writer_gone || matches!(reason, CloseReason::PeerClosed) => werr,
        _ => reason,
    }
}

/// Decide the reply to one message: the job for the writer, and whether to close after it.
fn handle(
    msg: Message,
    peer: SocketAddr,
    info: &SessionInfo,
    shared: &Shared,
) -> (Option<Job>, Option<CloseReason>) {
    match msg {
        Message::Hello(h) => {
            if let Some(g) = &h.gossip {
                shared.record_gossip(peer, g);
            }
            if h.v < PROTOCOL_VERSION {
                let text = format!(
                    "Unsupported protocol version {}: {PROTOCOL_VERSION} required",
                    h.v
                );
                return (Some(Job::Reject(text)), Some(CloseReason::OldVersion(h.v)));
            }
            match (&shared.config.identity, h.bind) {
                (Some(id), true) => (
                    Some(Job::Reply(Message::Hello(info.binding_hello(id)))),
                    None,
                ),
                _ => (None, None),
            }
        }
        Message::Request(id) => (Some(Job::Request(id)), None),
        Message::FindPeers(id) => {
            let peers = shared
                .peers
                .lock()
                .map(|t| {
                    t.lookup(
                        &id,
                        std::time::Instant::now(),
                        shared.config.max_peers_per_reply,
                    )
                })
                .unwrap_or_default();
            (Some(Job::Reply(Message::Peers(peers))), None)
        }
        Message::Announce(a) => {
            if let Ok(mut t) = shared.peers.lock() {
                if !t.insert(a.blob_id, &a.peer_address, std::time::Instant::now()) {
                    tracing::debug!(%peer, "announce table full; ignored");
                }
            }
            (None, None)
        }
        Message::Publish(p) => (Some(Job::Publish(p)), None),
        Message::DhtQuery(payload) => (dht_query(&payload, peer, shared), None),
        Message::DhtResponse(payload) => {
            // We send no queries: nothing waits for a response.
            tracing::debug!(%peer, "ignored a DHT_RESPONSE of {} bytes", payload.len());
            (None, None)
        }
        other @ (Message::Data(_) | Message::Peers(_) | Message::Ok(_) | Message::Error(_)) => {
            let kind = other.kind();
            let text = format!("Bad Request: unexpected {}", kind.name());
            (Some(Job::Reject(text)), Some(CloseReason::Unexpected(kind)))
        }
    }
}

/// The job for a DHT_QUERY: a KRPC `ping` is answered when a DHT is attached; anything else
/// (no DHT, not KRPC, another method) is ignored and logged, never a reason to close.
fn dht_query(payload: &[u8], peer: SocketAddr, shared: &Shared) -> Option<Job> {
    if shared.gateway.read().map(|g| g.is_none()).unwrap_or(true) {
        tracing::debug!(%peer, "ignored a DHT_QUERY: no DHT attached");
        return None;
    }
    match KrpcQuery::decode(payload) {
        Ok(q) if q.method == b"ping" => Some(Job::DhtPing(q.transaction)),
        Ok(q) => {
            tracing::debug!(%peer, method = ?String::from_utf8_lossy(&q.method), "ignored an unanswered DHT_QUERY");
            None
        }
        Err(e) => {
            tracing::debug!(%peer, "ignored a DHT_QUERY: {}", crate::error::ErrorChain(&e));
            None
        }
    }
}

/// Answer jobs in order. Returns the writer for a graceful close, or the reason it failed.
async fn run_writer(
    mut writer: SecureWriter,
    mut rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    pending: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
) -> (Option<SecureWriter>, Option<CloseReason>) {
    let limit = shared.config.idle_timeout;
    while let Some(job) = rx.recv().await {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let (reply, last) = match job {
            Job::Request(id) => {
                let reply = read_blob(&shared.store, id).await;
                if let (Some(pacer), Reply::Frame(f)) = (&shared.pacer, &reply) {
                    pacer.acquire(f.payload().len()).await;
                }
                (Some(reply), false)
            }
            Job::Reply(m) => (Some(Reply::Message(m)), false),
            Job::Publish(p) => (Some(Reply::Message(publish(&shared, p).await)), false),
            Job::DhtPing(t) => (dht_ping(&shared, &t).await.map(Reply::Message), false),
            Job::Reject(text) => (Some(Reply::Message(Message::Error(text))), true),
        };
        let send = async {
            match reply {
                Some(Reply::Message(m)) => writer.send(&m).await,
                Some(Reply::Frame(f)) => writer.send_frame_buf(f).await,
                None => Ok(()),
            }
        };
        match tokio::time::timeout(limit, send).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return (None, Some(CloseReason::Transport(Arc::new(e)))),
            Err(_) => return (None, Some(CloseReason::WriteTimeout)),
        }
        pending.fetch_sub(1, Ordering::Relaxed);
        if last {
            break;
        }
    }
    (Some(writer), None)
}

/// A reply ready to send: a typed message, or a DATA frame read straight from disk into its
/// send buffer (no copy of the blob in memory).
enum Reply {
    Message(Message),
    Frame(FrameBuf),
}

/// Read blob `id` from the store folder into a DATA frame, or `None` when the store does not
/// hold it (or holds something too large to be a blob, which is never read into memory).
fn read_blob_frame(store: &BlobStore, id: &BlobId) -> std::io::Result<Option<FrameBuf>> {
    let Some((mut file, len)) = store.open_item(id).map_err(std::io::Error::other)? else {
        return Ok(None);
    };
    let max = MAX_PAYLOAD_LEN as u64;
    if len > max {
        tracing::warn!("blob {id}: {len} bytes, not servable");
        return Ok(None);
    }
    let mut frame = FrameBuf::new(MessageType::Data as u8, len as usize);
    // One byte past the limit detects a file that grew since the size check.
    frame
        .read_payload_from(&mut file, max + 1)
        .map_err(std::io::Error::other)?;
    if frame.payload().len() > MAX_PAYLOAD_LEN {
        tracing::warn!("blob {id}: grew past the frame limit while read");
        return Ok(None);
    }
    Ok(Some(frame))
}

async fn read_blob(store: &BlobStore, id: BlobId) -> Reply {
    let store = store.clone();
    // File reads block: keep them off the async workers.
    match tokio::task::spawn_blocking(move || read_blob_frame(&store, &id)).await {
        Ok(Ok(Some(frame))) => Reply::Frame(frame),
        Ok(Ok(None)) => Reply::Message(Message::Error(NOT_FOUND.into())),
        Ok(Err(e)) => {
            tracing::warn!("blob {id}: {}", crate::error::ErrorChain(&e));
            Reply::Message(Message::Error(NOT_FOUND.into()))
        }
        Err(e) => {
            tracing::warn!("blob {id}: read task failed: {e}");
            Reply::Message(Message::Error(NOT_FOUND.into()))
        }
    }
}

/// The DHT_RESPONSE to a KRPC `ping` (`"y":"r"`, the same `t`, `r.id` = our node id), or
/// `None` when no DHT is attached (any more) or it has no id to give.
async fn dht_ping(shared: &Shared, transaction: &[u8]) -> Option<Message> {
    let gateway = shared.gateway.read().ok().and_then(|g| g.clone())?;
    let id = gateway.node_id().await?;
    Some(Message::DhtResponse(KrpcResponse::encode(transaction, &id)))
}

async fn publish(shared: &Shared, item: Publish) -> Message {
    let gateway = shared.gateway.read().ok().and_then(|g| g.clone());
    match gateway {
        None => Message::Error(NOT_A_GATEWAY.into()),
        Some(g) => match g.publish(item).await {
            Ok(()) => Message::Ok(PUBLISHED.into()),
            Err(reason) => Message::Error(reason),
        },
    }
}
