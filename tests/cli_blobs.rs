//! `megatorrent ingest` / `reassemble` / `keygen` through the built binary: output forms, exit
//! codes, and that a failed reassembly leaves no file behind.

use std::path::Path;
use std::process::{Command, Output};

fn megatorrent(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_megatorrent"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `reassemble entry.json --blobs store --out copy.bin` in `cwd`.
fn reassemble(cwd: &Path) -> Output {
    megatorrent(
        &[
            "reassemble",
            "entry.json",
            "--blobs",
            "store",
            "--out",
            "copy.bin",
        ],
        cwd,
    )
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn ingest_then_reassemble_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(2 * 1024 * 1024 + 17);
    std::fs::write(dir.path().join("movie.bin"), &data).unwrap();

    let out = megatorrent(&["ingest", "movie.bin", "--blobs", "store"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry["name"], "movie.bin");
    assert_eq!(entry["size"], data.len() as u64);
    assert_eq!(entry["chunks"].as_array().unwrap().len(), 3);
    std::fs::write(dir.path().join("entry.json"), &out.stdout).unwrap();

    let out = reassemble(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.path().join("copy.bin")).unwrap(), data);
}

#[test]
fn reassemble_with_a_missing_blob_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), pseudo_random(1_500_000)).unwrap();
    let out = megatorrent(&["ingest", "a.bin", "--blobs", "store"], dir.path());
    assert!(out.status.success());
    std::fs::write(dir.path().join("entry.json"), &out.stdout).unwrap();
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = entry["chunks"][1]["blobId"].as_str().unwrap();
    std::fs::remove_file(dir.path().join("store").join(second)).unwrap();

    let out = reassemble(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(second) && stderr.contains("missing"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!dir.path().join("copy.bin").exists());
}

#[test]
fn usage_errors_exit_2_and_keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(megatorrent(&["ingest"], dir.path()).status.code(), Some(2));
    assert_eq!(
        megatorrent(&["no-such-command"], dir.path()).status.code(),
        Some(2)
    );

    let out = megatorrent(&["keygen", "--out", "id.json"], dir.path());
    assert!(out.status.success());
    let public = String::from_utf8(out.stdout).unwrap();
    assert_eq!(public.trim().len(), 64);
    let before = std::fs::read(dir.path().join("id.json")).unwrap();
    let out = megatorrent(&["keygen", "--out", "id.json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(dir.path().join("id.json")).unwrap(), before);
}
