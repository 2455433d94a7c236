//! Subscriptions to channels and active seeding.
//!
//! A subscription polls the DHT for a channel on an interval, and at once when a peer gossips a
//! higher sequence (PROTOCOL.md 5.3). A gossiped number is only a reason to look: what is
//! delivered is always a manifest read from the DHT and verified, each sequence once, in
//! increasing order.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::blob::BlobStore;
use crate::dht::client::DhtClient;
use crate::dht::DhtError;
use crate::manifest::{ManifestContent, ReadKey, SignedManifest};

/// How often the reference client re-announces the blobs it holds.
pub const RESEED_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Default polling interval of a subscription.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Options of [`DhtClient::subscribe`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Sub-channel name; empty for none.
    pub salt: Vec<u8>,
    /// Time between polls.
    pub interval: Duration,
    /// Read key of a private channel: updates then carry the decrypted content.
    pub read_key: Option<ReadKey>,
}

setters!(SubscribeOptions {
    salt: Vec<u8>,
    interval: Duration,
    read_key: Option<ReadKey>,
});

impl std::fmt::Debug for SubscribeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeOptions")
            .field("salt", &hex::encode(&self.salt))
            .field("interval", &self.interval)
            .field("read_key", &self.read_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A newly verified manifest of a subscribed channel.
#[derive(Debug, Clone)]
pub struct ChannelUpdate {
    /// The verified manifest (same key and sequence as its DHT record).
    pub manifest: SignedManifest,
    /// Its content: a plain manifest's, or a private one's decrypted with the subscription's
    /// read key. `None` when it is private and cannot be opened (no key, or not this key).
    pub content: Option<ManifestContent>,
}

fn open_content(manifest: &SignedManifest, key: Option<&ReadKey>) -> Option<ManifestContent> {
    if !manifest.is_private() {
        return manifest.content().cloned();
    }
    let key = key?;
    match manifest.decrypt(key) {
        Ok(content) => Some(content),
        Err(e) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "subscribed private manifest does not open with the read key");
            None
        }
    }
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            salt: Vec::new(),
            interval: POLL_INTERVAL,
            read_key: None,
        }
    }
}

/// What a subscription reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// A manifest with a higher sequence than any delivered before.
    Update(ChannelUpdate),
    /// No DHT node answered the last poll ([`DhtError::NoNodeAnswered`]): the network is
    /// unreachable. Said once until a poll reaches a node again.
    Unreachable(DhtError),
    /// A poll reached the DHT again after [`SubscriptionEvent::Unreachable`].
    Reachable,
}

/// A stream of newly verified manifests of one channel. Dropping it stops the polling task.
#[derive(Debug)]
pub struct Subscription {
    updates: mpsc::Receiver<SubscriptionEvent>,
    hints: mpsc::UnboundedSender<u64>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// The next manifest with a higher sequence than any delivered before; `None` once the
    /// subscription has stopped. Network trouble is only logged (see
    /// [`Subscription::next_event`]).
    pub async fn next(&mut self) -> Option<ChannelUpdate> {
        loop {
            match self.updates.recv().await? {
                SubscriptionEvent::Update(u) => return Some(u),
                SubscriptionEvent::Unreachable(_) | SubscriptionEvent::Reachable => {}
            }
        }
    }

    /// The next update or network problem; `None` once the subscription has stopped.
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        self.updates.recv().await
    }

    /// Tell the subscription that a peer claims `sequence` exists: it looks at once if that is
    /// higher than what it has delivered. Nothing is delivered on the claim alone.
    pub fn hint(&self, sequence: u64) {
        let _ = self.hints.send(sequence);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Re-announces every blob of a store periodically. Dropping it stops the task.
#[derive(Debug)]
pub struct Seeder {
    task: JoinHandle<()>,
}

impl Drop for Seeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DhtClient {
    /// Subscribe to the channel `public_key` (sub-channel `opts.salt`). The current manifest
    /// (if any) comes first, then each higher sequence once. Must be called inside a tokio
    /// runtime.
    pub fn subscribe(&self, public_key: [u8; 32], opts: SubscribeOptions) -> Subscription {
        let (tx, updates) = mpsc::channel(16);
        let (hints, mut hint_rx) = mpsc::unbounded_channel::<u64>();
        self.register_hints(public_key, hints.clone());
        let client = self.clone();
        let task = tokio::spawn(async move {
            let mut last: Option<u64> = None;
            let mut unreachable = false;
            let mut ticker = tokio::time::interval(opts.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    hint = hint_rx.recv() => match hint {
                        // Only a claim of something newer is worth a lookup.
                        Some(seq) if last.is_some_and(|l| seq <= l) => continue,
                        Some(_) => {}
                        None => break,
                    },
                    _ = tx.closed() => break,
                }
                let got = client.get_manifest(&public_key, &opts.salt).await;
                let now_unreachable = matches!(got, Err(DhtError::NoNodeAnswered { .. }));
                let was_unreachable = std::mem::replace(&mut unreachable, now_unreachable);
                if was_unreachable
                    && !now_unreachable
                    && tx.send(SubscriptionEvent::Reachable).await.is_err()
                {
                    break;
                }
                match got {
                    Ok(m) if last.is_none_or(|l| m.sequence() > l) => {
                        last = Some(m.sequence());
                        let content = open_content(&m, opts.read_key.as_ref());
                        let update = ChannelUpdate {
                            manifest: m,
                            content,
                        };
                        if tx.send(SubscriptionEvent::Update(update)).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) if now_unreachable && !was_unreachable => {
                        if tx.send(SubscriptionEvent::Unreachable(e)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %crate::error::ErrorChain(&e), "subscription poll found nothing new")
                    }
                }
            }
        });
        Subscription {
            updates,
            hints,
            task,
        }
    }

    /// Forward a gossiped sequence (from a peer's HELLO) to the subscriptions of `public_key`.
    pub fn gossip_hint(&self, public_key: &[u8; 32], sequence: u64) {
        self.send_hints(public_key, sequence);
    }

    /// Announce every blob of `store` at `port` now and then every `interval`.
    pub fn spawn_seeder(&self, store: BlobStore, port: u16, interval: Duration) -> Seeder {
        let client = self.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let ids = match store.list() {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(error = %crate::error::ErrorChain(&e), "seeder cannot list the store");
                        continue;
                    }
                };
                for id in ids {
                    if let Err(e) = client.announce_blob(&id, port).await {
                        tracing::debug!(blob = %id, error = %crate::error::ErrorChain(&e), "re-announce failed");
                    }
                }
            }
        });
        Seeder { task }
    }
}
