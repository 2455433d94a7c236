//! Acceptance 3: misbehaving clients against a running server. Each test opens one bad
//! connection, checks that a well-behaved client is served while it is open, that the server
//! ends only the bad connection (orderly FIN, no reset, where a graceful close is possible)
//! and publishes the specific reason, and that the server keeps serving afterwards. A panic in
//! a connection task would lose its close event and fail the test.

mod common;

use megatorrent::id::BlobId;
use megatorrent::peer::{CloseReason, ServerConfig};
use megatorrent::transport::{Message, Transport, TransportError};
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Records the largest single allocation, to show a huge length prefix allocates nothing.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

const LIMIT: Duration = Duration::from_secs(20);

use common::low_order::LOW_ORDER_POINTS;

use common::server::{raw_session, TestServer as Fixture};

async fn fixture() -> Fixture {
    let config = ServerConfig {
        // Short enough for quick tests, long enough for a loaded 2-core machine.
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        drain_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    Fixture::start(config).await
}

/// What every misbehaviour test ends with.
trait Finish {
    async fn finish(self, local: SocketAddr) -> CloseReason;
}

impl Finish for Fixture {
    async fn finish(mut self, local: SocketAddr) -> CloseReason {
        let reason = self.reason_for(local).await;
        self.good_fetch().await;
        timeout(LIMIT, self.handle.shutdown()).await.unwrap();
        reason
    }
}

/// Read until the server closes; the close must be orderly (EOF, not a reset). Returns the
/// messages received before it.
async fn read_to_eof(tcp: &mut TcpStream, t: Option<&mut Transport>) -> Vec<Message> {
    let mut all = Vec::new();
    let r = timeout(LIMIT, tcp.read_to_end(&mut all))
        .await
        .expect("server did not close");
    r.expect("the server reset the connection instead of closing it");
    let mut msgs = Vec::new();
    if let Some(t) = t {
        let mut rest = &all[..];
        while !rest.is_empty() {
            let (n, p) = t.push(rest).unwrap();
            rest = &rest[n..];
            msgs.extend(p.map(|p| p.into_message().unwrap()));
        }
    }
    msgs
}

async fn send_frame(tcp: &mut TcpStream, t: &mut Transport, msg_type: u8, payload: &[u8]) {
    let mut out = Vec::new();
    t.seal_into(msg_type, payload, &mut out).unwrap();
    tcp.write_all(&out).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_instead_of_a_key() {
    let f = fixture().await;
    // Too few bytes for a key, then end of stream.
    let mut tcp = TcpStream::connect(f.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let mut junk = [0u8; 20];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut junk);
    tcp.write_all(&junk).await.unwrap();
    tcp.shutdown().await.unwrap();
    f.good_fetch().await;
    let mut sink = Vec::new();
    let _ = timeout(LIMIT, tcp.read_to_end(&mut sink)).await.unwrap();
    let reason = f.finish(local).await;
    assert!(
        matches!(&reason, CloseReason::Handshake(e) if matches!(**e, TransportError::Truncated(_))),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_as_key_and_frames() {
    let f = fixture().await;
    let mut tcp = TcpStream::connect(f.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let mut junk = vec![0u8; 300];
    rand::rngs::StdRng::seed_from_u64(2).fill_bytes(&mut junk);
    tcp.write_all(&junk).await.unwrap();
    f.good_fetch().await;
    read_to_eof(&mut tcp, None).await;
    let reason = f.finish(local).await;
    // A random key is accepted (it is contributory); the random "frame" is then refused by
    // its length or its tag.
    assert!(
        matches!(&reason, CloseReason::Transport(e)
            if matches!(**e, TransportError::BadFrameLength(_) | TransportError::BadTag)),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_low_order_point_as_key() {
    let mut f = fixture().await;
    for point in LOW_ORDER_POINTS {
        let mut tcp = TcpStream::connect(f.addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        tcp.write_all(&hex::decode(point).unwrap()).await.unwrap();
        // The server sends its key, then closes: no session exists to say more.
        let mut got = Vec::new();
        timeout(LIMIT, tcp.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 32, "{point}");
        let reason = f.reason_for(local).await;
        assert!(
            matches!(&reason, CloseReason::Handshake(e) if matches!(**e, TransportError::LowOrderKey)),
            "{point}: {reason:?}"
        );
    }
    f.good_fetch().await;
    f.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_prefixes() {
    for len in [0u32, 16, u32::MAX] {
        let f = fixture().await;
        let (mut tcp, _t) = raw_session(f.addr).await;
        let local = tcp.local_addr().unwrap();
        let before = LARGEST.load(Ordering::Relaxed);
        tcp.write_all(&len.to_be_bytes()).await.unwrap();
        read_to_eof(&mut tcp, None).await;
        let reason = f.finish(local).await;
        assert!(
            matches!(&reason, CloseReason::Transport(e) if matches!(**e, TransportError::BadFrameLength(l) if l == len)),
            "{len}: {reason:?}"
        );
        // Nothing near the announced size was ever allocated (blobs are ~1 MiB).
        let largest = LARGEST.load(Ordering::Relaxed).max(before);
        assert!(
            largest < 16 << 20,
            "largest allocation {largest} for length {len}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_with_bad_tag() {
    let f = fixture().await;
    let (mut tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    let mut out = Vec::new();
    t.seal_message(&Message::Request(f.id), &mut out).unwrap();
    *out.last_mut().unwrap() ^= 0x80;
    tcp.write_all(&out).await.unwrap();
    f.good_fetch().await;
    assert!(read_to_eof(&mut tcp, Some(&mut t)).await.is_empty());
    let reason = f.finish(local).await;
    assert!(
        matches!(&reason, CloseReason::Transport(e) if matches!(**e, TransportError::BadTag)),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_then_eof() {
    let f = fixture().await;
    let (mut tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    let mut out = Vec::new();
    t.seal_message(&Message::Request(f.id), &mut out).unwrap();
    tcp.write_all(&out[..out.len() - 10]).await.unwrap();
    f.good_fetch().await;
    tcp.shutdown().await.unwrap();
    read_to_eof(&mut tcp, None).await;
    let reason = f.finish(local).await;
    assert!(
        matches!(&reason, CloseReason::Transport(e) if matches!(**e, TransportError::Truncated("frame"))),
        "{reason:?}"
    );
}

/// Send one frame, expect ERROR starting with `error_prefix`, then an orderly close.
async fn bad_request(msg_type: u8, payload: &[u8], error_prefix: &str) -> CloseReason {
    let f = fixture().await;
    let (mut tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    send_frame(&mut tcp, &mut t, msg_type, payload).await;
    f.good_fetch().await;
    let msgs = read_to_eof(&mut tcp, Some(&mut t)).await;
    match &msgs[..] {
        [Message::Error(text)] => assert!(text.starts_with(error_prefix), "{text}"),
        other => panic!("expected one ERROR, got {other:?}"),
    }
    f.finish(local).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_path_traversal_and_short_id() {
    let reason = bad_request(2, b"../x", "Bad Request").await;
    assert!(
        matches!(&reason, CloseReason::BadMessage(e) if matches!(**e, TransportError::BadId { message: "REQUEST", .. })),
        "{reason:?}"
    );
    let id63 = &BlobId::of(b"x").to_hex()[..63];
    let reason = bad_request(2, id63.as_bytes(), "Bad Request").await;
    assert!(
        matches!(&reason, CloseReason::BadMessage(e) if matches!(**e, TransportError::BadId { message: "REQUEST", .. })),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_id_is_not_found_and_the_connection_stays_usable() {
    let f = fixture().await;
    let (mut tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    let unknown = BlobId::of(b"nobody has this");
    // Pipelined: unknown, known; answered in order.
    send_frame(&mut tcp, &mut t, 2, unknown.to_hex().as_bytes()).await;
    send_frame(&mut tcp, &mut t, 2, f.id.to_hex().as_bytes()).await;
    tcp.shutdown().await.unwrap();
    let msgs = read_to_eof(&mut tcp, Some(&mut t)).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], Message::Error("Not Found".into()));
    assert!(msgs[1] == Message::Data(f.blob.clone()));
    let reason = f.finish(local).await;
    assert!(matches!(reason, CloseReason::PeerClosed), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_in_hello_announce_publish() {
    // (A HELLO that does not parse is ignored: see tolerated_messages_keep_the_connection.)
    for (t, payload, name) in [
        (
            7u8,
            &b"{\"blobId\":\"zz\",\"peerAddress\":1}"[..],
            "ANNOUNCE",
        ),
        (7, b"[", "ANNOUNCE"),
        (6, b"{\"k\":\"00\",\"seq\":\"x\"}", "PUBLISH"),
    ] {
        let reason = bad_request(t, payload, "Bad Request").await;
        let ok = match &reason {
            CloseReason::BadMessage(e) => match &**e {
                TransportError::BadPayload { message, .. } => *message == name,
                TransportError::BadId { message, .. } => *message == name,
                _ => false,
            },
            _ => false,
        };
        assert!(ok, "{name}: {reason:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_version_and_server_only_messages() {
    let reason = bad_request(1, br#"{"v":4}"#, "Unsupported protocol version 4").await;
    assert!(matches!(reason, CloseReason::OldVersion(4)), "{reason:?}");
    let reason = bad_request(1, br#"{"v":"0"}"#, "Unsupported protocol version 0").await;
    assert!(matches!(reason, CloseReason::OldVersion(0)), "{reason:?}");
    let reason = bad_request(3, b"data from a client", "Bad Request").await;
    assert!(
        matches!(
            reason,
            CloseReason::Unexpected(megatorrent::transport::MessageType::Data)
        ),
        "{reason:?}"
    );
}

/// PROTOCOL.md 5.3: what the reference tolerates keeps the connection open: HELLOs without or
/// with a string version, with unknown keys or that do not parse, unknown types, DHT_QUERY on a
/// server without a DHT, DHT_RESPONSE. The REQUEST after them is answered in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolerated_messages_keep_the_connection() {
    let f = fixture().await;
    let (mut tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    for (msg_type, payload) in [
        (1u8, &b"{}"[..]),
        (1, br#"{"v":"5","x":[1]}"#),
        (1, b"{\"v\":5,"),
        (1, b"\xff"),
        (0x42, b""),
        (0x00, b"x"),
        (0xfe, b"x"),
        (0x09, b"d1:q4:ping1:t2:aa1:y1:qe"),
        (0x09, b"junk"),
        (0x0a, b"d1:rd2:id20:aaaaaaaaaaaaaaaaaaaae1:t2:aa1:y1:re"),
    ] {
        send_frame(&mut tcp, &mut t, msg_type, payload).await;
    }
    send_frame(&mut tcp, &mut t, 2, f.id.to_hex().as_bytes()).await;
    tcp.shutdown().await.unwrap();
    let msgs = read_to_eof(&mut tcp, Some(&mut t)).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0] == Message::Data(f.blob.clone()));
    let reason = f.finish(local).await;
    assert!(matches!(reason, CloseReason::PeerClosed), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_before_and_after_the_handshake() {
    // Connects and sends nothing: the handshake times out.
    let f = fixture().await;
    let mut tcp = TcpStream::connect(f.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    f.good_fetch().await;
    let mut got = Vec::new();
    timeout(LIMIT, tcp.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let reason = f.finish(local).await;
    assert!(
        matches!(&reason, CloseReason::Handshake(e) if matches!(**e, TransportError::HandshakeTimeout)),
        "{reason:?}"
    );
    // Completes the handshake, then says nothing: the idle time-out.
    let f = fixture().await;
    let (mut tcp, _t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    f.good_fetch().await;
    read_to_eof(&mut tcp, None).await;
    let reason = f.finish(local).await;
    assert!(matches!(reason, CloseReason::IdleTimeout), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_resets() {
    let f = fixture().await;
    let (tcp, mut t) = raw_session(f.addr).await;
    let local = tcp.local_addr().unwrap();
    let mut tcp = tcp;
    let mut out = Vec::new();
    t.seal_message(&Message::Request(f.id), &mut out).unwrap();
    tcp.write_all(&out[..10]).await.unwrap();
    // SO_LINGER 0: closing sends RST (deprecated only because a non-zero linger blocks).
    #[allow(deprecated)]
    tcp.set_linger(Some(Duration::ZERO)).unwrap();
    drop(tcp);
    f.good_fetch().await;
    let reason = f.finish(local).await;
    assert!(
        matches!(&reason, CloseReason::Transport(e) if matches!(**e, TransportError::Io(_) | TransportError::Truncated(_))),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bad_connections_at_once_do_not_disturb_a_download() {
    let f = fixture().await;
    let mut bad = Vec::new();
    for i in 0..20u64 {
        let mut tcp = TcpStream::connect(f.addr).await.unwrap();
        let mut junk = vec![0u8; 64];
        rand::rngs::StdRng::seed_from_u64(100 + i).fill_bytes(&mut junk);
        tcp.write_all(&junk).await.unwrap();
        bad.push(tcp);
    }
    for _ in 0..3 {
        f.good_fetch().await;
    }
    drop(bad);
    timeout(LIMIT, f.handle.shutdown()).await.unwrap();
}
