//! Signed manifests (PROTOCOL.md section 2): the model, JSON text exactly as the reference signs
//! it, verification, creation, and private (encrypted) manifests.
//!
//! ```
//! use megatorrent::identity::Identity;
//! use megatorrent::manifest::{create_manifest, Collection, ManifestContent, SignedManifest};
//!
//! let identity = Identity::from_seed(&[7; 32]);
//! let content = ManifestContent {
//!     collections: vec![Collection { title: "Films".into(), items: vec![] }],
//!     timestamp: 1_732_500_000_000,
//! };
//! let created = create_manifest(&identity, 1, &content).unwrap();
//! let verified = SignedManifest::verify(created.as_bytes()).unwrap();
//! assert_eq!(verified.content(), Some(&content));
//! ```

mod error;
mod fields;
mod json;
pub mod model;
pub mod secretbox;
mod signed;

pub use error::ManifestError;
pub use model::{
    unsafe_file_name_reason, Chunk, Collection, FileEntry, ManifestContent, BLOB_LEN, CHUNK_SIZE,
    MAX_PATH_COMPONENTS, MAX_PATH_LEN,
};
pub use signed::{
    create_manifest, create_private_manifest, ReadKey, SignedManifest, MAX_MANIFEST_LEN,
    MAX_SEQUENCE,
};
