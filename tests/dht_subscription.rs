//! Subscriptions (each new sequence once; gossip hints trigger a lookup but never deliver by
//! themselves) and active seeding, on a loopback testnet.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, manifest, testnet, TEST_LIMIT};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{PutOptions, SubscribeOptions};
use megatorrent::identity::Identity;
use tokio::time::timeout;

#[tokio::test]
async fn subscription_delivers_each_sequence_once() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[31; 32]);
        let publisher = client(&net.bootstrap);
        let put = |seq| {
            let publisher = publisher.clone();
            let id = id.clone();
            async move {
                publisher
                    .put_manifest(&id, &manifest(&id, seq, 1), &PutOptions::default())
                    .await
                    .unwrap();
            }
        };
        put(1).await;
        let reader = client(&net.bootstrap);
        let mut sub = reader.subscribe(
            id.public_key_bytes(),
            SubscribeOptions::default().interval(Duration::from_millis(300)),
        );
        assert_eq!(sub.next().await.unwrap().manifest.sequence(), 1);
        // Several polls later, still nothing new: sequence 1 is not delivered again.
        assert!(timeout(Duration::from_millis(1500), sub.next())
            .await
            .is_err());
        put(2).await;
        assert_eq!(sub.next().await.unwrap().manifest.sequence(), 2);
        assert!(timeout(Duration::from_millis(1500), sub.next())
            .await
            .is_err());
        put(5).await;
        assert_eq!(sub.next().await.unwrap().manifest.sequence(), 5);
        assert!(timeout(Duration::from_millis(1000), sub.next())
            .await
            .is_err());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn gossip_hint_triggers_lookup_but_never_delivers_alone() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[32; 32]);
        let key = id.public_key_bytes();
        let publisher = client(&net.bootstrap);
        publisher
            .put_manifest(&id, &manifest(&id, 10, 1), &PutOptions::default())
            .await
            .unwrap();
        let reader = client(&net.bootstrap);
        // Polls only once an hour: anything after the first delivery comes from a hint.
        let mut sub = reader.subscribe(
            key,
            SubscribeOptions::default().interval(Duration::from_secs(3600)),
        );
        assert_eq!(sub.next().await.unwrap().manifest.sequence(), 10);
        // A claim of sequence 99 with nothing behind it delivers nothing.
        reader.gossip_hint(&key, 99);
        assert!(timeout(Duration::from_secs(2), sub.next()).await.is_err());
        // A real new record is found at once on a hint.
        publisher
            .put_manifest(&id, &manifest(&id, 11, 1), &PutOptions::default())
            .await
            .unwrap();
        assert!(timeout(Duration::from_secs(1), sub.next()).await.is_err());
        reader.gossip_hint(&key, 11);
        let m = timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.manifest.sequence(), 11);
        // The subscription's own hint handle works the same way.
        publisher
            .put_manifest(&id, &manifest(&id, 12, 1), &PutOptions::default())
            .await
            .unwrap();
        sub.hint(12);
        let m = timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.manifest.sequence(), 12);
        // A hint for another key does nothing here.
        reader.gossip_hint(&[0; 32], 1000);
        assert!(timeout(Duration::from_secs(1), sub.next()).await.is_err());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn seeder_re_announces_held_blobs() {
    let net = testnet(8);
    let dir = tempfile::tempdir().unwrap();
    timeout(TEST_LIMIT, async {
        let store = BlobStore::open(dir.path()).unwrap();
        let first = store.put_content(b"held before start").unwrap();
        let seeder_node = client(&net.bootstrap);
        let _seeder = seeder_node.spawn_seeder(store.clone(), 7100, Duration::from_millis(500));
        let finder = client(&net.bootstrap);
        let expected: Vec<SocketAddr> = vec!["127.0.0.1:7100".parse().unwrap()];
        let wait_found = |id| {
            let finder = finder.clone();
            let expected = expected.clone();
            async move {
                while finder.find_blob_peers(&id).await != expected {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        wait_found(first).await;
        // A blob added after the first round is announced by a later one.
        let later = store.put_content(b"added while seeding").unwrap();
        wait_found(later).await;
    })
    .await
    .unwrap();
}
