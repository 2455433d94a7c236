//! Incremental publishing: a file whose content (SHA-256 and size) is in the channel's file
//! index keeps its previous entry (blob ids, keys, nonces), so subscribers fetch only what
//! changed and the store does not grow with every publish.

use std::collections::HashMap;

use crate::blob::{ingest_file, BlobStore};
use crate::manifest::FileEntry;

use super::files::{hash_file, SourceFile};
use super::state::{IndexEntry, PubRecord};
use super::types::SessionError;

/// The entries of a new version and its file index.
pub(crate) struct Prepared {
    pub entries: Vec<FileEntry>,
    pub index: Vec<IndexEntry>,
    pub unchanged: usize,
    pub blobs_new: usize,
}

/// Hash every file, reuse the previous entry of each unchanged one (whose blobs the store
/// still holds), ingest the others. Blocking: run on a blocking thread.
pub(crate) fn prepare(
    files: &[SourceFile],
    previous: Option<&PubRecord>,
    store: &BlobStore,
) -> Result<Prepared, SessionError> {
    // Content (hash, size) -> previous entry. Names may change; content is what counts.
    let mut reusable: HashMap<(String, u64), &IndexEntry> = HashMap::new();
    for e in previous.map(|p| p.files.as_slice()).unwrap_or_default() {
        reusable.insert((e.hash.clone(), e.size), e);
    }
    let mut seen_paths = std::collections::HashSet::new();
    let mut out = Prepared {
        entries: Vec::with_capacity(files.len()),
        index: Vec::with_capacity(files.len()),
        unchanged: 0,
        blobs_new: 0,
    };
    for f in files {
        let path = f.channel_path();
        if !seen_paths.insert(path.clone()) {
            return Err(SessionError::BadPath {
                path: f.abs.clone(),
                reason: format!("two files would be {path:?} in the channel"),
            });
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
                let e = ingest_file(&f.abs, store)?;
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
        set_folders(&mut entry, &f.dirs, &f.abs)?;
        out.index.push(IndexEntry {
            path,
            size,
            hash,
            entry: entry.to_json(),
        });
        out.entries.push(entry);
    }
    Ok(out)
}

/// Put the file's folders into its entry (FileEntry.path, protocol 5.1).
fn set_folders(
    entry: &mut FileEntry,
    dirs: &[String],
    abs: &std::path::Path,
) -> Result<(), SessionError> {
    if dirs.is_empty() {
        return Ok(());
    }
    // Until FileEntry.path (branch folders) lands, sub-folders cannot be described.
    let _ = entry;
    Err(SessionError::BadPath {
        path: abs.to_owned(),
        reason: format!(
            "sub-folders ({}) need FileEntry.path (protocol 5.1), not in this build",
            dirs.join("/")
        ),
    })
}
