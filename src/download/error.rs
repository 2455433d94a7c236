//! The one error type of the download layer.

use std::path::PathBuf;

use crate::blob::{BlobError, StoreError};
use crate::id::BlobId;
use crate::manifest::ManifestError;

/// Why a download failed. Never carries key material. Every blob verified before the failure
/// stays in the store, so running the download again fetches only what is still missing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The manifest is private and no read key was given.
    #[error("the channel is private: its read key is needed to read the manifest")]
    ReadKeyRequired,
    /// The read key given does not open the private manifest.
    #[error("the read key does not open this private manifest (wrong key)")]
    WrongReadKey,
    /// The manifest (or its content) is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// Two different files of the manifest have the same name, so both cannot be written.
    #[error("the manifest holds two different files named {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Two jobs write different files to one destination.
    #[error("two different files are to be written to {path}")]
    ConflictingJobs {
        /// The destination.
        path: PathBuf,
    },
    /// A different file is already at a destination and `overwrite` is off; nothing was
    /// written there.
    #[error("{path} already exists with different content (not replaced)")]
    DestinationExists {
        /// The file in the way.
        path: PathBuf,
    },
    /// Some blobs could not be fetched from any peer found.
    #[error("{missing} blob(s) could not be fetched from any peer (first: {first}); {peers_tried} peer(s) tried")]
    Unavailable {
        /// How many blobs are still missing.
        missing: usize,
        /// One of them.
        first: BlobId,
        /// How many peers were tried.
        peers_tried: usize,
    },
    /// Checking, decrypting or writing a file failed.
    #[error(transparent)]
    Blob(BlobError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// File-system error on a destination folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A background task died (panicked or was cancelled).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl From<BlobError> for DownloadError {
    fn from(e: BlobError) -> Self {
        match e {
            // Lifted, so callers match one variant whoever noticed the file in the way.
            BlobError::DestinationExists { path } => DownloadError::DestinationExists { path },
            BlobError::Store(e) => DownloadError::Store(e),
            e => DownloadError::Blob(e),
        }
    }
}

impl From<tokio::task::JoinError> for DownloadError {
    fn from(e: tokio::task::JoinError) -> Self {
        DownloadError::Task(e.to_string())
    }
}
