//! Writing the files of a download as their blobs arrive, in any order, through
//! [`OutFile`](crate::blob::OutFile): each blob's plaintext goes straight to its offset in the
//! file's temporary file; once every chunk is written the file is committed (synced, renamed,
//! folder synced), so nothing appears under its name before it is complete. Temporary files of
//! an abandoned download are removed when the writer is dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use super::{DownloadError, FileJob};
use crate::blob::out_file::write_at;
use crate::blob::{
    decrypt_hashed_in_place, destination, BlobError, BlobStore, Committed, OutFile, Replace,
    StoreError,
};
use crate::id::BlobId;

/// One place a blob's plaintext fills: a chunk of a file of the download.
#[derive(Debug, Clone, Copy)]
struct Place {
    file: usize,
    chunk: usize,
    /// Where the chunk starts in the file.
    offset: u64,
}

/// A file being written.
#[derive(Default)]
struct Slot {
    /// The file being written, made when the first chunk arrives.
    out: Option<OutFile>,
    /// Which chunks are written.
    written: Vec<bool>,
    /// How many are not.
    left: usize,
    /// How it ended, once committed.
    done: Option<Committed>,
}

/// A file that was just finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finished {
    pub path: PathBuf,
    pub how: Committed,
}

/// See the module documentation.
pub(super) struct FileWriter {
    jobs: Vec<FileJob>,
    places: HashMap<BlobId, Vec<Place>>,
    slots: Mutex<Vec<Slot>>,
    replace: Replace,
    /// The download folder when the destinations are its entries' [`destination`]s: each is
    /// checked again just before its rename, so a folder swapped for a link meanwhile is
    /// never followed.
    root: Option<PathBuf>,
}

