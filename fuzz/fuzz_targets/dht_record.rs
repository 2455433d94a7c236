//! DHT record values (PROTOCOL.md 4): inline manifests and pointer records (one or two levels).
//!
//! Any bytes decode to a typed error, an inline value (the bytes themselves, then validated as
//! a manifest as a reader does), or a pointer record whose encoding decodes to itself, whose
//! size is within the cap and whose part list fits its size and levels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::dht::record::{decode_value, MAX_MANIFEST_SIZE, PART_SIZE};
use megatorrent::dht::RecordValue;
use megatorrent::manifest::SignedManifest;

fuzz_target!(|data: &[u8]| {
    match decode_value(data) {
        Ok(RecordValue::Inline(bytes)) => {
            assert_eq!(bytes, data);
            if let Ok(m) = SignedManifest::verify(&bytes) {
                assert!(m.sequence() >= 1);
            }
        }
        Ok(RecordValue::Pointer(p)) => {
            assert!(p.size >= 1 && p.size <= MAX_MANIFEST_SIZE && p.sequence >= 1);
            let data_parts = p.size.div_ceil(PART_SIZE as u64);
            match p.levels {
                1 => assert_eq!(p.parts.len() as u64, data_parts),
                2 => assert!(!p.parts.is_empty() && p.parts.len() as u64 <= data_parts),
                other => panic!("decoded a pointer with {other} levels"),
            }
            let encoded = p.encode();
            assert_eq!(
                decode_value(&encoded).expect("an encoded pointer decodes"),
                RecordValue::Pointer(p.clone())
            );
            // Joining parts that are not the named ones is refused, never panics.
            let wrong = vec![vec![0u8; 3]; p.parts.len().min(4)];
            assert!(p.join(&wrong).is_err());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
