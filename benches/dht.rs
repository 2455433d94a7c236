//! put_manifest and get_manifest latency on a 50-node loopback `mainline` network (server-mode
//! nodes, 127.0.0.1 only; the measuring nodes run in server mode too, as a local network of
//! our own nodes may). Besides criterion's estimates, prints the median and p95 of a fixed
//! sample of each operation. Goal: median under 150 ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use megatorrent::dht::{DhtClient, DhtConfig, PutOptions};
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, Chunk, Collection, FileEntry, ManifestContent, BLOB_LEN, CHUNK_SIZE,
};

const NODES: usize = 50;
const SAMPLES: usize = 40;

fn content() -> ManifestContent {
    ManifestContent {
        collections: vec![Collection {
            title: "bench".into(),
            items: vec![FileEntry {
                name: "a.bin".into(),
                path: Vec::new(),
                size: CHUNK_SIZE as u64,
                chunks: vec![Chunk {
                    blob_id: megatorrent::id::BlobId::of(b"bench"),
                    offset: 0,
                    length: BLOB_LEN as u64,
                    key: [1; 32],
                    nonce: [2; 12],
                    real_size: CHUNK_SIZE as u64,
                }],
            }],
        }],
        timestamp: 1_700_000_000_000,
    }
}

fn client(bootstrap: &[String]) -> DhtClient {
    // A testnet made only of our own nodes: server mode, so that no lookup waits on a silent
    // client-mode node (PROTOCOL.md 4.1).
    let mut cfg = DhtConfig::local(bootstrap);
    cfg.server_mode = true;
    cfg.request_timeout = Duration::from_millis(500);
    DhtClient::start(&cfg).expect("client")
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95).div_ceil(100) - 1];
    println!(
        "{name}: median {:.1} ms, p95 {:.1} ms ({} samples, {NODES} nodes)",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        samples.len()
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let net = mainline::Testnet::builder(NODES).build().expect("testnet");
    let publisher = client(&net.bootstrap);
    let reader = client(&net.bootstrap);
    let id = Identity::from_seed(&[77; 32]);
    let key = id.public_key_bytes();
    let body = content();
    let seq = AtomicU64::new(1);
    let put = |dht: &DhtClient| {
        let s = seq.fetch_add(1, Ordering::Relaxed);
        let m = create_manifest(&id, s, &body).expect("manifest");
        let start = Instant::now();
        rt.block_on(dht.put_manifest(&id, &m, &PutOptions::default()))
            .expect("put");
        start.elapsed()
    };
    let get = |dht: &DhtClient| {
        let start = Instant::now();
        rt.block_on(dht.get_manifest(&key, b"")).expect("get");
        start.elapsed()
    };
    // Warm up the routing tables.
    rt.block_on(publisher.bootstrapped());
    rt.block_on(reader.bootstrapped());
    put(&publisher);

    report(
        "put_manifest",
        (0..SAMPLES).map(|_| put(&publisher)).collect(),
    );
    report("get_manifest", (0..SAMPLES).map(|_| get(&reader)).collect());

    let mut group = c.benchmark_group("dht_50_nodes");
    group.sample_size(10);
    group.bench_function("put_manifest", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| put(&publisher)).sum())
    });
    group.bench_function("get_manifest", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| get(&reader)).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
