//! A blob server on 127.0.0.1 holding one 1 MiB blob, for the tests that misbehave against it.

use megatorrent::blob::BlobStore;
use megatorrent::id::BlobId;
use megatorrent::peer::{
    BlobFetcher, BlobServer, CloseReason, ConnectionClosed, FetcherOptions, ServerConfig,
    ServerHandle,
};
use megatorrent::transport::{Handshake, Role, Transport};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::timeout;

/// Bound for waiting on one close event.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// A running server, the blob it holds, and its close events.
pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    pub id: BlobId,
    pub blob: Vec<u8>,
    pub closed: broadcast::Receiver<ConnectionClosed>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Start a server with `config` on a fresh store holding one blob-sized item.
    pub async fn start(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let blob: Vec<u8> = (0..1_048_592u32).map(|i| (i % 251) as u8).collect();
        let id = store.put_content(&blob).unwrap();
        let handle = BlobServer::bind("127.0.0.1:0", store, config)
            .await
            .unwrap()
            .spawn()
            .unwrap();
        Self {
            addr: handle.local_addr(),
            closed: handle.subscribe_closed(),
            handle,
            id,
            blob,
            _dir: dir,
        }
    }

    /// A well-behaved client gets the blob.
    pub async fn good_fetch(&self) {
        let mut f = BlobFetcher::connect(self.addr, &FetcherOptions::default())
            .await
            .unwrap();
        assert!(f.fetch(self.id).await.unwrap() == self.blob);
        f.close().await;
    }

    /// The reason the server gave for closing the connection from `local`.
    pub async fn reason_for(&mut self, local: SocketAddr) -> CloseReason {
        timeout(CLOSE_LIMIT, async {
            loop {
                let ev = self.closed.recv().await.unwrap();
                if ev.peer == local {
                    return ev.reason;
                }
            }
        })
        .await
        .expect("no close event for the connection")
    }
}

/// Connect and complete the handshake by hand (the core API, no adapter).
pub async fn raw_session(addr: SocketAddr) -> (TcpStream, Transport) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let hs = Handshake::new(Role::Client);
    tcp.write_all(&hs.local_public_key()).await.unwrap();
    let mut key = [0u8; 32];
    tcp.read_exact(&mut key).await.unwrap();
    (tcp, hs.complete(&key).unwrap())
}
