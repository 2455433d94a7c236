//! Load with misbehaving peers: CLIENTS well-behaved clients fetch 1 MiB blobs from one
//! `BlobServer` on loopback for SECS seconds while BAD misbehaving connections hold on (silent,
//! one byte per second during the handshake, one byte per second of a frame, garbage, huge
//! frame lengths), reconnecting whenever the server drops them. Every good client must be
//! served without a single error; the run fails otherwise.
//!
//! `cargo bench --bench load` runs the full load (500 clients, 50 bad, 60 s; override with
//! LOAD_CLIENTS, LOAD_BAD, LOAD_SECS). Without `--bench` (`cargo test --benches`) it runs a
//! 3-second smoke version. The server runs in a child process (this binary with
//! LOAD_ROLE=server) so that its peak memory (VmHWM) is its own, not the clients'.

use megatorrent::blob::BlobStore;
use megatorrent::id::BlobId;
use megatorrent::peer::{
    BlobFetcher, BlobServer, CloseReason, FetcherOptions, ServerConfig, ServerHandle,
};
use megatorrent::transport::{Handshake, Message, Role};
use rand::{Rng, RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, sleep_until, timeout};

const BLOB_LEN: usize = 1_048_592;
const BLOBS: usize = 32;

/// Peak and current resident memory of this process, in KiB, from /proc/self/status.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------------------------

/// A stable label for a close reason (error values such as frame lengths left out).
fn label(reason: &CloseReason) -> String {
    let inner = |e: &dyn std::fmt::Debug| {
        let d = format!("{e:?}");
        d.split(['(', ' ', '{']).next().unwrap_or("").to_owned()
    };
    match reason {
        CloseReason::Handshake(e) => format!("Handshake/{}", inner(e)),
        CloseReason::Transport(e) => format!("Transport/{}", inner(e)),
        CloseReason::BadMessage(e) => format!("BadMessage/{}", inner(e)),
        other => inner(other),
    }
}

/// Serve the store in LOAD_STORE with room for LOAD_MAX_CONN connections; print the port,
/// run until stdin closes, then print close reasons, peak connections and memory.
fn server_main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = BlobStore::open(std::env::var("LOAD_STORE").unwrap()).unwrap();
        let config = ServerConfig {
            max_connections: env_or("LOAD_MAX_CONN", 600),
            ..ServerConfig::default()
        };
        let server = BlobServer::bind("127.0.0.1:0", store, config)
            .await
            .unwrap();
        let handle: ServerHandle = server.spawn().unwrap();
        let mut closed = handle.subscribe_closed();
        let counts = tokio::spawn(async move {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                match closed.recv().await {
                    Ok(ev) => *counts.entry(label(&ev.reason)).or_default() += 1,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        *counts.entry("(events lost: lagged)".into()).or_default() += n
                    }
                    Err(_) => return counts,
                }
            }
        });
        println!("PORT {}", handle.local_addr().port());
        std::io::stdout().flush().unwrap();

        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        });
        let mut peak_active = 0;
        tokio::pin!(stdin_closed);
        loop {
            tokio::select! {
                _ = &mut stdin_closed => break,
                _ = sleep(Duration::from_millis(100)) => {
                    peak_active = peak_active.max(handle.active_connections());
                }
            }
        }
        let (hwm, rss) = memory_kib();
        timeout(Duration::from_secs(30), handle.shutdown())
            .await
            .expect("server shutdown");
        let counts = counts.await.unwrap();
        for (reason, n) in counts {
            println!("CLOSED {n} {reason}");
        }
        println!("PEAK_ACTIVE {peak_active}");
        println!("MEMORY {hwm} {rss}");
    });
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Good {
    fetched: u64,
    errors: Vec<String>,
    latencies: Vec<Duration>,
}

