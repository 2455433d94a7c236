//! `megatorrent manifest create|verify|decrypt`: signed channel manifests (PROTOCOL.md 2).

use super::keys::ReadKeyArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use megatorrent::identity::Identity;
use megatorrent::manifest::{
    create_manifest, create_private_manifest, Collection, FileEntry, ManifestContent,
    SignedManifest,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Create, verify and decrypt manifests.
#[derive(Subcommand)]
pub enum ManifestCommand {
    /// Create and sign a manifest holding one collection of the given file entries; print it.
    Create(CreateArgs),
    /// Check a manifest's fields and signature: prints `valid`, or the reason and exits 1.
    Verify(VerifyArgs),
    /// Decrypt a private manifest and print it as plain manifest JSON (without signature).
    Decrypt(DecryptArgs),
}

/// Arguments of `manifest create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Identity file (from `megatorrent keygen`) that signs the manifest.
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// Sequence number, 1 to 2^53-1; must grow with every new version of the channel.
    #[arg(long = "seq", value_name = "N")]
    sequence: u64,
    /// Title of the collection.
    #[arg(long, value_name = "T", default_value = "Default")]
    title: String,
    /// With a read key: make a private manifest, encrypted under it.
    #[command(flatten)]
    read_key: ReadKeyArgs,
    /// File entry JSON files (as printed by `megatorrent ingest`; one file may hold several
    /// entries, one after the other).
    #[arg(value_name = "ENTRY_JSON", required = true)]
    entries: Vec<PathBuf>,
}

/// Arguments of `manifest verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Manifest file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Arguments of `manifest decrypt`.
#[derive(Args)]
pub struct DecryptArgs {
    /// Private manifest file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    read_key: ReadKeyArgs,
}

/// Run one `manifest` subcommand.
pub fn run(command: ManifestCommand) -> anyhow::Result<ExitCode> {
    match command {
        ManifestCommand::Create(args) => create(args),
        ManifestCommand::Verify(args) => {
            let manifest = read_manifest(&args.file)?;
            drop(manifest);
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        ManifestCommand::Decrypt(args) => {
            let key = args.read_key.require()?;
            let manifest = read_manifest(&args.file)?;
            let json = manifest.decrypted_json(&key).context("cannot decrypt")?;
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_manifest(path: &Path) -> anyhow::Result<SignedManifest> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    SignedManifest::verify(&bytes).context("invalid manifest")
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    // Parse the key before any work so a typo fails fast.
    let read_key = args.read_key.get()?;
    let identity = Identity::load(&args.identity).context("cannot load the identity")?;
    let mut items = Vec::with_capacity(args.entries.len());
    for path in &args.entries {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // One entry, or several one after the other (`ingest FOLDER` prints one per line).
        let values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        let before = items.len();
        for (i, value) in values.enumerate() {
            let bad = || format!("bad file entry {} (entry {})", path.display(), i + 1);
            let value = value.with_context(bad)?;
            items.push(FileEntry::from_json(&value.to_string()).with_context(bad)?);
        }
        if items.len() == before {
            anyhow::bail!("{} holds no file entry", path.display());
        }
    }
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis();
    let content = ManifestContent {
        collections: vec![Collection {
            title: args.title,
            items,
        }],
        timestamp: u64::try_from(timestamp).context("the system clock is out of range")?,
    };
    let manifest = match &read_key {
        Some(key) => create_private_manifest(&identity, args.sequence, &content, key),
        None => create_manifest(&identity, args.sequence, &content),
    }
    .context("cannot create the manifest")?;
    println!("{}", manifest.as_str());
    Ok(ExitCode::SUCCESS)
}
