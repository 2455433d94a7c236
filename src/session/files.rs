//! File-system helpers of the session: walking what to publish, content hashes, and the
//! checks that keep a sync inside its save folder.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::FileEntry;

use super::types::SessionError;

/// A file to publish: where it is and its path in the channel (folders, then name).
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub abs: PathBuf,
    pub dirs: Vec<String>,
    pub name: String,
}

impl SourceFile {
    /// `/`-separated path in the channel.
    pub fn channel_path(&self) -> String {
        join_path(&self.dirs, &self.name)
    }
}

pub(crate) fn join_path(dirs: &[String], name: &str) -> String {
    let mut p = dirs.join("/");
    if !p.is_empty() {
        p.push('/');
    }
    p.push_str(name);
    p
}

/// Every file under `paths`: a file is published under its name; a folder's files under
/// their path relative to that folder (the folder is the channel's root). Sorted by path
/// inside each folder; symlinks are not followed (a link could point outside).
pub(crate) fn collect(paths: &[PathBuf]) -> Result<Vec<SourceFile>, SessionError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|source| SessionError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(p, &mut Vec::new(), &mut out)?;
        } else if meta.is_file() {
            out.push(SourceFile {
                abs: p.clone(),
                dirs: Vec::new(),
                name: utf8_name(p)?,
            });
        } else {
            return Err(SessionError::BadPath {
                path: p.clone(),
                reason: "not a regular file or folder".into(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, dirs: &mut Vec<String>, out: &mut Vec<SourceFile>) -> Result<(), SessionError> {
    let io = |source| SessionError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = utf8_name(&path)?;
        let ft = e.file_type().map_err(|source| SessionError::Io {
            path: path.clone(),
            source,
        })?;
        if ft.is_dir() {
            dirs.push(name);
            walk(&path, dirs, out)?;
            dirs.pop();
        } else if ft.is_file() {
            out.push(SourceFile {
                abs: path,
                dirs: dirs.clone(),
                name,
            });
        }
        // Symlinks and special files are skipped: publishing follows no link.
    }
    Ok(())
}

fn utf8_name(p: &Path) -> Result<String, SessionError> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| SessionError::BadPath {
            path: p.to_owned(),
            reason: "no UTF-8 file name".into(),
        })
}

/// SHA-256 of a file's content, hex.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 over an entry's blob ids and sizes: two entries with the same fingerprint have the
/// same content (each blob id is the hash of the sealed chunk).
pub(crate) fn fingerprint(entry: &FileEntry) -> String {
    let mut h = Sha256::new();
    h.update(entry.size.to_le_bytes());
    for c in &entry.chunks {
        h.update(c.blob_id.as_bytes());
        h.update(c.real_size.to_le_bytes());
    }
    hex::encode(h.finalize())
}

/// Modification time in ns since the epoch (0 when unknown).
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The destination of `rel` (a `/`-separated channel path, every component already a valid
/// file name) inside `root`, refusing anything that could leave it.
pub(crate) fn dest_in(root: &Path, rel: &str) -> Result<PathBuf, SessionError> {
    let mut out = root.to_path_buf();
    for part in rel.split('/') {
        let p = Path::new(part);
        let mut comps = p.components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => out.push(part),
            _ => {
                return Err(SessionError::BadPath {
                    path: PathBuf::from(rel),
                    reason: "path leaves the save folder".into(),
                })
            }
        }
    }
    Ok(out)
}

/// True when no component between `root` and `dest`'s parent is a symlink (so writing there
/// cannot land outside the save folder).
pub(crate) fn no_symlink_between(root: &Path, dest: &Path) -> bool {
    let Ok(rel) = dest.strip_prefix(root) else {
        return false;
    };
    let mut p = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        p.push(c);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return false;
        }
    }
    // The file itself must not be a symlink either (we would write through it).
    !std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink())
}

/// Remove the temporary files a killed download left in `dir` and its sub-folders
/// (`.megatorrent-*.part`, the downloader's names). Returns how many.
pub(crate) fn remove_partials(dir: &Path) -> usize {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        match e.file_type() {
            Ok(ft) if ft.is_dir() => n += remove_partials(&e.path()),
            Ok(ft)
                if ft.is_file()
                    && name.starts_with(".megatorrent-")
                    && name.ends_with(".part")
                    && std::fs::remove_file(e.path()).is_ok() =>
            {
                n += 1
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_walks_folders_relative_to_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("c/sub")).unwrap();
        std::fs::write(dir.path().join("c/b.txt"), b"b").unwrap();
        std::fs::write(dir.path().join("c/sub/a.txt"), b"a").unwrap();
        std::fs::write(dir.path().join("top.txt"), b"t").unwrap();
        let files = collect(&[dir.path().join("c"), dir.path().join("top.txt")]).unwrap();
        let paths: Vec<_> = files.iter().map(SourceFile::channel_path).collect();
        assert_eq!(paths, ["b.txt", "sub/a.txt", "top.txt"]);
    }

    #[test]
    fn dest_never_leaves_the_root() {
        let root = Path::new("/save");
        assert_eq!(
            dest_in(root, "a/b.txt").unwrap(),
            Path::new("/save/a/b.txt")
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "", "a//b", "."] {
            assert!(dest_in(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partials_are_removed_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join(".megatorrent-x.part"), b"").unwrap();
        std::fs::write(dir.path().join("s/.megatorrent-y.part"), b"").unwrap();
        std::fs::write(dir.path().join("keep.part"), b"").unwrap();
        assert_eq!(remove_partials(dir.path()), 2);
        assert!(dir.path().join("keep.part").exists());
    }
}
