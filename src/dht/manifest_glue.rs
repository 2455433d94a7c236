//! The one place where the DHT layer checks a manifest found in a record: same publicKey and
//! sequence as the record, and a valid manifest (PROTOCOL.md 2.4).

use crate::dht::DhtError;
use crate::manifest::SignedManifest;

/// Validate `bytes` as a manifest signed by `public_key` at `sequence`.
pub(crate) fn check_manifest(
    bytes: &[u8],
    public_key: &[u8; 32],
    sequence: u64,
) -> Result<SignedManifest, DhtError> {
    let manifest = SignedManifest::verify(bytes).map_err(DhtError::InvalidManifest)?;
    if manifest.public_key() != *public_key {
        return Err(DhtError::RecordMismatch { field: "publicKey" });
    }
    if manifest.sequence() != sequence {
        return Err(DhtError::RecordMismatch { field: "sequence" });
    }
    Ok(manifest)
}
