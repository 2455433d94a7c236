//! The DHT with the peer layer: PUBLISH relayed by a gateway (valid and forged signatures),
//! pointer records fetched over the secure transport, gossip from HELLO waking a subscription
//! of a private channel.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{client, content, manifest, testnet, TEST_LIMIT};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{
    DhtError, MutableRecord, PartsTarget, PutOptions, SubscribeOptions, TransportFetcher,
};
use megatorrent::identity::Identity;
use megatorrent::manifest::{create_private_manifest, ReadKey};
use megatorrent::peer::{BlobFetcher, BlobServer, FetcherOptions, PeerError, ServerConfig};
use megatorrent::transport::Publish;
use tokio::time::timeout;

async fn server(store: BlobStore) -> megatorrent::peer::ServerHandle {
    BlobServer::bind("127.0.0.1:0", store, ServerConfig::default())
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn gateway_relays_valid_publish_and_refuses_forged() {
    let net = testnet(8);
    let dir = tempfile::tempdir().unwrap();
    timeout(TEST_LIMIT, async {
        let srv = server(BlobStore::open(dir.path()).unwrap()).await;
        srv.set_gateway(Some(Arc::new(client(&net.bootstrap))));
        let mut conn = BlobFetcher::connect(srv.local_addr(), &FetcherOptions::default())
            .await
            .unwrap();
        let reader = client(&net.bootstrap);

        // A valid item, signed by its owner (who has no DHT of their own), salted.
        let owner = Identity::from_seed(&[61; 32]);
        let m = manifest(&owner, 9, 1);
        let rec = MutableRecord::sign(&owner, 9, m.as_bytes(), b"news").unwrap();
        let item = Publish {
            k: owner.public_key_bytes(),
            seq: 9,
            v: m.as_bytes().to_vec(),
            sig: *rec.signature(),
            salt: Some(b"news".to_vec()),
        };
        let ok = conn.publish(item).await.unwrap();
        assert_eq!(ok, "Published");
        let got = reader
            .get_manifest(&owner.public_key_bytes(), b"news")
            .await
            .unwrap();
        assert_eq!(got, m);

        // A forged item: someone else's signature over the victim's key.
        let victim = Identity::from_seed(&[62; 32]);
        let forger = Identity::from_seed(&[63; 32]);
        let fake = manifest(&victim, 1, 0);
        let forged = MutableRecord::sign(&forger, 1, fake.as_bytes(), b"").unwrap();
        let item = Publish {
            k: victim.public_key_bytes(),
            seq: 1,
            v: fake.as_bytes().to_vec(),
            sig: *forged.signature(),
            salt: None,
        };
        match conn.publish(item).await {
            Err(PeerError::Refused(reason)) => {
                assert!(reason.contains("signature does not verify"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Nothing was relayed.
        assert!(matches!(
            reader.get_manifest(&victim.public_key_bytes(), b"").await,
            Err(DhtError::NotFound)
        ));
        // A valid signature over a different seq than the one claimed is refused too.
        let item = Publish {
            k: owner.public_key_bytes(),
            seq: 10,
            v: m.as_bytes().to_vec(),
            sig: *rec.signature(),
            salt: Some(b"news".to_vec()),
        };
        assert!(matches!(
            conn.publish(item).await,
            Err(PeerError::Refused(_))
        ));
        conn.close().await;
        srv.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pointer_manifest_parts_fetched_over_transport() {
    let net = testnet(8);
    let dir = tempfile::tempdir().unwrap();
    timeout(TEST_LIMIT, async {
        let store = BlobStore::open(dir.path()).unwrap();
        let srv = server(store.clone()).await;
        let id = Identity::from_seed(&[64; 32]);
        let m = manifest(&id, 3, 5000);
        let publisher = client(&net.bootstrap);
        let opts =
            PutOptions::default().parts(Some(PartsTarget::new(&store, srv.local_addr().port())));
        let report = publisher.put_manifest(&id, &m, &opts).await.unwrap();
        assert_eq!(report.parts.len(), 2);
        let reader =
            client(&net.bootstrap).with_part_fetcher(Arc::new(TransportFetcher::default()));
        assert_eq!(
            reader
                .get_manifest(&id.public_key_bytes(), b"")
                .await
                .unwrap(),
            m
        );
        // Once the server is gone the reader says which part it could not get.
        srv.shutdown().await;
        let reader =
            client(&net.bootstrap).with_part_fetcher(Arc::new(TransportFetcher::default()));
        match reader.get_manifest(&id.public_key_bytes(), b"").await {
            Err(DhtError::NoValidRecord(e)) => assert!(
                matches!(*e, DhtError::PartUnavailable { id, .. } if id == report.parts[0]),
                "{e}"
            ),
            other => panic!("expected PartUnavailable, got {other:?}"),
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn hello_gossip_wakes_private_subscription() {
    let net = testnet(8);
    let dir = tempfile::tempdir().unwrap();
    timeout(TEST_LIMIT, async {
        let srv = server(BlobStore::open(dir.path()).unwrap()).await;
        let id = Identity::from_seed(&[65; 32]);
        let key = id.public_key_bytes();
        let read_key = ReadKey::from_bytes([66; 32]);
        let publisher = client(&net.bootstrap);
        let put = |seq| {
            let m = create_private_manifest(&id, seq, &content(0), &read_key).unwrap();
            let publisher = publisher.clone();
            let id = id.clone();
            async move {
                publisher
                    .put_manifest(&id, &m, &PutOptions::default())
                    .await
                    .unwrap();
            }
        };
        put(20).await;
        let reader = client(&net.bootstrap);
        let _bridge = reader.follow_gossip(srv.subscribe_gossip());
        let mut sub = reader.subscribe(
            key,
            SubscribeOptions::default()
                .interval(Duration::from_secs(3600))
                .read_key(Some(read_key.clone())),
        );
        // Without the read key the manifest is delivered, its content stays closed.
        let mut closed = reader.subscribe(
            key,
            SubscribeOptions::default().interval(Duration::from_secs(3600)),
        );
        let update = closed.next().await.unwrap();
        assert_eq!(update.manifest.sequence(), 20);
        assert_eq!(update.content, None);
        drop(closed);
        let first = sub.next().await.unwrap();
        assert_eq!(first.manifest.sequence(), 20);
        assert!(first.manifest.is_private());
        assert_eq!(first.content, Some(content(0)));
        put(21).await;
        // A peer's HELLO gossips the new sequence: the subscription looks at once.
        let gossip: BTreeMap<[u8; 32], i64> = [(key, 21)].into_iter().collect();
        let opts = FetcherOptions::default()
            .connect(megatorrent::transport::ConnectOptions::default().gossip(Some(gossip)));
        let conn = BlobFetcher::connect(srv.local_addr(), &opts).await.unwrap();
        let next = timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("gossip did not trigger a lookup")
            .unwrap();
        assert_eq!(next.manifest.sequence(), 21);
        assert_eq!(next.content, Some(content(0)));
        conn.close().await;
        srv.shutdown().await;
    })
    .await
    .unwrap();
}
