//! Benchmark helper (scripts/bench-session.sh, figure d): one session publishing N small
//! channels (sub-channels "0".."N-1" of one identity), and one session following them all,
//! which reports its peak memory once every channel is synced.
//!
//! ```text
//! cargo run --release --example follow_many -- publish N STATE_DIR BOOTSTRAP   # prints "public key K", "published N"
//! cargo run --release --example follow_many -- follow K N STATE_DIR BOOTSTRAP  # prints "synced N channels, peak RSS X KiB"
//! ```
//! Both keep every socket on 127.0.0.1 (meant for a loopback testnet).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use megatorrent::identity::Identity;
use megatorrent::session::{
    ChannelRef, PublishSettings, Session, SessionConfig, SessionEvent, SubscriptionSettings,
};

fn config(state: &str, boot: &str) -> anyhow::Result<SessionConfig> {
    Ok(SessionConfig::new(state)
        .bootstrap(vec![boot.to_owned()])
        .listen("127.0.0.1:0".parse()?)
        .dht("127.0.0.1".parse()?, 0)
        .dht_request_timeout(Duration::from_millis(500))
        .default_poll_interval(Duration::from_secs(30)))
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["publish", n, state, boot] => {
            let n: usize = n.parse().context("N")?;
            let session = Session::start(config(state, boot)?).await?;
            let identity = Identity::generate();
            println!("public key {}", identity.public_key_hex());
            let dir = PathBuf::from(state).join("files");
            for i in 0..n {
                let file = dir.join(format!("{i}")).join("file.bin");
                std::fs::create_dir_all(file.parent().context("parent")?)?;
                std::fs::write(&file, format!("channel {i}\n").repeat(1000))?;
                session
                    .publish(
                        &identity,
                        &[file],
                        PublishSettings::new().salt(i.to_string()),
                    )
                    .await?;
            }
            println!("published {n}");
            tokio::signal::ctrl_c().await?;
            session.shutdown().await;
        }
        ["follow", key, n, state, boot] => {
            let n: usize = n.parse().context("N")?;
            let session = Session::start(config(state, boot)?).await?;
            let mut events = session.events();
            let base: ChannelRef = key.parse()?;
            for i in 0..n {
                let channel = base.clone().with_salt(i.to_string());
                let out = PathBuf::from(state).join("out").join(i.to_string());
                session
                    .subscribe(channel, SubscriptionSettings::new(out))
                    .await?;
            }
            let mut done = HashSet::new();
            while done.len() < n {
                if let SessionEvent::Synced { channel, .. } = events.recv().await? {
                    done.insert(channel.salt);
                }
            }
            println!("synced {n} channels, peak RSS {} KiB", peak_rss_kib());
            session.shutdown().await;
        }
        _ => anyhow::bail!("usage: follow_many publish N STATE BOOT | follow KEY N STATE BOOT"),
    }
    Ok(())
}
