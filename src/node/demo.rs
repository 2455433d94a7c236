//! The end-to-end demo, entirely on 127.0.0.1 (never the public DHT): a local DHT of server
//! nodes, seeding peers that publish one generated file, and a subscriber that discovers the
//! manifest through the DHT, finds the peers, downloads over the secure transport and checks
//! that the result is identical (SHA-256).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::blob::BlobStore;
use crate::dht::{DhtClient, DhtConfig, TransportFetcher};
use crate::id::BlobId;
use crate::identity::Identity;
use crate::node::{
    ingest_files, publish_entries, DownloadOptions, DownloadReport, Downloader, EventFn, NodeError,
    PublishOptions, Seeding, SeedingOptions,
};

/// Called when a phase starts, with its name.
pub type PhaseFn = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Settings of [`run_demo`].
#[derive(Clone)]
pub struct DemoOptions {
    /// Size of the generated file in bytes.
    pub size: u64,
    /// Nodes of the local DHT.
    pub nodes: usize,
    /// Seeding peers (the publisher and copies of its store).
    pub peers: usize,
    /// Folder in which the demo's temporary folder is made (the system's by default). The
    /// temporary folder is removed at the end.
    pub work_dir: Option<PathBuf>,
    /// The subscriber's download settings.
    pub download: DownloadOptions,
    /// Download progress.
    pub events: Option<EventFn>,
    /// Phase changes.
    pub phases: Option<PhaseFn>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            size: 256 << 20,
            nodes: 20,
            peers: 3,
            work_dir: None,
            download: DownloadOptions::default(),
            events: None,
            phases: None,
        }
    }
}

impl std::fmt::Debug for DemoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOptions")
            .field("size", &self.size)
            .field("nodes", &self.nodes)
            .field("peers", &self.peers)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// What the demo did and measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Size of the file.
    pub size: u64,
    /// Nodes of the local DHT.
    pub nodes: usize,
    /// Seeding peers.
    pub peers: usize,
    /// The channel's public key (hex).
    pub public_key: String,
    /// The manifest's sequence number.
    pub sequence: u64,
    /// Parts of the pointer record (0: the manifest was inline).
    pub manifest_parts: usize,
    /// Each phase and how long it took, in order.
    pub phases: Vec<(&'static str, Duration)>,
    /// The subscriber's download.
    pub download: DownloadReport,
    /// SHA-256 of the generated file.
    pub source_sha256: [u8; 32],
    /// SHA-256 of the downloaded file.
    pub result_sha256: [u8; 32],
}

impl DemoReport {
    /// True when the downloaded file is identical to the published one.
    pub fn identical(&self) -> bool {
        self.source_sha256 == self.result_sha256
    }

    /// Duration of the phase `name`.
    pub fn phase(&self, name: &str) -> Option<Duration> {
        self.phases
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// Download throughput in bytes per second (file bytes over the download phase).
    pub fn throughput(&self) -> f64 {
        let secs = self.phase("download").unwrap_or_default().as_secs_f64();
        if secs > 0.0 {
            self.size as f64 / secs
        } else {
            0.0
        }
    }
}

/// Run the demo. Everything it starts is stopped and every file it wrote is removed before
/// it returns, whatever the outcome.
pub async fn run_demo(opts: DemoOptions) -> Result<DemoReport, NodeError> {
    let base = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("megatorrent-demo-")
        .tempdir_in(&base)
        .map_err(|source| NodeError::Io { path: base, source })?;
    let mut phases = Vec::new();
    let mut phase = |name: &'static str| {
        if let Some(f) = &opts.phases {
            f(name);
        }
        name
    };
    let mut timed = |name: &'static str, start: Instant| phases.push((name, start.elapsed()));

    // 1. The file.
    let name = phase("generate");
    let start = Instant::now();
    let source = tmp.path().join(format!("demo-{}.bin", opts.size));
    let source_sha256 = {
        let (path, size) = (source.clone(), opts.size);
        tokio::task::spawn_blocking(move || generate(&path, size)).await??
    };
    timed(name, start);

    // 2. The local DHT: server-mode nodes on 127.0.0.1 only.
    let name = phase("dht");
    let start = Instant::now();
    let nodes = opts.nodes.max(1);
    let testnet = tokio::task::spawn_blocking(move || mainline::Testnet::builder(nodes).build())
        .await?
        .map_err(|source| NodeError::Io {
            path: PathBuf::from("127.0.0.1 (DHT testnet)"),
            source,
        })?;
    let dht_config = {
        let mut c = DhtConfig::local(&testnet.bootstrap);
        // A network made only of our own nodes: every node answers (PROTOCOL.md 4.1), so no
        // lookup waits for a silent client-mode node. The time-out only bounds lost packets.
        c.server_mode = true;
        c.request_timeout = Duration::from_millis(500);
        c
    };
    timed(name, start);

