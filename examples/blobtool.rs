//! Drive blob ingest and reassembly from the shell, e.g. to measure peak memory with
//! `/usr/bin/time -v`. The entry is kept in a plain text file (one chunk per line), not JSON,
//! so this tool does not depend on the manifest codec. The entry file holds chunk keys: it is
//! written with mode 0600.
//!
//! ```text
//! blobtool ingest FILE STOREDIR ENTRYFILE
//! blobtool reassemble ENTRYFILE STOREDIR OUTFILE
//! ```

use anyhow::{bail, Context};
use megatorrent::blob::{ingest_file, reassemble, BlobStore};
use megatorrent::id::{decode_hex_array, BlobId};
use megatorrent::manifest::{Chunk, FileEntry, BLOB_LEN};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, file, store, entry_file] if cmd == "ingest" => {
            let store = BlobStore::open(store)?;
            let start = Instant::now();
            let entry = ingest_file(Path::new(file), &store)?;
            report("ingest", entry.size, start);
            save_entry(&entry, Path::new(entry_file))
        }
        [cmd, entry_file, store, out] if cmd == "reassemble" => {
            let entry = load_entry(Path::new(entry_file))?;
            let store = BlobStore::open(store)?;
            let start = Instant::now();
            reassemble(&entry, &store, Path::new(out))?;
            report("reassemble", entry.size, start);
            Ok(())
        }
        _ => bail!(
            "usage: blobtool ingest FILE STOREDIR ENTRYFILE | \
             blobtool reassemble ENTRYFILE STOREDIR OUTFILE"
        ),
    }
}

fn report(what: &str, bytes: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{what}: {mib:.0} MiB in {secs:.2} s = {:.0} MiB/s",
        mib / secs
    );
}

/// First line: size and name; then `blob_id key nonce real_size` per chunk, in hex.
fn save_entry(entry: &FileEntry, path: &Path) -> anyhow::Result<()> {
    let mut text = format!("{} {}\n", entry.size, entry.name);
    for c in &entry.chunks {
        text += &format!(
            "{} {} {} {}\n",
            c.blob_id,
            hex::encode(c.key),
            hex::encode(c.nonce),
            c.real_size
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn load_entry(path: &Path) -> anyhow::Result<FileEntry> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let (size, name) = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .context("entry file: missing header line")?;
    let mut chunks = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let [id, key, nonce, real] = f.as_slice() else {
            bail!("entry file: bad chunk line {line:?}");
        };
        chunks.push(Chunk {
            blob_id: BlobId::from_hex(id)?,
            offset: 0,
            length: BLOB_LEN as u64,
            key: decode_hex_array(key)?,
            nonce: decode_hex_array(nonce)?,
            real_size: real.parse()?,
        });
    }
    Ok(FileEntry {
        name: name.to_owned(),
        path: Vec::new(),
        size: size.parse()?,
        chunks,
    })
}

/// Owner-only permissions where the platform has them.
trait Private {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Private for std::fs::OpenOptions {
    #[cfg(unix)]
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
    #[cfg(not(unix))]
    fn mode_0600(&mut self) -> &mut Self {
        self
    }
}
