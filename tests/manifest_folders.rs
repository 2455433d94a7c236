//! Folders in manifests (extension, PROTOCOL.md 2.1): FileEntry `path`, its validation, and the
//! tree rules (no two files on one path, no file where a folder is needed). Every bad manifest
//! here is correctly signed, so each refusal comes from the rule under test, with its own error.

use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, Collection, FileEntry, ManifestContent,
    ManifestError, ReadKey, SignedManifest, MAX_PATH_COMPONENTS, MAX_PATH_LEN,
};
use serde_json::{json, Value};
use std::path::PathBuf;

const BLOB_ID: &str = "a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9";
const KEY: &str = "2d24f0c394efb8ee3a44dcdc84a7171a028185c7171c95dade701178bbf35d7a";
const NONCE: &str = "92fc8ffa8c1aaf915a90f355";

fn identity() -> Identity {
    Identity::from_seed(&[21; 32])
}

/// An item `{"name", "path"?, "size", "chunks"}` of `size` bytes in one chunk (none when 0).
fn item(path: Option<Value>, name: &str, size: u64) -> Value {
    let chunks = if size == 0 {
        json!([])
    } else {
        json!([{"blobId": BLOB_ID, "offset": 0, "length": 1048592, "key": KEY, "nonce": NONCE,
                "realSize": size}])
    };
    let mut v = json!({"name": name});
    if let Some(p) = path {
        v["path"] = p;
    }
    v["size"] = json!(size);
    v["chunks"] = chunks;
    v
}

/// A signed plain manifest of these collections (each a list of items).
fn signed(collections: &[Vec<Value>]) -> String {
    let cols: Vec<Value> = collections
        .iter()
        .enumerate()
        .map(|(i, items)| json!({"title": format!("c{i}"), "items": items}))
        .collect();
    let mut value = json!({
        "publicKey": identity().public_key_hex(),
        "sequence": 3,
        "collections": cols,
        "timestamp": 1732500000000u64,
    });
    let message = serde_json::to_string(&value).unwrap();
    value["signature"] = json!(hex::encode(identity().sign(message.as_bytes())));
    serde_json::to_string(&value).unwrap()
}

fn verify(collections: &[Vec<Value>]) -> Result<SignedManifest, ManifestError> {
    SignedManifest::verify(signed(collections).as_bytes())
}

fn entry(path: &[&str], name: &str, size: u64) -> FileEntry {
    let mut e = FileEntry::from_json(&item(None, name, size).to_string()).unwrap();
    e.path = path.iter().map(|s| s.to_string()).collect();
    e
}

#[test]
fn paths_are_read_signed_and_written_back() {
    let text = signed(&[vec![
        item(Some(json!(["photos", "2024"])), "a.jpg", 5),
        item(Some(json!([])), "b", 0),
        item(None, "c", 0),
    ]]);
    let m = SignedManifest::verify(text.as_bytes()).unwrap();
    let items = &m.content().unwrap().collections[0].items;
    assert_eq!(items[0].path, vec!["photos", "2024"]);
    assert_eq!(
        items[0].relative_path(),
        PathBuf::from("photos").join("2024").join("a.jpg")
    );
    assert_eq!(items[0].path_string(), "photos/2024/a.jpg");
    assert!(items[1].path.is_empty());
    assert_eq!(items[2].relative_path(), PathBuf::from("c"));
    // The signature covers `path`: changing a folder breaks it.
    let tampered = text.replace("\"2024\"", "\"2025\"");
    assert_eq!(
        SignedManifest::verify(tampered.as_bytes()).unwrap_err(),
        ManifestError::BadSignature
    );
    // Written as `"path"` in its sorted place, only when non-empty.
    assert!(items[0]
        .to_json()
        .ends_with(r#"}],"name":"a.jpg","path":["photos","2024"],"size":5}"#));
    assert_eq!(items[1].to_json(), r#"{"chunks":[],"name":"b","size":0}"#);
    assert_eq!(FileEntry::from_json(&items[0].to_json()).unwrap(), items[0]);
}

#[test]
fn created_manifests_with_folders_verify_plain_and_private() {
    let content = ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items: vec![
                entry(&["a", "b \"q\" \u{2028} \u{1} é"], "f", 3),
                entry(&["a"], "g", 0),
            ],
        }],
        timestamp: 1,
    };
    let m = create_manifest(&identity(), 9, &content).unwrap();
    let back = SignedManifest::verify(m.as_bytes()).unwrap();
    assert_eq!(back.content(), Some(&content));
    let key = ReadKey::from_bytes([4; 32]);
    let p = create_private_manifest(&identity(), 10, &content, &key).unwrap();
    let back = SignedManifest::verify(p.as_bytes()).unwrap();
    assert_eq!(back.decrypt(&key).unwrap(), content);
}

#[test]
fn unsafe_components_each_have_their_error() {
    for (bad, reason) in [
        ("..", "a directory reference"),
        (".", "a directory reference"),
        ("a/b", "contains '/'"),
        ("", "empty"),
        ("a\\b", "contains '\\'"),
        ("a\u{0}b", "contains NUL"),
    ] {
        let err = verify(&[vec![item(Some(json!(["ok", bad])), "f", 0)]]).unwrap_err();
        assert_eq!(
            err,
            ManifestError::UnsafePathComponent {
                field: "collections[0].items[0].path[1]".into(),
                component: bad.into(),
                reason,
            },
            "{bad:?}"
        );
        assert!(err.to_string().contains("unsafe folder name"), "{err}");
    }
}

