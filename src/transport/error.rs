//! The one error type of the transport layer.

use crate::id::HexError;

/// Why a handshake, a frame, a message or a connection failed.
///
/// Every variant names the reason, so a log line or a closing ERROR can say why a connection
/// ended. Variants carry no key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer's X25519 key is a low-order point: the shared secret would be all zero
    /// (non-contributory), so anyone could compute the session keys.
    #[error("peer ephemeral key is a low-order point (non-contributory shared secret)")]
    LowOrderKey,
    /// The handshake was asked to finish before the peer's 32-byte key had arrived.
    #[error("handshake incomplete: {got} of 32 key bytes received")]
    IncompleteHandshake {
        /// Key bytes received so far.
        got: usize,
    },
    /// A frame length prefix outside `17..=1049600`; the body was not read.
    #[error("frame length {0} out of range 17..=1049600")]
    BadFrameLength(u32),
    /// An outgoing plaintext too large for one frame.
    #[error("message of {0} bytes exceeds the frame limit")]
    MessageTooLarge(usize),
    /// A [`super::FrameBuf`] was sealed (or written to) after it was sealed.
    #[error("frame buffer already sealed")]
    AlreadySealed,
    /// A frame failed authentication (wrong key, altered bytes or replay).
    #[error("frame failed authentication")]
    BadTag,
    /// The send or receive nonce counter reached 2^96 - 1: one more frame would reuse a nonce.
    #[error("nonce counter exhausted; the connection must be closed")]
    NonceExhausted,
    /// The peer closed the stream in the middle of a handshake key or a frame.
    #[error("stream ended inside a {0}")]
    Truncated(&'static str),
    /// A message type byte that is not one of the v5 types. Receivers ignore such messages
    /// (PROTOCOL.md 5.3); [`super::Message::parse`] reports them so a caller can log them.
    #[error("unknown message type 0x{0:02x}")]
    UnknownType(u8),
    /// A DHT_QUERY or DHT_RESPONSE payload that is not the KRPC message expected.
    #[error("KRPC: {0}")]
    BadKrpc(String),
    /// A REQUEST or FIND_PEERS payload (or an id inside JSON) that is not 64 lowercase hex.
    #[error("{message}: invalid blob id: {source}")]
    BadId {
        /// The message concerned.
        message: &'static str,
        /// What is wrong with the id.
        source: HexError,
    },
    /// A JSON payload that does not parse or does not have the required shape.
    #[error("{message}: malformed payload: {reason}")]
    BadPayload {
        /// The message concerned.
        message: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A text payload (OK, ERROR, or an id) that is not UTF-8.
    #[error("{0}: payload is not UTF-8")]
    NotUtf8(&'static str),
    /// Identity binding (PROTOCOL.md 5.4): the server did not answer a binding HELLO.
    #[error("identity binding: the server sent no identity")]
    BindingMissing,
    /// Identity binding: the server proved an identity other than the expected one.
    #[error("identity binding: server identity {got} is not the expected {expected}")]
    BindingWrongIdentity {
        /// The expected public key (hex).
        expected: String,
        /// The identity the server presented (hex).
        got: String,
    },
    /// Identity binding: the signature does not cover this connection's ephemeral keys (a
    /// man in the middle relaying someone else's proof) or is not valid.
    #[error("identity binding: signature does not match this connection (man in the middle?)")]
    BindingBadSignature,
    /// The peer did not complete the handshake in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The connection closed before the expected message arrived.
    #[error("connection closed by peer")]
    Closed,
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
