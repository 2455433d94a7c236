//! Peer roles on top of the secure transport: the blob server ([`BlobServer`]) that answers
//! v5 peers from a [`crate::blob::BlobStore`], and the fetcher ([`BlobFetcher`]) that downloads
//! and verifies blobs over one connection per peer.

mod error;
mod fetcher;
mod server;
mod table;

pub use error::PeerError;
pub use fetcher::{BlobFetcher, FetcherOptions};
pub use server::{
    BlobServer, CloseReason, ConnectionClosed, Gateway, GatewayFuture, GossipHint, NodeIdFuture,
    ServerConfig, ServerHandle, NOT_A_GATEWAY, NOT_FOUND, PUBLISHED,
};
pub use table::PeerTable;
