//! BEP 44 mutable items, pure: what is signed, targets, signing and strict verification.
//!
//! An empty salt means "no salt" everywhere in this crate: `mainline` would sign an empty salt as
//! `4:salt0:`, which libtorrent rejects (PROTOCOL.md 4.1), so an empty salt is never passed on.

use mainline::MutableItem;

use crate::identity::{verify_signature, Identity};

/// Largest bencoded `v` that libtorrent stores (and BEP 44 allows).
pub const MAX_BENCODED_VALUE_LEN: usize = 1000;
/// Largest raw value whose bencoding (`<len>:<bytes>`) fits in [`MAX_BENCODED_VALUE_LEN`].
pub const MAX_VALUE_LEN: usize = 996;
/// Largest salt BEP 44 allows.
pub const MAX_SALT_LEN: usize = 64;

/// Why an item could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Bep44Error {
    /// The value's bencoding would exceed 1000 bytes.
    #[error(
        "value of {len} bytes exceeds the {MAX_VALUE_LEN}-byte BEP 44 limit (1000 bytes bencoded)"
    )]
    ValueTooLarge {
        /// Raw value length.
        len: usize,
    },
    /// The salt is longer than 64 bytes.
    #[error("salt of {len} bytes exceeds the {MAX_SALT_LEN}-byte BEP 44 limit")]
    SaltTooLarge {
        /// Salt length.
        len: usize,
    },
    /// A negative sequence number (BEP 44 sequence numbers are non-negative here).
    #[error("sequence number {0} is negative")]
    NegativeSeq(i64),
    /// The signature does not verify under the item's key.
    #[error("BEP 44 signature does not verify")]
    BadSignature,
}

/// Length of the bencoding of a byte string of `len` bytes (`<len>:<bytes>`).
pub fn bencoded_len(len: usize) -> usize {
    len.to_string().len() + 1 + len
}

/// The bytes Ed25519 signs: `[4:salt<len>:<salt>]3:seqi<seq>e1:v<len>:<value>`; an empty salt
/// is left out.
pub fn signed_data(seq: i64, value: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + salt.len() + 32);
    if !salt.is_empty() {
        out.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(format!("3:seqi{}e1:v{}:", seq, value.len()).as_bytes());
    out.extend_from_slice(value);
    out
}

/// The DHT target of a mutable item: SHA-1(k) or SHA-1(k || salt).
pub fn mutable_target(public_key: &[u8; 32], salt: &[u8]) -> [u8; 20] {
    *MutableItem::target_from_key(public_key, salt_option(salt)).as_bytes()
}

/// The DHT target of an immutable item: SHA-1 of its bencoded value.
pub fn immutable_target(bencoded_value: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(bencoded_value).digest().bytes()
}

/// A signed BEP 44 mutable item: a `mainline` item that this crate made or checked. Construct
/// with [`MutableRecord::sign`] or [`MutableRecord::verified`]: a value of this type always
/// carries a valid signature (strictly checked) and respects the size limits.
#[derive(Clone, PartialEq)]
pub struct MutableRecord {
    // Never holds an empty salt (see `salt_option`).
    item: MutableItem,
}

impl Eq for MutableRecord {}

fn check_limits(seq: i64, value: &[u8], salt: &[u8]) -> Result<(), Bep44Error> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Bep44Error::ValueTooLarge { len: value.len() });
    }
    if salt.len() > MAX_SALT_LEN {
        return Err(Bep44Error::SaltTooLarge { len: salt.len() });
    }
    if seq < 0 {
        return Err(Bep44Error::NegativeSeq(seq));
    }
    Ok(())
}

impl MutableRecord {
    /// Sign `value` at `seq` (under `salt`, empty for none) with `identity`.
    pub fn sign(
        identity: &Identity,
        seq: i64,
        value: &[u8],
        salt: &[u8],
    ) -> Result<Self, Bep44Error> {
        check_limits(seq, value, salt)?;
        // The clone of the signing key wipes itself when mainline drops it.
        let item = MutableItem::new(
            identity.signing_key().clone(),
            value,
            seq,
            salt_option(salt),
        );
        Ok(Self { item })
    }

    /// Accept an item received from elsewhere only if its limits hold and its signature verifies
    /// (strictly: small-order keys and malleable signatures are refused).
    pub fn verified(
        public_key: [u8; 32],
        seq: i64,
        value: &[u8],
        salt: &[u8],
        signature: [u8; 64],
    ) -> Result<Self, Bep44Error> {
        check_limits(seq, value, salt)?;
        if !verify_signature(&public_key, &signed_data(seq, value, salt), &signature) {
            return Err(Bep44Error::BadSignature);
        }
        Ok(Self {
            item: MutableItem::new_signed_unchecked(
                public_key,
                signature,
                value,
                seq,
                salt_option(salt),
            ),
        })
    }

