//! Sealing one chunk into a blob and opening it again (PROTOCOL.md 3).
//!
//! A chunk of at most [`CHUNK_SIZE`] bytes is padded with random bytes to exactly
//! [`CHUNK_SIZE`], then encrypted with ChaCha20-Poly1305 (IETF, 12-byte nonce, no associated
//! data) under a fresh random key and nonce. The blob is the ciphertext followed by the 16-byte
//! tag, so every blob is [`BLOB_LEN`] bytes and reveals nothing about the real size.

use crate::blob::BlobError;
use crate::id::BlobId;
use crate::manifest::{Chunk, BLOB_LEN, CHUNK_SIZE};
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce, Tag};
use rand::Rng;
use zeroize::Zeroizing;

/// Seal `plaintext` (at most [`CHUNK_SIZE`] bytes) into a new blob of exactly [`BLOB_LEN`]
/// bytes, returning the blob and the chunk that describes and opens it.
pub fn seal_chunk(plaintext: &[u8]) -> Result<(Vec<u8>, Chunk), BlobError> {
    if plaintext.len() > CHUNK_SIZE {
        return Err(BlobError::ChunkTooLarge {
            len: plaintext.len(),
        });
    }
    let mut buf = Vec::with_capacity(BLOB_LEN);
    buf.extend_from_slice(plaintext);
    let chunk = seal_in_place(&mut buf)?;
    Ok((buf, chunk))
}

/// Seal the plaintext held in `buf` in place: on success `buf` is the blob ([`BLOB_LEN`]
/// bytes). Encrypting in place avoids a second 1 MiB buffer per chunk; give `buf` a capacity of
/// [`BLOB_LEN`] to avoid a reallocation.
pub fn seal_in_place(buf: &mut Vec<u8>) -> Result<Chunk, BlobError> {
    let real_size = buf.len();
    if real_size > CHUNK_SIZE {
        return Err(BlobError::ChunkTooLarge { len: real_size });
    }
    // Random padding (not zeros) so a short last chunk does not leave known plaintext in it.
    buf.resize(CHUNK_SIZE, 0);
    rand::rng().fill_bytes(&mut buf[real_size..]);

    // A fresh key per chunk from the OS generator; the nonce is random too, as the protocol
    // says, though with single-use keys it could never repeat under the same key anyway.
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    crate::rng::try_fill(key.as_mut_slice()).map_err(BlobError::Random)?;
    crate::rng::try_fill(&mut nonce).map_err(BlobError::Random)?;

    // The cipher zeroizes its copy of the key when dropped.
    let cipher = ChaCha20Poly1305::new((&*key).into());
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), b"", (&mut buf[..]).into())
        .map_err(|_| BlobError::Seal)?;
    buf.extend_from_slice(&tag);

    Ok(Chunk {
        blob_id: BlobId::of(buf),
        offset: 0,
        length: BLOB_LEN as u64,
        key: *key,
        nonce,
        real_size: real_size as u64,
    })
}

/// Check a chunk's fixed fields (PROTOCOL.md 2.4 and 3): offset 0, length [`BLOB_LEN`],
/// real size at most [`CHUNK_SIZE`].
pub fn check_chunk(chunk: &Chunk) -> Result<(), BlobError> {
    let reason = if chunk.offset != 0 {
        "offset is not 0"
    } else if chunk.length != BLOB_LEN as u64 {
        "length is not 1048592"
    } else if chunk.real_size > CHUNK_SIZE as u64 {
        "realSize exceeds 1048576"
    } else {
        return Ok(());
    };
    Err(BlobError::BadChunk {
        blob_id: chunk.blob_id,
        reason,
    })
}

/// Open `blob` with `chunk`: check its SHA-256 against the chunk's blob id, then decrypt, and
/// return the chunk's `real_size` bytes of file content.
pub fn open_blob(blob: &[u8], chunk: &Chunk) -> Result<Vec<u8>, BlobError> {
    // Check before copying, so a wrong-sized input is refused without allocating for it.
    check_chunk(chunk)?;
    if blob.len() != BLOB_LEN {
        return Err(BlobError::Corrupt {
            blob_id: chunk.blob_id,
        });
    }
    let mut buf = blob.to_vec();
    open_in_place(&mut buf, chunk)?;
    Ok(buf)
}

