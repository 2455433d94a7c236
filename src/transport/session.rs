//! The transport state: directional ChaCha20-Poly1305 with per-direction nonce counters.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, Nonce, Tag};
use std::fmt;

use super::frame::{FrameDecoder, LEN_PREFIX, MAX_PAYLOAD_LEN, TAG_LEN};
use super::handshake::SessionInfo;
use super::message::Message;
use super::TransportError;

/// Nonces are 12 bytes: the counter may take every value below 2^96, never more.
const NONCE_LIMIT: u128 = 1 << 96;

/// A per-direction nonce: a 96-bit little-endian counter that refuses to wrap.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct NonceCounter(u128);

impl NonceCounter {
    fn current(&self) -> Result<Nonce, TransportError> {
        if self.0 >= NONCE_LIMIT {
            return Err(TransportError::NonceExhausted);
        }
        let mut n = Nonce::default();
        n.copy_from_slice(&self.0.to_le_bytes()[..12]);
        Ok(n)
    }

    fn increment(&mut self) {
        // Reaching NONCE_LIMIT marks exhaustion; `current` refuses from then on.
        self.0 += 1;
    }
}

/// A decrypted frame: the type byte and the payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext {
    // type byte || payload; never empty (the decoder refuses lengths below 17).
    buf: Vec<u8>,
}

impl Plaintext {
    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        self.buf.first().copied().unwrap_or(0)
    }

    /// The payload after the type byte.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(1..).unwrap_or(&[])
    }

    /// Split into the type byte and the payload.
    pub fn into_parts(mut self) -> (u8, Vec<u8>) {
        let t = self.msg_type();
        if !self.buf.is_empty() {
            self.buf.remove(0);
        }
        (t, self.buf)
    }

    /// Parse the typed message.
    pub fn into_message(self) -> Result<Message, TransportError> {
        let (t, payload) = self.into_parts();
        Message::parse(t, payload)
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("type", &self.msg_type())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// A frame built in place: room for the length prefix and the type byte, then the payload
/// written straight into it (for example read from a file), sealed in place by
/// [`Sealer::seal_frame_buf`]. This spares the copy of a 1 MiB DATA payload into a send buffer.
pub struct FrameBuf {
    // length prefix (4) || type (1) || payload [|| tag (16) once sealed]
    buf: Vec<u8>,
    sealed: bool,
}

impl FrameBuf {
    /// An empty frame of type `msg_type` with room for `payload_capacity` bytes.
    pub fn new(msg_type: u8, payload_capacity: usize) -> Self {
        let cap = payload_capacity.min(MAX_PAYLOAD_LEN);
        let mut buf = Vec::with_capacity(LEN_PREFIX + 1 + cap + TAG_LEN);
        buf.extend_from_slice(&[0; LEN_PREFIX]);
        buf.push(msg_type);
        Self { buf, sealed: false }
    }

    /// The payload written so far (ciphertext once sealed).
    pub fn payload(&self) -> &[u8] {
        let end = self.buf.len() - if self.sealed { TAG_LEN } else { 0 };
        &self.buf[LEN_PREFIX + 1..end]
    }

    /// Append payload bytes.
    pub fn extend_payload(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        if self.sealed {
            return Err(TransportError::AlreadySealed);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Append everything `reader` yields, up to `limit` bytes; returns how many.
    pub fn read_payload_from(
        &mut self,
        reader: &mut impl std::io::Read,
        limit: u64,
    ) -> Result<usize, TransportError> {
        if self.sealed {
            return Err(TransportError::AlreadySealed);
        }
        use std::io::Read;
        Ok(reader.take(limit).read_to_end(&mut self.buf)?)
    }

    /// True once sealed.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The whole frame to write, once sealed (`None` before).
    pub fn sealed_bytes(&self) -> Option<&[u8]> {
        self.sealed.then_some(&self.buf[..])
    }
}

impl fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameBuf")
            .field("type", &self.buf.get(LEN_PREFIX))
            .field("payload_len", &self.payload().len())
            .field("sealed", &self.sealed)
            .finish()
    }
}

/// The sending direction of a session: seals frames.
pub struct Sealer {
    // ChaCha20Poly1305 zeroizes its key on drop.
    cipher: ChaCha20Poly1305,
    nonce: NonceCounter,
}

impl Sealer {
    pub(crate) fn new(cipher: ChaCha20Poly1305) -> Self {
        Self {
            cipher,
            nonce: NonceCounter::default(),
        }
    }

    /// Append one whole frame (length prefix included) carrying `msg_type || payload` to `out`.
    /// The plaintext always holds the type byte, so it is never empty. On error nothing is
    /// appended and the nonce is not consumed.
    pub fn seal_into(
        &mut self,
        msg_type: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(TransportError::MessageTooLarge(payload.len()));
        }
        let nonce = self.nonce.current()?;
        let ct_len = 1 + payload.len() + TAG_LEN;
        let start = out.len();
        out.reserve(LEN_PREFIX + ct_len);
        // ct_len <= MAX_FRAME_LEN, which fits u32.
        out.extend_from_slice(&(ct_len as u32).to_be_bytes());
        out.push(msg_type);
        out.extend_from_slice(payload);
        let body = start + LEN_PREFIX;
        match self
            .cipher
            .encrypt_inout_detached(&nonce, b"", (&mut out[body..]).into())
        {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => {
                out.truncate(start);
                return Err(TransportError::MessageTooLarge(payload.len()));
            }
        }
        self.nonce.increment();
        Ok(())
    }

    /// Append the frame of a typed message to `out`.
    pub fn seal_message(&mut self, msg: &Message, out: &mut Vec<u8>) -> Result<(), TransportError> {
        self.seal_into(msg.msg_type(), &msg.payload_bytes(), out)
    }

    /// Seal a frame assembled in place (see [`FrameBuf`]): no copy of the payload. Fails if
    /// it is already sealed or too large; on error nothing changes.
    pub fn seal_frame_buf(&mut self, frame: &mut FrameBuf) -> Result<(), TransportError> {
        if frame.sealed {
            return Err(TransportError::AlreadySealed);
        }
        let payload_len = frame.payload().len();
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(TransportError::MessageTooLarge(payload_len));
        }
        let nonce = self.nonce.current()?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, b"", (&mut frame.buf[LEN_PREFIX..]).into())
            .map_err(|_| TransportError::MessageTooLarge(payload_len))?;
        frame.buf.extend_from_slice(&tag);
        // 1 + payload + tag <= MAX_FRAME_LEN, which fits u32.
        let ct_len = (1 + payload_len + TAG_LEN) as u32;
        frame.buf[..LEN_PREFIX].copy_from_slice(&ct_len.to_be_bytes());
        frame.sealed = true;
        self.nonce.increment();
        Ok(())
    }

    /// Frames sealed so far (the next nonce).
    pub fn frames_sealed(&self) -> u128 {
        self.nonce.0
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("next_nonce", &self.nonce.0)
            .finish_non_exhaustive()
    }
}

