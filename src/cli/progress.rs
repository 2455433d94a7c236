//! Download progress for the terminal: an indicatif bar when stderr is a terminal, plain
//! lines (every 10 %, and on peer events) when it is not, so logs stay readable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use megatorrent::node::{DownloadEvent, EventFn, Progress};

/// Shows download events on stderr.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    // Last tenth of the total printed in plain mode.
    last_tenth: AtomicUsize,
}

impl ProgressView {
    /// A bar on a terminal, plain lines otherwise.
    pub fn new() -> Arc<Self> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Arc::new(Self {
            bar,
            last_tenth: AtomicUsize::new(0),
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
