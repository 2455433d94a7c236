//! The tokio adapter: drives the sans-IO core over a TCP socket.
//!
//! [`connect`] and [`accept`] run the key exchange under a time-out (10 s by default) and return
//! a [`SecureStream`], which sends and receives typed messages. It splits into a
//! [`SecureReader`] and a [`SecureWriter`] so requests can be pipelined while replies are read.
//! [`SecureStream::close`] shuts the write side down and drains the read side before the
//! socket is dropped: closing a socket with unread bytes makes the kernel send a reset, and a
//! reference peer crashes on a reset.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::{timeout, timeout_at, Instant};

use super::TransportError;
use super::{Handshake, Hello, Message, Opener, Plaintext, Role, Sealer, SessionInfo};

/// Default time allowed for the key exchange (and the binding answer).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a graceful close waits for the peer to finish writing.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
// Small frames are read through this buffer; larger reads go straight into the frame body.
const READ_BUF: usize = 16 * 1024;
// Below this many missing body bytes a low-water mark is not worth its system call.
const LOW_WATER_MIN: usize = 64 * 1024;

/// The socket's receive low-water mark (`SO_RCVLOWAT`), kept at the number of bytes the
/// frame being received still lacks.
///
/// Without it a reader waiting for the rest of a 1 MiB frame is woken for every few kilobytes
/// that arrive, and each wake-up costs a scheduler round trip in the softirq that delivers the
/// data (on loopback, on the sender's CPU): about a tenth of the bulk throughput on two cores.
/// The mark is only raised while a body of known length is incomplete, never above what that
/// body still needs, and dropped back to 1 before anything else is awaited, so a peer can never
/// be kept waiting on bytes it was not going to send. A FIN, a reset or an error wakes the
/// reader whatever the mark.
#[derive(Debug)]
struct LowWater {
    current: usize,
    // Cleared when the kernel refuses the option: reads then simply wake more often.
    usable: bool,
}

impl Default for LowWater {
    fn default() -> Self {
        Self {
            current: 1,
            usable: cfg!(target_os = "linux"),
        }
    }
}

impl LowWater {
    /// Set the mark for a read that wants `missing` more body bytes (0: anything).
    fn want(&mut self, sock: &OwnedReadHalf, missing: usize) {
        let target = if missing >= LOW_WATER_MIN { missing } else { 1 };
        if target == self.current || !self.usable {
            return;
        }
        if set_recv_low_water(sock, target).is_ok() {
            self.current = target;
        } else {
            self.usable = false;
        }
    }
}

#[cfg(target_os = "linux")]
fn set_recv_low_water(sock: &OwnedReadHalf, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Frames are at most MAX_FRAME_LEN, far below c_int::MAX; the kernel caps it further.
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let fd = sock.as_ref().as_raw_fd();
    // SAFETY: `fd` is an open socket borrowed from `sock` for the duration of the call, and
    // the option value points to a live c_int whose exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_recv_low_water(_sock: &OwnedReadHalf, _bytes: usize) -> std::io::Result<()> {
    // Elsewhere SO_RCVLOWAT does not gate readiness the same way: leave the default.
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Options for [`connect`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Time allowed for TCP connect, key exchange and (with binding) the server's proof.
    pub handshake_timeout: Duration,
    /// Require the server to prove this Ed25519 identity (PROTOCOL.md 5.4).
    pub expect_identity: Option<[u8; 32]>,
    /// Gossip to send in a HELLO right after the handshake. A HELLO is sent when this is set
    /// or when binding is required.
    pub gossip: Option<BTreeMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            handshake_timeout,
            expect_identity,
            gossip,
        } = self;
        f.debug_struct("ConnectOptions")
            .field("handshake_timeout", handshake_timeout)
            .field("expect_identity", &crate::id::hex_opt(expect_identity))
            .field("gossip", &crate::id::GossipDebug(gossip))
            .finish()
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            expect_identity: None,
            gossip: None,
        }
    }
}

setters!(ConnectOptions {
    handshake_timeout: Duration,
    expect_identity: Option<[u8; 32]>,
    gossip: Option<BTreeMap<[u8; 32], i64>>,
});

/// Options for [`accept`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AcceptOptions {
    /// Time allowed for the key exchange.
    pub handshake_timeout: Duration,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

setters!(AcceptOptions {
    handshake_timeout: Duration,
});

/// The receiving half of a secure connection.
pub struct SecureReader {
    io: BufReader<OwnedReadHalf>,
    opener: Opener,
    low_water: LowWater,
    // Set after an error: the stream position is unknown, nothing more can be read.
    failed: bool,
}

