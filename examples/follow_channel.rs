//! Follow a channel with a [`Session`]: sync its current version into a folder, then every
//! new one, seeding what it holds, and print the session's events until Ctrl-C.
//!
//! ```text
//! cargo run --example follow_channel -- CHANNEL OUT_DIR STATE_DIR BOOTSTRAP...
//! ```
//!
//! Against a local testnet (nothing leaves 127.0.0.1):
//!
//! ```text
//! megatorrent dht node --listen 127.0.0.1:0              # prints "dht listening 127.0.0.1:P"
//! megatorrent keygen --out id.json                        # prints the public key K
//! megatorrent publish ./folder --identity id.json --blobs pub --listen 127.0.0.1:0 --bootstrap 127.0.0.1:P
//! cargo run --example follow_channel -- K out state 127.0.0.1:P
//! ```
//!
//! CHANNEL is a 64-hex public key or `megatorrent://<pubkey>[:<readkey>][?salt=<text>]`.

use std::time::Duration;

use anyhow::Context;
use megatorrent::session::{
    ChannelRef, Session, SessionConfig, SessionError, SessionEvent, SubscriptionSettings,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [channel, out, state, bootstrap @ ..] = args.as_slice() else {
        anyhow::bail!("usage: follow_channel CHANNEL OUT_DIR STATE_DIR BOOTSTRAP...");
    };
    anyhow::ensure!(
        !bootstrap.is_empty(),
        "give at least one bootstrap node (HOST:PORT)"
    );
    let channel: ChannelRef = channel.parse().context("bad CHANNEL")?;
    let local = bootstrap.iter().all(|b| b.starts_with("127."));
    let mut config = SessionConfig::new(state)
        .bootstrap(bootstrap.to_vec())
        .default_poll_interval(Duration::from_secs(5));
    if local {
        // A loopback testnet: keep every socket on 127.0.0.1.
        config = config
            .listen("127.0.0.1:0".parse()?)
            .dht("127.0.0.1".parse()?, 0);
    }
    let session = Session::start(config).await?;
    let mut events = session.events();
    match session
        .subscribe(channel.clone(), SubscriptionSettings::new(out))
        .await
    {
        Ok(()) | Err(SessionError::AlreadySubscribed(_)) => {}
        Err(e) => return Err(e.into()),
    }
    println!(
        "following {channel}; seeding on {:?}",
        session.listen_addr()
    );
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            e = events.recv() => match e {
                Ok(SessionEvent::Synced { sequence, blobs_fetched, .. }) => {
                    println!("synced seq {sequence} ({blobs_fetched} blobs fetched)")
                }
                Ok(SessionEvent::Progress { bytes_done, bytes_total, peers, .. }) => {
                    println!("  {bytes_done}/{bytes_total} bytes from {peers} peer(s)")
                }
                Ok(SessionEvent::Error { kind, message, .. }) => {
                    eprintln!("{kind:?}: {message}")
                }
                Ok(other) => println!("{other:?}"),
                Err(_) => break,
            },
        }
    }
    for s in session.subscriptions() {
        println!(
            "{:?}: seq {} ({:?})",
            s.save_path, s.synced_sequence, s.state
        );
    }
    session.shutdown().await;
    Ok(())
}
