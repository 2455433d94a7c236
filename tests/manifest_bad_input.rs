//! Bad manifests, file entries and keys, each refused with its specific reason (PROTOCOL.md 2.4),
//! and the edge cases that must still be accepted.
//!
//! Most bad manifests here are correctly signed, so the refusal can only come from the check
//! under test.

use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, secretbox, Chunk, Collection, FileEntry,
    ManifestContent, ManifestError, ReadKey, SignedManifest, MAX_SEQUENCE,
};
use serde_json::{json, Value};

const BLOB_ID: &str = "a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9";
const KEY: &str = "2d24f0c394efb8ee3a44dcdc84a7171a028185c7171c95dade701178bbf35d7a";
const NONCE: &str = "92fc8ffa8c1aaf915a90f355";

fn identity() -> Identity {
    Identity::from_seed(&[9; 32])
}

fn chunk(real_size: u64) -> Value {
    json!({"blobId": BLOB_ID, "offset": 0, "length": 1048592, "key": KEY, "nonce": NONCE,
           "realSize": real_size})
}

/// A valid unsigned plain manifest (reference order) with one file of the given chunks.
fn plain(name: &str, size: u64, chunks: Vec<Value>) -> Value {
    json!({
        "publicKey": identity().public_key_hex(),
        "sequence": 7,
        "collections": [{"title": "t", "items": [{"name": name, "size": size, "chunks": chunks}]}],
        "timestamp": 1732500000000u64,
    })
}

/// Sign `value` (whose numbers are all integers, so serde_json writes it as JavaScript does)
/// and return the text with the signature appended.
fn signed(mut value: Value) -> String {
    let map = value.as_object_mut().unwrap();
    map.shift_remove("signature");
    let message = serde_json::to_string(map).unwrap();
    let signature = identity().sign(message.as_bytes());
    map.insert("signature".into(), Value::String(hex::encode(signature)));
    serde_json::to_string(&value).unwrap()
}

fn verify(text: &str) -> Result<SignedManifest, ManifestError> {
    SignedManifest::verify(text.as_bytes())
}

fn verify_value(value: Value) -> Result<SignedManifest, ManifestError> {
    verify(&signed(value))
}

fn small_chunk_path(field: &str) -> String {
    format!("collections[0].items[0].chunks[0].{field}")
}

#[test]
fn the_base_case_is_valid() {
    let m = verify_value(plain("a.bin", 5, vec![chunk(5)])).unwrap();
    assert_eq!(m.sequence(), 7);
    assert_eq!(m.content().unwrap().collections[0].items[0].name, "a.bin");
}

#[test]
fn truncated_and_malformed_json() {
    let text = signed(plain("a.bin", 5, vec![chunk(5)]));
    for cut in [0, 1, text.len() / 2, text.len() - 1] {
        assert!(
            matches!(verify(&text[..cut]), Err(ManifestError::BadJson(_))),
            "cut at {cut}"
        );
    }
    assert!(matches!(
        verify(&format!("{text}x")),
        Err(ManifestError::BadJson(_))
    ));
    assert!(matches!(
        SignedManifest::verify(b"{\"a\":\"\xff\"}"),
        Err(ManifestError::BadJson(_))
    ));
    assert_eq!(
        verify("[1,2]").unwrap_err(),
        ManifestError::WrongType {
            field: "(document)".into(),
            expected: "an object"
        }
    );
}

#[test]
fn surrounding_whitespace_is_ignored() {
    let text = signed(plain("a.bin", 5, vec![chunk(5)]));
    let m = verify(&format!(" \r\n\t{text}\n\n")).unwrap();
    assert_eq!(m.as_str(), text);
}

#[test]
fn duplicate_keys() {
    let text = signed(plain("a.bin", 5, vec![chunk(5)]));
    let top = text.replacen("\"sequence\":7,", "\"sequence\":7,\"sequence\":7,", 1);
    assert_eq!(
        verify(&top).unwrap_err(),
        ManifestError::DuplicateKey("sequence".into())
    );
    let nested = text.replacen("\"realSize\":5", "\"realSize\":5,\"realSize\":6", 1);
    assert_eq!(
        verify(&nested).unwrap_err(),
        ManifestError::DuplicateKey("realSize".into())
    );
}

