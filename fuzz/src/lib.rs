//! Helpers shared by the fuzz targets: fixed keys (never random, so every input reproduces),
//! signing of fuzzed manifest text, and the checks every message parser must pass.

use megatorrent::identity::Identity;
use megatorrent::transport::Message;

/// The seed of the identity the targets sign with.
pub const SEED: [u8; 32] = [0x5a; 32];
/// The read key of `tests/vectors/manifests/private-small.json`.
pub const READ_KEY: [u8; 32] = [0x33; 32];
/// The fixed X25519 ephemeral secrets of `tests/vectors/transport.json`.
pub const CLIENT_EPH_SK: [u8; 32] = [0x11; 32];
/// See [`CLIENT_EPH_SK`].
pub const SERVER_EPH_SK: [u8; 32] = [0x22; 32];

/// The identity the targets sign with.
pub fn identity() -> Identity {
    Identity::from_seed(&SEED)
}

/// Sign `text` the way the reference does: the signature covers the text as it is, and
/// `,"signature":"<hex>"` is inserted before the final `}`. Returns `None` when the text does
/// not end with `}`. The fuzzer cannot forge Ed25519 signatures, so this is how fuzzed text
/// reaches the code that runs after the signature check.
pub fn sign_appended(identity: &Identity, text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    let body = text.strip_suffix(b"}")?;
    let sig = identity.sign(text);
    let mut out = body.to_vec();
    out.extend_from_slice(b",\"signature\":\"");
    out.extend_from_slice(hex::encode(sig).as_bytes());
    out.extend_from_slice(b"\"}");
    Some(out)
}

/// Parse `payload` as a message of type `msg_type`; a message that parses must encode to a
/// payload that parses back to the same message, and its type must be the one asked for.
pub fn check_message(msg_type: u8, payload: &[u8]) -> Option<Message> {
    match Message::parse(msg_type, payload.to_vec()) {
        Ok(m) => {
            assert_eq!(m.msg_type(), msg_type);
            let wire = m.payload_bytes().into_owned();
            let back = Message::parse(msg_type, wire).expect("an encoded message parses");
            assert_eq!(back, m, "round trip");
            // Debug must not panic (it is what logs print).
            let _ = format!("{m:?}");
            Some(m)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}
