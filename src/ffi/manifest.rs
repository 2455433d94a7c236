//! Manifest conversions between the Rust core and the bridge's plain structs.

use zeroize::Zeroizing;

use super::bridge::{ChunkData, CollectionData, FileData, ManifestData};
use super::FfiError;
use crate::id::BlobId;
use crate::identity::Identity;
use crate::manifest::{
    create_manifest, Chunk, Collection, FileEntry, ManifestContent, ReadKey, SignedManifest,
};

/// A verified manifest as plain data. `content` is the plain content, or the decrypted content of
/// a private manifest (None: a private manifest left sealed).
pub(crate) fn to_data(
    manifest: &SignedManifest,
    content: Option<&ManifestContent>,
) -> ManifestData {
    ManifestData {
        public_key: manifest.public_key_hex(),
        sequence: manifest.sequence(),
        encrypted: manifest.is_private(),
        timestamp: content.map_or(0, |c| c.timestamp),
        collections: content.map_or_else(Vec::new, |c| {
            c.collections.iter().map(collection_to_data).collect()
        }),
        text: manifest.as_str().to_owned(),
    }
}

fn collection_to_data(collection: &Collection) -> CollectionData {
    CollectionData {
        title: collection.title.clone(),
        items: collection.items.iter().map(file_to_data).collect(),
    }
}

fn file_to_data(file: &FileEntry) -> FileData {
    FileData {
        name: file.name.clone(),
        size: file.size,
        chunks: file.chunks.iter().map(chunk_to_data).collect(),
    }
}

fn chunk_to_data(chunk: &Chunk) -> ChunkData {
    ChunkData {
        blob_id: chunk.blob_id.to_hex(),
        offset: chunk.offset,
        length: chunk.length,
        key: chunk.key.to_vec(),
        nonce: chunk.nonce.to_vec(),
        real_size: chunk.real_size,
    }
}

/// The content described by `data` (from C++), checked field by field.
pub(crate) fn content_from_data(data: &ManifestData) -> Result<ManifestContent, FfiError> {
    let collections = data
        .collections
        .iter()
        .enumerate()
        .map(|(c, collection)| {
            let items = collection
                .items
                .iter()
                .enumerate()
                .map(|(i, file)| file_from_data(file, &format!("collections[{c}].items[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(Collection {
                title: collection.title.clone(),
                items,
            })
        })
        .collect::<Result<_, FfiError>>()?;
    Ok(ManifestContent {
        collections,
        timestamp: data.timestamp,
    })
}

fn file_from_data(file: &FileData, at: &str) -> Result<FileEntry, FfiError> {
    let chunks = file
        .chunks
        .iter()
        .enumerate()
        .map(|(k, chunk)| chunk_from_data(chunk, &format!("{at}.chunks[{k}]")))
        .collect::<Result<_, _>>()?;
    Ok(FileEntry {
        name: file.name.clone(),
        path: Vec::new(),
        size: file.size,
        chunks,
    })
}

fn chunk_from_data(chunk: &ChunkData, at: &str) -> Result<Chunk, FfiError> {
    let invalid = |what: &str| FfiError::InvalidArgument(format!("{at}: {what}"));
    let blob_id =
        BlobId::from_hex(&chunk.blob_id).map_err(|e| invalid(&format!("blob id: {e}")))?;
    let key: [u8; 32] = chunk
        .key
        .as_slice()
        .try_into()
        .map_err(|_| invalid("key must be 32 bytes"))?;
    let nonce: [u8; 12] = chunk
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| invalid("nonce (iv) must be 12 bytes"))?;
    Ok(Chunk {
        blob_id,
        offset: chunk.offset,
        length: chunk.length,
        key,
        nonce,
        real_size: chunk.real_size,
    })
}

/// Verifies a manifest (PROTOCOL.md 2.3, 2.4).
pub(crate) fn verify(json: &[u8]) -> Result<ManifestData, FfiError> {
    let manifest = SignedManifest::verify(json)?;
    Ok(to_data(&manifest, manifest.content()))
}

/// Verifies a private manifest and decrypts it with `read_key` (32 bytes).
pub(crate) fn decrypt(json: &[u8], read_key: &[u8]) -> Result<ManifestData, FfiError> {
    let key: [u8; 32] = read_key
        .try_into()
        .map_err(|_| FfiError::InvalidArgument("read key must be 32 bytes".into()))?;
    let key = ReadKey::from_bytes(key);
    let manifest = SignedManifest::verify(json)?;
    let content = manifest.decrypt(&key)?;
    Ok(to_data(&manifest, Some(&content)))
}

