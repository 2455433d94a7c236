//! DHT operations of an engine: each runs on the engine's runtime and reports one event.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::blob::BlobStore;
use crate::dht::bep44::MAX_SALT_LEN;
use crate::dht::relay::TransportFetcher;
use crate::dht::{Bep44Error, DhtClient, DhtConfig, DhtError, PartsTarget, PutOptions};
use crate::id::BlobId;
use crate::peer::{BlobServer, ServerConfig, ServerHandle};

use super::bridge::{DhtSettings, Event, ManifestData, Operation};
use super::engine::Engine;
use super::manifest;
use super::FfiError;

/// The engine's DHT node, once started. `DhtClient` clones share one node.
#[derive(Default)]
pub(crate) struct DhtSlot(Mutex<Option<DhtClient>>);

impl DhtSlot {
    fn get(&self) -> Result<DhtClient, FfiError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| FfiError::InvalidArgument("the DHT node is not started".into()))
    }

    fn set(&self, client: DhtClient) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(client);
    }
}

/// The engine's blob server, once started: it serves a folder's blobs and the parts of
/// manifests too large for one DHT record.
pub(crate) struct Serving {
    store: BlobStore,
    port: u16,
    // Kept alive for as long as the engine; the runtime's shutdown stops it.
    _handle: ServerHandle,
}

/// Where the engine keeps its blob server.
#[derive(Default)]
pub(crate) struct ServerSlot(Mutex<Option<Serving>>);

impl ServerSlot {
    /// The store and port to publish manifest parts with, if a server runs.
    fn parts(&self) -> Option<(BlobStore, u16)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|s| (s.store.clone(), s.port))
    }

    fn set(&self, serving: Serving) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(serving);
    }
}

fn config_from(settings: &DhtSettings) -> Result<DhtConfig, FfiError> {
    let bind_address = if settings.bind_address.is_empty() {
        Ipv4Addr::UNSPECIFIED
    } else {
        settings.bind_address.parse().map_err(|_| {
            FfiError::InvalidArgument(format!(
                "bind address {:?} is not an IPv4 address",
                settings.bind_address
            ))
        })?
    };
    let mut config = DhtConfig {
        bootstrap: settings.bootstrap.clone(),
        bind_address,
        port: settings.port,
        server_mode: settings.server_mode,
        ..DhtConfig::default()
    };
    if settings.request_timeout_ms > 0 {
        config.request_timeout = Duration::from_millis(u64::from(settings.request_timeout_ms));
    }
    Ok(config)
}

/// A 32-byte public key given as 32 raw bytes or 64 hex characters.
fn public_key_from(bytes: &[u8]) -> Result<[u8; 32], FfiError> {
    let invalid = || {
        FfiError::InvalidArgument(format!(
            "public key must be 32 bytes or 64 hex characters, got {} bytes",
            bytes.len()
        ))
    };
    match bytes.len() {
        32 => bytes.try_into().map_err(|_| invalid()),
        64 => {
            let text = std::str::from_utf8(bytes).map_err(|_| invalid())?;
            crate::id::decode_hex_array::<32>(text)
                .map_err(|e| FfiError::InvalidArgument(format!("public key: {e}")))
        }
        _ => Err(invalid()),
    }
}

