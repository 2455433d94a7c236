//! The peer layer's error type.

use std::net::SocketAddr;

use crate::blob::StoreError;
use crate::id::BlobId;
use crate::transport::TransportError;

/// Why a server could not start or a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer answered ERROR `Not Found`.
    #[error("blob {0}: not found on the peer")]
    NotFound(BlobId),
    /// The peer sent content whose SHA-256 is not the id requested; nothing was stored.
    #[error("blob {id}: peer {peer} sent content that does not hash to the id")]
    HashMismatch {
        /// The id requested.
        id: BlobId,
        /// The peer that sent it.
        peer: SocketAddr,
    },
    /// The peer answered ERROR with another reason.
    #[error("peer refused: {0}")]
    Refused(String),
    /// The peer answered with a message that does not answer the request.
    #[error("peer answered {got} to a {request}")]
    UnexpectedReply {
        /// The request sent.
        request: &'static str,
        /// The type received.
        got: &'static str,
    },
    /// No reply within the reply time-out.
    #[error("no reply from the peer in time")]
    Timeout,
    /// An earlier failure broke this connection; the request was not answered.
    #[error("connection to the peer was lost before this reply")]
    ConnectionLost,
    /// The transport failed (handshake, binding, framing, socket).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not listen on its address.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
}
