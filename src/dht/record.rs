//! The value stored in a manifest record (PROTOCOL.md 4): either the manifest itself (inline) or,
//! when it is larger than one BEP 44 value, a pointer record naming the manifest's parts.
//!
//! Pointer record (extension), compact JSON in this key order:
//! `{"publicKey":"<hex>","sequence":<int>,"manifestParts":["<64 hex>",...],"size":<int>}`.

use serde::{Deserialize, Serialize};

use crate::dht::bep44::MAX_VALUE_LEN;
use crate::id::{decode_hex_array, BlobId};

/// Largest manifest part.
pub const PART_SIZE: usize = 1 << 20;
/// Largest manifest a pointer record may describe.
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// Largest sequence number (JavaScript-safe integer, PROTOCOL.md 2.1).
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// Why a record value was refused or could not be built.
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
    /// The number of parts does not match the size (parts are 1 MiB except the last).
    #[error("pointer record lists {parts} parts for {size} bytes (expected {expected})")]
    PartCountMismatch {
        /// Parts listed.
        parts: usize,
        /// Declared size.
        size: u64,
        /// Parts that size needs.
        expected: u64,
    },
    /// A manifest (or a declared size) of zero bytes or above the 64 MiB limit.
    #[error("manifest size {0} is outside 1..={MAX_MANIFEST_SIZE} bytes")]
    BadSize(u64),
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
    /// The parts, in order, each named by its SHA-256.
    pub parts: Vec<BlobId>,
    /// Total manifest size in bytes.
    pub size: u64,
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
        } = self;
        f.debug_struct("PointerRecord")
            .field("public_key", &crate::id::HexDebug(public_key))
            .field("sequence", sequence)
            .field("parts", parts)
            .field("size", size)
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
}

/// A manifest cut into parts: each part's id and bytes, in order.
pub type Parts<'a> = Vec<(BlobId, &'a [u8])>;

fn expected_parts(size: u64) -> u64 {
    size.div_ceil(PART_SIZE as u64)
}

fn check_sequence(sequence: u64) -> Result<(), RecordError> {
    if sequence == 0 || sequence > MAX_SEQUENCE {
        return Err(RecordError::BadSequence(sequence));
    }
    Ok(())
}

impl PointerRecord {
    /// Cut `manifest` into parts and describe them. Returns the record and the parts (in order).
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
        let parts: Vec<(BlobId, &[u8])> = manifest
            .chunks(PART_SIZE)
            .map(|c| (BlobId::of(c), c))
            .collect();
        let record = Self {
            public_key,
            sequence,
            parts: parts.iter().map(|(id, _)| *id).collect(),
            size,
        };
        // Refuse here rather than let the DHT drop an oversized value silently.
        let len = record.encode().len();
        if len > MAX_VALUE_LEN {
            return Err(RecordError::PointerTooLarge {
                len,
                parts: record.parts.len(),
            });
        }
        Ok((record, parts))
    }

    /// The compact JSON bytes, keys in protocol order.
    pub fn encode(&self) -> Vec<u8> {
        let json = PointerJson {
            public_key: hex::encode(self.public_key),
            sequence: self.sequence,
            manifest_parts: self.parts.iter().map(BlobId::to_hex).collect(),
            size: self.size,
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }

    /// Check that `parts` (fetched, in order) are the ones named here and join them.
    pub fn join(&self, parts: &[Vec<u8>]) -> Result<Vec<u8>, PartError> {
        if parts.len() != self.parts.len() {
            return Err(PartError::Count {
                got: parts.len(),
                expected: self.parts.len(),
            });
        }
        let mut out = Vec::with_capacity(self.size as usize);
        for (id, bytes) in self.parts.iter().zip(parts) {
            if !id.matches(bytes) {
                return Err(PartError::HashMismatch { id: *id });
            }
            out.extend_from_slice(bytes);
        }
        if out.len() as u64 != self.size {
            return Err(PartError::SizeMismatch {
                got: out.len() as u64,
                expected: self.size,
            });
        }
        Ok(out)
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
    /// The joined parts are not `size` bytes.
    #[error("joined parts are {got} bytes, record says {expected}")]
    SizeMismatch {
        /// Joined length.
        got: u64,
        /// Declared size.
        expected: u64,
    },
}

/// Decode a record value: a pointer record when it has `manifestParts`, otherwise the inline
/// manifest bytes (validated later as a manifest).
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
    let parts = p
        .manifest_parts
        .iter()
        .map(|h| BlobId::from_hex(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RecordError::BadHex {
            field: "manifestParts",
            reason: e.to_string(),
        })?;
    let expected = expected_parts(p.size);
    if parts.len() as u64 != expected {
        return Err(RecordError::PartCountMismatch {
            parts: parts.len(),
            size: p.size,
            expected,
        });
    }
    Ok(RecordValue::Pointer(PointerRecord {
        public_key,
        sequence: p.sequence,
        parts,
        size: p.size,
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
            decode_value(mk("", "1", &one, "67108865").as_bytes()).unwrap_err(),
            RecordError::BadSize(67108865)
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
        // 13 parts do not fit in one 996-byte record.
        let big = vec![0u8; 12 * PART_SIZE + 1];
        assert!(matches!(
            PointerRecord::split(KEY, 1, &big).unwrap_err(),
            RecordError::PointerTooLarge { parts: 13, .. }
        ));
    }
}
