//! Interoperability with libtorrent's DHT (what qBittorrent runs), on loopback: our puts read by
//! libtorrent, libtorrent's puts read and verified by us, announce/get_peers both ways.
//!
//! Drives tests/interop/lt_dht.py under Debian's /usr/bin/python3 (python3-libtorrent; another
//! interpreter with `MEGATORRENT_LT_PYTHON`). Skipped, with a printed reason, only when that
//! interpreter cannot `import libtorrent`, and then a failure under CI (`common::skip`).

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::{manifest, TEST_LIMIT};
use megatorrent::dht::{DhtClient, DhtConfig, PutOptions};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/lt_dht.py");

struct LtNet {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    nodes: Vec<String>,
}

impl LtNet {
    /// Start the libtorrent network, or `None` (skip) when libtorrent cannot be imported.
    async fn start(n: usize) -> Option<LtNet> {
        let python = std::env::var("MEGATORRENT_LT_PYTHON").unwrap_or_else(|_| PYTHON.into());
        if !std::path::Path::new(&python).exists() {
            common::skip(&format!(
                "{python} not found; libtorrent interop not tested"
            ));
            return None;
        }
        let mut child = Command::new(&python)
            .arg(SCRIPT)
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        if let Some(reason) = first.get("skip") {
            common::skip(&format!(
                "libtorrent interop not tested ({python}): {reason}"
            ));
            return None;
        }
        let nodes = first["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        Some(LtNet {
            child,
            stdin,
            lines,
            nodes,
        })
    }

    async fn cmd(&mut self, line: &str) -> Value {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let reply = self.lines.next_line().await.unwrap().unwrap();
        serde_json::from_str(&reply).unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_interop() {
    timeout(TEST_LIMIT * 3, async {
        let Some(mut lt) = LtNet::start(3).await else {
            return;
        };
        // Client mode on loopback (PROTOCOL 4.1: our node must not pose as a server there).
        let mut cfg = DhtConfig::local(&lt.nodes);
        cfg.request_timeout = Duration::from_millis(1000);
        let ours = DhtClient::start(&cfg).unwrap();

        eprintln!("interop step: Our puts");
        // 1. Our puts (unsalted and salted) read by libtorrent with the same seq and value.
        let alice = Identity::from_seed(&[51; 32]);
        let m = manifest(&alice, 1_700_000_000_001, 1);
        ours.put_manifest(&alice, &m, &PutOptions::default())
            .await
            .unwrap();
        let r = lt.cmd(&format!("get 1 {}", alice.public_key_hex())).await;
        assert_eq!(r["found"], true, "{r}");
        assert_eq!(r["seq"], 1_700_000_000_001u64);
        assert_eq!(r["value_hex"], hex::encode(m.as_bytes()));
        let sub = manifest(&alice, 7, 0);
        let opts = PutOptions::default().salt(b"videos");
        ours.put_manifest(&alice, &sub, &opts).await.unwrap();
        let r = lt
            .cmd(&format!(
                "get 2 {} {}",
                alice.public_key_hex(),
                hex::encode(b"videos")
            ))
            .await;
        assert_eq!(r["found"], true, "{r}");
        assert_eq!(r["seq"], 7);
        assert_eq!(r["value_hex"], hex::encode(sub.as_bytes()));

        eprintln!("interop step: libtorrent's puts");
        // 2. libtorrent's puts read and verified by us. libtorrent picks seq = current + 1,
        //    so a fresh key gets sequence 1.
        let seed = [52u8; 32];
        let bob = Identity::from_seed(&seed);
        let bm = manifest(&bob, 1, 1);
        for salt in [&b""[..], &b"music"[..]] {
            let r = lt
                .cmd(&format!(
                    "put 0 {} {} {} {}",
                    hex::encode(seed),
                    hex::encode(bm.as_bytes()),
                    if salt.is_empty() {
                        "-".to_string()
                    } else {
                        hex::encode(salt)
                    },
                    bob.public_key_hex()
                ))
                .await;
            assert_eq!(r["seq"], 1, "{r}");
            // At least one of the three libtorrent nodes, and no more than exist.
            let stored = r["num_success"].as_u64().unwrap();
            assert!((1..=3).contains(&stored), "{r}");
            let got = ours
                .get_manifest(&bob.public_key_bytes(), salt)
                .await
                .unwrap();
            assert_eq!(got, bm);
        }

        eprintln!("interop step: Our announce");
        // 3. Our announce seen by libtorrent's get_peers.
        let blob = BlobId::of(b"interop blob");
        ours.announce_blob(&blob, 5555).await.unwrap();
        let ih = hex::encode(blob.info_hash());
        loop {
            let r = lt.cmd(&format!("peers 1 {ih}")).await;
            eprintln!("libtorrent peers: {r}");
            if r["peers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "127.0.0.1:5555")
            {
                break;
            }
        }

        eprintln!("interop step: libtorrent's announce");
        // 4. libtorrent's announce found by our get_peers.
        let blob2 = BlobId::of(b"announced by libtorrent");
        let r = lt
            .cmd(&format!("announce 0 {}", hex::encode(blob2.info_hash())))
            .await;
        let port = r["port"].as_u64().unwrap();
        let expected: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        while !ours.find_blob_peers(&blob2).await.contains(&expected) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        lt.stop().await;
    })
    .await
    .expect("libtorrent interop timed out");
}
