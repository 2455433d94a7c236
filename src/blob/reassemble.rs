//! Reassembly: a [`FileEntry`] plus the blobs in a store become the original file.

use crate::blob::pipeline::run_ordered;
use crate::blob::{
    check_chunk, check_file_name, open_in_place, BlobError, BlobStore, OutFile, Replace,
};
use crate::manifest::{Chunk, FileEntry, BLOB_LEN};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Check an entry before any I/O: a plain file name, every chunk's fixed fields, and real
/// sizes that add up to `size`.
pub fn check_entry(entry: &FileEntry) -> Result<(), BlobError> {
    check_file_name(&entry.name)?;
    let mut total = 0u64;
    for chunk in &entry.chunks {
        check_chunk(chunk)?;
        // Each real size is at most 1 MiB, but a huge chunk list could still overflow.
        total = total.saturating_add(chunk.real_size);
    }
    if total != entry.size {
        return Err(BlobError::SizeMismatch {
            name: entry.name.clone(),
            declared: entry.size,
            actual: total,
        });
    }
    Ok(())
}

/// Rebuild the file described by `entry` from the blobs in `store` and write it to
/// `out_path`, replacing any file there.
///
/// Each blob's SHA-256 is checked before it is decrypted. The content is written to a
/// temporary file in the destination folder, synced, and renamed to `out_path` only once every
/// chunk has been verified and written; on any failure the temporary file is removed and
/// nothing appears under `out_path`. Memory stays bounded (a few chunks) whatever the size.
pub fn reassemble(entry: &FileEntry, store: &BlobStore, out_path: &Path) -> Result<(), BlobError> {
    check_entry(entry)?;
    // Dropping the unfinished file (on any early return) deletes it.
    let mut out = OutFile::create(out_path)?;

    let mut chunks = entry.chunks.iter();
    let mut written = 0u64;
    run_ordered(
        |_| Ok(chunks.next()),
        |chunk: &Chunk, buf| {
            read_blob(store, chunk, buf)?;
            open_in_place(buf, chunk)
        },
        |(), plain| {
            out.write_all(plain)?;
            written += plain.len() as u64;
            Ok(())
        },
    )?;
    // Holds by construction after `check_entry`; checked again because a wrong size here
    // would silently produce a bad file.
    if written != entry.size {
        return Err(BlobError::SizeMismatch {
            name: entry.name.clone(),
            declared: entry.size,
            actual: written,
        });
    }
    out.commit(entry.size, Replace::Always)?;
    Ok(())
}

/// Read the blob of `chunk` from `store` into `buf` (empty on entry). A file of the wrong
/// length is reported as corrupt without reading it, so a huge stray file costs nothing.
fn read_blob(store: &BlobStore, chunk: &Chunk, buf: &mut Vec<u8>) -> Result<(), BlobError> {
    let blob_id = chunk.blob_id;
    let path: PathBuf = store.path_of(&blob_id);
    let io_err = |source| BlobError::Io {
        path: path.clone(),
        source,
    };
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(BlobError::Missing { blob_id }),
        Err(e) => return Err(io_err(e)),
    };
    let len = file.metadata().map_err(io_err)?.len();
    if len != BLOB_LEN as u64 {
        return Err(BlobError::Corrupt { blob_id });
    }
    buf.resize(BLOB_LEN, 0);
    match file.read_exact(buf) {
        Ok(()) => Ok(()),
        // The file shrank between the length check and the read.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(BlobError::Corrupt { blob_id }),
        Err(e) => Err(io_err(e)),
    }
}
