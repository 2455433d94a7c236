//! `megatorrent subscribe`, `publish` (incremental, folders) and `ls` as processes, on
//! 127.0.0.1 only (issue #12 acceptance 1-4).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cli::{lines, run_within, terminate, BIN};
use common::tree;
use rand::Rng;

const LIMIT: Duration = Duration::from_secs(180);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rng().fill_bytes(&mut v);
    v
}

/// A long-running CLI process whose stdout and stderr lines are read as they come.
struct Proc {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    err_seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Proc {
            child,
            out,
            err,
            err_seen: Vec::new(),
        }
    }

    /// The next stdout line satisfying `pred` (others are skipped), within LIMIT.
    fn wait_out(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            self.drain_err();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(e) => panic!("no {what} ({e:?}); stderr:\n{}", self.err_seen.join("\n")),
            }
        }
    }

    /// The next stderr line containing `needle`, within LIMIT.
    fn wait_err(&mut self, needle: &str) -> String {
        if let Some(l) = self.err_seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => {
                    self.err_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no {needle:?} ({e:?}); stderr:\n{}",
                    self.err_seen.join("\n")
                ),
            }
        }
    }

    fn drain_err(&mut self) {
        while let Ok(l) = self.err.try_recv() {
            self.err_seen.push(l);
        }
    }

    /// SIGTERM; the exit code.
    fn stop(mut self) -> i32 {
        terminate(&mut self.child, Duration::from_secs(20))
            .and_then(|s| s.code())
            .unwrap_or(-1)
    }

    /// SIGKILL.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Net {
    _net: mainline::Testnet,
    boot: Vec<String>,
    dir: tempfile::TempDir,
    identity: PathBuf,
    pubkey: String,
}

