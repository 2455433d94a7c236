//! Progress for the terminal: an indicatif bar with an ETA when stderr is a terminal, plain
//! lines (every 10 %, and on peer events) when it is not, so logs stay readable; with
//! `--json`, download events as JSON lines on stdout instead.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use megatorrent::node::{DownloadEvent, EventFn, Progress};
use megatorrent::session::{PublishStage, PublishStageFn};
use serde_json::json;

use super::json;

/// Shows download events on stderr (`download`), or the download of each version a
/// subscription syncs (`subscribe`, through [`ProgressView::update`] and
/// [`ProgressView::finish`]).
pub struct ProgressView {
    bar: Option<ProgressBar>,
    // Last tenth of the total printed in plain mode.
    last_tenth: AtomicUsize,
    // No bar on the screen (none yet, or cleared): the next update starts one (a
    // subscription's next version), and lines go straight to stderr.
    cleared: AtomicBool,
    // ETA of plain lines.
    eta: Eta,
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
            cleared: AtomicBool::new(true),
            eta: Eta::default(),
            json,
        })
    }

    /// The callback to hand to the downloader.
    pub fn event_fn(self: &Arc<Self>) -> EventFn {
        let view = self.clone();
        Arc::new(move |e: &DownloadEvent| view.show(e))
    }

    /// A line on stderr, above the bar when one is shown.
    pub fn line(&self, text: String) {
        match &self.bar {
            // Not through a cleared bar: it would leave the cursor at the end of the line, and
            // the next stdout line (`synced seq N`) would follow on it.
            Some(bar) if !self.cleared.load(Ordering::Relaxed) => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    /// Show `p`: move the bar, or print a plain line when a new tenth of the blobs is done.
    pub fn update(&self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                if self.cleared.swap(false, Ordering::Relaxed) {
                    // Elapsed time and ETA start again with this transfer. The length first
                    // (not drawn while cleared): the reset draws the bar.
                    bar.set_length(p.bytes_total);
                    bar.reset();
                }
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
                        "progress {}% ({} of {} bytes, blobs {}/{}, peers {}{})",
                        tenth * 10,
                        p.bytes_done,
                        p.bytes_total,
                        p.blobs_done,
                        p.blobs_total,
                        p.peers_in_use,
                        eta_suffix(self.eta.left(p.bytes_done, p.bytes_total))
                    );
                } else {
                    // Starts the clock at the first report (what was already here excluded).
                    self.eta.left(p.bytes_done, p.bytes_total);
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

    /// Remove the bar. A later [`ProgressView::update`] starts a new one (and plain lines
    /// count tenths from 0 again).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.last_tenth.store(0, Ordering::Relaxed);
        self.cleared.store(true, Ordering::Relaxed);
        self.eta.reset();
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
    eta: Arc<Eta>,
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
            eta: Arc::new(Eta::started_now()),
            quiet,
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => self.plain(done),
        }
    }

    /// `done` units done in all (reports that count rather than add: never goes back).
    pub fn set(&self, done: u64) {
        if self.done.fetch_max(done, Ordering::Relaxed) >= done {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => self.plain(done),
        }
    }

    /// A plain line when `done` reaches a new tenth of the total.
    fn plain(&self, done: u64) {
        if self.quiet {
            return;
        }
        let tenth = (done.saturating_mul(10))
            .checked_div(self.total)
            .unwrap_or(10)
            .min(10) as usize;
        if self.last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
            let eta = eta_suffix(self.eta.left(done, self.total));
            eprintln!(
                "{} {}% ({} of {}{eta})",
                self.what,
                tenth * 10,
                done,
                self.total
            );
        }
    }

    /// Remove the bar (done or interrupted).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Work of unknown length (a DHT put): a spinner with `what` and the time spent on a
