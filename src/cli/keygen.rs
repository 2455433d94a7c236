//! `megatorrent keygen`: create an identity file.

use anyhow::Context;
use clap::Args;
use megatorrent::identity::Identity;
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a new Ed25519 identity and write it (mode 0600) to a file that must not exist yet.
#[derive(Args)]
pub struct KeygenArgs {
    /// Identity file to create.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Generate the identity, save it, print its public key.
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let identity = Identity::generate();
    identity
        .save(&args.out)
        .context("cannot write the identity")?;
    println!("{}", identity.public_key_hex());
    Ok(ExitCode::SUCCESS)
}
