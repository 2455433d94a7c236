//! Command-line front end. Each area of the protocol has its own module here with its clap
//! arguments and a `run` function; this module only dispatches and turns errors into exit codes.
//!
//! Exit codes: 0 success, 1 failure (one `error: ...` line on stderr), 2 usage error (clap).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod blobs;
mod demo;
mod dht;
mod download;
mod keygen;
mod manifest;
mod peer;
mod progress;
mod publish;
mod subscribe;

/// Megatorrent: signed, encrypted content channels on the BitTorrent Mainline DHT.
#[derive(Parser)]
#[command(name = "megatorrent", version, about, long_about = None)]
struct Cli {
    /// Log filter for stderr (tracing `EnvFilter` syntax, e.g. `debug` or `megatorrent=trace`).
    /// Defaults to the RUST_LOG environment variable, else `warn`.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new identity file (Ed25519 key pair) and print its public key.
    Keygen(keygen::KeygenArgs),
    /// Cut a file into encrypted blobs in a store; print its file entry JSON.
    Ingest(blobs::IngestArgs),
    /// Rebuild a file from its entry JSON and the blob store, verifying every blob.
    Reassemble(blobs::ReassembleArgs),
    /// Create, verify or decrypt a signed manifest.
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    /// Serve the blobs of a folder to v5 peers until SIGINT/SIGTERM.
    Serve(peer::ServeArgs),
    /// Fetch blobs from a peer into a folder, verifying each.
    Fetch(peer::FetchArgs),
    /// DHT: run a node, publish and read manifests, announce and find blobs.
    #[command(subcommand)]
    Dht(dht::DhtCommand),
    /// Publish files to a channel, then serve and announce them until SIGINT/SIGTERM.
    Publish(publish::PublishArgs),
    /// Download every file of a channel, verified.
    Download(download::DownloadArgs),
    /// Follow a channel: sync every new version into a folder and seed it, until SIGINT/SIGTERM.
    Subscribe(subscribe::SubscribeArgs),
    /// List a channel's current version: sequence, and every file's path and size.
    Ls(subscribe::LsArgs),
    /// The whole protocol on 127.0.0.1 in one command (local DHT, seeders, a subscriber).
    Demo(demo::DemoArgs),
}

/// Parse the command line, run the command, map its outcome to an exit code.
pub fn main() -> ExitCode {
    // clap exits with status 2 on usage errors, which is what scripts expect.
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let outcome: anyhow::Result<ExitCode> = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Ingest(args) => blobs::ingest(args),
        Command::Reassemble(args) => blobs::reassemble_file(args),
        Command::Manifest(command) => manifest::run(command),
        Command::Serve(args) => peer::run_serve(args),
        Command::Fetch(args) => peer::run_fetch(args),
        Command::Dht(cmd) => dht::run(cmd),
        Command::Publish(args) => publish::run(args),
        Command::Download(args) => download::run(args),
        Command::Subscribe(args) => subscribe::run_subscribe(args),
        Command::Ls(args) => subscribe::run_ls(args),
        Command::Demo(args) => demo::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` joins the error chain on one line: one clear line, never a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new("warn")),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour escapes when stderr is a file or a pipe (logs collected by scripts).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
