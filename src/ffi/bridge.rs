//! The one `#[cxx::bridge]` module. It converts and delegates; it holds no protocol logic.
//!
//! Every `extern "Rust"` function returns `Result` and runs its body inside
//! [`guard`](super::panic::guard), so a Rust panic reaches C++ as a thrown `rust::Error`
//! (message prefixed `panic: `) instead of aborting the host. C++ sees camelCase names.

use super::channel::Channel;
use super::engine::Engine;
use super::error::Kind;
use super::panic::guard;
use super::FfiError;

#[cxx::bridge(namespace = "megatorrent::ffi")]
pub(crate) mod ffi {
    /// What a queued event reports on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Operation {
        /// The test-only asynchronous panic (`debugPanicAsync`).
        SelfTest,
        /// `dhtStart`; `port` is the bound UDP port.
        DhtStart,
        /// `dhtPutManifest`; `subject` is the public key, `sequence` the published sequence.
        PutManifest,
        /// `dhtGetManifest`; `manifest` holds the verified manifest.
        GetManifest,
        /// `dhtAnnounceBlob`; `subject` is the blob id.
        AnnounceBlob,
        /// `dhtFindBlobPeers`; `endpoints` lists "ip:port" peers of blob `subject`.
        FindBlobPeers,
        /// `serveBlobs`; `port` is the blob server's TCP port, `subject` the folder.
        ServeBlobs,
    }

    /// What kind of failure an event or call reports (C++: `Megatorrent::ErrorKind`). Every Rust
    /// error is classified in `error.rs`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum ErrorKind {
        /// Not a failure (successful events).
        None,
        /// The channel text is neither a public key nor a `megatorrent://` link.
        InvalidChannel,
        /// Nothing is published under the key (and salt), or the file/channel is unknown.
        NotFound,
        /// Nodes or peers could not be reached, or refused; a later retry may succeed.
        Network,
        /// A manifest, record or blob breaks the protocol (the publisher's side).
        BadManifest,
        /// A private channel's read key is missing or does not open it.
        WrongReadKey,
        /// The state folder or blob store failed (disk full, corrupt data).
        Storage,
        /// A user file (identity, saved or published file) could not be read or written.
        Io,
        /// A bug: a caught panic, or the engine's runtime is gone.
        Internal,
        /// An argument or setting from C++ is malformed (a key's length, a port, an address).
        InvalidArgument,
    }

    // No Debug on the structs below: they carry chunk keys (and manifest text holding them),
    // which must never reach logs.

    /// One finished asynchronous operation, drained on the owner's thread with `takeEvents`.
    #[derive(Clone)]
    struct Event {
        /// What finished.
        operation: Operation,
        /// The id `submit`-style calls returned for this operation.
        request: u64,
        /// Whether it succeeded; if not, `kind` and `message` say why.
        ok: bool,
        /// The failure's kind (`None` on success).
        kind: ErrorKind,
        /// What the operation was about (a blob id or public key in hex), as given.
        subject: String,
        /// The failure reason (empty on success).
        message: String,
        /// `DhtStart`, `ServeBlobs`: the bound port.
        port: u16,
        /// `PutManifest`, `GetManifest`: the manifest's sequence.
        sequence: u64,
        /// `FindBlobPeers`: peers as "ip:port".
        endpoints: Vec<String>,
        /// `GetManifest`: the manifest found.
        manifest: ManifestData,
    }

    /// Configuration of an engine's DHT node.
    #[derive(Debug, Clone)]
    struct DhtSettings {
        /// Bootstrap nodes, "host:port"; empty: none.
        bootstrap: Vec<String>,
        /// IPv4 address to bind; empty: 0.0.0.0.
        bind_address: String,
        /// UDP port; 0 picks a free one.
        port: u16,
        /// Answer other nodes' requests (only for networks of our own nodes).
        server_mode: bool,
        /// Per-node request time-out in milliseconds; 0: the default.
        request_timeout_ms: u32,
    }

    /// A chunk of a file (PROTOCOL.md 2.1); `key` and `nonce` are raw bytes.
    #[derive(Clone, Default)]
    struct ChunkData {
        /// SHA-256 of the blob, 64 lowercase hex characters.
        blob_id: String,
        /// Offset inside the blob (0 in protocol v5).
        offset: u64,
        /// Blob length (1048592 in protocol v5).
        length: u64,
        /// ChaCha20-Poly1305 key, 32 bytes.
        key: Vec<u8>,
        /// ChaCha20-Poly1305 nonce, 12 bytes.
        nonce: Vec<u8>,
        /// Plaintext bytes kept.
        real_size: u64,
    }

    /// A file of a collection.
    #[derive(Clone, Default)]
    struct FileData {
        /// File name (never a path).
        name: String,
        /// Size in bytes.
        size: u64,
        /// Chunks in order.
        chunks: Vec<ChunkData>,
    }

    /// A titled group of files.
    #[derive(Clone, Default)]
    struct CollectionData {
        /// Title.
        title: String,
        /// Files.
        items: Vec<FileData>,
    }

    /// A verified manifest (or, from C++, content to sign).
    #[derive(Clone, Default)]
    struct ManifestData {
        /// Publisher key, 64 lowercase hex characters.
        public_key: String,
        /// Sequence number.
        sequence: u64,
        /// A private manifest (its collections are empty unless it was decrypted).
        encrypted: bool,
        /// Milliseconds since the epoch.
        timestamp: u64,
        /// Collections in order.
        collections: Vec<CollectionData>,
        /// The exact signed JSON text.
        text: String,
    }

    /// One decrypted message: its type byte and payload.
    #[derive(Debug, Clone)]
    struct MessageData {
        /// Message type (PROTOCOL.md 5.3).
        kind: u8,
        /// Payload after the type byte.
        payload: Vec<u8>,
    }

    /// What one batch of received bytes produced.
    #[derive(Debug, Clone)]
    struct Received {
        /// The handshake completed with these bytes: sealing is now possible.
        handshake_completed: bool,
        /// Complete messages, in order.
        messages: Vec<MessageData>,
    }

    unsafe extern "C++" {
        include!("cpp-shim/ffi_notifier.h");

        /// Implemented by the Qt shim; see `cpp-shim/ffi_notifier.h`.
        type Notifier;

        /// Called from an engine thread when events become pending.
        fn notify(self: &Notifier);
    }

    extern "Rust" {
        /// A runtime with its event queue; freed when the owning `rust::Box` is destroyed, which
        /// first guarantees that `notifier` is never called again.
        type Engine;

        /// Starts an engine. `notifier` may be null.
        #[cxx_name = "newEngine"]
        fn new_engine(notifier: UniquePtr<Notifier>) -> Result<Box<Engine>>;

        /// Removes and returns every pending event, oldest first.
        #[cxx_name = "takeEvents"]
        fn take_events(engine: &Engine) -> Result<Vec<Event>>;

        /// Parses, validates and verifies a manifest; the error names the reason.
        #[cxx_name = "manifestVerify"]
        fn manifest_verify(json: &[u8]) -> Result<ManifestData>;

        /// As `manifestVerify`, then decrypts a private manifest with a 32-byte read key.
        #[cxx_name = "manifestDecrypt"]
        fn manifest_decrypt(json: &[u8], read_key: &[u8]) -> Result<ManifestData>;

        /// Signs `content`'s collections and timestamp as a plain manifest of the identity whose
        /// secret is `secret_key` (32-byte seed or 64-byte libsodium key); `public_key`, if not
        /// empty, must match it. Returns the verified result.
        #[cxx_name = "manifestCreate"]
        fn manifest_create(
            secret_key: &[u8],
            public_key: &[u8],
            sequence: u64,
            content: &ManifestData,
        ) -> Result<ManifestData>;

        /// One connection's sans-IO secure channel (PROTOCOL.md 5).
        type Channel;

        /// A channel for the client (connecting) or server (accepting) side.
        #[cxx_name = "newChannel"]
        fn new_channel(server: bool) -> Result<Box<Channel>>;

        /// The 32 bytes to send first (our ephemeral X25519 public key).
        #[cxx_name = "channelHello"]
        fn channel_hello(channel: &Channel) -> Result<Vec<u8>>;

        /// Feeds bytes read from the socket. An error closes the channel for good.
        #[cxx_name = "channelReceive"]
        fn channel_receive(channel: &mut Channel, input: &[u8]) -> Result<Received>;

        /// One frame carrying `kind || payload`, to write to the socket.
        #[cxx_name = "channelSeal"]
        fn channel_seal(channel: &mut Channel, kind: u8, payload: &[u8]) -> Result<Vec<u8>>;

        /// The peer ended the stream; an error if it did so inside a frame or the handshake.
        #[cxx_name = "channelEndOfStream"]
        fn channel_end_of_stream(channel: &Channel) -> Result<()>;

        /// The public Mainline DHT routers a node bootstraps from by default.
        #[cxx_name = "dhtDefaultBootstrap"]
        fn dht_default_bootstrap() -> Result<Vec<String>>;

        /// Starts the engine's DHT node; a `DhtStart` event follows. Returns the request id.
        #[cxx_name = "dhtStart"]
        fn dht_start(engine: &Engine, settings: &DhtSettings) -> Result<u64>;

        /// Signs `content` (sequence 0: now in ms) and publishes it; a `PutManifest` event
        /// follows. Bad keys or content throw at once.
        #[cxx_name = "dhtPutManifest"]
        fn dht_put_manifest(
            engine: &Engine,
            secret_key: &[u8],
            public_key: &[u8],
            content: &ManifestData,
        ) -> Result<u64>;

        /// Fetches the newest manifest of a key (32 raw bytes or 64 hex) and salt (empty: none);
        /// `GetManifest` follows.
        #[cxx_name = "dhtGetManifest"]
        fn dht_get_manifest(engine: &Engine, public_key: &[u8], salt: &[u8]) -> Result<u64>;

        /// Announces a blob on a TCP port; `AnnounceBlob` follows.
        #[cxx_name = "dhtAnnounceBlob"]
        fn dht_announce_blob(engine: &Engine, blob_id: &str, port: u16) -> Result<u64>;

        /// Looks up a blob's peers; `FindBlobPeers` follows.
        #[cxx_name = "dhtFindBlobPeers"]
        fn dht_find_blob_peers(engine: &Engine, blob_id: &str) -> Result<u64>;

        /// Starts the engine's blob server on `listen` ("host:port") for the blobs of `folder`;
        /// `ServeBlobs` follows. Large manifests are then published as pointer records.
        #[cxx_name = "serveBlobs"]
        fn serve_blobs(engine: &Engine, folder: &str, listen: &str) -> Result<u64>;

        /// Test-only: panics inside the bridge, to show the panic becomes a C++ exception.
        #[cxx_name = "debugPanic"]
        fn debug_panic(message: &str) -> Result<()>;

        /// Test-only: queues work that panics on an engine thread; it arrives as a failed
        /// `SelfTest` event. Returns the request id.
        #[cxx_name = "debugPanicAsync"]
        fn debug_panic_async(engine: &Engine, message: &str) -> Result<u64>;
    }
}