    /// The signer's public key (`k`).
    pub fn public_key(&self) -> &[u8; 32] {
        self.item.key()
    }
    /// The sequence number.
    pub fn seq(&self) -> i64 {
        self.item.seq()
    }
    /// The raw value bytes (stored bencoded as `v`).
    pub fn value(&self) -> &[u8] {
        self.item.value()
    }
    /// The salt (empty for none).
    pub fn salt(&self) -> &[u8] {
        self.item.salt().unwrap_or_default()
    }
    /// The Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        self.item.signature()
    }
    /// The DHT target.
    pub fn target(&self) -> [u8; 20] {
        *self.item.target().as_bytes()
    }

    /// The `mainline` item (an empty salt is none), to put it.
    pub fn as_mainline(&self) -> &MutableItem {
        &self.item
    }

    /// A copy of the `mainline` item (see [`MutableRecord::as_mainline`]).
    pub fn to_mainline(&self) -> MutableItem {
        self.item.clone()
    }

    /// Check a `mainline` item again with this crate's strict rules (mainline's own check
    /// accepts small-order keys and malleable signatures).
    pub fn from_mainline(item: &MutableItem) -> Result<Self, Bep44Error> {
        Self::verified(
            *item.key(),
            item.seq(),
            item.value(),
            item.salt().unwrap_or_default(),
            *item.signature(),
        )
    }
}

impl std::fmt::Debug for MutableRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutableRecord")
            .field("public_key", &hex::encode(self.public_key()))
            .field("seq", &self.seq())
            .field("value_len", &self.value().len())
            .field("salt", &hex::encode(self.salt()))
            .finish()
    }
}

/// `None` for an empty salt, so that it is never signed as `4:salt0:`.
pub fn salt_option(salt: &[u8]) -> Option<&[u8]> {
    if salt.is_empty() {
        None
    } else {
        Some(salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_data_forms() {
        assert_eq!(
            signed_data(1, b"Hello World!", b""),
            b"3:seqi1e1:v12:Hello World!"
        );
        assert_eq!(
            signed_data(4, b"x", b"foobar"),
            b"4:salt6:foobar3:seqi4e1:v1:x".to_vec()
        );
        assert_eq!(bencoded_len(996), 1000);
        assert_eq!(bencoded_len(997), 1001);
        assert_eq!(bencoded_len(0), 2);
    }

    #[test]
    fn limits_are_typed_errors() {
        let id = Identity::from_seed(&[7; 32]);
        assert_eq!(
            MutableRecord::sign(&id, 1, &[0; 997], b"").unwrap_err(),
            Bep44Error::ValueTooLarge { len: 997 }
        );
        assert!(MutableRecord::sign(&id, 1, &[0; 996], b"").is_ok());
        assert_eq!(
            MutableRecord::sign(&id, 1, b"v", &[1; 65]).unwrap_err(),
            Bep44Error::SaltTooLarge { len: 65 }
        );
        assert_eq!(
            MutableRecord::sign(&id, -1, b"v", b"").unwrap_err(),
            Bep44Error::NegativeSeq(-1)
        );
    }

    #[test]
    fn sign_verify_and_mainline_round_trip() {
        let id = Identity::from_seed(&[9; 32]);
        let rec = MutableRecord::sign(&id, 5, b"value", b"sub").unwrap();
        let back = MutableRecord::from_mainline(&rec.to_mainline()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(rec.to_mainline().target().as_bytes(), &rec.target());
        // Unsalted: mainline must see no salt at all, and the target is SHA-1(k).
        let plain = MutableRecord::sign(&id, 5, b"value", b"").unwrap();
        assert_eq!(plain.to_mainline().salt(), None);
        assert_eq!(plain.target(), mutable_target(&id.public_key_bytes(), b""));
        // Any change breaks the signature.
        let mut sig = *rec.signature();
        sig[0] ^= 1;
        assert_eq!(
            MutableRecord::verified(*rec.public_key(), 5, b"value", b"sub", sig).unwrap_err(),
            Bep44Error::BadSignature
        );
        assert_eq!(
            MutableRecord::verified(*rec.public_key(), 6, b"value", b"sub", *rec.signature())
                .unwrap_err(),
            Bep44Error::BadSignature
        );
        assert_eq!(
            MutableRecord::verified(*rec.public_key(), 5, b"value", b"", *rec.signature())
                .unwrap_err(),
            Bep44Error::BadSignature
        );
    }
}
