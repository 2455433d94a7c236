//! Signed manifests (PROTOCOL.md section 2).

pub mod model;

pub use model::{Chunk, Collection, FileEntry, BLOB_LEN, CHUNK_SIZE};
