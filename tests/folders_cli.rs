//! Folders through the command line (issue 11, acceptance 3; extension, PROTOCOL.md 2.1): a
//! tree of three levels and 200 files, empty ones included, goes ingest -> manifest create ->
//! dht put + serve -> download, and publish -> download, with identical bytes and paths. All on
//! 127.0.0.1.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::cli::{lines, run_within, terminate, BIN};
use common::tree;
use serde_json::Value;

// Generous: 188 blobs are announced and looked up on a loopback DHT, on a 2-core CI machine.
const LIMIT: Duration = Duration::from_secs(300);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 200 files under `root`: 20 at the top, the rest in folders three levels deep at most;
/// every 17th is empty, two cross a chunk boundary.
fn make_tree(root: &Path) {
    for i in 0..200usize {
        let dir = match i % 10 {
            0 | 1 => root.to_path_buf(),
            2..=4 => root.join(format!("a{}", i % 3)),
            5..=7 => root.join(format!("a{}", i % 3)).join(format!("b{}", i % 2)),
            _ => root
                .join(format!("a{}", i % 3))
                .join(format!("b{}", i % 2))
                .join("c ü"),
        };
        std::fs::create_dir_all(&dir).unwrap();
        let len = match i {
            _ if i % 17 == 0 => 0,
            50 | 150 => (1 << 20) + 3 * i,
            _ => 1 + i * 13,
        };
        let data: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        std::fs::write(dir.join(format!("f{i:03}.bin")), data).unwrap();
    }
}

/// A long-running command whose stdout is read line by line; stopped with SIGTERM.
struct Running {
    child: Child,
    out: Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        Running { child, out }
    }

    /// The first line starting with `prefix`, without it.
    fn line(&self, prefix: &str) -> String {
        loop {
            let l = self
                .out
                .recv_timeout(LIMIT)
                .unwrap_or_else(|e| panic!("no {prefix:?} line: {e}"));
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    fn stop(mut self) -> i32 {
        terminate(&mut self.child, LIMIT)
            .and_then(|s| s.code())
            .unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn download(public_key: &str, out: &Path, store: &Path, boot: &[String]) {
    let mut args = vec![
        "download",
        public_key,
        "--out",
        s(out),
        "--blobs",
        s(store),
        "--bootstrap",
    ];
    args.extend(boot.iter().map(String::as_str));
    let (code, _, err) = run_within(LIMIT, &args);
    assert_eq!(code, 0, "{err}");
    // One server holds every blob: a few lookups find it, not one per blob (188 here).
    let lookups: usize = err
        .lines()
        .find_map(|l| l.strip_prefix("done: "))
        .and_then(|l| l.split("; ").find(|p| p.ends_with("DHT lookup(s)")))
        .and_then(|p| p.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lookup count in {err}"));
    assert!(lookups <= 32, "{lookups} DHT lookups for one server");
}

#[test]
fn a_folder_tree_round_trips_through_ingest_manifest_put_serve_and_download() {
    let net = mainline::Testnet::builder(5).build().unwrap();
    let boot = net.bootstrap.clone();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    make_tree(&src);
    let identity = dir.path().join("id.json");
    let (code, public_key, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
    assert_eq!(code, 0, "{err}");
    let public_key = public_key.trim().to_owned();

    // ingest FOLDER: one entry per line, each with its folders in `path`.
    let store = dir.path().join("pub");
    let (code, entries, err) = run_within(LIMIT, &["ingest", s(&src), "--blobs", s(&store)]);
    assert_eq!(code, 0, "{err}");
    let parsed: Vec<Value> = entries
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 200);
    let deepest = parsed
        .iter()
        .filter_map(|e| e["path"].as_array())
        .map(Vec::len)
        .max();
    assert_eq!(deepest, Some(3));
    assert!(parsed.iter().any(|e| e["size"] == 0));
    let blobs: usize = parsed
        .iter()
        .map(|e| e["chunks"].as_array().unwrap().len())
        .sum();
    let entries_file = dir.path().join("entries.jsonl");
    std::fs::write(&entries_file, &entries).unwrap();

    // manifest create takes the whole list in one file.
    let (code, manifest, err) = run_within(
        LIMIT,
        &[
            "manifest",
            "create",
            "--identity",
            s(&identity),
            "--seq",
            "7",
            s(&entries_file),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let manifest_file = dir.path().join("manifest.json");
    std::fs::write(&manifest_file, &manifest).unwrap();
    let (code, out, err) = run_within(LIMIT, &["manifest", "verify", s(&manifest_file)]);
    assert_eq!((code, out.trim()), (0, "valid"), "{err}");

    // Publish it: a server that announces what its store holds, and the record.
    let mut serve_args = vec![
        "serve",
        "--blobs",
        s(&store),
        "--listen",
        "127.0.0.1:0",
        "--announce",
        "--bootstrap",
    ];
    serve_args.extend(boot.iter().map(String::as_str));
    let server = Running::start(&serve_args);
    let port = server
        .line("listening ")
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let announced = server.line("announced ");
    assert!(
        announced.starts_with(&format!("{blobs} blob")),
        "{announced}"
    );
    let mut put = vec![
        "dht",
        "put",
        s(&manifest_file),
        "--identity",
        s(&identity),
        "--blobs",
        s(&store),
        "--port",
        &port,
    ];
    for b in &boot {
        put.extend(["--bootstrap", b.as_str()]);
    }
    let (code, _, err) = run_within(LIMIT, &put);
    assert_eq!(code, 0, "{err}");

    let out = dir.path().join("out");
    download(&public_key, &out, &dir.path().join("sub"), &boot);
    assert_eq!(tree(&out), tree(&src));
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_published_folder_tree_downloads_identically() {
    let net = mainline::Testnet::builder(5).build().unwrap();
    let boot = net.bootstrap.clone();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    make_tree(&src);
    let identity = dir.path().join("id.json");
    let (code, _, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
    assert_eq!(code, 0, "{err}");
    let store = dir.path().join("pub");
    let mut args = vec![
        "publish",
        s(&src),
        "--identity",
        s(&identity),
        "--blobs",
        s(&store),
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
    ];
    args.extend(boot.iter().map(String::as_str));
    let publisher = Running::start(&args);
    let public_key = publisher.line("public key ");
    let published = publisher.line("published seq ");
    assert!(
        published.ends_with("(0 of 200 files unchanged)"),
        "{published}"
    );
    let out = dir.path().join("out");
    download(&public_key, &out, &dir.path().join("sub"), &boot);
    assert_eq!(tree(&out), tree(&src));
    assert_eq!(publisher.stop(), 0);
}
