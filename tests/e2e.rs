//! End to end through the library, all on 127.0.0.1: the demo flow, a seeding peer that stops
//! midway, a peer serving a corrupt blob, a private channel, resume, and the typed failures.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use megatorrent::blob::{ingest_file, BlobStore};
use megatorrent::dht::{DhtClient, TransportFetcher};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, Collection, FileEntry, ManifestContent, ManifestError, ReadKey,
    SignedManifest, CHUNK_SIZE,
};
use megatorrent::node::demo::{run_demo, DemoOptions};
use megatorrent::node::{
    ingest_files, publish_files, DownloadError, DownloadEvent, DownloadOptions, DownloadReport,
    Downloader, EventFn, NodeError, PublishOptions, Published, SeedingOptions,
};
use megatorrent::peer::{BlobFetcher, BlobServer, FetcherOptions, ServerConfig, ServerHandle};
use megatorrent::transport::{accept, AcceptOptions, Message};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(120);
const MIB: usize = 1 << 20;

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A blob server on 127.0.0.1 with the default settings.
async fn serve(store: BlobStore) -> ServerHandle {
    BlobServer::bind(local(), store, ServerConfig::default())
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

/// The publisher's side of a test through the DHT: a loopback testnet, one file of random
/// bytes, the channel's identity and the publisher's blob store.
struct DhtChannel {
    net: mainline::Testnet,
    dir: tempfile::TempDir,
    file: PathBuf,
    identity: Identity,
    store: BlobStore,
}

impl DhtChannel {
    /// An 8-node testnet and a file `name` of `len` bytes, for the identity of `seed`.
    fn new(name: &str, len: usize, seed: u8) -> Self {
        let net = common::testnet(8);
        let dir = tempfile::tempdir().unwrap();
        let file = random_file(dir.path(), name, len);
        let store = BlobStore::open(dir.path().join("pub")).unwrap();
        Self {
            net,
            dir,
            file,
            identity: Identity::from_seed(&[seed; 32]),
            store,
        }
    }

    /// A new DHT client on the testnet.
    fn dht(&self) -> DhtClient {
        common::client(&self.net.bootstrap)
    }

    /// Publish the file through `node` and serve it on 127.0.0.1.
    async fn publish(&self, node: &DhtClient, opts: &PublishOptions) -> Published {
        let files = std::slice::from_ref(&self.file);
        publish_files(&self.identity, files, &self.store, node, local(), opts)
            .await
            .unwrap()
    }

    /// A reader (fetching the parts of a pointer record over the transport) and the
    /// manifest it gets for the sub-channel `salt`.
    async fn read(&self, salt: &[u8]) -> (DhtClient, SignedManifest) {
        let reader = self
            .dht()
            .with_part_fetcher(Arc::new(TransportFetcher::default()));
        let manifest = reader
            .get_manifest(&self.identity.public_key_bytes(), salt)
            .await
            .unwrap();
        (reader, manifest)
    }
}

/// A file of `len` random bytes named `name` in `dir`.
fn random_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    path
}

fn sha(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Collects every event of a download.
fn recorder() -> (EventFn, Arc<Mutex<Vec<DownloadEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        Arc::new(move |e: &DownloadEvent| sink.lock().unwrap().push(e.clone())),
        seen,
    )
}

/// A store holding one ingested file, and the plain manifest listing it.
fn channel(dir: &Path, len: usize) -> (BlobStore, FileEntry, SignedManifest, PathBuf) {
    let file = random_file(dir, "data.bin", len);
    let store = BlobStore::open(dir.join("seed")).unwrap();
    let entry = ingest_file(&file, &store).unwrap();
    let content = ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![entry.clone()],
        }],
        timestamp: 1,
    };
    let manifest = create_manifest(&Identity::from_seed(&[9; 32]), 1, &content).unwrap();
    (store, entry, manifest, file)
}

/// A copy of a store's blobs in a new folder.
fn copy_store(from: &BlobStore, to: &Path) -> BlobStore {
    let store = BlobStore::open(to).unwrap();
    for id in from.list().unwrap() {
        std::fs::copy(from.path_of(&id), store.path_of(&id)).unwrap();
    }
    store
}

/// Quick options for tests that pass their peers directly.
fn direct(peers: Vec<SocketAddr>) -> DownloadOptions {
    DownloadOptions::default()
        .peers(peers)
        .reply_timeout(Duration::from_secs(10))
        .round_delay(Duration::from_millis(50))
}