async fn good_client(addr: SocketAddr, ids: Arc<Vec<BlobId>>, n: usize, end: Instant) -> Good {
    let mut out = Good::default();
    let mut next = n;
    while Instant::now() < end {
        let mut f = match BlobFetcher::connect(addr, &FetcherOptions::default()).await {
            Ok(f) => f,
            Err(e) => {
                out.errors.push(format!("connect: {e}"));
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while Instant::now() < end {
            let id = ids[next % ids.len()];
            next += 1;
            let t0 = Instant::now();
            match f.fetch(id).await {
                // `fetch` already checked that the content hashes to `id`.
                Ok(b) if b.len() == BLOB_LEN => {
                    out.fetched += 1;
                    out.latencies.push(t0.elapsed());
                }
                Ok(b) => out.errors.push(format!("{id}: {} bytes", b.len())),
                Err(e) => {
                    out.errors.push(format!("fetch {id}: {e}"));
                    break;
                }
            }
        }
        if f.is_usable() {
            f.close().await;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bad {
    /// Connects and sends nothing.
    Silent,
    /// Sends its handshake key one byte per second.
    SlowKey,
    /// Completes the handshake, then sends a REQUEST frame one byte per second.
    SlowFrame,
    /// Sends random bytes as fast as the server takes them.
    Garbage,
    /// Completes the handshake, then announces a 4 GiB frame.
    HugeLength,
}

const KINDS: [Bad; 5] = [
    Bad::Silent,
    Bad::SlowKey,
    Bad::SlowFrame,
    Bad::Garbage,
    Bad::HugeLength,
];

#[derive(Default)]
struct BadReport {
    connections: u64,
    closed_by_server: u64,
    longest_hold: Duration,
}

/// Connect, misbehave until the server closes the connection (or the run ends), reconnect.
async fn bad_client(kind: Bad, addr: SocketAddr, id: BlobId, seed: u64, end: Instant) -> BadReport {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut report = BadReport::default();
    while Instant::now() < end {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            sleep(Duration::from_millis(50)).await;
            continue;
        };
        report.connections += 1;
        let start = Instant::now();
        let mut frame = Vec::new();
        if matches!(kind, Bad::SlowFrame | Bad::HugeLength) {
            let hs = Handshake::new(Role::Client);
            let mut key = [0u8; 32];
            let ok = tcp.write_all(&hs.local_public_key()).await.is_ok()
                && tcp.read_exact(&mut key).await.is_ok();
            let Some(mut t) = ok.then(|| hs.complete(&key).ok()).flatten() else {
                continue;
            };
            if kind == Bad::SlowFrame {
                t.seal_message(&Message::Request(id), &mut frame).unwrap();
            } else {
                frame = u32::MAX.to_be_bytes().to_vec();
            }
        }
        let (mut rd, mut wr) = tcp.into_split();
        let mut garbage = vec![0u8; 4096];
        rng.fill_bytes(&mut garbage);
        let misbehave = async {
            match kind {
                Bad::Silent => {}
                Bad::SlowKey | Bad::SlowFrame => {
                    let bytes = if kind == Bad::SlowKey {
                        garbage[..32].to_vec()
                    } else {
                        frame
                    };
                    for b in bytes {
                        if wr.write_all(&[b]).await.is_err() {
                            break;
                        }
                        sleep(Duration::from_secs(1)).await;
                    }
                }
                Bad::Garbage => {
                    while wr.write_all(&garbage).await.is_ok() {
                        sleep(Duration::from_millis(10)).await;
                    }
                }
                Bad::HugeLength => {
                    let _ = wr.write_all(&frame).await;
                }
            }
            std::future::pending::<()>().await
        };
        let server_closed = async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            _ = misbehave => {}
            _ = server_closed => report.closed_by_server += 1,
            _ = sleep_until(end.into()) => {}
        }
        report.longest_hold = report.longest_hold.max(start.elapsed());
        sleep(Duration::from_millis(rng.random_range(20..80))).await;
    }
    report
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::var("LOAD_ROLE").as_deref() == Ok("server") {
        return server_main();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (d_clients, d_bad, d_secs) = if full { (500, 50, 60) } else { (20, 5, 3) };
    let clients = env_or("LOAD_CLIENTS", d_clients);
    let bad = env_or("LOAD_BAD", d_bad);
    let secs = env_or("LOAD_SECS", d_secs) as u64;
    // Room for every good and bad connection, plus bad ones reconnecting before the server
    // has finished closing their previous connection. The default is 256.
    let max_conn = clients + bad + 50;

    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let ids: Vec<BlobId> = (0..BLOBS)
        .map(|_| {
            let mut blob = vec![0u8; BLOB_LEN];
            rng.fill_bytes(&mut blob);
            store.put_content(&blob).unwrap()
        })
        .collect();
    let ids = Arc::new(ids);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("LOAD_ROLE", "server")
        .env("LOAD_STORE", dir.path())
        .env("LOAD_MAX_CONN", max_conn.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("PORT ")
        .unwrap()
        .parse()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    println!(
        "load: {clients} clients + {bad} misbehaving connections for {secs} s against \
         127.0.0.1:{port} (max_connections {max_conn}, default {}), {BLOBS} blobs of {BLOB_LEN} bytes",
        ServerConfig::default().max_connections
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let (goods, bads) = rt.block_on(async {
        let end = Instant::now() + Duration::from_secs(secs);
        let bad_tasks: Vec<_> = (0..bad)
            .map(|i| {
                let kind = KINDS[i % KINDS.len()];
                let report = bad_client(kind, addr, ids[i % BLOBS], i as u64, end);
                tokio::spawn(async move { (kind, report.await) })
            })
            .collect();
        let good_tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(good_client(addr, ids.clone(), i, end)))
            .collect();
        // Fetches in flight at the deadline finish; bound the wait all the same.
        let limit = Duration::from_secs(secs + 120);
        let mut goods = Vec::new();
        for t in good_tasks {
            goods.push(timeout(limit, t).await.expect("client hung").unwrap());
        }
        let mut bads = Vec::new();
        for t in bad_tasks {
            bads.push(timeout(limit, t).await.expect("bad client hung").unwrap());
        }
        (goods, bads)
    });
    let elapsed = started.elapsed();
    drop(rt);
    let (client_hwm, _) = memory_kib();

    // Stop the server and read its figures.
    drop(child.stdin.take());
    let server_lines: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "server process failed: {status}");

    // Good clients.
    let fetched: u64 = goods.iter().map(|g| g.fetched).sum();
    let errors: Vec<&String> = goods.iter().flat_map(|g| &g.errors).collect();
    let unserved = goods.iter().filter(|g| g.fetched == 0).count();
    let mut lat: Vec<Duration> = goods.iter().flat_map(|g| g.latencies.clone()).collect();
    lat.sort_unstable();
    let mut per_client: Vec<u64> = goods.iter().map(|g| g.fetched).collect();
    per_client.sort_unstable();
    let mib = fetched as f64 * BLOB_LEN as f64 / (1 << 20) as f64;
    println!(
        "good clients: {fetched} blobs fetched and verified ({mib:.0} MiB) in {:.1} s: \
         {:.1} MiB/s, {:.1} blobs/s",
        elapsed.as_secs_f64(),
        mib / elapsed.as_secs_f64(),
        fetched as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  per client: min {} / median {} / max {} blobs; {unserved} clients unserved; {} errors",
        per_client.first().unwrap_or(&0),
        per_client.get(per_client.len() / 2).unwrap_or(&0),
        per_client.last().unwrap_or(&0),
        errors.len()
    );
    println!(
        "  latency per blob: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    for e in errors.iter().take(10) {
        println!("  error: {e}");
    }

    // Misbehaving connections, by kind.
    let mut by_kind: BTreeMap<Bad, (usize, BadReport)> = BTreeMap::new();
    for (kind, r) in bads {
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1.connections += r.connections;
        e.1.closed_by_server += r.closed_by_server;
        e.1.longest_hold = e.1.longest_hold.max(r.longest_hold);
    }
    for (kind, (n, r)) in &by_kind {
        println!(
            "bad {kind:?} x{n}: {} connections, {} closed by the server, longest held {:.1} s",
            r.connections,
            r.closed_by_server,
            r.longest_hold.as_secs_f64()
        );
    }
    for l in &server_lines {
        if let Some(rest) = l.strip_prefix("CLOSED ") {
            println!("server closed: {rest}");
        } else if let Some(rest) = l.strip_prefix("PEAK_ACTIVE ") {
            println!("server peak active connections: {rest}");
        } else if let Some(rest) = l.strip_prefix("MEMORY ") {
            let mut it = rest.split(' ').map(|v| v.parse::<u64>().unwrap_or(0));
            let (hwm, rss) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            println!(
                "server memory: peak {} MiB (VmHWM), {} MiB at the end of the run",
                hwm / 1024,
                rss / 1024
            );
        }
    }
    println!(
        "client process memory: peak {} MiB (VmHWM)",
        client_hwm / 1024
    );

    assert!(
        errors.is_empty() && unserved == 0,
        "{unserved} good clients unserved, {} errors",
        errors.len()
    );
}
