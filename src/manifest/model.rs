//! The manifest data model (PROTOCOL.md 2.1): collections of files, each file a list of chunks.

use crate::id::BlobId;
use std::fmt;

/// Plaintext bytes per chunk: files are cut into 1 MiB pieces.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Bytes of every blob: a padded 1 MiB chunk plus the 16-byte Poly1305 tag.
pub const BLOB_LEN: usize = CHUNK_SIZE + 16;

/// One encrypted 1 MiB piece of a file, stored as a blob.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    /// SHA-256 of the blob.
    pub blob_id: BlobId,
    /// Offset inside the blob; always 0 in protocol v5.
    pub offset: u64,
    /// Length of the blob; always [`BLOB_LEN`] in protocol v5.
    pub length: u64,
    /// ChaCha20-Poly1305 key of this chunk.
    pub key: [u8; 32],
    /// ChaCha20-Poly1305 nonce of this chunk.
    pub nonce: [u8; 12],
    /// Bytes of file content in this chunk (the rest is padding).
    pub real_size: u64,
}

impl fmt::Debug for Chunk {
    // The chunk key decrypts content: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("blob_id", &self.blob_id)
            .field("offset", &self.offset)
            .field("length", &self.length)
            .field("real_size", &self.real_size)
            .finish_non_exhaustive()
    }
}

/// A file of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// File name (never a path).
    pub name: String,
    /// File size in bytes: the sum of the chunks' `real_size`.
    pub size: u64,
    /// The file's chunks, in order.
    pub chunks: Vec<Chunk>,
}

/// A titled group of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Title shown to users.
    pub title: String,
    /// Files of the collection.
    pub items: Vec<FileEntry>,
}
