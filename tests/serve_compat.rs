//! Issue #11 part 2 against a running `megatorrent serve` with a DHT on a loopback testnet:
//! what the reference accepts on the wire is accepted (HELLO `{}`, `{"v":"5"}`, unknown keys,
//! a HELLO that does not parse, unknown message types, DHT_QUERY), a KRPC ping in DHT_QUERY is
//! answered, and an explicit old version still gets ERROR and a close. The client is the
//! crate's sans-IO transport over a plain socket.

mod common;

use common::cli::{lines, terminate, BIN};
use common::server::raw_session;
use megatorrent::blob::BlobStore;
use megatorrent::id::BlobId;
use megatorrent::transport::{KrpcQuery, KrpcResponse, Message, Transport};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

/// A child process stopped (SIGTERM, then kill) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if terminate(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The next stdout line of a command, within 30 s.
fn next_line(out: &Receiver<String>, what: &str) -> String {
    out.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("{what}: no line within {LIMIT:?}"))
}

/// `megatorrent dht node` on loopback (a one-node testnet) and `megatorrent serve` bootstrapped
/// on it, serving a store with one blob.
struct Setup {
    _node: Running,
    _serve: Running,
    addr: SocketAddr,
    dht_id: [u8; 20],
    id: BlobId,
    blob: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn spawn(args: &[&str]) -> (Running, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    (Running(child), out)
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let store = BlobStore::open(&blobs).unwrap();
    let blob: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let id = store.put_content(&blob).unwrap();

    let (node, node_out) = spawn(&["dht", "node", "--listen", "127.0.0.1:0"]);
    let line = next_line(&node_out, "dht node");
    let bootstrap = line.strip_prefix("dht listening ").unwrap().to_owned();
    let (serve, serve_out) = spawn(&[
        "serve",
        "--blobs",
        blobs.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        &bootstrap,
    ]);
    let line = next_line(&serve_out, "serve");
    let addr = line.strip_prefix("listening ").unwrap().parse().unwrap();
    // "dht listening <addr> id <40 hex>": the DHT is attached once this line is out.
    let line = next_line(&serve_out, "serve's DHT");
    let (dht_addr, id_hex) = line
        .strip_prefix("dht listening ")
        .and_then(|rest| rest.split_once(" id "))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert!(
        dht_addr.starts_with("127.0.0.1:"),
        "DHT not on loopback: {line}"
    );
    let dht_id = hex::decode(id_hex).unwrap().try_into().unwrap();
    Setup {
        _node: node,
        _serve: serve,
        addr,
        dht_id,
        id,
        blob,
        _dir: dir,
    }
}

/// A raw connection: frames sealed and opened by the core transport.
struct Conn {
    tcp: TcpStream,
    t: Transport,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let (tcp, t) = timeout(LIMIT, raw_session(addr)).await.unwrap();
        Conn {
            tcp,
            t,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, msg_type: u8, payload: &[u8]) {
        let mut out = Vec::new();
        self.t.seal_into(msg_type, payload, &mut out).unwrap();
        self.tcp.write_all(&out).await.unwrap();
    }

