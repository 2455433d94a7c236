//! The downloader: files of a channel, fetched as blobs from several peers at once, verified,
//! and written atomically where the caller says.
//!
//! - [`Downloader::download_files`] downloads exactly the [`FileJob`]s given (a file entry
//!   and its destination); [`Downloader::download`] is every file of a manifest into a folder.
//! - The plan ([`plan`]) checks the jobs, looks at what the destinations and the store already
//!   hold, and lists the blobs to fetch; fetching ([`fetch`]) finds peers and fetches from
//!   them; the writer ([`writer`]) puts each verified blob's plaintext in place.
//!
//! Each blob is hashed once: the fetcher checks a reply's SHA-256 as it arrives, and that
//! same in-memory blob is then written to the store (without hashing again) and decrypted
//! straight into its place in the output file, so the hot path never reads a blob back.
//! Blobs already in the store (resume) are read, hashed and decrypted once before fetching;
//! a damaged one is removed and fetched again.

mod error;
mod events;
mod fetch;
mod options;
mod plan;
mod rate;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use error::DownloadError;
pub use events::{DownloadEvent, DownloadReport, EventFn, Progress};
pub use options::DownloadOptions;
pub use plan::FileJob;

use crate::blob::{destination, BlobStore, Committed, Replace};
use crate::dht::DhtClient;
use crate::id::BlobId;
use crate::manifest::{ReadKey, SignedManifest};
use fetch::{Ctx, Holdings, Sched};
use plan::Existing;
use writer::{FileWriter, Finished};

/// Downloads files through a blob store: blobs the store holds are used, the others are
/// fetched from peers (found through the DHT and [`DownloadOptions::peers`]) and kept there.
#[derive(Clone)]
pub struct Downloader {
    store: BlobStore,
    dht: Option<DhtClient>,
    opts: DownloadOptions,
    events: Option<EventFn>,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("store", &self.store.dir())
            .field("dht", &self.dht.is_some())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// A downloader writing blobs into `store`, finding peers through `dht` (when given) and
    /// [`DownloadOptions::peers`].
    pub fn new(store: BlobStore, dht: Option<DhtClient>, opts: DownloadOptions) -> Self {
        Self {
            store,
            dht,
            opts,
            events: None,
        }
    }

    /// Report progress to `events`.
    pub fn with_events(mut self, events: EventFn) -> Self {
        self.events = Some(events);
        self
    }

    /// Download every file of `manifest` into `out_dir` (created if needed), each at its
    /// validated path (its `path` folders, created below `out_dir` without following links,
    /// then its name): [`Downloader::download_files`] with one job per distinct file, whose
    /// folders are checked again just before each rename. A private manifest needs its
    /// `read_key`.
    pub async fn download(
        &self,
        manifest: &SignedManifest,
        read_key: Option<&ReadKey>,
        out_dir: &Path,
    ) -> Result<DownloadReport, DownloadError> {
        let content = plan::manifest_content(manifest, read_key)?;
        let files = plan::distinct_files(&content)?;
        std::fs::create_dir_all(out_dir).map_err(|source| DownloadError::Io {
            path: out_dir.to_owned(),
            source,
        })?;
        let jobs = files
            .into_iter()
            .map(|entry| {
                Ok(FileJob {
                    dest: destination(out_dir, &entry)?,
                    entry,
                })
            })
            .collect::<Result<_, DownloadError>>()?;
        self.run(jobs, Some(out_dir)).await
    }

    /// Download exactly these files, each written atomically to its destination (its folder
    /// is created if missing). Blobs already in the store are not fetched, nor are those of a
    /// destination that already holds the file's content (left untouched, its blobs remade
    /// into the store). A destination holding something else is
    /// [`DownloadError::DestinationExists`] (before anything is fetched) unless
    /// [`DownloadOptions::overwrite`]. Cancel by dropping the future: the store keeps every
    /// verified blob and no temporary file stays behind.
    pub async fn download_files(
        &self,
        jobs: Vec<FileJob>,
    ) -> Result<DownloadReport, DownloadError> {
        self.run(jobs, None).await
    }

