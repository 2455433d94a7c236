//! The blob fetcher: one connection to one peer, many blobs over it.
//!
//! Requests are pipelined (up to [`FetcherOptions::pipeline_depth`] in flight). The protocol
//! has no request ids, so each reply is matched to the oldest outstanding request; a DATA is
//! accepted only if its SHA-256 equals that request's id.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::ToSocketAddrs;

use super::server::NOT_FOUND;
use super::PeerError;
use crate::blob::BlobStore;
use crate::id::BlobId;
use crate::transport::{
    close_halves, connect, ConnectOptions, Message, Publish, SecureReader, SecureStream,
    SecureWriter, DRAIN_TIMEOUT,
};

/// Settings of a [`BlobFetcher`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetcherOptions {
    /// Handshake time-out, expected server identity, gossip.
    pub connect: ConnectOptions,
    /// REQUESTs in flight at once.
    pub pipeline_depth: usize,
    /// Time allowed for each reply.
    pub reply_timeout: Duration,
}

impl Default for FetcherOptions {
    fn default() -> Self {
        Self {
            connect: ConnectOptions::default(),
            pipeline_depth: 8,
            reply_timeout: Duration::from_secs(60),
        }
    }
}

setters!(FetcherOptions {
    connect: ConnectOptions,
    pipeline_depth: usize,
    reply_timeout: Duration,
});

/// A client connection to one blob server.
#[derive(Debug)]
pub struct BlobFetcher {
    reader: SecureReader,
    writer: SecureWriter,
    peer: SocketAddr,
    local: SocketAddr,
    depth: usize,
    reply_timeout: Duration,
    // After a connection-level failure the reply order is lost: refuse further use.
    broken: bool,
}

impl BlobFetcher {
    /// Connect (and verify the server identity, if one is expected).
    pub async fn connect(
        addr: impl ToSocketAddrs,
        opts: &FetcherOptions,
    ) -> Result<Self, PeerError> {
        let stream = connect(addr, &opts.connect).await?;
        Ok(Self::from_stream(stream, opts))
    }

    /// Use an established connection.
    pub fn from_stream(stream: SecureStream, opts: &FetcherOptions) -> Self {
        let (peer, local) = (stream.peer_addr(), stream.local_addr());
        let (reader, writer) = stream.into_split();
        Self {
            reader,
            writer,
            peer,
            local,
            depth: opts.pipeline_depth.max(1),
            reply_timeout: opts.reply_timeout,
            broken: false,
        }
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// This end's address of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// False once a connection-level failure made this fetcher unusable.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    async fn reply(&mut self) -> Result<Message, PeerError> {
        match tokio::time::timeout(self.reply_timeout, self.reader.recv()).await {
            Ok(Ok(Some(m))) => Ok(m),
            Ok(Ok(None)) => Err(PeerError::ConnectionLost),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(PeerError::Timeout),
        }
    }