#[test]
fn wrong_types_depth_and_length() {
    for bad in [json!("a/b"), json!([1]), json!([null]), json!({"0": "a"})] {
        assert_eq!(
            verify(&[vec![item(Some(bad.clone()), "f", 0)]]).unwrap_err(),
            ManifestError::WrongType {
                field: "collections[0].items[0].path".into(),
                expected: "an array of strings",
            },
            "{bad}"
        );
    }
    let deep: Vec<String> = (0..=MAX_PATH_COMPONENTS).map(|i| i.to_string()).collect();
    assert_eq!(
        verify(&[vec![item(Some(json!(deep)), "f", 0)]]).unwrap_err(),
        ManifestError::PathTooDeep {
            field: "collections[0].items[0].path".into(),
            count: MAX_PATH_COMPONENTS + 1,
            max: MAX_PATH_COMPONENTS,
        }
    );
    let ok: Vec<String> = (0..MAX_PATH_COMPONENTS).map(|i| i.to_string()).collect();
    verify(&[vec![item(Some(json!(ok)), "f", 0)]]).unwrap();
    // 4096 bytes joined with '/' pass, one more does not.
    let at_limit = vec!["x".repeat(2047), "y".repeat(2048)];
    verify(&[vec![item(Some(json!(at_limit)), "f", 0)]]).unwrap();
    let over = vec!["x".repeat(2048), "y".repeat(2048)];
    assert_eq!(
        verify(&[vec![item(Some(json!(over)), "f", 0)]]).unwrap_err(),
        ManifestError::PathTooLong {
            field: "collections[0].items[0].path".into(),
            len: MAX_PATH_LEN + 1,
            max: MAX_PATH_LEN,
        }
    );
}

#[test]
fn colliding_entries_are_refused() {
    // The same path twice, with different content: in one collection, or across two.
    let err = verify(&[vec![
        item(Some(json!(["d"])), "f", 1),
        item(Some(json!(["d"])), "f", 2),
    ]])
    .unwrap_err();
    assert_eq!(
        err,
        ManifestError::PathCollision {
            path: "d/f".into(),
            first: "collections[0].items[0]".into(),
            second: "collections[0].items[1]".into(),
        }
    );
    assert_eq!(
        verify(&[
            vec![item(None, "f", 1)],
            vec![item(Some(json!([])), "f", 0)]
        ])
        .unwrap_err(),
        ManifestError::PathCollision {
            path: "f".into(),
            first: "collections[0].items[0]".into(),
            second: "collections[1].items[0]".into(),
        }
    );
    // The same entry listed twice (e.g. in two collections) is one file: accepted.
    verify(&[
        vec![item(Some(json!(["d"])), "f", 1)],
        vec![item(Some(json!(["d"])), "f", 1)],
    ])
    .unwrap();

    // A file where another entry needs a folder, in either order, at any depth.
    assert_eq!(
        verify(&[vec![item(None, "a", 0), item(Some(json!(["a"])), "b", 0)]]).unwrap_err(),
        ManifestError::FileFolderConflict {
            path: "a".into(),
            file: "collections[0].items[0]".into(),
            inside: "collections[0].items[1]".into(),
        }
    );
    assert_eq!(
        verify(&[vec![
            item(Some(json!(["x", "a", "b"])), "c", 0),
            item(Some(json!(["x"])), "a", 0),
        ]])
        .unwrap_err(),
        ManifestError::FileFolderConflict {
            path: "x/a".into(),
            file: "collections[0].items[1]".into(),
            inside: "collections[0].items[0]".into(),
        }
    );
    // Same names at different places are fine.
    verify(&[vec![
        item(Some(json!(["a"])), "a", 0),
        item(Some(json!(["a", "b"])), "a", 0),
        item(Some(json!(["b"])), "a", 0),
    ]])
    .unwrap();
}

#[test]
fn creation_refuses_what_verification_refuses() {
    let content = |items: Vec<FileEntry>| ManifestContent {
        collections: vec![Collection {
            title: "t".into(),
            items,
        }],
        timestamp: 1,
    };
    assert!(matches!(
        create_manifest(&identity(), 1, &content(vec![entry(&[".."], "f", 0)])),
        Err(ManifestError::UnsafePathComponent { .. })
    ));
    assert!(matches!(
        create_manifest(
            &identity(),
            1,
            &content(vec![entry(&["d"], "f", 1), entry(&["d"], "f", 2)])
        ),
        Err(ManifestError::PathCollision { .. })
    ));
    assert!(matches!(
        create_manifest(
            &identity(),
            1,
            &content(vec![entry(&[], "d", 0), entry(&["d"], "f", 0)])
        ),
        Err(ManifestError::FileFolderConflict { .. })
    ));
    assert!(matches!(
        FileEntry::from_json(r#"{"name":"f","path":["a/b"],"size":0,"chunks":[]}"#),
        Err(ManifestError::UnsafePathComponent { .. })
    ));
}
