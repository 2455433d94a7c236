//! The one way a user's file is written: [`OutFile`], shared by [`reassemble`] and the
//! downloader.
//!
//! Content goes to a temporary file in the destination's folder (an ordinary file: mode 0666
//! less the umask, like any file a program creates), which is synced and renamed to the final
//! name only once it is complete, and the folder is synced after the rename, so a crash leaves
//! either the old file or the whole new one. A temporary file that is never committed (an
//! error, a cancelled download) is removed when the [`OutFile`] is dropped.
//!
//! [`reassemble`]: crate::blob::reassemble

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::blob::BlobError;

/// Temporary files are named `.megatorrent-XXXXXX.part`: hidden, and recognizable as ours.
pub const TEMP_PREFIX: &str = ".megatorrent-";
/// See [`TEMP_PREFIX`].
pub const TEMP_SUFFIX: &str = ".part";

/// What to do when the destination already exists at commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Replace it (atomically).
    Always,
    /// Keep it: identical content is fine (the temporary file is dropped and the existing
    /// file left untouched), different content is [`BlobError::DestinationExists`].
    Never,
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The new content is in place under the final name.
    Written,
    /// A file with exactly this content was already there and was left untouched.
    Unchanged,
}

/// A file being written to `dest`, atomically. See the module documentation.
#[derive(Debug)]
pub struct OutFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The folder `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl OutFile {
    /// Start writing `dest`: a temporary file next to it (its folder must exist).
    pub fn create(dest: &Path) -> Result<Self, BlobError> {
        let dir = parent_of(dest);
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
        // An ordinary file: 0666 less the umask, rather than the owner-only mode temporary
        // files get by default.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(dir).map_err(io(dir))?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file, to write to (sequentially or with [`OutFile::write_at`]).
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Write all of `buf` at `offset`, without moving a shared cursor: several threads may
    /// write different parts at once through clones of [`OutFile::file`].
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), BlobError> {
        write_at(self.tmp.as_file(), buf, offset).map_err(io(&self.dest))
    }

    /// Append `buf` at the file's cursor.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<(), BlobError> {
        std::io::Write::write_all(self.tmp.as_file_mut(), buf).map_err(io(&self.dest))
    }

    /// Check the length is `size`, sync, and move the file into place as `replace` says;
    /// then sync the folder so the rename itself survives a crash.
    pub fn commit(self, size: u64, replace: Replace) -> Result<Committed, BlobError> {
        let dest = self.dest;
        let len = self.tmp.as_file().metadata().map_err(io(&dest))?.len();
        if len != size {
            return Err(BlobError::SizeMismatch {
                name: dest.display().to_string(),
                declared: size,
                actual: len,
            });
        }
        // Sync before the rename, so a crash cannot leave a short file under the final name.
        self.tmp.as_file().sync_all().map_err(io(&dest))?;
        let committed = match replace {
            Replace::Always => {
                self.tmp.persist(&dest).map_err(|e| io(&dest)(e.error))?;
                Committed::Written
            }
            // No-clobber rename: a file that appears at `dest` meanwhile is never replaced.
            Replace::Never => match self.tmp.persist_noclobber(&dest) {
                Ok(_) => Committed::Written,
                Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                    if same_content(e.file.path(), &dest).map_err(io(&dest))? {
                        // Dropping `e` removes the temporary file.
                        Committed::Unchanged
                    } else {
                        return Err(BlobError::DestinationExists { path: dest });
                    }
                }
                Err(e) => return Err(io(&dest)(e.error)),
            },
        };
        if committed == Committed::Written {
            sync_dir(parent_of(&dest)).map_err(io(&dest))?;
        }
        Ok(committed)
    }
}

/// Make the entry of a file just renamed into `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows has no folder handle to sync; its renames are journaled by NTFS.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// True when the files at `a` and `b` hold the same bytes.
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Read until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Write all of `buf` at `offset` of `file`.
#[cfg(unix)]
pub(crate) fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Write all of `buf` at `offset` of `file`.
#[cfg(windows)]
pub(crate) fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_at_offsets_and_renames_on_commit_only() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let f = OutFile::create(&dest).unwrap();
        f.write_at(b"world", 5).unwrap();
        f.write_at(b"hello", 0).unwrap();
        assert!(!dest.exists());
        assert_eq!(f.commit(10, Replace::Never).unwrap(), Committed::Written);
        assert_eq!(std::fs::read(&dest).unwrap(), b"helloworld");
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[cfg(unix)]
    #[test]
    fn follows_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // What the umask makes of an ordinary new file, whatever the umask is here.
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let expected = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        let dest = dir.path().join("f");
        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"x").unwrap();
        f.commit(1, Replace::Always).unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, expected);
    }

    #[test]
    fn never_replaces_different_content_but_accepts_identical() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        std::fs::write(&dest, b"mine").unwrap();
        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"them").unwrap();
        assert!(matches!(
            f.commit(4, Replace::Never),
            Err(BlobError::DestinationExists { path }) if path == dest
        ));
        assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
        assert_eq!(names(dir.path()), ["f"], "no temporary file left");

        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"mine").unwrap();
        assert_eq!(f.commit(4, Replace::Never).unwrap(), Committed::Unchanged);
        assert_eq!(names(dir.path()), ["f"]);

        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"them").unwrap();
        assert_eq!(f.commit(4, Replace::Always).unwrap(), Committed::Written);
        assert_eq!(std::fs::read(&dest).unwrap(), b"them");
    }

    #[test]
    fn wrong_length_or_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"abc").unwrap();
        assert!(matches!(
            f.commit(4, Replace::Always),
            Err(BlobError::SizeMismatch { .. })
        ));
        let f = OutFile::create(&dest).unwrap();
        f.write_at(b"abc", 0).unwrap();
        drop(f);
        assert!(names(dir.path()).is_empty());
    }
}