    /// [`Downloader::download_files`]; with a `root`, every destination is that root's
    /// [`destination`] of its entry, checked again before the rename.
    async fn run(
        &self,
        jobs: Vec<FileJob>,
        root: Option<&Path>,
    ) -> Result<DownloadReport, DownloadError> {
        let jobs = plan::distinct_jobs(jobs)?;
        let (order, sizes) = plan::blobs_of(&jobs);
        // Each blob's file key, the first blob of its file (of the first file using it): peers
        // are looked up per file, asked about it, and told this node holds it.
        let key_of: HashMap<BlobId, BlobId> = jobs
            .iter()
            .rev()
            .flat_map(|j| {
                let key = j.entry.chunks.first().map(|c| c.blob_id);
                j.entry
                    .chunks
                    .iter()
                    .filter_map(move |c| Some((c.blob_id, key?)))
            })
            .collect();
        let mut report = DownloadReport {
            files: jobs.iter().map(|j| j.dest.clone()).collect(),
            bytes_total: sizes.values().sum(),
            blobs_total: order.len(),
            ..DownloadReport::default()
        };

        // Destinations first: a file in the way fails the download before anything is
        // fetched, and one already right costs nothing more.
        let start = Instant::now();
        let overwrite = self.opts.overwrite;
        let (todo_jobs, unchanged) = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || triage(jobs, &store, overwrite)).await??
        };
        report.files_unchanged = unchanged;
        let (needed, _) = plan::blobs_of(&todo_jobs);
        let (present, absent): (Vec<_>, Vec<_>) =
            needed.iter().copied().partition(|id| self.holds(id));
        let replace = if overwrite {
            Replace::Always
        } else {
            Replace::Never
        };

        // Blobs already in the store go into place first (each hashed before it is
        // decrypted); a damaged one is removed and joins the blobs to fetch.
        let writer = FileWriter::new(todo_jobs, replace, root.map(Path::to_path_buf));
        let (writer, damaged, finished) = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                writer
                    .place_stored(&store, &present)
                    .map(|(damaged, finished)| (writer, damaged, finished))
            })
            .await??
        };
        report.reassemble_time += start.elapsed();
        let absent: HashSet<_> = absent.into_iter().chain(damaged).collect();
        let todo: Vec<_> = needed
            .iter()
            .copied()
            .filter(|id| absent.contains(id))
            .collect();
        let done_bytes: u64 = order
            .iter()
            .filter(|id| !absent.contains(id))
            .filter_map(|id| sizes.get(id))
            .sum();
        report.blobs_present = order.len() - todo.len();
        let progress = Progress {
            bytes_done: done_bytes,
            bytes_total: report.bytes_total,
            blobs_done: report.blobs_present,
            blobs_total: order.len(),
            peers_in_use: 0,
        };
        let ctx = Arc::new(Ctx::new(
            self.store.clone(),
            writer,
            self.events.clone(),
            self.opts.rate_limit.map(rate::RateLimit::new),
        ));
        ctx.emit(DownloadEvent::Started(progress));
        for path in &report.files_unchanged {
            ctx.emit(DownloadEvent::FileUnchanged { path: path.clone() });
        }
        ctx.finished_files(finished);

        let mut sched = Sched::new(progress, sizes);
        if !todo.is_empty() {
            let start = Instant::now();
            // Keys held already: in the store, or in a destination already right (whose
            // blobs were put back into the store).
            let held = key_of
                .values()
                .filter(|k| !absent.contains(k))
                .copied()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let holdings = Holdings::new(key_of, held);
            self.fetch_all(&ctx, &mut sched, todo, holdings).await?;
            report.fetch_time += start.elapsed();
        }
        for Finished { path, how } in ctx.writer.finished()? {
            if how == Committed::Unchanged {
                report.files_unchanged.push(path);
            }
        }
        report.dht_lookups = sched.lookups;
        report.blobs_fetched = sched.fetched;
        report.peers_used = sched.delivered.iter().map(|(p, n)| (*p, *n)).collect();
        report.peers_used.sort();
        report.peers_dropped = sched.banned.iter().copied().collect();
        report.peers_dropped.sort();
        Ok(report)
    }
}

/// Make the destinations' folders and sort the jobs by what their destinations hold: those
/// to write, and the destinations already right. A destination holding something else fails
/// unless `overwrite`.
fn triage(
    jobs: Vec<FileJob>,
    store: &BlobStore,
    overwrite: bool,
) -> Result<(Vec<FileJob>, Vec<std::path::PathBuf>), DownloadError> {
    let mut todo = Vec::with_capacity(jobs.len());
    let mut unchanged = Vec::new();
    for job in jobs {
        if let Some(dir) = job.dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DownloadError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        match plan::examine(&job, store)? {
            Existing::Same => unchanged.push(job.dest),
            Existing::Different if !overwrite => {
                return Err(DownloadError::DestinationExists { path: job.dest })
            }
            Existing::Absent | Existing::Different | Existing::Unsure => todo.push(job),
        }
    }
    Ok((todo, unchanged))
}
