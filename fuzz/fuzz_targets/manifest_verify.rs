//! Manifest parse + verify (PROTOCOL.md 2.3, 2.4) on arbitrary text.
//!
//! First byte even: the rest is verified as it is (almost always refused at or before the
//! signature check). Odd: the rest is signed first, as the reference signs, so the fuzzer also
//! reaches everything after the signature check. A verified manifest must re-verify to itself,
//! its content must survive create -> verify, every file's relative path must be plain
//! components only, and its Debug output must hold no chunk key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::manifest::{create_manifest, SignedManifest};
use megatorrent_fuzz::{identity, sign_appended};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(rest);
    } else if let Some(signed) = sign_appended(&identity(), rest) {
        if let Some(m) = check(&signed) {
            assert_eq!(m.public_key(), identity().public_key_bytes());
        }
    }
});

fn check(bytes: &[u8]) -> Option<SignedManifest> {
    let m = match SignedManifest::verify(bytes) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    assert_eq!(m.as_bytes(), bytes.trim_ascii());
    let again = SignedManifest::verify(m.as_bytes()).expect("a verified text verifies again");
    assert_eq!(again, m);
    assert_eq!(
        (again.public_key(), again.sequence(), again.is_private()),
        (m.public_key(), m.sequence(), m.is_private())
    );
    let dbg = format!("{m:?}");
    if let Some(content) = m.content() {
        for chunk in content
            .collections
            .iter()
            .flat_map(|c| &c.items)
            .flat_map(|f| &f.chunks)
        {
            assert!(!dbg.contains(&hex::encode(chunk.key)), "chunk key in Debug");
        }
        // Every file lands below the download folder: plain components only.
        for file in content.collections.iter().flat_map(|c| &c.items) {
            let rel = file.relative_path();
            assert!(rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))));
            assert_eq!(rel.components().count(), file.path.len() + 1);
        }
        let created = create_manifest(&identity(), m.sequence(), content)
            .expect("verified content can be re-created");
        let back = SignedManifest::verify(created.as_bytes()).expect("created manifest verifies");
        assert_eq!(back.content(), Some(content));
    }
    Some(m)
}
