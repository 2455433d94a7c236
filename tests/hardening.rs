//! Bad inputs listed in docs/SECURITY.md that no other test covered: each gets its specific
//! typed error (or close reason), and a well-behaved peer is still served.

mod common;

use megatorrent::dht::{DhtError, MutableRecord, RecordError};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, secretbox, Collection, ManifestContent, ManifestError, ReadKey,
    SignedManifest, MAX_MANIFEST_LEN,
};
use megatorrent::peer::{
    BlobFetcher, CloseReason, FetcherOptions, PeerError, ServerConfig, NOT_A_GATEWAY,
};
use megatorrent::transport::{
    accept, AcceptOptions, ConnectOptions, Message, Publish, TransportError,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------
// Manifests
// ------------------------------------------------------------------------------------------

#[test]
fn manifest_over_64_mib_is_refused_before_parsing() {
    let huge = vec![b'x'; MAX_MANIFEST_LEN + 1];
    assert_eq!(
        SignedManifest::verify(&huge).unwrap_err(),
        ManifestError::TooLarge {
            len: MAX_MANIFEST_LEN + 1,
            max: MAX_MANIFEST_LEN
        }
    );
    // At the limit the text is parsed (and refused for what it is).
    assert!(matches!(
        SignedManifest::verify(&huge[1..]),
        Err(ManifestError::BadJson(_))
    ));
}

#[test]
fn private_manifest_whose_plaintext_is_not_utf8() {
    let identity = Identity::from_seed(&[4; 32]);
    let key = [5u8; 32];
    let nonce = [6u8; 24];
    let ciphertext = secretbox::seal(&key, &nonce, b"{\"collections\":[],\"timestamp\":1\xff}");
    let unsigned = format!(
        "{{\"publicKey\":\"{}\",\"sequence\":1,\"encrypted\":true,\"nonce\":\"{}\",\"ciphertext\":\"{}\"}}",
        identity.public_key_hex(),
        hex::encode(nonce),
        hex::encode(ciphertext)
    );
    let sig = hex::encode(identity.sign(unsigned.as_bytes()));
    let text = format!(
        "{},\"signature\":\"{sig}\"}}",
        &unsigned[..unsigned.len() - 1]
    );
    // The envelope is valid; only its content is not.
    let m = SignedManifest::verify(text.as_bytes()).unwrap();
    let key = ReadKey::from_bytes(key);
    assert_eq!(m.decrypt(&key).unwrap_err(), ManifestError::BadPlaintext);
    assert_eq!(
        m.decrypted_json(&key).unwrap_err(),
        ManifestError::BadPlaintext
    );
}

// ------------------------------------------------------------------------------------------
// Blob server and fetcher
// ------------------------------------------------------------------------------------------

use common::server::{raw_session, TestServer as Server};

async fn server(config: ServerConfig) -> Server {
    Server::start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_in_order() {
    let mut s = server(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let held: Vec<_> = vec![raw_session(s.addr).await, raw_session(s.addr).await];
    // Both held sessions count before the third arrives.
    timeout(LIMIT, async {
        while s.handle.active_connections() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let local = third.local_addr().unwrap();
    let mut got = Vec::new();
    // Closed with a FIN (not a reset), before any key is sent.
    timeout(LIMIT, third.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got.is_empty());
    assert!(matches!(
        s.reason_for(local).await,
        CloseReason::ConnectionLimit
    ));
    // Freeing a slot lets a good client in.
    let (first, _) = held.into_iter().next().unwrap();
    let first_local = first.local_addr().unwrap();
    drop(first);
    assert!(matches!(
        s.reason_for(first_local).await,
        CloseReason::PeerClosed | CloseReason::Transport(_)
    ));
    s.good_fetch().await;
    timeout(LIMIT, s.handle.shutdown()).await.unwrap();
}

/// Ask for `requests` blobs (1 MiB each) and read none of the replies; returns why the server
/// closed the connection. A good client is served meanwhile and afterwards.
async fn never_read(requests: usize) -> CloseReason {
    let mut s = server(ServerConfig {
        idle_timeout: Duration::from_millis(1500),
        ..ServerConfig::default()
    })
    .await;
    let (mut tcp, mut t) = raw_session(s.addr).await;
    let local = tcp.local_addr().unwrap();
    let mut out = Vec::new();
    for _ in 0..requests {
        t.seal_message(&Message::Request(s.id), &mut out).unwrap();
    }
    tcp.write_all(&out).await.unwrap();
    s.good_fetch().await;
    let reason = s.reason_for(local).await;
    drop(tcp);
    s.good_fetch().await;
    timeout(LIMIT, s.handle.shutdown()).await.unwrap();
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_gets_a_write_timeout() {
    // 24 MiB of replies exceed the loopback socket buffers; 24 requests fit the queue (32).
    let reason = never_read(24).await;
    assert!(matches!(reason, CloseReason::WriteTimeout), "{reason:?}");
}

/// Regression (peer::server): with more requests than the queue holds, the reader is blocked in
/// `tx.send` when the writer gives up; the failed send must report the writer's `WriteTimeout`,
/// not a generic "connection closed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_server_non_reading_client_with_full_queue_gets_write_timeout() {
    let reason = never_read(64).await;
    assert!(matches!(reason, CloseReason::WriteTimeout), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_frame_is_cut_by_the_idle_timeout() {
    // A slow-loris client: bytes keep coming, but a whole frame never does in time.
    let mut s = server(ServerConfig {
        idle_timeout: Duration::from_millis(1000),
        ..ServerConfig::default()
    })
    .await;
    let (mut tcp, mut t) = raw_session(s.addr).await;
    let local = tcp.local_addr().unwrap();
    let mut frame = Vec::new();
    t.seal_message(&Message::Request(s.id), &mut frame).unwrap();
    let started = std::time::Instant::now();
    let drip = async {
        for b in &frame {
            if tcp.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let reason = tokio::select! {
        r = s.reason_for(local) => r,
        _ = drip => panic!("the whole frame was accepted byte by byte"),
    };
    assert!(matches!(reason, CloseReason::IdleTimeout), "{reason:?}");
    // Cut at the idle time-out, long before the 8.5 s the frame would take.
    assert!(started.elapsed() < Duration::from_secs(5));
    s.good_fetch().await;
    timeout(LIMIT, s.handle.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_server_without_a_gateway_is_refused() {
    let s = server(ServerConfig::default()).await;
    let identity = Identity::from_seed(&[8; 32]);
    let record = MutableRecord::sign(&identity, 1, b"{}", b"").unwrap();
    let mut f = BlobFetcher::connect(s.addr, &FetcherOptions::default())
        .await
        .unwrap();
    let item = Publish {
        k: *record.public_key(),
        seq: record.seq(),
        v: record.value().to_vec(),
        sig: *record.signature(),
        salt: None,
    };
    match f.publish(item).await {
        Err(PeerError::Refused(text)) => assert_eq!(text, NOT_A_GATEWAY),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A refusal is an answer, not a failure: the connection still serves blobs.
    assert!(f.fetch(s.id).await.unwrap() == s.blob);
    f.close().await;
    timeout(LIMIT, s.handle.shutdown()).await.unwrap();
}

/// A fake server that answers every REQUEST on a connection with `reply(id)`.
async fn lying_server(reply: fn(BlobId) -> Message) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut s) = accept(tcp, &AcceptOptions::default()).await else {
                    return;
                };
                while let Ok(Some(Message::Request(id))) = s.recv().await {
                    if s.send(&reply(id)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_refuses_wrong_content_and_replies() {
    timeout(LIMIT, async {
        let id = BlobId::of(b"the real content");
        let opts = FetcherOptions::default();

        let wrong = lying_server(|_| Message::Data(b"other content".to_vec())).await;
        let mut f = BlobFetcher::connect(wrong, &opts).await.unwrap();
        match f.fetch(id).await {
            Err(PeerError::HashMismatch { id: got, peer }) => {
                assert_eq!((got, peer), (id, wrong));
            }
            other => panic!("expected HashMismatch, got {other:?}"),
        }

        let absent = lying_server(|_| Message::Error("Not Found".into())).await;
        let mut f = BlobFetcher::connect(absent, &opts).await.unwrap();
        assert!(matches!(f.fetch(id).await, Err(PeerError::NotFound(got)) if got == id));
        assert!(f.is_usable());

        let confused = lying_server(|_| Message::Peers(vec![])).await;
        let mut f = BlobFetcher::connect(confused, &opts).await.unwrap();
        assert!(matches!(
            f.fetch(id).await,
            Err(PeerError::UnexpectedReply {
                request: "REQUEST",
                got: "PEERS"
            })
        ));
        // The reply order is lost: the fetcher refuses further use.
        assert!(!f.is_usable());
        assert!(matches!(f.fetch(id).await, Err(PeerError::ConnectionLost)));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_binding_over_the_network() {
    let server_id = Arc::new(Identity::from_seed(&[21; 32]));
    let bound = server(ServerConfig {
        identity: Some(server_id.clone()),
        ..ServerConfig::default()
    })
    .await;
    let anonymous = server(ServerConfig::default()).await;
    let expect = |key: [u8; 32]| ConnectOptions {
        handshake_timeout: Duration::from_secs(2),
        expect_identity: Some(key),
        gossip: None,
    };
    timeout(LIMIT, async {
        // The right identity: connected.
        let s = megatorrent::transport::connect(bound.addr, &expect(server_id.public_key_bytes()))
            .await
            .unwrap();
        drop(s);
        // Another identity than the one expected.
        let other = Identity::from_seed(&[22; 32]).public_key_bytes();
        let r = megatorrent::transport::connect(bound.addr, &expect(other)).await;
        assert!(
            matches!(r, Err(TransportError::BindingWrongIdentity { .. })),
            "{r:?}"
        );
        // A server that proves nothing (as a reference server) is refused when binding is required.
        let r =
            megatorrent::transport::connect(anonymous.addr, &expect(server_id.public_key_bytes()))
                .await;
        assert!(matches!(r, Err(TransportError::BindingMissing)), "{r:?}");
    })
    .await
    .unwrap();
    timeout(LIMIT, bound.handle.shutdown()).await.unwrap();
    timeout(LIMIT, anonymous.handle.shutdown()).await.unwrap();
}

// ------------------------------------------------------------------------------------------
// DHT records
// ------------------------------------------------------------------------------------------

fn small_manifest(identity: &Identity, sequence: u64) -> Vec<u8> {
    let content = ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![],
        }],
        timestamp: 1_700_000_000_000,
    };
    create_manifest(identity, sequence, &content)
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[tokio::test]
async fn dht_records_that_do_not_hold_their_manifest_are_refused() {
    let net = common::testnet(8);
    timeout(common::TEST_LIMIT, async {
        let writer = common::client(&net.bootstrap);
        let reader = common::client(&net.bootstrap);
        let get = |id: &Identity| {
            let key = id.public_key_bytes();
            let reader = &reader;
            async move { reader.get_manifest(&key, b"").await.unwrap_err() }
        };

        // A validly signed record whose manifest carries another sequence (a replayed old
        // manifest under a new record sequence).
        let a = Identity::from_seed(&[31; 32]);
        let rec = MutableRecord::sign(&a, 5, &small_manifest(&a, 4), b"").unwrap();
        writer.put_record(&rec, None).await.unwrap();
        let e = get(&a).await;
        assert!(
            matches!(&e, DhtError::NoValidRecord(inner) if matches!(**inner, DhtError::RecordMismatch { field: "sequence" })),
            "{e:?}"
        );

        // Someone else's valid manifest under this key.
        let b = Identity::from_seed(&[32; 32]);
        let rec = MutableRecord::sign(&b, 3, &small_manifest(&a, 3), b"").unwrap();
        writer.put_record(&rec, None).await.unwrap();
        let e = get(&b).await;
        assert!(
            matches!(&e, DhtError::NoValidRecord(inner) if matches!(**inner, DhtError::RecordMismatch { field: "publicKey" })),
            "{e:?}"
        );

        // A value that is not JSON at all.
        let c = Identity::from_seed(&[33; 32]);
        let rec = MutableRecord::sign(&c, 1, b"\x00garbage", b"").unwrap();
        writer.put_record(&rec, None).await.unwrap();
        let e = get(&c).await;
        assert!(
            matches!(&e, DhtError::NoValidRecord(inner) if matches!(**inner, DhtError::Record(RecordError::NotJson(_)))),
            "{e:?}"
        );

        // JSON that is not a manifest.
        let d = Identity::from_seed(&[34; 32]);
        let rec = MutableRecord::sign(&d, 1, br#"{"publicKey":1}"#, b"").unwrap();
        writer.put_record(&rec, None).await.unwrap();
        let e = get(&d).await;
        assert!(
            matches!(&e, DhtError::NoValidRecord(inner) if matches!(**inner, DhtError::InvalidManifest(_))),
            "{e:?}"
        );
    })
    .await
    .unwrap();
}
