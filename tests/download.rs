//! The downloader's own contract (`megatorrent::download`), all on 127.0.0.1: exactly the
//! jobs given, destinations that already exist (identical: untouched and not fetched;
//! different: refused unless overwrite), files that follow the umask, no temporary file left.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use megatorrent::blob::{ingest_file, BlobStore};
use megatorrent::download::{DownloadError, DownloadOptions, Downloader, FileJob};
use megatorrent::manifest::FileEntry;
use megatorrent::peer::{BlobServer, ServerConfig, ServerHandle};
use rand::Rng;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(120);
const MIB: usize = 1 << 20;

/// A file of `len` random bytes, ingested into the seeder's store.
struct Seeded {
    dir: tempfile::TempDir,
    store: BlobStore,
    files: Vec<(PathBuf, FileEntry)>,
}

impl Seeded {
    fn new(sizes: &[usize]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("seed")).unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let mut data = vec![0u8; *len];
                rand::rng().fill_bytes(&mut data);
                let path = src.join(format!("f{i}.bin"));
                std::fs::write(&path, &data).unwrap();
                let entry = ingest_file(&path, &store).unwrap();
                (path, entry)
            })
            .collect();
        Self { dir, store, files }
    }

    async fn serve(&self) -> ServerHandle {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        BlobServer::bind(local, self.store.clone(), ServerConfig::default())
            .await
            .unwrap()
            .spawn()
            .unwrap()
    }

    fn sub_store(&self, name: &str) -> BlobStore {
        BlobStore::open(self.dir.path().join(name)).unwrap()
    }

    fn job(&self, i: usize, dest: PathBuf) -> FileJob {
        FileJob {
            entry: self.files[i].1.clone(),
            dest,
        }
    }
}

fn direct(peers: Vec<SocketAddr>) -> DownloadOptions {
    DownloadOptions::default()
        .peers(peers)
        .rounds(1)
        .round_delay(Duration::from_millis(50))
}

/// Every name in `dir`, recursively, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_exactly_the_jobs_given_into_their_folders() {
    let seed = Seeded::new(&[3 * MIB + 5, 1000, 2 * MIB]);
    let server = seed.serve().await;
    let sub = seed.sub_store("sub");
    let out = seed.dir.path().join("out");
    let jobs = vec![
        seed.job(0, out.join("a/b/first.bin")),
        seed.job(2, out.join("third.bin")),
        // The same job twice is done once.
        seed.job(2, out.join("third.bin")),
    ];
    let report = timeout(
        LIMIT,
        Downloader::new(sub.clone(), None, direct(vec![server.local_addr()])).download_files(jobs),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        report.files,
        vec![out.join("a/b/first.bin"), out.join("third.bin")]
    );
    assert_eq!((report.blobs_fetched, report.blobs_present), (6, 0));
    assert_eq!(report.blobs_total, 6);
    assert_eq!(report.dht_lookups, 0, "no DHT given");
    assert_eq!(sub.list().unwrap().len(), 6, "only the jobs' blobs");
    assert_eq!(
        std::fs::read(out.join("a/b/first.bin")).unwrap(),
        std::fs::read(&seed.files[0].0).unwrap()
    );
    assert_eq!(tree(&out), ["a", "a/b", "a/b/first.bin", "third.bin"]);

    // A downloaded file is an ordinary file: its mode follows the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let probe = out.join("probe");
        std::fs::write(&probe, b"").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out.join("third.bin")), mode(&probe));
    }

    // Two different files for one destination are refused before anything happens.
    let clash = vec![seed.job(0, out.join("x")), seed.job(1, out.join("x"))];
    assert!(matches!(
        Downloader::new(sub, None, direct(vec![]))
            .download_files(clash)
            .await,
        Err(DownloadError::ConflictingJobs { path }) if path == out.join("x")
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_destinations_identical_kept_different_refused_unless_overwrite() {
    // 2 MiB + 7: two full chunks and a short one.
    let seed = Seeded::new(&[2 * MIB + 7]);
    let out = seed.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dest = out.join("f.bin");
    std::fs::copy(&seed.files[0].0, &dest).unwrap();
    #[cfg(unix)]
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());

    // Identical and its short chunk's blob in the store: nothing fetched (there is no peer),
    // the file untouched, and its full chunks remade into the store.
    let sub = seed.sub_store("sub");
    let last = seed.files[0].1.chunks[2].blob_id;
    sub.put(&last, &seed.store.get(&last).unwrap().unwrap())
        .unwrap();
    #[cfg(unix)]
    let before = inode(&dest);
    let report = Downloader::new(sub.clone(), None, direct(vec![]))
        .download_files(vec![seed.job(0, dest.clone())])
        .await
        .unwrap();
    assert_eq!(report.files_unchanged, vec![dest.clone()]);
    assert_eq!((report.blobs_fetched, report.blobs_present), (0, 3));
    assert_eq!(sub.list().unwrap().len(), 3);
    #[cfg(unix)]
    assert_eq!(inode(&dest), before);

    // Identical but the short chunk's blob is missing: only that blob is fetched, and the
    // file is still left untouched.
    let server = seed.serve().await;
    sub.remove(&last).unwrap();
    let report = timeout(
        LIMIT,
        Downloader::new(sub.clone(), None, direct(vec![server.local_addr()]))
            .download_files(vec![seed.job(0, dest.clone())]),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((report.blobs_fetched, report.blobs_present), (1, 2));
    assert_eq!(report.files_unchanged, vec![dest.clone()]);
    #[cfg(unix)]
    assert_eq!(inode(&dest), before);

    // Different content: refused before anything is fetched; the user's file is kept.
    std::fs::write(&dest, b"the user's own file").unwrap();
    let fresh = seed.sub_store("fresh");
    match Downloader::new(fresh.clone(), None, direct(vec![server.local_addr()]))
        .download_files(vec![seed.job(0, dest.clone())])
        .await
    {
        Err(DownloadError::DestinationExists { path }) => assert_eq!(path, dest),
        other => panic!("expected DestinationExists, got {other:?}"),
    }
    assert!(fresh.list().unwrap().is_empty());
    assert_eq!(std::fs::read(&dest).unwrap(), b"the user's own file");

    // Same size, one byte changed in a full chunk: different too.
    let mut data = std::fs::read(&seed.files[0].0).unwrap();
    data[10] ^= 1;
    std::fs::write(&dest, &data).unwrap();
    assert!(matches!(
        Downloader::new(fresh.clone(), None, direct(vec![server.local_addr()]))
            .download_files(vec![seed.job(0, dest.clone())])
            .await,
        Err(DownloadError::DestinationExists { .. })
    ));

    // With overwrite it is replaced.
    let report = timeout(
        LIMIT,
        Downloader::new(
            fresh,
            None,
            direct(vec![server.local_addr()]).overwrite(true),
        )
        .download_files(vec![seed.job(0, dest.clone())]),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(report.files_unchanged.is_empty());
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&seed.files[0].0).unwrap()
    );
    assert_eq!(tree(&out), ["f.bin"], "no temporary file left");
    server.shutdown().await;
}
