//! Command-line front end. Each area of the protocol has its own module here with its clap
//! arguments and a `run` function; this module only dispatches and turns errors into exit codes.
//!
//! Exit codes: 0 success, 1 failure (one `error: ...` line on stderr: what failed, then each
//! cause once, joined by ": "), 2 usage error (clap).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod blobs;
mod demo;
mod dht;
mod download;
mod interrupt;
pub mod json;
mod keygen;
mod keys;
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
    /// Defaults to the RUST_LOG environment variable, else `warn` (with the `mainline` DHT
    /// library's own messages off: failures reach you as this command's error).
    #[arg(long, global = true, value_name = "FILTER", value_parser = parse_log_filter)]
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
    /// Print a shell completion script on stdout (installed by nothing: see the README).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (installed by nothing: see the README).
    Man,
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
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "megatorrent",
                &mut script,
            );
            write_stdout(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .context("cannot render the man page")
                .and_then(|()| write_stdout(&page))
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // One line, each cause once (error types keep their cause out of their message).
            eprintln!("error: {}", megatorrent::error::ErrorChain(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// A `--log` value must be a valid filter: a typo is a usage error, not silently `warn`.
fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("invalid log filter: {e}"))
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        // Checked by `parse_log_filter` already.
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new("warn")),
        // mainline logs "Could not bootstrap the routing table" at ERROR level; the command's
        // own error ("no DHT node answered at ...") says it once.
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("warn,mainline=off")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour escapes when stderr is a file or a pipe (logs collected by scripts).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