/// terminal, `what` once on a line otherwise. Cleared when dropped.
pub struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    /// Start showing `what`; `quiet` shows nothing (for `--json`).
    pub fn new(what: &str, quiet: bool) -> Self {
        if quiet {
            return Self { bar: None };
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{what}");
            return Self { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
            bar.set_style(style);
        }
        bar.set_message(what.to_owned());
        // It must turn while nothing reports: the put gives no news until it ends.
        bar.enable_steady_tick(Duration::from_millis(100));
        Self { bar: Some(bar) }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows the stages of a publish after its ingest ([`PublishStage`]): a spinner while the
/// sequence is looked up and while the record is put, a count of the blobs announced (with an
/// ETA on a terminal) in between. One thing at a time: each stage clears the previous one.
pub struct StageView {
    shown: Mutex<Shown>,
    quiet: bool,
}

enum Shown {
    Nothing,
    // Held only to be dropped (which clears it).
    Spinner { _spinning: Spinner },
    Count(ByteProgress),
}

impl StageView {
    /// `quiet` shows nothing (for `--json`).
    pub fn new(quiet: bool) -> Arc<Self> {
        Arc::new(Self {
            shown: Mutex::new(Shown::Nothing),
            quiet,
        })
    }

    /// The callback to hand to the publish; `first` runs before each stage is shown (to clear
    /// what the ingest showed).
    pub fn stage_fn(self: &Arc<Self>, first: impl Fn() + Send + Sync + 'static) -> PublishStageFn {
        let view = self.clone();
        Arc::new(move |stage| {
            first();
            view.show(stage);
        })
    }

    fn show(&self, stage: PublishStage) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        match stage {
            PublishStage::Sequence => {
                shown.clear();
                *shown = Shown::Spinner {
                    _spinning: Spinner::new("looking up the channel's sequence", self.quiet),
                };
            }
            PublishStage::Announcing { done, total } => {
                if !matches!(*shown, Shown::Count(_)) {
                    shown.clear();
                    *shown = Shown::Count(ByteProgress::new(
                        "announcing blobs",
                        total as u64,
                        false,
                        self.quiet,
                    ));
                }
                if let Shown::Count(p) = &*shown {
                    p.set(done as u64);
                }
            }
            PublishStage::Putting => {
                shown.clear();
                *shown = Shown::Spinner {
                    _spinning: Spinner::new("putting channel item", self.quiet),
                };
            }
            _ => {}
        }
    }

    /// Clear what is shown (the publish ended, failed or was interrupted).
    pub fn finish(&self) {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Shown {
    fn clear(&mut self) {
        if let Shown::Count(p) = self {
            p.finish();
        }
        // A spinner clears itself when dropped.
        *self = Shown::Nothing;
    }
}

/// The time left of plain-mode progress, from the rate since the clock started (what was
/// done before it, such as blobs already in the store, does not count as speed).
#[derive(Default)]
struct Eta {
    // When the clock started, and how much was done then.
    start: Mutex<Option<(Instant, u64)>>,
}

impl Eta {
    /// A clock started now, at 0 done.
    fn started_now() -> Self {
        Self {
            start: Mutex::new(Some((Instant::now(), 0))),
        }
    }

    /// The time left with `done` of `total` done (starts the clock if not yet running);
    /// `None` until something was done since, and once all is.
    fn left(&self, done: u64, total: u64) -> Option<Duration> {
        let mut start = self.start.lock().unwrap_or_else(|e| e.into_inner());
        let (t0, done0) = *start.get_or_insert((Instant::now(), done));
        let since = done.checked_sub(done0).filter(|&n| n > 0)?;
        let left = total.checked_sub(done).filter(|&n| n > 0)?;
        let secs = t0.elapsed().as_secs_f64() * left as f64 / since as f64;
        Duration::try_from_secs_f64(secs).ok()
    }

    fn reset(&self) {
        *self.start.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// `", ETA 1m05s"`, or nothing when there is no estimate.
fn eta_suffix(left: Option<Duration>) -> String {
    let Some(left) = left else {
        return String::new();
    };
    let s = left.as_secs();
    match s {
        0..60 => format!(", ETA {s}s"),
        60..3600 => format!(", ETA {}m{:02}s", s / 60, s % 60),
        _ => format!(", ETA {}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_from_the_rate_since_the_clock_started() {
        let eta = Eta::default();
        // The first report starts the clock: what was already done is not speed.
        assert_eq!(eta.left(50, 100), None);
        *eta.start.lock().unwrap() = Some((Instant::now() - Duration::from_secs(10), 50));
        let left = eta.left(75, 100).unwrap().as_secs_f64();
        assert!((9.0..=11.0).contains(&left), "{left}");
        assert_eq!(eta.left(100, 100), None, "nothing left");
        eta.reset();
        assert_eq!(eta.left(0, 100), None);
    }

    #[test]
    fn eta_reads_like_a_duration() {
        assert_eq!(eta_suffix(None), "");
        assert_eq!(eta_suffix(Some(Duration::from_secs(7))), ", ETA 7s");
        assert_eq!(eta_suffix(Some(Duration::from_secs(65))), ", ETA 1m05s");
        assert_eq!(eta_suffix(Some(Duration::from_secs(7260))), ", ETA 2h01m");
    }
}