pub(crate) use ffi::{
    ChunkData, CollectionData, DhtSettings, ErrorKind, Event, FileData, ManifestData, MessageData,
    Notifier, Operation, Received,
};

// The shim's notifier only posts a queued call (QMetaObject::invokeMethod), which Qt documents
// as thread-safe, and it is freed only after `EventQueue::detach` returned.
unsafe impl Send for Notifier {}
unsafe impl Sync for Notifier {}

impl Event {
    /// A successful event with no payload.
    pub(crate) fn succeeded(operation: Operation, request: u64, subject: String) -> Self {
        Self {
            operation,
            request,
            ok: true,
            kind: ErrorKind::None,
            subject,
            message: String::new(),
            port: 0,
            sequence: 0,
            endpoints: Vec::new(),
            manifest: ManifestData::default(),
        }
    }

    /// A failed event; `error`'s message is the reason C++ shows, its kind what C++ acts on.
    pub(crate) fn failed(
        operation: Operation,
        request: u64,
        subject: String,
        error: &(impl std::fmt::Display + Kind),
    ) -> Self {
        Self {
            message: error.to_string(),
            kind: error.kind(),
            ok: false,
            ..Self::succeeded(operation, request, subject)
        }
    }
}

fn new_engine(notifier: cxx::UniquePtr<Notifier>) -> Result<Box<Engine>, FfiError> {
    guard(|| Engine::new(notifier).map(Box::new))
}

