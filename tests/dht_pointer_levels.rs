//! Two-level pointer records (extension, PROTOCOL.md 4): a manifest of more than 64 MiB put and
//! got on a loopback testnet, and hostile pointers refused before more than one part is fetched
//! (a counting PartFetcher shows it).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, testnet};
use megatorrent::blob::BlobStore;
use megatorrent::dht::record::{decode_value, encode_index, MAX_MANIFEST_SIZE, PART_SIZE};
use megatorrent::dht::{
    fetch_manifest, DhtError, FetchError, FetchFuture, PartError, PartFetcher, PartsTarget,
    PointerRecord, PutOptions, RecordError, RecordValue, TransportFetcher,
};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::create_manifest;
use megatorrent::peer::{BlobServer, ServerConfig};
use tokio::time::timeout;

/// Serves parts from memory (under any id, whatever their hash) and records every request.
#[derive(Default)]
struct Counting {
    parts: HashMap<BlobId, Vec<u8>>,
    asked: Mutex<Vec<BlobId>>,
}

impl Counting {
    fn with(parts: &[(BlobId, Vec<u8>)]) -> Self {
        Self {
            parts: parts.iter().cloned().collect(),
            ..Self::default()
        }
    }

    fn asked(&self) -> Vec<BlobId> {
        self.asked.lock().unwrap().clone()
    }
}

impl PartFetcher for Counting {
    fn fetch<'a>(&'a self, id: BlobId, _peers: &'a [SocketAddr]) -> FetchFuture<'a> {
        self.asked.lock().unwrap().push(id);
        let found = self.parts.get(&id).cloned();
        Box::pin(async move { found.ok_or_else(|| FetchError("not here".into())) })
    }
}

async fn fetch(pointer: &PointerRecord, fetcher: &Counting) -> Result<Vec<u8>, DhtError> {
    fetch_manifest(pointer, fetcher, |_| async { Vec::new() }).await
}

fn pointer(parts: Vec<BlobId>, size: u64, levels: u64) -> PointerRecord {
    PointerRecord {
        public_key: [1; 32],
        sequence: 1,
        parts,
        size,
        levels,
    }
}

/// `n` distinct parts of `PART_SIZE` bytes (the last one `last` bytes), with their ids.
fn data_parts(n: usize, last: usize) -> Vec<(BlobId, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let len = if i + 1 == n { last } else { PART_SIZE };
            let bytes: Vec<u8> = (0..len).map(|j| (i * 7 + j % 253) as u8).collect();
            (BlobId::of(&bytes), bytes)
        })
        .collect()
}

fn ids(parts: &[(BlobId, Vec<u8>)]) -> Vec<BlobId> {
    parts.iter().map(|(id, _)| *id).collect()
}

fn index(ids: &[BlobId]) -> (BlobId, Vec<u8>) {
    let bytes = encode_index(ids);
    (BlobId::of(&bytes), bytes)
}

#[tokio::test]
async fn a_good_two_level_pointer_is_fetched_index_first() {
    let data = data_parts(3, 10);
    let (index_id, index_bytes) = index(&ids(&data));
    let mut all = data.clone();
    all.push((index_id, index_bytes));
    let counting = Counting::with(&all);
    let p = pointer(vec![index_id], 2 * PART_SIZE as u64 + 10, 2);
    let joined = fetch(&p, &counting).await.unwrap();
    let expected: Vec<u8> = data.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(joined, expected);
    let mut order = vec![index_id];
    order.extend(ids(&data));
    assert_eq!(counting.asked(), order, "each part once, the index first");
}

#[tokio::test]
async fn a_cycle_is_refused_after_one_fetch() {
    // Two index parts; the first lists the second (a SHA-256 fixed point, an index part
    // listing itself, cannot be built; listing an index part of the record is the loop).
    let data = data_parts(3, 10);
    let (second, second_bytes) = index(&ids(&data)[2..]);
    let (first, first_bytes) = index(&[data[0].0, second]);
    let mut all = data.clone();
    all.push((first, first_bytes));
    all.push((second, second_bytes));
    let counting = Counting::with(&all);
    let p = pointer(vec![first, second], 2 * PART_SIZE as u64 + 10, 2);
    match fetch(&p, &counting).await {
        Err(DhtError::Parts(PartError::Cycle { index, id })) => {
            assert_eq!((index, id), (first, second));
        }
        other => panic!("expected Cycle, got {other:?}"),
    }
    assert_eq!(counting.asked(), vec![first]);
}

#[tokio::test]
async fn a_repeated_part_is_refused_after_at_most_one_fetch() {
    let data = data_parts(3, 10);
    let (idx, idx_bytes) = index(&[data[0].0, data[1].0, data[0].0]);
    let mut all = data.clone();
    all.push((idx, idx_bytes));
    let counting = Counting::with(&all);
    let p = pointer(vec![idx], 2 * PART_SIZE as u64 + 10, 2);
    match fetch(&p, &counting).await {
        Err(DhtError::Parts(PartError::RepeatedPart { id })) => assert_eq!(id, data[0].0),
        other => panic!("expected RepeatedPart, got {other:?}"),
    }
    assert_eq!(counting.asked(), vec![idx]);

    // In the record itself: refused when decoded, nothing fetched.
    let twice = pointer(vec![data[0].0, data[0].0], PART_SIZE as u64 + 1, 1).encode();
    assert_eq!(
        decode_value(&twice).unwrap_err(),
        RecordError::RepeatedPart(data[0].0)
    );
}

