//! The value stored in a manifest record (PROTOCOL.md 4): either the manifest itself (inline) or,
//! when it is larger than one BEP 44 value, a pointer record naming the manifest's parts.
//!
//! Pointer record (extension), compact JSON in this key order:
//! `{"publicKey":"<hex>","sequence":<int>,"manifestParts":["<64 hex>",...],"size":<int>}`.
//! One level: the listed parts, joined in order, are the manifest. Two levels (extension, 5.1):
//! the record ends with `,"levels":2` and each listed part is an index part, the compact JSON
//! array of the ids of the manifest's parts (`["<64 hex>",...]`); the index parts' lists, in
//! order, are the manifest's parts in order. Writers fill each index part with [`MAX_INDEX_IDS`]
//! ids but the last, and use two levels only when one does not fit in a record.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::dht::bep44::MAX_VALUE_LEN;
use crate::id::{decode_hex_array, BlobId};
use crate::manifest::MAX_MANIFEST_LEN;

/// Largest manifest part, and largest index part.
pub const PART_SIZE: usize = 1 << 20;
/// Largest manifest a pointer record may describe: the manifest size limit.
pub const MAX_MANIFEST_SIZE: u64 = MAX_MANIFEST_LEN as u64;
/// Most levels of parts: 1, the manifest's parts; 2, index parts listing them.
pub const MAX_LEVELS: u64 = 2;
/// Ids in a full index part: `["<64 hex>",...]` takes 67 bytes per id plus one, within
/// [`PART_SIZE`].
pub const MAX_INDEX_IDS: usize = (PART_SIZE - 1) / 67;
/// Largest sequence number (JavaScript-safe integer, PROTOCOL.md 2.1).
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// Why a record value was refused or could not be built. Everything here is checked before
/// any part is fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The value is not JSON (a manifest or a pointer record both are).
    #[error("record value is not a JSON object: {0}")]
    NotJson(String),
    /// A pointer record with missing, extra or mistyped fields.
    #[error("malformed pointer record: {0}")]
    MalformedPointer(String),
    /// A hex field of the pointer record is wrong.
    #[error("pointer record {field}: {reason}")]
    BadHex {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The number of parts listed does not match the size (parts are 1 MiB except the last;
    /// with two levels, between enough index parts to list every part and one per part).
    #[error("pointer record lists {parts} parts for {size} bytes (expected {expected})")]
    PartCountMismatch {
        /// Parts listed.
        parts: usize,
        /// Declared size.
        size: u64,
        /// Parts that size needs.
        expected: u64,
    },
    /// A manifest (or a declared size) of zero bytes or above the manifest limit.
    #[error("manifest size {0} is outside 1..={MAX_MANIFEST_SIZE} bytes")]
    BadSize(u64),
    /// A `levels` other than 1 or 2.
    #[error("pointer record has {0} levels of parts; 1 or {MAX_LEVELS} are supported")]
    BadLevels(u64),
    /// The record lists one part twice.
    #[error("pointer record lists part {0} twice")]
    RepeatedPart(BlobId),
    /// A sequence number outside 1..=2^53-1.
    #[error("sequence {0} is outside 1..=2^53-1")]
    BadSequence(u64),
    /// The pointer record itself does not fit in one BEP 44 value.
    #[error("pointer record of {len} bytes ({parts} parts) exceeds the {MAX_VALUE_LEN}-byte record limit")]
    PointerTooLarge {
        /// Encoded record length.
        len: usize,
        /// Number of parts.
        parts: usize,
    },
}

/// A decoded record value.
#[derive(Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// The manifest's own bytes (not yet validated as a manifest).
    Inline(Vec<u8>),
    /// Where to find a manifest too large for a record.
    Pointer(PointerRecord),
}

/// Names the parts of a manifest too large for one record.
#[derive(Clone, PartialEq, Eq)]
pub struct PointerRecord {
    /// The manifest's publicKey.
    pub public_key: [u8; 32],
    /// The manifest's sequence.
    pub sequence: u64,
    /// The parts, in order, each named by its SHA-256: the manifest's parts (one level) or
    /// index parts (two levels).
    pub parts: Vec<BlobId>,
    /// Total manifest size in bytes.
    pub size: u64,
    /// 1: `parts` are the manifest's parts; 2: `parts` are index parts listing them.
    pub levels: u64,
}

