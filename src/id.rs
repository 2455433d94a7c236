//! Content ids and strict hex decoding.
//!
//! A blob (or manifest part) is named by the SHA-256 of its bytes, written as 64 lowercase hex
//! characters. Every id that arrives from outside goes through [`BlobId::from_hex`] before it is
//! used for anything, in particular before a path is built from it.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string does not have the required number of characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Required number of characters.
        expected: usize,
        /// Number of characters received.
        got: usize,
    },
    /// A character other than `0-9` or `a-f` (upper case is refused: the protocol writes lower case).
    #[error("not lowercase hex")]
    NotLowercaseHex,
}

/// Decode exactly `N` bytes from `2 * N` lowercase hex characters.
pub fn decode_hex_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if s.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    decode_lower_hex_into(s, &mut out)?;
    Ok(out)
}

/// Decode lowercase hex of any even length.
pub fn decode_hex_vec(s: &str) -> Result<Vec<u8>, HexError> {
    if !s.len().is_multiple_of(2) {
        return Err(HexError::Length {
            expected: s.len() + 1,
            got: s.len(),
        });
    }
    let mut out = vec![0u8; s.len() / 2];
    decode_lower_hex_into(s, &mut out)?;
    Ok(out)
}

fn decode_lower_hex_into(s: &str, out: &mut [u8]) -> Result<(), HexError> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(HexError::NotLowercaseHex);
    }
    hex::decode_to_slice(s, out).map_err(|_| HexError::NotLowercaseHex)
}

/// The SHA-256 of a blob or manifest part: its name in stores, requests and the DHT.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// Length of the hex form.
    pub const HEX_LEN: usize = 64;

    /// The id of `bytes` (their SHA-256).
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wrap a raw 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parse exactly 64 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Self, HexError> {
        decode_hex_array(s).map(Self)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex form (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The BEP 5 info hash under which holders of this blob announce themselves: the first
    /// 20 bytes of the id.
    pub fn info_hash(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[..20]);
        out
    }

    /// True when `bytes` hash to this id.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(bytes) == *self
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_info_hash() {
        let id = BlobId::of(b"abc");
        let hex = id.to_hex();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(BlobId::from_hex(&hex), Ok(id));
        assert_eq!(hex::encode(id.info_hash()), hex[..40]);
        assert!(id.matches(b"abc"));
        assert!(!id.matches(b"abd"));
    }

    #[test]
    fn refuses_bad_ids() {
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            BlobId::from_hex(&good[..63]),
            Err(HexError::Length {
                expected: 64,
                got: 63
            })
        );
        assert_eq!(
            BlobId::from_hex(&good.to_uppercase()),
            Err(HexError::NotLowercaseHex)
        );
        let traversal = format!("../{}", &good[3..]);
        assert_eq!(BlobId::from_hex(&traversal), Err(HexError::NotLowercaseHex));
        assert!(decode_hex_vec("abc").is_err());
        assert_eq!(decode_hex_vec("00ff"), Ok(vec![0, 255]));
    }
}