#[test]
fn missing_fields_and_wrong_types() {
    for field in [
        "publicKey",
        "sequence",
        "collections",
        "timestamp",
        "signature",
    ] {
        let mut v = plain("a.bin", 5, vec![chunk(5)]);
        v.as_object_mut().unwrap().shift_remove(field);
        let text = if field == "signature" {
            serde_json::to_string(&v).unwrap()
        } else {
            signed(v)
        };
        assert_eq!(
            verify(&text).unwrap_err(),
            ManifestError::MissingField(field.into())
        );
    }
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["items"][0]["chunks"][0]
        .as_object_mut()
        .unwrap()
        .shift_remove("nonce");
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::MissingField(small_chunk_path("nonce"))
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"] = json!({});
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::WrongType {
            field: "collections".into(),
            expected: "an array"
        }
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["title"] = json!(5);
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::WrongType {
            field: "collections[0].title".into(),
            expected: "a string"
        }
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["encrypted"] = json!("yes");
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::WrongType {
            field: "encrypted".into(),
            expected: "a boolean"
        }
    );
}

#[test]
fn wrong_hex_lengths_name_the_field() {
    let cases = [
        ("publicKey", 64),
        ("signature", 128),
        ("blobId", 64),
        ("key", 64),
        ("nonce", 24),
    ];
    for (field, len) in cases {
        for found in [len - 2, len - 1, len + 2, 0] {
            let mut v = plain("a.bin", 5, vec![chunk(5)]);
            let short = "ab".repeat(len).chars().take(found).collect::<String>();
            let path = match field {
                "publicKey" | "signature" => field.to_owned(),
                _ => small_chunk_path(field),
            };
            let text = if field == "signature" {
                let mut s: Value = serde_json::from_str(&signed(v)).unwrap();
                s["signature"] = json!(short);
                serde_json::to_string(&s).unwrap()
            } else {
                if field == "publicKey" {
                    v["publicKey"] = json!(short);
                } else {
                    v["collections"][0]["items"][0]["chunks"][0][field] = json!(short);
                }
                signed(v)
            };
            assert_eq!(
                verify(&text).unwrap_err(),
                ManifestError::HexLength {
                    field: path,
                    expected: len,
                    found
                },
                "{field} of {found}"
            );
        }
    }
    // Right length, not lowercase hex.
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["items"][0]["chunks"][0]["key"] = json!(KEY.to_uppercase());
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::BadHex {
            field: small_chunk_path("key")
        }
    );
}

#[test]
fn sequence_must_be_a_safe_positive_integer() {
    let text = signed(plain("a.bin", 5, vec![chunk(5)]));
    for bad in ["1.0", "7.0", "1e3", "7e0", "\"7\"", "null", "true", "[7]"] {
        let t = text.replacen("\"sequence\":7", &format!("\"sequence\":{bad}"), 1);
        assert_eq!(
            verify(&t).unwrap_err(),
            ManifestError::WrongType {
                field: "sequence".into(),
                expected: "an integer"
            },
            "sequence {bad}"
        );
    }
    for bad in [json!(0), json!(1u64 << 53), json!(-1), json!(u64::MAX)] {
        let mut v = plain("a.bin", 5, vec![chunk(5)]);
        v["sequence"] = bad.clone();
        assert_eq!(
            verify_value(v).unwrap_err(),
            ManifestError::SequenceOutOfRange {
                value: bad.to_string()
            }
        );
    }
    for good in [1, MAX_SEQUENCE] {
        let mut v = plain("a.bin", 5, vec![chunk(5)]);
        v["sequence"] = json!(good);
        assert_eq!(verify_value(v).unwrap().sequence(), good);
    }
}

#[test]
fn other_integers_must_be_safe_integers() {
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["timestamp"] = json!(1u64 << 53);
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::NumberOutOfRange {
            field: "timestamp".into(),
            value: (1u64 << 53).to_string()
        }
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["items"][0]["size"] = json!(-5);
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::NumberOutOfRange {
            field: "collections[0].items[0].size".into(),
            value: "-5".into()
        }
    );
    let text = signed(plain("a.bin", 5, vec![chunk(5)]));
    let t = text.replacen("\"realSize\":5", "\"realSize\":5.0", 1);
    assert_eq!(
        verify(&t).unwrap_err(),
        ManifestError::WrongType {
            field: small_chunk_path("realSize"),
            expected: "an integer"
        }
    );
}

