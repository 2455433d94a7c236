//! `megatorrent demo`: the whole protocol on 127.0.0.1 in one command.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use megatorrent::node::demo::{run_demo, DemoOptions, DemoReport};

use super::download::runtime;
use super::progress::ProgressView;

/// Publish a generated file from local seeding peers through a local DHT, download it as a
/// new subscriber, and check the result. Never touches the public DHT.
#[derive(Args)]
pub struct DemoArgs {
    /// Size of the generated file in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    size: u64,
    /// Nodes of the local DHT.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    nodes: u16,
    /// Seeding peers.
    #[arg(long, value_name = "P", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    peers: u16,
}

const PHASES: [(&str, &str); 7] = [
    ("generate", "generating the file"),
    ("dht", "starting the local DHT"),
    ("ingest", "cutting the file into encrypted blobs"),
    (
        "publish",
        "publishing the manifest, serving and announcing the blobs",
    ),
    (
        "discover",
        "a new subscriber looks the channel up in the DHT",
    ),
    ("download", "downloading from the peers found"),
    ("verify", "checking the SHA-256 of the result"),
];

/// Run the demo and print its summary; exit 0 only when the result is identical.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let view = ProgressView::new(false);
    let fancy = std::io::stdout().is_terminal();
    let opts = DemoOptions::default()
        .size(args.size)
        .nodes(usize::from(args.nodes))
        .peers(usize::from(args.peers))
        .events(Some(view.event_fn()))
        .phases(Some(Arc::new(move |name| {
            let (i, text) = PHASES
                .iter()
                .enumerate()
                .find(|(_, (n, _))| *n == name)
                .map_or((0, name), |(i, (_, t))| (i + 1, *t));
            let mut out = std::io::stdout();
            let _ = if fancy {
                writeln!(out, "\x1b[1m[{i}/{}]\x1b[0m {text}", PHASES.len())
            } else {
                writeln!(out, "[{i}/{}] {text}", PHASES.len())
            };
            let _ = out.flush();
        })));
    println!(
        "megatorrent demo: {} on 127.0.0.1, {} DHT nodes, {} seeding peers",
        human_bytes(args.size),
        args.nodes,
        args.peers
    );
    let outcome = runtime()?.block_on(run_demo(opts));
    view.finish();
    let report = outcome?;
    print_summary(&report);
    if !report.identical() {
        bail!(
            "the downloaded file differs from the published one (sha256 {} vs {})",
            hex::encode(report.result_sha256),
            hex::encode(report.source_sha256)
        );
    }
    println!(
        "result verified identical: sha256 {}",
        hex::encode(report.result_sha256)
    );
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{n} bytes")
    }
}

const MIB: f64 = (1u64 << 20) as f64;

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn print_summary(r: &DemoReport) {
    let d = &r.download;
    println!("summary");
    println!("  size         {} ({} bytes)", human_bytes(r.size), r.size);
    println!(
        "  channel      {} seq {} ({})",
        r.public_key,
        r.sequence,
        if r.manifest_parts == 0 {
            "inline DHT record".to_string()
        } else {
            format!("pointer record, {} manifest part(s)", r.manifest_parts)
        }
    );
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(n, t)| format!("{n} {}", secs(*t)))
        .collect();
    println!("  time         {}", phases.join(", "));
    // Fetched blobs are decrypted into the file as they arrive and the file is synced and
    // renamed after the last one, all within the fetch time; the rest is only the blobs a
    // store already held, which the demo's fresh subscriber never has.
    println!(
        "  download     {} fetching {} blobs into the file (decrypted as they arrive, then synced and renamed), {} on blobs already stored",
        secs(d.fetch_time),
        d.blobs_fetched,
        secs(d.reassemble_time)
    );
    let fetch_rate = if d.fetch_time.is_zero() {
        0.0
    } else {
        r.size as f64 / d.fetch_time.as_secs_f64()
    };
    println!(
        "  throughput   {:.1} MiB/s over the download phase ({:.1} MiB/s while fetching)",
        r.throughput() / MIB,
        fetch_rate / MIB
    );
    let peers: Vec<String> = d
        .peers_used
        .iter()
        .map(|(p, n)| format!("{p} ({n} blobs)"))
        .collect();
    println!(
        "  peers used   {} of {}: {}",
        d.peers_used.len(),
        r.peers,
        peers.join(", ")
    );
}
