//! Shared helpers for the DHT network tests: loopback testnets and signed manifests.
#![allow(dead_code)]

use std::time::Duration;

use megatorrent::dht::manifest_shim::SignedManifest;
use megatorrent::dht::{DhtClient, DhtConfig};
use megatorrent::identity::Identity;

/// Bound for every network test.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A server-mode loopback testnet of `n` mainline nodes.
pub fn testnet(n: usize) -> mainline::Testnet {
    mainline::Testnet::builder(n).build().unwrap()
}

/// A client-mode node on 127.0.0.1 bootstrapped on `bootstrap`, with a short request time-out.
pub fn client(bootstrap: &[String]) -> DhtClient {
    let mut cfg = DhtConfig::local(bootstrap);
    cfg.request_timeout = Duration::from_millis(400);
    DhtClient::start(&cfg).unwrap()
}

/// A valid signed plain manifest with `chunks` chunks (each chunk entry is ~250 bytes of JSON,
/// so one chunk fits inline and three do not).
pub fn manifest(identity: &Identity, seq: u64, chunks: usize) -> SignedManifest {
    let chunk = |i: usize| {
        serde_json::json!({
            "blobId": hex::encode(megatorrent::id::BlobId::of(&i.to_le_bytes()).as_bytes()),
            "offset": 0,
            "length": 1048592,
            "key": hex::encode([(i % 251) as u8; 32]),
            "nonce": hex::encode([7u8; 12]),
            "realSize": 1048576,
        })
    };
    let chunks: Vec<_> = (0..chunks).map(chunk).collect();
    let size = chunks.len() as u64 * 1048576;
    let mut obj = serde_json::json!({
        "publicKey": identity.public_key_hex(),
        "sequence": seq,
        "collections": [{"title": "t", "items": [{"name": "f.bin", "size": size, "chunks": chunks}]}],
        "timestamp": 1700000000000u64,
    });
    let sig = identity.sign(&serde_json::to_vec(&obj).unwrap());
    obj["signature"] = serde_json::Value::String(hex::encode(sig));
    SignedManifest::verify(&serde_json::to_vec(&obj).unwrap()).unwrap()
}
