//! Ingest -> reassemble round trips, the blobs they make, and reassembly failures.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce, Tag};
use megatorrent::blob::{ingest_file, ingest_reader, reassemble, BlobError, BlobStore, StoreError};
use megatorrent::manifest::{FileEntry, BLOB_LEN, CHUNK_SIZE};
use proptest::prelude::*;
use rand::{Rng, RngExt, SeedableRng};
use std::path::Path;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Names of everything in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Decrypt a blob fully, padding included, bypassing the library.
fn decrypt_whole(blob: &[u8], key: &[u8; 32], nonce: &[u8; 12]) -> Vec<u8> {
    let mut body = blob[..CHUNK_SIZE].to_vec();
    let tag = Tag::try_from(&blob[CHUNK_SIZE..]).unwrap();
    ChaCha20Poly1305::new(key.into())
        .decrypt_inout_detached(&Nonce::from(*nonce), b"", body.as_mut_slice().into(), &tag)
        .unwrap();
    body
}

/// Ingest `data` as a file, check the entry and its blobs, reassemble, and compare.
fn round_trip(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("blobs")).unwrap();
    let input = dir.path().join("input.bin");
    std::fs::write(&input, data).unwrap();

    let entry = ingest_file(&input, &store).unwrap();
    assert_eq!(entry.name, "input.bin");
    assert_eq!(entry.size, data.len() as u64);
    assert_eq!(entry.chunks.len(), data.len().div_ceil(CHUNK_SIZE));
    assert_eq!(store.list().unwrap().len(), entry.chunks.len());
    for (i, chunk) in entry.chunks.iter().enumerate() {
        let expect_real = (data.len() - i * CHUNK_SIZE).min(CHUNK_SIZE);
        assert_eq!(chunk.real_size, expect_real as u64);
        assert_eq!((chunk.offset, chunk.length), (0, BLOB_LEN as u64));
        let blob = std::fs::read(store.path_of(&chunk.blob_id)).unwrap();
        assert_eq!(blob.len(), BLOB_LEN);
        assert!(chunk.blob_id.matches(&blob));
        let plain = decrypt_whole(&blob, &chunk.key, &chunk.nonce);
        assert_eq!(plain[..expect_real], data[i * CHUNK_SIZE..][..expect_real]);
        let padding = &plain[expect_real..];
        if padding.len() >= 64 {
            // Random, not zeros: about 1/256 of the bytes are zero.
            let zeros = padding.iter().filter(|&&b| b == 0).count();
            assert!(
                zeros * 64 < padding.len(),
                "{zeros} zeros in {} bytes of padding",
                padding.len()
            );
        }
    }

    let out = dir.path().join("out").join("copy.bin");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    reassemble(&entry, &store, &out).unwrap();
    let back = std::fs::read(&out).unwrap();
    assert!(back == data, "round trip of {} bytes differs", data.len());
    // The temporary file was renamed, not left behind.
    assert_eq!(listing(out.parent().unwrap()), ["copy.bin"]);
}

#[test]
fn round_trips_at_chunk_boundaries() {
    for (i, len) in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        5 * CHUNK_SIZE + 3,
    ]
    .into_iter()
    .enumerate()
    {
        round_trip(&content(len, i as u64));
    }
}

#[test]
fn empty_file_has_no_chunks_and_reassembles_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let entry = ingest_reader(&b""[..], "empty", &store).unwrap();
    assert_eq!((entry.size, entry.chunks.len()), (0, 0));
    let out = dir.path().join("empty.out");
    reassemble(&entry, &store, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"");
}

#[test]
fn same_content_gives_different_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = content(CHUNK_SIZE + 10, 7);
    let a = ingest_reader(&data[..], "a", &store).unwrap();
    let b = ingest_reader(&data[..], "a", &store).unwrap();
    for (x, y) in a.chunks.iter().zip(&b.chunks) {
        assert_ne!(x.blob_id, y.blob_id);
        assert_ne!(x.key, y.key);
    }
    assert_eq!(store.list().unwrap().len(), 4);
}