#[test]
fn unsafe_file_names() {
    for name in ["..", ".", "a/b", "/etc", "a\\b", "", "a\0b"] {
        let err = verify_value(plain(name, 5, vec![chunk(5)])).unwrap_err();
        assert!(
            matches!(
                &err,
                ManifestError::UnsafeFileName { field, name: n, .. }
                    if field == "collections[0].items[0].name" && n == name
            ),
            "{name:?}: {err:?}"
        );
    }
    // Dots inside a name, and names that only look like paths to other systems, are fine.
    for name in ["...", ".hidden", "a..b", "C:", "x:y"] {
        verify_value(plain(name, 5, vec![chunk(5)])).unwrap();
    }
}

#[test]
fn chunk_sizes() {
    assert_eq!(
        verify_value(plain("a.bin", 6, vec![chunk(5)])).unwrap_err(),
        ManifestError::SizeMismatch {
            field: "collections[0].items[0]".into(),
            name: "a.bin".into(),
            size: 6,
            sum: 5
        }
    );
    assert_eq!(
        verify_value(plain(
            "a.bin",
            1 << 21,
            vec![chunk(1 << 20), chunk(1 << 20)]
        ))
        .unwrap()
        .content()
        .unwrap()
        .collections[0]
            .items[0]
            .chunks
            .len(),
        2
    );
    assert_eq!(
        verify_value(plain("a.bin", (1 << 20) + 1, vec![chunk((1 << 20) + 1)])).unwrap_err(),
        ManifestError::ChunkTooLarge {
            field: small_chunk_path("realSize"),
            real_size: (1 << 20) + 1
        }
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["items"][0]["chunks"][0]["length"] = json!(1048591);
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::BadLength {
            field: small_chunk_path("length"),
            length: 1048591
        }
    );
    let mut v = plain("a.bin", 5, vec![chunk(5)]);
    v["collections"][0]["items"][0]["chunks"][0]["offset"] = json!(16);
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::BadOffset {
            field: small_chunk_path("offset"),
            offset: 16
        }
    );
    // An empty file has no chunks.
    verify_value(plain("empty", 0, vec![])).unwrap();
    assert!(matches!(
        verify_value(plain("empty", 1, vec![])),
        Err(ManifestError::SizeMismatch { sum: 0, .. })
    ));
}

#[test]
fn unknown_keys_are_allowed_and_signed() {
    let base = plain("a.bin", 5, vec![chunk(5)]);
    let mut v = base.clone();
    v["note"] = json!("é \u{1} \"x\"");
    v["collections"][0]["extra"] = json!([null, true, {"z": 1, "a": -2}]);
    let text = signed(v);
    verify(&text).unwrap();
    let tampered = text.replacen("\"z\":1", "\"z\":2", 1);
    assert_eq!(verify(&tampered).unwrap_err(), ManifestError::BadSignature);

    // A float in an unknown key is re-serialized as JavaScript writes it: 1.0 -> 1,
    // 1e21 -> 1e+21. The signer (JavaScript) signed that form.
    let unsigned = serde_json::to_string(&base).unwrap();
    let body = &unsigned[..unsigned.len() - 1];
    let message = format!("{body},\"f\":1,\"g\":1e+21,\"h\":0.5}}");
    let signature = hex::encode(identity().sign(message.as_bytes()));
    let text = format!("{body},\"f\":1.0,\"g\":1e21,\"h\":5e-1,\"signature\":\"{signature}\"}}");
    let m = verify(&text).unwrap();
    assert_eq!(m.as_str(), text);
}

#[test]
fn sorted_key_signatures_are_accepted_and_other_orders_refused() {
    let v = plain("a.bin", 5, vec![chunk(5)]);
    let message = sorted_text(&v);
    let signature = hex::encode(identity().sign(message.as_bytes()));
    // Received in reference order, signed in sorted order: accepted.
    let mut received = v.clone();
    received["signature"] = json!(signature);
    verify(&serde_json::to_string(&received).unwrap()).unwrap();
    // Signed over a third order: refused.
    let mut third = serde_json::Map::new();
    for key in ["timestamp", "publicKey", "collections", "sequence"] {
        third.insert(key.into(), v[key].clone());
    }
    let message = serde_json::to_string(&third).unwrap();
    let mut received = v;
    received["signature"] = json!(hex::encode(identity().sign(message.as_bytes())));
    assert_eq!(
        verify(&serde_json::to_string(&received).unwrap()).unwrap_err(),
        ManifestError::BadSignature
    );
}