impl Net {
    fn new() -> Net {
        let net = common::testnet(8);
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("id.json");
        let (code, pubkey, err) = run_within(LIMIT, &["keygen", "--out", s(&identity)]);
        assert_eq!(code, 0, "{err}");
        Net {
            boot: net.bootstrap.clone(),
            _net: net,
            pubkey: pubkey.trim().to_owned(),
            identity,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `publish FOLDER` with a fixed blob folder (its state inside); waits for the
    /// `published seq N (K of M files unchanged)` line and returns (process, N, K, M).
    fn publish(&self, folder: &Path) -> (Proc, u64, usize, usize) {
        let blobs = self.path("pub-blobs");
        let mut args = vec![
            "publish",
            s(folder),
            "--identity",
            s(&self.identity),
            "--blobs",
            s(&blobs),
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
        ];
        args.extend(self.boot.iter().map(String::as_str));
        let mut p = Proc::spawn(&args);
        let line = p.wait_out("published line", |l| l.starts_with("published seq "));
        // "published seq N (K of M files unchanged)"
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 8, "{line}");
        assert_eq!(
            &words[4..],
            ["of", words[5], "files", "unchanged)"],
            "{line}"
        );
        let seq = words[2].parse().unwrap();
        let unchanged = words[3].trim_start_matches('(').parse().unwrap();
        let total = words[5].parse().unwrap();
        (p, seq, unchanged, total)
    }

    fn subscribe(&self, name: &str, extra: &[&str]) -> Proc {
        let out = self.path(&format!("{name}-out"));
        let state = self.path(&format!("{name}-state"));
        let mut args = vec![
            "subscribe",
            &self.pubkey,
            "--out",
            s(&out),
            "--state",
            s(&state),
            "--interval",
            "1",
        ];
        args.extend(extra);
        args.push("--bootstrap");
        args.extend(self.boot.iter().map(String::as_str));
        Proc::spawn(&args)
    }
}

/// Wait for `synced seq {seq}` and return how many blobs that version fetched (stderr
/// `seq N: K blob(s) fetched, ...`).
fn synced(p: &mut Proc, seq: u64) -> usize {
    let want = format!("synced seq {seq}");
    p.wait_out(&want, |l| l == want);
    let line = p.wait_err(&format!("seq {seq}: "));
    line.split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
}

fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

const MIB: usize = 1 << 20;

/// Acceptance 1, 2 and 4: a subscriber follows three versions of a folder (a file added, a
/// file modified, a file removed), fetching exactly the new blobs, leaving unchanged files
/// alone; a second subscriber's local change is kept; a third syncs from the first alone.
#[test]
fn follow_three_versions_incrementally_then_swarm() {
    let net = Net::new();
    let src = net.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), random(2 * MIB + 5)).unwrap(); // 3 blobs
    std::fs::write(src.join("b.bin"), random(MIB + 1)).unwrap(); // 2 blobs
    std::fs::create_dir(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/readme.txt"), b"read me").unwrap(); // 1 blob

    let (mut p1, seq1, unchanged, total) = net.publish(&src);
    assert_eq!((unchanged, total), (0, 3));
    // After the ingest, the announces are counted and the put is said (plain lines: stderr
    // is not a terminal).
    let announced = p1.wait_err("announcing blobs 100% (");
    let count = announced.trim_start_matches("announcing blobs 100% (");
    let (done, of) = count.trim_end_matches(')').split_once(" of ").unwrap();
    assert_eq!(done, of, "{announced}");
    assert!(
        (1..=6).contains(&done.parse::<usize>().unwrap()),
        "{announced}"
    );
    p1.wait_err("putting channel item");
    let at = |p: &Proc, needle: &str| p.err_seen.iter().position(|l| l.starts_with(needle));
    assert!(at(&p1, "ingest 100%") < at(&p1, "announcing blobs 100%"));
    assert!(at(&p1, "announcing blobs 100%") < at(&p1, "putting channel item"));
    let mut a = net.subscribe("a", &[]);
    let mut local = net.subscribe("local", &[]);
    assert_eq!(synced(&mut a, seq1), 6);
    // A progress line per tenth reached while the six blobs came, 100 % last.
    let shown: Vec<&String> = a
        .err_seen
        .iter()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(shown.len() >= 2, "{:?}", a.err_seen);
    assert!(
        shown[shown.len() - 1].starts_with("progress 100% ("),
        "{shown:?}"
    );
    synced(&mut local, seq1);
    let a_out = net.path("a-out");
    assert_eq!(tree(&a_out), tree(&src));
    let a_inode = inode(&a_out.join("a.bin"));
    // The "local" subscriber's user edits b.bin.
    let local_b = net.path("local-out").join("b.bin");
    std::fs::write(&local_b, b"my own notes").unwrap();
    assert_eq!(p1.stop(), 0);

    // Version 2: c.bin added.
    std::fs::write(src.join("c.bin"), random(MIB / 2)).unwrap(); // 1 blob
    let (p2, seq2, unchanged, total) = net.publish(&src);
    assert!(seq2 > seq1);
    assert_eq!((unchanged, total), (3, 4));
    assert_eq!(synced(&mut a, seq2), 1, "only c.bin's blob");
    synced(&mut local, seq2);
    assert_eq!(tree(&a_out), tree(&src));
    assert_eq!(
        inode(&a_out.join("a.bin")),
        a_inode,
        "unchanged file rewritten"
    );
    let c_inode = inode(&a_out.join("c.bin"));
    assert_eq!(p2.stop(), 0);

    // Version 3: b.bin modified, a.bin removed.
    std::fs::write(src.join("b.bin"), random(MIB / 4)).unwrap(); // 1 blob
    std::fs::remove_file(src.join("a.bin")).unwrap();
    let (p3, seq3, unchanged, total) = net.publish(&src);
    assert!(seq3 > seq2);
    assert_eq!((unchanged, total), (2, 3));
    assert_eq!(synced(&mut a, seq3), 1, "only b.bin's new blob");
    synced(&mut local, seq3);
    let mut want = tree(&src);
    // Removed files are kept by default.
    want.insert("a.bin".into(), std::fs::read(a_out.join("a.bin")).unwrap());
    assert_eq!(tree(&a_out), want);
    assert_eq!(inode(&a_out.join("c.bin")), c_inode);
    assert_eq!(inode(&a_out.join("a.bin")), a_inode);
    // The user's edit survived, and was reported.
    assert_eq!(std::fs::read(&local_b).unwrap(), b"my own notes");
    local.wait_err("kept local change: b.bin");
    assert_eq!(local.stop(), 0);

    // `ls` shows the current version, never a key.
    let mut args = vec!["ls", net.pubkey.as_str(), "--bootstrap"];
    args.extend(net.boot.iter().map(String::as_str));
    let (code, out, err) = run_within(LIMIT, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "sequence {seq3}\n{}\tb.bin\n{}\tc.bin\n7\tdocs/readme.txt\n",
            MIB / 4,
            MIB / 2
        )
    );
    // Swarm: the publisher stops; a new subscriber gets the whole channel from A alone.
    assert_eq!(p3.stop(), 0);
    let mut b = net.subscribe("b", &[]);
    assert_eq!(synced(&mut b, seq3), 3);
    assert_eq!(tree(&net.path("b-out")), tree(&src));
    assert_eq!(b.stop(), 0);
    // Each version was synced once, its progress counted from 0 again.
    a.drain_err();
    for seq in [seq1, seq2, seq3] {
        let n = a
            .err_seen
            .iter()
            .filter(|l| l.starts_with(&format!("seq {seq}: ")))
            .count();
        assert_eq!(n, 1, "seq {seq} synced {n} times: {:?}", a.err_seen);
    }
    let full = a
        .err_seen
        .iter()
        .filter(|l| l.starts_with("progress 100% ("))
        .count();
    assert_eq!(full, 3, "{:?}", a.err_seen);
    assert_eq!(a.stop(), 0);
}

