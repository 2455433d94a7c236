//! Syncing one verified version of a channel into its save folder: new and changed files
//! are downloaded (each written atomically by the downloader), unchanged files are neither
//! fetched nor touched, files the user changed are kept and reported, nothing is written
//! outside the save folder.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::broadcast;

use crate::blob::{open_blob, BlobStore};
use crate::dht::DhtClient;
use crate::download::DownloadEvent;
use crate::download::{DownloadOptions, Downloader, FileJob};
use crate::id::BlobId;
use crate::manifest::{FileEntry, ManifestContent};
use crate::node::NodeError;

use super::channel::ChannelRef;
use super::files::{dest_in, fingerprint, hash_file, join_path, mtime_ns, no_symlink_between};
use super::state::{FileRecord, SyncRecord};
use super::types::{RemovedFiles, SessionError, SessionEvent};

/// What the sync of one version did.
#[derive(Debug, Default)]
pub(crate) struct SyncOutcome {
    pub record: SyncRecord,
    pub blobs_fetched: usize,
    pub blobs_present: usize,
    pub files_unchanged: usize,
}

/// Live numbers of a sync, for [`super::SubscriptionStatus`] and
/// [`super::Session::channel_files`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Live {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub peers: usize,
    pub rate: u64,
    /// Files of the version being synced (or last synced): path -> (size, bytes done).
    pub files: BTreeMap<String, (u64, u64)>,
}

/// Everything a sync needs from the session.
pub(crate) struct SyncCtx {
    pub store: BlobStore,
    pub dht: DhtClient,
    pub options: DownloadOptions,
    pub events: broadcast::Sender<SessionEvent>,
    pub live: Arc<Mutex<Live>>,
    /// Each blob verified during the download (seeded at once, partial versions too).
    pub on_blob: Arc<dyn Fn(BlobId) + Send + Sync>,
}

/// The `/`-separated path of a manifest's file inside a save folder (folders, then name).
pub fn entry_path(entry: &FileEntry) -> String {
    join_path(&[], &entry.name)
}

/// The distinct files of a version by path; two different files at one path are refused.
pub(crate) fn version_files(
    content: &ManifestContent,
) -> Result<BTreeMap<String, FileEntry>, SessionError> {
    let mut files: BTreeMap<String, FileEntry> = BTreeMap::new();
    for entry in content.collections.iter().flat_map(|c| c.items.iter()) {
        let path = entry_path(entry);
        match files.get(&path) {
            Some(prev) if prev != entry => {
                return Err(NodeError::DuplicateName { name: path }.into());
            }
            Some(_) => {}
            None => {
                files.insert(path, entry.clone());
            }
        }
    }
    Ok(files)
}

enum Plan {
    /// Same content as we wrote, untouched since.
    Unchanged(FileRecord),
    /// Fetch and write (the dest is absent or holds what we wrote before).
    Fetch,
    /// The user changed (or put) something there: keep it.
    Keep(Option<FileRecord>),
}

