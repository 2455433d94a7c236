//! The one error type of the blob layer.

use crate::blob::store::StoreError;
use crate::id::BlobId;
use crate::manifest::CHUNK_SIZE;
use std::path::PathBuf;

/// Why sealing, opening, ingesting or reassembling blobs failed. Every variant names the blob
/// or file concerned; none carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The store does not hold a blob the file entry needs.
    #[error("blob {blob_id} is missing from the store")]
    Missing {
        /// The absent blob.
        blob_id: BlobId,
    },
    /// A blob whose bytes do not hash to its id (or are not exactly one blob long).
    #[error("blob {blob_id} is corrupt: its content does not match its id")]
    Corrupt {
        /// The damaged blob.
        blob_id: BlobId,
    },
    /// A blob that hashes correctly but fails authentication under the chunk's key and nonce.
    #[error("blob {blob_id} does not decrypt: wrong chunk key or nonce")]
    Decrypt {
        /// The blob that would not open.
        blob_id: BlobId,
    },
    /// A chunk description that breaks PROTOCOL.md 2.4 / 3 (offset, length or real size).
    #[error("chunk for blob {blob_id} is invalid: {reason}")]
    BadChunk {
        /// The chunk's blob.
        blob_id: BlobId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The chunks' real sizes do not add up to the entry's size.
    #[error("file entry {name:?}: chunks hold {actual} bytes but the entry says {declared}")]
    SizeMismatch {
        /// The entry's file name.
        name: String,
        /// The `size` the entry declares.
        declared: u64,
        /// What its chunks add up to (or what was written).
        actual: u64,
    },
    /// More plaintext than one chunk holds was given to seal.
    #[error("chunk of {len} bytes exceeds the {CHUNK_SIZE}-byte chunk size")]
    ChunkTooLarge {
        /// The plaintext length.
        len: usize,
    },
    /// A file name that is not a plain name (PROTOCOL.md 2.4).
    #[error("unsafe file name {name:?}: {reason}")]
    UnsafeName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A folder a downloaded file goes into exists as something else (a file, or a symbolic
    /// link, which is never followed).
    #[error("{path} is {found}, not a folder; refusing to write through it")]
    NotAFolder {
        /// The path that should be a folder.
        path: PathBuf,
        /// What is there instead.
        found: &'static str,
    },
    /// File-system error on an input or output file.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Error reading the content being ingested from a caller's reader.
    #[error("reading {name:?}: {source}")]
    Read {
        /// The name the content is ingested under.
        name: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Error from the blob store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed, so no key could be made.
    #[error("random number generator failed: {0}")]
    Random(rand::rngs::SysError),
    /// The AEAD refused to encrypt (it only does so for inputs far larger than a chunk).
    #[error("chunk encryption failed")]
    Seal,
}
