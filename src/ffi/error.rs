//! What kind of failure an error is, for C++: the one place where Rust errors are classified
//! into the bridge's [`ErrorKind`] (C++ `Megatorrent::ErrorKind`).
//!
//! Callers in C++ act on the kind (ask for a read key, retry later, tell the user the channel
//! text is wrong), so a kind says what the user or the application can do about the failure,
//! not which layer produced it.

use crate::blob::StoreError;
use crate::dht::bep44::Bep44Error;
use crate::dht::record::{PartError, RecordError};
use crate::dht::DhtError;
use crate::identity::IdentityError;
use crate::manifest::ManifestError;
use crate::peer::PeerError;
use crate::transport::TransportError;

use super::bridge::ErrorKind;
use super::FfiError;

/// An error that C++ receives with a kind.
pub(crate) trait Kind {
    /// The failure's kind.
    fn kind(&self) -> ErrorKind;
}

impl Kind for FfiError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Panic(_) | Self::Runtime(_) => ErrorKind::Internal,
            Self::Dht(e) => e.kind(),
            Self::Peer(e) => e.kind(),
            Self::Manifest(e) => e.kind(),
            Self::Transport(e) => e.kind(),
            Self::Identity(e) => e.kind(),
            Self::Store(e) => e.kind(),
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
        }
    }
}

impl Kind for DhtError {
    fn kind(&self) -> ErrorKind {
        match self {
            // Binding the UDP socket, reaching nodes, nodes refusing or losing the item.
            Self::Bind { .. }
            | Self::NoNodes
            | Self::NotStored
            | Self::Rejected { .. }
            | Self::LowerSeq { .. }
            | Self::CasMismatch { .. }
            | Self::ConflictRisk
            | Self::PartUnavailable { .. } => ErrorKind::Network,
            Self::BadBootstrap(_) | Self::NeedsParts { .. } | Self::KeyMismatch => {
                ErrorKind::InvalidArgument
            }
            Self::Bep44(e) => e.kind(),
            Self::Record(e) => e.kind(),
            Self::Parts(e) => e.kind(),
            Self::InvalidManifest(e) => e.kind(),
            Self::RecordMismatch { .. } => ErrorKind::BadManifest,
            // Nothing (newer than what was seen) is published under this key and salt.
            Self::NotFound | Self::Stale { .. } => ErrorKind::NotFound,
            Self::NoValidRecord(e) => e.kind(),
            Self::NoFetcher => ErrorKind::Internal,
            Self::Store(e) => e.kind(),
            Self::State { .. } => ErrorKind::Storage,
        }
    }
}

impl Kind for Bep44Error {
    fn kind(&self) -> ErrorKind {
        // Found on the DHT: a malformed item; on our side, the caller's values break BEP 44.
        match self {
            Self::BadSignature | Self::NegativeSeq(_) => ErrorKind::BadManifest,
            Self::ValueTooLarge { .. } | Self::SaltTooLarge { .. } => ErrorKind::InvalidArgument,
        }
    }
}

impl Kind for RecordError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadManifest
    }
}

impl Kind for PartError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadManifest
    }
}

impl Kind for ManifestError {
    fn kind(&self) -> ErrorKind {
        // Every other reason is the publisher's manifest breaking PROTOCOL.md 2.4.
        match self {
            Self::WrongReadKey => ErrorKind::WrongReadKey,
            _ => ErrorKind::BadManifest,
        }
    }
}

impl Kind for PeerError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_)
            | Self::HashMismatch { .. }
            | Self::Refused(_)
            | Self::UnexpectedReply { .. }
            | Self::Timeout
            | Self::ConnectionLost
            | Self::Transport(_)
            | Self::Bind { .. } => ErrorKind::Network,
            Self::Store(e) => e.kind(),
        }
    }
}

impl Kind for TransportError {
    fn kind(&self) -> ErrorKind {
        // A connection that failed its handshake or carried a bad frame: the peer or the path.
        ErrorKind::Network
    }
}

impl Kind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } | Self::HashMismatch { .. } => ErrorKind::Storage,
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
        }
    }
}

impl Kind for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } | Self::Exists(_) => ErrorKind::Io,
            Self::Json(_)
            | Self::Hex { .. }
            | Self::SecretLength(_)
            | Self::PublicKeyMismatch
            | Self::InvalidPublicKey => ErrorKind::InvalidArgument,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobId;

    #[test]
    fn kinds_say_what_to_do() {
        assert_eq!(DhtError::NotFound.kind(), ErrorKind::NotFound);
        assert_eq!(DhtError::NoNodes.kind(), ErrorKind::Network);
        assert_eq!(
            DhtError::InvalidManifest(ManifestError::WrongReadKey).kind(),
            ErrorKind::WrongReadKey
        );
        assert_eq!(
            DhtError::NoValidRecord(Box::new(DhtError::InvalidManifest(
                ManifestError::BadSignature
            )))
            .kind(),
            ErrorKind::BadManifest
        );
        assert_eq!(
            FfiError::Peer(PeerError::NotFound(BlobId::of(b"x"))).kind(),
            ErrorKind::Network
        );
        assert_eq!(FfiError::Panic("x".into()).kind(), ErrorKind::Internal);
        assert_eq!(
            FfiError::InvalidArgument("x".into()).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            FfiError::Identity(IdentityError::PublicKeyMismatch).kind(),
            ErrorKind::InvalidArgument
        );
    }
}