/// Sync `content` (version `sequence`) of `channel` into `save`, given the previous record.
pub(crate) async fn sync_version(
    ctx: &SyncCtx,
    channel: &ChannelRef,
    save: &Path,
    removed: RemovedFiles,
    sequence: u64,
    content: &ManifestContent,
    prev: &SyncRecord,
) -> Result<SyncOutcome, SessionError> {
    let files = version_files(content)?;
    let _ = ctx.events.send(SessionEvent::SyncStarted {
        channel: channel.clone(),
        sequence,
    });

    // Classify every file on a blocking thread (it reads and hashes local files).
    let plans = {
        let (files, prev, save, store) = (
            files.clone(),
            prev.clone(),
            save.to_owned(),
            ctx.store.clone(),
        );
        tokio::task::spawn_blocking(move || plan_all(&files, &prev, &save, &store)).await??
    };

    if let Ok(mut l) = ctx.live.lock() {
        l.files = plans
            .iter()
            .filter_map(|(path, (_, plan))| {
                let size = files.get(path)?.size;
                let done = if matches!(plan, Plan::Fetch) { 0 } else { size };
                Some((path.clone(), (size, done)))
            })
            .collect();
    }
    let mut record = SyncRecord {
        sequence,
        files: BTreeMap::new(),
        blobs_fetched_total: prev.blobs_fetched_total,
    };
    let mut outcome = SyncOutcome::default();
    let mut jobs = Vec::new();
    let mut fetch_paths = Vec::new();
    for (path, (dest, plan)) in plans {
        match plan {
            Plan::Unchanged(rec) => {
                outcome.files_unchanged += 1;
                record.files.insert(path, rec);
            }
            Plan::Keep(rec) => {
                let _ = ctx.events.send(SessionEvent::LocalChangeKept {
                    channel: channel.clone(),
                    path: path.clone(),
                });
                if let Some(rec) = rec {
                    record.files.insert(path, rec);
                }
            }
            Plan::Fetch => {
                if let Some(entry) = files.get(&path) {
                    jobs.push(FileJob {
                        entry: entry.clone(),
                        dest: dest.clone(),
                    });
                    fetch_paths.push((path, dest));
                }
            }
        }
    }

    if !jobs.is_empty() {
        let report = download(ctx, channel, save, jobs).await?;
        outcome.blobs_fetched = report.blobs_fetched;
        outcome.blobs_present = report.blobs_present;
        record.blobs_fetched_total += report.blobs_fetched as u64;
        // Record what we wrote: its hash tells a later sync whether the user changed it.
        let written = {
            let files = files.clone();
            tokio::task::spawn_blocking(move || record_written(&files, fetch_paths)).await??
        };
        record.files.extend(written);
    }

    // Files the channel no longer has.
    for (path, rec) in &prev.files {
        if files.contains_key(path) {
            continue;
        }
        if removed == RemovedFiles::Delete {
            let dest = dest_in(save, path)?;
            let rec = rec.clone();
            let ours = tokio::task::spawn_blocking(move || {
                still_ours(&dest, &rec).then(|| std::fs::remove_file(&dest))
            })
            .await?;
            match ours {
                Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(path, error = %e, "cannot delete a removed file")
                }
                None => {
                    let _ = ctx.events.send(SessionEvent::LocalChangeKept {
                        channel: channel.clone(),
                        path: path.clone(),
                    });
                }
                _ => {}
            }
        }
    }
    outcome.record = record;
    Ok(outcome)
}

async fn download(
    ctx: &SyncCtx,
    channel: &ChannelRef,
    save: &Path,
    jobs: Vec<FileJob>,
) -> Result<crate::download::DownloadReport, SessionError> {
    let events = ctx.events.clone();
    let live = ctx.live.clone();
    let on_blob = ctx.on_blob.clone();
    let ch = channel.clone();
    let root = save.to_owned();
    let started = Instant::now();
    let event_fn: crate::download::EventFn = Arc::new(move |e: &DownloadEvent| match e {
        DownloadEvent::Started(p) | DownloadEvent::BlobDone { progress: p, .. } => {
            if let DownloadEvent::BlobDone { blob, .. } = e {
                on_blob(*blob);
            }
            let secs = started.elapsed().as_secs_f64();
            let rate = if secs > 0.0 {
                (p.bytes_done as f64 / secs) as u64
            } else {
                0
            };
            if let Ok(mut l) = live.lock() {
                l.bytes_done = p.bytes_done;
                l.bytes_total = p.bytes_total;
                l.peers = p.peers_in_use;
                l.rate = rate;
            }
            let _ = events.send(SessionEvent::Progress {
                channel: ch.clone(),
                bytes_done: p.bytes_done,
                bytes_total: p.bytes_total,
                blobs_done: p.blobs_done,
                blobs_total: p.blobs_total,
                peers: p.peers_in_use,
                rate,
            });
        }
        DownloadEvent::FileDone { path } => {
            let rel = path
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_else(|_| path.to_string_lossy().into_owned());
            if let Ok(mut l) = live.lock() {
                if let Some(f) = l.files.get_mut(&rel) {
                    f.1 = f.0;
                }
            }
            let _ = events.send(SessionEvent::FileCompleted {
                channel: ch.clone(),
                path: rel,
            });
        }
        _ => {}
    });
    let downloader = Downloader::new(
        ctx.store.clone(),
        Some(ctx.dht.clone()),
        ctx.options.clone(),
    )
    .with_events(event_fn);
    let report = downloader.download_files(jobs).await?;
    for (peer, blobs) in &report.peers_used {
        // Who served how much: the swarm benchmark (scripts/bench-session.sh) reads this.
        tracing::info!(%peer, blobs, "blobs fetched from peer");
    }
    Ok(report)
}

type Planned = BTreeMap<String, (PathBuf, Plan)>;