#[test]
fn ingest_refuses_unsafe_names_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("blobs")).unwrap();
    for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
        assert!(
            matches!(
                ingest_reader(&b"x"[..], bad, &store),
                Err(BlobError::UnsafeName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        ingest_file(Path::new("/"), &store),
        Err(BlobError::UnsafeName { .. })
    ));
    let missing = dir.path().join("nope");
    assert!(matches!(
        ingest_file(&missing, &store),
        Err(BlobError::Io { path, .. }) if path == missing
    ));
    assert!(store.list().unwrap().is_empty());
}

/// A store with a 3.5 MiB file ingested, and an empty output folder.
struct Fixture {
    dir: tempfile::TempDir,
    store: BlobStore,
    entry: FileEntry,
    data: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let data = content(3 * CHUNK_SIZE + CHUNK_SIZE / 2, 42);
        let entry = ingest_reader(&data[..], "file.bin", &store).unwrap();
        assert_eq!(entry.chunks.len(), 4);
        Self {
            dir,
            store,
            entry,
            data,
        }
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out").join("file.bin")
    }

    /// Reassemble, expecting failure: no output file and no temporary file remain.
    fn fails(&self, entry: &FileEntry) -> BlobError {
        let err = reassemble(entry, &self.store, &self.out()).unwrap_err();
        assert!(listing(&self.dir.path().join("out")).is_empty(), "{err}");
        err
    }
}

#[test]
fn corrupt_blob_is_reported_and_leaves_no_file() {
    let f = Fixture::new();
    let id = f.entry.chunks[2].blob_id;
    let path = f.store.path_of(&id);
    let mut blob = std::fs::read(&path).unwrap();
    blob[CHUNK_SIZE / 3] ^= 0x10;
    std::fs::write(&path, &blob).unwrap();
    let err = f.fails(&f.entry);
    assert!(
        matches!(err, BlobError::Corrupt { blob_id } if blob_id == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_hex()));

    // Truncated, and grown: also corrupt, not an I/O error or a partial read.
    std::fs::write(&path, &blob[..1000]).unwrap();
    assert!(matches!(f.fails(&f.entry), BlobError::Corrupt { blob_id } if blob_id == id));
    blob.push(0);
    std::fs::write(&path, &blob).unwrap();
    assert!(matches!(f.fails(&f.entry), BlobError::Corrupt { blob_id } if blob_id == id));
}

#[test]
fn missing_blob_is_reported_and_leaves_no_file() {
    let f = Fixture::new();
    let id = f.entry.chunks[3].blob_id;
    f.store.remove(&id).unwrap();
    let err = f.fails(&f.entry);
    assert!(
        matches!(err, BlobError::Missing { blob_id } if blob_id == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_hex()));
}

#[test]
fn earliest_bad_chunk_is_the_one_reported() {
    let f = Fixture::new();
    let first = f.entry.chunks[1].blob_id;
    f.store.remove(&first).unwrap();
    f.store.remove(&f.entry.chunks[3].blob_id).unwrap();
    assert!(matches!(f.fails(&f.entry), BlobError::Missing { blob_id } if blob_id == first));
}

#[test]
fn wrong_chunk_key_fails_to_decrypt() {
    let f = Fixture::new();
    let mut entry = f.entry.clone();
    entry.chunks[1].key[0] ^= 1;
    let id = entry.chunks[1].blob_id;
    assert!(matches!(f.fails(&entry), BlobError::Decrypt { blob_id } if blob_id == id));
}