/// Keys sorted at every level (all keys here are ASCII, where every sort order agrees).
fn sorted_text(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap()
}

fn private_text(plaintext: &str, key: &[u8; 32], tamper: bool) -> String {
    let nonce = [5u8; 24];
    let mut ciphertext = secretbox::seal(key, &nonce, plaintext.as_bytes());
    if tamper {
        ciphertext[20] ^= 1;
    }
    signed(json!({
        "publicKey": identity().public_key_hex(),
        "sequence": 3,
        "encrypted": true,
        "nonce": hex::encode(nonce),
        "ciphertext": hex::encode(ciphertext),
    }))
}

#[test]
fn private_manifests() {
    let key = [0x42; 32];
    let read_key = ReadKey::from_bytes(key);
    let good = r#"{"collections":[{"title":"t","items":[]}],"timestamp":1}"#;
    let m = verify(&private_text(good, &key, false)).unwrap();
    assert!(m.is_private());
    assert_eq!(m.decrypt(&read_key).unwrap().timestamp, 1);
    let expected = format!(
        "{{\"publicKey\":\"{}\",\"sequence\":3,{}",
        identity().public_key_hex(),
        &good[1..]
    );
    assert_eq!(m.decrypted_json(&read_key).unwrap(), expected);

    // A wrong key, and an altered (yet signed) ciphertext.
    assert_eq!(
        m.decrypt(&ReadKey::from_bytes([0x43; 32])).unwrap_err(),
        ManifestError::WrongReadKey
    );
    let altered = verify(&private_text(good, &key, true)).unwrap();
    assert_eq!(
        altered.decrypt(&read_key).unwrap_err(),
        ManifestError::WrongReadKey
    );

    // The decrypted content is validated like a plain manifest.
    let bad_name = r#"{"collections":[{"title":"t","items":[{"name":"..","size":0,"chunks":[]}]}],"timestamp":1}"#;
    let m = verify(&private_text(bad_name, &key, false)).unwrap();
    assert!(matches!(
        m.decrypt(&read_key),
        Err(ManifestError::UnsafeFileName { .. })
    ));
    assert!(matches!(
        m.decrypted_json(&read_key),
        Err(ManifestError::UnsafeFileName { .. })
    ));
    let dup = r#"{"collections":[],"timestamp":1,"timestamp":2}"#;
    let m = verify(&private_text(dup, &key, false)).unwrap();
    assert_eq!(
        m.decrypt(&read_key).unwrap_err(),
        ManifestError::DuplicateKey("timestamp".into())
    );
    let truncated = r#"{"collections":[],"#;
    let m = verify(&private_text(truncated, &key, false)).unwrap();
    assert!(matches!(
        m.decrypt(&read_key),
        Err(ManifestError::BadJson(_))
    ));

    // Structure of the encrypted form.
    let mut v: Value = serde_json::from_str(&private_text(good, &key, false)).unwrap();
    v["nonce"] = json!("00".repeat(23));
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::HexLength {
            field: "nonce".into(),
            expected: 48,
            found: 46
        }
    );
    let mut v: Value = serde_json::from_str(&private_text(good, &key, false)).unwrap();
    v["ciphertext"] = json!("00".repeat(15));
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::CiphertextTooShort { len: 15 }
    );
    let mut v: Value = serde_json::from_str(&private_text(good, &key, false)).unwrap();
    v["ciphertext"] = json!("abc");
    assert_eq!(
        verify_value(v).unwrap_err(),
        ManifestError::BadHex {
            field: "ciphertext".into()
        }
    );

    // A plain manifest has nothing to decrypt.
    let plain = verify_value(plain("a.bin", 5, vec![chunk(5)])).unwrap();
    assert_eq!(
        plain.decrypt(&read_key).unwrap_err(),
        ManifestError::NotPrivate
    );
}

#[test]
fn read_keys() {
    let key = ReadKey::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(key.as_bytes(), &[0xab; 32]);
    assert_eq!(key.to_hex().as_str(), "ab".repeat(32));
    assert_eq!(
        ReadKey::from_hex(&"ab".repeat(31)).unwrap_err(),
        ManifestError::HexLength {
            field: "readKey".into(),
            expected: 64,
            found: 62
        }
    );
    assert_eq!(
        ReadKey::from_hex(&"AB".repeat(32)).unwrap_err(),
        ManifestError::BadHex {
            field: "readKey".into()
        }
    );
    assert_ne!(
        ReadKey::generate().as_bytes(),
        ReadKey::generate().as_bytes()
    );
}

