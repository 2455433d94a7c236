//! Acceptance 2: wire compatibility with a peer that shares no code with the crate
//! (tests/py/peer.py on the `cryptography` package), both ways, through the CLI. Also the CLI
//! forms of `serve` and `fetch`, including identity binding and SIGTERM. Skipped (with a
//! message; a failure under CI, see `common::skip`) when no python3 with `cryptography` is
//! installed.

mod common;

use common::cli::{lines, terminate, BIN};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PEER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/peer.py");
const LIMIT: Duration = Duration::from_secs(60);

/// Every interpreter here that has `cryptography` (pyenv's and Debian's may differ in version).
fn pythons() -> Vec<&'static str> {
    let found: Vec<&str> = ["python3", "/usr/bin/python3"]
        .into_iter()
        .filter(|py| {
            Command::new(py)
                .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .collect();
    if found.is_empty() {
        common::skip("no python3 with the `cryptography` package");
    }
    found
}

/// A child process killed on drop, so a failing test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd`, wait (bounded) for its `listening HOST:PORT` line, return the address.
fn start_listening(mut cmd: Command) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let running = Running(child);
    let line = stdout
        .recv_timeout(LIMIT)
        .expect("no `listening` line in time");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
    (running, addr)
}

/// Run to completion within the time limit.
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("command timed out")
        }
    }
}

/// Three blobs: a full-size one, a small one, and the vector blob.
fn make_blobs(dir: &Path) -> Vec<(BlobId, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let vector = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/blobs/a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9"
    ))
    .unwrap();
    let big: Vec<u8> = (0..1_048_592u32)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect();
    let small = b"a small blob".to_vec();
    [big, small, vector]
        .into_iter()
        .map(|b| {
            let id = BlobId::of(&b);
            std::fs::write(dir.join(id.to_hex()), &b).unwrap();
            (id, b)
        })
        .collect()
}

fn assert_fetched(dir: &Path, blobs: &[(BlobId, Vec<u8>)]) {
    for (id, bytes) in blobs {
        let got = std::fs::read(dir.join(id.to_hex())).unwrap();
        assert!(got == *bytes, "blob {id} differs");
    }
}

/// A `fetch` client: the Python peer on an interpreter, or the CLI.
#[derive(Clone, Copy)]
enum Client<'a> {
    Python(&'a str),
    Cli,
}

impl Client<'_> {
    /// Run `fetch ADDR ID... --out DIR` (Python) or `fetch ADDR ID... --blobs DIR` (CLI).
    fn fetch(self, addr: &str, ids: &[String], dir: &Path) -> Output {
        let (mut cmd, dir_flag) = match self {
            Client::Python(py) => {
                let mut cmd = Command::new(py);
                cmd.arg(PEER_PY);
                (cmd, "--out")
            }
            Client::Cli => (Command::new(BIN), "--blobs"),
        };
        run(cmd.args(["fetch", addr]).args(ids).arg(dir_flag).arg(dir))
    }

    /// Fetch every blob of `blobs` into `dir` and check each; `py` names the interpreter in
    /// a failure.
    fn fetch_all(self, addr: &str, blobs: &[(BlobId, Vec<u8>)], dir: &Path, py: &str) {
        let ids: Vec<String> = blobs.iter().map(|(id, _)| id.to_hex()).collect();
        let out = self.fetch(addr, &ids, dir);
        assert!(
            out.status.success(),
            "{py}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_fetched(dir, blobs);
    }
}

fn serve_cmd(blobs: &Path, identity: Option<&Path>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--blobs"])
        .arg(blobs)
        .args(["--listen", "127.0.0.1:0"]);
    if let Some(id) = identity {
        cmd.arg("--identity").arg(id);
    }
    cmd
}

#[test]
fn python_fetches_from_megatorrent_serve() {
    for py in pythons() {
        let tmp = tempfile::tempdir().unwrap();
        let src: PathBuf = tmp.path().join("src");
        let blobs = make_blobs(&src);
        let (mut server, addr) = start_listening(serve_cmd(&src, None));
        let out_dir = tmp.path().join("out");
        Client::Python(py).fetch_all(&addr, &blobs, &out_dir, py);

        // A missing blob is answered with ERROR `Not Found`, which the Python peer reports.
        let missing = BlobId::of(b"missing").to_hex();
        let out = Client::Python(py).fetch(&addr, &[missing], &out_dir);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("Not Found"));

        // SIGTERM: exit 0.
        let status = terminate(&mut server.0, Duration::from_secs(15));
        assert!(status.expect("process did not exit in time").success());
    }
}

#[test]
fn megatorrent_fetch_from_python_serve() {
    for py in pythons() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let blobs = make_blobs(&src);
        let mut cmd = Command::new(py);
        cmd.arg(PEER_PY).arg("serve").arg("--blobs").arg(&src);
        let (_server, addr) = start_listening(cmd);
        let out_dir = tmp.path().join("out");
        Client::Cli.fetch_all(&addr, &blobs, &out_dir, py);

        let missing = BlobId::of(b"missing").to_hex();
        let out = Client::Cli.fetch(&addr, std::slice::from_ref(&missing), &out_dir);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not found on the peer"), "{err}");
        assert!(!out_dir.join(&missing).exists());
    }
}

#[test]
fn cli_fetch_with_expected_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let blobs = make_blobs(&src);
    let id_file = tmp.path().join("server.id");
    let identity = Identity::generate();
    identity.save(&id_file).unwrap();
    let (_server, addr) = start_listening(serve_cmd(&src, Some(&id_file)));
    let out_dir = tmp.path().join("out");
    let id = blobs[1].0.to_hex();

    let out = run(Command::new(BIN)
        .args(["fetch", &addr, &id, "--blobs"])
        .arg(&out_dir)
        .args(["--expect-identity", &identity.public_key_hex()]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_fetched(&out_dir, &blobs[1..2]);

    let other = Identity::generate().public_key_hex();
    let out = run(Command::new(BIN)
        .args(["fetch", &addr, &id, "--blobs"])
        .arg(tmp.path().join("out2"))
        .args(["--expect-identity", &other]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the expected"), "{err}");

    // Usage errors exit 2.
    let out = run(Command::new(BIN).args(["fetch", &addr, "../x", "--blobs", "d"]));
    assert_eq!(out.status.code(), Some(2));
}
