//! Every entry of the BEP 44 test vectors (tests/vectors/bep44.json).

use megatorrent::dht::bep44::{immutable_target, mutable_target, signed_data, MutableRecord};
use megatorrent::identity::{verify_signature, Identity};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/bep44.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// Strip the bencoding `<len>:` of a byte string.
fn unbencode(s: &str) -> &[u8] {
    let (len, rest) = s.split_once(':').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), rest.len());
    rest.as_bytes()
}

#[test]
fn from_spec_entries() {
    let v = vectors();
    let entries = v["from_spec"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut mutable = 0;
    for e in entries {
        let target = hex::decode(e["target"].as_str().unwrap()).unwrap();
        let bencoded = e["value_bencoded"].as_str().unwrap();
        if e.get("publicKey").is_none() {
            assert_eq!(immutable_target(bencoded.as_bytes()).to_vec(), target);
            continue;
        }
        mutable += 1;
        let key: [u8; 32] = arr(&e["publicKey"]);
        let sig: [u8; 64] = arr(&e["signature"]);
        let salt = hex::decode(e["salt_hex"].as_str().unwrap()).unwrap();
        let seq = e["seq"].as_i64().unwrap();
        let value = unbencode(bencoded);
        let data = signed_data(seq, value, &salt);
        assert_eq!(data, e["signed_data"].as_str().unwrap().as_bytes());
        assert!(verify_signature(&key, &data, &sig));
        let rec = MutableRecord::verified(key, seq, value, &salt, sig).unwrap();
        assert_eq!(rec.target().to_vec(), target);
        assert_eq!(mutable_target(&key, &salt).to_vec(), target);
        // mainline agrees on the target.
        assert_eq!(rec.to_mainline().target().as_bytes().to_vec(), target);
        // A wrong seq does not verify.
        assert!(MutableRecord::verified(key, seq + 1, value, &salt, sig).is_err());
    }
    assert_eq!(mutable, 2);
}

#[test]
fn computed_entries_reproduced_exactly() {
    let v = vectors();
    let entries = v["computed"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        let seed: [u8; 32] = arr(&e["seed"]);
        let id = Identity::from_seed(&seed);
        assert_eq!(id.public_key_hex(), e["publicKey"].as_str().unwrap());
        let salt = hex::decode(e["salt_hex"].as_str().unwrap()).unwrap();
        let value = hex::decode(e["value_hex"].as_str().unwrap()).unwrap();
        let seq = e["seq"].as_i64().unwrap();
        assert_eq!(
            hex::encode(signed_data(seq, &value, &salt)),
            e["signed_data_hex"].as_str().unwrap()
        );
        let rec = MutableRecord::sign(&id, seq, &value, &salt).unwrap();
        assert_eq!(
            hex::encode(rec.signature()),
            e["signature"].as_str().unwrap()
        );
        assert_eq!(hex::encode(rec.target()), e["target"].as_str().unwrap());
        // mainline signs the same bytes when the salt is non-empty, and sees no salt when empty.
        let ml = rec.to_mainline();
        assert_eq!(
            hex::encode(ml.target().as_bytes()),
            e["target"].as_str().unwrap()
        );
        assert_eq!(ml.salt().is_none(), salt.is_empty());
    }
}