/// Acceptance 3: a subscriber killed midway resumes from its state folder without fetching
/// a stored blob again; no temporary file remains; the tree is identical.
#[test]
fn killed_subscriber_resumes_without_refetching() {
    let net = Net::new();
    let src = net.path("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}.bin")), random(MIB - 100)).unwrap();
    }
    let (p, seq, _, total) = net.publish(&src);
    assert_eq!(total, 8);
    // 2 MiB/s: 8 blobs take about 4 s, so the kill lands midway.
    let mut first = net.subscribe("k", &["--download-rate", "2097152"]);
    first.wait_err("wrote f");
    first.kill();
    let blobs = net.path("k-state").join("blobs");
    let stored = std::fs::read_dir(&blobs)
        .unwrap()
        .filter(|e| {
            let e = e.as_ref().unwrap();
            let name = e.file_name();
            // Data blobs only: the store also keeps the manifest's own item (a few KiB).
            name.len() == 64
                && name
                    .to_str()
                    .unwrap()
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
                && e.metadata().unwrap().len() == megatorrent::manifest::BLOB_LEN as u64
        })
        .count();
    assert!(
        (1..8).contains(&stored),
        "{stored} blobs stored at the kill"
    );

    let mut again = net.subscribe("k", &[]);
    let fetched = synced(&mut again, seq);
    assert_eq!(fetched, 8 - stored, "a stored blob was fetched again");
    let out = net.path("k-out");
    assert_eq!(tree(&out), tree(&src));
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(again.stop(), 0);
    assert_eq!(p.stop(), 0);
}

#[test]
fn bad_channel_arguments_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st");
    let out = dir.path().join("out");
    let (code, _, err) = run_within(
        LIMIT,
        &[
            "subscribe",
            "nothex",
            "--out",
            s(&out),
            "--state",
            s(&st),
            "--bootstrap",
            "127.0.0.1:9",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad CHANNEL: invalid public key"), "{err}");
    let key = "ab".repeat(32);
    let link = format!("megatorrent://{key}:{}", "cd".repeat(32));
    let (code, _, err) = run_within(
        LIMIT,
        &[
            "ls",
            &link,
            "--read-key",
            &"ef".repeat(32),
            "--bootstrap",
            "127.0.0.1:9",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the read key is given twice"), "{err}");
    assert!(!err.contains(&"cd".repeat(32)), "a key leaked: {err}");
    assert!(!out.exists());
}