impl FileWriter {
    /// `jobs` have been checked (`check_entry`): sizes consistent, destinations distinct,
    /// their folders made.
    pub fn new(jobs: Vec<FileJob>, replace: Replace, root: Option<PathBuf>) -> Self {
        let mut places: HashMap<BlobId, Vec<Place>> = HashMap::new();
        let mut slots = Vec::with_capacity(jobs.len());
        for (file, job) in jobs.iter().enumerate() {
            let mut offset = 0u64;
            for (chunk, c) in job.entry.chunks.iter().enumerate() {
                places.entry(c.blob_id).or_default().push(Place {
                    file,
                    chunk,
                    offset,
                });
                offset += c.real_size;
            }
            slots.push(Slot {
                written: vec![false; job.entry.chunks.len()],
                left: job.entry.chunks.len(),
                ..Slot::default()
            });
        }
        Self {
            jobs,
            places,
            slots: Mutex::new(slots),
            replace,
            root,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // Every update of a slot is a single assignment: a poisoned lock is still consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Put the blobs of `ids` that `store` holds into place, each hashed before it is
    /// decrypted, and write the files that have no chunk. Returns the blobs that turned out
    /// damaged or missing (removed from the store, to be fetched) and the files finished.
    pub fn place_stored(
        &self,
        store: &BlobStore,
        ids: &[BlobId],
    ) -> Result<(Vec<BlobId>, Vec<Finished>), DownloadError> {
        let mut damaged = Vec::new();
        let mut finished = Vec::new();
        for id in ids {
            match store.get_verified(id) {
                Ok(Some(blob)) => finished.extend(self.place(id, blob)?),
                Ok(None) | Err(StoreError::HashMismatch { .. } | StoreError::TooLarge { .. }) => {
                    tracing::warn!("blob {id} bad in the store; fetching it again");
                    store.remove(id)?;
                    damaged.push(*id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let empty: Vec<usize> = self
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.left == 0 && s.done.is_none())
            .map(|(i, _)| i)
            .collect();
        for file in empty {
            self.handle(file)?;
            finished.extend(self.complete(file)?);
        }
        Ok((damaged, finished))
    }

    /// Decrypt `blob`, whose SHA-256 the caller has checked against `id` on these very
    /// bytes, into every place it fills. Returns the files this finished.
    pub fn place(&self, id: &BlobId, mut blob: Vec<u8>) -> Result<Vec<Finished>, BlobError> {
        let Some(places) = self.places.get(id) else {
            return Ok(Vec::new());
        };
        let mut finished = Vec::new();
        for (i, place) in places.iter().enumerate() {
            if self.lock()[place.file].written[place.chunk] {
                continue;
            }
            // A blob listed twice (rare) decrypts a copy for all but its last place.
            let mut plain = if i + 1 == places.len() {
                std::mem::take(&mut blob)
            } else {
                blob.clone()
            };
            let job = &self.jobs[place.file];
            decrypt_hashed_in_place(&mut plain, &job.entry.chunks[place.chunk])?;
            let file = self.handle(place.file)?;
            write_at(&file, &plain, place.offset).map_err(|source| BlobError::Io {
                path: job.dest.clone(),
                source,
            })?;
            let last = {
                let mut slots = self.lock();
                let slot = &mut slots[place.file];
                if std::mem::replace(&mut slot.written[place.chunk], true) {
                    false
                } else {
                    slot.left -= 1;
                    slot.left == 0
                }
            };
            if last {
                finished.extend(self.complete(place.file)?);
            }
        }
        Ok(finished)
    }

    /// A handle on the temporary file of `file` (made now if it is the first chunk), to
    /// write at offsets without holding the lock.
    fn handle(&self, file: usize) -> Result<std::fs::File, BlobError> {
        let mut slots = self.lock();
        let slot = &mut slots[file];
        let out = match &mut slot.out {
            Some(out) => out,
            none => none.insert(OutFile::create(&self.jobs[file].dest)?),
        };
        out.file().try_clone().map_err(|source| BlobError::Io {
            path: out.dest().to_owned(),
            source,
        })
    }

    /// Commit `file` (every chunk written).
    fn complete(&self, file: usize) -> Result<Option<Finished>, BlobError> {
        let Some(out) = self.lock()[file].out.take() else {
            return Ok(None);
        };
        if let Some(root) = &self.root {
            destination(root, &self.jobs[file].entry)?;
        }
        let how = out.commit(self.jobs[file].entry.size, self.replace)?;
        self.lock()[file].done = Some(how);
        Ok(Some(Finished {
            path: self.jobs[file].dest.clone(),
            how,
        }))
    }

    /// Every destination in job order, once all are finished.
    pub fn finished(&self) -> Result<Vec<Finished>, DownloadError> {
        let slots = self.lock();
        let mut out = Vec::with_capacity(slots.len());
        for (job, slot) in self.jobs.iter().zip(slots.iter()) {
            if let Some(how) = slot.done {
                out.push(Finished {
                    path: job.dest.clone(),
                    how,
                });
                continue;
            }
            // Not reached when every blob was placed; a typed error rather than a panic.
            let missing = slot.written.iter().position(|w| !w);
            return Err(match missing.and_then(|i| job.entry.chunks.get(i)) {
                Some(c) => BlobError::Missing { blob_id: c.blob_id }.into(),
                None => DownloadError::Task(format!("{} was not completed", job.dest.display())),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::seal_chunk;
    use crate::manifest::{Chunk, FileEntry, CHUNK_SIZE};
    use std::path::Path;

    /// A file of `len` bytes sealed into blobs: its content, entry and blobs.
    pub(crate) fn sealed(name: &str, len: usize) -> (Vec<u8>, FileEntry, Vec<Vec<u8>>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (blobs, chunks): (Vec<Vec<u8>>, Vec<Chunk>) = data
            .chunks(CHUNK_SIZE)
            .map(|c| seal_chunk(c).unwrap())
            .unzip();
        let entry = FileEntry {
            name: name.into(),
            path: Vec::new(),
            size: len as u64,
            chunks,
        };
        (data, entry, blobs)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn job(entry: FileEntry, dir: &Path) -> FileJob {
        FileJob {
            dest: dir.join(&entry.name),
            entry,
        }
    }

    fn written(path: PathBuf) -> Finished {
        Finished {
            path,
            how: Committed::Written,
        }
    }

    #[test]
    fn places_blobs_in_any_order_and_renames_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (data, entry, blobs) = sealed("f.bin", 2 * CHUNK_SIZE + 1000);
        let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
        let empty = FileEntry {
            name: "empty".into(),
            path: Vec::new(),
            size: 0,
            chunks: Vec::new(),
        };
        let w = FileWriter::new(
            vec![job(entry, &out), job(empty, &out)],
            Replace::Never,
            None,
        );
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        // A file without chunks is written at once.
        let (damaged, done) = w.place_stored(&store, &[]).unwrap();
        assert!(damaged.is_empty());
        assert_eq!(done, vec![written(out.join("empty"))]);

        assert!(w.place(&ids[2], blobs[2].clone()).unwrap().is_empty());
        assert!(w.place(&ids[0], blobs[0].clone()).unwrap().is_empty());
        // A blob delivered twice is written once.
        assert!(w.place(&ids[0], blobs[0].clone()).unwrap().is_empty());
        assert!(!out.join("f.bin").exists());
        match w.finished() {
            Err(DownloadError::Blob(BlobError::Missing { blob_id })) => assert_eq!(blob_id, ids[1]),
            other => panic!("expected Missing, got {other:?}"),
        }
        assert_eq!(
            w.place(&ids[1], blobs[1].clone()).unwrap(),
            vec![written(out.join("f.bin"))]
        );
        assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), data);
        assert_eq!(
            w.finished().unwrap(),
            vec![written(out.join("f.bin")), written(out.join("empty"))]
        );
        // No temporary file is left behind.
        assert_eq!(names(&out), ["empty", "f.bin"]);
    }

    #[test]
    fn refuses_damaged_stored_blobs_and_wrong_keys_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (_, mut entry, blobs) = sealed("g.bin", 3 * CHUNK_SIZE);
        // The last chunk's key is wrong: its blob hashes right but does not decrypt.
        entry.chunks[2].key[0] ^= 1;
        let ids: Vec<BlobId> = entry.chunks.iter().map(|c| c.blob_id).collect();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        store.put(&ids[0], &blobs[0]).unwrap();
        let mut rotten = blobs[1].clone();
        rotten[7] ^= 1;
        std::fs::write(store.path_of(&ids[1]), &rotten).unwrap();

        let w = FileWriter::new(vec![job(entry, &out)], Replace::Never, None);
        let (damaged, done) = w.place_stored(&store, &ids[..2]).unwrap();
        assert_eq!(damaged, vec![ids[1]]);
        assert!(done.is_empty());
        assert!(!store.contains(&ids[1]));
        assert!(matches!(
            w.place(&ids[2], blobs[2].clone()),
            Err(BlobError::Decrypt { blob_id }) if blob_id == ids[2]
        ));
        // The partial file is a temporary one, removed with the writer.
        assert_eq!(names(&out).len(), 1);
        assert!(!out.join("g.bin").exists());
        drop(w);
        assert!(names(&out).is_empty());
    }

    #[test]
    fn an_identical_file_in_the_way_is_kept_a_different_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (data, entry, blobs) = sealed("h.bin", 1000);
        let id = entry.chunks[0].blob_id;
        let dest = dir.path().join("h.bin");
        std::fs::write(&dest, &data).unwrap();
        let w = FileWriter::new(vec![job(entry.clone(), dir.path())], Replace::Never, None);
        assert_eq!(
            w.place(&id, blobs[0].clone()).unwrap(),
            vec![Finished {
                path: dest.clone(),
                how: Committed::Unchanged
            }]
        );
        std::fs::write(&dest, b"mine").unwrap();
        let w = FileWriter::new(vec![job(entry, dir.path())], Replace::Never, None);
        assert!(matches!(
            w.place(&id, blobs[0].clone()),
            Err(BlobError::DestinationExists { .. })
        ));
        assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
        assert_eq!(names(dir.path()), ["h.bin"]);
    }
}