impl std::fmt::Debug for RecordValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Manifest text is JSON: show it as text, not as a list of byte values.
            Self::Inline(bytes) => f
                .debug_tuple("Inline")
                .field(&String::from_utf8_lossy(bytes))
                .finish(),
            Self::Pointer(p) => f.debug_tuple("Pointer").field(p).finish(),
        }
    }
}

impl std::fmt::Debug for PointerRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            public_key,
            sequence,
            parts,
            size,
            levels,
        } = self;
        f.debug_struct("PointerRecord")
            .field("public_key", &crate::id::HexDebug(public_key))
            .field("sequence", sequence)
            .field("parts", parts)
            .field("size", size)
            .field("levels", levels)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointerJson {
    #[serde(rename = "publicKey")]
    public_key: String,
    sequence: u64,
    #[serde(rename = "manifestParts")]
    manifest_parts: Vec<String>,
    size: u64,
    // Absent in one-level records, so they stay byte for byte what earlier versions wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    levels: Option<u64>,
}

/// A manifest cut into parts: each part's id and bytes (index parts first, then the
/// manifest's parts, in order).
pub type Parts<'a> = Vec<(BlobId, Cow<'a, [u8]>)>;

/// Manifest parts `size` bytes need.
pub fn data_parts(size: u64) -> u64 {
    size.div_ceil(PART_SIZE as u64)
}

/// Index parts listing `data` manifest parts.
fn index_parts(data: u64) -> u64 {
    data.div_ceil(MAX_INDEX_IDS as u64)
}

fn check_sequence(sequence: u64) -> Result<(), RecordError> {
    if sequence == 0 || sequence > MAX_SEQUENCE {
        return Err(RecordError::BadSequence(sequence));
    }
    Ok(())
}

/// The compact JSON array of `ids`: an index part.
pub fn encode_index(ids: &[BlobId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 67 + 2);
    out.push(b'[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(id.to_hex().as_bytes());
        out.push(b'"');
    }
    out.push(b']');
    out
}

/// Parse an index part: a JSON array of 64-hex part ids.
pub fn decode_index(bytes: &[u8]) -> Result<Vec<BlobId>, String> {
    let hexes: Vec<String> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    hexes
        .iter()
        .map(|h| BlobId::from_hex(h).map_err(|e| format!("{h:?}: {e}")))
        .collect()
}