/// The sending half of a secure connection.
pub struct SecureWriter {
    io: OwnedWriteHalf,
    sealer: Sealer,
    // Reused for every frame, so a 1 MiB DATA costs one copy into it and no allocation.
    buf: Vec<u8>,
}

/// An established v5 connection over TCP.
#[derive(Debug)]
pub struct SecureStream {
    reader: SecureReader,
    writer: SecureWriter,
    info: SessionInfo,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for SecureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureReader")
            .field("opener", &self.opener)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SecureWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureWriter")
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

/// Connect to `addr`, run the handshake and, if required, identity binding.
pub async fn connect(
    addr: impl ToSocketAddrs,
    opts: &ConnectOptions,
) -> Result<SecureStream, TransportError> {
    let deadline = Instant::now() + opts.handshake_timeout;
    let tcp = timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| TransportError::HandshakeTimeout)??;
    let mut stream = handshake_until(tcp, Role::Client, deadline).await?;
    if opts.expect_identity.is_none() && opts.gossip.is_none() {
        return Ok(stream);
    }
    let hello = Hello {
        bind: opts.expect_identity.is_some(),
        ..Hello::v5(opts.gossip.clone().unwrap_or_default())
    };
    stream.send(&Message::Hello(hello)).await?;
    let Some(expected) = opts.expect_identity else {
        return Ok(stream);
    };
    // A reference server ignores "bind" and never answers: the time-out means "no proof".
    let verdict = match timeout_at(deadline, stream.recv()).await {
        Ok(Ok(Some(Message::Hello(h)))) => stream.info.verify_binding(&h, &expected),
        Ok(Ok(Some(_))) | Err(_) => Err(TransportError::BindingMissing),
        Ok(Ok(None)) => Err(TransportError::Closed),
        Ok(Err(e)) => Err(e),
    };
    match verdict {
        Ok(()) => Ok(stream),
        Err(e) => {
            tracing::warn!(peer = %stream.peer_addr, "closing: {}", crate::error::ErrorChain(&e));
            let _ = stream.close_within(Duration::from_secs(1)).await;
            Err(e)
        }
    }
}

/// Run the server side of the handshake on an accepted socket.
pub async fn accept(tcp: TcpStream, opts: &AcceptOptions) -> Result<SecureStream, TransportError> {
    handshake_until(tcp, Role::Server, Instant::now() + opts.handshake_timeout).await
}

/// Run the handshake on an already connected socket in the given role.
pub async fn handshake(
    tcp: TcpStream,
    role: Role,
    time_limit: Duration,
) -> Result<SecureStream, TransportError> {
    handshake_until(tcp, role, Instant::now() + time_limit).await
}

async fn handshake_until(
    tcp: TcpStream,
    role: Role,
    deadline: Instant,
) -> Result<SecureStream, TransportError> {
    // Requests are small and pipelined: do not let Nagle hold them back.
    tcp.set_nodelay(true)?;
    let peer_addr = tcp.peer_addr()?;
    let local_addr = tcp.local_addr()?;
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::with_capacity(READ_BUF, rd);
    let mut hs = Handshake::new(role);
    let exchange = async {
        // Both sides send first and never wait (PROTOCOL.md 5.1.1).
        wr.write_all(&hs.local_public_key()).await?;
        while !hs.is_complete() {
            let buf = rd.fill_buf().await?;
            if buf.is_empty() {
                return Err(TransportError::Truncated("handshake key"));
            }
            // Only the key is taken; frame bytes behind it stay buffered.
            let n = hs.read(buf);
            rd.consume(n);
        }
        Ok(())
    };
    timeout_at(deadline, exchange)
        .await
        .map_err(|_| TransportError::HandshakeTimeout)??;
    let (sealer, opener, info) = hs.into_transport()?.split();
    Ok(SecureStream {
        reader: SecureReader {
            io: rd,
            opener,
            low_water: LowWater::default(),
            failed: false,
        },
        writer: SecureWriter {
            io: wr,
            sealer,
            buf: Vec::new(),
        },
        info,
        peer_addr,
        local_addr,
    })
}