#[tokio::test]
async fn a_part_whose_hash_does_not_match_is_refused_after_one_fetch() {
    let data = data_parts(3, 10);
    // The index part's bytes are served, altered, under its id.
    let (idx, mut idx_bytes) = index(&ids(&data));
    idx_bytes[5] ^= 1;
    let mut all = data.clone();
    all.push((idx, idx_bytes));
    let counting = Counting::with(&all);
    let p = pointer(vec![idx], 2 * PART_SIZE as u64 + 10, 2);
    match fetch(&p, &counting).await {
        Err(DhtError::Parts(PartError::HashMismatch { id })) => assert_eq!(id, idx),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_eq!(counting.asked(), vec![idx]);

    // One level: the first manifest part is wrong, the others are never asked for.
    let mut bad = data.clone();
    bad[0].1[0] ^= 1;
    let counting = Counting::with(&bad);
    let p = pointer(ids(&data), 2 * PART_SIZE as u64 + 10, 1);
    match fetch(&p, &counting).await {
        Err(DhtError::Parts(PartError::HashMismatch { id })) => assert_eq!(id, data[0].0),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_eq!(counting.asked(), vec![data[0].0]);

    // A part over 1 MiB is refused before hashing (and before it is kept).
    let big = vec![0u8; PART_SIZE + 1];
    let big_id = BlobId::of(&big);
    let counting = Counting::with(&[(big_id, big)]);
    match fetch(&pointer(vec![big_id], 1, 1), &counting).await {
        Err(DhtError::Parts(PartError::TooLarge { id, .. })) => assert_eq!(id, big_id),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn a_size_over_the_cap_or_a_wrong_depth_is_refused_before_any_fetch() {
    let id = BlobId::of(b"x");
    let key = hex::encode([1u8; 32]);
    for (size, levels, expected) in [
        (
            MAX_MANIFEST_SIZE + 1,
            2,
            RecordError::BadSize(MAX_MANIFEST_SIZE + 1),
        ),
        (u64::MAX >> 11, 2, RecordError::BadSize(u64::MAX >> 11)),
        (5, 3, RecordError::BadLevels(3)),
    ] {
        let text = format!(
            "{{\"publicKey\":\"{key}\",\"sequence\":1,\"manifestParts\":[\"{id}\"],\"size\":{size},\"levels\":{levels}}}"
        );
        assert_eq!(decode_value(text.as_bytes()).unwrap_err(), expected);
    }
    // An index listing more parts than the size needs stops at that index part.
    let data = data_parts(3, 10);
    let (idx, idx_bytes) = index(&ids(&data));
    let mut all = data.clone();
    all.push((idx, idx_bytes));
    let counting = Counting::with(&all);
    match fetch(&pointer(vec![idx], 2 * PART_SIZE as u64, 2), &counting).await {
        Err(DhtError::Parts(PartError::Count {
            got: 3,
            expected: 2,
        })) => {}
        other => panic!("expected Count, got {other:?}"),
    }
    assert_eq!(counting.asked(), vec![idx]);
}

/// About 240 bytes of manifest per chunk entry: this many make a manifest over 64 MiB.
const BIG_CHUNKS: usize = 290_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_64_mib_goes_through_a_two_level_record() {
    let net = testnet(8);
    timeout(Duration::from_secs(600), async {
        let id = Identity::from_seed(&[77; 32]);
        let start = std::time::Instant::now();
        let m = create_manifest(&id, 9, &common::content(BIG_CHUNKS)).unwrap();
        let len = m.as_bytes().len();
        assert!(len >= 64 << 20, "manifest of {len} bytes");

        // The publisher stores and serves every part, and announces them.
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("parts")).unwrap();
        let server = BlobServer::bind(
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            store.clone(),
            ServerConfig::default(),
        )
        .await
        .unwrap()
        .spawn()
        .unwrap();
        let publisher = client(&net.bootstrap);
        assert!(publisher.bootstrapped().await);
        let opts =
            PutOptions::default().parts(Some(PartsTarget::new(&store, server.local_addr().port())));
        eprintln!("created {len} bytes in {:?}", start.elapsed());
        let start = std::time::Instant::now();
        let report = publisher.put_manifest(&id, &m, &opts).await.unwrap();
        eprintln!("put {} parts in {:?}", report.parts.len(), start.elapsed());
        let data = len.div_ceil(PART_SIZE);
        assert_eq!(
            report.parts.len(),
            1 + data,
            "one index part, then the parts"
        );

        // The record in the DHT is a two-level pointer.
        let item = publisher
            .latest_record(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        match decode_value(item.value()).unwrap() {
            RecordValue::Pointer(p) => {
                assert_eq!((p.levels, p.parts.len(), p.size), (2, 1, len as u64));
            }
            other => panic!("expected a pointer, got {other:?}"),
        }

        // A reader finds, fetches over the transport, checks and joins it.
        let reader =
            client(&net.bootstrap).with_part_fetcher(Arc::new(TransportFetcher::default()));
        let start = std::time::Instant::now();
        let got = reader
            .get_manifest(&id.public_key_bytes(), b"")
            .await
            .unwrap();
        eprintln!("got it in {:?}", start.elapsed());
        assert_eq!(got, m);
        server.shutdown().await;
    })
    .await
    .unwrap();
}
