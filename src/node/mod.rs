//! What a user does with the layers below: publish files to a channel ([`publish_files`]),
//! download a channel's files ([`Downloader`]), and the local end-to-end [`demo`].
//!
//! A publisher ingests files into a [`BlobStore`](crate::blob::BlobStore), signs a manifest,
//! puts it in the DHT (inline or as a pointer record), serves the blobs over the secure
//! transport and announces them; a downloader finds the peers of every blob (DHT and
//! FIND_PEERS), fetches from several peers at once, verifies each blob and reassembles the
//! files atomically.

pub mod demo;
mod error;
mod publisher;

// The downloader lives in `crate::download`; these names stay here for existing callers.
pub use crate::download::{
    DownloadError, DownloadEvent, DownloadOptions, DownloadReport, Downloader, EventFn, FileJob,
    Progress,
};
pub use error::NodeError;
pub use publisher::{
    entry_blobs, ingest_files, next_sequence, publish_entries, publish_files, put_version,
    sequence_above, AnnounceProgress, ChannelVersion, PublishOptions, Published, Republisher,
    Seeding, SeedingOptions,
};
