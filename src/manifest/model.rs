//! The manifest data model (PROTOCOL.md 2.1): collections of files, each file a list of chunks.

use super::error::ManifestError;
use super::fields::{join, parse_json, Fields};
use super::json::{ObjectWriter, MAX_SAFE_INTEGER};
use crate::id::BlobId;
use serde_json::Value;
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Plaintext bytes per chunk: files are cut into 1 MiB pieces.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Bytes of every blob: a padded 1 MiB chunk plus the 16-byte Poly1305 tag.
pub const BLOB_LEN: usize = CHUNK_SIZE + 16;

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
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_safe_integer("timestamp", self.timestamp)?;
        for (c, collection) in self.collections.iter().enumerate() {
            for (i, item) in collection.items.iter().enumerate() {
                item.validate_at(&format!("collections[{c}].items[{i}]"))?;
            }
        }
        Ok(())
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
        Ok(ManifestContent {
            collections,
            timestamp,
        })
    }
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
    /// The entry as compact JSON with keys sorted at every level (`chunks`, `name`, `size`), as in
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

    /// Check PROTOCOL.md 2.4 for this file: a safe name, chunks of `offset` 0, `length`
    /// 1048592 and `realSize` at most 1048576, whose `realSize` values add up to `size`.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.validate_at("")
    }

    pub(crate) fn validate_at(&self, path: &str) -> Result<(), ManifestError> {
        check_file_name(&join(path, "name"), &self.name)?;
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
        object.uint("size", self.size);
        object.finish();
    }

    fn from_value(value: &Value, path: &str) -> Result<Self, ManifestError> {
        let fields = Fields::of(value, path)?;
        let name = fields.string("name")?.to_owned();
        let size = fields.uint("size")?;
        let chunks = fields
            .array("chunks")?
            .iter()
            .enumerate()
            .map(|(i, v)| Chunk::from_value(v, &fields.child(&format!("chunks[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = FileEntry { name, size, chunks };
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
