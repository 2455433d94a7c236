//! DhtClient on loopback `mainline` testnets: inline and pointer manifests, salted sub-channels,
//! stale sequences, CAS and sequence refusals, blob announce and discovery.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{client, manifest, testnet, TEST_LIMIT};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{DhtClient, DhtConfig, DhtError, PartsTarget, PutOptions, StoreFetcher};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use tokio::time::timeout;

#[tokio::test]
async fn inline_put_and_get() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[1; 32]);
        let publisher = client(&net.bootstrap);
        let m = manifest(&id, 10, 1);
        assert!(m.as_bytes().len() <= 996);
        let report = publisher
            .put_manifest(&id, &m, &PutOptions::default())
            .await
            .unwrap();
        // Stored by some of the 8 nodes (not by more than exist).
        assert!((1..=8).contains(&report.stored_at), "{}", report.stored_at);
        assert!(report.parts.is_empty());
        let reader = client(&net.bootstrap);
        let got = reader
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got, m);
        assert_eq!(reader.seen_sequence(&id.public_key_bytes(), b""), Some(10));
        // Nothing under another key.
        let other = Identity::from_seed(&[2; 32]);
        assert!(matches!(
            reader.get_manifest(&other.public_key_bytes(), b"").await,
            Err(DhtError::NotFound)
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pointer_put_and_get() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[3; 32]);
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("parts")).unwrap();
        let publisher = client(&net.bootstrap);
        // ~1.2 MiB of manifest: two parts.
        let m = manifest(&id, 5, 5000);
        assert!(m.as_bytes().len() > 1 << 20);
        // Without a store and port the refusal says why.
        match publisher
            .put_manifest(&id, &m, &PutOptions::default())
            .await
        {
            Err(DhtError::NeedsParts { len }) => assert_eq!(len, m.as_bytes().len()),
            other => panic!("expected NeedsParts, got {other:?}"),
        }
        let opts = PutOptions::default().parts(Some(PartsTarget::new(&store, 40123)));
        let report = publisher.put_manifest(&id, &m, &opts).await.unwrap();
        assert_eq!(report.parts.len(), 2);
        for part in &report.parts {
            assert!(store.contains(part));
        }
        let reader = client(&net.bootstrap);
        // Parts are announced at the given port.
        let peers = reader.find_blob_peers(&report.parts[1]).await;
        assert_eq!(
            peers,
            vec!["127.0.0.1:40123".parse::<SocketAddr>().unwrap()]
        );
        // Without a fetcher the pointer cannot be followed.
        match reader.get_manifest(&id.public_key_bytes(), b"").await {
            Err(DhtError::NoValidRecord(e)) => assert!(matches!(*e, DhtError::NoFetcher)),
            other => panic!("expected NoFetcher, got {other:?}"),
        }
        let reader = reader.with_part_fetcher(Arc::new(StoreFetcher(store.clone())));
        let got = reader
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got, m);
        // A corrupted part is caught by its hash.
        let bad_dir = tempfile::tempdir().unwrap();
        std::fs::write(bad_dir.path().join(report.parts[0].to_hex()), b"corrupt").unwrap();
        std::fs::copy(
            store.path_of(&report.parts[1]),
            bad_dir.path().join(report.parts[1].to_hex()),
        )
        .unwrap();
        let bad_store = BlobStore::open(bad_dir.path()).unwrap();
        let reader2 = client(&net.bootstrap).with_part_fetcher(Arc::new(StoreFetcher(bad_store)));
        match reader2.get_manifest(&id.public_key_bytes(), b"").await {
            Err(DhtError::NoValidRecord(e)) => {
                assert!(matches!(*e, DhtError::PartUnavailable { id, .. } if id == report.parts[0]))
            }
            other => panic!("expected PartUnavailable, got {other:?}"),
        }
        // Too many parts for one record (about 14 MiB): a two-level record, whose index part
        // lists the manifest's parts (extension, 5.1).
        let huge = manifest(&id, 6, 60000);
        let data = huge.as_bytes().len().div_ceil(1 << 20);
        assert!(data > 12);
        let big_store = BlobStore::open(dir.path().join("huge")).unwrap();
        let opts = PutOptions::default().parts(Some(PartsTarget::new(&big_store, 40123)));
        let report = publisher.put_manifest(&id, &huge, &opts).await.unwrap();
        assert_eq!(report.parts.len(), 1 + data);
        let reader = client(&net.bootstrap).with_part_fetcher(Arc::new(StoreFetcher(big_store)));
        let got = reader
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got, huge);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn salted_sub_channels_are_separate() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[4; 32]);
        let publisher = client(&net.bootstrap);
        let main = manifest(&id, 1, 1);
        let videos = manifest(&id, 7, 1);
        let music = manifest(&id, 3, 0);
        publisher
            .put_manifest(&id, &main, &PutOptions::default())
            .await
            .unwrap();
        for (salt, m) in [(&b"videos"[..], &videos), (&b"music"[..], &music)] {
            let opts = PutOptions::default().salt(salt);
            publisher.put_manifest(&id, m, &opts).await.unwrap();
        }
        let reader = client(&net.bootstrap);
        let key = id.public_key_bytes();
        assert_eq!(reader.get_manifest(&key, b"").await.unwrap(), main);
        assert_eq!(reader.get_manifest(&key, b"videos").await.unwrap(), videos);
        assert_eq!(reader.get_manifest(&key, b"music").await.unwrap(), music);
        assert!(matches!(
            reader.get_manifest(&key, b"other").await,
            Err(DhtError::NotFound)
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn cas_and_lower_sequence_refusals() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[5; 32]);
        let publisher = client(&net.bootstrap);
        let put = |seq: u64, cas: Option<u64>| {
            let publisher = publisher.clone();
            let id = id.clone();
            async move {
                let opts = PutOptions::default().cas(cas);
                publisher
                    .put_manifest(&id, &manifest(&id, seq, 1), &opts)
                    .await
            }
        };
        put(100, None).await.unwrap();
        match put(101, Some(99)).await {
            Err(DhtError::CasMismatch { cas }) => assert_eq!(cas, 99),
            other => panic!("expected CasMismatch, got {other:?}"),
        }
        put(101, Some(100)).await.unwrap();
        match put(50, None).await {
            Err(DhtError::LowerSeq { seq }) => assert_eq!(seq, 50),
            other => panic!("expected LowerSeq, got {other:?}"),
        }
        let reader = client(&net.bootstrap);
        let got = reader
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got.sequence(), 101);
        // Someone else's manifest cannot be published under our identity.
        let other = Identity::from_seed(&[6; 32]);
        assert!(matches!(
            publisher
                .put_manifest(&id, &manifest(&other, 200, 1), &PutOptions::default())
                .await,
            Err(DhtError::KeyMismatch)
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn no_nodes_is_a_typed_error() {
    timeout(TEST_LIMIT, async {
        let lonely = client(&[]);
        let id = Identity::from_seed(&[7; 32]);
        // No node ever answered: said as such, not as "no record" or a bare "no nodes".
        let put = lonely
            .put_manifest(&id, &manifest(&id, 1, 1), &PutOptions::default())
            .await;
        assert!(
            matches!(&put, Err(DhtError::NoNodeAnswered { bootstrap }) if bootstrap.is_empty()),
            "{put:?}"
        );
        let got = lonely.get_manifest(&id.public_key_bytes(), b"").await;
        assert!(
            matches!(&got, Err(DhtError::NoNodeAnswered { .. })),
            "{got:?}"
        );
        // Bootstrap nodes that never answer are named.
        let deaf = client(&["127.0.0.1:9".to_string()]);
        let err = deaf
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "no DHT node answered at 127.0.0.1:9");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn stale_lower_sequence_never_surfaces() {
    // Two disjoint networks: A holds seq 5, B holds seq 3. The reader sees both, then A goes
    // away and only B's older record is left.
    let net_a = testnet(5);
    let net_b = testnet(5);
    let state = tempfile::tempdir().unwrap();
    timeout(TEST_LIMIT, async {
        let id = Identity::from_seed(&[8; 32]);
        let key = id.public_key_bytes();
        let newer = manifest(&id, 5, 1);
        let older = manifest(&id, 3, 1);
        client(&net_a.bootstrap)
            .put_manifest(&id, &newer, &PutOptions::default())
            .await
            .unwrap();
        client(&net_b.bootstrap)
            .put_manifest(&id, &older, &PutOptions::default())
            .await
            .unwrap();
        let both: Vec<String> = net_a
            .bootstrap
            .iter()
            .chain(net_b.bootstrap.iter())
            .cloned()
            .collect();
        let mut cfg = DhtConfig::local(&both);
        cfg.request_timeout = Duration::from_millis(300);
        cfg.state_dir = Some(state.path().to_owned());
        let reader = DhtClient::start(&cfg).unwrap();
        assert_eq!(reader.get_manifest(&key, b"").await.unwrap(), newer);
        drop(net_a);
        // mainline's nodes stop on their actor thread's next turn, so under load network A may
        // still answer for a moment: until it is gone the reader may only ever see seq 5.
        loop {
            match reader.get_manifest(&key, b"").await {
                Err(DhtError::Stale { found, seen }) => {
                    assert_eq!((found, seen), (3, 5));
                    break;
                }
                Ok(m) if m.sequence() == 5 => tokio::time::sleep(Duration::from_millis(200)).await,
                other => panic!("expected Stale (or seq 5 while A winds down), got {other:?}"),
            }
        }
        drop(reader);
        // After a restart with the same state folder, still never the older record.
        let mut cfg = DhtConfig::local(&net_b.bootstrap);
        cfg.request_timeout = Duration::from_millis(300);
        cfg.state_dir = Some(state.path().to_owned());
        let restarted = DhtClient::start(&cfg).unwrap();
        assert_eq!(restarted.seen_sequence(&key, b""), Some(5));
        match restarted.get_manifest(&key, b"").await {
            Err(DhtError::Stale { found, seen }) => assert_eq!((found, seen), (3, 5)),
            other => panic!("expected Stale, got {other:?}"),
        }
        // A reader with no memory does get seq 3: the network really serves it.
        let fresh = client(&net_b.bootstrap);
        assert_eq!(fresh.get_manifest(&key, b"").await.unwrap(), older);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn announce_and_find_blob_peers() {
    let net = testnet(8);
    timeout(TEST_LIMIT, async {
        let a = client(&net.bootstrap);
        let b = client(&net.bootstrap);
        let blob = BlobId::of(b"some blob");
        assert!(b.find_blob_peers(&blob).await.is_empty());
        a.announce_blob(&blob, 5001).await.unwrap();
        a.announce_blob(&blob, 5001).await.unwrap();
        b.announce_blob(&blob, 5002).await.unwrap();
        let mut peers = a.find_blob_peers(&blob).await;
        peers.sort();
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:5001".parse().unwrap(),
            "127.0.0.1:5002".parse().unwrap(),
        ];
        assert_eq!(peers, expected);
        // Another blob has its own peers.
        assert!(b.find_blob_peers(&BlobId::of(b"other")).await.is_empty());
    })
    .await
    .unwrap();
}
