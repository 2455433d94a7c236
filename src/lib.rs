//! # megatorrent
//!
//! The Megatorrent protocol v5: trackerless, encrypted, signed content channels on top of the
//! BitTorrent Mainline DHT. See `docs/PROTOCOL.md` for the formats this crate implements.
//!
//! Layers, bottom up: [`identity`] and [`id`] (keys and content ids), [`manifest`] (signed
//! channel descriptions), [`blob`] (encrypted fixed-size chunks and their store), [`transport`]
//! (the encrypted v5 channel, sans-IO with a tokio adapter), [`peer`] (blob server and fetcher),
//! [`dht`] (BEP 44 records and BEP 5 discovery on `mainline`), and [`node`] (publishing and
//! downloading channels end to end).
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod blob;
pub mod dht;
pub mod ffi;
pub mod id;
pub mod identity;
pub mod manifest;
pub mod node;
pub mod peer;
mod rng;
pub mod transport;