fn plan_all(
    files: &BTreeMap<String, FileEntry>,
    prev: &SyncRecord,
    save: &Path,
    store: &BlobStore,
) -> Result<Planned, SessionError> {
    std::fs::create_dir_all(save).map_err(|source| SessionError::Io {
        path: save.to_owned(),
        source,
    })?;
    // What a killed download left behind.
    super::files::remove_partials(save);
    let mut out = BTreeMap::new();
    for (path, entry) in files {
        let dest = dest_in(save, path)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SessionError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        if !no_symlink_between(save, &dest) {
            return Err(SessionError::BadPath {
                path: dest,
                reason: "a symlink in the way would lead outside the save folder".into(),
            });
        }
        let plan = plan_one(entry, prev.files.get(path), &dest, store)?;
        out.insert(path.clone(), (dest, plan));
    }
    Ok(out)
}

fn plan_one(
    entry: &FileEntry,
    prev: Option<&FileRecord>,
    dest: &Path,
    store: &BlobStore,
) -> Result<Plan, SessionError> {
    let fp = fingerprint(entry);
    let meta = match std::fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plan::Fetch),
        Err(source) => {
            return Err(SessionError::Io {
                path: dest.to_owned(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Ok(Plan::Keep(None));
    }
    if let Some(rec) = prev {
        if still_ours(dest, rec) {
            return Ok(if rec.fingerprint == fp {
                Plan::Unchanged(rec.clone())
            } else {
                Plan::Fetch
            });
        }
        if rec.fingerprint == fp {
            // The user changed a file the channel did not: nothing to decide now; keep the
            // record so a later version still sees the change.
            return Ok(Plan::Unchanged(rec.clone()));
        }
    }
    // Not what we wrote (or never recorded, e.g. killed after the rename): if it already
    // holds exactly the new content, adopt it; else it is the user's.
    if meta.len() == entry.size && holds_entry(dest, entry, store) {
        let hash = hash_file(dest).map_err(|source| SessionError::Io {
            path: dest.to_owned(),
            source,
        })?;
        return Ok(Plan::Unchanged(FileRecord {
            size: entry.size,
            fingerprint: fp,
            hash,
            mtime_ns: mtime_ns(&meta),
        }));
    }
    Ok(Plan::Keep(prev.cloned()))
}

/// True when `dest` still holds what we recorded: same size and mtime (not read), or the same
/// content hash.
fn still_ours(dest: &Path, rec: &FileRecord) -> bool {
    let Ok(meta) = std::fs::metadata(dest) else {
        return false;
    };
    if meta.len() != rec.size {
        return false;
    }
    if mtime_ns(&meta) == rec.mtime_ns {
        return true;
    }
    hash_file(dest).is_ok_and(|h| h == rec.hash)
}

/// [`still_ours`] for the session (unsubscribe with file deletion).
pub(crate) fn still_ours_pub(dest: &Path, rec: &FileRecord) -> bool {
    still_ours(dest, rec)
}

/// True when the file's content equals the entry's, checked against the entry's blobs in the
/// store (decrypted); false when a blob is missing.
fn holds_entry(dest: &Path, entry: &FileEntry, store: &BlobStore) -> bool {
    let Ok(mut f) = std::fs::File::open(dest) else {
        return false;
    };
    let mut buf = Vec::new();
    for c in &entry.chunks {
        let Ok(Some(blob)) = store.get_verified(&c.blob_id) else {
            return false;
        };
        let Ok(plain) = open_blob(&blob, c) else {
            return false;
        };
        buf.resize(plain.len(), 0);
        if f.read_exact(&mut buf).is_err() || buf != plain {
            return false;
        }
    }
    // Nothing after the last chunk.
    f.read(&mut [0u8; 1]).is_ok_and(|n| n == 0)
}

fn record_written(
    files: &BTreeMap<String, FileEntry>,
    written: Vec<(String, PathBuf)>,
) -> Result<Vec<(String, FileRecord)>, SessionError> {
    let mut out = Vec::with_capacity(written.len());
    let mut done = HashSet::new();
    for (path, dest) in written {
        let Some(entry) = files.get(&path) else {
            continue;
        };
        if !done.insert(path.clone()) {
            continue;
        }
        let io = |source| SessionError::Io {
            path: dest.clone(),
            source,
        };
        let meta = std::fs::metadata(&dest).map_err(io)?;
        let hash = hash_file(&dest).map_err(io)?;
        out.push((
            path,
            FileRecord {
                size: meta.len(),
                fingerprint: fingerprint(entry),
                hash,
                mtime_ns: mtime_ns(&meta),
            },
        ));
    }
    Ok(out)
}
