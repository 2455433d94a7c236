//! Verify and create a manifest of 1000 chunks (1000 MiB of content in 10 files).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use megatorrent::id::BlobId;
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, Chunk, Collection, FileEntry, ManifestContent,
    ReadKey, SignedManifest, BLOB_LEN, CHUNK_SIZE,
};
use std::hint::black_box;

fn content(chunks: usize, files: usize) -> ManifestContent {
    let per_file = chunks / files;
    let items = (0..files)
        .map(|f| FileEntry {
            name: format!("file {f} \u{e9}.bin"),
            path: Vec::new(),
            size: (per_file * CHUNK_SIZE) as u64,
            chunks: (0..per_file)
                .map(|c| Chunk {
                    blob_id: BlobId::of(&(f * per_file + c).to_le_bytes()),
                    offset: 0,
                    length: BLOB_LEN as u64,
                    key: [c as u8; 32],
                    nonce: [f as u8; 12],
                    real_size: CHUNK_SIZE as u64,
                })
                .collect(),
        })
        .collect();
    ManifestContent {
        collections: vec![Collection {
            title: "Bench".into(),
            items,
        }],
        timestamp: 1_732_500_000_000,
    }
}

fn bench(c: &mut Criterion) {
    let identity = Identity::from_seed(&[1; 32]);
    let content = content(1000, 10);
    let manifest = create_manifest(&identity, 1, &content).unwrap();
    let bytes = manifest.as_bytes().to_vec();
    let mut group = c.benchmark_group("manifest_1000_chunks");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("verify", |b| {
        b.iter(|| SignedManifest::verify(black_box(&bytes)).unwrap())
    });
    group.bench_function("create", |b| {
        b.iter(|| create_manifest(&identity, 1, black_box(&content)).unwrap())
    });
    let key = ReadKey::from_bytes([3; 32]);
    let private = create_private_manifest(&identity, 1, &content, &key).unwrap();
    group.bench_function("create_private", |b| {
        b.iter(|| create_private_manifest(&identity, 1, black_box(&content), &key).unwrap())
    });
    group.bench_function("verify_and_decrypt_private", |b| {
        b.iter(|| {
            SignedManifest::verify(black_box(private.as_bytes()))
                .unwrap()
                .decrypt(&key)
                .unwrap()
        })
    });
    group.finish();
    eprintln!("manifest of 1000 chunks: {} bytes", bytes.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
