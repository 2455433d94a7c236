//! No log line and no Debug output holds key material. A whole private publish/download runs
//! with every log level on (TRACE, every crate, `mainline` included), every value that holds a
//! secret is also logged with `?value`, and the captured output is searched for each key in
//! every form it could take (lowercase or uppercase hex, Rust's byte-array Debug form). The
//! same is done for the CLI (`--log trace`, stderr of every command).
//!
//! Secrets searched: the identity seed (and the libsodium 64-byte secret), the read key, every
//! chunk key, the session keys and the ephemeral secrets and shared secret of a session run
//! with the fixed secrets of `tests/vectors/transport.json` (the only session whose keys a
//! test can know).

mod common;

use megatorrent::blob::{ingest_file, reassemble, BlobStore};
use megatorrent::dht::MutableRecord;
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_private_manifest, Collection, ManifestContent, ReadKey, SignedManifest,
};
use megatorrent::peer::{BlobFetcher, BlobServer, FetcherOptions, ServerConfig};
use megatorrent::transport::{ConnectOptions, Handshake, Message, Role};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::timeout;

const SEED: [u8; 32] = [0x5c; 32];
const READ_KEY: [u8; 32] = [0xa7; 32];
const BIN: &str = env!("CARGO_BIN_EXE_megatorrent");
const LIMIT: Duration = Duration::from_secs(60);

/// The transport vector's secrets and keys (tests/vectors/transport.json).
fn session_secrets() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/transport.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    [
        "client_eph_sk",
        "server_eph_sk",
        "shared",
        "key_c2s",
        "key_s2c",
    ]
    .iter()
    .map(|k| hex::decode(v[k].as_str().unwrap()).unwrap())
    .collect()
}

/// Every form in which `secret` could show up in text.
fn forms(secret: &[u8]) -> Vec<String> {
    vec![
        hex::encode(secret),
        hex::encode_upper(secret),
        format!("{secret:?}"),
        // A Debug of a prefix (e.g. a truncated key) still leaks: 16 bytes is enough to notice.
        format!("{:?}", &secret[..16])
            .trim_end_matches(']')
            .to_owned(),
    ]
}

