//! Interim manifest check used until the manifest layer's `SignedManifest` lands on `main`:
//! parses the envelope and verifies the signature (PROTOCOL.md 2.3, reference key order). The
//! DHT layer reaches it only through `manifest_glue`, so replacing it is a one-line change.

use crate::id::decode_hex_array;
use crate::identity::verify_signature;

/// A manifest whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    bytes: Vec<u8>,
    public_key: [u8; 32],
    sequence: u64,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not a JSON object.
    #[error("manifest is not a JSON object")]
    NotJson,
    /// A field is missing or of the wrong type or length.
    #[error("manifest field {0} is missing or malformed")]
    Field(&'static str),
    /// The signature does not verify.
    #[error("manifest signature does not verify")]
    BadSignature,
}

impl SignedManifest {
    /// Parse and verify.
    pub fn verify(bytes: &[u8]) -> Result<Self, ManifestError> {
        let mut obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|_| ManifestError::NotJson)?;
        let public_key = obj
            .get("publicKey")
            .and_then(|v| v.as_str())
            .and_then(|s| decode_hex_array::<32>(s).ok())
            .ok_or(ManifestError::Field("publicKey"))?;
        let sequence = obj
            .get("sequence")
            .and_then(|v| v.as_u64())
            .filter(|s| (1..=(1u64 << 53) - 1).contains(s))
            .ok_or(ManifestError::Field("sequence"))?;
        let signature = obj
            .shift_remove("signature")
            .and_then(|v| v.as_str().and_then(|s| decode_hex_array::<64>(s).ok()))
            .ok_or(ManifestError::Field("signature"))?;
        let signed = serde_json::to_vec(&obj).map_err(|_| ManifestError::NotJson)?;
        if !verify_signature(&public_key, &signed, &signature) {
            return Err(ManifestError::BadSignature);
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            public_key,
            sequence,
        })
    }

    /// The manifest bytes as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signer.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}