    /// Fetch every id in `ids`, pipelined, and hand each verified content (or the reason it
    /// failed) to `on_blob` in order, as soon as it arrives (later requests stay in flight
    /// meanwhile). Returns what `on_blob` returned, one per id. After a connection failure the
    /// remaining ids get [`PeerError::ConnectionLost`].
    pub async fn fetch_each<F, Fut, T>(&mut self, ids: &[BlobId], mut on_blob: F) -> Vec<T>
    where
        F: FnMut(BlobId, Result<Vec<u8>, PeerError>) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let mut out = Vec::with_capacity(ids.len());
        let mut next = 0;
        let mut in_flight: VecDeque<BlobId> = VecDeque::new();
        while next < ids.len() || !in_flight.is_empty() {
            if self.broken {
                for id in in_flight.drain(..).chain(ids[next..].iter().copied()) {
                    out.push(on_blob(id, Err(PeerError::ConnectionLost)).await);
                }
                return out;
            }
            // Keep the pipe full before waiting for the oldest reply.
            while next < ids.len() && in_flight.len() < self.depth {
                let id = ids[next];
                if let Err(e) = self.writer.send(&Message::Request(id)).await {
                    self.broken = true;
                    next += 1;
                    out.push(on_blob(id, Err(e.into())).await);
                    break;
                }
                in_flight.push_back(id);
                next += 1;
            }
            let Some(id) = in_flight.pop_front() else {
                continue;
            };
            let outcome = match self.reply().await {
                Ok(Message::Data(bytes)) if id.matches(&bytes) => Ok(bytes),
                Ok(Message::Data(_)) => Err(PeerError::HashMismatch {
                    id,
                    peer: self.peer,
                }),
                Ok(Message::Error(text)) if text == NOT_FOUND => Err(PeerError::NotFound(id)),
                Ok(Message::Error(text)) => Err(PeerError::Refused(text)),
                Ok(other) => {
                    self.broken = true;
                    Err(PeerError::UnexpectedReply {
                        request: "REQUEST",
                        got: other.kind().name(),
                    })
                }
                Err(e) => {
                    self.broken = true;
                    Err(e)
                }
            };
            if let Err(e) = &outcome {
                tracing::debug!(peer = %self.peer, "blob {id}: {}", crate::error::ErrorChain(&e));
            }
            out.push(on_blob(id, outcome).await);
        }
        out
    }

    /// Fetch one blob and return its verified content.
    pub async fn fetch(&mut self, id: BlobId) -> Result<Vec<u8>, PeerError> {
        self.fetch_each(&[id], |_, r| async move { r })
            .await
            .pop()
            .unwrap_or(Err(PeerError::ConnectionLost))
    }

    /// Fetch `ids` into `store` (each verified, written atomically). Returns one result per id,
    /// in the order given.
    pub async fn fetch_into(
        &mut self,
        store: &BlobStore,
        ids: &[BlobId],
    ) -> Vec<Result<(), PeerError>> {
        self.fetch_each(ids, |id, r| {
            let store = store.clone();
            async move {
                let bytes = r?;
                // File writes block: keep them off the async workers.
                match tokio::task::spawn_blocking(move || store.put(&id, &bytes)).await {
                    Ok(r) => r.map_err(PeerError::from),
                    Err(_) => Err(PeerError::ConnectionLost),
                }
            }
        })
        .await
    }

    /// Ask for peers that announced `id`.
    pub async fn find_peers(&mut self, id: BlobId) -> Result<Vec<String>, PeerError> {
        self.round_trip(Message::FindPeers(id))
            .await
            .and_then(|m| match m {
                Message::Peers(p) => Ok(p),
                Message::Error(t) => Err(PeerError::Refused(t)),
                other => Err(self.unexpected("FIND_PEERS", &other)),
            })
    }

    /// Tell the server that `peer_address` serves `id` (no reply).
    pub async fn announce(&mut self, id: BlobId, peer_address: &str) -> Result<(), PeerError> {
        crate::transport::validate_peer_address(peer_address).map_err(PeerError::Refused)?;
        let msg = Message::Announce(crate::transport::Announce {
            blob_id: id,
            peer_address: peer_address.to_owned(),
        });
        self.writer.send(&msg).await.map_err(|e| {
            self.broken = true;
            e.into()
        })
    }

    /// Ask a gateway to relay a BEP 44 item; returns its OK text.
    pub async fn publish(&mut self, item: Publish) -> Result<String, PeerError> {
        self.round_trip(Message::Publish(item))
            .await
            .and_then(|m| match m {
                Message::Ok(t) => Ok(t),
                Message::Error(t) => Err(PeerError::Refused(t)),
                other => Err(self.unexpected("PUBLISH", &other)),
            })
    }

    fn unexpected(&mut self, request: &'static str, got: &Message) -> PeerError {
        self.broken = true;
        PeerError::UnexpectedReply {
            request,
            got: got.kind().name(),
        }
    }

    async fn round_trip(&mut self, msg: Message) -> Result<Message, PeerError> {
        if self.broken {
            return Err(PeerError::ConnectionLost);
        }
        let r = match self.writer.send(&msg).await {
            Ok(()) => self.reply().await,
            Err(e) => Err(e.into()),
        };
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Close gracefully (FIN, then drain).
    pub async fn close(self) {
        let _ = close_halves(self.reader, self.writer, DRAIN_TIMEOUT).await;
    }
}
