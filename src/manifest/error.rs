//! Why a manifest (or a file entry, or a read key) was refused.

/// Every reason a manifest is refused (PROTOCOL.md 2.4), named precisely.
///
/// `field` values are paths into the JSON object, such as `collections[0].items[2].chunks[1].key`
/// (relative to the entry for [`FileEntry::from_json`](super::FileEntry::from_json)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The text is not JSON (truncated, trailing garbage, invalid UTF-8, a lone surrogate, ...).
    #[error("not valid JSON: {0}")]
    BadJson(String),
    /// An object holds the same key twice, so its signed text would be ambiguous.
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
    /// The text is larger than [`MAX_MANIFEST_LEN`](super::MAX_MANIFEST_LEN).
    #[error("manifest of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A required key is absent.
    #[error("missing field `{0}`")]
    MissingField(String),
    /// A value has the wrong JSON type (a float or a string where an integer belongs, ...).
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// Path of the field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A hex field does not have its exact length.
    #[error("field `{field}` must be {expected} hex characters, got {found}")]
    HexLength {
        /// Path of the field.
        field: String,
        /// Required number of hex characters.
        expected: usize,
        /// Number received.
        found: usize,
    },
    /// A hex field holds something other than lowercase hex digits (or an odd number of them).
    #[error("field `{field}` is not lowercase hex")]
    BadHex {
        /// Path of the field.
        field: String,
    },
    /// `sequence` is not within 1..=2^53-1.
    #[error("sequence {value} is out of range (1 to 2^53-1)")]
    SequenceOutOfRange {
        /// The received value.
        value: String,
    },
    /// Another integer field is negative or above 2^53-1.
    #[error("field `{field}` = {value} is out of range (0 to 2^53-1)")]
    NumberOutOfRange {
        /// Path of the field.
        field: String,
        /// The received value.
        value: String,
    },
    /// A file name is empty, `.`, `..`, or holds `/`, `\` or NUL: a file name is never a path.
    #[error("unsafe file name {name:?} at `{field}`: {reason}")]
    UnsafeFileName {
        /// Path of the field.
        field: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A folder name of a file's `path` (extension, PROTOCOL.md 2.1) is empty, `.`, `..`, or
    /// holds `/`, `\` or NUL: each component is a single folder name, never a path.
    #[error("unsafe folder name {component:?} at `{field}`: {reason}")]
    UnsafePathComponent {
        /// Path of the component, such as `collections[0].items[1].path[2]`.
        field: String,
        /// The component.
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `path` holds more folders than [`MAX_PATH_COMPONENTS`](super::MAX_PATH_COMPONENTS).
    #[error("field `{field}` holds {count} folders, at most {max} are allowed")]
    PathTooDeep {
        /// Path of the `path` field.
        field: String,
        /// Folders listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The folders and name of a file, joined with `/`, are longer than
    /// [`MAX_PATH_LEN`](super::MAX_PATH_LEN) bytes.
    #[error("file at `{field}`: its path is {len} bytes long, at most {max} are allowed")]
    PathTooLong {
        /// Path of the file entry.
        field: String,
        /// Bytes of `dir/sub/name`.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Two different files would be written to the same path.
    #[error("files at `{first}` and `{second}` both go to {path:?}")]
    PathCollision {
        /// The relative path both files have (`dir/sub/name`).
        path: String,
        /// Path of the first entry.
        first: String,
        /// Path of the second entry.
        second: String,
    },
    /// A file has the path another file needs as a folder (`a` as a file, and `a/b`).
    #[error("file at `{file}` is {path:?}, which the file at `{inside}` needs as a folder")]
    FileFolderConflict {
        /// The path that is both a file and a folder.
        path: String,
        /// Path of the entry that is a file there.
        file: String,
        /// Path of an entry that lives inside that folder.
        inside: String,
    },
    /// A file's chunk `realSize` values do not add up to its `size`.
    #[error("file {name:?} at `{field}`: chunk sizes add up to {sum}, but size is {size}")]
    SizeMismatch {
        /// Path of the file entry.
        field: String,
        /// File name.
        name: String,
        /// Declared size.
        size: u64,
        /// Sum of the chunks' `realSize`.
        sum: u64,
    },
    /// A chunk's `realSize` exceeds 1048576 bytes.
    #[error("field `{field}` = {real_size} exceeds the chunk size of 1048576 bytes")]
    ChunkTooLarge {
        /// Path of the `realSize` field.
        field: String,
        /// The value.
        real_size: u64,
    },
    /// A chunk's `length` is not 1048592.
    #[error("field `{field}` = {length}, must be 1048592")]
    BadLength {
        /// Path of the `length` field.
        field: String,
        /// The value.
        length: u64,
    },
    /// A chunk's `offset` is not 0 (protocol v5 stores one chunk per blob, from its start).
    #[error("field `{field}` = {offset}, must be 0")]
    BadOffset {
        /// Path of the `offset` field.
        field: String,
        /// The value.
        offset: u64,
    },
    /// The signature is not valid for `publicKey` over the received-order or sorted-key text.
    #[error("bad signature: not made by publicKey over this manifest")]
    BadSignature,
    /// The manifest is validly signed, but by another key than the one expected.
    #[error("signed by {found}, expected {expected}")]
    SignerMismatch {
        /// The expected public key (hex).
        expected: String,
        /// The manifest's public key (hex).
        found: String,
    },
    /// A private manifest's `ciphertext` is shorter than the 16-byte authentication tag.
    #[error("ciphertext of {len} bytes is shorter than the 16-byte tag")]
    CiphertextTooShort {
        /// Length in bytes.
        len: usize,
    },
    /// The read key does not open this private manifest (or its ciphertext was altered).
    #[error("wrong read key: the ciphertext does not decrypt")]
    WrongReadKey,
    /// The decrypted content of a private manifest is not UTF-8.
    #[error("decrypted content is not UTF-8")]
    BadPlaintext,
    /// Decryption was asked of a plain manifest.
    #[error("not a private manifest")]
    NotPrivate,
}
