//! Transport throughput and handshake rate (issue 3, acceptance 5).
//!
//! - `raw_aead/seal_1mib`: ChaCha20-Poly1305 over 1 MiB in place, this build: the ceiling.
//! - `core/seal_open_1mib`: the sans-IO core sealing and opening one 1 MiB DATA frame.
//! - `loopback/data_1mib`: 1 MiB DATA messages over a loopback TCP connection (sender and
//!   receiver on separate threads, so sealing and opening overlap as between two hosts).
//! - `*_cpu*`: the same work timed by thread CPU time instead of wall time, so figures stay
//!   comparable on a machine shared with other loads: `loopback/data_1mib_cpu_bottleneck`
//!   counts the busier side (socket copies included), i.e. the rate with one core per side.
//! - `loopback/fetch_1mib`: a BlobFetcher fetching a 1 MiB blob from a BlobServer (disk read,
//!   SHA-256 check included).
//! - `loopback/handshake`: TCP connect plus the v5 key exchange, one at a time.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce};
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

/// CPU time consumed so far by the calling thread (Linux schedstat, nanoseconds).
fn thread_cpu() -> Duration {
    // The kernel brings the running thread's counter up to date when it yields.
    std::thread::yield_now();
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

struct PipeRun {
    wall: Duration,
    sender_cpu: Duration,
    receiver_cpu: Duration,
}

/// A connection whose receiving end runs on its own thread with its own runtime.
struct Pipe {
    rt: tokio::runtime::Runtime,
    client: megatorrent::transport::SecureStream,
    count_tx: std::sync::mpsc::Sender<u64>,
    done_rx: std::sync::mpsc::Receiver<(Instant, Duration)>,
    msg: Message,
}

impl Pipe {
    fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (count_tx, count_rx) = std::sync::mpsc::channel::<u64>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (tcp, _) = listener.accept().unwrap();
                tcp.set_nonblocking(true).unwrap();
                let tcp = tokio::net::TcpStream::from_std(tcp).unwrap();
                let (mut reader, _writer) = accept(tcp, &AcceptOptions::default())
                    .await
                    .unwrap()
                    .into_split();
                while let Ok(n) = count_rx.recv() {
                    let cpu0 = thread_cpu();
                    for _ in 0..n {
                        match reader.recv_plaintext().await {
                            Ok(Some(p)) => assert_eq!(p.payload().len(), MIB),
                            other => panic!("receiver: {other:?}"),
                        }
                    }
                    let _ = done_tx.send((Instant::now(), thread_cpu() - cpu0));
                }
            });
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(connect(addr, &ConnectOptions::default()))
            .unwrap();
        Self {
            rt,
            client,
            count_tx,
            done_rx,
            msg: Message::Data(vec![0x3cu8; MIB]),
        }
    }

    fn run(&mut self, n: u64) -> PipeRun {
        let start = Instant::now();
        self.count_tx.send(n).unwrap();
        let cpu0 = thread_cpu();
        let (client, msg) = (&mut self.client, &self.msg);
        self.rt.block_on(async {
            for _ in 0..n {
                client.send(msg).await.unwrap();
            }
        });
        let sender_cpu = thread_cpu() - cpu0;
        let (done, receiver_cpu) = self.done_rx.recv().unwrap();
        PipeRun {
            wall: done - start,
            sender_cpu,
            receiver_cpu,
        }
    }
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
                .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                .unwrap()
        })
    });
    // The same, timed by this thread's CPU time (immune to other processes on the machine).
    g.bench_function("seal_1mib_cpu", |b| {
        b.iter_custom(|iters| {
            let cpu0 = thread_cpu();
            for _ in 0..iters {
                n += 1;
                let mut nonce = Nonce::default();
                nonce[..8].copy_from_slice(&n.to_le_bytes());
                cipher
                    .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                    .unwrap();
            }
            thread_cpu() - cpu0
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

    // 1 MiB DATA over one long-lived loopback connection. Sender and receiver each run on a
    // thread of their own (as on two hosts), so their CPU time can be measured separately.
    let mut pipe = Pipe::new();
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("data_1mib", |b| b.iter_custom(|iters| pipe.run(iters).wall));
    // The same transfer timed by the CPU time of its busier side: the throughput with one
    // uncontended core per side, comparable with `raw_aead/seal_1mib_cpu` on a shared machine.
    g.bench_function("data_1mib_cpu_bottleneck", |b| {
        b.iter_custom(|iters| {
            let r = pipe.run(iters);
            r.sender_cpu.max(r.receiver_cpu)
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
