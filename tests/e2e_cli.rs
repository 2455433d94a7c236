//! `megatorrent demo`, `publish` and `download` as processes, on 127.0.0.1 only.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::cli::{lines, run_within, terminate, BIN};
use rand::Rng;

const LIMIT: Duration = Duration::from_secs(180);

/// Run the CLI with a time limit; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_within(LIMIT, args)
}

#[test]
fn demo_small() {
    let (code, out, err) = run(&["demo", "--size", "8388608", "--nodes", "8", "--peers", "2"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for needle in [
        "[1/7]",
        "[7/7]",
        "summary",
        "8.0 MiB (8388608 bytes)",
        "throughput",
        "peers used",
        "result verified identical: sha256 ",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    // Not a terminal here: plain progress lines, no bar.
    assert!(err.contains("progress 100%"), "{err}");
}

#[test]
fn demo_refuses_bad_arguments() {
    let (code, _, err) = run(&["demo", "--peers", "0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["demo", "--size", "lots"]);
    assert_eq!(code, 2, "{err}");
}

/// A `publish` process, stopped with SIGTERM at the end of the test.
struct Publisher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Publisher {
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(LIMIT)
            .expect("publish printed nothing in time")
    }

    /// SIGTERM, then the exit code.
    fn stop(mut self) -> i32 {
        terminate(&mut self.child, Duration::from_secs(20))
            .and_then(|s| s.code())
            .unwrap_or(-1)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(args: &[&str]) -> Publisher {
    let mut child = Command::new(BIN)
        .arg("publish")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines(child.stdout.take().unwrap());
    Publisher { child, lines }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn private_channel_publish_and_download_processes() {
    let net = mainline::Testnet::builder(8).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 3 * (1 << 20) + 99];
    rand::rng().fill_bytes(&mut data);
    let file = dir.path().join("movie.mkv");
    std::fs::write(&file, &data).unwrap();
    let identity = dir.path().join("id.json");
    let (code, pubkey, err) = run(&["keygen", "--out", s(&identity)]);
    assert_eq!(code, 0, "{err}");
    let pubkey = pubkey.trim().to_string();
    let read_key = "ab".repeat(32);
    let boot: Vec<&str> = net.bootstrap.iter().map(String::as_str).collect();

    let pub_blobs = dir.path().join("pub");
    let mut args = vec![
        s(&file),
        "--identity",
        s(&identity),
        "--blobs",
        s(&pub_blobs),
        "--listen",
        "127.0.0.1:0",
        "--read-key",
        &read_key,
        "--salt",
        "films",
        "--bootstrap",
    ];
    args.extend(&boot);
    let publisher = publish(&args);
    assert_eq!(publisher.next_line(), format!("public key {pubkey}"));
    assert!(publisher.next_line().starts_with("listening 127.0.0.1:"));
    let published = publisher.next_line();
    let seq: u64 = published
        .strip_prefix("published seq ")
        .unwrap_or_else(|| panic!("unexpected line {published:?}"))
        .parse()
        .unwrap();
    assert!(seq > 1_600_000_000_000, "sequence is a time in ms: {seq}");

    let blobs = dir.path().join("sub");
    let out = dir.path().join("out");
    let download = |extra: &[&str], out: &Path| {
        let mut a = vec![
            "download",
            &pubkey,
            "--out",
            s(out),
            "--blobs",
            s(&blobs),
            "--salt",
            "films",
        ];
        a.extend(extra);
        a.push("--bootstrap");
        a.extend(&boot);
        run(&a)
    };
    // Without the read key: exit 1 with a clear reason, nothing written.
    let (code, _, err) = download(&[], &out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: download failed: the channel is private: its read key is needed"),
        "{err}"
    );
    assert!(!out.join("movie.mkv").exists());
    // A malformed key is a usage error of its own.
    let (code, _, err) = download(&["--read-key", "xyz"], &out);
    assert_eq!(code, 1);
    assert!(err.contains("bad --read-key"), "{err}");
    // With it: the file, verified.
    let (code, stdout, err) = download(&["--read-key", &read_key], &out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.trim(), s(&out.join("movie.mkv")));
    assert_eq!(std::fs::read(out.join("movie.mkv")).unwrap(), data);
    assert!(err.contains("4 blob(s) fetched, 0 already here"), "{err}");
    // Again into another folder: everything is already in the blob store.
    let out2 = dir.path().join("out2");
    let (code, _, err) = download(&["--read-key", &read_key], &out2);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 blob(s) fetched, 4 already here"), "{err}");
    assert_eq!(std::fs::read(out2.join("movie.mkv")).unwrap(), data);

    assert_eq!(publisher.stop(), 0);
}
