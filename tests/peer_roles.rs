//! Server and fetcher behaviour over loopback: identity binding through a relaying man in the
//! middle (acceptance 4), pipelined fetching with per-blob outcomes, ANNOUNCE/FIND_PEERS,
//! PUBLISH with and without a gateway, gossip, the connection limit and shutdown.

use megatorrent::blob::BlobStore;
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::peer::{
    BlobFetcher, BlobServer, CloseReason, FetcherOptions, Gateway, GatewayFuture, GossipHint,
    PeerError, ServerConfig, ServerHandle,
};
use megatorrent::transport::{
    accept, connect, AcceptOptions, ConnectOptions, Message, Publish, TransportError,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn server(store: BlobStore, config: ServerConfig) -> ServerHandle {
    BlobServer::bind("127.0.0.1:0", store, config)
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

/// A server on a new empty store, and the folder that holds it (removed when dropped).
async fn empty_server(config: ServerConfig) -> (tempfile::TempDir, ServerHandle) {
    let dir = tempfile::tempdir().unwrap();
    let handle = server(BlobStore::open(dir.path()).unwrap(), config).await;
    (dir, handle)
}

/// A fetcher with the default options, connected to `addr`.
async fn fetcher(addr: SocketAddr) -> BlobFetcher {
    BlobFetcher::connect(addr, &FetcherOptions::default())
        .await
        .unwrap()
}

fn store_with(dir: &std::path::Path, items: &[&[u8]]) -> (BlobStore, Vec<BlobId>) {
    let store = BlobStore::open(dir).unwrap();
    let ids = items
        .iter()
        .map(|b| store.put_content(b).unwrap())
        .collect();
    (store, ids)
}

/// A man in the middle: runs its own v5 handshake with the client and with the server and
/// relays every message, reading all of them in clear. Returns the messages it saw.
async fn relay_once(listener: TcpListener, upstream: SocketAddr) -> Vec<Message> {
    let (tcp, _) = listener.accept().await.unwrap();
    let down = accept(tcp, &AcceptOptions::default()).await.unwrap();
    let up = connect(upstream, &ConnectOptions::default()).await.unwrap();
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    tokio::join!(
        async move {
            while let Ok(Some(m)) = dr.recv().await {
                s1.lock().unwrap().push(m.clone());
                if uw.send(&m).await.is_err() {
                    break;
                }
            }
            let _ = uw.shutdown().await;
            dr.drain(Duration::from_secs(1)).await;
        },
        async move {
            while let Ok(Some(m)) = ur.recv().await {
                s2.lock().unwrap().push(m.clone());
                if dw.send(&m).await.is_err() {
                    break;
                }
            }
            let _ = dw.shutdown().await;
            ur.drain(Duration::from_secs(1)).await;
        }
    );
    let seen = seen.lock().unwrap().clone();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_detects_a_relaying_mitm_and_verifies_directly() {
    timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store_with(dir.path(), &[b"secret blob"]);
        let identity = Identity::generate();
        let expected = identity.public_key_bytes();
        let handle = server(
            store,
            ServerConfig::default().identity(Some(Arc::new(identity))),
        )
        .await;
        let binding = ConnectOptions::default().expect_identity(Some(expected));

        // Directly: the proof verifies and the connection is usable.
        let stream = connect(handle.local_addr(), &binding).await.unwrap();
        let mut f = BlobFetcher::from_stream(stream, &FetcherOptions::default());
        assert_eq!(f.fetch(ids[0]).await.unwrap(), b"secret blob");
        f.close().await;

        // Without binding the relay works unnoticed (and reads everything)...
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let relay = tokio::spawn(relay_once(proxy, handle.local_addr()));
        let mut f = fetcher(proxy_addr).await;
        assert_eq!(f.fetch(ids[0]).await.unwrap(), b"secret blob");
        f.close().await;
        let seen = relay.await.unwrap();
        assert!(seen.contains(&Message::Data(b"secret blob".to_vec())));

        // ...with binding the client detects it: the server's proof covers the relay's keys.
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let relay = tokio::spawn(relay_once(proxy, handle.local_addr()));
        let r = connect(proxy_addr, &binding).await;
        assert!(
            matches!(r, Err(TransportError::BindingBadSignature)),
            "{r:?}"
        );
        let seen = relay.await.unwrap();
        // The relay forwarded the binding request and the server's answer, and nothing more:
        // the client closed before any request.
        assert!(matches!(&seen[0], Message::Hello(h) if h.bind));
        assert!(matches!(&seen[1], Message::Hello(h) if h.id == Some(expected)));
        assert_eq!(seen.len(), 2);
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_against_a_server_without_identity() {
    timeout(LIMIT, async {
        let (_dir, handle) = empty_server(ServerConfig::default()).await;
        let opts = ConnectOptions::default()
            .expect_identity(Some([7; 32]))
            .handshake_timeout(Duration::from_millis(500));
        // Like a reference server, it ignores "bind": the client gives up.
        let r = connect(handle.local_addr(), &opts).await;
        assert!(matches!(r, Err(TransportError::BindingMissing)), "{r:?}");
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_fetch_with_per_blob_outcomes() {
    timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..1_048_592u32).map(|i| (i % 253) as u8).collect();
        let small: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100 + i as usize]).collect();
        let mut items: Vec<&[u8]> = small.iter().map(Vec::as_slice).collect();
        items.push(&big);
        let (store, mut ids) = store_with(&dir.path().join("src"), &items);
        // A lying server: content stored under an id it does not hash to.
        let liar = BlobId::of(b"what the id promises");
        std::fs::write(store.path_of(&liar), b"something else").unwrap();
        let missing = BlobId::of(b"missing");
        // A file too large to be a blob is not served (nor read into memory).
        let huge = BlobId::of(b"huge");
        let huge_len = megatorrent::transport::MAX_PAYLOAD_LEN + 1;
        std::fs::write(store.path_of(&huge), vec![0u8; huge_len]).unwrap();
        ids.insert(3, missing);
        ids.insert(7, liar);
        ids.insert(10, huge);
        let handle = server(store, ServerConfig::default()).await;

        let dest = BlobStore::open(dir.path().join("dest")).unwrap();
        let opts = FetcherOptions::default().pipeline_depth(4);
        let mut f = BlobFetcher::connect(handle.local_addr(), &opts).await.unwrap();
        let results = f.fetch_into(&dest, &ids).await;
        assert_eq!(results.len(), ids.len());
        for (i, (id, r)) in ids.iter().zip(&results).enumerate() {
            match i {
                3 => assert!(matches!(r, Err(PeerError::NotFound(x)) if *x == missing)),
                10 => assert!(matches!(r, Err(PeerError::NotFound(x)) if *x == huge)),
                7 => assert!(
                    matches!(r, Err(PeerError::HashMismatch { id: x, peer }) if *x == liar && *peer == handle.local_addr())
                ),
                _ => {
                    assert!(r.is_ok(), "{id}: {r:?}");
                    assert!(dest.get_verified(id).unwrap().is_some());
                }
            }
        }
        assert!(!dest.contains(&liar) && !dest.contains(&missing));
        // The same connection serves more afterwards.
        assert!(f.is_usable());
        assert_eq!(f.fetch(ids[0]).await.unwrap(), small[0]);
        f.close().await;
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_then_find_peers() {
    timeout(LIMIT, async {
        let config = ServerConfig::default().max_peers_per_reply(2);
        let (_dir, handle) = empty_server(config).await;
        let id = BlobId::of(b"shared");
        let mut a = fetcher(handle.local_addr()).await;
        assert!(a.find_peers(id).await.unwrap().is_empty());
        for port in [1001, 1002, 1003] {
            a.announce(id, &format!("10.0.0.1:{port}")).await.unwrap();
        }
        assert!(matches!(
            a.announce(id, "no-port").await,
            Err(PeerError::Refused(_))
        ));
        // A round trip on the same connection: the server has handled the announcements.
        assert_eq!(a.find_peers(id).await.unwrap().len(), 2);
        // Another connection sees them, newest first, at most 2.
        let mut b = fetcher(handle.local_addr()).await;
        let peers = b.find_peers(id).await.unwrap();
        assert_eq!(peers.len(), 2);
        assert!(peers.iter().all(|p| p.starts_with("10.0.0.1:100")));
        assert!(b.find_peers(BlobId::of(b"other")).await.unwrap().is_empty());
        a.close().await;
        b.close().await;
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

struct RecordingGateway(Mutex<Vec<Publish>>);

impl Gateway for RecordingGateway {
    fn publish(&self, item: Publish) -> GatewayFuture {
        let verdict = if item.seq >= 0 {
            Ok(())
        } else {
            Err("Invalid sequence".to_owned())
        };
        self.0.lock().unwrap().push(item);
        Box::pin(async move { verdict })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_without_and_with_a_gateway() {
    timeout(LIMIT, async {
        let (_dir, handle) = empty_server(ServerConfig::default()).await;
        let item = Publish {
            k: [1; 32],
            seq: 3,
            v: b"3:abc".to_vec(),
            sig: [2; 64],
            salt: None,
        };
        let mut c = fetcher(handle.local_addr()).await;
        assert!(matches!(
            c.publish(item.clone()).await,
            Err(PeerError::Refused(t)) if t == "Not a Gateway"
        ));
        let gw = Arc::new(RecordingGateway(Mutex::new(Vec::new())));
        handle.set_gateway(Some(gw.clone()));
        assert_eq!(c.publish(item.clone()).await.unwrap(), "Published");
        let bad = Publish {
            seq: -1,
            ..item.clone()
        };
        assert!(matches!(
            c.publish(bad).await,
            Err(PeerError::Refused(t)) if t == "Invalid sequence"
        ));
        assert_eq!(gw.0.lock().unwrap()[0], item);
        c.close().await;
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_in_hello_reaches_subscribers() {
    timeout(LIMIT, async {
        let (_dir, handle) = empty_server(ServerConfig::default()).await;
        let mut hints = handle.subscribe_gossip();
        let mut gossip = BTreeMap::new();
        gossip.insert([5u8; 32], 17i64);
        let opts = ConnectOptions::default().gossip(Some(gossip));
        let s = connect(handle.local_addr(), &opts).await.unwrap();
        let hint = hints.recv().await.unwrap();
        assert_eq!((hint.key, hint.seq), ([5; 32], 17));
        s.close().await.unwrap();

        // The nested form some peers send.
        let mut s = connect(handle.local_addr(), &ConnectOptions::default())
            .await
            .unwrap();
        let key = hex::encode([6u8; 32]);
        let (mut r, mut w) = {
            let payload = format!(r#"{{"v":5,"gossip":{{"sequences":{{"{key}":4}}}}}}"#);
            s.send(&Message::parse(1, payload.into_bytes()).unwrap())
                .await
                .unwrap();
            s.into_split()
        };
        let GossipHint { key: k, seq, .. } = hints.recv().await.unwrap();
        assert_eq!((k, seq), ([6; 32], 4));
        assert_eq!(handle.gossiped_sequence(&[6; 32]), Some(4));
        assert_eq!(handle.gossiped_sequence(&[5; 32]), Some(17));
        w.shutdown().await.unwrap();
        assert!(r.recv().await.unwrap().is_none());
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_graceful_shutdown() {
    timeout(LIMIT, async {
        let config = ServerConfig::default().max_connections(1);
        let (_dir, handle) = empty_server(config).await;
        let mut closed = handle.subscribe_closed();
        let first = connect(handle.local_addr(), &ConnectOptions::default())
            .await
            .unwrap();
        // Over the limit: closed in order (FIN, no reset) before any handshake.
        let mut second = TcpStream::connect(handle.local_addr()).await.unwrap();
        let local = second.local_addr().unwrap();
        let mut sink = Vec::new();
        second.read_to_end(&mut sink).await.unwrap();
        assert!(sink.is_empty());
        let ev = closed.recv().await.unwrap();
        assert_eq!(ev.peer, local);
        assert!(matches!(ev.reason, CloseReason::ConnectionLimit));
        assert_eq!(handle.active_connections(), 1);

        // Shutdown closes the open connection in order too.
        let (mut r, _w) = first.into_split();
        handle.shutdown().await;
        assert!(r.recv().await.unwrap().is_none());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_server() {
    timeout(LIMIT, async {
        let (_dir, handle) = empty_server(ServerConfig::default()).await;
        let addr = handle.local_addr();
        let open = connect(addr, &ConnectOptions::default()).await.unwrap();
        drop(handle);
        // The open connection is closed in order, and the port stops accepting.
        let (mut r, _w) = open.into_split();
        assert!(r.recv().await.unwrap().is_none());
        // Until the listener is gone a connect may still land in its backlog (and be reset).
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .unwrap();
}
