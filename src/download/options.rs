//! [`DownloadOptions`]: the settings of a download, with defaults and setters.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of a [`Downloader`](super::Downloader). Start from [`Default`] and change what is
/// needed with the setters (`DownloadOptions::default().max_peers(4).overwrite(true)`); new
/// settings get a default, so code written this way keeps compiling.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Peers fetched from at once (default 8).
    pub max_peers: usize,
    /// REQUESTs in flight per peer (default 8).
    pub pipeline_depth: usize,
    /// Blobs a worker takes from the queue at a time, at most (default 32).
    pub batch: usize,
    /// Time allowed to connect and complete the key exchange (default 10 s).
    pub connect_timeout: Duration,
    /// Time allowed for each reply (default 30 s).
    pub reply_timeout: Duration,
    /// DHT lookups in flight at once (default 8).
    pub lookup_concurrency: usize,
    /// Discovery rounds in a row that fetch nothing before giving up on blobs no connected
    /// peer has (default 3).
    pub rounds: usize,
    /// Pause before another discovery round (default 1 s).
    pub round_delay: Duration,
    /// Peers to try besides those discovered (default none).
    pub peers: Vec<SocketAddr>,
    /// Replace an existing destination file whose content differs (default false: such a
    /// file is a [`DownloadError::DestinationExists`](super::DownloadError) and is kept).
    pub overwrite: bool,
    /// Download rate limit across the whole download, in bytes per second of blob data
    /// (default `None`: unlimited).
    pub rate_limit: Option<u64>,
    /// The TCP port of a blob server that serves the store this download writes to (default
    /// `None`). When set, every peer connected is told (ANNOUNCE, on the connection's local
    /// address) which files this node holds the first blob of, so that peers asking it
    /// (FIND_PEERS) find this node too.
    pub serve_port: Option<u16>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            max_peers: 8,
            pipeline_depth: 8,
            batch: 32,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            lookup_concurrency: 8,
            rounds: 3,
            round_delay: Duration::from_secs(1),
            peers: Vec::new(),
            overwrite: false,
            rate_limit: None,
            serve_port: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl DownloadOptions {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`DownloadOptions::max_peers`].
    max_peers: usize;
    /// Sets [`DownloadOptions::pipeline_depth`].
    pipeline_depth: usize;
    /// Sets [`DownloadOptions::batch`].
    batch: usize;
    /// Sets [`DownloadOptions::connect_timeout`].
    connect_timeout: Duration;
    /// Sets [`DownloadOptions::reply_timeout`].
    reply_timeout: Duration;
    /// Sets [`DownloadOptions::lookup_concurrency`].
    lookup_concurrency: usize;
    /// Sets [`DownloadOptions::rounds`].
    rounds: usize;
    /// Sets [`DownloadOptions::round_delay`].
    round_delay: Duration;
    /// Sets [`DownloadOptions::peers`].
    peers: Vec<SocketAddr>;
    /// Sets [`DownloadOptions::overwrite`].
    overwrite: bool;
    /// Sets [`DownloadOptions::rate_limit`].
    rate_limit: Option<u64>;
    /// Sets [`DownloadOptions::serve_port`].
    serve_port: Option<u16>;
}
