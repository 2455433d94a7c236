//! Blob throughput: ingest and reassembly of a 32 MiB file through a store in a temporary
//! folder, beside the raw primitives they are built on (SHA-256 and ChaCha20-Poly1305 over
//! 1 MiB, as compiled in this build) for comparison with the ingest goal
//! (>= 0.7 / (1/sha256 + 1/aead)).

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use megatorrent::blob::{ingest_file, reassemble, seal_chunk, BlobStore};
use megatorrent::id::BlobId;
use megatorrent::manifest::CHUNK_SIZE;
use rand::Rng;
use std::hint::black_box;

const FILE_LEN: usize = 32 * CHUNK_SIZE;

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rng().fill_bytes(&mut v);
    v
}

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("primitives_1MiB");
    g.throughput(Throughput::Bytes(CHUNK_SIZE as u64));
    let data = random(CHUNK_SIZE);
    g.bench_function("sha256", |b| b.iter(|| BlobId::of(black_box(&data))));

    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = data.clone();
    let mut counter = 0u64;
    g.bench_function("chacha20poly1305_seal", |b| {
        b.iter(|| {
            // A distinct nonce per call, as real use requires.
            counter += 1;
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&counter.to_le_bytes());
            cipher
                .encrypt_inout_detached(&Nonce::from(nonce), b"", black_box(&mut buf[..]).into())
                .unwrap()
        })
    });
    // Our whole per-chunk step: padding, fresh key and nonce, AEAD, SHA-256.
    g.bench_function("seal_chunk", |b| {
        b.iter(|| seal_chunk(black_box(&data)).unwrap())
    });
    g.finish();
}

fn file_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    std::fs::write(&input, random(FILE_LEN)).unwrap();

    let mut g = c.benchmark_group("file_32MiB");
    g.throughput(Throughput::Bytes(FILE_LEN as u64));
    g.sample_size(10);
    g.bench_function("ingest", |b| {
        b.iter_batched(
            // A fresh store per run, so stores do not pile up on disk.
            || tempfile::tempdir_in(dir.path()).unwrap(),
            |store_dir| {
                let store = BlobStore::open(store_dir.path()).unwrap();
                ingest_file(&input, &store).unwrap();
                store_dir
            },
            BatchSize::PerIteration,
        )
    });

    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let entry = ingest_file(&input, &store).unwrap();
    let out = dir.path().join("output.bin");
    g.bench_function("reassemble", |b| {
        b.iter(|| reassemble(&entry, &store, &out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, primitives, file_throughput);
criterion_main!(benches);
