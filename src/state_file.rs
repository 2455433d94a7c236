//! The one way state files are written (the DHT client's seen sequences, the publisher's
//! sequences, the session's state folder): a temporary file in the same folder, fsync,
//! rename over the old file, fsync of the folder. A crash (even SIGKILL or power loss)
//! leaves either the old file or the new one, never a torn one.
//!
//! Writing blocks on the disk: async callers use [`write_async`], which runs it on a
//! blocking thread so no async worker waits on fsync.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a state file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The blocking task that wrote it died.
    #[error("{path}: write task failed: {reason}")]
    Task {
        /// The state file.
        path: PathBuf,
        /// Why the task died.
        reason: String,
    },
}

/// Replace `path` with `bytes` atomically and durably (see the module docs). The file is
/// readable by its owner only: state files may hold read keys and chunk keys.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let err = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // NamedTempFile is created 0600 and removed if anything below fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(".state-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    // The rename is durable only once the folder's entry is.
    sync_dir(dir).map_err(err)?;
    Ok(())
}

/// [`write`] on a blocking thread.
pub async fn write_async(path: PathBuf, bytes: Vec<u8>) -> Result<(), StateFileError> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || write(&p, &bytes))
        .await
        .map_err(|e| StateFileError::Task {
            path,
            reason: e.to_string(),
        })?
}

/// Read `path`; `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, StateFileError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for sync on Windows; the rename is already journaled.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        assert!(read(&path).unwrap().is_none());
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("s.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/s.json");
        assert!(matches!(write(&path, b"x"), Err(StateFileError::Io { .. })));
    }

    #[tokio::test]
    async fn async_write_runs_on_a_blocking_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        write_async(path.clone(), b"x".to_vec()).await.unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), b"x");
    }
}