fn take_events(engine: &Engine) -> Result<Vec<Event>, FfiError> {
    guard(|| Ok(engine.take_events()))
}

fn manifest_verify(json: &[u8]) -> Result<ManifestData, FfiError> {
    guard(|| super::manifest::verify(json))
}

fn manifest_decrypt(json: &[u8], read_key: &[u8]) -> Result<ManifestData, FfiError> {
    guard(|| super::manifest::decrypt(json, read_key))
}

fn manifest_create(
    secret_key: &[u8],
    public_key: &[u8],
    sequence: u64,
    content: &ManifestData,
) -> Result<ManifestData, FfiError> {
    guard(|| {
        let identity = super::manifest::identity(secret_key, public_key)?;
        let manifest = super::manifest::create(&identity, sequence, content)?;
        Ok(super::manifest::to_data(&manifest, manifest.content()))
    })
}

fn new_channel(server: bool) -> Result<Box<Channel>, FfiError> {
    guard(|| Ok(Box::new(Channel::new(server))))
}

fn channel_hello(channel: &Channel) -> Result<Vec<u8>, FfiError> {
    guard(|| Ok(channel.hello()))
}

fn channel_receive(channel: &mut Channel, input: &[u8]) -> Result<Received, FfiError> {
    guard(|| channel.receive(input))
}

