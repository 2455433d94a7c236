//! Publish the files of a folder to a channel and keep serving them, on a local DHT testnet.
//!
//! ```text
//! cargo run --example publish_folder -- FOLDER [--bootstrap HOST:PORT] [--identity FILE]
//!                                              [--salt TEXT] [--private]
//! ```
//!
//! Without `--bootstrap` it starts a testnet of 8 DHT nodes on 127.0.0.1 inside this process and
//! prints its address; with it, it joins a loopback one (e.g. `megatorrent dht node --listen
//! 127.0.0.1:0`). Every regular file directly in FOLDER is ingested into a temporary
//! blob store (subfolders are left out: a manifest lists files by name), the manifest is signed
//! with the identity (a fresh one without `--identity`; see `megatorrent keygen`) and put in the
//! DHT, and the blobs are served on 127.0.0.1 and announced. Only loopback bootstrap addresses
//! are accepted: this example never joins the public DHT. It prints the line that downloads
//! the channel with the `download_channel` example, then serves until Ctrl-C.
//!
//! `--private` publishes a private manifest under a fresh read key, written to
//! `FOLDER.read-key` (mode 0600) for `download_channel --read-key-file`: never on a command line.

use anyhow::{bail, Context};
use megatorrent::blob::BlobStore;
use megatorrent::dht::{DhtClient, DhtConfig};
use megatorrent::identity::Identity;
use megatorrent::manifest::ReadKey;
use megatorrent::node::{publish_files, PublishOptions};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Args {
    folder: PathBuf,
    bootstrap: Vec<String>,
    identity: Option<PathBuf>,
    salt: String,
    private: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        folder: PathBuf::new(),
        bootstrap: Vec::new(),
        identity: None,
        salt: String::new(),
        private: false,
    };
    let mut folder = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bootstrap" => out.bootstrap.push(value("--bootstrap")?),
            "--identity" => out.identity = Some(value("--identity")?.into()),
            "--salt" => out.salt = value("--salt")?,
            "--private" => out.private = true,
            _ if a.starts_with("--") => bail!("unknown option {a}"),
            _ if folder.is_none() => folder = Some(PathBuf::from(a)),
            _ => bail!("one FOLDER only"),
        }
    }
    out.folder = folder.context(
        "usage: publish_folder FOLDER [--bootstrap HOST:PORT] [--identity FILE] [--salt TEXT] [--private]",
    )?;
    Ok(out)
}

/// The regular files directly in `folder`, by name.
fn files_of(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("cannot list {folder:?}"))? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        } else {
            eprintln!("left out (not a regular file): {}", path.display());
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} holds no regular file to publish", folder.display());
    }
    Ok(files)
}

/// Refuse anything but loopback: the example is for local testnets only.
fn check_loopback(bootstrap: &[String]) -> anyhow::Result<()> {
    for b in bootstrap {
        let addrs: Vec<SocketAddr> = b
            .to_socket_addrs()
            .with_context(|| format!("bad bootstrap address {b:?} (expected HOST:PORT)"))?
            .collect();
        if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
            bail!("{b} is not a loopback address: this example only joins local testnets");
        }
    }
    Ok(())
}

/// Write a fresh read key beside the folder, readable by its owner only.
fn write_read_key(folder: &Path) -> anyhow::Result<(ReadKey, PathBuf)> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let key = ReadKey::generate();
    let mut path = folder.as_os_str().to_owned();
    path.push(".read-key");
    let path = PathBuf::from(path);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    open.mode(0o600);
    let mut f = open
        .open(&path)
        .with_context(|| format!("cannot create {} (it is never overwritten)", path.display()))?;
    f.write_all(key.to_hex().as_bytes())?;
    f.sync_all()?;
    Ok((key, path))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let files = files_of(&args.folder)?;
    let identity = match &args.identity {
        Some(path) => Identity::load(path).context("cannot read the identity")?,
        None => Identity::generate(),
    };

    // A testnet of our own unless one was given; it lives as long as this process serves.
    let mut _testnet = None;
    let bootstrap = if args.bootstrap.is_empty() {
        let net = tokio::task::spawn_blocking(|| mainline::Testnet::builder(8).build())
            .await?
            .context("cannot start the local testnet")?;
        let bootstrap = net.bootstrap.clone();
        _testnet = Some(net);
        bootstrap
    } else {
        check_loopback(&args.bootstrap)?;
        args.bootstrap.clone()
    };
    let mut config = DhtConfig::local(&bootstrap);
    // Loopback nodes answer at once: a lost packet should not cost the default 2 s.
    config.request_timeout = Duration::from_millis(500);
    let dht = DhtClient::start(&config)?;

    let mut opts = PublishOptions::default()
        .title(
            args.folder
                .file_name()
                .map_or_else(|| "files".to_owned(), |n| n.to_string_lossy().into_owned()),
        )
        .salt(args.salt.clone().into_bytes());
    if args.private {
        let (key, path) = write_read_key(&args.folder)?;
        println!("read key written to {}", path.display());
        opts = opts.read_key(Some(key));
    }

    let blobs = tempfile::tempdir()?;
    let store = BlobStore::open(blobs.path().join("blobs"))?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let published = publish_files(&identity, &files, &store, &dht, listen, &opts)
        .await
        .context("publish failed")?;

    println!(
        "published {} file(s) as sequence {} of {}, serving on {}",
        files.len(),
        published.sequence(),
        identity.public_key_hex(),
        published.local_addr()
    );
    let mut line = format!(
        "cargo run --example download_channel -- {} --bootstrap {} --out DIR",
        identity.public_key_hex(),
        // One node is enough to join the network.
        bootstrap[0]
    );
    if !args.salt.is_empty() {
        line.push_str(&format!(" --salt {:?}", args.salt));
    }
    if args.private {
        line.push_str(&format!(
            " --read-key-file {}.read-key",
            args.folder.display()
        ));
    }
    println!("download it with:\n  {line}");
    println!("serving until Ctrl-C");

    tokio::signal::ctrl_c().await?;
    published.shutdown().await;
    Ok(())
}
