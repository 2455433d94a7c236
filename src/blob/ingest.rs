//! Streaming ingest: a file becomes blobs in a store plus the [`FileEntry`] that describes them.

use crate::blob::pipeline::run_ordered;
use crate::blob::{seal_in_place, BlobError, BlobStore};
use crate::id::BlobId;
use crate::manifest::{unsafe_file_name_reason, FileEntry, CHUNK_SIZE};
use std::io::{self, ErrorKind, Read};
use std::path::Path;
use std::sync::Mutex;

/// Check that `name` is a plain file name (PROTOCOL.md 2.4, the same rule manifests apply):
/// non-empty, no `/`, `\` or NUL, and not `.` or `..`. A file name is never a path.
pub fn check_file_name(name: &str) -> Result<(), BlobError> {
    match unsafe_file_name_reason(name) {
        None => Ok(()),
        Some(reason) => Err(BlobError::UnsafeName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Ingest the file at `path` into `store`: cut it into 1 MiB chunks, seal each into a blob,
/// store the blobs, and return the entry (named after the file's last path component).
///
/// The file is streamed: only a few chunks are in memory at once, and chunks are sealed on
/// several threads. On failure the blobs already stored for this file are removed again.
pub fn ingest_file(path: &Path, store: &BlobStore) -> Result<FileEntry, BlobError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BlobError::UnsafeName {
            name: path.display().to_string(),
            reason: "no UTF-8 file name",
        })?;
    check_file_name(name)?;
    let io_err = |source| BlobError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    ingest(file, name, store, io_err)
}

/// Ingest everything `reader` yields into `store` as a file named `name` (see
/// [`ingest_file`]). `name` must be a plain file name ([`check_file_name`]).
pub fn ingest_reader<R: Read>(
    reader: R,
    name: &str,
    store: &BlobStore,
) -> Result<FileEntry, BlobError> {
    check_file_name(name)?;
    ingest(reader, name, store, |source| BlobError::Read {
        name: name.to_owned(),
        source,
    })
}

fn ingest<R: Read>(
    mut reader: R,
    name: &str,
    store: &BlobStore,
    read_err: impl Fn(io::Error) -> BlobError,
) -> Result<FileEntry, BlobError> {
    let mut chunks = Vec::new();
    let mut size = 0u64;
    // Every blob stored so far, including ones whose results were never consumed, so a
    // failure can remove them all. Keys are fresh, so no other entry shares these blobs.
    let written: Mutex<Vec<BlobId>> = Mutex::new(Vec::new());
    let mut at_end = false;

    let outcome = run_ordered(
        |buf| {
            if at_end {
                return Ok(None);
            }
            let n = read_chunk(&mut reader, buf).map_err(&read_err)?;
            // A short chunk is the last one; an empty read ends the file (no empty chunks).
            at_end = n < CHUNK_SIZE;
            Ok((n > 0).then_some(()))
        },
        |(), buf| {
            let chunk = seal_in_place(buf)?;
            store.put_hashed(&chunk.blob_id, buf)?;
            if let Ok(mut w) = written.lock() {
                w.push(chunk.blob_id);
            }
            Ok(chunk)
        },
        |chunk, _| {
            size += chunk.real_size;
            chunks.push(chunk);
            Ok(())
        },
    );
    if let Err(e) = outcome {
        let ids = written.into_inner().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            // Best effort: the ingest error is the one worth reporting.
            let _ = store.remove(&id);
        }
        return Err(e);
    }
    Ok(FileEntry {
        name: name.to_owned(),
        path: Vec::new(),
        size,
        chunks,
    })
}

/// Fill `buf` (empty on entry) with up to [`CHUNK_SIZE`] bytes from `reader`, stopping early
/// only at end of input. Returns the number of bytes read.
fn read_chunk(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.resize(CHUNK_SIZE, 0);
    let mut filled = 0;
    while filled < CHUNK_SIZE {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_rules() {
        for ok in ["a", "a.b", "...", "ü name (1).txt", ".hidden"] {
            check_file_name(ok).unwrap();
        }
        for (bad, reason) in [
            ("", "empty"),
            (".", "a directory reference"),
            ("..", "a directory reference"),
            ("a/b", "contains '/'"),
            ("a\\b", "contains '\\'"),
            ("a\0b", "contains NUL"),
        ] {
            match check_file_name(bad) {
                Err(BlobError::UnsafeName { name, reason: r }) => {
                    assert_eq!((name.as_str(), r), (bad, reason))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    /// A reader that returns at most 7 bytes per call and is sometimes interrupted.
    struct Dribble<'a>(&'a [u8], u32);
    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            if self.1.is_multiple_of(5) {
                return Err(ErrorKind::Interrupted.into());
            }
            let n = out.len().min(7).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_chunk_fills_across_short_reads() {
        let data: Vec<u8> = (0..CHUNK_SIZE + 10).map(|i| i as u8).collect();
        let mut r = Dribble(&data, 0);
        let mut buf = Vec::new();
        assert_eq!(read_chunk(&mut r, &mut buf).unwrap(), CHUNK_SIZE);
        assert_eq!(buf, data[..CHUNK_SIZE]);
        buf.clear();
        assert_eq!(read_chunk(&mut r, &mut buf).unwrap(), 10);
        assert_eq!(buf, data[CHUNK_SIZE..]);
        buf.clear();
        assert_eq!(read_chunk(&mut r, &mut buf).unwrap(), 0);
    }

    /// A reader that fails after yielding `ok` bytes.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = out.len().min(self.0);
            out[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_error_is_reported_and_leaves_no_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let err = ingest_reader(Failing(3 * CHUNK_SIZE + 5), "f", &store).unwrap_err();
        assert!(
            matches!(&err, BlobError::Read { name, .. } if name == "f"),
            "{err:?}"
        );
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn refuses_unsafe_name_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        assert!(matches!(
            ingest_reader(Failing(0), "..", &store),
            Err(BlobError::UnsafeName { .. })
        ));
    }
}
