//! The plan of a download: which files to write where, which blobs that needs, and what the
//! store and the destinations already hold. Everything here runs before any peer is asked.

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::DownloadError;
use crate::blob::out_file::read_full;
use crate::blob::{check_entry, decrypt_hashed_in_place, reseal_matches, BlobStore, StoreError};
use crate::id::BlobId;
use crate::manifest::{
    FileEntry, ManifestContent, ManifestError, ReadKey, SignedManifest, BLOB_LEN, CHUNK_SIZE,
};

/// One file to download: what it is and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJob {
    /// The file (its chunks: blob ids, keys, nonces).
    pub entry: FileEntry,
    /// Its final path. The parent folder is created if missing.
    pub dest: PathBuf,
}

/// The content of `manifest`, decrypted with `read_key` when it is private.
pub(super) fn manifest_content(
    manifest: &SignedManifest,
    read_key: Option<&ReadKey>,
) -> Result<ManifestContent, DownloadError> {
    if let Some(content) = manifest.content() {
        return Ok(content.clone());
    }
    let key = read_key.ok_or(DownloadError::ReadKeyRequired)?;
    manifest.decrypt(key).map_err(|e| match e {
        ManifestError::WrongReadKey => DownloadError::WrongReadKey,
        e => DownloadError::Manifest(e),
    })
}

/// Every file of every collection once, checked (the content is validated, so paths are safe
/// and never collide). The same entry listed twice is written once; two different files on
/// one path are refused.
pub(super) fn distinct_files(content: &ManifestContent) -> Result<Vec<FileEntry>, DownloadError> {
    content.validate()?;
    let mut by_path: HashMap<String, &FileEntry> = HashMap::new();
    let mut files = Vec::new();
    for entry in content.collections.iter().flat_map(|c| c.items.iter()) {
        check_entry(entry)?;
        let path = entry.path_string();
        match by_path.get(&path) {
            Some(seen) if *seen == entry => {}
            Some(_) => return Err(DownloadError::DuplicateName { name: path }),
            None => {
                by_path.insert(path, entry);
                files.push(entry.clone());
            }
        }
    }
    Ok(files)
}

/// `jobs` checked ([`check_entry`]) and each destination once: the same job twice is kept
/// once, two different files for one destination are refused.
pub(super) fn distinct_jobs(jobs: Vec<FileJob>) -> Result<Vec<FileJob>, DownloadError> {
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    let mut out: Vec<FileJob> = Vec::with_capacity(jobs.len());
    for job in jobs {
        check_entry(&job.entry)?;
        match seen.get(&job.dest) {
            Some(&i) if out[i].entry == job.entry => {}
            Some(_) => return Err(DownloadError::ConflictingJobs { path: job.dest }),
            None => {
                seen.insert(job.dest.clone(), out.len());
                out.push(job);
            }
        }
    }
    Ok(out)
}

/// What is at a job's destination before the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Existing {
    /// Nothing.
    Absent,
    /// Exactly the file's content: nothing to do.
    Same,
    /// Something else.
    Different,
    /// The same size, every full chunk the same, and the short last chunk cannot be checked
    /// without its blob: decided when the file is committed.
    Unsure,
}

/// Compare what is at `job.dest` with the file, without any blob from a peer: each full chunk
/// of the existing file is encrypted again under its chunk's key and nonce and hashed (a match
/// is that very blob, and goes into the store, so it is never fetched); the short last chunk
/// is compared with its blob when the store holds it.
pub(super) fn examine(job: &FileJob, store: &BlobStore) -> Result<Existing, DownloadError> {
    let io = |source| DownloadError::Io {
        path: job.dest.clone(),
        source,
    };
    let meta = match std::fs::metadata(&job.dest) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() || meta.len() != job.entry.size {
        return Ok(Existing::Different);
    }
    let mut file = File::open(&job.dest).map_err(io)?;
    let mut buf = Vec::with_capacity(BLOB_LEN);
    let mut unsure = false;
    for chunk in &job.entry.chunks {
        // `check_entry` bounds real_size by CHUNK_SIZE.
        let len = chunk.real_size as usize;
        buf.clear();
        buf.resize(len, 0);
        if read_full(&mut file, &mut buf).map_err(io)? != len {
            return Ok(Existing::Different);
        }
        if len == CHUNK_SIZE {
            if !reseal_matches(&mut buf, chunk)? {
                return Ok(Existing::Different);
            }
            store.put_hashed(&chunk.blob_id, &buf)?;
            continue;
        }
        match store.get_verified(&chunk.blob_id) {
            Ok(Some(mut blob)) => {
                decrypt_hashed_in_place(&mut blob, chunk)?;
                if blob != buf {
                    return Ok(Existing::Different);
                }
            }
            Ok(None) | Err(StoreError::HashMismatch { .. } | StoreError::TooLarge { .. }) => {
                unsure = true
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if unsure {
        Existing::Unsure
    } else {
        Existing::Same
    })
}

/// The distinct blobs of `jobs` in first-use order, with the content bytes each holds.
pub(super) fn blobs_of<'a>(
    jobs: impl IntoIterator<Item = &'a FileJob>,
) -> (Vec<BlobId>, HashMap<BlobId, u64>) {
    let mut order = Vec::new();
    let mut sizes = HashMap::new();
    for job in jobs {
        for c in &job.entry.chunks {
            if sizes.insert(c.blob_id, c.real_size).is_none() {
                order.push(c.blob_id);
            }
        }
    }
    (order, sizes)
}
