//! The manifest data model (PROTOCOL.md 2.1): collections of files, each file a list of chunks.

use super::error::ManifestError;
use super::fields::{join, parse_json, Fields};
use super::json::{write_str, ObjectWriter, MAX_SAFE_INTEGER};
use crate::id::BlobId;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use zeroize::{Zeroize, Zeroizing};

/// Plaintext bytes per chunk: files are cut into 1 MiB pieces.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Bytes of every blob: a padded 1 MiB chunk plus the 16-byte Poly1305 tag.
pub const BLOB_LEN: usize = CHUNK_SIZE + 16;
/// Most folders a file's `path` may list (extension, PROTOCOL.md 2.1).
pub const MAX_PATH_COMPONENTS: usize = 32;
/// Longest `path`, its folders joined with `/`, in bytes (extension, PROTOCOL.md 2.1).
pub const MAX_PATH_LEN: usize = 4096;

/// One encrypted 1 MiB piece of a file, stored as a blob.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    /// SHA-256 of the blob.
    pub blob_id: BlobId,
    /// Offset inside the blob; always 0 in protocol v5.
    pub offset: u64,
    /// Length of the blob; always [`BLOB_LEN`] in protocol v5.
    pub length: u64,
    /// ChaCha20-Poly1305 key of this chunk.
    pub key: [u8; 32],
    /// ChaCha20-Poly1305 nonce of this chunk.
    pub nonce: [u8; 12],
    /// Bytes of file content in this chunk (the rest is padding).
    pub real_size: u64,
}

impl fmt::Debug for Chunk {
    // The chunk key decrypts content: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("blob_id", &self.blob_id)
            .field("offset", &self.offset)
            .field("length", &self.length)
            .field("real_size", &self.real_size)
            .finish_non_exhaustive()
    }
}

/// A file of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// File name (never a path).
    pub name: String,
    /// The folders, outermost first, under which the file lives; empty for none (extension,
    /// PROTOCOL.md 2.1: written as `"path"` only when non-empty). Each is validated like a
    /// file name.
    pub path: Vec<String>,
    /// File size in bytes: the sum of the chunks' `real_size`.
    pub size: u64,
    /// The file's chunks, in order.
    pub chunks: Vec<Chunk>,
}

/// A titled group of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Title shown to users.
    pub title: String,
    /// Files of the collection.
    pub items: Vec<FileEntry>,
}

impl Drop for Chunk {
    // The chunk key decrypts content (of a private manifest, content nobody else may read).
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// What a manifest describes: its collections and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestContent {
    /// The collections, in order.
    pub collections: Vec<Collection>,
    /// Milliseconds since the Unix epoch (at most 2^53 - 1).
    pub timestamp: u64,
}