impl PointerRecord {
    /// Cut `manifest` into parts and describe them: one level when that record fits in a
    /// BEP 44 value, else two. Returns the record and every part to serve (index parts first).
    pub fn split(
        public_key: [u8; 32],
        sequence: u64,
        manifest: &[u8],
    ) -> Result<(Self, Parts<'_>), RecordError> {
        check_sequence(sequence)?;
        let size = manifest.len() as u64;
        if size == 0 || size > MAX_MANIFEST_SIZE {
            return Err(RecordError::BadSize(size));
        }
        let data: Vec<(BlobId, Cow<'_, [u8]>)> = manifest
            .chunks(PART_SIZE)
            .map(|c| (BlobId::of(c), Cow::Borrowed(c)))
            .collect();
        let data_ids: Vec<BlobId> = data.iter().map(|(id, _)| *id).collect();
        let record = Self {
            public_key,
            sequence,
            parts: data_ids.clone(),
            size,
            levels: 1,
        };
        if record.encode().len() <= MAX_VALUE_LEN {
            return Ok((record, data));
        }
        let index: Vec<(BlobId, Cow<'_, [u8]>)> = data_ids
            .chunks(MAX_INDEX_IDS)
            .map(|ids| {
                let bytes = encode_index(ids);
                (BlobId::of(&bytes), Cow::Owned(bytes))
            })
            .collect();
        let record = Self {
            parts: index.iter().map(|(id, _)| *id).collect(),
            levels: 2,
            ..record
        };
        // Refuse here rather than let the DHT drop an oversized value silently.
        let len = record.encode().len();
        if len > MAX_VALUE_LEN {
            return Err(RecordError::PointerTooLarge {
                len,
                parts: record.parts.len(),
            });
        }
        let mut parts = index;
        parts.extend(data);
        Ok((record, parts))
    }

    /// The compact JSON bytes, keys in protocol order (`levels` only for two levels).
    pub fn encode(&self) -> Vec<u8> {
        let json = PointerJson {
            public_key: hex::encode(self.public_key),
            sequence: self.sequence,
            manifest_parts: self.parts.iter().map(BlobId::to_hex).collect(),
            size: self.size,
            levels: (self.levels != 1).then_some(self.levels),
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }

    /// Manifest parts the record's size needs.
    pub fn data_parts(&self) -> u64 {
        data_parts(self.size)
    }

    /// Check that `parts` (the manifest's parts, fetched, in order) are the ones a one-level
    /// record names and join them.
    pub fn join(&self, parts: &[Vec<u8>]) -> Result<Vec<u8>, PartError> {
        if parts.len() != self.parts.len() {
            return Err(PartError::Count {
                got: parts.len(),
                expected: self.parts.len(),
            });
        }
        let mut joiner = Joiner::new(self.size);
        for (id, bytes) in self.parts.iter().zip(parts) {
            if !id.matches(bytes) {
                return Err(PartError::HashMismatch { id: *id });
            }
            joiner.push(bytes)?;
        }
        joiner.finish()
    }
}

/// Joins fetched parts, refusing as soon as they exceed the declared size (so a hostile part
/// never grows the buffer past it).
#[derive(Debug)]
pub(crate) struct Joiner {
    out: Vec<u8>,
    size: u64,
}

impl Joiner {
    pub(crate) fn new(size: u64) -> Self {
        Self {
            // The size was capped when the record was decoded.
            out: Vec::with_capacity(size.min(MAX_MANIFEST_SIZE) as usize),
            size,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<(), PartError> {
        let got = self.out.len() as u64 + bytes.len() as u64;
        if got > self.size {
            return Err(PartError::SizeMismatch {
                got,
                expected: self.size,
            });
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>, PartError> {
        if self.out.len() as u64 != self.size {
            return Err(PartError::SizeMismatch {
                got: self.out.len() as u64,
                expected: self.size,
            });
        }
        Ok(self.out)
    }
}

/// Why fetched parts do not make up the manifest a pointer record names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartError {
    /// Wrong number of parts.
    #[error("got {got} parts, expected {expected}")]
    Count {
        /// Parts given.
        got: usize,
        /// Parts named.
        expected: usize,
    },
    /// A part's content does not hash to its id.
    #[error("part {id} does not match its SHA-256")]
    HashMismatch {
        /// The part's id.
        id: BlobId,
    },
    /// The joined parts are not `size` bytes (or already exceed it).
    #[error("joined parts are {got} bytes, record says {expected}")]
    SizeMismatch {
        /// Joined length (so far).
        got: u64,
        /// Declared size.
        expected: u64,
    },
    /// A part larger than [`PART_SIZE`].
    #[error("part {id} is {len} bytes, more than a part holds")]
    TooLarge {
        /// The part's id.
        id: BlobId,
        /// Its length.
        len: usize,
    },
    /// An index part that is not a JSON array of 64-hex ids.
    #[error("index part {id} is malformed: {reason}")]
    BadIndex {
        /// The index part's id.
        id: BlobId,
        /// What is wrong.
        reason: String,
    },
    /// An index part lists an index part of the same record (itself included): the tree
    /// would loop.
    #[error("index part {index} lists index part {id}: a cycle")]
    Cycle {
        /// The index part listing it.
        index: BlobId,
        /// The index part listed.
        id: BlobId,
    },
    /// A part listed twice.
    #[error("part {id} is listed twice")]
    RepeatedPart {
        /// The part.
        id: BlobId,
    },
}

/// Check the manifest part ids listed by the index part `index` of a two-level `pointer`:
/// a non-empty JSON array of ids, no index part of the record among them (it would send the
/// reader round again: a cycle), none seen before (`seen` holds every id so far, index parts
/// included).
pub(crate) fn check_index(
    pointer: &PointerRecord,
    index: BlobId,
    bytes: &[u8],
    seen: &mut HashSet<BlobId>,
) -> Result<Vec<BlobId>, PartError> {
    let ids = decode_index(bytes).map_err(|reason| PartError::BadIndex { id: index, reason })?;
    if ids.is_empty() {
        return Err(PartError::BadIndex {
            id: index,
            reason: "lists no part".into(),
        });
    }
    for id in &ids {
        if pointer.parts.contains(id) {
            return Err(PartError::Cycle { index, id: *id });
        }
        if !seen.insert(*id) {
            return Err(PartError::RepeatedPart { id: *id });
        }
    }
    Ok(ids)
}

/// Decode a record value: a pointer record when it has `manifestParts`, otherwise the inline
/// manifest bytes (validated later as a manifest). A pointer's size, levels, part count and
/// repeated parts are checked here, before anything is fetched.
pub fn decode_value(value: &[u8]) -> Result<RecordValue, RecordError> {
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| RecordError::NotJson(e.to_string()))?;
    let Some(obj) = json.as_object() else {
        return Err(RecordError::NotJson("not an object".into()));
    };
    if !obj.contains_key("manifestParts") {
        return Ok(RecordValue::Inline(value.to_vec()));
    }
    let p: PointerJson =
        serde_json::from_value(json).map_err(|e| RecordError::MalformedPointer(e.to_string()))?;
    let public_key = decode_hex_array::<32>(&p.public_key).map_err(|e| RecordError::BadHex {
        field: "publicKey",
        reason: e.to_string(),
    })?;
    check_sequence(p.sequence)?;
    if p.size == 0 || p.size > MAX_MANIFEST_SIZE {
        return Err(RecordError::BadSize(p.size));
    }
    let levels = p.levels.unwrap_or(1);
    let listed = p.manifest_parts.len() as u64;
    let data = data_parts(p.size);
    let expected = match levels {
        1 => data,
        // Each index part lists at least one part and at most MAX_INDEX_IDS.
        2 => listed.clamp(index_parts(data), data),
        other => return Err(RecordError::BadLevels(other)),
    };
    if listed != expected {
        return Err(RecordError::PartCountMismatch {
            parts: p.manifest_parts.len(),
            size: p.size,
            expected,
        });
    }
    let parts = p
        .manifest_parts
        .iter()
        .map(|h| BlobId::from_hex(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RecordError::BadHex {
            field: "manifestParts",
            reason: e.to_string(),
        })?;
    let mut seen = HashSet::with_capacity(parts.len());
    if let Some(id) = parts.iter().find(|id| !seen.insert(**id)) {
        return Err(RecordError::RepeatedPart(*id));
    }
    Ok(RecordValue::Pointer(PointerRecord {
        public_key,
        sequence: p.sequence,
        parts,
        size: p.size,
        levels,
    }))
}
#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0xab; 32];

    #[test]
    fn pointer_round_trip_and_exact_form() {
        let manifest = vec![b'x'; PART_SIZE + 10];
        let (rec, parts) = PointerRecord::split(KEY, 42, &manifest).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].1.len(), 10);
        let text = String::from_utf8(rec.encode()).unwrap();
        let expected = format!(
            "{{\"publicKey\":\"{}\",\"sequence\":42,\"manifestParts\":[\"{}\",\"{}\"],\"size\":{}}}",
            hex::encode(KEY),
            parts[0].0,
            parts[1].0,
            PART_SIZE + 10
        );
        assert_eq!(text, expected);
        assert_eq!(
            decode_value(text.as_bytes()).unwrap(),
            RecordValue::Pointer(rec.clone())
        );
        let fetched: Vec<Vec<u8>> = parts.iter().map(|(_, b)| b.to_vec()).collect();
        assert_eq!(rec.join(&fetched).unwrap(), manifest);
        let mut bad = fetched.clone();
        bad[1][0] ^= 1;
        assert_eq!(
            rec.join(&bad).unwrap_err(),
            PartError::HashMismatch { id: rec.parts[1] }
        );
        assert_eq!(
            rec.join(&fetched[..1]).unwrap_err(),
            PartError::Count {
                got: 1,
                expected: 2
            }
        );
    }

    #[test]
    fn inline_values_pass_through() {
        let m = br#"{"publicKey":"aa","sequence":1,"collections":[]}"#;
        assert_eq!(decode_value(m).unwrap(), RecordValue::Inline(m.to_vec()));
        assert!(matches!(
            decode_value(b"\xff\x00").unwrap_err(),
            RecordError::NotJson(_)
        ));
        assert!(matches!(
            decode_value(b"[1]").unwrap_err(),
            RecordError::NotJson(_)
        ));
    }

    #[test]
    fn strict_pointer_decoding() {
        let id = BlobId::of(b"p").to_hex();
        let key = hex::encode(KEY);
        let mk = |extra: &str, seq: &str, parts: &str, size: &str| {
            format!(
                "{{\"publicKey\":\"{key}\",\"sequence\":{seq},\"manifestParts\":[{parts}],\"size\":{size}{extra}}}"
            )
        };
        let one = format!("\"{id}\"");
        assert!(decode_value(mk("", "1", &one, "5").as_bytes()).is_ok());
        assert!(matches!(
            decode_value(mk(",\"x\":1", "1", &one, "5").as_bytes()).unwrap_err(),
            RecordError::MalformedPointer(_)
        ));
        assert_eq!(
            decode_value(mk("", "0", &one, "5").as_bytes()).unwrap_err(),
            RecordError::BadSequence(0)
        );
        assert_eq!(
            decode_value(mk("", "9007199254740992", &one, "5").as_bytes()).unwrap_err(),
            RecordError::BadSequence(1 << 53)
        );
        assert_eq!(
            decode_value(mk("", "1", &one, "0").as_bytes()).unwrap_err(),
            RecordError::BadSize(0)
        );
        assert_eq!(
            decode_value(mk("", "1", &one, "268435457").as_bytes()).unwrap_err(),
            RecordError::BadSize(268435457)
        );
        assert_eq!(
            decode_value(mk("", "1", &one, "1048577").as_bytes()).unwrap_err(),
            RecordError::PartCountMismatch {
                parts: 1,
                size: 1048577,
                expected: 2
            }
        );
        let upper = format!("\"{}\"", id.to_uppercase());
        assert!(matches!(
            decode_value(mk("", "1", &upper, "5").as_bytes()).unwrap_err(),
            RecordError::BadHex {
                field: "manifestParts",
                ..
            }
        ));
        let short_key = mk("", "1", &one, "5").replace(&key, &key[..62]);
        assert!(matches!(
            decode_value(short_key.as_bytes()).unwrap_err(),
            RecordError::BadHex {
                field: "publicKey",
                ..
            }
        ));
        assert!(matches!(
            decode_value(mk("", "-1", &one, "5").as_bytes()).unwrap_err(),
            RecordError::MalformedPointer(_)
        ));
    }

    #[test]
    fn split_limits() {
        assert_eq!(
            PointerRecord::split(KEY, 1, b"").unwrap_err(),
            RecordError::BadSize(0)
        );
        assert_eq!(
            PointerRecord::split(KEY, 0, b"x").unwrap_err(),
            RecordError::BadSequence(0)
        );
        let over = vec![0u8; MAX_MANIFEST_SIZE as usize + 1];
        assert_eq!(
            PointerRecord::split(KEY, 1, &over).unwrap_err(),
            RecordError::BadSize(MAX_MANIFEST_SIZE + 1)
        );
    }

    /// `n` bytes whose 1 MiB parts all differ.
    fn distinct_bytes(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i / PART_SIZE) as u8 ^ (i % 251) as u8)
            .collect()
    }

    #[test]
    fn one_level_while_it_fits_then_two() {
        // 12 parts fit in one record, as before 5.1 (no `levels` key).
        let twelve = distinct_bytes(12 * PART_SIZE);
        let (rec, parts) = PointerRecord::split(KEY, 3, &twelve).unwrap();
        assert_eq!((rec.levels, rec.parts.len(), parts.len()), (1, 12, 12));
        assert!(!String::from_utf8(rec.encode()).unwrap().contains("levels"));
        // 13 do not: one index part listing the 13 parts.
        let thirteen = distinct_bytes(12 * PART_SIZE + 1);
        let (rec, parts) = PointerRecord::split(KEY, 3, &thirteen).unwrap();
        assert_eq!((rec.levels, rec.parts.len(), parts.len()), (2, 1, 14));
        let text = String::from_utf8(rec.encode()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"publicKey\":\"{}\",\"sequence\":3,\"manifestParts\":[\"{}\"],\"size\":{},\"levels\":2}}",
                hex::encode(KEY),
                rec.parts[0],
                12 * PART_SIZE + 1
            )
        );
        assert!(text.len() <= MAX_VALUE_LEN);
        assert_eq!(
            decode_value(text.as_bytes()).unwrap(),
            RecordValue::Pointer(rec.clone())
        );
        // The index part lists the manifest's parts, which join back into it.
        assert_eq!(parts[0].0, rec.parts[0]);
        let listed = decode_index(&parts[0].1).unwrap();
        let data: Vec<BlobId> = parts[1..].iter().map(|(id, _)| *id).collect();
        assert_eq!(listed, data);
        let joined: Vec<u8> = parts[1..]
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        assert_eq!(joined, thirteen);
        // At the cap: still one index part.
        assert_eq!(index_parts(data_parts(MAX_MANIFEST_SIZE)), 1);
        // A full index part fits in a part; one more id would not.
        let full = vec![BlobId::of(b"id"); MAX_INDEX_IDS + 1];
        assert!(encode_index(&full[1..]).len() <= PART_SIZE);
        assert!(encode_index(&full).len() > PART_SIZE);
    }

