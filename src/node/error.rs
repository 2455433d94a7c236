//! The error type of publishing and downloading.

use crate::blob::{BlobError, StoreError};
use crate::dht::DhtError;
use crate::download::DownloadError;
use crate::manifest::ManifestError;
use crate::peer::PeerError;

/// Why a publish or a download failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The manifest (or its content) is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// Two different files of the manifest have the same name, so both cannot be written.
    #[error("the manifest holds two different files named {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The download failed.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Nothing to publish.
    #[error("no file to publish")]
    NoFiles,
    /// Ingesting, checking or reassembling a file failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The DHT refused or failed.
    #[error("DHT: {0}")]
    Dht(#[from] DhtError),
    /// The blob server could not start.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The publisher's sequence record could not be read or written.
    #[error("sequence state {path}: {reason}")]
    State {
        /// The state file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// File-system error outside the store (output folder, demo files).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A background task died (panicked or was cancelled).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for NodeError {
    fn from(e: tokio::task::JoinError) -> Self {
        NodeError::Task(e.to_string())
    }
}
