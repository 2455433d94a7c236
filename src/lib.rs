//! # megatorrent
//!
//! The Megatorrent protocol v5: trackerless, encrypted, signed content channels on top of the
//! BitTorrent Mainline DHT. See `docs/PROTOCOL.md` for the formats this crate implements.
//!
//! Layers, bottom up: [`identity`] and [`id`] (keys and content ids), [`manifest`] (signed
//! channel descriptions), [`blob`] (encrypted fixed-size chunks and their store), [`transport`]
//! (the encrypted v5 channel, sans-IO with a tokio adapter), [`peer`] (blob server and fetcher),
//! [`dht`] (BEP 44 records and BEP 5 discovery on `mainline`), [`download`] (files fetched
//! from many peers and written atomically), and [`node`] (publishing channels, the demo).
//!
//! Cargo features, both on by default: `cli`, the `megatorrent` command line and its
//! dependencies (clap, indicatif, tracing-subscriber, anyhow); `ffi`, the C++ bridge the Qt shim
//! links (cxx; needs a C++ compiler). `--no-default-features` gives the pure Rust library.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

/// Consuming setters, one per listed public field, for the `#[non_exhaustive]` options structs
/// (`Options::default().field(value)`): adding a field later breaks no caller.
macro_rules! setters {
    ($ty:ident $(<$lt:lifetime>)? { $($name:ident: $fty:ty),* $(,)? }) => {
        impl$(<$lt>)? $ty$(<$lt>)? {
            $(
                #[doc = concat!("Sets [`", stringify!($ty), "::", stringify!($name), "`].")]
                #[must_use]
                pub fn $name(mut self, value: $fty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

pub mod blob;
pub mod dht;
pub mod download;
pub mod error;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod id;
pub mod identity;
pub mod manifest;
pub mod node;
pub mod peer;
mod rng;
pub mod session;
pub mod state_file;
pub mod transport;