impl SecureReader {
    /// The next decrypted frame, `None` at a clean end of stream (between frames).
    ///
    /// Cancel-safe: dropping the future loses no bytes, so it can sit in `select!` or under a
    /// time-out.
    pub async fn recv_plaintext(&mut self) -> Result<Option<Plaintext>, TransportError> {
        if self.failed {
            return Err(TransportError::Closed);
        }
        let r = self.recv_inner().await;
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    async fn recv_inner(&mut self) -> Result<Option<Plaintext>, TransportError> {
        loop {
            // The decoder always wants at least one byte here (a finished frame returns).
            if self.io.buffer().is_empty() {
                self.low_water
                    .want(self.io.get_ref(), self.opener.body_remaining());
            }
            let n = self.io.read(self.opener.unfilled()).await?;
            if n == 0 {
                self.opener.end_of_stream()?;
                return Ok(None);
            }
            if let Some(p) = self.opener.advance(n)? {
                return Ok(Some(p));
            }
        }
    }

    /// The next message, `None` at a clean end of stream. Messages of a type this library
    /// does not know are skipped (and logged), never an error (PROTOCOL.md 5.3). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, TransportError> {
        loop {
            match self.recv_plaintext().await? {
                Some(p) => match p.into_message() {
                    Err(TransportError::UnknownType(t)) => {
                        tracing::debug!("ignored a message of unknown type 0x{t:02x}");
                    }
                    other => return other.map(Some),
                },
                None => return Ok(None),
            }
        }
    }

