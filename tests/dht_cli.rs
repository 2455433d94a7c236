//! `megatorrent dht ...` end to end on a loopback network of `dht node` processes.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::{lines, run_within, terminate, BIN};
use megatorrent::identity::Identity;
use megatorrent::manifest::{create_private_manifest, ReadKey};

/// A `dht node` child process, terminated (SIGTERM) when dropped.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    fn start(bootstrap: Option<&str>) -> Node {
        let mut args = vec!["dht", "node", "--listen", "127.0.0.1:0"];
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap", b]);
        }
        Node::spawn(&args, "dht listening ")
    }

    /// Start a long-running command whose first stdout line is `<prefix>ADDR`.
    fn spawn(args: &[&str], prefix: &str) -> Node {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let first = lines(child.stdout.take().unwrap()).recv_timeout(Duration::from_secs(30));
        let Ok(line) = first else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} printed no first line within 30 s");
        };
        let addr = line
            .trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"));
        Node { child, addr }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The node must stop cleanly on SIGTERM; killed if it does not.
        if terminate(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run the CLI with a time limit; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_within(Duration::from_secs(30), args)
}

#[test]
fn cli_put_get_announce_peers() {
    let first = Node::start(None);
    let nodes: Vec<Node> = (0..4).map(|_| Node::start(Some(&first.addr))).collect();
    let b = first.addr.as_str();
    let b2 = nodes[2].addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let id_file = dir.path().join("id.json");
    let id = Identity::from_seed(&[21; 32]);
    id.save(&id_file).unwrap();
    let id_path = id_file.to_str().unwrap();
    let pubkey = id.public_key_hex();
    // `dht put FILE --identity ID REST...` and `dht get PUBKEY REST... --bootstrap B2`.
    let put = |file: &Path, rest: &[&str]| {
        let mut args = vec!["dht", "put", file.to_str().unwrap(), "--identity", id_path];
        args.extend(rest);
        run(&args)
    };
    let get = |rest: &[&str]| {
        let mut args = vec!["dht", "get", &pubkey];
        args.extend(rest);
        args.extend(["--bootstrap", b2]);
        run(&args)
    };

    // Inline manifest, with the trailing newline files usually have.
    let m = common::manifest(&id, 12, 1);
    let m_file = dir.path().join("m.json");
    let mut text = m.as_bytes().to_vec();
    text.push(b'\n');
    std::fs::write(&m_file, &text).unwrap();
    let (code, out, err) = put(&m_file, &["--bootstrap", b]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published sequence 12 (inline)"), "{out}");

    let (code, out, err) = get(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end().as_bytes(), m.as_bytes());

    // Salted: nothing there yet -> exit 1 with the reason.
    let (code, _, err) = get(&["--salt", "videos"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("no record found"),
        "{err}"
    );

    // A manifest too large for a record, without --blobs/--port: says what is missing.
    let big = common::manifest(&id, 13, 5);
    let big_file = dir.path().join("big.json");
    std::fs::write(&big_file, big.as_bytes()).unwrap();
    let (code, _, err) = put(&big_file, &["--bootstrap", b]);
    assert_eq!(code, 1);
    assert!(err.contains("does not fit in one DHT record"), "{err}");
    assert!(
        err.contains("--blobs DIR") && err.contains("--port PORT"),
        "{err}"
    );
    // With them, the parts land in the folder that `serve` serves, announced at its port.
    let blobs = dir.path().join("blobs");
    let blobs_path = blobs.to_str().unwrap();
    let serve = Node::spawn(
        &["serve", "--blobs", blobs_path, "--listen", "127.0.0.1:0"],
        "listening ",
    );
    let serve_port = serve.addr.rsplit(':').next().unwrap();
    let (code, out, err) = put(
        &big_file,
        &[
            "--bootstrap",
            b,
            "--blobs",
            blobs_path,
            "--port",
            serve_port,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pointer to 1 parts"), "{out}");
    let part = std::fs::read_dir(&blobs).unwrap().next().unwrap().unwrap();
    let part_id = part.file_name().into_string().unwrap();
    let (code, out, _) = run(&["dht", "peers", &part_id, "--bootstrap", b2]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{}\n", serve.addr));
    // A reader gets the whole manifest: record, then the part over the transport.
    let (code, out, err) = get(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end().as_bytes(), big.as_bytes());
    drop(serve);

    // A private sub-channel: printed decrypted with --read-key.
    let read_key = ReadKey::from_bytes([22; 32]);
    let private = create_private_manifest(&id, 30, &common::content(0), &read_key).unwrap();
    let private_file = dir.path().join("private.json");
    std::fs::write(&private_file, private.as_bytes()).unwrap();
    let (code, _, err) = put(&private_file, &["--salt", "vip", "--bootstrap", b]);
    assert_eq!(code, 0, "{err}");
    let key_hex = hex::encode([22u8; 32]);
    let (code, out, err) = get(&["--salt", "vip", "--read-key", &key_hex]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), private.decrypted_json(&read_key).unwrap());
    let wrong = hex::encode([23u8; 32]);
    let (code, _, err) = get(&["--salt", "vip", "--read-key", &wrong]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot decrypt"), "{err}");

    // Announce and peers.
    let blob = megatorrent::id::BlobId::of(b"cli blob").to_hex();
    let (code, _, err) = run(&["dht", "announce", &blob, "6000", "--bootstrap", b]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["dht", "announce", &blob, "6001", "--bootstrap", b2]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["dht", "peers", &blob, "--bootstrap", b2]);
    assert_eq!(code, 0);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["127.0.0.1:6000", "127.0.0.1:6001"]);

    // Bad input: typed one-line errors.
    let (code, _, err) = run(&["dht", "peers", "xyz", "--bootstrap", b]);
    assert_eq!(code, 1);
    assert!(err.contains("bad BLOBID"), "{err}");
    let (code, _, _) = run(&["dht", "peers", &blob]);
    assert_eq!(code, 2, "--bootstrap is required");
}
