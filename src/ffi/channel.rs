//! The sans-IO secure channel driven by the Qt `SecureSocket`: bytes in, messages out.

use crate::transport::{Handshake, Role, Transport, TransportError};

use super::bridge::{MessageData, Received};
use super::FfiError;

enum State {
    Handshaking(Handshake),
    Open(Transport),
    /// Failed or ended: every further call is refused.
    Closed,
}

/// One connection's protocol state (PROTOCOL.md 5), owned by a C++ `SecureSocket`.
pub struct Channel {
    state: State,
    hello: [u8; 32],
}

impl Channel {
    /// A channel for the connecting (client) or accepting (server) side.
    pub(crate) fn new(server: bool) -> Self {
        let handshake = Handshake::new(if server { Role::Server } else { Role::Client });
        Self {
            hello: handshake.local_public_key(),
            state: State::Handshaking(handshake),
        }
    }

    /// The 32 bytes to send as soon as the TCP connection is up (our ephemeral public key).
    pub(crate) fn hello(&self) -> Vec<u8> {
        self.hello.to_vec()
    }

    /// Feeds received bytes. Any error closes the channel for good (a connection with a bad
    /// frame or a failed handshake must not be used further).
    pub(crate) fn receive(&mut self, input: &[u8]) -> Result<Received, FfiError> {
        let result = self.receive_inner(input);
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    fn receive_inner(&mut self, input: &[u8]) -> Result<Received, FfiError> {
        let mut rest = input;
        let mut handshake_completed = false;
        if let State::Handshaking(handshake) = &mut self.state {
            let n = handshake.read(rest);
            rest = &rest[n..];
            if handshake.is_complete() {
                let State::Handshaking(handshake) =
                    std::mem::replace(&mut self.state, State::Closed)
                else {
                    return Err(FfiError::Transport(TransportError::Closed));
                };
                self.state = State::Open(handshake.into_transport()?);
                handshake_completed = true;
            }
        }
        let mut messages = Vec::new();
        match &mut self.state {
            State::Open(transport) => {
                while !rest.is_empty() {
                    let (n, plaintext) = transport.push(rest)?;
                    rest = &rest[n..];
                    if let Some(plaintext) = plaintext {
                        let (kind, payload) = plaintext.into_parts();
                        messages.push(MessageData { kind, payload });
                    } else if n == 0 {
                        break;
                    }
                }
            }
            State::Handshaking(_) => {}
            State::Closed => return Err(FfiError::Transport(TransportError::Closed)),
        }
        Ok(Received {
            handshake_completed,
            messages,
        })
    }

    /// One whole frame carrying `kind || payload`, ready to write to the socket.
    pub(crate) fn seal(&mut self, kind: u8, payload: &[u8]) -> Result<Vec<u8>, FfiError> {
        match &mut self.state {
            State::Open(transport) => {
                let mut out = Vec::new();
                transport.seal_into(kind, payload, &mut out)?;
                Ok(out)
            }
            State::Handshaking(_) => Err(FfiError::InvalidArgument(
                "cannot send before the handshake completes".into(),
            )),
            State::Closed => Err(FfiError::Transport(TransportError::Closed)),
        }
    }

    /// The peer closed the stream: fine between frames, an error inside one or mid-handshake.
    pub(crate) fn end_of_stream(&self) -> Result<(), FfiError> {
        match &self.state {
            State::Open(transport) => Ok(transport.end_of_stream()?),
            State::Handshaking(handshake) => {
                Err(FfiError::Transport(TransportError::IncompleteHandshake {
                    got: 32 - handshake.remaining(),
                }))
            }
            State::Closed => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channel, Channel) {
        let mut client = Channel::new(false);
        let mut server = Channel::new(true);
        let (ch, sh) = (client.hello(), server.hello());
        assert!(server.receive(&ch).unwrap().handshake_completed);
        assert!(client.receive(&sh).unwrap().handshake_completed);
        (client, server)
    }

    #[test]
    fn messages_cross_in_any_split() {
        let (mut client, mut server) = pair();
        let mut wire = client.seal(0x03, b"hello").unwrap();
        wire.extend(client.seal(0x02, &[b'a'; 64]).unwrap());
        let mut got = Vec::new();
        for byte in &wire {
            got.extend(server.receive(std::slice::from_ref(byte)).unwrap().messages);
        }
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].kind, got[0].payload.as_slice()),
            (0x03, &b"hello"[..])
        );
        assert_eq!(got[1].kind, 0x02);
        let back = server.seal(0x08, b"ok").unwrap();
        let got = client.receive(&back).unwrap().messages;
        assert_eq!((got[0].kind, got[0].payload.as_slice()), (0x08, &b"ok"[..]));
    }

    #[test]
    fn handshake_and_first_frame_in_one_read() {
        let mut client = Channel::new(false);
        let mut server = Channel::new(true);
        client.receive(&server.hello()).unwrap();
        let mut wire = client.hello();
        wire.extend(client.seal(0x03, b"x").unwrap());
        let received = server.receive(&wire).unwrap();
        assert!(received.handshake_completed);
        assert_eq!(received.messages.len(), 1);
    }

    #[test]
    fn tampered_frame_closes_the_channel() {
        let (mut client, mut server) = pair();
        let mut wire = client.seal(0x03, b"hello").unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let err = server.receive(&wire).unwrap_err();
        assert!(
            matches!(err, FfiError::Transport(TransportError::BadTag)),
            "{err}"
        );
        let err = server.receive(&[0]).unwrap_err();
        assert!(
            matches!(err, FfiError::Transport(TransportError::Closed)),
            "{err}"
        );
    }

    #[test]
    fn sending_before_handshake_and_low_order_keys_are_refused() {
        let mut client = Channel::new(false);
        assert!(matches!(
            client.seal(0x03, b"x").unwrap_err(),
            FfiError::InvalidArgument(_)
        ));
        let err = client.receive(&[0u8; 32]).unwrap_err();
        assert!(
            matches!(err, FfiError::Transport(TransportError::LowOrderKey)),
            "{err}"
        );
    }

    #[test]
    fn end_of_stream_inside_a_frame_is_an_error() {
        let (mut client, mut server) = pair();
        let wire = client.seal(0x03, b"hello").unwrap();
        server.receive(&wire[..5]).unwrap();
        assert!(matches!(
            server.end_of_stream().unwrap_err(),
            FfiError::Transport(TransportError::Truncated(_))
        ));
        let fresh = Channel::new(true);
        assert!(fresh.end_of_stream().is_err());
    }
}
