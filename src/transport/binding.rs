//! Identity binding (PROTOCOL.md 5.4, extension).
//!
//! The v5 handshake is anonymous, so a relaying man in the middle can run one handshake with
//! each side. Binding closes that hole: the server signs both ephemeral keys of *its*
//! connection with its identity. A relay's two connections have different ephemeral keys, so a
//! forwarded proof does not verify on the client's connection, and the relay cannot forge one.

use super::handshake::SessionInfo;
use super::message::Hello;
use super::TransportError;
use crate::identity::{verify_signature, Identity};

/// Domain separation prefix of the signed transcript.
pub const BIND_CONTEXT: &[u8] = b"megatorrent-bind-v1";

impl SessionInfo {
    /// `"megatorrent-bind-v1" || client_ephemeral_public || server_ephemeral_public`.
    pub fn binding_transcript(&self) -> Vec<u8> {
        let mut t = Vec::with_capacity(BIND_CONTEXT.len() + 64);
        t.extend_from_slice(BIND_CONTEXT);
        t.extend_from_slice(&self.client_ephemeral());
        t.extend_from_slice(&self.server_ephemeral());
        t
    }

    /// The server's answer to a binding HELLO: `{"v":5,"id":..,"sig":..}`.
    pub fn binding_hello(&self, identity: &Identity) -> Hello {
        Hello {
            v: 5,
            gossip: None,
            bind: false,
            id: Some(identity.public_key_bytes()),
            sig: Some(identity.sign(&self.binding_transcript())),
        }
    }

    /// Client side: check a server HELLO against the identity we expect.
    pub fn verify_binding(&self, hello: &Hello, expected: &[u8; 32]) -> Result<(), TransportError> {
        let (Some(id), Some(sig)) = (&hello.id, &hello.sig) else {
            return Err(TransportError::BindingMissing);
        };
        if id != expected {
            return Err(TransportError::BindingWrongIdentity {
                expected: hex::encode(expected),
                got: hex::encode(id),
            });
        }
        if !verify_signature(id, &self.binding_transcript(), sig) {
            return Err(TransportError::BindingBadSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::identity::Identity;
    use crate::transport::{Handshake, Role, TransportError};

    fn session() -> (super::SessionInfo, super::SessionInfo) {
        let c = Handshake::new(Role::Client);
        let s = Handshake::new(Role::Server);
        let (cpk, spk) = (c.local_public_key(), s.local_public_key());
        (
            *c.complete(&spk).unwrap().info(),
            *s.complete(&cpk).unwrap().info(),
        )
    }

    #[test]
    fn direct_binding_verifies_and_relayed_proof_does_not() {
        let server_id = Identity::from_seed(&[9; 32]);
        let expected = server_id.public_key_bytes();
        let (client, server) = session();
        assert_eq!(client.binding_transcript(), server.binding_transcript());
        let hello = server.binding_hello(&server_id);
        client.verify_binding(&hello, &expected).unwrap();

        // A relay forwards the proof made for its own connection to the server.
        let (victim, _) = session();
        assert!(matches!(
            victim.verify_binding(&hello, &expected),
            Err(TransportError::BindingBadSignature)
        ));
        // Or signs with its own identity.
        let forged = client.binding_hello(&Identity::from_seed(&[8; 32]));
        assert!(matches!(
            client.verify_binding(&forged, &expected),
            Err(TransportError::BindingWrongIdentity { .. })
        ));
        let mut plain = hello.clone();
        plain.id = None;
        plain.sig = None;
        assert!(matches!(
            client.verify_binding(&plain, &expected),
            Err(TransportError::BindingMissing)
        ));
    }
}