fn assert_no_secret(what: &str, text: &str, secrets: &[(String, Vec<u8>)]) {
    for (name, secret) in secrets {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what}: the {name} appears in the output as {form:?}"
            );
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn file_with(dir: &Path, name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn library_flow_at_trace_level_logs_no_key() {
    let captured = Capture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let identity = Identity::from_seed(&SEED);
    let read_key = ReadKey::from_bytes(READ_KEY);
    let dir = tempfile::tempdir().unwrap();
    let publisher_store = BlobStore::open(dir.path().join("pub")).unwrap();
    let reader_store = BlobStore::open(dir.path().join("read")).unwrap();
    // Short name, title and timestamp: the private manifest must fit one DHT record (996 bytes).
    let (path, data) = file_with(dir.path(), "f", 10);

    // Publish: ingest, private manifest, DHT record, blob server (with identity binding).
    let entry = ingest_file(&path, &publisher_store).unwrap();
    let content = ManifestContent {
        collections: vec![Collection {
            title: String::new(),
            items: vec![entry.clone()],
        }],
        timestamp: 0,
    };
    let manifest = create_private_manifest(&identity, 9, &content, &read_key).unwrap();
    let record = MutableRecord::sign(&identity, 9, manifest.as_bytes(), b"").unwrap();
    tracing::debug!(
        ?identity,
        ?read_key,
        ?entry,
        ?content,
        ?manifest,
        ?record,
        "published"
    );
    for chunk in &entry.chunks {
        tracing::debug!(?chunk, "chunk");
    }

    let net = common::testnet(8);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = rt.block_on(async {
        timeout(LIMIT, async {
            let publisher = common::client(&net.bootstrap);
            publisher.put_record(&record, None).await.unwrap();
            let server = BlobServer::bind(
                "127.0.0.1:0",
                publisher_store.clone(),
                ServerConfig::default().identity(Some(Arc::new(Identity::from_seed(&SEED)))),
            )
            .await
            .unwrap();
            let handle = server.spawn().unwrap();
            tracing::debug!(?handle, ?publisher, "serving");

            // Download: DHT get, decrypt, fetch every blob (binding required), reassemble.
            let reader = common::client(&net.bootstrap);
            let found = reader
                .get_manifest(&identity.public_key_bytes(), b"")
                .await
                .unwrap();
            let found = SignedManifest::verify(found.as_bytes()).unwrap();
            let opened = found.decrypt(&read_key).unwrap();
            tracing::debug!(?found, ?opened, "found");
            let entry = opened.collections[0].items[0].clone();
            let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
            let opts = FetcherOptions::default().connect(
                ConnectOptions::default().expect_identity(Some(identity.public_key_bytes())),
            );
            let mut fetcher = BlobFetcher::connect(handle.local_addr(), &opts)
                .await
                .unwrap();
            tracing::debug!(?fetcher, "fetching");
            for r in fetcher.fetch_into(&reader_store, &ids).await {
                r.unwrap();
            }
            fetcher.close().await;
            let out = dir.path().join("out.bin");
            reassemble(&entry, &reader_store, &out).unwrap();
            handle.shutdown().await;
            std::fs::read(out).unwrap()
        })
        .await
        .unwrap()
    });
    assert!(got == data, "the download reproduces the file");

    // A session with known keys, driven through the core and logged.
    let mut c = Handshake::with_secret_for_tests(Role::Client, [0x11; 32]);
    let s = Handshake::with_secret_for_tests(Role::Server, [0x22; 32]);
    c.read(&s.local_public_key());
    tracing::debug!(?c, ?s, "handshake");
    let cpk = c.local_public_key();
    let mut client = c.into_transport().unwrap();
    let mut server = s.complete(&cpk).unwrap();
    let mut wire = Vec::new();
    client
        .seal_message(&Message::Request(entry.chunks[0].blob_id), &mut wire)
        .unwrap();
    let opened = server.push(&wire).unwrap().1.unwrap();
    tracing::debug!(?client, ?server, ?opened, "session");

    let mut secrets = vec![
        ("identity seed".to_owned(), SEED.to_vec()),
        (
            "libsodium secret key".to_owned(),
            [&SEED[..], &identity.public_key_bytes()[..]].concat(),
        ),
        ("read key".to_owned(), READ_KEY.to_vec()),
    ];
    for (i, chunk) in entry.chunks.iter().enumerate() {
        secrets.push((format!("chunk key {i}"), chunk.key.to_vec()));
    }
    for (i, s) in session_secrets().into_iter().enumerate() {
        secrets.push((format!("session secret {i}"), s));
    }
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    // The capture really holds the run: logs of each stage, at every level.
    for expected in [
        "blob server listening",
        "handshake complete",
        "published",
        "found",
        "session",
        "TRACE",
    ] {
        assert!(
            text.contains(expected),
            "no {expected:?} in the captured log"
        );
    }
    assert_no_secret("library log", &text, &secrets);
}

/// Run `megatorrent --log trace ARGS`; returns stdout, and appends stderr to `log`.
fn cli(args: &[&str], log: &mut String) -> String {
    let out = Command::new(BIN)
        .args(["--log", "trace"])
        .args(args)
        .output()
        .unwrap();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_flow_at_trace_level_logs_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let identity = Identity::from_seed(&SEED);
    identity.save(&dir.path().join("id.json")).unwrap();
    let (path, data) = file_with(dir.path(), "film.bin", 1_500_000);
    let read_key = hex::encode(READ_KEY);
    let mut log = String::new();

    // Publisher side. Stdout of `ingest` and `decrypt` holds chunk keys by design; only the
    // logs (stderr) are searched.
    let entry_json = cli(
        &["ingest", path.to_str().unwrap(), "--blobs", &d("a")],
        &mut log,
    );
    std::fs::write(d("entry.json"), &entry_json).unwrap();
    let manifest = cli(
        &[
            "manifest",
            "create",
            "--identity",
            &d("id.json"),
            "--seq",
            "3",
            "--read-key",
            &read_key,
            &d("entry.json"),
        ],
        &mut log,
    );
    std::fs::write(d("m.json"), &manifest).unwrap();
    cli(&["manifest", "verify", &d("m.json")], &mut log);
    cli(
        &["manifest", "decrypt", &d("m.json"), "--read-key", &read_key],
        &mut log,
    );

    // Serve with an identity; fetch with binding; reassemble.
    let serve_log = std::fs::File::create(d("serve.log")).unwrap();
    let mut serve = Command::new(BIN)
        .args([
            "--log",
            "trace",
            "serve",
            "--blobs",
            &d("a"),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--identity", &d("id.json")])
        .stdout(Stdio::piped())
        .stderr(serve_log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line.trim().strip_prefix("listening ").unwrap().to_owned();
    let entry: serde_json::Value = serde_json::from_str(&entry_json).unwrap();
    let mut args = vec!["fetch".to_owned(), addr, "--blobs".into(), d("b")];
    args.extend(["--expect-identity".into(), identity.public_key_hex()]);
    let mut keys = Vec::new();
    for c in entry["chunks"].as_array().unwrap() {
        args.push(c["blobId"].as_str().unwrap().to_owned());
        keys.push(hex::decode(c["key"].as_str().unwrap()).unwrap());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&args, &mut log);
    cli(
        &[
            "reassemble",
            &d("entry.json"),
            "--blobs",
            &d("b"),
            "--out",
            &d("out.bin"),
        ],
        &mut log,
    );
    assert!(std::fs::read(d("out.bin")).unwrap() == data);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let deadline = Instant::now() + LIMIT;
    while serve.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log.push_str(&std::fs::read_to_string(d("serve.log")).unwrap());

    assert!(keys.len() == 2, "1.5 MB makes two chunks");
    // The logs really are there (the library has no TRACE events of its own).
    assert!(
        log.contains("handshake complete") && log.contains("DEBUG"),
        "{log}"
    );
    let mut secrets = vec![
        ("identity seed".to_owned(), SEED.to_vec()),
        ("read key".to_owned(), READ_KEY.to_vec()),
    ];
    for (i, k) in keys.into_iter().enumerate() {
        secrets.push((format!("chunk key {i}"), k));
    }
    assert_no_secret("CLI stderr", &log, &secrets);
}

#[test]
fn cli_publish_download_at_trace_level_logs_no_key() {
    let net = common::testnet(8);
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let identity = Identity::from_seed(&SEED);
    identity.save(&dir.path().join("id.json")).unwrap();
    let (path, data) = file_with(dir.path(), "movie.mkv", 2_200_000);
    let read_key = hex::encode(READ_KEY);
    let mut publish = Command::new(BIN)
        .args(["--log", "trace", "publish", path.to_str().unwrap()])
        .args(["--identity", &d("id.json"), "--blobs", &d("pub")])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--read-key",
            &read_key,
            "--bootstrap",
        ])
        .args(&net.bootstrap)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(d("publish.log")).unwrap())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(publish.stdout.take().unwrap()));
    let deadline = Instant::now() + LIMIT;
    loop {
        let line = lines.next().expect("publish ended").unwrap();
        if line.starts_with("published seq ") {
            break;
        }
        assert!(Instant::now() < deadline, "publish printed nothing in time");
    }
    let mut log = String::new();
    let mut args = vec!["download", &identity.public_key_hex()]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    args.extend(["--out".into(), d("out"), "--blobs".into(), d("sub")]);
    args.extend(["--read-key".into(), read_key.clone(), "--bootstrap".into()]);
    args.extend(net.bootstrap.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&args, &mut log);
    assert!(std::fs::read(d("out/movie.mkv")).unwrap() == data);

    // The chunk keys, from the published manifest.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let manifest = rt.block_on(async {
        // A pointer record: its parts are read from the publisher's store.
        let parts = BlobStore::open(dir.path().join("pub")).unwrap();
        let reader = common::client(&net.bootstrap)
            .with_part_fetcher(Arc::new(megatorrent::dht::StoreFetcher(parts)));
        timeout(
            LIMIT,
            reader.get_manifest(&identity.public_key_bytes(), b""),
        )
        .await
        .unwrap()
        .unwrap()
    });
    let content = SignedManifest::verify(manifest.as_bytes())
        .unwrap()
        .decrypt(&ReadKey::from_bytes(READ_KEY))
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &publish.id().to_string()])
        .status();
    let deadline = Instant::now() + LIMIT;
    while publish.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = publish.kill();
            panic!("publish did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log.push_str(&std::fs::read_to_string(d("publish.log")).unwrap());

    let mut secrets = vec![
        ("identity seed".to_owned(), SEED.to_vec()),
        ("read key".to_owned(), READ_KEY.to_vec()),
    ];
    let chunks: Vec<_> = content
        .collections
        .iter()
        .flat_map(|c| &c.items)
        .flat_map(|f| &f.chunks)
        .collect();
    assert_eq!(chunks.len(), 3, "2.2 MB makes three chunks");
    for (i, c) in chunks.iter().enumerate() {
        secrets.push((format!("chunk key {i}"), c.key.to_vec()));
    }
    assert!(
        log.contains("DEBUG") && log.contains("TRACE"),
        "no debug log captured"
    );
    assert_no_secret("publish/download stderr", &log, &secrets);
}