    let outcome = demo_body(&opts, &tmp, &source, &dht_config, &mut phase, &mut timed).await;
    drop(testnet);
    let (public_key, sequence, manifest_parts, download, result_sha256) = outcome?;
    Ok(DemoReport {
        size: opts.size,
        nodes,
        peers: opts.peers.max(1),
        public_key,
        sequence,
        manifest_parts,
        phases,
        download,
        source_sha256,
        result_sha256,
    })
}

type BodyOutcome = (String, u64, usize, DownloadReport, [u8; 32]);

async fn demo_body(
    opts: &DemoOptions,
    tmp: &tempfile::TempDir,
    source: &Path,
    dht_config: &DhtConfig,
    phase: &mut impl FnMut(&'static str) -> &'static str,
    timed: &mut impl FnMut(&'static str, Instant),
) -> Result<BodyOutcome, NodeError> {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    // 3. Ingest on the first peer.
    let name = phase("ingest");
    let start = Instant::now();
    let store0 = BlobStore::open(tmp.path().join("peer-0"))?;
    let entries = ingest_files(&[source.to_owned()], &store0).await?;
    timed(name, start);

    // 4. Publish, and seed copies of the store on the other peers.
    let name = phase("publish");
    let start = Instant::now();
    let identity = Identity::generate();
    let dht0 = DhtClient::start(dht_config)?;
    let published = publish_entries(
        &identity,
        entries,
        &store0,
        &dht0,
        local,
        &PublishOptions::default(),
    )
    .await?;
    let mut ids: Vec<BlobId> = published.blobs().to_vec();
    ids.extend_from_slice(&published.put_report().parts);
    let mut starting = tokio::task::JoinSet::new();
    for i in 1..opts.peers.max(1) {
        let dir = tmp.path().join(format!("peer-{i}"));
        let (from, ids, config) = (store0.clone(), ids.clone(), dht_config.clone());
        starting.spawn(async move {
            let store = tokio::task::spawn_blocking(move || link_store(&from, &dir)).await??;
            let dht = DhtClient::start(&config)?;
            Seeding::start(store, ids, dht, local, &SeedingOptions::default()).await
        });
    }
    let mut seeders = Vec::new();
    let mut failure = None;
    while let Some(joined) = starting.join_next().await {
        match joined {
            Ok(Ok(s)) => seeders.push(s),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(e.into());
            }
        }
    }
    timed(name, start);

    let outcome = match failure {
        Some(e) => Err(e),
        None => subscribe_and_download(opts, tmp, &identity, dht_config, phase, timed).await,
    };
    for s in seeders {
        s.shutdown().await;
    }
    let (public_key, sequence, parts) = (
        identity.public_key_hex(),
        published.sequence(),
        published.put_report().parts.len(),
    );
    published.shutdown().await;
    let (download, result) = outcome?;
    Ok((public_key, sequence, parts, download, result))
}

async fn subscribe_and_download(
    opts: &DemoOptions,
    tmp: &tempfile::TempDir,
    identity: &Identity,
    dht_config: &DhtConfig,
    phase: &mut impl FnMut(&'static str) -> &'static str,
    timed: &mut impl FnMut(&'static str, Instant),
) -> Result<(DownloadReport, [u8; 32]), NodeError> {
    // 5. A fresh subscriber finds the manifest through the DHT (parts over the transport).
    let name = phase("discover");
    let start = Instant::now();
    let dht =
        DhtClient::start(dht_config)?.with_part_fetcher(Arc::new(TransportFetcher::default()));
    let manifest = dht.get_manifest(&identity.public_key_bytes(), b"").await?;
    timed(name, start);

    // 6. Download from the peers it finds.
    let name = phase("download");
    let start = Instant::now();
    let store = BlobStore::open(tmp.path().join("subscriber"))?;
    let out = tmp.path().join("downloads");
    let mut downloader = Downloader::new(store, Some(dht), opts.download.clone());
    if let Some(events) = &opts.events {
        downloader = downloader.with_events(events.clone());
    }
    let report = downloader.download(&manifest, None, &out).await?;
    timed(name, start);

    // 7. Check the result.
    let name = phase("verify");
    let start = Instant::now();
    let file = report.files.first().cloned().ok_or_else(|| NodeError::Io {
        path: out.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no file was downloaded"),
    })?;
    let digest = tokio::task::spawn_blocking(move || sha256_file(&file)).await??;
    timed(name, start);
    Ok((report, digest))
}

/// Write `size` pseudo-random bytes to `path` and return their SHA-256.
fn generate(path: &Path, size: u64) -> Result<[u8; 32], NodeError> {
    let io = |source| NodeError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut rng = rand::rng();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    file.flush().map_err(io)?;
    Ok(hasher.finalize().into())
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<[u8; 32], NodeError> {
    let io = |source| NodeError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// A copy of `from` at `to` (hard links where possible: the items never change).
fn link_store(from: &BlobStore, to: &Path) -> Result<BlobStore, NodeError> {
    let store = BlobStore::open(to)?;
    for id in from.list()? {
        let (src, dst) = (from.path_of(&id), store.path_of(&id));
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|source| NodeError::Io { path: dst, source })?;
        }
    }
    Ok(store)
}