#[test]
fn inconsistent_entries_are_refused_before_any_output() {
    let f = Fixture::new();
    let mut entry = f.entry.clone();
    entry.size += 1;
    assert!(matches!(
        f.fails(&entry),
        BlobError::SizeMismatch { declared, actual, .. }
            if declared == f.data.len() as u64 + 1 && actual == f.data.len() as u64
    ));

    let mut entry = f.entry.clone();
    entry.chunks[0].real_size = CHUNK_SIZE as u64 + 1;
    entry.size += 1;
    assert!(matches!(
        f.fails(&entry),
        BlobError::BadChunk {
            reason: "realSize exceeds 1048576",
            ..
        }
    ));

    let mut entry = f.entry.clone();
    entry.chunks[2].length = 1;
    assert!(matches!(
        f.fails(&entry),
        BlobError::BadChunk {
            reason: "length is not 1048592",
            ..
        }
    ));

    let mut entry = f.entry.clone();
    entry.chunks[2].offset = 16;
    assert!(matches!(
        f.fails(&entry),
        BlobError::BadChunk {
            reason: "offset is not 0",
            ..
        }
    ));

    let mut entry = f.entry.clone();
    entry.name = "../x".into();
    assert!(matches!(f.fails(&entry), BlobError::UnsafeName { .. }));
}

#[test]
fn failure_keeps_an_existing_output_file() {
    let f = Fixture::new();
    std::fs::write(f.out(), b"previous").unwrap();
    f.store.remove(&f.entry.chunks[0].blob_id).unwrap();
    assert!(matches!(
        reassemble(&f.entry, &f.store, &f.out()),
        Err(BlobError::Missing { .. })
    ));
    assert_eq!(std::fs::read(f.out()).unwrap(), b"previous");
    assert_eq!(listing(&f.dir.path().join("out")), ["file.bin"]);
}

#[test]
fn success_replaces_an_existing_output_file() {
    let f = Fixture::new();
    std::fs::write(f.out(), b"previous").unwrap();
    reassemble(&f.entry, &f.store, &f.out()).unwrap();
    assert!(std::fs::read(f.out()).unwrap() == f.data);
}

#[test]
fn unwritable_destination_is_an_io_error() {
    let f = Fixture::new();
    let out = f.dir.path().join("no-such-dir").join("x");
    assert!(matches!(
        reassemble(&f.entry, &f.store, &out),
        Err(BlobError::Io { path, .. }) if path == f.dir.path().join("no-such-dir")
    ));
    // A folder under the final name: the rename fails after all the work, and the temporary
    // file is removed.
    let out = f.dir.path().join("out").join("sub");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("inside"), b"kept").unwrap();
    assert!(matches!(
        reassemble(&f.entry, &f.store, &out),
        Err(BlobError::Io { path, .. }) if path == out
    ));
    assert_eq!(listing(&f.dir.path().join("out")), ["sub"]);
    assert_eq!(listing(&out), ["inside"]);
}

#[cfg(unix)]
#[test]
fn output_gets_ordinary_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    reassemble(&f.entry, &f.store, &f.out()).unwrap();
    let mode = std::fs::metadata(f.out()).unwrap().permissions().mode() & 0o777;
    // Whatever the umask, the owner can read and write, as with any created file; tempfile's
    // default would be exactly 0o600.
    let umask_probe = f.dir.path().join("probe");
    std::fs::write(&umask_probe, b"").unwrap();
    let normal = std::fs::metadata(&umask_probe)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, normal);
}

#[test]
fn store_errors_convert() {
    // A store that cannot be created (its path is a file) reports the store's own error.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"").unwrap();
    let err: BlobError = BlobStore::open(&file).unwrap_err().into();
    assert!(matches!(err, BlobError::Store(StoreError::Io { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn ingest_reassemble_any_size(len in 0usize..(3 * CHUNK_SIZE + 100), seed in any::<u64>()) {
        let data = content(len, seed);
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        // A reader that returns short reads, as pipes and sockets do.
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let reader = ShortReads { data: &data, rng: &mut rng };
        let entry = ingest_reader(reader, "p", &store).unwrap();
        prop_assert_eq!(entry.size, len as u64);
        prop_assert_eq!(entry.chunks.len(), len.div_ceil(CHUNK_SIZE));
        let out = dir.path().join("p");
        reassemble(&entry, &store, &out).unwrap();
        prop_assert!(std::fs::read(&out).unwrap() == data);
    }
}

struct ShortReads<'a, R> {
    data: &'a [u8],
    rng: &'a mut R,
}

impl<R: Rng> std::io::Read for ShortReads<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out
            .len()
            .min(self.data.len())
            .min(self.rng.random_range(1..=300_000));
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