fn blob_id_from(text: &str) -> Result<BlobId, FfiError> {
    BlobId::from_hex(text).map_err(|e| FfiError::InvalidArgument(format!("blob id: {e}")))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Engine {
    /// Starts the DHT node; the `DhtStart` event carries the bound UDP port.
    pub(crate) fn dht_start(&self, settings: &DhtSettings) -> Result<u64, FfiError> {
        self.report(Operation::DhtStart, || {
            let config = config_from(settings)?;
            let slot = Arc::clone(&self.dht);
            self.submit(
                Operation::DhtStart,
                String::new(),
                move |request| async move {
                    // Binding happens here, off the caller's thread. Parts of large manifests are
                    // fetched from the peers that announce them.
                    let started = DhtClient::start(&config)
                        .map(|c| c.with_part_fetcher(Arc::new(TransportFetcher::default())));
                    match started {
                        Ok(client) => {
                            let port = client.local_addr().await.port();
                            slot.set(client);
                            Event {
                                port,
                                ..Event::succeeded(Operation::DhtStart, request, String::new())
                            }
                        }
                        Err(e) => Event::failed(Operation::DhtStart, request, String::new(), &e),
                    }
                },
            )
        })
    }

    /// Signs `content` as a manifest of the given identity and publishes it. The sequence is
    /// `content.sequence`, or the current time in milliseconds when that is 0. The result, key and
    /// content errors included, arrives as a `PutManifest` event.
    pub(crate) fn dht_put_manifest(
        &self,
        secret_key: &[u8],
        public_key: &[u8],
        content: &ManifestData,
    ) -> Result<u64, FfiError> {
        self.report(Operation::PutManifest, || {
            let client = self.dht.get()?;
            let identity = manifest::identity(secret_key, public_key)?;
            let sequence = if content.sequence == 0 {
                now_ms()
            } else {
                content.sequence
            };
            let signed = manifest::create(&identity, sequence, content)?;
            let subject = identity.public_key_hex();
            let parts = self.server.parts();
            self.submit(
                Operation::PutManifest,
                subject.clone(),
                move |request| async move {
                    // With a blob server, a manifest too large for one record goes out as a pointer
                    // record whose parts the server serves (PROTOCOL.md 4).
                    let opts = PutOptions {
                        parts: parts
                            .as_ref()
                            .map(|(store, port)| PartsTarget { store, port: *port }),
                        ..PutOptions::default()
                    };
                    match client.put_manifest(&identity, &signed, &opts).await {
                        Ok(_) => Event {
                            sequence,
                            ..Event::succeeded(Operation::PutManifest, request, subject)
                        },
                        Err(e) => Event {
                            sequence,
                            ..Event::failed(Operation::PutManifest, request, subject, &e)
                        },
                    }
                },
            )
        })
    }

    /// Fetches the newest manifest of `public_key` and `salt` (empty: none); a `GetManifest`
    /// event carries it, fully validated by the manifest layer (PROTOCOL.md 2.4).
    pub(crate) fn dht_get_manifest(&self, public_key: &[u8], salt: &[u8]) -> Result<u64, FfiError> {
        self.report(Operation::GetManifest, || {
            let client = self.dht.get()?;
            let key = public_key_from(public_key)?;
            if salt.len() > MAX_SALT_LEN {
                return Err(DhtError::from(Bep44Error::SaltTooLarge { len: salt.len() }).into());
            }
            let salt = salt.to_vec();
            let subject = hex::encode(key);
            self.submit(
                Operation::GetManifest,
                subject.clone(),
                move |request| async move {
                    // Verified and validated by the manifest layer inside the DHT layer.
                    let found = client
                        .get_manifest(&key, &salt)
                        .await
                        .map(|m| manifest::to_data(&m, m.content()));
                    match found {
                        Ok(manifest) => Event {
                            sequence: manifest.sequence,
                            manifest,
                            ..Event::succeeded(Operation::GetManifest, request, subject)
                        },
                        Err(e) => Event::failed(Operation::GetManifest, request, subject, &e),
                    }
                },
            )
        })
    }

    /// Serves the blobs of `folder` (created if missing) on TCP `listen` ("host:port", port 0
    /// picks one); a `ServeBlobs` event carries the port.
    pub(crate) fn serve_blobs(&self, folder: &str, listen: &str) -> Result<u64, FfiError> {
        self.report(Operation::ServeBlobs, || {
            let store = BlobStore::open(folder)?;
            let listen = listen.to_owned();
            let slot = Arc::clone(&self.server);
            let subject = folder.to_owned();
            self.submit(
                Operation::ServeBlobs,
                subject.clone(),
                move |request| async move {
                    let started = async {
                        let server = BlobServer::bind(
                            listen.as_str(),
                            store.clone(),
                            ServerConfig::default(),
                        )
                        .await?;
                        server.spawn()
                    };
                    match started.await {
                        Ok(handle) => {
                            let port = handle.local_addr().port();
                            slot.set(Serving {
                                store,
                                port,
                                _handle: handle,
                            });
                            Event {
                                port,
                                ..Event::succeeded(Operation::ServeBlobs, request, subject)
                            }
                        }
                        Err(e) => Event::failed(Operation::ServeBlobs, request, subject, &e),
                    }
                },
            )
        })
    }

    /// Announces (BEP 5) that this host serves `blob_id` on TCP `port`.
    pub(crate) fn dht_announce_blob(&self, blob_id: &str, port: u16) -> Result<u64, FfiError> {
        self.report(Operation::AnnounceBlob, || {
            let client = self.dht.get()?;
            let id = blob_id_from(blob_id)?;
            if port == 0 {
                return Err(FfiError::InvalidArgument("port must not be 0".into()));
            }
            let subject = id.to_hex();
            self.submit(
                Operation::AnnounceBlob,
                subject.clone(),
                move |request| async move {
                    match client.announce_blob(&id, port).await {
                        Ok(()) => Event::succeeded(Operation::AnnounceBlob, request, subject),
                        Err(e) => Event::failed(Operation::AnnounceBlob, request, subject, &e),
                    }
                },
            )
        })
    }

    /// Looks up the peers of `blob_id`; a `FindBlobPeers` event lists them as "ip:port".
    pub(crate) fn dht_find_blob_peers(&self, blob_id: &str) -> Result<u64, FfiError> {
        self.report(Operation::FindBlobPeers, || {
            let client = self.dht.get()?;
            let id = blob_id_from(blob_id)?;
            let subject = id.to_hex();
            self.submit(
                Operation::FindBlobPeers,
                subject.clone(),
                move |request| async move {
                    let endpoints = client
                        .find_blob_peers(&id)
                        .await
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    Event {
                        endpoints,
                        ..Event::succeeded(Operation::FindBlobPeers, request, subject)
                    }
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::bridge::ErrorKind;

    #[test]
    fn public_keys_are_raw_or_hex() {
        assert_eq!(public_key_from(&[7; 32]).unwrap(), [7; 32]);
        assert_eq!(
            public_key_from("07".repeat(32).as_bytes()).unwrap(),
            [7; 32]
        );
        assert!(matches!(
            public_key_from(&[7; 31]),
            Err(FfiError::InvalidArgument(_))
        ));
        assert!(matches!(
            public_key_from("zz".repeat(32).as_bytes()),
            Err(FfiError::InvalidArgument(ref m)) if m.starts_with("public key")
        ));
    }

    #[test]
    fn settings_are_checked() {
        let mut settings = DhtSettings {
            bootstrap: vec!["127.0.0.1:1".into()],
            bind_address: "127.0.0.1".into(),
            port: 0,
            server_mode: true,
            request_timeout_ms: 300,
        };
        let config = config_from(&settings).unwrap();
        assert_eq!(config.bind_address, Ipv4Addr::LOCALHOST);
        assert_eq!(config.request_timeout, Duration::from_millis(300));
        assert!(config.server_mode);
        settings.bind_address = "::1".into();
        assert!(matches!(
            config_from(&settings),
            Err(FfiError::InvalidArgument(_))
        ));
    }

    /// The one failed event queued so far.
    fn only_event(engine: &Engine) -> Event {
        let mut events = engine.take_events();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn operations_before_start_fail_as_events_with_a_kind() {
        let engine = Engine::new(cxx::UniquePtr::null()).unwrap();
        let request = engine.dht_find_blob_peers(&"a".repeat(64)).unwrap();
        let event = only_event(&engine);
        assert_eq!(event.request, request);
        assert_eq!(event.operation, Operation::FindBlobPeers);
        assert!(!event.ok);
        assert_eq!(event.kind, ErrorKind::InvalidArgument);
        assert!(event.message.contains("not started"), "{}", event.message);
    }

    #[test]
    fn bad_arguments_fail_as_events_with_a_kind() {
        let engine = Engine::new(cxx::UniquePtr::null()).unwrap();
        let settings = DhtSettings {
            bootstrap: Vec::new(),
            bind_address: "not an address".into(),
            port: 0,
            server_mode: false,
            request_timeout_ms: 0,
        };
        let request = engine.dht_start(&settings).unwrap();
        let event = only_event(&engine);
        assert_eq!((event.request, event.ok), (request, false));
        assert_eq!(event.kind, ErrorKind::InvalidArgument);
        assert!(event.message.contains("bind address"), "{}", event.message);
    }
}