/// Open the blob held in `buf` in place: check the chunk's fields and the blob's SHA-256
/// *before* decrypting, decrypt, and truncate `buf` to the chunk's real size. On error `buf`
/// holds unspecified bytes.
pub fn open_in_place(buf: &mut Vec<u8>, chunk: &Chunk) -> Result<(), BlobError> {
    check_chunk(chunk)?;
    let blob_id = chunk.blob_id;
    if buf.len() != BLOB_LEN || !blob_id.matches(buf) {
        return Err(BlobError::Corrupt { blob_id });
    }
    decrypt_hashed_in_place(buf, chunk)
}

/// Like [`open_in_place`] for a blob whose SHA-256 the caller has just checked against
/// `chunk.blob_id` on these very bytes (the downloader's fetcher does, on receipt): skips a
/// second hash pass. The chunk's fields and the length are still checked, and the AEAD tag
/// still authenticates the content.
pub(crate) fn decrypt_hashed_in_place(buf: &mut Vec<u8>, chunk: &Chunk) -> Result<(), BlobError> {
    check_chunk(chunk)?;
    let blob_id = chunk.blob_id;
    if buf.len() != BLOB_LEN {
        return Err(BlobError::Corrupt { blob_id });
    }
    debug_assert!(blob_id.matches(buf));
    let (body, tag) = buf.split_at_mut(CHUNK_SIZE);
    let tag = Tag::try_from(&*tag).map_err(|_| BlobError::Corrupt { blob_id })?;
    ChaCha20Poly1305::new((&chunk.key).into())
        .decrypt_inout_detached(&Nonce::from(chunk.nonce), b"", body.into(), &tag)
        .map_err(|_| BlobError::Decrypt { blob_id })?;
    // `real_size <= CHUNK_SIZE` was checked above, so this cannot truncate the u64.
    buf.truncate(chunk.real_size as usize);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open() {
        let (blob, chunk) = seal_chunk(b"hello").unwrap();
        assert_eq!(blob.len(), BLOB_LEN);
        assert!(chunk.blob_id.matches(&blob));
        assert_eq!(chunk.real_size, 5);
        assert_eq!(open_blob(&blob, &chunk).unwrap(), b"hello");
    }

    #[test]
    fn fresh_key_and_nonce_per_chunk() {
        let (a, ca) = seal_chunk(b"same").unwrap();
        let (b, cb) = seal_chunk(b"same").unwrap();
        assert_ne!(ca.key, cb.key);
        assert_ne!(ca.nonce, cb.nonce);
        assert_ne!(a, b);
    }

    #[test]
    fn refuses_oversized_plaintext() {
        assert!(matches!(
            seal_chunk(&vec![0u8; CHUNK_SIZE + 1]),
            Err(BlobError::ChunkTooLarge { len }) if len == CHUNK_SIZE + 1
        ));
    }

    #[test]
    fn checks_hash_before_decrypting() {
        let (mut blob, chunk) = seal_chunk(&[7u8; 1000]).unwrap();
        blob[5] ^= 1;
        assert!(matches!(
            open_blob(&blob, &chunk),
            Err(BlobError::Corrupt { .. })
        ));
        assert!(matches!(
            open_blob(&blob[..100], &chunk),
            Err(BlobError::Corrupt { .. })
        ));
    }

    #[test]
    fn wrong_key_or_nonce_fails_authentication() {
        let (blob, chunk) = seal_chunk(&[7u8; 1000]).unwrap();
        let mut bad = chunk.clone();
        bad.key[0] ^= 1;
        assert!(matches!(
            open_blob(&blob, &bad),
            Err(BlobError::Decrypt { .. })
        ));
        let mut bad = chunk;
        bad.nonce[11] ^= 1;
        assert!(matches!(
            open_blob(&blob, &bad),
            Err(BlobError::Decrypt { .. })
        ));
    }

    #[test]
    fn refuses_bad_chunk_fields() {
        let (blob, chunk) = seal_chunk(b"x").unwrap();
        for (field, reason) in [
            (0, "offset is not 0"),
            (1, "length is not 1048592"),
            (2, "realSize exceeds 1048576"),
        ] {
            let mut bad = chunk.clone();
            match field {
                0 => bad.offset = 1,
                1 => bad.length = CHUNK_SIZE as u64,
                _ => bad.real_size = CHUNK_SIZE as u64 + 1,
            }
            match open_blob(&blob, &bad) {
                Err(BlobError::BadChunk { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("expected BadChunk({reason}), got {other:?}"),
            }
        }
    }
}