    /// The next message, or `None` when the server closed (orderly: a reset fails the test).
    async fn recv(&mut self) -> Option<Message> {
        timeout(LIMIT, async {
            loop {
                if !self.buf.is_empty() {
                    let (n, p) = self.t.push(&self.buf).unwrap();
                    self.buf.drain(..n);
                    if let Some(p) = p {
                        return Some(p.into_message().unwrap());
                    }
                    if n > 0 {
                        continue;
                    }
                }
                let mut chunk = [0u8; 65536];
                let n = self
                    .tcp
                    .read(&mut chunk)
                    .await
                    .expect("the server reset the connection");
                if n == 0 {
                    assert!(self.buf.is_empty(), "stream ended inside a frame");
                    return None;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("no message and no close within the limit")
    }

    /// REQUEST the blob and expect its DATA: the connection is still served.
    async fn still_served(&mut self, s: &Setup) {
        self.send(0x02, s.id.to_hex().as_bytes()).await;
        match self.recv().await {
            Some(Message::Data(d)) => assert!(d == s.blob, "wrong DATA"),
            other => panic!("expected DATA, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_accepts_what_the_reference_accepts() {
    let s = setup();

    // The reference's PEX client: HELLO {} then FIND_PEERS gets PEERS.
    let mut c = Conn::open(s.addr).await;
    c.send(0x01, b"{}").await;
    c.send(0x04, s.id.to_hex().as_bytes()).await;
    assert_eq!(c.recv().await, Some(Message::Peers(vec![])));
    c.still_served(&s).await;

    // A numeric string version, unknown keys, a HELLO that does not parse: all accepted.
    let mut c = Conn::open(s.addr).await;
    for hello in [
        &br#"{"v":"5"}"#[..],
        br#"{"v":5,"client":"x","caps":[1,{"a":null}]}"#,
        br#"{"v":"5","gossip":{"zz":1}}"#,
        b"{\"v\":5,",
        b"\xff\xfe",
        b"[4]",
    ] {
        c.send(0x01, hello).await;
        c.still_served(&s).await;
    }

    // An unknown type is ignored; the next REQUEST on the same connection is answered.
    let mut c = Conn::open(s.addr).await;
    c.send(0x42, b"whatever \x00\x01").await;
    c.send(0x42, b"").await;
    c.still_served(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_explicit_old_version() {
    let s = setup();
    for hello in [
        &br#"{"v":4}"#[..],
        br#"{"v":"4"}"#,
        br#"{"v":4.5,"gossip":{}}"#,
    ] {
        let mut c = Conn::open(s.addr).await;
        c.send(0x01, hello).await;
        match c.recv().await {
            Some(Message::Error(text)) => {
                assert!(text.starts_with("Unsupported protocol version 4"), "{text}")
            }
            other => panic!("{hello:?}: expected ERROR, got {other:?}"),
        }
        assert_eq!(c.recv().await, None, "{hello:?}: not closed after ERROR");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_a_krpc_ping_in_dht_query() {
    let s = setup();
    let mut c = Conn::open(s.addr).await;
    let sender = [0x5a; 20];
    c.send(0x09, &KrpcQuery::ping(b"tx42", &sender)).await;
    let payload = match c.recv().await {
        Some(Message::DhtResponse(p)) => p,
        other => panic!("expected DHT_RESPONSE, got {other:?}"),
    };
    let response = KrpcResponse::decode(&payload).unwrap();
    assert_eq!(response.transaction, b"tx42");
    assert_eq!(response.id, s.dht_id, "not the server's DHT node id");
    // The raw form, by hand: {"r":{"id":<20 bytes>},"t":"tx42","y":"r"}.
    let mut expected = b"d1:rd2:id20:".to_vec();
    expected.extend_from_slice(&s.dht_id);
    expected.extend_from_slice(b"e1:t4:tx421:y1:re");
    assert_eq!(payload, expected);

    // What it does not answer is ignored, never a reason to close: another method, a response,
    // not bencode, not a query, nesting beyond the cap.
    let find_node =
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q9:find_node1:t2:xy1:y1:qe";
    c.send(0x09, find_node).await;
    c.send(0x0A, &KrpcResponse::encode(b"zz", &sender)).await;
    c.send(0x09, b"not bencode").await;
    c.send(0x09, b"d1:t2:aa1:y1:re").await;
    c.send(0x09, &[b'l'; 5000]).await;
    c.still_served(&s).await;
    // And the connection still answers the next ping.
    c.send(0x09, &KrpcQuery::ping(b"\x00\xff", &sender)).await;
    match c.recv().await {
        Some(Message::DhtResponse(p)) => {
            assert_eq!(KrpcResponse::decode(&p).unwrap().transaction, b"\x00\xff")
        }
        other => panic!("expected DHT_RESPONSE, got {other:?}"),
    }
}
