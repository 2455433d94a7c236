//! Where the DHT meets the peer layer: the PUBLISH gateway (a blob server with a DHT relays
//! signed items, PROTOCOL.md 5.3), the part fetcher over the secure transport, and the bridge
//! from a server's gossip hints to subscriptions.

use std::net::SocketAddr;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::dht::bep44::MutableRecord;
use crate::dht::client::{DhtClient, FetchError, FetchFuture, PartFetcher};
use crate::id::BlobId;
use crate::peer::{BlobFetcher, FetcherOptions, Gateway, GatewayFuture, GossipHint, NodeIdFuture};
use crate::transport::Publish;

/// Check a PUBLISH item's BEP 44 signature (and limits) before anything is relayed. An empty
/// salt counts as none, as everywhere in this layer.
pub fn verify_publish(item: &Publish) -> Result<MutableRecord, crate::dht::Bep44Error> {
    let salt = item.salt.as_deref().unwrap_or_default();
    MutableRecord::verified(item.k, item.seq, &item.v, salt, item.sig)
}

/// The gateway: verify, then put the item as signed. The reason of a refusal goes back to the
/// peer in ERROR.
impl Gateway for DhtClient {
    fn publish(&self, item: Publish) -> GatewayFuture {
        let dht = self.clone();
        Box::pin(async move {
            let record = verify_publish(&item)
                .map_err(|e| format!("refused: {}", crate::error::ErrorChain(&e)))?;
            dht.put_record(&record, None)
                .await
                .map(|_| ())
                .map_err(|e| format!("DHT put failed: {}", crate::error::ErrorChain(&e)))
        })
    }

    fn node_id(&self) -> NodeIdFuture {
        let dht = self.clone();
        Box::pin(async move { Some(dht.node_id().await) })
    }
}

/// Fetches manifest parts from the announced peers over the secure transport, one peer after
/// the other until one serves the part.
#[derive(Debug, Clone, Default)]
pub struct TransportFetcher {
    opts: FetcherOptions,
}

impl TransportFetcher {
    /// A fetcher with these connection options.
    pub fn new(opts: FetcherOptions) -> Self {
        Self { opts }
    }
}

impl PartFetcher for TransportFetcher {
    fn fetch<'a>(&'a self, id: BlobId, peers: &'a [SocketAddr]) -> FetchFuture<'a> {
        Box::pin(async move {
            if peers.is_empty() {
                return Err(FetchError("no peer announced it".into()));
            }
            let mut reasons = Vec::new();
            for peer in peers {
                match BlobFetcher::connect(*peer, &self.opts).await {
                    Ok(mut conn) => {
                        // BlobFetcher checks the hash of what it receives.
                        let result = conn.fetch(id).await;
                        conn.close().await;
                        match result {
                            Ok(bytes) => return Ok(bytes),
                            Err(e) => {
                                reasons.push(format!("{peer}: {}", crate::error::ErrorChain(&e)))
                            }
                        }
                    }
                    Err(e) => reasons.push(format!("{peer}: {}", crate::error::ErrorChain(&e))),
                }
            }
            Err(FetchError(format!(
                "no peer served it ({})",
                reasons.join("; ")
            )))
        })
    }
}

/// Forwards a blob server's gossip hints to this client's subscriptions. Dropping it stops.
#[derive(Debug)]
pub struct GossipBridge {
    task: JoinHandle<()>,
}

impl Drop for GossipBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DhtClient {
    /// Follow `hints` (from [`crate::peer::ServerHandle::subscribe_gossip`]): each one makes
    /// the subscriptions of its key look at once. Must be called inside a tokio runtime.
    pub fn follow_gossip(&self, mut hints: broadcast::Receiver<GossipHint>) -> GossipBridge {
        let dht = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match hints.recv().await {
                    Ok(hint) => {
                        if let Ok(seq) = u64::try_from(hint.seq) {
                            dht.gossip_hint(&hint.key, seq);
                        }
                    }
                    // Missed hints only delay a lookup to the next poll.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        GossipBridge { task }
    }
}
