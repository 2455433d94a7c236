//! The C++ boundary: a cxx bridge used by the Qt shim in `cpp-shim/` (public headers in
//! `include/megatorrent/`).
//!
//! Nothing here is meant for Rust callers; the module is public only so its documentation and
//! error type can be read. Threading model: each engine owns a small tokio runtime; finished work
//! goes into an event queue, the engine calls the shim's notifier once when the queue becomes
//! non-empty, and the shim drains the queue on the Qt thread (see `queue.rs`).

mod bridge;
mod channel;
mod dht;
mod engine;
mod error;
mod manifest;
mod panic;
mod queue;

/// Why a bridge call failed. Its message is what C++ receives in `rust::Error::what()` or an
/// event's `message`; its kind (`error.rs`) what it receives in an event's `kind`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FfiError {
    /// Rust code panicked; the panic was caught at the boundary.
    #[error("panic: {0}")]
    Panic(String),
    /// The engine's runtime could not start or is already shut down.
    #[error("engine runtime: {0}")]
    Runtime(String),
    /// A DHT operation failed.
    #[error("{0}")]
    Dht(#[from] crate::dht::DhtError),
    /// The blob server failed.
    #[error("{0}")]
    Peer(#[from] crate::peer::PeerError),
    /// A manifest was refused (the reason of PROTOCOL.md 2.4).
    #[error("{0}")]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The secure channel failed (handshake, frame, or closed).
    #[error("{0}")]
    Transport(#[from] crate::transport::TransportError),
    /// An identity (key pair or identity file) was refused.
    #[error("{0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// The blob store failed.
    #[error("{0}")]
    Store(#[from] crate::blob::StoreError),
    /// An argument from C++ was malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
