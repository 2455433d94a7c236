//! `megatorrent ingest` and `megatorrent reassemble`: files <-> encrypted blobs (PROTOCOL.md 3).

use anyhow::Context;
use clap::Args;
use megatorrent::blob::{ingest_file, reassemble, BlobStore};
use megatorrent::manifest::FileEntry;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ingest`.
#[derive(Args)]
pub struct IngestArgs {
    /// File to cut into encrypted blobs.
    #[arg(value_name = "FILE")]
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

/// Ingest a file and print its entry JSON on stdout.
pub fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let store = BlobStore::open(&args.blobs)?;
    let entry = ingest_file(&args.file, &store)
        .with_context(|| format!("cannot ingest {}", args.file.display()))?;
    println!("{}", entry.to_json());
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
