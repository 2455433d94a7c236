//! Progress for the terminal: an indicatif bar with an ETA when stderr is a terminal, plain
//! lines (every 10 %, and on peer events) when it is not, so logs stay readable; with
//! `--json`, download events as JSON lines on stdout instead.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use megatorrent::node::{DownloadEvent, EventFn, Progress};
use serde_json::json;

use super::json;

/// Shows download events on stderr.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    // Last tenth of the total printed in plain mode.
    last_tenth: AtomicUsize,
    json: bool,
}

impl ProgressView {
    /// A bar on a terminal, plain lines otherwise; JSON lines on stdout when `json`.
    pub fn new(json: bool) -> Arc<Self> {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Arc::new(Self {
            bar,
            last_tenth: AtomicUsize::new(0),
            json,
        })
    }

    /// The callback to hand to the downloader.
    pub fn event_fn(self: &Arc<Self>) -> EventFn {
        let view = self.clone();
        Arc::new(move |e: &DownloadEvent| view.show(e))
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn update(&self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
                bar.set_message(format!(
                    "blobs {}/{} peers {}",
                    p.blobs_done, p.blobs_total, p.peers_in_use
                ));
            }
            None => {
                let tenth = (p.blobs_done * 10).checked_div(p.blobs_total).unwrap_or(10);
                if self.last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
                    eprintln!(
                        "progress {}% ({} of {} bytes, blobs {}/{}, peers {})",
                        tenth * 10,
                        p.bytes_done,
                        p.bytes_total,
                        p.blobs_done,
                        p.blobs_total,
                        p.peers_in_use
                    );
                }
            }
        }
    }

    fn show(&self, event: &DownloadEvent) {
        if self.json {
            // stdout closed (a script that stopped reading): nothing more to show.
            let _ = json_event(event);
            return;
        }
        match event {
            DownloadEvent::Started(p) => {
                self.line(format!(
                    "download: {} bytes in {} blobs ({} already here)",
                    p.bytes_total, p.blobs_total, p.blobs_done
                ));
                self.update(p);
            }
            DownloadEvent::BlobDone { progress, .. } => self.update(progress),
            DownloadEvent::PeerConnected(peer) => self.line(format!("peer {peer}: connected")),
            DownloadEvent::PeerLost { peer, reason } => self.line(format!("peer {peer}: {reason}")),
            DownloadEvent::PeerDropped { peer, blob } => self.line(format!(
                "peer {peer}: sent a wrong blob {blob}; not used again"
            )),
            DownloadEvent::FileDone { path } => self.line(format!("complete: {}", path.display())),
            _ => {}
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A download event as a JSON line (see `json`).
fn json_event(event: &DownloadEvent) -> std::io::Result<()> {
    let progress = |p: &Progress| {
        json!({
            "bytes_done": p.bytes_done,
            "bytes_total": p.bytes_total,
            "blobs_done": p.blobs_done,
            "blobs_total": p.blobs_total,
            "peers": p.peers_in_use,
        })
    };
    match event {
        DownloadEvent::Started(p) => json::event("started", progress(p)),
        DownloadEvent::BlobDone {
            blob,
            peer,
            progress: p,
        } => {
            let mut fields = progress(p);
            fields["blob"] = json!(blob.to_hex());
            fields["peer"] = json!(peer.to_string());
            json::event("blob", fields)
        }
        DownloadEvent::PeerConnected(peer) => {
            json::event("peer_connected", json!({ "peer": peer.to_string() }))
        }
        DownloadEvent::PeerLost { peer, reason } => json::event(
            "peer_lost",
            json!({ "peer": peer.to_string(), "reason": reason }),
        ),
        DownloadEvent::PeerDropped { peer, blob } => json::event(
            "peer_dropped",
            json!({ "peer": peer.to_string(), "blob": blob.to_hex() }),
        ),
        DownloadEvent::FileDone { path } => {
            json::event("file", json!({ "path": path.display().to_string() }))
        }
        _ => Ok(()),
    }
}

/// Progress of work measured in bytes (ingesting files, announcing blobs): a bar with the
/// rate and an ETA on a terminal, a plain line every 10 % otherwise. Cheap to clone; every
/// clone moves the same bar.
#[derive(Clone)]
pub struct ByteProgress {
    bar: Option<ProgressBar>,
    what: Arc<str>,
    total: u64,
    done: Arc<AtomicU64>,
    last_tenth: Arc<AtomicUsize>,
    quiet: bool,
}

impl ByteProgress {
    /// Progress of `what` (e.g. "ingest"), `total` units long; `bytes` says whether the units
    /// are bytes (else a plain count such as blobs). `quiet` shows nothing (for `--json`).
    pub fn new(what: &str, total: u64, bytes: bool, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let template = if bytes {
                "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(what.to_owned());
            bar
        });
        Self {
            bar,
            what: what.into(),
            total,
            done: Arc::new(AtomicU64::new(0)),
            last_tenth: Arc::new(AtomicUsize::new(0)),
            quiet,
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if !self.quiet => {
                let tenth = (done.saturating_mul(10))
                    .checked_div(self.total)
                    .unwrap_or(10)
                    .min(10) as usize;
                if self.last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
                    eprintln!("{} {}% ({} of {})", self.what, tenth * 10, done, self.total);
                }
            }
            None => {}
        }
    }

    /// Remove the bar (done or interrupted).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
