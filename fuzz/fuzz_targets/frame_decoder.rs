//! The frame decoder (PROTOCOL.md 5.2) on an arbitrary byte stream, fed in pieces of the size
//! given by the first byte, through both input paths (`push`, and `unfilled` + `advance`).
//! Both must find exactly the frames a simple model of the format finds, and refuse a bad
//! length at the same place, for good.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::transport::{FrameDecoder, TransportError, MAX_FRAME_LEN, MIN_FRAME_LEN};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    refused: Option<u32>,
    at_boundary: bool,
}

/// The format, written as plainly as possible.
fn model(mut s: &[u8]) -> Outcome {
    let mut frames = Vec::new();
    loop {
        if s.is_empty() {
            return Outcome {
                frames,
                refused: None,
                at_boundary: true,
            };
        }
        if s.len() < 4 {
            return Outcome {
                frames,
                refused: None,
                at_boundary: false,
            };
        }
        let len = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&(len as usize)) {
            return Outcome {
                frames,
                refused: Some(len),
                at_boundary: false,
            };
        }
        let len = len as usize;
        if s.len() < 4 + len {
            return Outcome {
                frames,
                refused: None,
                at_boundary: false,
            };
        }
        frames.push(s[4..4 + len].to_vec());
        s = &s[4 + len..];
    }
}

fn refused(e: TransportError) -> u32 {
    match e {
        TransportError::BadFrameLength(l) => l,
        other => panic!("unexpected decoder error {other:?}"),
    }
}

fn by_push(stream: &[u8], piece: usize) -> Outcome {
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match d.push(rest) {
                Ok((n, frame)) => {
                    assert!(n > 0 && n <= rest.len(), "consumed {n} of {}", rest.len());
                    rest = &rest[n..];
                    frames.extend(frame);
                }
                Err(e) => {
                    let len = refused(e);
                    // A refused prefix stays refused.
                    assert_eq!(d.push(b"\0").map_err(refused).err(), Some(len));
                    return Outcome {
                        frames,
                        refused: Some(len),
                        at_boundary: d.is_at_boundary(),
                    };
                }
            }
        }
    }
    Outcome {
        frames,
        refused: None,
        at_boundary: d.is_at_boundary(),
    }
}

fn by_advance(stream: &[u8], piece: usize) -> Outcome {
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let buf = d.unfilled();
        assert!(!buf.is_empty());
        let n = buf.len().min(piece).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        match d.advance(n) {
            Ok(frame) => frames.extend(frame),
            Err(e) => {
                return Outcome {
                    frames,
                    refused: Some(refused(e)),
                    at_boundary: d.is_at_boundary(),
                }
            }
        }
    }
    Outcome {
        frames,
        refused: None,
        at_boundary: d.is_at_boundary(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let expected = model(stream);
    assert_eq!(by_push(stream, piece), expected, "push");
    assert_eq!(by_advance(stream, piece), expected, "unfilled/advance");
});
