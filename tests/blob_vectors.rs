//! The shared blob vector (tests/vectors/blobs/): a real blob made by the reference client and
//! its chunk entry. Reassembly must reproduce 300000 bytes where byte i = i mod 251.

use megatorrent::blob::{open_blob, reassemble, BlobError, BlobStore};
use megatorrent::id::{decode_hex_array, BlobId};
use megatorrent::manifest::{Chunk, FileEntry, BLOB_LEN};
use serde_json::Value;
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/blobs");

/// Parse the entry JSON by hand (the manifest codec lives elsewhere), strictly: every field
/// must be present with the right type.
fn entry_from_json(v: &Value) -> FileEntry {
    let u = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} not a u64"));
    let s = |v: &Value, k: &'static str| -> String {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} not a string"))
            .to_owned()
    };
    FileEntry {
        name: s(v, "name"),
        path: Vec::new(),
        size: u(v, "size"),
        chunks: v["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Chunk {
                blob_id: BlobId::from_hex(&s(c, "blobId")).unwrap(),
                offset: u(c, "offset"),
                length: u(c, "length"),
                key: decode_hex_array(&s(c, "key")).unwrap(),
                nonce: decode_hex_array(&s(c, "nonce")).unwrap(),
                real_size: u(c, "realSize"),
            })
            .collect(),
    }
}

fn vector() -> (FileEntry, Vec<u8>) {
    let json = std::fs::read_to_string(Path::new(DIR).join("small.entry.json")).unwrap();
    let entry = entry_from_json(&serde_json::from_str(&json).unwrap());
    assert_eq!(entry.chunks.len(), 1);
    let blob = std::fs::read(Path::new(DIR).join(entry.chunks[0].blob_id.to_hex())).unwrap();
    (entry, blob)
}

fn expected_plaintext() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn vector_blob_is_well_formed() {
    let (entry, blob) = vector();
    assert_eq!(entry.name, "small.bin");
    assert_eq!(entry.size, 300_000);
    assert_eq!(blob.len(), BLOB_LEN);
    assert!(entry.chunks[0].blob_id.matches(&blob));
}

#[test]
fn vector_opens_to_the_known_plaintext() {
    let (entry, blob) = vector();
    assert_eq!(
        open_blob(&blob, &entry.chunks[0]).unwrap(),
        expected_plaintext()
    );
}

#[test]
fn vector_reassembles_from_a_store() {
    let (entry, blob) = vector();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("blobs")).unwrap();
    store.put(&entry.chunks[0].blob_id, &blob).unwrap();
    let out = dir.path().join("small.bin");
    reassemble(&entry, &store, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), expected_plaintext());
}

#[test]
fn vector_with_wrong_key_or_nonce_fails_to_decrypt() {
    let (entry, blob) = vector();
    let id = entry.chunks[0].blob_id;
    let mut chunk = entry.chunks[0].clone();
    chunk.key[31] ^= 0x80;
    assert!(
        matches!(open_blob(&blob, &chunk), Err(BlobError::Decrypt { blob_id }) if blob_id == id)
    );
    let mut chunk = entry.chunks[0].clone();
    chunk.nonce[0] ^= 1;
    assert!(
        matches!(open_blob(&blob, &chunk), Err(BlobError::Decrypt { blob_id }) if blob_id == id)
    );
}

#[test]
fn vector_with_a_flipped_byte_is_corrupt() {
    let (entry, mut blob) = vector();
    let id = entry.chunks[0].blob_id;
    // One byte in the ciphertext, and one in the tag.
    for at in [1234, BLOB_LEN - 1] {
        blob[at] ^= 1;
        assert!(matches!(
            open_blob(&blob, &entry.chunks[0]),
            Err(BlobError::Corrupt { blob_id }) if blob_id == id
        ));
        blob[at] ^= 1;
    }

    // The same through a store: reported as corrupt, and no output file appears.
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("blobs")).unwrap();
    store.put(&id, &blob).unwrap();
    let path = store.path_of(&id);
    blob[99] ^= 1;
    std::fs::write(&path, &blob).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("small.bin");
    assert!(matches!(
        reassemble(&entry, &store, &out),
        Err(BlobError::Corrupt { blob_id }) if blob_id == id
    ));
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
}
