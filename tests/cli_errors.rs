//! Errors as a user sees them: one line, naming what failed and why, each cause once
//! (issue 15, "Errors"). Everything runs on 127.0.0.1.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::cli::run_within;

const LIMIT: Duration = Duration::from_secs(60);
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// The one `error: ` line of a failed command (and nothing else on stderr).
fn error_line(code: i32, err: &str) -> String {
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn connection_refused_is_said_once() {
    let blobs = tempfile::tempdir().unwrap();
    let peer = format!("127.0.0.1:{}", closed_port());
    let (code, _, err) = run_within(
        LIMIT,
        &[
            "fetch",
            "--blobs",
            blobs.path().to_str().unwrap(),
            &peer,
            KEY,
        ],
    );
    let line = error_line(code, &err);
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert!(
        line.contains(&format!("cannot connect to {peer}")),
        "{line}"
    );
}

#[test]
fn keygen_names_the_file_asked_for() {
    let (code, _, err) = run_within(LIMIT, &["keygen", "--out", "/nonexistent/dir/me.json"]);
    let line = error_line(code, &err);
    assert!(line.contains("/nonexistent/dir/me.json"), "{line}");
    assert!(!line.contains(".tmp"), "temporary path leaked: {line}");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
    // An existing file is kept and the refusal says so once.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("id.json");
    std::fs::write(&file, b"keep me").unwrap();
    let (code, _, err) = run_within(LIMIT, &["keygen", "--out", file.to_str().unwrap()]);
    let line = error_line(code, &err);
    assert_eq!(line.matches("already exists").count(), 1, "{line}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn unreachable_bootstrap_is_not_a_missing_record() {
    // A UDP socket that receives but never answers: a DHT node that is not there.
    let deaf = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = deaf.local_addr().unwrap().to_string();
    for args in [
        vec!["dht", "get", "--bootstrap", &addr, KEY],
        vec![
            "download",
            KEY,
            "--out",
            "/nonexistent/out",
            "--blobs",
            "/nonexistent/b",
            "--bootstrap",
            &addr,
        ],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("/nonexistent", dir.path().to_str().unwrap()))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run_within(LIMIT, &args);
        let line = error_line(code, &err);
        assert!(
            line.contains(&format!("no DHT node answered at {addr}")),
            "{args:?}: {line}"
        );
        assert!(!line.contains("no record found"), "{line}");
    }
}

#[test]
fn bad_log_filter_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("id.json");
    let (code, _, err) = run_within(
        LIMIT,
        &[
            "--log",
            "megatorrent=loud",
            "keygen",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--log"), "{err}");
    assert!(!out.exists(), "nothing runs after a usage error");
}

#[test]
fn debug_output_shows_keys_as_hex() {
    use megatorrent::dht::{PointerRecord, RecordValue};
    use megatorrent::transport::{ConnectOptions, Hello, Message};
    let key = [0x11u8; 32];
    let hello = Message::Hello(Hello {
        id: Some(key),
        sig: Some([0x22; 64]),
        ..Hello::v5([(key, 3)].into_iter().collect())
    });
    let pointer = RecordValue::Pointer(PointerRecord {
        public_key: key,
        sequence: 1,
        parts: Vec::new(),
        size: 1,
        levels: 1,
    });
    let opts = ConnectOptions::default().expect_identity(Some(key));
    for text in [
        format!("{hello:?}"),
        format!("{pointer:?}"),
        format!("{opts:?}"),
    ] {
        assert!(text.contains(&"11".repeat(32)), "{text}");
        assert!(!text.contains("17, 17"), "decimal bytes in {text}");
        assert!(!text.contains("34, 34"), "decimal bytes in {text}");
    }
}
