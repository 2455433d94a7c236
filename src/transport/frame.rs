//! Frame boundaries (PROTOCOL.md 5.2): `u32 big-endian length || ciphertext`.
//!
//! [`FrameDecoder`] accepts the byte stream in any split. It checks the length prefix as soon
//! as its 4 bytes are in and allocates the body only for a length within the limits, so a peer
//! announcing 4 GiB costs nothing.

use super::TransportError;

/// Length of the big-endian length prefix.
pub const LEN_PREFIX: usize = 4;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Smallest valid ciphertext length: a type byte plus the tag.
pub const MIN_FRAME_LEN: usize = 1 + TAG_LEN;
/// Largest valid ciphertext length (extension limit): 1 MiB + 1 KiB.
pub const MAX_FRAME_LEN: usize = 1_049_600;
/// Largest message payload that fits one frame (after the type byte and the tag).
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - TAG_LEN - 1;

/// Splits a byte stream into frame ciphertexts.
#[derive(Default)]
pub struct FrameDecoder {
    header: [u8; LEN_PREFIX],
    header_len: usize,
    // Allocated (zeroed) to the announced length once the prefix has been checked.
    body: Option<Vec<u8>>,
    body_len: usize,
}

impl std::fmt::Debug for FrameDecoder {
    // Sizes only: never dump a megabyte of frame body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("header_bytes", &self.header_len)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("body_filled", &self.body_len)
            .finish()
    }
}

impl FrameDecoder {
    /// A decoder at a frame boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// True between frames (nothing of a next frame received yet): end of stream here is clean.
    pub fn is_at_boundary(&self) -> bool {
        self.header_len == 0 && self.body.is_none()
    }

    /// The buffer the next bytes belong in: the rest of the length prefix, or the rest of the
    /// body. Read into it directly, then call [`FrameDecoder::advance`]: the body is never copied.
    pub fn unfilled(&mut self) -> &mut [u8] {
        match &mut self.body {
            Some(body) => &mut body[self.body_len..],
            None => &mut self.header[self.header_len..],
        }
    }

    /// Bytes still missing from the frame body being received (0 between bodies: while the
    /// length prefix is incomplete nothing is known about what follows).
    pub fn body_remaining(&self) -> usize {
        self.body
            .as_ref()
            .map_or(0, |b| b.len().saturating_sub(self.body_len))
    }

