//! Typed access to the fields of a parsed JSON object, with errors that name the field's path.

use super::error::ManifestError;
use super::json::{parse_strict, ParseError, MAX_SAFE_INTEGER};
use crate::id::{decode_hex_array, decode_hex_vec, HexError};

use serde_json::{Map, Value};

/// Parse a JSON text strictly (received order kept, duplicate keys refused).
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ManifestError> {
    parse_strict(bytes).map_err(|e| match e {
        ParseError::Syntax(msg) => ManifestError::BadJson(msg),
        ParseError::DuplicateKey(key) => ManifestError::DuplicateKey(key),
    })
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// An object and where it sits in the document.
pub(crate) struct Fields<'a> {
    pub(crate) map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    /// `value` must be an object; `path` names it in errors (`""` for the document itself).
    pub(crate) fn of(value: &'a Value, path: &'a str) -> Result<Self, ManifestError> {
        match value {
            Value::Object(map) => Ok(Fields { map, path }),
            _ => Err(ManifestError::WrongType {
                field: if path.is_empty() {
                    "(document)".to_owned()
                } else {
                    path.to_owned()
                },
                expected: "an object",
            }),
        }
    }

    /// Path of a child element, for nested objects.
    pub(crate) fn child(&self, key: &str) -> String {
        join(self.path, key)
    }

    pub(crate) fn get(&self, key: &str) -> Result<&'a Value, ManifestError> {
        self.map
            .get(key)
            .ok_or_else(|| ManifestError::MissingField(self.child(key)))
    }

    fn wrong_type(&self, key: &str, expected: &'static str) -> ManifestError {
        ManifestError::WrongType {
            field: self.child(key),
            expected,
        }
    }

    pub(crate) fn string(&self, key: &str) -> Result<&'a str, ManifestError> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.wrong_type(key, "a string"))
    }

    pub(crate) fn array(&self, key: &str) -> Result<&'a Vec<Value>, ManifestError> {
        self.get(key)?
            .as_array()
            .ok_or_else(|| self.wrong_type(key, "an array"))
    }

    /// An integer literal in 0..=2^53-1 (`1.0`, `1e3` and strings are not integers).
    pub(crate) fn uint(&self, key: &str) -> Result<u64, ManifestError> {
        match integer(self.get(key)?) {
            Integer::Other => Err(self.wrong_type(key, "an integer")),
            Integer::Value(v) if v <= MAX_SAFE_INTEGER => Ok(v),
            Integer::Value(v) => Err(self.out_of_range(key, v.to_string())),
            Integer::Negative(v) => Err(self.out_of_range(key, v.to_string())),
        }
    }

    fn out_of_range(&self, key: &str, value: String) -> ManifestError {
        ManifestError::NumberOutOfRange {
            field: self.child(key),
            value,
        }
    }

    /// The `sequence`: an integer literal in 1..=2^53-1.
    pub(crate) fn sequence(&self, key: &str) -> Result<u64, ManifestError> {
        match integer(self.get(key)?) {
            Integer::Other => Err(self.wrong_type(key, "an integer")),
            Integer::Value(v) if (1..=MAX_SAFE_INTEGER).contains(&v) => Ok(v),
            Integer::Value(v) => Err(ManifestError::SequenceOutOfRange {
                value: v.to_string(),
            }),
            Integer::Negative(v) => Err(ManifestError::SequenceOutOfRange {
                value: v.to_string(),
            }),
        }
    }

    /// Exactly `2 * N` lowercase hex characters.
    pub(crate) fn hex<const N: usize>(&self, key: &str) -> Result<[u8; N], ManifestError> {
        let s = self.string(key)?;
        decode_hex_array::<N>(s).map_err(|e| self.hex_error(key, e))
    }

    /// Lowercase hex of any even length.
    pub(crate) fn hex_vec(&self, key: &str) -> Result<Vec<u8>, ManifestError> {
        let s = self.string(key)?;
        // An odd length is malformed hex rather than a wrong length: there is no fixed length.
        decode_hex_vec(s).map_err(|_| ManifestError::BadHex {
            field: self.child(key),
        })
    }

    fn hex_error(&self, key: &str, e: HexError) -> ManifestError {
        match e {
            HexError::Length { expected, got } => ManifestError::HexLength {
                field: self.child(key),
                expected,
                found: got,
            },
            _ => ManifestError::BadHex {
                field: self.child(key),
            },
        }
    }
}

enum Integer {
    Other,
    Value(u64),
    Negative(i64),
}

fn integer(value: &Value) -> Integer {
    match value {
        // serde_json keeps integer literals as u64/i64 and anything with a fraction or an
        // exponent (or beyond 64 bits) as f64: only the former are integers here.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Integer::Value(u),
            (None, Some(i)) => Integer::Negative(i),
            _ => Integer::Other,
        },
        _ => Integer::Other,
    }
}
