//! Transport throughput and handshake rate (issue 3, acceptance 5).
//!
//! - `raw_aead/seal_1mib`: ChaCha20-Poly1305 over 1 MiB in place, this build: the ceiling.
//! - `core/seal_open_1mib`: the sans-IO core sealing and opening one 1 MiB DATA frame.
//! - `loopback/data_1mib`: 1 MiB DATA messages over a loopback TCP connection (sender and
//!   receiver in separate tasks, so sealing and opening overlap as between two hosts).
//! - `loopback/fetch_1mib`: a BlobFetcher fetching a 1 MiB blob from a BlobServer (disk read,
//!   SHA-256 check included).
//! - `loopback/handshake`: TCP connect plus the v5 key exchange, one at a time.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use megatorrent::blob::BlobStore;
use megatorrent::peer::{BlobFetcher, BlobServer, FetcherOptions, ServerConfig};
use megatorrent::transport::{
    accept, connect, AcceptOptions, ConnectOptions, Handshake, Message, Role,
};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const MIB: usize = 1 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn raw_aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_aead");
    g.throughput(Throughput::Bytes(MIB as u64));
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0x5au8; MIB];
    let mut n = 0u64;
    g.bench_function("seal_1mib", |b| {
        b.iter(|| {
            n += 1;
            let mut nonce = Nonce::default();
            nonce[..8].copy_from_slice(&n.to_le_bytes());
            cipher
                .encrypt_in_place_detached(&nonce, b"", &mut buf)
                .unwrap()
        })
    });
    g.finish();
}

fn core(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Bytes(MIB as u64));
    let client = Handshake::new(Role::Client);
    let server = Handshake::new(Role::Server);
    let (cpk, spk) = (client.local_public_key(), server.local_public_key());
    let mut tx = client.complete(&spk).unwrap();
    let mut rx = server.complete(&cpk).unwrap();
    let payload = vec![0xa5u8; MIB];
    let mut wire = Vec::with_capacity(MIB + 64);
    g.bench_function("seal_open_1mib", |b| {
        b.iter(|| {
            wire.clear();
            tx.seal_into(3, &payload, &mut wire).unwrap();
            let (_, p) = rx.push(&wire).unwrap();
            p.unwrap()
        })
    });
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("loopback");

    // One long-lived connection; each sample sends `iters` DATA messages through it.
    let (mut client, server) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acc = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            accept(tcp, &AcceptOptions::default()).await.unwrap()
        });
        let client = connect(addr, &ConnectOptions::default()).await.unwrap();
        (client, acc.await.unwrap())
    });
    let (mut srv_reader, _srv_writer) = server.into_split();
    let (cnt_tx, mut cnt_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    rt.spawn(async move {
        while let Some((n, _)) = cnt_rx.recv().await {
            for _ in 0..n {
                match srv_reader.recv_plaintext().await {
                    Ok(Some(p)) => assert_eq!(p.payload().len(), MIB),
                    other => panic!("receiver: {other:?}"),
                }
            }
            done_tx.send(Instant::now()).unwrap();
        }
    });
    let msg = Message::Data(vec![0x3cu8; MIB]);
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("data_1mib", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                cnt_tx.send((iters, start)).unwrap();
                for _ in 0..iters {
                    client.send(&msg).await.unwrap();
                }
                done_rx.recv().await.unwrap() - start
            })
        })
    });

    // Fetch a stored 1 MiB blob (server reads it, client checks its SHA-256).
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let blob: Vec<u8> = (0..1_048_592u32).map(|i| (i % 249) as u8).collect();
    let id = store.put_content(&blob).unwrap();
    let (handle, mut fetcher) = rt.block_on(async {
        let handle = BlobServer::bind("127.0.0.1:0", store, ServerConfig::default())
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let fetcher = BlobFetcher::connect(handle.local_addr(), &FetcherOptions::default())
            .await
            .unwrap();
        (handle, fetcher)
    });
    g.throughput(Throughput::Bytes(blob.len() as u64));
    g.bench_function("fetch_1mib", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let ids = vec![id; iters as usize];
                let start = Instant::now();
                let got = fetcher
                    .fetch_each(&ids, |_, r| async move { r.is_ok() })
                    .await;
                let elapsed = start.elapsed();
                assert!(got.into_iter().all(|ok| ok));
                elapsed
            })
        })
    });

    // Handshakes: connect + key exchange, accepted by a loop that completes each one.
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                if let Ok(s) = accept(tcp, &AcceptOptions::default()).await {
                    let _ = s.close_within(Duration::from_secs(1)).await;
                }
            });
        }
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("handshake", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let s = connect(addr, &ConnectOptions::default()).await.unwrap();
                    drop(s);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(async {
        fetcher.close().await;
        handle.shutdown().await;
    });
}

criterion_group!(benches, raw_aead, core, loopback);
criterion_main!(benches);
