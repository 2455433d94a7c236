//! Fixed-size encrypted blobs (PROTOCOL.md section 3) and the store that holds them.

pub mod store;

pub use store::{BlobStore, StoreError, MAX_ITEM_LEN};
