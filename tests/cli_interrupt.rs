//! Ctrl-C and the files a user cares about, through the real binary on 127.0.0.1 (issue 15,
//! "Files a user cares about"): SIGINT exits 130 with nothing left behind when work is cut
//! short, 0 for long-running commands in their steady state; downloads never replace a
//! different file without `--overwrite`, and files get the umask's permissions.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::cli::{lines, run_within, wait_within, BIN};
use rand::Rng;

const LIMIT: Duration = Duration::from_secs(120);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// A child process, killed if the test ends early.
struct Proc {
    child: Child,
    out: Receiver<String>,
    err: Option<Receiver<String>>,
}

impl Proc {
    fn spawn(args: &[&str], capture_stderr: bool) -> Proc {
        Self::spawn_cmd(Command::new(BIN).args(args), capture_stderr)
    }

    fn spawn_cmd(cmd: &mut Command, capture_stderr: bool) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let err = child.stderr.take().map(lines);
        Proc { child, out, err }
    }

    /// The next stdout line that starts with `prefix` (earlier lines are skipped).
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => panic!("no stdout line starting with {prefix:?} in time"),
            }
        }
    }

    /// Wait for a stderr line containing `needle`.
    fn err_line(&self, needle: &str) -> String {
        let err = self.err.as_ref().expect("stderr not captured");
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match err.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("no stderr line with {needle:?} in time"),
            }
        }
    }

    fn exit_code(&mut self, limit: Duration) -> i32 {
        wait_within(&mut self.child, limit)
            .expect("did not exit in time")
            .code()
            .unwrap_or(-1)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Names in `dir` (recursively) that are temporary files: what an interrupted command must
/// not leave behind.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            found.extend(leftovers(&path));
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') && (name.contains("tmp") || name.ends_with(".part")) {
            found.push(path);
        }
    }
    found
}

/// Every file of a blob store is a blob whose content hashes to its name.
fn assert_store_sound(store: &Path) {
    for e in std::fs::read_dir(store).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let id = megatorrent::id::BlobId::from_hex(&name).expect("only blobs in the store");
        assert!(
            id.matches(&std::fs::read(&path).unwrap()),
            "{name} is damaged"
        );
    }
}

fn blob_count(store: &Path) -> usize {
    std::fs::read_dir(store)
        .map(|d| {
            d.filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                megatorrent::id::BlobId::from_hex(&name.to_string_lossy()).is_ok()
            })
            .count()
        })
        .unwrap_or(0)
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(path, &data).unwrap();
    data
}

#[test]
fn serve_and_dht_node_stop_on_sigint_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Proc::spawn(
        &["serve", "--blobs", s(dir.path()), "--listen", "127.0.0.1:0"],
        false,
    );
    serve.line("listening ");
    signal(&serve.child, "-INT");
    assert_eq!(serve.exit_code(Duration::from_secs(20)), 0);

    let mut node = Proc::spawn(&["dht", "node", "--listen", "127.0.0.1:0"], false);
    node.line("dht listening ");
    signal(&node.child, "-INT");
    assert_eq!(node.exit_code(Duration::from_secs(20)), 0);
}