    /// Read and discard until the peer closes or `limit` passes.
    pub async fn drain(&mut self, limit: Duration) {
        // Wake for any byte (and the FIN), not for the rest of a frame.
        self.low_water.want(self.io.get_ref(), 0);
        let mut scratch = vec![0u8; READ_BUF];
        let _ = timeout(limit, async {
            // Errors (e.g. a reset) end the drain too.
            while let Ok(n) = self.io.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

impl SecureWriter {
    /// Send one message. Not cancel-safe (a frame may be half written): do not race it.
    pub async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.send_raw(msg.msg_type(), &msg.payload_bytes()).await
    }

    /// Send a frame of type `msg_type` carrying `payload` as is (no validation).
    pub async fn send_raw(&mut self, msg_type: u8, payload: &[u8]) -> Result<(), TransportError> {
        self.buf.clear();
        self.sealer.seal_into(msg_type, payload, &mut self.buf)?;
        self.io.write_all(&self.buf).await?;
        Ok(())
    }

    /// Seal and send a frame built in place (see [`super::FrameBuf`]): the zero-copy path
    /// for large payloads.
    pub async fn send_frame_buf(
        &mut self,
        mut frame: super::FrameBuf,
    ) -> Result<(), TransportError> {
        self.sealer.seal_frame_buf(&mut frame)?;
        if let Some(bytes) = frame.sealed_bytes() {
            self.io.write_all(bytes).await?;
        }
        Ok(())
    }

    /// Half-close: send FIN, keep reading possible.
    pub async fn shutdown(&mut self) -> Result<(), TransportError> {
        self.io.shutdown().await?;
        Ok(())
    }
}

impl SecureStream {
    /// Roles and ephemeral keys of this connection.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// This end's socket address: the local IP the peer reaches us by.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Send one message (see [`SecureWriter::send`]).
    pub async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.writer.send(msg).await
    }

    /// Receive one message (see [`SecureReader::recv`]).
    pub async fn recv(&mut self) -> Result<Option<Message>, TransportError> {
        self.reader.recv().await
    }

    /// Separate the halves to read and write concurrently.
    pub fn into_split(self) -> (SecureReader, SecureWriter) {
        (self.reader, self.writer)
    }

    /// Graceful close (see [`close_halves`]), draining for at most [`DRAIN_TIMEOUT`].
    pub async fn close(self) -> Result<(), TransportError> {
        self.close_within(DRAIN_TIMEOUT).await
    }

    /// Graceful close, draining for at most `limit`.
    pub async fn close_within(self, limit: Duration) -> Result<(), TransportError> {
        close_halves(self.reader, self.writer, limit).await
    }
}

/// Shut the write side down (FIN), then read and discard until the peer closes or `limit`
/// passes, then drop the socket. The peer sees an orderly end of stream, never a reset caused
/// by bytes we left unread.
pub async fn close_halves(
    mut reader: SecureReader,
    mut writer: SecureWriter,
    limit: Duration,
) -> Result<(), TransportError> {
    let shut = writer.shutdown().await;
    reader.drain(limit).await;
    shut
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn connect_accept_send_recv_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut s = accept(tcp, &AcceptOptions::default()).await.unwrap();
            let mut got = Vec::new();
            while let Some(m) = s.recv().await.unwrap() {
                got.push(m.clone());
                s.send(&m).await.unwrap();
            }
            s.close().await.unwrap();
            got
        });
        let run = async {
            let mut c = connect(addr, &ConnectOptions::default()).await.unwrap();
            let big = Message::Data(
                (0..super::super::MAX_PAYLOAD_LEN)
                    .map(|i| i as u8)
                    .collect(),
            );
            let small = Message::Ok("fine".into());
            c.send(&big).await.unwrap();
            c.send(&small).await.unwrap();
            assert_eq!(c.recv().await.unwrap(), Some(big.clone()));
            assert_eq!(c.recv().await.unwrap(), Some(small.clone()));
            c.close().await.unwrap();
            assert_eq!(server.await.unwrap(), vec![big, small]);
        };
        timeout(Duration::from_secs(20), run).await.unwrap();
    }

    /// A raw client: handshake by hand, then the caller writes frames in whatever pieces it
    /// likes (the low-water mark must never wait for bytes that are not coming).
    async fn raw_client(addr: SocketAddr) -> (TcpStream, Sealer) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut hs = Handshake::new(Role::Client);
        tcp.write_all(&hs.local_public_key()).await.unwrap();
        let mut key = [0u8; 32];
        tcp.read_exact(&mut key).await.unwrap();
        assert_eq!(hs.read(&key), 32);
        let (sealer, _, _) = hs.into_transport().unwrap().split();
        (tcp, sealer)
    }

    fn big_payload() -> Vec<u8> {
        (0..super::super::MAX_PAYLOAD_LEN)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    /// The whole frame of a DATA message carrying [`big_payload`].
    fn big_frame(sealer: &mut Sealer) -> Vec<u8> {
        let mut wire = Vec::new();
        let data = super::super::MessageType::Data as u8;
        sealer.seal_into(data, &big_payload(), &mut wire).unwrap();
        wire
    }

    /// Accept one connection on `listener` and run the server side of the handshake.
    async fn accept_one(listener: TcpListener) -> SecureStream {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, &AcceptOptions::default()).await.unwrap()
    }

    #[tokio::test]
    async fn frame_arriving_in_pieces_then_a_small_one() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            let mut s = accept_one(listener).await;
            while let Some(m) = s.recv().await.unwrap() {
                let _ = got_tx.send(m);
            }
        });
        let (mut tcp, mut sealer) = raw_client(addr).await;
        let wire = big_frame(&mut sealer);
        // The body stops short (the reader's mark is then the rest of the body), pauses, and
        // ends byte by byte, so the mark must come down as the body fills.
        let (head, tail) = wire.split_at(wire.len() - 3);
        tcp.write_all(&head[..300_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tcp.write_all(&head[300_000..]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for b in tail {
            tcp.write_all(std::slice::from_ref(b)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first = timeout(Duration::from_secs(5), got_rx.recv()).await;
        assert_eq!(first.unwrap(), Some(Message::Data(big_payload())));
        // A tiny frame right after must be delivered while the connection is open, not held
        // back by a mark left over from the big one.
        let mut small = Vec::new();
        sealer
            .seal_message(&Message::Ok("fine".into()), &mut small)
            .unwrap();
        tcp.write_all(&small).await.unwrap();
        let second = timeout(Duration::from_secs(5), got_rx.recv()).await;
        assert_eq!(second.unwrap(), Some(Message::Ok("fine".into())));
        tcp.shutdown().await.unwrap();
        timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn end_of_stream_inside_a_big_frame_is_truncation() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let run = async {
            let server = tokio::spawn(async move { accept_one(listener).await.recv().await });
            let (mut tcp, mut sealer) = raw_client(addr).await;
            let wire = big_frame(&mut sealer);
            // Half the body, then FIN: the reader, waiting for the other half, must still wake.
            tcp.write_all(&wire[..wire.len() / 2]).await.unwrap();
            tcp.shutdown().await.unwrap();
            server.await.unwrap()
        };
        let r = timeout(Duration::from_secs(10), run).await.unwrap();
        assert!(
            matches!(r, Err(TransportError::Truncated("frame"))),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(tcp);
        });
        let opts = ConnectOptions {
            handshake_timeout: Duration::from_millis(200),
            ..ConnectOptions::default()
        };
        let r = timeout(Duration::from_secs(5), connect(addr, &opts))
            .await
            .unwrap();
        assert!(matches!(r, Err(TransportError::HandshakeTimeout)));
    }
}