/// The receiving direction of a session: finds frames in the byte stream and opens them.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    nonce: NonceCounter,
    decoder: FrameDecoder,
}

impl Opener {
    pub(crate) fn new(cipher: ChaCha20Poly1305) -> Self {
        Self {
            cipher,
            nonce: NonceCounter::default(),
            decoder: FrameDecoder::new(),
        }
    }

    /// Decrypt one frame body (without its length prefix). On error the nonce is not consumed.
    pub fn open_frame(&mut self, mut ciphertext: Vec<u8>) -> Result<Plaintext, TransportError> {
        let nonce = self.nonce.current()?;
        let Some(split) = ciphertext.len().checked_sub(TAG_LEN).filter(|&s| s > 0) else {
            let len = u32::try_from(ciphertext.len()).unwrap_or(u32::MAX);
            return Err(TransportError::BadFrameLength(len));
        };
        let tag = Tag::try_from(&ciphertext[split..]).map_err(|_| TransportError::BadTag)?;
        self.cipher
            .decrypt_inout_detached(&nonce, b"", (&mut ciphertext[..split]).into(), &tag)
            .map_err(|_| TransportError::BadTag)?;
        ciphertext.truncate(split);
        self.nonce.increment();
        Ok(Plaintext { buf: ciphertext })
    }