    #[test]
    fn two_level_records_are_checked_before_fetching() {
        let key = hex::encode(KEY);
        let id = |n: u8| BlobId::of(&[n]).to_hex();
        let rec = |parts: &[String], size: u64, levels: &str| {
            let list: Vec<String> = parts.iter().map(|p| format!("\"{p}\"")).collect();
            format!(
                "{{\"publicKey\":\"{key}\",\"sequence\":1,\"manifestParts\":[{}],\"size\":{size}{levels}}}",
                list.join(",")
            )
        };
        let big = 100 * PART_SIZE as u64;
        assert!(matches!(
            decode_value(rec(&[id(1)], big, ",\"levels\":2").as_bytes()).unwrap(),
            RecordValue::Pointer(PointerRecord { levels: 2, .. })
        ));
        // An explicit one level is one level.
        assert!(decode_value(rec(&[id(1)], 5, ",\"levels\":1").as_bytes()).is_ok());
        for bad in [0, 3, 1000] {
            assert_eq!(
                decode_value(rec(&[id(1)], big, &format!(",\"levels\":{bad}")).as_bytes())
                    .unwrap_err(),
                RecordError::BadLevels(bad)
            );
        }
        // Several index parts are fine, up to one per manifest part.
        assert!(decode_value(rec(&[id(1), id(2)], big, ",\"levels\":2").as_bytes()).is_ok());
        let three: Vec<String> = (1..=3).map(id).collect();
        assert_eq!(
            decode_value(rec(&three, 2 * PART_SIZE as u64, ",\"levels\":2").as_bytes())
                .unwrap_err(),
            RecordError::PartCountMismatch {
                parts: 3,
                size: 2 * PART_SIZE as u64,
                expected: 2
            }
        );
        assert_eq!(
            decode_value(rec(&[], big, ",\"levels\":2").as_bytes()).unwrap_err(),
            RecordError::PartCountMismatch {
                parts: 0,
                size: big,
                expected: 1
            }
        );
        assert_eq!(
            decode_value(rec(&[id(1)], MAX_MANIFEST_SIZE + 1, ",\"levels\":2").as_bytes())
                .unwrap_err(),
            RecordError::BadSize(MAX_MANIFEST_SIZE + 1)
        );
        assert_eq!(
            decode_value(rec(&[id(1), id(1)], PART_SIZE as u64 + 1, "").as_bytes()).unwrap_err(),
            RecordError::RepeatedPart(BlobId::of(&[1]))
        );
    }

