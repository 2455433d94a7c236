//! Property tests: whatever names, titles and values a manifest holds, the created text verifies
//! and reads back to the same content.

use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, Chunk, Collection, FileEntry, ManifestContent,
    ManifestError, ReadKey, SignedManifest, CHUNK_SIZE, MAX_SEQUENCE,
};
use proptest::prelude::*;

/// Any safe file name: no `/`, `\` or NUL, not empty, `.` or `..`; otherwise any Unicode
/// (control characters, quotes, U+2028, astral characters...).
fn file_name() -> impl Strategy<Value = String> {
    "[^/\\\\\u{0}]{1,12}".prop_filter("directory references", |n| n != "." && n != "..")
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 12]>(),
        0..=CHUNK_SIZE as u64,
    )
        .prop_map(|(id, key, nonce, real_size)| Chunk {
            blob_id: BlobId::from_bytes(id),
            offset: 0,
            length: (CHUNK_SIZE + 16) as u64,
            key,
            nonce,
            real_size,
        })
}

fn entry() -> impl Strategy<Value = FileEntry> {
    (file_name(), prop::collection::vec(chunk(), 0..4)).prop_map(|(name, chunks)| FileEntry {
        name,
        path: Vec::new(),
        size: chunks.iter().map(|c| c.real_size).sum(),
        chunks,
    })
}

fn content() -> impl Strategy<Value = ManifestContent> {
    (
        prop::collection::vec(
            (any::<String>(), prop::collection::vec(entry(), 0..3))
                .prop_map(|(title, items)| Collection { title, items }),
            0..3,
        ),
        0..=MAX_SEQUENCE,
    )
        .prop_map(|(mut collections, timestamp)| {
            // Two different files on one path make a manifest invalid (PathCollision): keep the
            // first file of each name (every entry here lies at the top of the download folder).
            let mut seen = std::collections::HashSet::new();
            for c in &mut collections {
                c.items.retain(|e| seen.insert(e.name.clone()));
            }
            ManifestContent {
                collections,
                timestamp,
            }
        })
}

/// Keys of every object, in the order of the text, are sorted (by UTF-16 code units, as
/// JavaScript's default sort orders them).
fn sorted_at_every_level(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let keys: Vec<Vec<u16>> = map.keys().map(|k| k.encode_utf16().collect()).collect();
            keys.windows(2).all(|w| w[0] < w[1]) && map.values().all(sorted_at_every_level)
        }
        serde_json::Value::Array(items) => items.iter().all(sorted_at_every_level),
        _ => true,
    }
}

/// The created text is sorted at every level, and its signature is over exactly that text
/// without the `signature` member (PROTOCOL.md 2.3).
fn check_canonical(text: &str) -> Result<(), TestCaseError> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    prop_assert!(sorted_at_every_level(&value), "not sorted: {}", text);
    let signature = value["signature"].as_str().unwrap();
    let signed = text.replacen(&format!(r#","signature":"{signature}""#), "", 1);
    prop_assert_eq!(signed.len() + 143, text.len());
    let key = ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(value["publicKey"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&hex::decode(signature).unwrap()).unwrap();
    prop_assert!(key.verify_strict(signed.as_bytes(), &signature).is_ok());
    Ok(())
}

proptest! {
    #[test]
    fn created_manifests_verify_and_read_back(
        seed in any::<[u8; 32]>(),
        sequence in 1..=MAX_SEQUENCE,
        content in content(),
    ) {
        let identity = Identity::from_seed(&seed);
        let created = create_manifest(&identity, sequence, &content).unwrap();
        let verified = SignedManifest::verify(created.as_bytes()).unwrap();
        prop_assert_eq!(verified.as_bytes(), created.as_bytes());
        prop_assert_eq!(verified.public_key(), identity.public_key_bytes());
        prop_assert_eq!(verified.sequence(), sequence);
        prop_assert_eq!(verified.content(), Some(&content));
        check_canonical(created.as_str())?;
        // Entries survive their own JSON form too.
        for item in content.collections.iter().flat_map(|c| &c.items) {
            prop_assert_eq!(&FileEntry::from_json(&item.to_json()).unwrap(), item);
        }
    }

    #[test]
    fn created_private_manifests_decrypt_to_their_content(
        seed in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
        sequence in 1..=MAX_SEQUENCE,
        content in content(),
    ) {
        let identity = Identity::from_seed(&seed);
        let key = ReadKey::from_bytes(key);
        let created = create_private_manifest(&identity, sequence, &content, &key).unwrap();
        let verified = SignedManifest::verify(created.as_bytes()).unwrap();
        prop_assert!(verified.is_private());
        check_canonical(created.as_str())?;
        prop_assert_eq!(verified.decrypt(&key).unwrap(), content);
        let plain: serde_json::Value =
            serde_json::from_str(&verified.decrypted_json(&key).unwrap()).unwrap();
        prop_assert_eq!(plain["sequence"].as_u64(), Some(sequence));
    }

    #[test]
    fn names_with_path_characters_are_refused(
        prefix in "[a-z]{0,3}",
        bad in prop::sample::select(vec!["/", "\\", "\u{0}"]),
        suffix in "[a-z]{0,3}",
    ) {
        let entry = FileEntry { name: format!("{prefix}{bad}{suffix}"), path: vec![], size: 0, chunks: vec![] };
        let is_unsafe = matches!(
            entry.validate(),
            Err(ManifestError::UnsafeFileName { .. })
        );
        prop_assert!(is_unsafe);
    }
}
