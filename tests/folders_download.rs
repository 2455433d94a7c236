//! Downloads recreate a manifest's folders under the output folder and never write outside it
//! (extension, PROTOCOL.md 2.1). All on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use megatorrent::blob::{ingest_reader, BlobError, BlobStore};
use megatorrent::identity::Identity;
use megatorrent::manifest::{create_manifest, Collection, FileEntry, ManifestContent};
use megatorrent::node::{DownloadOptions, Downloader, NodeError};
use megatorrent::peer::{BlobServer, ServerConfig, ServerHandle};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(60);

async fn serve(store: BlobStore) -> ServerHandle {
    BlobServer::bind(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        store,
        ServerConfig::default(),
    )
    .await
    .unwrap()
    .spawn()
    .unwrap()
}

fn direct(peers: Vec<SocketAddr>) -> DownloadOptions {
    DownloadOptions {
        peers,
        reply_timeout: Duration::from_secs(10),
        round_delay: Duration::from_millis(50),
        ..DownloadOptions::default()
    }
}

/// Ingest `data` as `name` under the folders `path`.
fn file(store: &BlobStore, path: &[&str], name: &str, data: &[u8]) -> FileEntry {
    let mut e = ingest_reader(data, name, store).unwrap();
    e.path = path.iter().map(|s| s.to_string()).collect();
    e
}

fn manifest(items: Vec<FileEntry>) -> megatorrent::manifest::SignedManifest {
    let content = ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items,
        }],
        timestamp: 1,
    };
    create_manifest(&Identity::from_seed(&[3; 32]), 1, &content).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_are_recreated_under_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let seed = BlobStore::open(dir.path().join("seed")).unwrap();
    let big: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i % 251) as u8).collect();
    let items = vec![
        file(&seed, &["top"], "a.txt", b"alpha"),
        file(&seed, &["top", "mid", "deep"], "big.bin", &big),
        file(&seed, &["top", "mid"], "empty", b""),
        file(&seed, &[], "root.txt", b"root"),
    ];
    let m = manifest(items);
    let server = serve(seed).await;
    let out = dir.path().join("out");
    let sub = BlobStore::open(dir.path().join("sub")).unwrap();
    let report = timeout(
        LIMIT,
        Downloader::new(sub, None, direct(vec![server.local_addr()])).download(&m, None, &out),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        report.files,
        vec![
            out.join("top/a.txt"),
            out.join("top/mid/deep/big.bin"),
            out.join("top/mid/empty"),
            out.join("root.txt"),
        ]
    );
    assert_eq!(std::fs::read(out.join("top/a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(out.join("top/mid/deep/big.bin")).unwrap(),
        big
    );
    assert_eq!(std::fs::read(out.join("top/mid/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(out.join("root.txt")).unwrap(), b"root");
    // No temporary file is left anywhere in the tree.
    assert_eq!(count_files(&out), 4);
    server.shutdown().await;
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_planted_in_the_output_folder_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = BlobStore::open(dir.path().join("seed")).unwrap();
    let m = manifest(vec![
        file(&seed, &["docs"], "x.txt", b"secret plan"),
        file(&seed, &[], "y.txt", b"fine"),
    ]);
    let server = serve(seed).await;
    let out = dir.path().join("out");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("docs")).unwrap();
    let sub = BlobStore::open(dir.path().join("sub")).unwrap();
    let err = timeout(
        LIMIT,
        Downloader::new(sub, None, direct(vec![server.local_addr()])).download(&m, None, &out),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(
            &err,
            NodeError::Blob(BlobError::NotAFolder { path, found: "a symbolic link" })
                if path == &out.join("docs")
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    server.shutdown().await;
}
