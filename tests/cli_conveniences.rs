//! Conveniences of the command line (issue 15): read keys out of the process list, either-case
//! hex, `--json` for scripts, completions and the man page. Everything on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{lines, run_within, terminate, BIN};
use megatorrent::identity::Identity;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every stdout line as JSON (each must parse).
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn read_keys_from_keygen_file_and_environment_in_either_case() {
    let dir = tempfile::tempdir().unwrap();
    let (code, key, err) = run_within(LIMIT, &["keygen", "--read-key"]);
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_string();
    assert_eq!(key.len(), 64);
    assert!(key
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // Into a file (mode 0600), never over an existing one.
    let key_file = dir.path().join("channel.key");
    let (code, _, err) = run_within(LIMIT, &["keygen", "--read-key", "--out", s(&key_file)]);
    assert_eq!(code, 0, "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, _, err) = run_within(LIMIT, &["keygen", "--read-key", "--out", s(&key_file)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let file_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();

    // A private manifest made with the key from the environment, in upper case ...
    let identity = dir.path().join("id.json");
    Identity::from_seed(&[3; 32]).save(&identity).unwrap();
    let entry = dir.path().join("entry.json");
    let data = dir.path().join("a.txt");
    std::fs::write(&data, b"hello").unwrap();
    let (code, entry_json, err) = run_within(
        LIMIT,
        &["ingest", s(&data), "--blobs", s(&dir.path().join("b"))],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(&entry, entry_json).unwrap();
    let out = Command::new(BIN)
        .args([
            "manifest",
            "create",
            "--identity",
            s(&identity),
            "--seq",
            "1",
            s(&entry),
        ])
        .env("MEGATORRENT_READ_KEY", file_key.to_uppercase())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = dir.path().join("m.json");
    std::fs::write(&manifest, &out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ciphertext"));
    // ... opens with the key from the file, and not with another one.
    let (code, content, err) = run_within(
        LIMIT,
        &[
            "manifest",
            "decrypt",
            s(&manifest),
            "--read-key-file",
            s(&key_file),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(content.contains("a.txt"), "{content}");
    let (code, _, err) = run_within(
        LIMIT,
        &["manifest", "decrypt", s(&manifest), "--read-key", &key],
    );
    assert_eq!(code, 1, "a different key: {err}");
    // No key at all: the error names the three ways.
    let out = Command::new(BIN)
        .args(["manifest", "decrypt", s(&manifest)])
        .env_remove("MEGATORRENT_READ_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--read-key-file") && err.contains("MEGATORRENT_READ_KEY"),
        "{err}"
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run_within(LIMIT, &["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("megatorrent") && out.contains("download"),
            "{shell}"
        );
    }
    let (code, out, err) = run_within(LIMIT, &["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH megatorrent"), "{out}");
    let (code, _, _) = run_within(LIMIT, &["completions", "cmd.exe"]);
    assert_eq!(code, 2);
}

#[test]
fn json_output_for_scripts() {
    let net = mainline::Testnet::builder(6).build().unwrap();
    let boot: Vec<&str> = net.bootstrap.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let data: Vec<u8> = (0..(1 << 20) + 77).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let identity = dir.path().join("id.json");
    let id = Identity::from_seed(&[9; 32]);
    id.save(&identity).unwrap();
    let pubkey = id.public_key_hex();

    let (pub_store, sub_store) = (dir.path().join("pub"), dir.path().join("sub"));
    let mut args = vec![
        "publish",
        s(&file),
        "--identity",
        s(&identity),
        "--blobs",
        s(&pub_store),
        "--listen",
        "127.0.0.1:0",
        "--json",
        "--bootstrap",
    ];
    args.extend(&boot);
    let mut publisher = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(publisher.stdout.take().unwrap());
    let mut events = Vec::new();
    loop {
        let line = out
            .recv_timeout(LIMIT)
            .expect("publish --json printed nothing");
        let v: Value = serde_json::from_str(&line).unwrap();
        let done = v["event"] == "published";
        events.push(v);
        if done {
            break;
        }
    }
    assert_eq!(events[0]["event"], "public_key");
    assert_eq!(events[0]["public_key"], pubkey.as_str());
    let published = events.last().unwrap();
    let sequence = published["sequence"].as_u64().unwrap();
    assert_eq!(published["files"], 1);

    // `download --json`: events, then a summary; the public key in upper case.
    let out_dir = dir.path().join("out");
    let upper = pubkey.to_uppercase();
    let mut a = vec![
        "download",
        upper.as_str(),
        "--out",
        s(&out_dir),
        "--blobs",
        s(&sub_store),
        "--json",
        "--bootstrap",
    ];
    a.extend(&boot);
    let (code, stdout, err) = run_within(LIMIT, &a);
    assert_eq!(code, 0, "{err}");
    let events = json_lines(&stdout);
    assert_eq!(events[0]["event"], "manifest");
    assert_eq!(events[0]["sequence"].as_u64(), Some(sequence));
    assert!(events.iter().any(|e| e["event"] == "blob"));
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["bytes"].as_u64(), Some(data.len() as u64));
    assert_eq!(done["blobs_fetched"], 2);
    assert_eq!(std::fs::read(out_dir.join("f.bin")).unwrap(), data);

    // `dht get --json`: one object holding the manifest as JSON.
    let mut a = vec!["dht", "get", &pubkey, "--json", "--bootstrap", boot[0]];
    let (code, stdout, err) = run_within(LIMIT, &a);
    assert_eq!(code, 0, "{err}");
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["sequence"].as_u64(), Some(sequence));
    assert_eq!(got[0]["manifest"]["publicKey"], pubkey.as_str());

    // `dht peers --json`: the publisher's server, then a summary.
    let content: Value = got[0]["manifest"].clone();
    let blob = content["collections"][0]["items"][0]["chunks"][0]["blobId"]
        .as_str()
        .unwrap_or_else(|| panic!("no blob id in {content}"))
        .to_string();
    a = vec!["dht", "peers", &blob, "--json", "--bootstrap", boot[0]];
    let (code, stdout, err) = run_within(LIMIT, &a);
    assert_eq!(code, 0, "{err}");
    let peers = json_lines(&stdout);
    assert!(peers.iter().any(|p| p["event"] == "peer"), "{stdout}");
    assert_eq!(peers.last().unwrap()["event"], "done");

    assert_eq!(
        terminate(&mut publisher, Duration::from_secs(20)).and_then(|s| s.code()),
        Some(0)
    );
}
