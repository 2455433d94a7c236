//! `megatorrent ingest` and `megatorrent reassemble`: files <-> encrypted blobs (PROTOCOL.md 3).

use anyhow::Context;
use clap::Args;
use megatorrent::blob::{ingest_reader, reassemble, BlobStore};
use megatorrent::manifest::FileEntry;
use megatorrent::session::collect_files;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use super::interrupt::{interrupted, sigint_flag, WatchedReader};
use super::progress::ByteProgress;

/// Arguments of `ingest`.
#[derive(Args)]
pub struct IngestArgs {
    /// File to cut into encrypted blobs, or a folder: every file under it (recursively,
    /// symlinks not followed), each entry carrying its folders in `path`.
    #[arg(value_name = "PATH")]
    file: PathBuf,
    /// Blob store folder (created if missing).
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
}

/// Arguments of `reassemble`.
#[derive(Args)]
pub struct ReassembleArgs {
    /// File entry JSON (as printed by `ingest`).
    #[arg(value_name = "ENTRY_JSON")]
    entry: PathBuf,
    /// Blob store folder holding the entry's blobs.
    #[arg(long, value_name = "DIR")]
    blobs: PathBuf,
    /// Where to write the file; nothing is written there unless every blob verifies.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Ingest a file and print its entry JSON on stdout (a folder: one entry per line, in path
/// order). SIGINT stops it with status 130; the blobs it stored are removed again (their keys
/// were never printed, so they are useless).
pub fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let store = BlobStore::open(&args.blobs)?;
    if args.file.is_dir() {
        return ingest_folder(&args.file, &store);
    }
    let name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", args.file.display()))?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // A regular file has a size to show progress against; a pipe does not.
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let stop = sigint_flag()?;
    let progress = size.map(|total| ByteProgress::new("ingest", total, true, false));
    let seen = progress.clone();
    let reader = WatchedReader::new(file, stop.clone(), move |n| {
        if let Some(p) = &seen {
            p.inc(n)
        }
    });
    let outcome = ingest_reader(reader, name, &store);
    if let Some(p) = &progress {
        p.finish();
    }
    if outcome.is_err() && stop.load(Ordering::SeqCst) {
        return Ok(interrupted());
    }
    let entry = outcome.with_context(|| format!("cannot ingest {}", args.file.display()))?;
    println!("{}", entry.to_json());
    Ok(ExitCode::SUCCESS)
}

fn ingest_folder(folder: &Path, store: &BlobStore) -> anyhow::Result<ExitCode> {
    let sources = collect_files(&[folder.to_owned()])?;
    if sources.is_empty() {
        anyhow::bail!("{} holds no files", folder.display());
    }
    let mut total = 0;
    for f in &sources {
        total += std::fs::metadata(&f.abs)
            .with_context(|| format!("cannot read {}", f.abs.display()))?
            .len();
    }
    let stop = sigint_flag()?;
    let progress = ByteProgress::new("ingest", total, true, false);
    let mut entries: Vec<FileEntry> = Vec::with_capacity(sources.len());
    let mut failure = None;
    for f in &sources {
        let outcome = std::fs::File::open(&f.abs)
            .with_context(|| format!("cannot read {}", f.abs.display()))
            .and_then(|file| {
                let seen = progress.clone();
                let reader = WatchedReader::new(file, stop.clone(), move |n| seen.inc(n));
                ingest_reader(reader, &f.name, store)
                    .with_context(|| format!("cannot ingest {}", f.abs.display()))
            });
        match outcome {
            Ok(mut entry) => {
                entry.path = f.dirs.clone();
                // Checked like a downloader will: a folder name it refuses fails here.
                if let Err(e) = entry.validate() {
                    entries.push(entry);
                    failure = Some(
                        anyhow::Error::new(e).context(format!("cannot ingest {}", f.abs.display())),
                    );
                    break;
                }
                entries.push(entry);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    progress.finish();
    if let Some(e) = failure {
        // Nothing was printed, so none of these keys exist anywhere else.
        for chunk in entries.iter().flat_map(|e| &e.chunks) {
            let _ = store.remove(&chunk.blob_id);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(interrupted());
        }
        return Err(e);
    }
    let mut stdout = std::io::stdout().lock();
    for entry in &entries {
        writeln!(stdout, "{}", entry.to_json())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Rebuild a file from its entry and the store.
pub fn reassemble_file(args: ReassembleArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.entry)
        .with_context(|| format!("cannot read {}", args.entry.display()))?;
    let entry = FileEntry::from_json(&text)
        .with_context(|| format!("invalid file entry {}", args.entry.display()))?;
    let store = BlobStore::open(&args.blobs)?;
    reassemble(&entry, &store, &args.out)
        .with_context(|| format!("cannot reassemble {}", entry.name))?;
    Ok(ExitCode::SUCCESS)
}
