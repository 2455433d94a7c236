//! The `Session` API in one process, on a loopback testnet: events, statuses, the gossip
//! push that wakes a subscriber long before its poll, unsubscribing.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use megatorrent::identity::Identity;
use megatorrent::session::{
    ChannelRef, PublishSettings, PublishStage, PublishStageFn, Session, SessionConfig,
    SessionEvent, SubscriptionSettings, SyncState,
};
use tokio::sync::broadcast::Receiver;

const LIMIT: Duration = Duration::from_secs(90);

fn config(state: &Path, boot: &[String]) -> SessionConfig {
    SessionConfig::new(state)
        .bootstrap(boot.to_vec())
        .listen("127.0.0.1:0".parse().unwrap())
        .dht("127.0.0.1".parse().unwrap(), 0)
        .dht_request_timeout(Duration::from_millis(400))
}

/// The next `Synced` event's (sequence, blobs fetched), within LIMIT.
async fn next_synced(events: &mut Receiver<SessionEvent>) -> (u64, usize) {
    tokio::time::timeout(LIMIT, async {
        loop {
            if let SessionEvent::Synced {
                sequence,
                blobs_fetched,
                ..
            } = events.recv().await.unwrap()
            {
                return (sequence, blobs_fetched);
            }
        }
    })
    .await
    .expect("no Synced event in time")
}

/// A stage callback that records the stages, and what it recorded.
fn recorder() -> (PublishStageFn, Arc<Mutex<Vec<PublishStage>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    (Arc::new(move |s| into.lock().unwrap().push(s)), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_sync_push_and_unsubscribe() {
    let net = common::testnet(8);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("one.txt"), b"one").unwrap();
    std::fs::write(src.join("two.txt"), vec![7u8; 1 << 20]).unwrap();

    let publisher = Session::start(config(&dir.path().join("p"), &net.bootstrap))
        .await
        .unwrap();
    let identity = Identity::generate();
    let first = publisher
        .publish(
            &identity,
            std::slice::from_ref(&src),
            PublishSettings::new().salt("docs"),
        )
        .await
        .unwrap();
    assert_eq!((first.files_total, first.files_unchanged), (2, 0));
    assert_eq!(publisher.published()[0].sequence, first.sequence);
    assert!(publisher.published()[0].active);

    // A poll interval of an hour: only the publisher's gossip push can wake it later.
    let subscriber = Session::start(
        config(&dir.path().join("s"), &net.bootstrap)
            .default_poll_interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut events = subscriber.events();
    let channel = ChannelRef::new(identity.public_key_bytes()).with_salt("docs");
    let out = dir.path().join("out");
    subscriber
        .subscribe(
            channel.clone(),
            SubscriptionSettings::new(&out).label("docs"),
        )
        .await
        .unwrap();
    assert!(subscriber
        .subscribe(channel.clone(), SubscriptionSettings::new(&out))
        .await
        .is_err());
    let (seq, fetched) = next_synced(&mut events).await;
    assert_eq!((seq, fetched), (first.sequence, 2));
    let status = &subscriber.subscriptions()[0];
    assert_eq!(status.state, SyncState::Synced);
    assert_eq!((status.last_sequence, status.label.as_str()), (seq, "docs"));
    assert_eq!(status.bytes_total, 3 + (1 << 20));
    let files = subscriber.channel_files(&channel).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| (f.path.as_str(), f.size == f.bytes_done))
        .collect();
    assert_eq!(names, [("one.txt", true), ("two.txt", true)]);

    // A new version: the push reaches the subscriber's server, whose hint wakes the poll.
    std::fs::write(src.join("one.txt"), b"one, revised").unwrap();
    let (stages, seen) = recorder();
    let second = publisher
        .publish(
            &identity,
            std::slice::from_ref(&src),
            PublishSettings::new().salt("docs").stages(Some(stages)),
        )
        .await
        .unwrap();
    // The stages after the ingest, with a true count: only the revised file's blob is new
    // to this session (two.txt's was announced by the first publish).
    assert_eq!(second.blobs_new, 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            PublishStage::Sequence,
            PublishStage::Announcing { done: 0, total: 1 },
            PublishStage::Announcing { done: 1, total: 1 },
            PublishStage::Putting,
        ]
    );
    assert!(second.sequence > first.sequence);
    assert_eq!((second.files_total, second.files_unchanged), (2, 1));
    let (seq, fetched) = next_synced(&mut events).await;
    assert_eq!((seq, fetched), (second.sequence, 1));
    assert_eq!(std::fs::read(out.join("one.txt")).unwrap(), b"one, revised");

    // Unsubscribing with deletion removes what it wrote, and forgets the channel.
    subscriber.unsubscribe(&channel, true).await.unwrap();
    assert!(subscriber.subscriptions().is_empty());
    assert!(!out.join("one.txt").exists() && !out.join("two.txt").exists());
    let status = subscriber.status();
    assert!(status.blobs >= 3 && status.listen_port != 0 && status.dht_port != 0);
    let started = std::time::Instant::now();
    subscriber.shutdown().await;
    publisher.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}
