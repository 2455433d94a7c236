//! Where a downloaded file goes: its `path` folders and name under the download folder, never
//! outside it.

use crate::blob::BlobError;
use crate::manifest::FileEntry;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The final path of `entry` under `dir`, with its folders created.
///
/// Every folder and the name must be one plain component on this platform (validation already
/// refuses `/`, `\`, `.`, `..` and NUL; this also refuses what only Windows reads as a path,
/// such as a drive prefix `C:`). Folders are created one by one below `dir` and never
/// followed when they are symbolic links (or anything but a folder): a link planted inside the
/// download folder cannot send a file elsewhere. `dir` itself is the user's choice and may be
/// a link.
pub fn destination(dir: &Path, entry: &FileEntry) -> Result<PathBuf, BlobError> {
    let mut at = dir.to_path_buf();
    for folder in &entry.path {
        at.push(plain(folder)?);
        ensure_folder(&at)?;
    }
    at.push(plain(&entry.name)?);
    Ok(at)
}

fn plain(name: &str) -> Result<&Path, BlobError> {
    let path = Path::new(name);
    let mut components = path.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(c)), None) if c == path.as_os_str() => Ok(path),
        _ => Err(BlobError::UnsafeName {
            name: name.to_owned(),
            reason: "not a plain name on this platform",
        }),
    }
}

/// `path` is a real folder (not a link to one), made now if absent.
fn ensure_folder(path: &Path) -> Result<(), BlobError> {
    // Two files of one download may create the same folder at once: AlreadyExists is
    // checked again, not trusted.
    for _ in 0..2 {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(meta) => {
                return Err(BlobError::NotAFolder {
                    path: path.to_owned(),
                    found: if meta.file_type().is_symlink() {
                        "a symbolic link"
                    } else {
                        "a file"
                    },
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => match std::fs::create_dir(path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(BlobError::Io {
                        path: path.to_owned(),
                        source,
                    })
                }
            },
            Err(source) => {
                return Err(BlobError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    Err(BlobError::Io {
        path: path.to_owned(),
        source: ErrorKind::AlreadyExists.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &[&str], name: &str) -> FileEntry {
        FileEntry {
            name: name.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
            size: 0,
            chunks: Vec::new(),
        }
    }

    #[test]
    fn creates_folders_and_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let dest = destination(dir.path(), &entry(&["a", "b"], "f")).unwrap();
        assert_eq!(dest, dir.path().join("a").join("b").join("f"));
        assert!(dir.path().join("a/b").is_dir());
        // Again: existing folders are fine.
        assert_eq!(
            destination(dir.path(), &entry(&["a", "b"], "f")).unwrap(),
            dest
        );
        assert_eq!(
            destination(dir.path(), &entry(&[], "g")).unwrap(),
            dir.path().join("g")
        );
    }

    #[test]
    fn refuses_files_and_links_where_a_folder_goes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(matches!(
            destination(dir.path(), &entry(&["file"], "f")),
            Err(BlobError::NotAFolder {
                found: "a file",
                ..
            })
        ));
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
            assert!(matches!(
                destination(dir.path(), &entry(&["link"], "f")),
                Err(BlobError::NotAFolder {
                    found: "a symbolic link",
                    ..
                })
            ));
            std::fs::create_dir(dir.path().join("real")).unwrap();
            std::os::unix::fs::symlink(outside.path(), dir.path().join("real/deeper")).unwrap();
            assert!(matches!(
                destination(dir.path(), &entry(&["real", "deeper", "x"], "f")),
                Err(BlobError::NotAFolder { .. })
            ));
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn refuses_what_is_not_one_plain_component() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["..", ".", "", "a/b", "/abs"] {
            assert!(
                matches!(
                    destination(dir.path(), &entry(&[bad], "f")),
                    Err(BlobError::UnsafeName { .. })
                ),
                "{bad:?}"
            );
            assert!(matches!(
                destination(dir.path(), &entry(&[], bad)),
                Err(BlobError::UnsafeName { .. })
            ));
        }
        #[cfg(windows)]
        for bad in ["C:", "a\\b", "\\\\server"] {
            assert!(destination(dir.path(), &entry(&[bad], "f")).is_err());
        }
    }
}