/// Download `manifest` from `peers` only into `dir/sub` (blobs) and `dir/out` (files), within
/// the time limit. Returns the report, every event, the blob store and the output folder.
async fn download_from(
    dir: &Path,
    manifest: &SignedManifest,
    peers: Vec<SocketAddr>,
) -> (DownloadReport, Vec<DownloadEvent>, BlobStore, PathBuf) {
    let (events, seen) = recorder();
    let sub = BlobStore::open(dir.join("sub")).unwrap();
    let out = dir.join("out");
    let report = timeout(
        LIMIT,
        Downloader::new(sub.clone(), None, direct(peers))
            .with_events(events)
            .download(manifest, None, &out),
    )
    .await
    .unwrap()
    .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (report, seen, sub, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_flow_small() {
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let opts = DemoOptions::default()
        .size(8 * MIB as u64 + 12345)
        .nodes(8)
        .peers(2)
        .phases(Some(Arc::new(move |p| {
            sink.lock().unwrap().push(p.to_string())
        })));
    let report = timeout(LIMIT, run_demo(opts)).await.unwrap().unwrap();
    assert!(report.identical());
    assert_eq!(report.download.blobs_total, 9);
    assert_eq!(report.download.blobs_fetched, 9);
    assert_eq!(report.download.blobs_present, 0);
    assert!(!report.download.peers_used.is_empty());
    assert!(report.download.peers_dropped.is_empty());
    // Nine chunks do not fit in one BEP 44 item: the manifest went as a pointer record.
    assert!(report.manifest_parts >= 1);
    assert_eq!(
        *events.lock().unwrap(),
        ["generate", "dht", "ingest", "publish", "discover", "download", "verify"]
    );
    // The figure is the file's bytes over the download phase, and those bytes all moved.
    assert_eq!(report.download.bytes_total, report.size);
    let secs = report.phase("download").unwrap().as_secs_f64();
    assert!(secs > 0.0);
    assert!((report.throughput() * secs - report.size as f64).abs() < 1.0);
    assert!(
        report.download.blobs_fetched * CHUNK_SIZE >= report.size as usize,
        "fetched blobs cannot hold the file"
    );
}

/// A peer that serves `serve` blobs on its first connection, then closes it and stops
/// listening: a seeding peer that goes away midway.
async fn peer_that_stops(store: BlobStore, serve: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(local()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        drop(listener);
        let mut s = accept(tcp, &AcceptOptions::default()).await.unwrap();
        let mut served = 0;
        while let Ok(Some(m)) = s.recv().await {
            match m {
                Message::Request(id) if served < serve => {
                    let bytes = store.get(&id).unwrap().unwrap();
                    s.send(&Message::Data(bytes)).await.unwrap();
                    served += 1;
                }
                Message::Request(_) => break,
                Message::FindPeers(_) => s.send(&Message::Peers(vec![])).await.unwrap(),
                _ => {}
            }
        }
        let _ = s.close().await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeding_peer_stopped_midway() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entry, manifest, file) = channel(dir.path(), 24 * MIB);
    let stopping = peer_that_stops(copy_store(&store, &dir.path().join("a")), 3).await;
    let b = serve(store.clone()).await;
    let (report, seen, _, out) =
        download_from(dir.path(), &manifest, vec![stopping, b.local_addr()]).await;
    assert_eq!(sha(&out.join(&entry.name)), sha(&file));
    assert_eq!(report.blobs_fetched, 24);
    // The stopped peer delivered exactly what it served; the other peer everything else.
    let mut expected = vec![(stopping, 3), (b.local_addr(), 21)];
    expected.sort();
    assert_eq!(report.peers_used, expected);
    assert!(seen
        .iter()
        .any(|e| matches!(e, DownloadEvent::PeerLost { peer, .. } if *peer == stopping)));
    assert!(report.peers_dropped.is_empty());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_blob_detected_fetched_elsewhere_and_peer_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entry, manifest, file) = channel(dir.path(), 12 * MIB);
    // Every blob in peer A's store is corrupted (same length, one byte changed), so the first
    // blob A is asked for comes back wrong, whichever it is.
    let bad_store = copy_store(&store, &dir.path().join("a"));
    for id in bad_store.list().unwrap() {
        let mut bytes = std::fs::read(bad_store.path_of(&id)).unwrap();
        bytes[1000] ^= 0xff;
        std::fs::write(bad_store.path_of(&id), &bytes).unwrap();
    }
    let a = serve(bad_store).await;
    let b = serve(store.clone()).await;
    // The downloader only knows A; A's announce table points to B (found by FIND_PEERS).
    let mut f = BlobFetcher::connect(a.local_addr(), &FetcherOptions::default())
        .await
        .unwrap();
    for c in &entry.chunks {
        f.announce(c.blob_id, &b.local_addr().to_string())
            .await
            .unwrap();
    }
    // ANNOUNCE has no reply: a round trip makes sure A has processed them.
    assert_eq!(
        f.find_peers(entry.chunks[0].blob_id).await.unwrap(),
        vec![b.local_addr().to_string()]
    );
    f.close().await;

    let (report, seen, sub, out) = download_from(dir.path(), &manifest, vec![a.local_addr()]).await;
    assert_eq!(sha(&out.join(&entry.name)), sha(&file));
    assert_eq!(report.peers_dropped, vec![a.local_addr()]);
    assert_eq!(
        report.peers_used,
        vec![(b.local_addr(), entry.chunks.len())]
    );
    let dropped: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            DownloadEvent::PeerDropped { peer, blob } => Some((*peer, *blob)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 1);
    let (peer, bad_id) = dropped[0];
    assert_eq!(peer, a.local_addr());
    // The blob A got wrong came from B, and is intact in the store.
    assert!(seen.iter().any(|e| matches!(e,
        DownloadEvent::BlobDone { blob, peer, .. } if *blob == bad_id && *peer == b.local_addr())));
    assert!(sub.get_verified(&bad_id).unwrap().is_some());
    // A was connected once: never used again after the wrong blob.
    let a_connects = seen
        .iter()
        .filter(|e| matches!(e, DownloadEvent::PeerConnected(p) if *p == a.local_addr()))
        .count();
    assert_eq!(a_connects, 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_channel_end_to_end() {
    let ch = DhtChannel::new("secret.bin", 3 * MIB + 7, 42);
    let key = ReadKey::generate();
    let opts = PublishOptions::default()
        .read_key(Some(key.clone()))
        .salt(b"private".to_vec());
    timeout(LIMIT, async {
        let publisher = ch.dht();
        let published = ch.publish(&publisher, &opts).await;
        assert!(published.manifest().is_private());

        let (reader, manifest) = ch.read(b"private").await;
        assert_eq!(manifest, *published.manifest());
        let sub = BlobStore::open(ch.dir.path().join("sub")).unwrap();
        let out = ch.dir.path().join("out");
        let downloader = Downloader::new(sub.clone(), Some(reader), DownloadOptions::default());
        // Without the key: a clear, typed refusal, and nothing fetched or written.
        assert!(matches!(
            downloader.download(&manifest, None, &out).await,
            Err(DownloadError::ReadKeyRequired)
        ));
        assert!(matches!(
            downloader
                .download(&manifest, Some(&ReadKey::from_bytes([1; 32])), &out)
                .await,
            Err(DownloadError::WrongReadKey)
        ));
        assert!(sub.list().unwrap().is_empty());
        assert!(!out.exists());
        // With it: the file, found through the DHT and fetched from the publisher.
        let report = downloader
            .download(&manifest, Some(&key), &out)
            .await
            .unwrap();
        assert_eq!(report.files, vec![out.join("secret.bin")]);
        assert_eq!(sha(&report.files[0]), sha(&ch.file));
        assert_eq!(report.peers_used, vec![(published.local_addr(), 4)]);
        published.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_fetches_only_what_is_missing() {
    let ch = DhtChannel::new("r.bin", 5 * MIB, 43);
    timeout(LIMIT, async {
        let publisher = ch.dht();
        let opts = PublishOptions::default();
        let published = ch.publish(&publisher, &opts).await;
        let (reader, manifest) = ch.read(b"").await;
        let sub = BlobStore::open(ch.dir.path().join("sub")).unwrap();
        let downloader = Downloader::new(sub.clone(), Some(reader), DownloadOptions::default());
        let first = downloader
            .download(&manifest, None, &ch.dir.path().join("out1"))
            .await
            .unwrap();
        assert_eq!((first.blobs_fetched, first.blobs_present), (5, 0));

        // Two blobs lost, one damaged: exactly those are fetched again.
        let blobs = published.blobs().to_vec();
        sub.remove(&blobs[0]).unwrap();
        sub.remove(&blobs[3]).unwrap();
        let mut damaged = std::fs::read(sub.path_of(&blobs[4])).unwrap();
        damaged[0] ^= 1;
        std::fs::write(sub.path_of(&blobs[4]), damaged).unwrap();
        let second = downloader
            .download(&manifest, None, &ch.dir.path().join("out2"))
            .await
            .unwrap();
        // The damaged blob counts as fetched, not as present.
        assert_eq!(second.blobs_present, 2);
        assert_eq!(second.blobs_fetched, 3);
        assert_eq!(sha(&second.files[0]), sha(&ch.file));

        // Everything present: nothing fetched, even with every peer gone.
        published.shutdown().await;
        let third = downloader
            .download(&manifest, None, &ch.dir.path().join("out3"))
            .await
            .unwrap();
        assert_eq!((third.blobs_fetched, third.blobs_present), (0, 5));
        assert!(third.peers_used.is_empty());
        assert_eq!(sha(&third.files[0]), sha(&ch.file));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequences_increase_and_republish_keeps_the_record() {
    let ch = DhtChannel::new("s.bin", 1000, 44);
    timeout(LIMIT, async {
        let node = ch.dht();
        let opts = PublishOptions::default()
            .republish_interval(Duration::from_millis(300))
            .seeding(SeedingOptions::default().reannounce_interval(Duration::from_millis(300)));
        let first = ch.publish(&node, &opts).await;
        // A one-chunk manifest fits inline.
        assert!(first.put_report().parts.is_empty());
        let seq1 = first.sequence();
        // The background re-put and re-announce run (and succeed) again and again...
        let refreshed = async {
            while first.republished() < 2 || first.reannounced() < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        timeout(Duration::from_secs(10), refreshed)
            .await
            .expect("no periodic re-put and re-announce within 10 s");
        // ...and the record they refresh is still the first version.
        let got = ch
            .dht()
            .get_manifest(&ch.identity.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got.sequence(), seq1);
        first.shutdown().await;
        // A new process (fresh DHT client) on the same store publishes a higher sequence,
        // even within the same millisecond.
        let node2 = ch.dht();
        let second = ch.publish(&node2, &opts).await;
        assert!(second.sequence() > seq1);
        let reader = ch.dht();
        let got = reader
            .get_manifest(&ch.identity.public_key_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(got.sequence(), second.sequence());
        second.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn typed_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, entry, manifest, _) = channel(dir.path(), MIB + 1);
    let out = dir.path().join("out");
    // No peer at all: the download gives up with the number of missing blobs.
    let sub = BlobStore::open(dir.path().join("sub")).unwrap();
    let opts = direct(vec![]).rounds(2);
    match timeout(
        LIMIT,
        Downloader::new(sub.clone(), None, opts).download(&manifest, None, &out),
    )
    .await
    .unwrap()
    {
        Err(DownloadError::Unavailable {
            missing,
            first,
            peers_tried,
        }) => {
            assert_eq!((missing, peers_tried), (2, 0));
            assert_eq!(first, entry.chunks[0].blob_id);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A peer that is not there counts as tried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    match Downloader::new(sub, None, direct(vec![closed]).rounds(1))
        .download(&manifest, None, &out)
        .await
    {
        Err(DownloadError::Unavailable { peers_tried: 1, .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // Two different files with one name cannot both be written.
    let id = Identity::from_seed(&[5; 32]);
    let mut other = entry.clone();
    other.chunks[0].blob_id = BlobId::of(b"x");
    let content = ManifestContent {
        collections: vec![
            Collection {
                title: "a".into(),
                items: vec![entry.clone()],
            },
            Collection {
                title: "b".into(),
                items: vec![other],
            },
        ],
        timestamp: 1,
    };
    // Such a manifest is invalid (PROTOCOL.md 2.1, folders): it cannot even be made.
    assert!(matches!(
        create_manifest(&id, 1, &content),
        Err(ManifestError::PathCollision { path, .. }) if path == entry.name
    ));

    // Publishing: nothing, or two files with one name.
    let store = BlobStore::open(dir.path().join("p")).unwrap();
    assert!(matches!(
        ingest_files(&[], &store).await,
        Err(NodeError::NoFiles)
    ));
    std::fs::create_dir(dir.path().join("x")).unwrap();
    let f1 = random_file(dir.path(), "same", 10);
    let f2 = random_file(&dir.path().join("x"), "same", 10);
    assert!(matches!(
        ingest_files(&[f1, f2], &store).await,
        Err(NodeError::DuplicateName { name }) if name == "same"
    ));
}

/// Peers are looked up per file, and a blob the running peers refuse is looked up when the
/// download gets stuck: a first holder lacking the last blob, and a second one known only
/// through the DHT entry of that blob, together serve the whole file with two lookups.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blob_no_running_peer_has_is_looked_up_when_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, entry, manifest, file) = channel(dir.path(), 4 * MIB + 10);
    let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
    assert_eq!(ids.len(), 5);
    let (head, last) = ids.split_at(4);
    let a_store = copy_store(&seed, &dir.path().join("a"));
    a_store.remove(&last[0]).unwrap();
    let b_store = BlobStore::open(dir.path().join("b")).unwrap();
    std::fs::copy(seed.path_of(&last[0]), b_store.path_of(&last[0])).unwrap();
    let net = common::testnet(8);
    timeout(LIMIT, async {
        let (a, b) = (serve(a_store).await, serve(b_store).await);
        let announcer = common::client(&net.bootstrap);
        for id in head {
            announcer
                .announce_blob(id, a.local_addr().port())
                .await
                .unwrap();
        }
        announcer
            .announce_blob(&last[0], b.local_addr().port())
            .await
            .unwrap();

        let sub = BlobStore::open(dir.path().join("sub")).unwrap();
        let opts = DownloadOptions::default().round_delay(Duration::from_millis(50));
        let report = Downloader::new(sub, Some(common::client(&net.bootstrap)), opts)
            .download(&manifest, None, &dir.path().join("out"))
            .await
            .unwrap();
        assert_eq!(sha(&report.files[0]), sha(&file));
        let used: Vec<(SocketAddr, usize)> = report.peers_used.clone();
        let mut expected = vec![(a.local_addr(), 4), (b.local_addr(), 1)];
        expected.sort();
        assert_eq!(used, expected);
        // One lookup for the file (its first blob: finds A), one for the blob A refused.
        assert_eq!(report.dht_lookups, 2, "{report:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_downloader_that_serves_tells_its_peers_so_others_find_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let seed = BlobStore::open(dir.path().join("seed")).unwrap();
    let first = ingest_file(&random_file(dir.path(), "one.bin", 2 * MIB + 5), &seed).unwrap();
    let second = ingest_file(&random_file(dir.path(), "two.bin", MIB / 2), &seed).unwrap();
    let content = ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![first.clone(), second.clone()],
        }],
        timestamp: 1,
    };
    let manifest = create_manifest(&Identity::from_seed(&[9; 32]), 1, &content).unwrap();
    let find_peers = |at: SocketAddr, id: BlobId| async move {
        let mut f = BlobFetcher::connect(at, &FetcherOptions::default())
            .await
            .unwrap();
        let found = f.find_peers(id).await.unwrap();
        f.close().await;
        found
    };
    timeout(LIMIT, async {
        let publisher = serve(seed.clone()).await;
        let p = publisher.local_addr();
        // A serves the store it downloads into, on its own port.
        let a_store = BlobStore::open(dir.path().join("a")).unwrap();
        let a_server = serve(a_store.clone()).await;
        let a = a_server.local_addr();
        let opts = direct(vec![p]).serve_port(Some(a.port()));
        Downloader::new(a_store, None, opts)
            .download(&manifest, None, &dir.path().join("a-out"))
            .await
            .unwrap();
        // The publisher heard of A for each file's first blob, and only for those.
        let a_text = a.to_string();
        assert_eq!(
            find_peers(p, first.chunks[0].blob_id).await,
            vec![a_text.clone()]
        );
        assert_eq!(find_peers(p, second.chunks[0].blob_id).await, vec![a_text]);
        assert!(find_peers(p, first.chunks[1].blob_id).await.is_empty());

        // The publisher loses its blobs: C, told only of the publisher and without a DHT,
        // gets everything from A, found through the publisher.
        for id in seed.list().unwrap() {
            seed.remove(&id).unwrap();
        }
        let c_store = BlobStore::open(dir.path().join("c")).unwrap();
        let report = Downloader::new(c_store, None, direct(vec![p]))
            .download(&manifest, None, &dir.path().join("c-out"))
            .await
            .unwrap();
        assert_eq!(report.peers_used, vec![(a, 4)], "{report:?}");
        assert_eq!(report.dht_lookups, 0);
        let got: Vec<Vec<u8>> = report.files.iter().map(|f| sha(f)).collect();
        let want = [dir.path().join("one.bin"), dir.path().join("two.bin")];
        assert_eq!(got, want.iter().map(|f| sha(f)).collect::<Vec<_>>());
    })
    .await
    .unwrap();
}
