//! The tests read the vectors from `tests/vectors/`, a copy of the project's shared
//! `../shared/vectors/`. When the shared folder is beside the checkout (as in CI), this test checks
//! that the copy is byte-for-byte the same, so no vector can drift out of date unnoticed. Without
//! it the test is skipped, which fails under CI (`common::skip`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn vector_copy_matches_shared_folder() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = files_under(&manifest_dir.join("tests/vectors"));
    assert!(copy.len() >= 15, "tests/vectors looks incomplete");
    let shared = manifest_dir.join("../shared/vectors");
    if !shared.is_dir() {
        common::skip(&format!(
            "{} is not beside this checkout; the vector copy is not compared",
            shared.display()
        ));
        return;
    }
    let shared = files_under(&shared);
    let copy_names: Vec<_> = copy.keys().collect();
    let shared_names: Vec<_> = shared.keys().collect();
    assert_eq!(copy_names, shared_names, "file lists differ");
    for (name, bytes) in &shared {
        assert!(
            copy[name] == *bytes,
            "{} differs from the shared vector",
            name.display()
        );
    }
}