/// The identity for a secret key from C++ (32-byte seed or libsodium's 64-byte secret key),
/// checked against the public key C++ claims (32 raw bytes or 64 hex characters; may be empty).
pub(crate) fn identity(secret: &[u8], public_key: &[u8]) -> Result<Identity, FfiError> {
    let identity = Identity::from_secret_bytes(secret)
        .map_err(|e| FfiError::InvalidArgument(format!("private key: {e}")))?;
    if !public_key.is_empty() {
        let claimed: Zeroizing<Vec<u8>> = Zeroizing::new(match public_key.len() {
            32 => public_key.to_vec(),
            64 => hex::decode(public_key)
                .map_err(|_| FfiError::InvalidArgument("public key is not hex".into()))?,
            n => {
                return Err(FfiError::InvalidArgument(format!(
                    "public key must be 32 bytes or 64 hex characters, got {n} bytes"
                )))
            }
        });
        if claimed.as_slice() != identity.public_key_bytes() {
            return Err(FfiError::InvalidArgument(
                "public key does not match the private key".into(),
            ));
        }
    }
    Ok(identity)
}

/// Signs `data`'s content as a new plain manifest of `identity`.
pub(crate) fn create(
    identity: &Identity,
    sequence: u64,
    data: &ManifestData,
) -> Result<SignedManifest, FfiError> {
    Ok(create_manifest(
        identity,
        sequence,
        &content_from_data(data)?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(key_len: usize, blob_id: &str) -> ManifestData {
        ManifestData {
            timestamp: 5,
            collections: vec![CollectionData {
                title: "t".into(),
                items: vec![FileData {
                    name: "f".into(),
                    size: 10,
                    chunks: vec![ChunkData {
                        blob_id: blob_id.into(),
                        offset: 0,
                        length: crate::manifest::BLOB_LEN as u64,
                        key: vec![1; key_len],
                        nonce: vec![2; 12],
                        real_size: 10,
                    }],
                }],
            }],
            ..ManifestData::default()
        }
    }

    #[test]
    fn create_then_verify_round_trips() {
        let identity = Identity::from_seed(&[9; 32]);
        let data = content(32, &"ab".repeat(32));
        let created = create(&identity, 3, &data).unwrap();
        let back = verify(created.as_bytes()).unwrap();
        assert_eq!(back.sequence, 3);
        assert_eq!(back.public_key, identity.public_key_hex());
        assert_eq!(back.collections[0].items[0].chunks[0].key, vec![1; 32]);
        assert_eq!(back.text, created.as_str());
    }

    #[test]
    fn bad_fields_from_cpp_are_typed_errors() {
        let identity = Identity::from_seed(&[9; 32]);
        let err = create(&identity, 3, &content(31, &"ab".repeat(32))).unwrap_err();
        assert!(
            matches!(err, FfiError::InvalidArgument(ref m) if m.contains("chunks[0]: key")),
            "{err}"
        );
        let err = create(&identity, 3, &content(32, "xyz")).unwrap_err();
        assert!(matches!(err, FfiError::InvalidArgument(ref m) if m.contains("blob id")));
        let err = create(&identity, 0, &content(32, &"ab".repeat(32))).unwrap_err();
        assert!(matches!(err, FfiError::Manifest(_)), "{err}");
    }

    #[test]
    fn identity_checks_the_claimed_public_key() {
        let seed = [9u8; 32];
        let public = Identity::from_seed(&seed).public_key_bytes();
        assert!(identity(&seed, &public).is_ok());
        assert!(identity(&seed, hex::encode(public).as_bytes()).is_ok());
        assert!(identity(&seed, &[]).is_ok());
        let err = identity(&seed, &[0; 32]).unwrap_err();
        assert!(matches!(err, FfiError::InvalidArgument(ref m) if m.contains("does not match")));
        assert!(matches!(
            identity(&seed, &[0; 5]),
            Err(FfiError::InvalidArgument(_))
        ));
        assert!(matches!(
            identity(&[1; 7], &[]),
            Err(FfiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn decrypt_needs_a_32_byte_key() {
        let Err(err) = decrypt(b"{}", &[0; 31]) else {
            panic!("a 31-byte read key was accepted")
        };
        assert!(matches!(err, FfiError::InvalidArgument(ref m) if m.contains("32 bytes")));
    }
}
