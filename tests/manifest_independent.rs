//! Manifests we create verify under independent verifiers that share no code with the crate, by
//! both rules of PROTOCOL.md 2.3: keys sorted at every level (the newest reference) and keys in
//! received order (the older reference, cf6dffe), including titles and names with non-ASCII
//! text, quotes, backslashes, every control character, U+2028/U+2029 and emoji.
//! - tests/py/verify_manifest.py: Python's json + `cryptography`;
//! - tests/js/verify_manifest.mjs: Node's JSON and Ed25519 + the npm `fast-json-stable-stringify`
//!   (installed by `npm ci` in tests/js, as scripts/test-all.sh does).
//!
//! A missing python3/`cryptography` or node/npm package skips a test with "skipped: ..." on
//! stderr, and fails it when the environment variable `CI` is set.

use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, Chunk, Collection, FileEntry, ManifestContent,
    ReadKey,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_megatorrent");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/verify_manifest.py");
const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
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
        skip("no python3 with the cryptography package");
    }
    found
}

/// Print why a test cannot run; under CI that is a failure.
fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and a dependency is missing: {why}"
    );
    eprintln!("skipped: {why}");
}

/// True when node can run tests/js/verify_manifest.mjs (node installed, `npm ci` done there).
fn node_available() -> bool {
    let ok = Command::new("node")
        .current_dir(JS_DIR)
        .args([
            "--input-type=module",
            "-e",
            "import 'fast-json-stable-stringify'",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip("node or the npm package fast-json-stable-stringify (run `npm ci` in tests/js)");
    }
    ok
}

/// Run the Node verifier on `files` by `rule` (`--sorted` or `--received`).
fn node_verify(rule: &str, files: &[PathBuf]) -> Output {
    Command::new("node")
        .current_dir(JS_DIR)
        .arg("verify_manifest.mjs")
        .arg(rule)
        .args(files)
        .output()
        .unwrap()
}

/// Every independent verifier, by both rules, must accept `file`, and its text must be the
/// sorted compact form.
fn all_verifiers_accept(file: &Path) {
    for py in pythons() {
        for extra in [&[][..], &["--sorted", "--canonical"][..]] {
            let out = python_verify(py, file, extra);
            assert!(
                out.status.success(),
                "{py} {extra:?} refused {file:?}: {out:?}"
            );
        }
    }
    if node_available() {
        for rule in ["--sorted", "--received"] {
            let out = node_verify(rule, &[file.to_owned()]);
            assert!(
                out.status.success(),
                "node {rule} refused {file:?}: {out:?}"
            );
            assert_eq!(out.stdout, b"valid\n");
        }
    }
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
        // Every other entry sits in folders (extension) with hostile names of their own.
        path: if seed % 2 == 1 {
            vec![
                format!("folder \"{seed}\" \u{2028} 日本 🎉"),
                "sub \u{1} \t dir".into(),
            ]
        } else {
            Vec::new()
        },
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

/// Which vectors each rule accepts: received order accepts what either reference signed, the
/// sorted rule only the sorted form (the newest reference rejects the older one's manifests).
const VECTOR_RULES: [(&str, bool, bool); 8] = [
    // (file, valid by received order, valid by sorted order)
    ("plain-small.json", true, false),
    ("plain-three.json", true, false),
    ("private-small.json", true, false),
    ("plain-small-sorted.json", true, true),
    ("plain-small-badsig.json", false, false),
    ("plain-small-renamed.json", false, false),
    ("plain-small-seqbump.json", false, false),
    ("plain-small-wrongkey.json", false, false),
];

#[test]
fn python_verifier_agrees_on_the_reference_vectors() {
    for_each_python(python_verifier_agrees_on_the_reference_vectors_with);
}

fn python_verifier_agrees_on_the_reference_vectors_with(py: &str) {
    for (file, received, sorted) in VECTOR_RULES {
        let path = Path::new(VECTORS).join(file);
        let out = python_verify(py, &path, &[]);
        assert_eq!(out.status.success(), received, "{file}: {out:?}");
        let out = python_verify(py, &path, &["--sorted"]);
        assert_eq!(out.status.success(), sorted, "{file} --sorted: {out:?}");
    }
    // The reference's own vectors are in the 2.1 order; the check can refuse.
    for (file, in_order) in [
        ("plain-small.json", true),
        ("plain-small-sorted.json", false),
    ] {
        let out = python_verify(py, &Path::new(VECTORS).join(file), &["--reference-order"]);
        assert_eq!(out.status.success(), in_order, "{file}: {out:?}");
    }
}

#[test]
fn node_verifier_agrees_on_the_reference_vectors() {
    if !node_available() {
        return;
    }
    for (file, received, sorted) in VECTOR_RULES {
        let path = Path::new(VECTORS).join(file);
        let out = node_verify("--received", std::slice::from_ref(&path));
        assert_eq!(out.status.success(), received, "{file}: {out:?}");
        let out = node_verify("--sorted", &[path]);
        assert_eq!(out.status.success(), sorted, "{file} --sorted: {out:?}");
    }
}

#[test]
fn created_manifests_verify_independently() {
    let setup = setup();
    let text = create(&setup, None);
    // Control characters are escaped; everything else non-ASCII is raw UTF-8.
    assert!(text.contains("\\u0001\\u001f\u{7f}"), "{text}");
    assert!(text.contains("\u{2028}\u{2029} 日本 🎉"), "{text}");
    let file = setup.dir.join("manifest.json");
    std::fs::write(&file, &text).unwrap();
    all_verifiers_accept(&file);

    // Python's JSON parser reads back exactly the strings we wrote.
    for py in pythons() {
        let out = python_verify(py, &file, &["--strings"]);
        assert!(out.status.success(), "python refused: {out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("valid"));
        let strings: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
        let mut expected = vec![TITLE.to_owned()];
        expected.extend(NAMES.iter().map(|s| s.to_string()));
        assert_eq!(strings, expected);
    }

    // Our own verifier agrees.
    let ours = megatorrent(args!["manifest", "verify", file]);
    assert!(ours.status.success());
    assert_eq!(ours.stdout, b"valid\n");

    // A one-character change in a name must make every verifier refuse it.
    let tampered_text = text.replacen("ünïcødé", "unïcødé", 1);
    assert_ne!(tampered_text, text);
    let tampered = setup.dir.join("tampered.json");
    std::fs::write(&tampered, &tampered_text).unwrap();
    for py in pythons() {
        for extra in [&[][..], &["--sorted"][..]] {
            let out = python_verify(py, &tampered, extra);
            assert!(
                !out.status.success(),
                "python {extra:?} accepted a tampered manifest"
            );
        }
    }
    if node_available() {
        for rule in ["--sorted", "--received"] {
            let out = node_verify(rule, std::slice::from_ref(&tampered));
            assert!(
                !out.status.success(),
                "node {rule} accepted a tampered manifest"
            );
        }
    }
    let ours = megatorrent(args!["manifest", "verify", tampered]);
    assert_eq!(ours.status.code(), Some(1));
    assert!(ours.stdout.is_empty());
    let stderr = String::from_utf8(ours.stderr).unwrap();
    assert!(stderr.contains("bad signature"), "{stderr}");
}

#[test]
fn created_private_manifests_verify_independently() {
    let setup = setup();
    let key = "07".repeat(32);
    let text = create(&setup, Some(&key));
    let file = setup.dir.join("private.json");
    std::fs::write(&file, &text).unwrap();
    all_verifiers_accept(&file);

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

/// Every character a title may hold that argv cannot carry (NUL) or that is easy to get wrong:
/// all of U+0000..U+001F, DEL, quotes, backslashes, U+2028/U+2029, BOM, emoji, astral text.
fn hostile_text() -> String {
    let mut text: String = (0u8..0x20).map(char::from).collect();
    text.push_str("\u{7f} \"q\" \\ \\\" \u{2028}\u{2029}\u{feff} 🎉👩‍👩‍👧 𝄞 日本 é </script> \\u0000");
    text
}

/// Library-made manifests (the creator behind `manifest create`, `publish`, the FFI's
/// `putManifest` and the publisher): plain and private, with hostile titles and names.
#[test]
fn library_manifests_with_every_control_character_verify_independently() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::from_seed(&[9; 32]);
    // Names may hold anything but NUL, `/` and `\`.
    let name: String = hostile_text().replace(['\0', '/', '\\'], "_");
    let content = ManifestContent {
        collections: vec![
            Collection {
                title: hostile_text(),
                items: vec![entry(&name, 1), entry("plain", 2)],
            },
            Collection {
                title: String::new(),
                items: vec![],
            },
        ],
        timestamp: 1_732_500_000_000,
    };
    let plain = create_manifest(&identity, 7, &content).unwrap();
    let private =
        create_private_manifest(&identity, 8, &content, &ReadKey::from_bytes([5; 32])).unwrap();
    for (label, manifest) in [("plain", plain), ("private", private)] {
        let file = dir.path().join(format!("{label}.json"));
        std::fs::write(&file, manifest.as_bytes()).unwrap();
        all_verifiers_accept(&file);
    }
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
