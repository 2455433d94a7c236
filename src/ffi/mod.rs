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
mod session;

/// Why a bridge call failed. Its message is what C++ receives in `rust::Error::what()` or an
/// event's `message`: the whole cause chain on one line, each cause once (see
/// [`crate::error`]); it is the end of the chain on this side of the boundary, so it returns no
/// `source()`. Its kind (`error.rs`) is what C++ receives in an event's `kind`.
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
    #[error("{}", crate::error::ErrorChain(.0))]
    Dht(crate::dht::DhtError),
    /// The blob server failed.
    #[error("{}", crate::error::ErrorChain(.0))]
    Peer(crate::peer::PeerError),
    /// A manifest was refused (the reason of PROTOCOL.md 2.4).
    #[error("{}", crate::error::ErrorChain(.0))]
    Manifest(crate::manifest::ManifestError),
    /// The secure channel failed (handshake, frame, or closed).
    #[error("{}", crate::error::ErrorChain(.0))]
    Transport(crate::transport::TransportError),
    /// An identity (key pair or identity file) was refused.
    #[error("{}", crate::error::ErrorChain(.0))]
    Identity(crate::identity::IdentityError),
    /// The blob store failed.
    #[error("{}", crate::error::ErrorChain(.0))]
    Store(crate::blob::StoreError),
    /// The channels session refused or failed an operation.
    #[error("{}", crate::error::ErrorChain(.0))]
    Session(crate::session::SessionError),
    /// An argument from C++ was malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

// Written out rather than `#[from]`, which would also make the inner error the `source()`:
// the message already holds the whole chain.
macro_rules! ffi_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for FfiError {
            fn from(e: $ty) -> Self {
                FfiError::$variant(e)
            }
        }
    )*};
}
ffi_from!(
    Dht(crate::dht::DhtError),
    Peer(crate::peer::PeerError),
    Manifest(crate::manifest::ManifestError),
    Transport(crate::transport::TransportError),
    Identity(crate::identity::IdentityError),
    Store(crate::blob::StoreError),
    Session(crate::session::SessionError)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpp_gets_the_whole_chain_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e: FfiError = crate::peer::PeerError::Bind {
            addr: "127.0.0.1:1".into(),
            source: io,
        }
        .into();
        assert_eq!(
            e.to_string(),
            "cannot listen on 127.0.0.1:1: address in use"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