impl ManifestContent {
    /// Check the rules of PROTOCOL.md 2.4 for every file, and the timestamp range.
    /// Also refuse two different files on one path, and a file where another file needs a
    /// folder (files of every collection go into one folder tree).
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_safe_integer("timestamp", self.timestamp)?;
        for (c, collection) in self.collections.iter().enumerate() {
            for (i, item) in collection.items.iter().enumerate() {
                item.validate_at(&format!("collections[{c}].items[{i}]"))?;
            }
        }
        check_tree(&self.collections)
    }

    /// Write the value of `"collections"`: the collections as a JSON array of sorted objects.
    pub(crate) fn write_collections(&self, out: &mut String) {
        out.push('[');
        for (i, collection) in self.collections.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            collection.write_json(out);
        }
        out.push(']');
    }

    /// Write `{"collections":[..],"timestamp":T}`, keys sorted at every level: the plaintext
    /// of a private manifest (PROTOCOL.md 2.2).
    pub(crate) fn write_object(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        self.write_collections(object.key("collections"));
        object.uint("timestamp", self.timestamp);
        object.finish();
    }

    /// Read `collections` and `timestamp` from a manifest (or decrypted) object and validate.
    pub(crate) fn from_object(fields: &Fields<'_>) -> Result<Self, ManifestError> {
        let collections = fields
            .array("collections")?
            .iter()
            .enumerate()
            .map(|(i, v)| Collection::from_value(v, &fields.child(&format!("collections[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp = fields.uint("timestamp")?;
        check_tree(&collections)?;
        Ok(ManifestContent {
            collections,
            timestamp,
        })
    }
}

/// Where entry `i` of collection `c` sits, for errors.
fn entry_field(c: usize, i: usize) -> String {
    format!("collections[{c}].items[{i}]")
}

/// Check that the files of all collections make one consistent tree: no two different files
/// on one path (the same entry listed twice, e.g. in two collections, is one file), and no
/// file where another entry needs a folder. Folders are interned as (parent, name) pairs, so
/// the work and memory stay proportional to the number of path components, whatever their
/// length.
fn check_tree(collections: &[Collection]) -> Result<(), ManifestError> {
    type Key<'a> = (usize, &'a str);
    // Folder id 0 is the download folder itself; each folder remembers an entry inside it.
    let mut folders: HashMap<Key<'_>, (usize, (usize, usize))> = HashMap::new();
    let mut files: HashMap<Key<'_>, (usize, usize)> = HashMap::new();
    for (c, collection) in collections.iter().enumerate() {
        for (i, entry) in collection.items.iter().enumerate() {
            let mut parent = 0usize;
            for (depth, dir) in entry.path.iter().enumerate() {
                let key = (parent, dir.as_str());
                if let Some(&(fc, fi)) = files.get(&key) {
                    return Err(ManifestError::FileFolderConflict {
                        path: entry.path[..=depth].join("/"),
                        file: entry_field(fc, fi),
                        inside: entry_field(c, i),
                    });
                }
                let next = folders.len() + 1;
                parent = folders.entry(key).or_insert((next, (c, i))).0;
            }
            let key = (parent, entry.name.as_str());
            if let Some(&(_, (fc, fi))) = folders.get(&key) {
                return Err(ManifestError::FileFolderConflict {
                    path: entry.path_string(),
                    file: entry_field(c, i),
                    inside: entry_field(fc, fi),
                });
            }
            match files.get(&key) {
                Some(&(fc, fi)) if collections[fc].items[fi] != *entry => {
                    return Err(ManifestError::PathCollision {
                        path: entry.path_string(),
                        first: entry_field(fc, fi),
                        second: entry_field(c, i),
                    });
                }
                Some(_) => {}
                None => {
                    files.insert(key, (c, i));
                }
            }
        }
    }
    Ok(())
}

impl Collection {
    fn write_json(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        let items = object.key("items");
        items.push('[');
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                items.push(',');
            }
            item.write_json(items);
        }
        items.push(']');
        object.str("title", &self.title);
        object.finish();
    }

    fn from_value(value: &Value, path: &str) -> Result<Self, ManifestError> {
        let fields = Fields::of(value, path)?;
        let title = fields.string("title")?.to_owned();
        let items = fields
            .array("items")?
            .iter()
            .enumerate()
            .map(|(i, v)| FileEntry::from_value(v, &fields.child(&format!("items[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Collection { title, items })
    }
}

impl FileEntry {
    /// The file's path relative to the download folder: its `path` folders, then its name.
    /// Safe to join onto a folder only for a validated entry ([`validate`](Self::validate);
    /// every entry of a verified manifest is): then every component is one plain name.
    pub fn relative_path(&self) -> PathBuf {
        self.path
            .iter()
            .chain(std::iter::once(&self.name))
            .collect()
    }

    /// [`relative_path`](Self::relative_path) as text, components joined with `/` on every
    /// platform (for display and messages).
    pub fn path_string(&self) -> String {
        let mut out = String::new();
        for dir in &self.path {
            out.push_str(dir);
            out.push('/');
        }
        out.push_str(&self.name);
        out
    }

    /// The entry as compact JSON with keys sorted at every level (`chunks`, `name`, then `path`
    /// when there are folders, `size`), as in
    /// the manifests we create, strings escaped as JavaScript's `JSON.stringify` escapes them.
    /// This is what `ingest` prints.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + 260 * self.chunks.len());
        self.write_json(&mut out);
        out
    }

    /// Parse and [`validate`](Self::validate) one entry (surrounding whitespace allowed;
    /// duplicate keys refused). Field paths in errors are relative to the entry.
    pub fn from_json(text: &str) -> Result<FileEntry, ManifestError> {
        let value = parse_json(text.as_bytes())?;
        let entry = FileEntry::from_value(&value, "")?;
        Ok(entry)
    }

    /// Check PROTOCOL.md 2.4 for this file: a safe name, safe `path` folders (at most
    /// [`MAX_PATH_COMPONENTS`], at most [`MAX_PATH_LEN`] bytes joined with `/`), chunks of
    /// `offset` 0, `length` 1048592 and `realSize` at most 1048576, whose `realSize` values add
    /// up to `size`.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.validate_at("")
    }

    pub(crate) fn validate_at(&self, path: &str) -> Result<(), ManifestError> {
        check_file_name(&join(path, "name"), &self.name)?;
        self.check_path(path)?;
        check_safe_integer(&join(path, "size"), self.size)?;
        let mut sum: u64 = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            let at = join(path, &format!("chunks[{i}]"));
            if chunk.offset != 0 {
                return Err(ManifestError::BadOffset {
                    field: join(&at, "offset"),
                    offset: chunk.offset,
                });
            }
            if chunk.length != BLOB_LEN as u64 {
                return Err(ManifestError::BadLength {
                    field: join(&at, "length"),
                    length: chunk.length,
                });
            }
            if chunk.real_size > CHUNK_SIZE as u64 {
                return Err(ManifestError::ChunkTooLarge {
                    field: join(&at, "realSize"),
                    real_size: chunk.real_size,
                });
            }
            // Each term is at most 2^20, so the sum cannot overflow before 2^44 chunks.
            sum = sum.saturating_add(chunk.real_size);
        }
        if sum != self.size {
            return Err(ManifestError::SizeMismatch {
                field: path.to_owned(),
                name: self.name.clone(),
                size: self.size,
                sum,
            });
        }
        Ok(())
    }

    fn check_path(&self, path: &str) -> Result<(), ManifestError> {
        if self.path.len() > MAX_PATH_COMPONENTS {
            return Err(ManifestError::PathTooDeep {
                field: join(path, "path"),
                count: self.path.len(),
                max: MAX_PATH_COMPONENTS,
            });
        }
        for (i, dir) in self.path.iter().enumerate() {
            if let Some(reason) = unsafe_file_name_reason(dir) {
                return Err(ManifestError::UnsafePathComponent {
                    field: join(path, &format!("path[{i}]")),
                    component: dir.clone(),
                    reason,
                });
            }
        }
        let len =
            self.path.iter().map(String::len).sum::<usize>() + self.path.len().saturating_sub(1);
        if len > MAX_PATH_LEN {
            return Err(ManifestError::PathTooLong {
                field: join(path, "path"),
                len,
                max: MAX_PATH_LEN,
            });
        }
        Ok(())
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        let chunks = object.key("chunks");
        chunks.push('[');
        for (i, chunk) in self.chunks.iter().enumerate() {
            if i > 0 {
                chunks.push(',');
            }
            chunk.write_json(chunks);
        }
        chunks.push(']');
        object.str("name", &self.name);
        if !self.path.is_empty() {
            let dirs = object.key("path");
            dirs.push('[');
            for (i, dir) in self.path.iter().enumerate() {
                if i > 0 {
                    dirs.push(',');
                }
                write_str(dirs, dir);
            }
            dirs.push(']');
        }
        object.uint("size", self.size);
        object.finish();
    }

    fn from_value(value: &Value, path: &str) -> Result<Self, ManifestError> {
        let fields = Fields::of(value, path)?;
        let name = fields.string("name")?.to_owned();
        let dirs = match fields.map.get("path") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ManifestError::WrongType {
                        field: fields.child("path"),
                        expected: "an array of strings",
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(ManifestError::WrongType {
                    field: fields.child("path"),
                    expected: "an array of strings",
                })
            }
        };
        let size = fields.uint("size")?;
        let chunks = fields
            .array("chunks")?
            .iter()
            .enumerate()
            .map(|(i, v)| Chunk::from_value(v, &fields.child(&format!("chunks[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = FileEntry {
            name,
            path: dirs,
            size,
            chunks,
        };
        entry.validate_at(path)?;
        Ok(entry)
    }
}

impl Chunk {
    fn write_json(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        object.str("blobId", &self.blob_id.to_hex());
        object.str("key", &Zeroizing::new(hex::encode(self.key)));
        object.uint("length", self.length);
        object.str("nonce", &hex::encode(self.nonce));
        object.uint("offset", self.offset);
        object.uint("realSize", self.real_size);
        object.finish();
    }

    fn from_value(value: &Value, path: &str) -> Result<Self, ManifestError> {
        let fields = Fields::of(value, path)?;
        Ok(Chunk {
            blob_id: BlobId::from_bytes(fields.hex::<32>("blobId")?),
            offset: fields.uint("offset")?,
            length: fields.uint("length")?,
            key: fields.hex::<32>("key")?,
            nonce: fields.hex::<12>("nonce")?,
            real_size: fields.uint("realSize")?,
        })
    }
}

/// Why `name` is not a safe file name (PROTOCOL.md 2.4), or `None` when it is one: non-empty,
/// no `/`, `\` or NUL, and not `.` or `..`. A file name is never a path.
pub fn unsafe_file_name_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." {
        Some("a directory reference")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains('\\') {
        Some("contains '\\'")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else {
        None
    }
}

fn check_file_name(field: &str, name: &str) -> Result<(), ManifestError> {
    match unsafe_file_name_reason(name) {
        None => Ok(()),
        Some(reason) => Err(ManifestError::UnsafeFileName {
            field: field.to_owned(),
            name: name.to_owned(),
            reason,
        }),
    }
}

fn check_safe_integer(field: &str, value: u64) -> Result<(), ManifestError> {
    if value > MAX_SAFE_INTEGER {
        return Err(ManifestError::NumberOutOfRange {
            field: field.to_owned(),
            value: value.to_string(),
        });
    }
    Ok(())
}
