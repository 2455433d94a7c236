//! Following a pointer record (PROTOCOL.md 4, extension): a fuzzed record plus fuzzed parts,
//! each served under its own SHA-256 so the fuzzer gets past the hash checks to the structure
//! checks (levels, counts, cycles, repeated parts, sizes).
//!
//! Input: a 2-byte big-endian record length, the record value, then parts, each a 3-byte
//! big-endian length and its bytes. A fetch either fails with a typed error or yields exactly
//! the declared size, asking for each part at most once.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use megatorrent::dht::record::decode_value;
use megatorrent::dht::{fetch_manifest, FetchError, FetchFuture, PartFetcher, RecordValue};
use megatorrent::id::BlobId;

struct Parts {
    by_id: HashMap<BlobId, Vec<u8>>,
    asked: Mutex<Vec<BlobId>>,
}

impl PartFetcher for Parts {
    fn fetch<'a>(&'a self, id: BlobId, _peers: &'a [SocketAddr]) -> FetchFuture<'a> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(id);
        }
        let found = self.by_id.get(&id).cloned();
        Box::pin(async move { found.ok_or_else(|| FetchError("absent".into())) })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (record, mut rest) = rest.split_at(len);
    let mut by_id = HashMap::new();
    while let Some((len, tail)) = rest.split_first_chunk::<3>() {
        let len = (usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]))
            .min(tail.len());
        let (part, tail) = tail.split_at(len);
        by_id.insert(BlobId::of(part), part.to_vec());
        rest = tail;
    }
    let Ok(RecordValue::Pointer(pointer)) = decode_value(record) else {
        return;
    };
    let parts = Parts {
        by_id,
        asked: Mutex::new(Vec::new()),
    };
    let result = futures_lite::future::block_on(fetch_manifest(&pointer, &parts, |_| async {
        Vec::new()
    }));
    let asked = parts.asked.into_inner().unwrap_or_default();
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    // Each part is asked once with no peer known, then once more after the (empty) lookup.
    assert!(asked.len() <= 2 * distinct.len());
    match result {
        Ok(bytes) => assert_eq!(bytes.len() as u64, pointer.size),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
