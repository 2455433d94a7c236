//! Manifests made by `megatorrent manifest create` verify under an independent verifier
//! (tests/py/verify_manifest.py: Python's json + `cryptography`, no shared code), including
//! titles and names with non-ASCII text, quotes, backslashes and control characters.
//! Skipped (with a note on stderr) when no python3 with `cryptography` is installed.

use megatorrent::id::BlobId;
use megatorrent::manifest::{Chunk, FileEntry};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_megatorrent");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/verify_manifest.py");
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/manifests");

/// Every python3 here that can import `cryptography`'s Ed25519 (Debian's has an older
/// `cryptography` than pyenv's: the script must work with both).
fn pythons() -> Vec<&'static str> {
    let found: Vec<&str> = ["python3", "/usr/bin/python3"]
        .into_iter()
        .filter(|py| {
            Command::new(py)
            .args([
                "-c",
                "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
        })
        .collect();
    if found.is_empty() {
        eprintln!("skipped: no python3 with the cryptography package");
    }
    found
}

/// Run `check` once with each python3 found (none: the test is skipped).
fn for_each_python(check: fn(&str)) {
    for py in pythons() {
        check(py);
    }
}

fn python_verify(py: &str, file: &Path, extra: &[&str]) -> Output {
    Command::new(py)
        .arg(SCRIPT)
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn megatorrent(args: Vec<OsString>) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Arguments of mixed kinds (`&str`, `&Path`, `&String`) as a `Vec<OsString>`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(OsString::from(&$a)),*] };
}

fn entry(name: &str, seed: u8) -> FileEntry {
    FileEntry {
        name: name.into(),
        path: Vec::new(),
        size: 1_048_577,
        chunks: vec![
            Chunk {
                blob_id: BlobId::of(&[seed, 1]),
                offset: 0,
                length: 1_048_592,
                key: [seed; 32],
                nonce: [seed; 12],
                real_size: 1_048_576,
            },
            Chunk {
                blob_id: BlobId::of(&[seed, 2]),
                offset: 0,
                length: 1_048_592,
                key: [seed ^ 0xff; 32],
                nonce: [seed ^ 0xff; 12],
                real_size: 1,
            },
        ],
    }
}

// Names may hold anything but `/`, `\` and NUL; titles anything (NUL cannot pass through argv).
const TITLE: &str = "Tïtle \"quoted\" \\back\\slash\\ \t tab \u{1}\u{1f}\u{7f} \n\r\u{8}\u{c} \u{2028}\u{2029} 日本 🎉 </script>";
const NAMES: [&str; 4] = [
    "plain.bin",
    "\"quotes\" and 'apostrophes'",
    "ctl \u{1} \u{1f} \t \n \r \u{8} \u{c} \u{7f} end",
    "ünïcødé 日本語 🎉 \u{2028}\u{2029} \u{feff} é",
];

struct Setup {
    _dir: tempfile::TempDir,
    identity: PathBuf,
    entries: Vec<PathBuf>,
    dir: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("id.json");
    let out = megatorrent(args!["keygen", "--out", identity,]);
    assert!(out.status.success(), "{out:?}");
    let entries = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = dir.path().join(format!("entry{i}.json"));
            std::fs::write(&path, entry(name, i as u8).to_json() + "\n").unwrap();
            path
        })
        .collect();
    Setup {
        dir: dir.path().to_owned(),
        _dir: dir,
        identity,
        entries,
    }
}

impl Setup {
    /// Run `manifest create --identity ID REST...`.
    fn manifest_create(&self, rest: impl IntoIterator<Item = OsString>) -> Output {
        let mut args = args!["manifest", "create", "--identity", self.identity];
        args.extend(rest);
        megatorrent(args)
    }
}

