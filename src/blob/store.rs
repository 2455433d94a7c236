//! A content-addressed folder of blobs (and manifest parts).
//!
//! Every file in the folder is named by the 64 lowercase hex characters of its SHA-256. Ids are
//! parsed into [`BlobId`] before any path is built, so no input can name a path outside the
//! folder. Writes go to a temporary file in the same folder and are renamed into place, so a
//! reader never sees a partial item.

use crate::id::BlobId;
use crate::manifest::BLOB_LEN;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The largest item a store holds: a blob (manifest parts are at most 1 MiB).
pub const MAX_ITEM_LEN: usize = BLOB_LEN;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// File-system error on the store folder.
    #[error("blob store {path}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Content whose SHA-256 is not the id it was stored or requested under.
    #[error("blob {id}: content does not match its id (corrupt)")]
    HashMismatch {
        /// The expected id.
        id: BlobId,
    },
    /// An item larger than any blob.
    #[error("item of {len} bytes exceeds the {MAX_ITEM_LEN}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
}

/// A folder of content-addressed items.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Open (creating it if needed) the store folder `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The store folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the item `id` lives (whether or not it is there).
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    /// True when the store holds `id`.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.path_of(id).is_file()
    }

    /// True when the store holds a blob-sized item under `id` (its content is not checked).
    pub fn holds_blob(&self, id: &BlobId) -> bool {
        std::fs::metadata(self.path_of(id))
            .is_ok_and(|m| m.is_file() && m.len() == crate::manifest::BLOB_LEN as u64)
    }

    /// The item `id` opened for reading, with its length, or `None` when absent (or not a
    /// regular file): for streaming it out (the blob server) without building paths.
    pub fn open_item(&self, id: &BlobId) -> Result<Option<(std::fs::File, u64)>, StoreError> {
        let path = self.path_of(id);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let meta = file
            .metadata()
            .map_err(|source| StoreError::Io { path, source })?;
        let len = meta.len();
        Ok(meta.is_file().then_some((file, len)))
    }

    /// The stored bytes of `id`, or `None` when absent. The content is not re-hashed; use
    /// [`BlobStore::get_verified`] where a corrupt file must be caught.
    pub fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        use std::io::Read;
        let path = self.path_of(id);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        // Read at most one byte past the limit, so a huge file dropped into the folder is
        // refused without being loaded.
        let mut bytes = Vec::new();
        file.take(MAX_ITEM_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Io { path, source })?;
        if bytes.len() > MAX_ITEM_LEN {
            return Err(StoreError::TooLarge { len: bytes.len() });
        }
        Ok(Some(bytes))
    }

    /// Like [`BlobStore::get`], and checks that the content hashes to `id`.
    pub fn get_verified(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(id)? {
            Some(bytes) if !id.matches(&bytes) => Err(StoreError::HashMismatch { id: *id }),
            other => Ok(other),
        }
    }

    /// Store `bytes` under `id` after checking that they hash to it. Storing an item that is
    /// already there is a no-op.
    pub fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() > MAX_ITEM_LEN {
            return Err(StoreError::TooLarge { len: bytes.len() });
        }
        if !id.matches(bytes) {
            return Err(StoreError::HashMismatch { id: *id });
        }
        self.write_atomic(id, bytes)
    }

    /// Store `bytes` under their own SHA-256 and return that id.
    pub fn put_content(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        if bytes.len() > MAX_ITEM_LEN {
            return Err(StoreError::TooLarge { len: bytes.len() });
        }
        let id = BlobId::of(bytes);
        self.write_atomic(&id, bytes)?;
        Ok(id)
    }

    /// Store `bytes` under `id`, which the caller has just computed from these very bytes
    /// (sealing does): skips a second SHA-256 pass over every blob during ingest.
    pub(crate) fn put_hashed(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() > MAX_ITEM_LEN {
            return Err(StoreError::TooLarge { len: bytes.len() });
        }
        debug_assert!(id.matches(bytes));
        self.write_atomic(id, bytes)
    }

    /// Remove `id`; removing an absent item is not an error.
    pub fn remove(&self, id: &BlobId) -> Result<(), StoreError> {
        let path = self.path_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Every id held, in no particular order. Files whose names are not ids (temporary files,
    /// anything a user dropped there) are ignored.
    pub fn list(&self) -> Result<Vec<BlobId>, StoreError> {
        let io = |source| StoreError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| BlobId::from_hex(n).ok())
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn write_atomic(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(id);
        if path.is_file() {
            return Ok(());
        }
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        // No fsync per item: a torn file after a crash is caught by the hash check on read.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| io(crate::error::without_temp_path(e)))?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let id = store.put_content(b"hello").unwrap();
        assert!(store.contains(&id));
        assert_eq!(store.get_verified(&id).unwrap().unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![id]);
        store.put(&id, b"hello").unwrap();
        store.remove(&id).unwrap();
        assert!(store.get(&id).unwrap().is_none());
        store.remove(&id).unwrap();
    }

    #[test]
    fn refuses_mismatch_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let id = BlobId::of(b"right");
        assert!(matches!(
            store.put(&id, b"wrong"),
            Err(StoreError::HashMismatch { .. })
        ));
        assert!(!store.contains(&id));
        let id = store.put_content(b"right").unwrap();
        std::fs::write(store.path_of(&id), b"rot").unwrap();
        assert!(matches!(
            store.get_verified(&id),
            Err(StoreError::HashMismatch { .. })
        ));
        std::fs::write(dir.path().join("not-an-id"), b"x").unwrap();
        assert_eq!(store.list().unwrap(), vec![id]);
    }

    #[test]
    fn refuses_oversized_items() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let big = vec![0u8; MAX_ITEM_LEN + 1];
        assert!(matches!(
            store.put_content(&big),
            Err(StoreError::TooLarge { .. })
        ));
        // A file dropped into the folder under an id's name is not loaded whole.
        let id = BlobId::of(&big);
        std::fs::write(store.path_of(&id), &big).unwrap();
        assert!(matches!(store.get(&id), Err(StoreError::TooLarge { .. })));
    }
}
