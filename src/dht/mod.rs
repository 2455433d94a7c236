//! The DHT layer (PROTOCOL.md section 4): manifests as BEP 44 mutable items, blob discovery with
//! BEP 5, on the `mainline` crate.
//!
//! - [`bep44`]: pure BEP 44 signing, verification and targets.
//! - [`record`]: the record value codec (inline manifest or pointer record).
//! - [`client`]: [`DhtClient`], the node that publishes, reads and discovers.
//! - [`subscription`]: channel subscriptions (polling + gossip hints) and active seeding.

pub mod bep44;
pub mod client;
mod manifest_glue;
pub mod manifest_shim;
pub mod record;
pub mod subscription;

pub use bep44::{Bep44Error, MutableRecord};
pub use client::{
    DhtClient, DhtConfig, DhtError, FetchError, FetchFuture, PartFetcher, PartsTarget, PutOptions,
    PutReport, StoreFetcher, DEFAULT_BOOTSTRAP,
};
pub use record::{PointerRecord, RecordError, RecordValue};
pub use subscription::{Seeder, SubscribeOptions, Subscription, RESEED_INTERVAL};
