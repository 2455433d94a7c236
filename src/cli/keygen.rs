//! `megatorrent keygen`: create an identity file, or a read key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use megatorrent::identity::Identity;
use megatorrent::manifest::ReadKey;

/// Create a new Ed25519 identity and write it (mode 0600) to a file that must not exist yet;
/// or, with `--read-key`, a new read key for a private channel.
#[derive(Args)]
pub struct KeygenArgs {
    /// Identity file to create (with --read-key: the file the read key is written to,
    /// mode 0600, instead of printing it).
    #[arg(long, value_name = "FILE", required_unless_present = "read_key")]
    out: Option<PathBuf>,
    /// Make a read key (64 hex) for a private channel instead of an identity.
    #[arg(long)]
    read_key: bool,
}

/// Generate the identity (or read key), save it, print its public key (or the read key).
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if args.read_key {
        let key = ReadKey::generate();
        match &args.out {
            Some(path) => write_secret(path, format!("{}\n", key.to_hex().as_str()).as_bytes())
                .with_context(|| format!("cannot write the read key to {}", path.display()))?,
            None => println!("{}", key.to_hex().as_str()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(out) = &args.out else {
        anyhow::bail!("--out FILE is needed");
    };
    let identity = Identity::generate();
    identity.save(out).context("cannot write the identity")?;
    println!("{}", identity.public_key_hex());
    Ok(ExitCode::SUCCESS)
}

/// Write `bytes` to a new file `path` (mode 0600, atomically); an existing file is kept.
fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite it",
            path.display()
        );
    }
    // tempfile creates the file with mode 0600, so the key is never readable by others.
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(megatorrent::error::without_temp_path)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}
