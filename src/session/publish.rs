//! Incremental publishing: a file whose content (SHA-256 and size) is in the channel's file
//! index keeps its previous entry (blob ids, keys, nonces), so subscribers fetch only what
//! changed and the store does not grow with every publish.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::blob::{ingest_reader, BlobError, BlobStore};
use crate::manifest::FileEntry;

use super::files::{hash_file, SourceFile};
use super::state::{IndexEntry, PubRecord};
use super::types::{IngestProgress, SessionError};

/// The entries of a new version and its file index.
pub(crate) struct Prepared {
    pub entries: Vec<FileEntry>,
    pub index: Vec<IndexEntry>,
    pub unchanged: usize,
    pub blobs_new: usize,
}

/// Hash every file, reuse the previous entry of each unchanged one (whose blobs the store
/// still holds), ingest the others. Blocking: run on a blocking thread. Raising `cancel`
/// stops it with [`SessionError::Cancelled`]; on any failure the blobs it stored are removed
/// again (their keys were never published).
pub(crate) fn prepare(
    files: &[SourceFile],
    previous: Option<&PubRecord>,
    store: &BlobStore,
    cancel: &Arc<AtomicBool>,
    progress: Option<&IngestProgress>,
) -> Result<Prepared, SessionError> {
    // Two sources with one channel path are refused before anything is read.
    let mut seen_paths = std::collections::HashSet::new();
    for f in files {
        let path = f.channel_path();
        if !seen_paths.insert(path.clone()) {
            return Err(SessionError::BadPath {
                path: f.abs.clone(),
                reason: format!("two files would be {path:?} in the channel"),
            });
        }
    }
    let mut fresh: Vec<FileEntry> = Vec::new();
    let outcome = prepare_files(files, previous, store, cancel, progress, &mut fresh);
    if outcome.is_err() {
        for chunk in fresh.iter().flat_map(|e| &e.chunks) {
            // Best effort: the first error is the one worth reporting.
            let _ = store.remove(&chunk.blob_id);
        }
    }
    outcome
}

fn prepare_files(
    files: &[SourceFile],
    previous: Option<&PubRecord>,
    store: &BlobStore,
    cancel: &Arc<AtomicBool>,
    progress: Option<&IngestProgress>,
    fresh: &mut Vec<FileEntry>,
) -> Result<Prepared, SessionError> {
    // Content (hash, size) -> previous entry. Names may change; content is what counts.
    let mut reusable: HashMap<(String, u64), &IndexEntry> = HashMap::new();
    for e in previous.map(|p| p.files.as_slice()).unwrap_or_default() {
        reusable.insert((e.hash.clone(), e.size), e);
    }
    let mut out = Prepared {
        entries: Vec::with_capacity(files.len()),
        index: Vec::with_capacity(files.len()),
        unchanged: 0,
        blobs_new: 0,
    };
    for f in files {
        if cancel.load(Ordering::SeqCst) {
            return Err(SessionError::Cancelled);
        }
        let io = |source| SessionError::Io {
            path: f.abs.clone(),
            source,
        };
        let size = std::fs::metadata(&f.abs).map_err(io)?.len();
        let hash = hash_file(&f.abs).map_err(io)?;
        let reused = reusable
            .get(&(hash.clone(), size))
            .and_then(|prev| FileEntry::from_json(&prev.entry).ok())
            .filter(|e| e.chunks.iter().all(|c| store.contains(&c.blob_id)));
        let mut entry = match reused {
            Some(e) => {
                out.unchanged += 1;
                e
            }
            None => {
                let file = std::fs::File::open(&f.abs).map_err(io)?;
                let reader = Watched {
                    inner: file,
                    cancel,
                    progress,
                };
                let e = match ingest_reader(reader, &f.name, store) {
                    Ok(e) => e,
                    Err(_) if cancel.load(Ordering::SeqCst) => return Err(SessionError::Cancelled),
                    Err(BlobError::Read { source, .. }) => return Err(io(source)),
                    Err(e) => return Err(e.into()),
                };
                fresh.push(e.clone());
                // Ingest seals under fresh keys: every blob of the file is new.
                out.blobs_new += e.chunks.len();
                // The content may have changed while it was read: the index must describe
                // exactly what the entry holds.
                if e.size != size {
                    return Err(SessionError::BadPath {
                        path: f.abs.clone(),
                        reason: "the file changed while it was published".into(),
                    });
                }
                e
            }
        };
        entry.name = f.name.clone();
        set_folders(&mut entry, &f.dirs);
        out.index.push(IndexEntry {
            path: f.channel_path(),
            size,
            hash,
            entry: entry.to_json(),
        });
        out.entries.push(entry);
    }
    Ok(out)
}

/// A file reader that fails once the publish is cancelled and reports what it read.
struct Watched<'a> {
    inner: std::fs::File,
    cancel: &'a AtomicBool,
    progress: Option<&'a IngestProgress>,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::SeqCst) {
            // Not ErrorKind::Interrupted: readers retry that one.
            return Err(io::Error::other("publish cancelled"));
        }
        let n = self.inner.read(buf)?;
        if let Some(report) = self.progress {
            report(n as u64);
        }
        Ok(n)
    }
}

/// Put the file's folders into its entry (FileEntry.path, protocol 5.1).
fn set_folders(entry: &mut FileEntry, dirs: &[String]) {
    entry.path = dirs.to_vec();
}