    /// Feed received bytes (any split). Returns how many were consumed and, when a frame
    /// completed, its plaintext; call again with the unconsumed rest.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Plaintext>), TransportError> {
        let (n, frame) = self.decoder.push(input)?;
        match frame {
            Some(ct) => Ok((n, Some(self.open_frame(ct)?))),
            None => Ok((n, None)),
        }
    }

    /// Zero-copy input: the buffer the next received bytes belong in (see
    /// [`FrameDecoder::unfilled`]).
    pub fn unfilled(&mut self) -> &mut [u8] {
        self.decoder.unfilled()
    }

    /// Bytes still missing from the frame being received (see
    /// [`super::FrameDecoder::body_remaining`]).
    pub fn body_remaining(&self) -> usize {
        self.decoder.body_remaining()
    }

    /// Record `n` bytes written into [`Opener::unfilled`]; returns a plaintext when a frame
    /// completed.
    pub fn advance(&mut self, n: usize) -> Result<Option<Plaintext>, TransportError> {
        match self.decoder.advance(n)? {
            Some(ct) => Ok(Some(self.open_frame(ct)?)),
            None => Ok(None),
        }
    }

    /// The stream ended: fine between frames, an error inside one.
    pub fn end_of_stream(&self) -> Result<(), TransportError> {
        if self.decoder.is_at_boundary() {
            Ok(())
        } else {
            Err(TransportError::Truncated("frame"))
        }
    }

    /// Frames opened so far (the next nonce).
    pub fn frames_opened(&self) -> u128 {
        self.nonce.0
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("next_nonce", &self.nonce.0)
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

/// A completed handshake: the only value that can seal and open frames. Obtain one from
/// [`super::Handshake::into_transport`].
#[derive(Debug)]
pub struct Transport {
    sealer: Sealer,
    opener: Opener,
    info: SessionInfo,
}

impl Transport {
    pub(crate) fn new(sealer: Sealer, opener: Opener, info: SessionInfo) -> Self {
        Self {
            sealer,
            opener,
            info,
        }
    }

    /// Roles and ephemeral keys of this session.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// See [`Sealer::seal_into`].
    pub fn seal_into(
        &mut self,
        msg_type: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.sealer.seal_into(msg_type, payload, out)
    }

    /// See [`Sealer::seal_message`].
    pub fn seal_message(&mut self, msg: &Message, out: &mut Vec<u8>) -> Result<(), TransportError> {
        self.sealer.seal_message(msg, out)
    }

    /// See [`Opener::push`].
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Plaintext>), TransportError> {
        self.opener.push(input)
    }

    /// See [`Opener::end_of_stream`].
    pub fn end_of_stream(&self) -> Result<(), TransportError> {
        self.opener.end_of_stream()
    }

    /// The sending direction.
    pub fn sealer_mut(&mut self) -> &mut Sealer {
        &mut self.sealer
    }

    /// The receiving direction.
    pub fn opener_mut(&mut self) -> &mut Opener {
        &mut self.opener
    }

    /// Separate the directions, for a reader and a writer running concurrently.
    pub fn split(self) -> (Sealer, Opener, SessionInfo) {
        (self.sealer, self.opener, self.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Handshake, Role};

    /// The session keys live only inside the ciphers; this stops compiling if the AEAD type
    /// ever stops wiping its key on drop (e.g. a crate upgrade that makes it a feature).
    #[test]
    fn session_ciphers_zeroize_their_keys() {
        fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wipes_on_drop::<ChaCha20Poly1305>();
    }

    fn pair() -> (Transport, Transport) {
        let c = Handshake::new(Role::Client);
        let s = Handshake::new(Role::Server);
        let (cpk, spk) = (c.local_public_key(), s.local_public_key());
        (c.complete(&spk).unwrap(), s.complete(&cpk).unwrap())
    }

    #[test]
    fn round_trip_both_ways_and_any_split() {
        let (mut c, mut s) = pair();
        let mut wire = Vec::new();
        c.seal_into(3, b"hello", &mut wire).unwrap();
        c.seal_into(8, b"", &mut wire).unwrap();
        let mut got = Vec::new();
        for b in wire.chunks(1) {
            let (n, p) = s.push(b).unwrap();
            assert_eq!(n, 1);
            got.extend(p);
        }
        assert_eq!(got[0].msg_type(), 3);
        assert_eq!(got[0].payload(), b"hello");
        assert_eq!(got[1].clone().into_parts(), (8, vec![]));
        let mut back = Vec::new();
        s.seal_into(255, b"Not Found", &mut back).unwrap();
        let (_, p) = c.push(&back).unwrap();
        assert_eq!(p.unwrap().payload(), b"Not Found");
    }

    #[test]
    fn bad_tag_and_replay_are_refused() {
        let (mut c, mut s) = pair();
        let mut wire = Vec::new();
        c.seal_into(2, b"x", &mut wire).unwrap();
        let mut bad = wire.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(s.push(&bad), Err(TransportError::BadTag)));
        // The nonce was not consumed by the failure: the genuine frame still opens...
        assert_eq!(s.opener.frames_opened(), 0);
        assert!(s.push(&wire).unwrap().1.is_some());
        // ...but only once (a replay is under the next nonce).
        assert!(matches!(s.push(&wire), Err(TransportError::BadTag)));
    }

    #[test]
    fn nonce_counter_refuses_to_wrap() {
        let (mut c, mut s) = pair();
        c.sealer.nonce = NonceCounter(NONCE_LIMIT - 1);
        s.opener.nonce = NonceCounter(NONCE_LIMIT - 1);
        let mut wire = Vec::new();
        c.seal_into(2, b"last", &mut wire).unwrap();
        assert_eq!(
            &c.sealer.nonce.0.to_le_bytes()[..13],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        let before = wire.len();
        assert!(matches!(
            c.seal_into(2, b"wrap", &mut wire),
            Err(TransportError::NonceExhausted)
        ));
        assert_eq!(wire.len(), before, "nothing appended on error");
        assert_eq!(s.push(&wire).unwrap().1.unwrap().payload(), b"last");
        let mut more = Vec::new();
        let mut fresh = pair().0;
        fresh.seal_into(2, b"x", &mut more).unwrap();
        assert!(matches!(s.push(&more), Err(TransportError::NonceExhausted)));
    }

    #[test]
    fn frame_buf_seals_in_place_like_seal_into() {
        let (mut a, _) = pair();
        let (mut b, mut peer) = pair();
        // Twin sessions (same injected secrets) produce identical frames for the same input.
        let c = Handshake::with_secret_for_tests(Role::Client, [1; 32]);
        let s = Handshake::with_secret_for_tests(Role::Server, [2; 32]);
        let spk = s.local_public_key();
        let mut twin1 = c.complete(&spk).unwrap();
        let c = Handshake::with_secret_for_tests(Role::Client, [1; 32]);
        let mut twin2 = c.complete(&spk).unwrap();
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut expected = Vec::new();
        twin1.seal_into(3, &payload, &mut expected).unwrap();
        let mut fb = FrameBuf::new(3, payload.len());
        fb.extend_payload(&payload[..100]).unwrap();
        fb.read_payload_from(&mut &payload[100..], 1 << 20).unwrap();
        assert_eq!(fb.payload(), &payload[..]);
        assert!(fb.sealed_bytes().is_none());
        twin2.sealer_mut().seal_frame_buf(&mut fb).unwrap();
        assert_eq!(fb.sealed_bytes().unwrap(), &expected[..]);
        assert!(matches!(
            twin2.sealer_mut().seal_frame_buf(&mut fb),
            Err(TransportError::AlreadySealed)
        ));
        assert!(matches!(
            fb.extend_payload(b"x"),
            Err(TransportError::AlreadySealed)
        ));
        assert_eq!(twin2.sealer_mut().frames_sealed(), 1);
        // And it opens on a normal session.
        let mut fb = FrameBuf::new(8, 2);
        fb.extend_payload(b"ok").unwrap();
        b.sealer_mut().seal_frame_buf(&mut fb).unwrap();
        let (_, p) = peer.push(fb.sealed_bytes().unwrap()).unwrap();
        assert_eq!(p.unwrap().into_parts(), (8, b"ok".to_vec()));
        let mut big = FrameBuf::new(3, 0);
        big.extend_payload(&vec![0; MAX_PAYLOAD_LEN + 1]).unwrap();
        assert!(matches!(
            a.sealer_mut().seal_frame_buf(&mut big),
            Err(TransportError::MessageTooLarge(_))
        ));
        assert_eq!(a.sealer_mut().frames_sealed(), 0);
    }

    #[test]
    fn refuses_oversized_messages() {
        let (mut c, _) = pair();
        let mut out = Vec::new();
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        assert!(matches!(
            c.seal_into(3, &big, &mut out),
            Err(TransportError::MessageTooLarge(_))
        ));
        assert!(out.is_empty());
        c.seal_into(3, &big[1..], &mut out).unwrap();
        assert_eq!(out.len(), 4 + super::super::frame::MAX_FRAME_LEN);
    }

    #[test]
    fn debug_shows_no_keys() {
        let c = Handshake::with_secret_for_tests(Role::Client, [0x11; 32]);
        let s = Handshake::with_secret_for_tests(Role::Server, [0x22; 32]);
        let spk = s.local_public_key();
        let t = c.complete(&spk).unwrap();
        let dbg = format!("{t:?}");
        for key in [
            "d6fe7a8ba3e4b6a0676f91d6e3a63c1c1ce94845ef8bb0314d010457f7ea0548",
            "b6a1d783665b53d3d0176fc19c81d4400f4be1bbab700de73ce6d276198583df",
            "1111111111111111",
        ] {
            assert!(!dbg.contains(key));
        }
        assert!(dbg.contains("next_nonce"));
    }
}
