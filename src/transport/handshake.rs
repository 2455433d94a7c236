//! The v5 key exchange (PROTOCOL.md 5.1) as type states: a [`Handshake`] only sends its public
//! key and collects the peer's; [`Handshake::into_transport`] is the only way to obtain a
//! [`Transport`], the value that can seal and open frames.

use blake2::{Blake2b256, Digest};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::session::{Opener, Sealer, Transport};
use super::TransportError;

/// Length of an X25519 public key on the wire.
pub const KEY_LEN: usize = 32;

/// Which end of the TCP connection we are: it decides which directional key we send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connecting side; sends with `key_c2s`.
    Client,
    /// The accepting side; sends with `key_s2c`.
    Server,
}

/// The public facts of a completed handshake: who is who and both ephemeral keys. Identity
/// binding signs over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// Our role.
    pub role: Role,
    /// Our ephemeral X25519 public key.
    pub local_ephemeral: [u8; KEY_LEN],
    /// The peer's ephemeral X25519 public key.
    pub peer_ephemeral: [u8; KEY_LEN],
}

impl SessionInfo {
    /// The client's ephemeral public key.
    pub fn client_ephemeral(&self) -> [u8; KEY_LEN] {
        match self.role {
            Role::Client => self.local_ephemeral,
            Role::Server => self.peer_ephemeral,
        }
    }

    /// The server's ephemeral public key.
    pub fn server_ephemeral(&self) -> [u8; KEY_LEN] {
        match self.role {
            Role::Client => self.peer_ephemeral,
            Role::Server => self.local_ephemeral,
        }
    }
}

/// The first state of a connection: our ephemeral secret, waiting for the peer's public key.
///
/// Both sides send [`Handshake::local_public_key`] as soon as TCP connects, without waiting.
/// Feed received bytes to [`Handshake::read`] (any split), then call
/// [`Handshake::into_transport`].
pub struct Handshake {
    role: Role,
    // StaticSecret zeroizes itself on drop (x25519-dalek `zeroize` feature). It is static only
    // so that tests can inject the vector secrets; each handshake still makes a fresh one.
    secret: StaticSecret,
    public: PublicKey,
    peer: [u8; KEY_LEN],
    peer_len: usize,
}

impl Handshake {
    /// A handshake with a fresh random ephemeral key from the operating system's CSPRNG.
    pub fn new(role: Role) -> Self {
        Self::from_secret(
            role,
            StaticSecret::random_from_rng(&mut crate::rng::os_rng()),
        )
    }

    /// A handshake with a chosen ephemeral secret, to reproduce test vectors. Never use it
    /// outside tests: a reused ephemeral secret destroys forward secrecy.
    #[doc(hidden)]
    pub fn with_secret_for_tests(role: Role, secret: [u8; KEY_LEN]) -> Self {
        Self::from_secret(role, StaticSecret::from(secret))
    }

    fn from_secret(role: Role, secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret);
        Self {
            role,
            secret,
            public,
            peer: [0; KEY_LEN],
            peer_len: 0,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The 32 bytes to send to the peer first.
    pub fn local_public_key(&self) -> [u8; KEY_LEN] {
        self.public.to_bytes()
    }

    /// How many more key bytes are needed from the peer.
    pub fn remaining(&self) -> usize {
        KEY_LEN - self.peer_len
    }

    /// Take peer key bytes from `input`; returns how many were consumed (never more than
    /// [`Handshake::remaining`], so bytes after the key stay with the caller for the frame
    /// decoder).
    pub fn read(&mut self, input: &[u8]) -> usize {
        let n = input.len().min(self.remaining());
        self.peer[self.peer_len..self.peer_len + n].copy_from_slice(&input[..n]);
        self.peer_len += n;
        n
    }

    /// True once the peer's whole key has arrived.
    pub fn is_complete(&self) -> bool {
        self.peer_len == KEY_LEN
    }

    /// Finish: compute the shared secret, refuse a non-contributory one, derive the directional
    /// keys and return the transport state.
    pub fn into_transport(self) -> Result<Transport, TransportError> {
        if !self.is_complete() {
            return Err(TransportError::IncompleteHandshake { got: self.peer_len });
        }
        let peer = PublicKey::from(self.peer);
        let shared = self.secret.diffie_hellman(&peer);
        if !shared.was_contributory() {
            return Err(TransportError::LowOrderKey);
        }
        let (key_c2s, key_s2c) = derive_keys(shared.as_bytes());
        let (send_key, recv_key) = match self.role {
            Role::Client => (key_c2s, key_s2c),
            Role::Server => (key_s2c, key_c2s),
        };
        let info = SessionInfo {
            role: self.role,
            local_ephemeral: self.public.to_bytes(),
            peer_ephemeral: self.peer,
        };
        Ok(Transport::new(
            Sealer::new(ChaCha20Poly1305::new((&*send_key).into())),
            Opener::new(ChaCha20Poly1305::new((&*recv_key).into())),
            info,
        ))
    }

    /// Shortcut for a peer key received in one piece.
    pub fn complete(mut self, peer_public: &[u8; KEY_LEN]) -> Result<Transport, TransportError> {
        self.peer_len = 0;
        self.read(peer_public);
        self.into_transport()
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("local_public_key", &hex::encode(self.public.as_bytes()))
            .field("peer_key_bytes", &self.peer_len)
            .finish_non_exhaustive()
    }
}

/// `key_c2s = BLAKE2b-256(shared || "C")`, `key_s2c = BLAKE2b-256(shared || "S")`.
fn derive_keys(shared: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let derive = |label: &[u8]| {
        let mut h = Blake2b256::new();
        h.update(shared);
        h.update(label);
        let mut key = Zeroizing::new([0u8; 32]);
        // Finalize straight into the zeroizing buffer: no stray copy of the key on the stack.
        h.finalize_into((&mut *key).into());
        key
    };
    (derive(b"C"), derive(b"S"))
}

/// Test access to the key derivation, to check it against the vectors.
#[cfg(test)]
pub(crate) fn derive_keys_for_tests(shared: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let (c, s) = derive_keys(shared);
    (*c, *s)
}
