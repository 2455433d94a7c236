//! Property tests of the sans-IO transport core: whatever messages are sent and however the
//! byte stream is cut on the way (handshake keys included), the receiver opens exactly the
//! sealed frames, in order, in both directions; and any single altered byte is detected, with
//! only an intact prefix of frames delivered before it.

use megatorrent::transport::{
    FrameDecoder, Handshake, Role, Transport, TransportError, MAX_FRAME_LEN,
};
use proptest::prelude::*;

/// A connected pair (client, server) whose keys crossed the wire in the given pieces.
fn pair(cut_c: usize, cut_s: usize) -> (Transport, Transport) {
    let mut c = Handshake::new(Role::Client);
    let mut s = Handshake::new(Role::Server);
    let (cpk, spk) = (c.local_public_key(), s.local_public_key());
    for piece in spk.chunks(cut_c.max(1)) {
        assert_eq!(c.read(piece), piece.len());
    }
    for piece in cpk.chunks(cut_s.max(1)) {
        assert_eq!(s.read(piece), piece.len());
    }
    (c.into_transport().unwrap(), s.into_transport().unwrap())
}

/// Cut `wire` at the given points (taken modulo its length, in any order).
fn pieces(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    at.push(0);
    at.push(wire.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| wire[w[0]..w[1]].to_vec()).collect()
}

/// Feed pieces to `rx`; returns what opened and the first error.
fn receive(rx: &mut Transport, parts: &[Vec<u8>]) -> (Vec<(u8, Vec<u8>)>, Option<TransportError>) {
    let mut got = Vec::new();
    for part in parts {
        let mut rest = &part[..];
        while !rest.is_empty() {
            match rx.push(rest) {
                Ok((n, p)) => {
                    assert!(n > 0, "no progress");
                    rest = &rest[n..];
                    got.extend(p.map(|p| p.into_parts()));
                }
                Err(e) => return (got, Some(e)),
            }
        }
    }
    (got, None)
}

fn messages() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<u8>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(any::<u8>(), 0..5000),
            ],
        ),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn seal_then_open_for_any_split(
        msgs in messages(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        key_cuts in (1usize..=32, 1usize..=32),
        server_sends in any::<bool>(),
    ) {
        let (mut c, mut s) = pair(key_cuts.0, key_cuts.1);
        let (tx, rx) = if server_sends { (&mut s, &mut c) } else { (&mut c, &mut s) };
        let mut wire = Vec::new();
        for (t, payload) in &msgs {
            tx.seal_into(*t, payload, &mut wire).unwrap();
        }
        let (got, err) = receive(rx, &pieces(&wire, &cuts));
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, msgs.clone());
        prop_assert!(rx.end_of_stream().is_ok());
        prop_assert_eq!(rx.opener_mut().frames_opened(), msgs.len() as u128);

        // The zero-copy path (unfilled + advance) agrees.
        let (mut c2, mut s2) = pair(32, 32);
        let (tx2, rx2) = if server_sends { (&mut s2, &mut c2) } else { (&mut c2, &mut s2) };
        let mut wire2 = Vec::new();
        for (t, payload) in &msgs {
            tx2.seal_into(*t, payload, &mut wire2).unwrap();
        }
        let mut got2 = Vec::new();
        for part in pieces(&wire2, &cuts) {
            let mut rest = &part[..];
            while !rest.is_empty() {
                let buf = rx2.opener_mut().unfilled();
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                got2.extend(rx2.opener_mut().advance(n).unwrap().map(|p| p.into_parts()));
            }
        }
        prop_assert_eq!(got2, msgs);
    }

    #[test]
    fn any_altered_byte_is_detected(
        msgs in messages().prop_filter("something to alter", |m| !m.is_empty()),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        at in any::<usize>(),
        flip in 1u8..=255,
    ) {
        let (mut c, mut s) = pair(32, 32);
        let mut wire = Vec::new();
        for (t, payload) in &msgs {
            c.seal_into(*t, payload, &mut wire).unwrap();
        }
        let at = at % wire.len();
        wire[at] ^= flip;
        let (got, err) = receive(&mut s, &pieces(&wire, &cuts));
        // Only frames before the altered one open, unchanged.
        prop_assert!(got.len() < msgs.len());
        prop_assert_eq!(&got[..], &msgs[..got.len()]);
        match err {
            Some(TransportError::BadTag | TransportError::BadFrameLength(_)) => {}
            // A length made larger but still valid leaves the stream inside a frame.
            None => prop_assert!(matches!(s.end_of_stream(), Err(TransportError::Truncated(_)))),
            Some(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn reordered_or_dropped_frames_are_refused(
        msgs in messages().prop_filter("two frames at least", |m| m.len() >= 2),
        pick in any::<prop::sample::Index>(),
        drop_it in any::<bool>(),
    ) {
        let (mut c, mut s) = pair(32, 32);
        let frames: Vec<Vec<u8>> = msgs
            .iter()
            .map(|(t, p)| {
                let mut f = Vec::new();
                c.seal_into(*t, p, &mut f).unwrap();
                f
            })
            .collect();
        // Skip frame i (dropped) or swap it with the next one (reordered).
        let i = pick.index(frames.len() - 1);
        let mut order: Vec<usize> = (0..frames.len()).collect();
        if drop_it {
            order.remove(i);
        } else {
            order.swap(i, i + 1);
        }
        let wire: Vec<Vec<u8>> = order.iter().map(|&k| frames[k].clone()).collect();
        let (got, err) = receive(&mut s, &wire);
        // The frame in position i was sealed under another nonce: it does not authenticate.
        prop_assert!(matches!(err, Some(TransportError::BadTag)), "{:?}", err);
        prop_assert_eq!(&got[..], &msgs[..i]);
    }

    #[test]
    fn decoder_refuses_every_bad_length_without_reading_on(
        len in prop_oneof![0u32..17, (MAX_FRAME_LEN as u32 + 1)..=u32::MAX],
        tail in prop::collection::vec(any::<u8>(), 0..64),
        cut in 1usize..4,
    ) {
        let mut d = FrameDecoder::new();
        let prefix = len.to_be_bytes();
        let (n, f) = d.push(&prefix[..cut]).unwrap();
        prop_assert_eq!((n, f), (cut, None));
        let r = d.push(&prefix[cut..]);
        prop_assert!(matches!(r, Err(TransportError::BadFrameLength(l)) if l == len));
        let again = d.push(&tail);
        prop_assert!(matches!(again, Err(TransportError::BadFrameLength(l)) if l == len));
    }
}