    /// Record that `n` bytes were written at the start of [`FrameDecoder::unfilled`]. Returns a
    /// whole ciphertext once its last byte is in.
    pub fn advance(&mut self, n: usize) -> Result<Option<Vec<u8>>, TransportError> {
        match &mut self.body {
            Some(body) => {
                self.body_len = (self.body_len + n).min(body.len());
                if self.body_len == body.len() {
                    self.body_len = 0;
                    return Ok(self.body.take());
                }
                Ok(None)
            }
            None => {
                self.header_len = (self.header_len + n).min(LEN_PREFIX);
                if self.header_len == LEN_PREFIX {
                    let len = u32::from_be_bytes(self.header);
                    let ok = usize::try_from(len)
                        .ok()
                        .filter(|l| (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(l));
                    let Some(len) = ok else {
                        // Stay in the header state: a caller that ignores the error gets it again.
                        self.header_len = LEN_PREFIX;
                        return Err(TransportError::BadFrameLength(len));
                    };
                    self.header_len = 0;
                    self.body = Some(vec![0u8; len]);
                    self.body_len = 0;
                }
                Ok(None)
            }
        }
    }

    /// Copy bytes from `input` up to the end of the current frame at most. Returns how many
    /// bytes were consumed and the ciphertext if a frame completed; call again with the rest.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Vec<u8>>), TransportError> {
        let mut used = 0;
        loop {
            if self.header_len == LEN_PREFIX && self.body.is_none() {
                // A refused length prefix: keep refusing.
                return Err(TransportError::BadFrameLength(u32::from_be_bytes(
                    self.header,
                )));
            }
            let dst = self.unfilled();
            let n = dst.len().min(input.len() - used);
            dst[..n].copy_from_slice(&input[used..used + n]);
            used += n;
            if let Some(frame) = self.advance(n)? {
                return Ok((used, Some(frame)));
            }
            if used == input.len() {
                return Ok((used, None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.extend((0..len).map(|i| i as u8));
        f
    }

    #[test]
    fn body_remaining_counts_down_to_the_frame_end() {
        let mut d = FrameDecoder::new();
        let f = frame(100);
        assert_eq!(d.body_remaining(), 0);
        d.push(&f[..2]).unwrap();
        assert_eq!(d.body_remaining(), 0, "length prefix not complete yet");
        d.push(&f[2..4]).unwrap();
        assert_eq!(d.body_remaining(), 100);
        d.push(&f[4..54]).unwrap();
        assert_eq!(d.body_remaining(), 50);
        let (_, done) = d.push(&f[54..]).unwrap();
        assert!(done.is_some());
        assert_eq!(d.body_remaining(), 0);
    }

    #[test]
    fn any_split_yields_the_same_frames() {
        let mut stream = frame(17);
        stream.extend(frame(40));
        stream.extend(frame(MAX_FRAME_LEN));
        for chunk in [1usize, 3, 4, 5, 16, 17, 21, 1000, stream.len()] {
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                let mut rest = piece;
                while !rest.is_empty() {
                    let (n, f) = d.push(rest).unwrap();
                    rest = &rest[n..];
                    out.extend(f);
                }
            }
            assert!(d.is_at_boundary());
            let lens: Vec<usize> = out.iter().map(Vec::len).collect();
            assert_eq!(lens, vec![17, 40, MAX_FRAME_LEN], "chunk {chunk}");
            assert_eq!(out[1], frame(40)[4..]);
        }
    }

    #[test]
    fn refuses_bad_lengths_before_the_body() {
        for len in [0u32, 1, 16, MAX_FRAME_LEN as u32 + 1, u32::MAX] {
            let mut d = FrameDecoder::new();
            // Only the prefix is given: the error comes without any body byte.
            let r = d.push(&len.to_be_bytes());
            assert!(
                matches!(r, Err(TransportError::BadFrameLength(l)) if l == len),
                "{len}: {r:?}"
            );
            assert!(d.body.is_none(), "nothing allocated for {len}");
            assert!(matches!(
                d.push(&[0]),
                Err(TransportError::BadFrameLength(_))
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn random_splits_and_garbage_never_panic(
            lens in proptest::collection::vec(17usize..3000, 1..6),
            cuts in proptest::collection::vec(1usize..5000, 1..20),
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut stream = Vec::new();
            for l in &lens {
                stream.extend(frame(*l));
            }
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut i = 0;
            while !rest.is_empty() {
                let take = cuts[i % cuts.len()].min(rest.len());
                let mut piece = &rest[..take];
                while !piece.is_empty() {
                    let (n, f) = d.push(piece).unwrap();
                    piece = &piece[n..];
                    got.extend(f.map(|f| f.len()));
                }
                rest = &rest[take..];
                i += 1;
            }
            proptest::prop_assert_eq!(got, lens);
            // Arbitrary bytes: frames or a typed error, never a panic.
            let mut d = FrameDecoder::new();
            let mut rest = &garbage[..];
            while !rest.is_empty() {
                match d.push(rest) {
                    Ok((n, _)) => rest = &rest[n..],
                    Err(e) => {
                        proptest::prop_assert!(matches!(e, TransportError::BadFrameLength(_)));
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn partial_frame_is_not_a_boundary() {
        let mut d = FrameDecoder::new();
        let f = frame(20);
        let (n, done) = d.push(&f[..10]).unwrap();
        assert_eq!((n, done), (10, None));
        assert!(!d.is_at_boundary());
        let (_, done) = d.push(&f[10..]).unwrap();
        assert_eq!(done.as_deref(), Some(&f[4..]));
        assert!(d.is_at_boundary());
    }
}
