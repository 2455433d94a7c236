//! The one place where manifests cross into and out of the DHT layer.
//!
//! The DHT layer still speaks its interim manifest type (`dht::manifest_shim`); these two
//! functions convert, so that switching the DHT layer to [`SignedManifest`] only touches them.

use crate::dht::{DhtClient, DhtError, PutOptions, PutReport};
use crate::identity::Identity;
use crate::manifest::SignedManifest;
use crate::node::NodeError;

/// Put `manifest` (signed by `identity`) in the DHT: inline when it fits, else as a pointer
/// record whose parts go to `opts.parts`.
pub async fn put_channel_manifest(
    dht: &DhtClient,
    identity: &Identity,
    manifest: &SignedManifest,
    opts: &PutOptions<'_>,
) -> Result<PutReport, NodeError> {
    let for_dht = crate::dht::manifest_shim::SignedManifest::verify(manifest.as_bytes())
        .map_err(|e| DhtError::InvalidManifest(e.to_string()))?;
    Ok(dht.put_manifest(identity, &for_dht, opts).await?)
}

/// The most recent manifest of the channel `public_key` (sub-channel `salt`), verified and
/// validated by the manifest layer (PROTOCOL.md 2.4).
pub async fn get_channel_manifest(
    dht: &DhtClient,
    public_key: &[u8; 32],
    salt: &[u8],
) -> Result<SignedManifest, NodeError> {
    let found = dht.get_manifest(public_key, salt).await?;
    Ok(SignedManifest::verify_signed_by(
        found.as_bytes(),
        public_key,
    )?)
}
