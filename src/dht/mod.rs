//! The DHT layer (PROTOCOL.md section 4): manifests as BEP 44 mutable items, blob discovery with
//! BEP 5, on the `mainline` crate.
//!
//! - [`bep44`]: pure BEP 44 signing, verification and targets.
//! - [`record`]: the record value codec (inline manifest or pointer record).
//! - [`client`]: [`DhtClient`], the node that publishes, reads and discovers.
//! - [`parts`]: fetching the manifest a pointer record names, checked part by part.
//! - [`relay`]: the PUBLISH gateway, the part fetcher over the transport, gossip hints.
//! - [`subscription`]: channel subscriptions (polling + gossip hints) and active seeding.

pub mod bep44;
pub mod client;
mod manifest_glue;
pub mod parts;
pub mod record;
pub mod relay;
pub mod subscription;

pub use bep44::{Bep44Error, MutableRecord};
pub use client::{
    DhtClient, DhtConfig, DhtError, FetchError, FetchFuture, PartFetcher, PartsTarget, PutOptions,
    PutReport, StoreFetcher, DEFAULT_BOOTSTRAP,
};
pub use parts::fetch_manifest;
pub use record::{PartError, PointerRecord, RecordError, RecordValue};
pub use relay::{verify_publish, GossipBridge, TransportFetcher};
pub use subscription::{
    ChannelUpdate, Seeder, SubscribeOptions, Subscription, SubscriptionEvent, POLL_INTERVAL,
    RESEED_INTERVAL,
};