fn entry(name: &str, size: u64, sizes: &[u64]) -> FileEntry {
    FileEntry {
        name: name.into(),
        path: Vec::new(),
        size,
        chunks: sizes
            .iter()
            .map(|&real_size| Chunk {
                blob_id: megatorrent::id::BlobId::of(&real_size.to_be_bytes()),
                offset: 0,
                length: 1048592,
                key: [1; 32],
                nonce: [2; 12],
                real_size,
            })
            .collect(),
    }
}

#[test]
fn creation_refuses_what_verification_would_refuse() {
    let id = identity();
    let content = |e: FileEntry| ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![e],
        }],
        timestamp: 1,
    };
    let good = content(entry("a", 5, &[5]));
    for seq in [0, MAX_SEQUENCE + 1] {
        assert_eq!(
            create_manifest(&id, seq, &good).unwrap_err(),
            ManifestError::SequenceOutOfRange {
                value: seq.to_string()
            }
        );
        assert!(matches!(
            create_private_manifest(&id, seq, &good, &ReadKey::generate()),
            Err(ManifestError::SequenceOutOfRange { .. })
        ));
    }
    assert!(matches!(
        create_manifest(&id, 1, &content(entry("a/b", 5, &[5]))),
        Err(ManifestError::UnsafeFileName { .. })
    ));
    assert!(matches!(
        create_manifest(&id, 1, &content(entry("a", 4, &[5]))),
        Err(ManifestError::SizeMismatch { .. })
    ));
    let mut too_late = good.clone();
    too_late.timestamp = MAX_SEQUENCE + 1;
    assert!(matches!(
        create_manifest(&id, 1, &too_late),
        Err(ManifestError::NumberOutOfRange { .. })
    ));
}

#[test]
fn private_creation_round_trips_with_fresh_nonces() {
    let id = identity();
    let key = ReadKey::generate();
    let content = ManifestContent {
        collections: vec![Collection {
            title: "ø\n\"".into(),
            items: vec![entry("a", (1 << 20) + 3, &[1 << 20, 3])],
        }],
        timestamp: 99,
    };
    let a = create_private_manifest(&id, 4, &content, &key).unwrap();
    let b = create_private_manifest(&id, 4, &content, &key).unwrap();
    assert_ne!(a.as_str(), b.as_str(), "nonce reused");
    for m in [a, b] {
        let verified = SignedManifest::verify(m.as_bytes()).unwrap();
        assert!(verified.is_private());
        assert_eq!(verified.decrypt(&key).unwrap(), content);
    }
}

#[test]
fn file_entries_from_json() {
    let e = entry("a", 5, &[5]);
    assert_eq!(FileEntry::from_json(&e.to_json()).unwrap(), e);
    assert_eq!(
        FileEntry::from_json(&format!("\n{}\n", e.to_json())).unwrap(),
        e
    );
    let bad = e.to_json().replace("\"name\":\"a\"", "\"name\":\"..\"");
    assert_eq!(
        FileEntry::from_json(&bad).unwrap_err(),
        ManifestError::UnsafeFileName {
            field: "name".into(),
            name: "..".into(),
            reason: "a directory reference"
        }
    );
    let bad = e.to_json().replace("\"size\":5", "\"size\":6");
    assert!(matches!(
        FileEntry::from_json(&bad),
        Err(ManifestError::SizeMismatch {
            size: 6,
            sum: 5,
            ..
        })
    ));
    let bad = e.to_json().replace("\"nonce\":\"", "\"nonce\":\"0");
    assert_eq!(
        FileEntry::from_json(&bad).unwrap_err(),
        ManifestError::HexLength {
            field: "chunks[0].nonce".into(),
            expected: 24,
            found: 25
        }
    );
    assert!(matches!(
        FileEntry::from_json(&e.to_json()[..20]),
        Err(ManifestError::BadJson(_))
    ));
    assert_eq!(
        entry("a", 2, &[1, 2]).validate().unwrap_err(),
        ManifestError::SizeMismatch {
            field: String::new(),
            name: "a".into(),
            size: 2,
            sum: 3
        }
    );
}
