//! The sans-IO channel (handshake + frames + messages) fed arbitrary bytes, in both roles,
//! with the fixed ephemeral secrets of `tests/vectors/transport.json`.
//!
//! First byte: bit 0 picks our role (client/server), bit 1 the mode, the rest the size of the
//! pieces the input is fed in.
//! - Raw mode: the input is what the peer sends: its 32-byte key, then frames. The seeds hold
//!   the vector key and frames, so mutations start from authenticated traffic. Errors must be
//!   typed; no frame may open after an error.
//! - Sealed mode: the input describes messages that the peer (the vector's other secret)
//!   seals, plus an optional corruption of the wire. Without corruption every message must
//!   arrive intact and the stream end cleanly; with one, only an intact prefix may arrive.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use megatorrent::transport::{Handshake, Role, Transport, TransportError};
use megatorrent_fuzz::{CLIENT_EPH_SK, SERVER_EPH_SK};

fn handshake(role: Role) -> Handshake {
    let secret = match role {
        Role::Client => CLIENT_EPH_SK,
        Role::Server => SERVER_EPH_SK,
    };
    Handshake::with_secret_for_tests(role, secret)
}

fn other(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Feed `wire` in pieces; returns the plaintexts (type, payload) and the error, if any.
fn receive(
    t: &mut Transport,
    wire: &[u8],
    piece: usize,
) -> (Vec<(u8, Vec<u8>)>, Option<TransportError>) {
    let mut got = Vec::new();
    for chunk in wire.chunks(piece) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match t.push(rest) {
                Ok((n, p)) => {
                    assert!(n > 0);
                    rest = &rest[n..];
                    if let Some(p) = p {
                        let _ = format!("{p:?}");
                        got.push(p.clone().into_parts());
                        // Typed parsing never panics, whatever the payload.
                        if let Err(e) = p.into_message() {
                            let _ = e.to_string();
                        }
                    }
                }
                Err(e) => return (got, Some(e)),
            }
        }
    }
    (got, None)
}

fn raw(role: Role, input: &[u8], piece: usize) {
    let mut hs = handshake(role);
    let mut rest = input;
    while !hs.is_complete() && !rest.is_empty() {
        let n = hs.read(&rest[..piece.min(rest.len())]);
        rest = &rest[n..];
    }
    let complete = hs.is_complete();
    let mut t = match hs.into_transport() {
        Ok(t) => t,
        Err(TransportError::IncompleteHandshake { got }) => {
            assert!(!complete && got < 32);
            return;
        }
        Err(TransportError::LowOrderKey) => return,
        Err(e) => panic!("unexpected handshake error {e:?}"),
    };
    let (_, err) = receive(&mut t, rest, piece);
    match err {
        None => {
            let _ = t.end_of_stream();
        }
        Some(e) => {
            assert!(
                matches!(
                    e,
                    TransportError::BadFrameLength(_) | TransportError::BadTag
                ),
                "unexpected frame error {e:?}"
            );
        }
    }
}

fn sealed(role: Role, u: &mut Unstructured, piece: usize) -> Result<()> {
    let me = handshake(role);
    let peer = handshake(other(role));
    let (my_pk, peer_pk) = (me.local_public_key(), peer.local_public_key());
    let mut me = me.complete(&peer_pk).expect("vector keys");
    let mut peer = peer.complete(&my_pk).expect("vector keys");
    let mut sent = Vec::new();
    let mut wire = Vec::new();
    for _ in 0..u.int_in_range(0..=8u8)? {
        let t: u8 = u.arbitrary()?;
        let len = u.int_in_range(0..=4096usize)?;
        let payload = u.bytes(len)?.to_vec();
        peer.seal_into(t, &payload, &mut wire)
            .expect("small frames seal");
        sent.push((t, payload));
    }
    let corrupt: Option<(usize, u8)> = if u.arbitrary()? && !wire.is_empty() {
        Some((u.choose_index(wire.len())?, u.int_in_range(1..=255u8)?))
    } else {
        None
    };
    if let Some((at, x)) = corrupt {
        wire[at] ^= x;
    }
    let (got, err) = receive(&mut me, &wire, piece);
    assert!(got.len() <= sent.len());
    assert_eq!(got[..], sent[..got.len()], "only intact frames, in order");
    match corrupt {
        None => {
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got.len(), sent.len());
            me.end_of_stream().expect("clean end");
        }
        Some(_) => {
            let failed = err.is_some() || me.end_of_stream().is_err();
            assert!(
                failed && got.len() < sent.len(),
                "corruption went unnoticed"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let role = if ctl & 1 == 0 {
        Role::Client
    } else {
        Role::Server
    };
    const PIECES: [usize; 14] = [
        1,
        2,
        3,
        4,
        5,
        16,
        17,
        31,
        32,
        33,
        100,
        1000,
        4096,
        usize::MAX,
    ];
    let piece = PIECES[usize::from(ctl >> 2) % PIECES.len()];
    if ctl & 2 == 0 {
        raw(role, rest, piece);
    } else {
        let _ = sealed(role, &mut Unstructured::new(rest), piece);
    }
});