#[test]
fn interrupted_ingest_exits_130_and_leaves_nothing() {
    // A FIFO as the input: the ingest is stuck mid-file for as long as the test wants.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("big.bin");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let store = dir.path().join("blobs");
    let mut ingest = Proc::spawn(&["ingest", s(&fifo), "--blobs", s(&store)], true);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..3 {
        writer.write_all(&chunk).unwrap();
    }
    // Three blobs get stored as the reader moves on.
    let deadline = Instant::now() + LIMIT;
    while blob_count(&store) < 2 {
        assert!(Instant::now() < deadline, "ingest stored nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&ingest.child, "-INT");
    // The reader sees the signal at its next read: keep feeding it (the flag is raised by
    // another thread, so a read may still pass just after the signal) until it exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Ok(Some(status)) = ingest.child.try_wait() {
            break status.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not stop after SIGINT"
        );
        let _ = writer.write_all(&chunk[..4096]);
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(writer);
    assert_eq!(code, 130);
    ingest.err_line("interrupted");
    assert_eq!(
        blob_count(&store),
        0,
        "blobs of an unfinished ingest are useless"
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// A loopback DHT and a `publish` of one random file of `len` bytes.
struct Channel {
    net: mainline::Testnet,
    dir: tempfile::TempDir,
    publisher: Proc,
    pubkey: String,
    data: Vec<u8>,
}

impl Channel {
    fn start(len: usize) -> Channel {
        let net = mainline::Testnet::builder(6).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("film.bin");
        let data = random_file(&file, len);
        let identity = dir.path().join("id.json");
        let (code, pubkey, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
        assert_eq!(code, 0, "{err}");
        let mut args = vec![
            "publish".to_string(),
            s(&file).into(),
            "--identity".into(),
            s(&identity).into(),
            "--blobs".into(),
            s(&dir.path().join("pub")).into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--bootstrap".into(),
        ];
        args.extend(net.bootstrap.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let publisher = Proc::spawn(&args, false);
        publisher.line("published seq ");
        Channel {
            net,
            dir,
            publisher,
            pubkey: pubkey.trim().to_string(),
            data,
        }
    }

    fn download_args(&self, out: &Path, store: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "download".into(),
            self.pubkey.clone(),
            "--out".into(),
            s(out).into(),
            "--blobs".into(),
            s(store).into(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a.push("--bootstrap".into());
        a.extend(self.net.bootstrap.iter().cloned());
        a
    }

    fn download(&self, out: &Path, store: &Path, extra: &[&str]) -> (i32, String, String) {
        let a = self.download_args(out, store, extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_within(LIMIT, &a)
    }
}

#[test]
fn interrupted_download_exits_130_and_the_next_run_resumes() {
    let channel = Channel::start(40 << 20);
    let out = channel.dir.path().join("out");
    let store = channel.dir.path().join("sub");
    let args = channel.download_args(&out, &store, &[]);
    let mut download = Proc::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), true);
    // Mid-transfer: some blobs are in, then the only seeder freezes.
    download.err_line("progress 10%");
    signal(&channel.publisher.child, "-STOP");
    signal(&download.child, "-INT");
    let code = download.exit_code(Duration::from_secs(30));
    signal(&channel.publisher.child, "-CONT");
    assert_eq!(code, 130);
    download.err_line("interrupted");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
    assert!(!out.join("film.bin").exists());
    assert_store_sound(&store);
    let kept = blob_count(&store);
    assert!(
        kept >= 4,
        "blobs fetched before the interrupt are kept ({kept})"
    );
    // The next run reuses them.
    let (code, _, err) = channel.download(&out, &store, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{kept} already here")), "{err}");
    assert_eq!(std::fs::read(out.join("film.bin")).unwrap(), channel.data);
}

#[test]
fn publish_stops_with_130_before_published_and_0_after() {
    // Before: SIGINT while the ingest runs (the file is large enough to take a while).
    let net = mainline::Testnet::builder(4).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    random_file(&file, 96 << 20);
    let identity = dir.path().join("id.json");
    let (code, _, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
    assert_eq!(code, 0, "{err}");
    let store = dir.path().join("pub");
    let mut args = vec![
        "publish",
        s(&file),
        "--identity",
        s(&identity),
        "--blobs",
        s(&store),
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
    ];
    args.extend(net.bootstrap.iter().map(String::as_str));
    let mut early = Proc::spawn(&args, false);
    early.line("public key ");
    signal(&early.child, "-INT");
    assert_eq!(early.exit_code(Duration::from_secs(30)), 130);
    assert_eq!(blob_count(&store), 0, "unpublished blobs are removed");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    // After `published seq`: a clean stop, status 0.
    let small = dir.path().join("small.bin");
    random_file(&small, 1000);
    args[1] = s(&small);
    let mut late = Proc::spawn(&args, false);
    late.line("published seq ");
    signal(&late.child, "-INT");
    assert_eq!(late.exit_code(Duration::from_secs(30)), 0);
}

#[test]
fn publish_checks_before_ingesting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.bin");
    random_file(&file, 10);
    let identity = dir.path().join("id.json");
    let (code, _, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
    assert_eq!(code, 0, "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let store = dir.path().join("pub");
    let base = |file: &str, id: &str, listen: &str| -> (i32, String, String) {
        run_within(
            LIMIT,
            &[
                "publish",
                file,
                "--identity",
                id,
                "--blobs",
                s(&store),
                "--listen",
                listen,
                "--bootstrap",
                "127.0.0.1:9",
            ],
        )
    };
    let (code, _, err) = base(s(&file), s(&identity), &taken_addr);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen on {taken_addr}")),
        "{err}"
    );
    let (code, _, err) = base(s(&file), "/nonexistent/id.json", "127.0.0.1:0");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/id.json"), "{err}");
    let (code, _, err) = base("/nonexistent/a.bin", s(&identity), "127.0.0.1:0");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/a.bin"), "{err}");
    // Nothing was ingested by any of them.
    assert_eq!(blob_count(&store), 0);
}

#[test]
fn download_keeps_different_files_unless_overwrite_and_follows_the_umask() {
    let channel = Channel::start((2 << 20) + 5);
    let out = channel.dir.path().join("out");
    let store = channel.dir.path().join("sub");
    std::fs::create_dir_all(&out).unwrap();
    let target = out.join("film.bin");
    std::fs::write(&target, b"my own notes").unwrap();
    let (code, _, err) = channel.download(&out, &store, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(s(&target)), "the error names the file: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"my own notes", "kept");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    // Identical content already there: fine.
    let same = channel.dir.path().join("same");
    std::fs::create_dir_all(&same).unwrap();
    std::fs::write(same.join("film.bin"), &channel.data).unwrap();
    let (code, _, err) = channel.download(&same, &store, &[]);
    assert_eq!(code, 0, "{err}");
    // --overwrite replaces it, with the umask's permissions (set in the child).
    let a = channel.download_args(&out, &store, &["--overwrite"]);
    let quoted: Vec<String> = a.iter().map(|x| format!("'{x}'")).collect();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("umask 027 && exec '{BIN}' {}", quoted.join(" ")))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&target).unwrap(), channel.data);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "0666 less umask 027, got {mode:o}");
}
