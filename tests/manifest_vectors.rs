//! The manifest test vectors (tests/vectors/manifests/, driven by index.json): each one is
//! accepted or refused as specified, with the specific reason.

use megatorrent::identity::Identity;
use megatorrent::manifest::{create_manifest, ManifestError, ReadKey, SignedManifest};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/manifests"
    ))
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap()
}

/// The reason each invalid vector must be refused with. A new invalid vector without an entry
/// here fails the test, so that its expected reason gets written down.
fn expected_error(file: &str) -> ManifestError {
    match file {
        "plain-small-badsig.json"
        | "plain-small-seqbump.json"
        | "plain-small-renamed.json"
        | "plain-small-reordered.json"
        | "plain-small-wrongkey.json" => ManifestError::BadSignature,
        "plain-small-nosig.json" => ManifestError::MissingField("signature".into()),
        other => panic!("no expected error recorded for invalid vector {other}"),
    }
}

#[test]
fn every_indexed_vector_behaves_as_specified() {
    let index: Value = serde_json::from_slice(&read("index.json")).unwrap();
    let cases = index["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "index lists {} cases", cases.len());
    let mut valid = 0;
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let bytes = read(file);
        let outcome = SignedManifest::verify(&bytes);
        if case["valid"].as_bool().unwrap() {
            let manifest =
                outcome.unwrap_or_else(|e| panic!("{file} must be accepted, got error: {e}"));
            valid += 1;
            // The signed text is the file without its trailing newline.
            assert_eq!(manifest.as_bytes(), bytes.trim_ascii(), "{file}");
            assert_eq!(
                manifest.public_key_hex(),
                "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
            );
            if let Some(read_key) = case.get("readKey") {
                assert!(manifest.is_private(), "{file}");
                assert!(manifest.content().is_none());
                let key = ReadKey::from_hex(read_key.as_str().unwrap()).unwrap();
                let expected = read(case["decrypted"].as_str().unwrap());
                let json = manifest.decrypted_json(&key).unwrap();
                assert_eq!(json.as_bytes(), expected.trim_ascii_end(), "{file}");
                let content = manifest.decrypt(&key).unwrap();
                assert_eq!(content.collections[0].items[0].name, "small.bin");
                assert_eq!(content.timestamp, 1_732_500_000_000);
            } else {
                assert!(!manifest.is_private(), "{file}");
                let content = manifest.content().unwrap();
                assert_eq!(content.collections[0].title, "Default");
            }
        } else {
            let err = outcome.expect_err(file);
            assert_eq!(err, expected_error(file), "{file}: {err}");
        }
    }
    assert_eq!(valid, 4);
}

#[test]
fn fields_of_the_reference_manifests() {
    let small = SignedManifest::verify(&read("plain-small.json")).unwrap();
    assert_eq!(small.sequence(), 1_732_500_000_001);
    let content = small.content().unwrap();
    let entry = &content.collections[0].items[0];
    assert_eq!(entry.size, 300_000);
    assert_eq!(entry.chunks.len(), 1);
    assert_eq!(
        entry.chunks[0].blob_id.to_hex(),
        "a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9"
    );
    assert_eq!(entry.chunks[0].real_size, 300_000);

    let three = SignedManifest::verify(&read("plain-three.json")).unwrap();
    let entry = &three.content().unwrap().collections[0].items[0];
    assert_eq!(entry.size, 2_500_000);
    let sizes: Vec<u64> = entry.chunks.iter().map(|c| c.real_size).collect();
    assert_eq!(sizes, [1_048_576, 1_048_576, 402_848]);
}

#[test]
fn the_blob_vector_entry_matches_the_manifest() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/blobs/small.entry.json"
    ))
    .unwrap();
    let entry = megatorrent::manifest::FileEntry::from_json(&text).unwrap();
    let small = SignedManifest::verify(&read("plain-small.json")).unwrap();
    assert_eq!(&small.content().unwrap().collections[0].items[0], &entry);
    // to_json writes keys sorted, as the sorted vector holds the entry.
    let sorted = String::from_utf8(read("plain-small-sorted.json")).unwrap();
    let json = entry.to_json();
    assert!(json.starts_with(r#"{"chunks":[{"blobId":"#), "{json}");
    assert!(sorted.contains(&format!(r#"{{"items":[{json}],"title":"Default"}}"#)));
    assert_eq!(
        megatorrent::manifest::FileEntry::from_json(&json).unwrap(),
        entry
    );
}

#[test]
fn create_reproduces_the_sorted_vector() {
    let identity = Identity::from_seed(&[1; 32]);
    let reference = SignedManifest::verify(&read("plain-small.json")).unwrap();
    // The vectors were made with seed 0x01 * 32 and Ed25519 is deterministic: creating the same
    // content gives the sorted vector (keys sorted at every level, PROTOCOL.md 2.3) byte for byte,
    // signature included.
    assert_eq!(identity.public_key_bytes(), reference.public_key());
    let created = create_manifest(
        &identity,
        reference.sequence(),
        reference.content().unwrap(),
    )
    .unwrap();
    assert_eq!(
        created.as_str(),
        std::str::from_utf8(&read("plain-small-sorted.json"))
            .unwrap()
            .trim_ascii()
    );

    // plain-three holds three chunks: its content created anew is the same text with keys sorted.
    let three = SignedManifest::verify(&read("plain-three.json")).unwrap();
    let created = create_manifest(&identity, three.sequence(), three.content().unwrap()).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(three.as_str()).unwrap();
    let mut created_value: serde_json::Value = serde_json::from_str(created.as_str()).unwrap();
    value.as_object_mut().unwrap().remove("signature");
    created_value.as_object_mut().unwrap().remove("signature");
    assert_eq!(created_value, value);
    assert!(created
        .as_str()
        .starts_with(r#"{"collections":[{"items":[{"chunks":"#));
    assert_eq!(SignedManifest::verify(created.as_bytes()).unwrap(), created);
}

#[test]
fn a_wrong_read_key_is_refused() {
    let manifest = SignedManifest::verify(&read("private-small.json")).unwrap();
    let wrong = ReadKey::from_bytes([0x34; 32]);
    assert_eq!(manifest.decrypt(&wrong), Err(ManifestError::WrongReadKey));
    assert_eq!(
        manifest.decrypted_json(&wrong),
        Err(ManifestError::WrongReadKey)
    );
}

#[test]
fn the_expected_signer_is_checked() {
    let bytes = read("plain-small.json");
    let reference_key = SignedManifest::verify(&bytes).unwrap().public_key();
    assert!(SignedManifest::verify_signed_by(&bytes, &reference_key).is_ok());
    let other = Identity::from_seed(&[2; 32]).public_key_bytes();
    assert!(matches!(
        SignedManifest::verify_signed_by(&bytes, &other),
        Err(ManifestError::SignerMismatch { .. })
    ));
}

#[test]
fn debug_output_hides_chunk_keys() {
    let manifest = SignedManifest::verify(&read("plain-small.json")).unwrap();
    let debug = format!("{manifest:?}");
    assert!(debug.contains("a38087dffe58"), "{debug}");
    assert!(!debug.contains("2d24f0c394ef"), "chunk key leaked: {debug}");
    let key = ReadKey::from_bytes([0x33; 32]);
    assert!(!format!("{key:?}").contains("33"));
}