fn create(setup: &Setup, read_key: Option<&str>) -> String {
    let mut args = args!["--seq", "42", "--title", TITLE];
    if let Some(key) = read_key {
        args.extend(args!["--read-key", key]);
    }
    args.extend(setup.entries.iter().map(OsString::from));
    let out = setup.manifest_create(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn python_verifier_agrees_on_the_reference_vectors() {
    for_each_python(python_verifier_agrees_on_the_reference_vectors_with);
}

fn python_verifier_agrees_on_the_reference_vectors_with(py: &str) {
    for (file, valid) in [
        ("plain-small.json", true),
        ("plain-three.json", true),
        ("private-small.json", true),
        ("plain-small-badsig.json", false),
        ("plain-small-renamed.json", false),
        ("plain-small-seqbump.json", false),
        ("plain-small-wrongkey.json", false),
    ] {
        let out = python_verify(py, &Path::new(VECTORS).join(file), &["--reference-order"]);
        assert_eq!(out.status.success(), valid, "{file}: {out:?}");
    }
}

#[test]
fn created_manifests_verify_independently() {
    for_each_python(created_manifests_verify_independently_with);
}

fn created_manifests_verify_independently_with(py: &str) {
    let setup = setup();
    let text = create(&setup, None);
    // Control characters are escaped; everything else non-ASCII is raw UTF-8.
    assert!(text.contains("\\u0001\\u001f\u{7f}"), "{text}");
    assert!(text.contains("\u{2028}\u{2029} 日本 🎉"), "{text}");
    let file = setup.dir.join("manifest.json");
    std::fs::write(&file, &text).unwrap();

    let out = python_verify(py, &file, &["--reference-order", "--strings"]);
    assert!(out.status.success(), "python refused: {out:?}");
    // Python's JSON parser reads back exactly the strings we wrote.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("valid"));
    let strings: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut expected = vec![TITLE.to_owned()];
    expected.extend(NAMES.iter().map(|s| s.to_string()));
    assert_eq!(strings, expected);

    // Our own verifier agrees.
    let ours = megatorrent(args!["manifest", "verify", file]);
    assert!(ours.status.success());
    assert_eq!(ours.stdout, b"valid\n");

    // A one-character change in a name must make both verifiers refuse it.
    let tampered_text = text.replacen("ünïcødé", "unïcødé", 1);
    assert_ne!(tampered_text, text);
    let tampered = setup.dir.join("tampered.json");
    std::fs::write(&tampered, &tampered_text).unwrap();
    let out = python_verify(py, &tampered, &[]);
    assert!(!out.status.success(), "python accepted a tampered manifest");
    let ours = megatorrent(args!["manifest", "verify", tampered]);
    assert_eq!(ours.status.code(), Some(1));
    assert!(ours.stdout.is_empty());
    let stderr = String::from_utf8(ours.stderr).unwrap();
    assert!(stderr.contains("bad signature"), "{stderr}");
}

#[test]
fn created_private_manifests_verify_independently() {
    for_each_python(created_private_manifests_verify_independently_with);
}

fn created_private_manifests_verify_independently_with(py: &str) {
    let setup = setup();
    let key = "07".repeat(32);
    let text = create(&setup, Some(&key));
    let file = setup.dir.join("private.json");
    std::fs::write(&file, &text).unwrap();
    let out = python_verify(py, &file, &["--reference-order"]);
    assert!(out.status.success(), "python refused: {out:?}");

    // Decrypting yields a plain manifest whose strings survived the round trip.
    let out = megatorrent(args!["manifest", "decrypt", file, "--read-key", key,]);
    assert!(out.status.success(), "{out:?}");
    let plain: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plain["sequence"], 42);
    assert_eq!(plain["collections"][0]["title"], TITLE);
    assert_eq!(plain["collections"][0]["items"][3]["name"], NAMES[3]);

    let wrong = megatorrent(args![
        "manifest",
        "decrypt",
        file,
        "--read-key",
        "08".repeat(32),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong read key"));
}

#[test]
fn cli_reports_errors_with_exit_codes() {
    let setup = setup();
    let entry = &setup.entries[0];
    // Sequence 0: refused by the library, one error line, exit 1.
    let out = setup.manifest_create(args!["--seq", "0", entry]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("sequence 0 is out of range"), "{stderr}");
    // No entry at all, or a sequence that is not a number: usage errors, exit 2.
    for args in [vec!["--seq", "1"], vec!["--seq", "1.0", "x.json"]] {
        let out = setup.manifest_create(args.iter().map(OsString::from));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A bad read key is refused before anything is written.
    let out = setup.manifest_create(args!["--seq", "1", "--read-key", "abc", entry]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("readKey"));
    // verify of an invalid vector: exit 1, reason on stderr, nothing on stdout.
    let out = megatorrent(args![
        "manifest",
        "verify",
        Path::new(VECTORS).join("plain-small-nosig.json"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing field `signature`"));
}
