//! The v5 secure transport (PROTOCOL.md section 5).
//!
//! The core is sans-IO, in the manner of `snow` and `rustls`: it owns no socket, no clock and
//! no task. A connection starts as a [`Handshake`] (send [`Handshake::local_public_key`], feed
//! the peer's 32 bytes); [`Handshake::into_transport`] is the only way to get a [`Transport`],
//! which seals and opens frames ([`Sealer`], [`Opener`]) with per-direction nonce counters that
//! never wrap. [`FrameDecoder`] splits the byte stream and refuses bad lengths before
//! allocating; [`Message`] is the typed view of the message types, [`krpc`] the KRPC carried in
//! DHT_QUERY/DHT_RESPONSE. Identity binding
//! (5.4) lives on [`SessionInfo`].
//!
//! [`stream`] drives the core over tokio TCP sockets.

mod binding;
mod error;
mod frame;
mod handshake;
pub mod krpc;
mod message;
mod session;
pub mod stream;

pub use binding::BIND_CONTEXT;
pub use error::TransportError;
pub use frame::{FrameDecoder, LEN_PREFIX, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MIN_FRAME_LEN, TAG_LEN};
pub use handshake::{Handshake, Role, SessionInfo, KEY_LEN};
pub use krpc::{KrpcQuery, KrpcResponse, MAX_KRPC_LEN};
pub use message::{
    validate_peer_address, Announce, Hello, Message, MessageType, Publish, MAX_ADDRESS_LEN,
    MAX_PUBLISH_VALUE, MAX_SALT, PROTOCOL_VERSION,
};
pub use session::{FrameBuf, Opener, Plaintext, Sealer, Transport};
pub use stream::{
    accept, close_halves, connect, handshake, AcceptOptions, ConnectOptions, SecureReader,
    SecureStream, SecureWriter, DRAIN_TIMEOUT, HANDSHAKE_TIMEOUT,
};

// The same list the integration tests use.
#[cfg(test)]
#[path = "../../tests/common/low_order.rs"]
mod low_order;

#[cfg(test)]
mod vector_tests {
    //! PROTOCOL.md 5 vectors: keys, shared secret and every frame in both directions.
    use super::low_order::LOW_ORDER_POINTS;
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/transport.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn h32(v: &Value) -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn keys_and_shared_secret() {
        let v = vectors();
        let c = Handshake::with_secret_for_tests(Role::Client, h32(&v["client_eph_sk"]));
        let s = Handshake::with_secret_for_tests(Role::Server, h32(&v["server_eph_sk"]));
        assert_eq!(c.local_public_key(), h32(&v["client_eph_pk"]));
        assert_eq!(s.local_public_key(), h32(&v["server_eph_pk"]));
        let shared = x25519_dalek::x25519(h32(&v["client_eph_sk"]), h32(&v["server_eph_pk"]));
        assert_eq!(shared, h32(&v["shared"]));
        let (c2s, s2c) = handshake::derive_keys_for_tests(&shared);
        assert_eq!(c2s, h32(&v["key_c2s"]));
        assert_eq!(s2c, h32(&v["key_s2c"]));
    }

    #[test]
    fn every_frame_both_directions() {
        let v = vectors();
        let mut c = Handshake::with_secret_for_tests(Role::Client, h32(&v["client_eph_sk"]));
        let mut s = Handshake::with_secret_for_tests(Role::Server, h32(&v["server_eph_sk"]));
        // Feed the keys in pieces to exercise the streaming handshake.
        let spk = h32(&v["server_eph_pk"]);
        let cpk = h32(&v["client_eph_pk"]);
        assert_eq!(c.read(&spk[..5]), 5);
        assert!(!c.is_complete());
        let mut with_extra = spk[5..].to_vec();
        with_extra.extend_from_slice(b"next frame");
        assert_eq!(c.read(&with_extra), 27);
        assert_eq!(s.read(&cpk), 32);
        let mut client = c.into_transport().unwrap();
        let mut server = s.into_transport().unwrap();

        for dir in ["client_frames", "server_frames"] {
            let (sender, receiver) = if dir == "client_frames" {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            for (i, f) in v[dir].as_array().unwrap().iter().enumerate() {
                let t = f["type"].as_u64().unwrap() as u8;
                let payload = hex::decode(f["payload_hex"].as_str().unwrap()).unwrap();
                let frame = hex::decode(f["frame_hex"].as_str().unwrap()).unwrap();
                let nonce = hex::decode(f["nonce"].as_str().unwrap()).unwrap();
                assert_eq!(
                    &sender.sealer_mut().frames_sealed().to_le_bytes()[..12],
                    &nonce[..]
                );
                let mut out = Vec::new();
                sender.seal_into(t, &payload, &mut out).unwrap();
                assert_eq!(hex::encode(&out), hex::encode(&frame), "{dir}[{i}] sealed");
                let (n, p) = receiver.push(&frame).unwrap();
                assert_eq!(n, frame.len());
                let p = p.unwrap();
                assert_eq!((p.msg_type(), p.payload()), (t, &payload[..]), "{dir}[{i}]");
                // Typed parsing agrees where the payload is a valid message; the vector's
                // REQUEST "ab" is deliberately not a valid id.
                match p.into_message() {
                    Ok(m) => assert_eq!(m.payload_bytes().as_ref(), &payload[..]),
                    Err(e) => {
                        assert_eq!((t, &payload[..]), (2, &b"ab"[..]));
                        assert!(matches!(e, TransportError::BadId { .. }));
                    }
                }
            }
        }
    }

    #[test]
    fn nonce_encoding_after_255_and_256_frames() {
        let v = vectors();
        let c = Handshake::with_secret_for_tests(Role::Client, [1; 32]);
        let s = Handshake::with_secret_for_tests(Role::Server, [2; 32]);
        let spk = s.local_public_key();
        let mut t = c.complete(&spk).unwrap();
        let mut sink = Vec::new();
        for i in 0..256u32 {
            if i == 255 {
                let n = &t.sealer_mut().frames_sealed().to_le_bytes()[..12];
                assert_eq!(
                    hex::encode(n),
                    v["nonce_after_255_frames"].as_str().unwrap()
                );
            }
            sink.clear();
            t.seal_into(8, b"", &mut sink).unwrap();
        }
        let n = &t.sealer_mut().frames_sealed().to_le_bytes()[..12];
        assert_eq!(
            hex::encode(n),
            v["nonce_after_256_frames"].as_str().unwrap()
        );
    }

    #[test]
    fn low_order_points_are_refused() {
        for point in LOW_ORDER_POINTS {
            let key: [u8; 32] = hex::decode(point).unwrap().try_into().unwrap();
            for role in [Role::Client, Role::Server] {
                let r = Handshake::new(role).complete(&key);
                assert!(matches!(r, Err(TransportError::LowOrderKey)), "{point}");
            }
        }
        let mut short = Handshake::new(Role::Client);
        short.read(&[1; 31]);
        assert!(matches!(
            short.into_transport(),
            Err(TransportError::IncompleteHandshake { got: 31 })
        ));
    }
}