    #[test]
    fn index_parts_are_checked() {
        let data: Vec<BlobId> = (0..3u8).map(|n| BlobId::of(&[n])).collect();
        let index = encode_index(&data);
        let index_id = BlobId::of(&index);
        let pointer = PointerRecord {
            public_key: KEY,
            sequence: 1,
            parts: vec![index_id],
            size: 2 * PART_SIZE as u64 + 1,
            levels: 2,
        };
        let seen = || HashSet::from([index_id]);
        assert_eq!(
            check_index(&pointer, index_id, &index, &mut seen()).unwrap(),
            data
        );
        let with = |ids: &[BlobId]| encode_index(ids);
        assert_eq!(
            check_index(&pointer, index_id, &with(&[data[0], index_id]), &mut seen()).unwrap_err(),
            PartError::Cycle {
                index: index_id,
                id: index_id
            }
        );
        assert_eq!(
            check_index(
                &pointer,
                index_id,
                &with(&[data[0], data[1], data[0]]),
                &mut seen()
            )
            .unwrap_err(),
            PartError::RepeatedPart { id: data[0] }
        );
        for bad in [&b"{}"[..], b"[]", b"[1]", b"[\"AB\"]", b"", b"[\"x\"] junk"] {
            assert!(matches!(
                check_index(&pointer, index_id, bad, &mut seen()).unwrap_err(),
                PartError::BadIndex { .. }
            ));
        }
    }
}
