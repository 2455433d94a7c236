//! Shared helpers for the integration tests: loopback testnets, signed manifests, a blob
//! server (`server`) and running the binary (`cli`).
#![allow(dead_code)]

use std::time::Duration;

#[cfg(feature = "cli")]
pub mod cli;
pub mod low_order;
pub mod server;

use megatorrent::dht::{DhtClient, DhtConfig};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, Chunk, Collection, FileEntry, ManifestContent, SignedManifest, BLOB_LEN,
    CHUNK_SIZE,
};

/// A test that cannot run for want of a dependency (a tool, a package, a folder): prints
/// `skipped: <reason>` locally, but fails when the environment variable `CI` is set (to anything
/// but `false` or `0`), where every dependency must be present and a skip would be a pass that
/// tested nothing.
pub fn skip(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "CI is set, so this test may not be skipped: {reason}");
    eprintln!("skipped: {reason}");
}

/// Every file under `dir`: `/`-separated relative path -> content.
pub fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(
        dir: &std::path::Path,
        prefix: &str,
        out: &mut std::collections::BTreeMap<String, Vec<u8>>,
    ) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().into_string().unwrap());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.insert(name, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

/// Bound for every network test.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A server-mode loopback testnet of `n` mainline nodes.
pub fn testnet(n: usize) -> mainline::Testnet {
    mainline::Testnet::builder(n).build().unwrap()
}

/// A client-mode node on 127.0.0.1 bootstrapped on `bootstrap`, with a short request time-out.
pub fn client(bootstrap: &[String]) -> DhtClient {
    let mut cfg = DhtConfig::local(bootstrap);
    cfg.request_timeout = Duration::from_millis(400);
    DhtClient::start(&cfg).unwrap()
}

/// Content with one file of `chunks` chunks (each chunk entry is ~240 bytes of JSON, so one
/// chunk fits inline and three do not).
pub fn content(chunks: usize) -> ManifestContent {
    let chunks: Vec<Chunk> = (0..chunks)
        .map(|i| Chunk {
            blob_id: BlobId::of(&i.to_le_bytes()),
            offset: 0,
            length: BLOB_LEN as u64,
            key: [(i % 251) as u8; 32],
            nonce: [7; 12],
            real_size: CHUNK_SIZE as u64,
        })
        .collect();
    let size = chunks.len() as u64 * CHUNK_SIZE as u64;
    ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![FileEntry {
                name: "f.bin".into(),
                path: Vec::new(),
                size,
                chunks,
            }],
        }],
        timestamp: 1_700_000_000_000,
    }
}

/// A valid signed plain manifest with `chunks` chunks.
pub fn manifest(identity: &Identity, seq: u64, chunks: usize) -> SignedManifest {
    create_manifest(identity, seq, &content(chunks)).unwrap()
}