fn channel_seal(channel: &mut Channel, kind: u8, payload: &[u8]) -> Result<Vec<u8>, FfiError> {
    guard(|| channel.seal(kind, payload))
}

fn channel_end_of_stream(channel: &Channel) -> Result<(), FfiError> {
    guard(|| channel.end_of_stream())
}

fn dht_default_bootstrap() -> Result<Vec<String>, FfiError> {
    guard(|| {
        Ok(crate::dht::DEFAULT_BOOTSTRAP
            .iter()
            .map(ToString::to_string)
            .collect())
    })
}

fn dht_start(engine: &Engine, settings: &DhtSettings) -> Result<u64, FfiError> {
    guard(|| engine.dht_start(settings))
}

fn dht_put_manifest(
    engine: &Engine,
    secret_key: &[u8],
    public_key: &[u8],
    content: &ManifestData,
) -> Result<u64, FfiError> {
    guard(|| engine.dht_put_manifest(secret_key, public_key, content))
}

fn dht_get_manifest(engine: &Engine, public_key: &[u8], salt: &[u8]) -> Result<u64, FfiError> {
    guard(|| engine.dht_get_manifest(public_key, salt))
}

fn dht_announce_blob(engine: &Engine, blob_id: &str, port: u16) -> Result<u64, FfiError> {
    guard(|| engine.dht_announce_blob(blob_id, port))
}

fn dht_find_blob_peers(engine: &Engine, blob_id: &str) -> Result<u64, FfiError> {
    guard(|| engine.dht_find_blob_peers(blob_id))
}

fn serve_blobs(engine: &Engine, folder: &str, listen: &str) -> Result<u64, FfiError> {
    guard(|| engine.serve_blobs(folder, listen))
}

// Deliberate panics are the point of these two test hooks.
#[allow(clippy::panic)]
fn debug_panic(message: &str) -> Result<(), FfiError> {
    guard(|| panic!("{message}"))
}

#[allow(clippy::panic)]
fn debug_panic_async(engine: &Engine, message: &str) -> Result<u64, FfiError> {
    guard(|| {
        let message = message.to_owned();
        engine.submit(Operation::SelfTest, String::new(), move |_| async move {
            panic!("{message}")
        })
    })
}
