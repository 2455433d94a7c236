//! The session's state folder: `session.json` (subscriptions with their settings, highest
//! sequence found and sync record; published channels with their file index), the DHT
//! client's `dht-seen.json` (highest sequence seen per key and salt), and `blobs/`.
//!
//! Written with [`crate::state_file`] (tmp, fsync, rename, fsync folder) on a blocking
//! thread. The file holds read keys and chunk keys, so it is owner-only like any state file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::{RemovedFiles, SessionError};

/// The state file's name inside the state folder.
pub const STATE_FILE: &str = "session.json";
/// Format version of the state file.
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub version: u32,
    #[serde(default)]
    pub subscriptions: Vec<SubRecord>,
    #[serde(default)]
    pub published: Vec<PubRecord>,
}

/// One subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubRecord {
    /// Public key, hex.
    pub public_key: String,
    pub salt: String,
    /// Read key, hex (secret: the file is owner-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_key: Option<String>,
    pub save_path: PathBuf,
    #[serde(default)]
    pub label: String,
    /// Seconds; None: the session's default.
    #[serde(default)]
    pub poll_interval: Option<u64>,
    pub auto_download: bool,
    #[serde(default)]
    pub removed_files: RemovedFiles,
    /// Highest sequence found.
    #[serde(default)]
    pub last_sequence: u64,
    /// What is on disk.
    #[serde(default)]
    pub synced: SyncRecord,
}

/// What a subscription last wrote into its save folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SyncRecord {
    /// The version fully on disk (0: none).
    pub sequence: u64,
    /// Every file we wrote (or found identical), by `/`-separated path in the save folder.
    pub files: BTreeMap<String, FileRecord>,
    /// Blobs fetched from peers over the life of this subscription.
    #[serde(default)]
    pub blobs_fetched_total: u64,
}

/// A file as we wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub size: u64,
    /// SHA-256 over the entry's blob ids: equal fingerprints, same content in the channel.
    pub fingerprint: String,
    /// SHA-256 of the content we wrote (hex): a different local hash is a user's change.
    pub hash: String,
    /// Modification time (ns since the epoch) when we recorded it: when size and mtime still
    /// match, the file is not read again to check it.
    pub mtime_ns: u128,
}

/// One published channel and its file index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PubRecord {
    pub public_key: String,
    pub salt: String,
    pub title: String,
    /// Last sequence published.
    pub sequence: u64,
    /// Files of the last version, in order.
    pub files: Vec<IndexEntry>,
    /// The identity file it was published with, if given: the next session resumes
    /// re-putting the record (the secret itself is never stored here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    /// The signed manifest of the last version (what is re-put).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// A published file: its content hash and size, and the entry (blob ids, keys, nonces)
/// reused while the content does not change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    /// Path in the channel, `/`-separated.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub hash: String,
    /// The FileEntry JSON (PROTOCOL.md 2.1).
    pub entry: String,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Load from the state folder (empty when there is no state file yet).
    pub fn load(dir: &Path) -> Result<State, SessionError> {
        let path = Self::path(dir);
        match crate::state_file::read(&path)? {
            None => Ok(State {
                version: VERSION,
                ..State::default()
            }),
            Some(bytes) => {
                let state: State = serde_json::from_slice(&bytes)
                    .map_err(|e| SessionError::State(format!("{}: {e}", path.display())))?;
                if state.version > VERSION {
                    return Err(SessionError::State(format!(
                        "{}: format {} is newer than this program's {VERSION}",
                        path.display(),
                        state.version
                    )));
                }
                Ok(state)
            }
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, SessionError> {
        let mut s = self.clone();
        s.version = VERSION;
        serde_json::to_vec_pretty(&s).map_err(|e| SessionError::State(e.to_string()))
    }

    pub fn sub(&self, key: &[u8; 32], salt: &str) -> Option<&SubRecord> {
        let k = hex::encode(key);
        self.subscriptions
            .iter()
            .find(|s| s.public_key == k && s.salt == salt)
    }

    pub fn sub_mut(&mut self, key: &[u8; 32], salt: &str) -> Option<&mut SubRecord> {
        let k = hex::encode(key);
        self.subscriptions
            .iter_mut()
            .find(|s| s.public_key == k && s.salt == salt)
    }

    pub fn publ(&self, key: &[u8; 32], salt: &str) -> Option<&PubRecord> {
        let k = hex::encode(key);
        self.published
            .iter()
            .find(|s| s.public_key == k && s.salt == salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_newer_format_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path()).unwrap();
        assert!(s.subscriptions.is_empty());
        s.subscriptions.push(SubRecord {
            public_key: "ab".repeat(32),
            salt: "x".into(),
            read_key: None,
            save_path: "/tmp/out".into(),
            label: "l".into(),
            poll_interval: Some(5),
            auto_download: true,
            removed_files: RemovedFiles::Keep,
            last_sequence: 7,
            synced: SyncRecord::default(),
        });
        crate::state_file::write(&State::path(dir.path()), &s.to_bytes().unwrap()).unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back.sub(&[0xab; 32], "x").unwrap().last_sequence, 7);
        assert!(back.sub(&[0xab; 32], "").is_none());
        std::fs::write(State::path(dir.path()), br#"{"version":99}"#).unwrap();
        assert!(matches!(
            State::load(dir.path()),
            Err(SessionError::State(_))
        ));
        std::fs::write(State::path(dir.path()), b"{").unwrap();
        assert!(matches!(
            State::load(dir.path()),
            Err(SessionError::State(_))
        ));
    }
}
