//! Fixed-size encrypted blobs (PROTOCOL.md section 3) and the store that holds them.
//!
//! - [`seal_chunk`] / [`open_blob`]: one chunk <-> one blob.
//! - [`ingest_file`] / [`ingest_reader`]: a file -> blobs in a [`BlobStore`] + its
//!   [`FileEntry`](crate::manifest::FileEntry), streamed.
//! - [`reassemble`]: a `FileEntry` + the store -> the file, verified, written atomically.

mod dest;
mod error;
mod ingest;
mod pipeline;
mod reassemble;
mod seal;
pub mod store;

pub use dest::destination;
pub use error::BlobError;
pub use ingest::{check_file_name, ingest_file, ingest_reader};
pub use reassemble::{check_entry, reassemble};
pub(crate) use seal::decrypt_hashed_in_place;
pub use seal::{check_chunk, open_blob, open_in_place, seal_chunk, seal_in_place};
pub use store::{BlobStore, StoreError, MAX_ITEM_LEN};
