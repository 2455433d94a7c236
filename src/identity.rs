//! Ed25519 identities (PROTOCOL.md section 1) and their files.
//!
//! The secret is the 32-byte Ed25519 seed. A libsodium 64-byte secret key (`seed || public`) is
//! accepted wherever a secret is read, after checking that its second half is the public key of
//! its first half. The secret is zeroized when the identity is dropped and never printed.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use crate::id::{decode_hex_array, decode_hex_vec, HexError};

/// Why an identity could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the identity file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The identity file already exists; it is never overwritten (that would lose a key).
    #[error("identity file {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The identity file is not the expected JSON object.
    #[error("identity file is not valid JSON {{\"publicKey\",\"secretKey\"}}: {0}")]
    Json(String),
    /// A key is not hex of the right length.
    #[error("{field}: {source}")]
    Hex {
        /// Which key.
        field: &'static str,
        /// What is wrong with it.
        source: HexError,
    },
    /// A secret key of a length other than 32 (seed) or 64 (libsodium) bytes.
    #[error("secret key must be 32 bytes (seed) or 64 bytes (libsodium), got {0} bytes")]
    SecretLength(usize),
    /// The public half does not belong to the secret.
    #[error("public key does not match the secret key")]
    PublicKeyMismatch,
    /// A public key that is not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    InvalidPublicKey,
}

/// An Ed25519 key pair: who signs a channel.
#[derive(Clone)]
pub struct Identity {
    // SigningKey zeroizes itself on drop (ed25519-dalek's `zeroize` feature).
    signing: SigningKey,
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    #[serde(rename = "publicKey")]
    public_key: String,
    #[serde(rename = "secretKey")]
    secret_key: Zeroizing<String>,
}

impl Identity {
    /// A new random identity from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut crate::rng::os_rng()),
        }
    }

    /// The identity whose seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// From a 32-byte seed or a 64-byte libsodium secret key (whose public half is checked).
    pub fn from_secret_bytes(secret: &[u8]) -> Result<Self, IdentityError> {
        match secret.len() {
            32 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                seed.copy_from_slice(secret);
                Ok(Self::from_seed(&seed))
            }
            64 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                seed.copy_from_slice(&secret[..32]);
                let id = Self::from_seed(&seed);
                if id.public_key_bytes()[..] != secret[32..] {
                    return Err(IdentityError::PublicKeyMismatch);
                }
                Ok(id)
            }
            n => Err(IdentityError::SecretLength(n)),
        }
    }

    /// From the hex of a 32-byte seed or a 64-byte libsodium secret key.
    pub fn from_secret_hex(secret_hex: &str) -> Result<Self, IdentityError> {
        if secret_hex.len() != 64 && secret_hex.len() != 128 {
            return Err(IdentityError::SecretLength(secret_hex.len() / 2));
        }
        let bytes =
            Zeroizing::new(
                decode_hex_vec(secret_hex).map_err(|source| IdentityError::Hex {
                    field: "secretKey",
                    source,
                })?,
            );
        Self::from_secret_bytes(&bytes)
    }

    /// The public key, 32 bytes.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key as 64 lowercase hex characters.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key_bytes())
    }

    /// The verifying half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The dalek signing key, for crates (such as `mainline`) that sign with it directly.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Sign `message` (deterministic Ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Read an identity file (PROTOCOL.md section 1).
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| IdentityError::Io {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Self::from_json(&text)
    }

    /// Parse the identity file's JSON text.
    pub fn from_json(text: &str) -> Result<Self, IdentityError> {
        let file: IdentityFile =
            serde_json::from_str(text).map_err(|e| IdentityError::Json(e.to_string()))?;
        let id = Self::from_secret_hex(&file.secret_key)?;
        let public =
            decode_hex_array::<32>(&file.public_key).map_err(|source| IdentityError::Hex {
                field: "publicKey",
                source,
            })?;
        if public != id.public_key_bytes() {
            return Err(IdentityError::PublicKeyMismatch);
        }
        Ok(id)
    }

    /// Write the identity file with mode 0600, atomically, never over an existing file.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        let io_err = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        let file = IdentityFile {
            public_key: self.public_key_hex(),
            secret_key: Zeroizing::new(hex::encode(self.signing.to_bytes())),
        };
        let mut text = Zeroizing::new(
            serde_json::to_string(&file).map_err(|e| IdentityError::Json(e.to_string()))?,
        );
        text.push('\n');
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // tempfile creates the file with mode 0600 on Unix, so the secret is never world-readable.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        tmp.write_all(text.as_bytes()).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                IdentityError::Exists(path.to_owned())
            } else {
                io_err(e.error)
            }
        })?;
        Ok(())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

/// Check an Ed25519 signature by `public_key` over `message`.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    // verify_strict refuses small-order keys and malleable signatures, as libsodium does.
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_libsodium_forms_agree() {
        let seed = [1u8; 32];
        let id = Identity::from_seed(&seed);
        assert_eq!(
            id.public_key_hex(),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        let mut sodium = seed.to_vec();
        sodium.extend_from_slice(&id.public_key_bytes());
        let id2 = Identity::from_secret_bytes(&sodium).unwrap();
        assert_eq!(id2.public_key_bytes(), id.public_key_bytes());
        sodium[40] ^= 1;
        assert!(matches!(
            Identity::from_secret_bytes(&sodium),
            Err(IdentityError::PublicKeyMismatch)
        ));
        assert!(matches!(
            Identity::from_secret_bytes(&[0u8; 31]),
            Err(IdentityError::SecretLength(31))
        ));
    }

    #[test]
    fn debug_hides_secret() {
        let id = Identity::from_seed(&[7u8; 32]);
        let secret_hex = hex::encode([7u8; 32]);
        let dbg = format!("{id:?}");
        assert!(!dbg.contains(&secret_hex));
        assert!(dbg.contains(&id.public_key_hex()));
    }

    #[test]
    fn save_load_mode_and_no_clobber() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let id = Identity::generate();
        id.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Identity::load(&path).unwrap();
        assert_eq!(back.public_key_bytes(), id.public_key_bytes());
        assert!(matches!(
            Identity::generate().save(&path),
            Err(IdentityError::Exists(_))
        ));
        // The existing key was not touched.
        assert_eq!(
            Identity::load(&path).unwrap().public_key_bytes(),
            id.public_key_bytes()
        );
    }

    #[test]
    fn mismatched_public_half_in_file() {
        let id = Identity::from_seed(&[2u8; 32]);
        let other = Identity::from_seed(&[3u8; 32]);
        let text = format!(
            r#"{{"publicKey":"{}","secretKey":"{}"}}"#,
            other.public_key_hex(),
            hex::encode([2u8; 32])
        );
        assert!(matches!(
            Identity::from_json(&text),
            Err(IdentityError::PublicKeyMismatch)
        ));
        let sodium = format!("{}{}", hex::encode([2u8; 32]), other.public_key_hex());
        let text = format!(
            r#"{{"publicKey":"{}","secretKey":"{}"}}"#,
            id.public_key_hex(),
            sodium
        );
        assert!(matches!(
            Identity::from_json(&text),
            Err(IdentityError::PublicKeyMismatch)
        ));
    }
}
