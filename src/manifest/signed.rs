//! Signed manifests: verification (PROTOCOL.md 2.3, 2.4), creation (2.1) and private
//! manifests (2.2).

use super::error::ManifestError;
use super::fields::{parse_json, Fields};
use super::json::{key_cmp, write_str, write_value, KeyOrder, ObjectWriter, MAX_SAFE_INTEGER};
use super::model::ManifestContent;
use super::secretbox::{self, TAG_LEN};
use crate::identity::{verify_signature, Identity};
use serde_json::Value;
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Largest accepted `sequence` (and any other integer): 2^53 - 1, the largest integer
/// JavaScript represents exactly.
pub const MAX_SEQUENCE: u64 = MAX_SAFE_INTEGER;

/// Largest manifest text accepted: the 64 MiB limit of a manifest fetched in parts
/// (PROTOCOL.md 4).
pub const MAX_MANIFEST_LEN: usize = 64 << 20;

/// The 32-byte key that opens private manifests (XSalsa20-Poly1305). Zeroized on drop; its
/// Debug output is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ReadKey([u8; 32]);

impl ReadKey {
    /// Wrap 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ReadKey(bytes)
    }

    /// Parse exactly 64 lowercase hex characters.
    pub fn from_hex(hex: &str) -> Result<Self, ManifestError> {
        crate::id::decode_hex_array::<32>(hex.trim_ascii())
            .map(ReadKey)
            .map_err(|e| match e {
                crate::id::HexError::Length { expected, got } => ManifestError::HexLength {
                    field: "readKey".to_owned(),
                    expected,
                    found: got,
                },
                _ => ManifestError::BadHex {
                    field: "readKey".to_owned(),
                },
            })
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = ReadKey([0; 32]);
        crate::rng::fill(&mut key.0);
        key
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex form (64 characters), zeroized when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }
}

impl fmt::Debug for ReadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadKey(<redacted>)")
    }
}

/// A manifest whose signature has been verified and whose fields have been validated.
/// Immutable: it always matches the text it was verified from (or created as).
#[derive(Clone)]
pub struct SignedManifest {
    text: String,
    public_key: [u8; 32],
    sequence: u64,
    body: Body,
}

#[derive(Clone)]
enum Body {
    Plain(ManifestContent),
    Private {
        nonce: [u8; 24],
        ciphertext: Vec<u8>,
    },
}

impl fmt::Debug for SignedManifest {
    // The text holds chunk keys in hex: it is left out. `ManifestContent` prints no keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SignedManifest");
        d.field("public_key", &self.public_key_hex())
            .field("sequence", &self.sequence)
            .field("len", &self.text.len());
        match &self.body {
            Body::Plain(content) => d.field("content", content),
            Body::Private { ciphertext, .. } => {
                d.field("private_ciphertext_len", &ciphertext.len())
            }
        };
        d.finish()
    }
}

/// Two manifests are equal when their signed texts are (everything else derives from it).
impl PartialEq for SignedManifest {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SignedManifest {}

impl SignedManifest {
    /// Parse, validate (PROTOCOL.md 2.4) and verify (2.3) a manifest. Surrounding ASCII
    /// whitespace is ignored; anything else makes it invalid, with the reason.
    pub fn verify(bytes: &[u8]) -> Result<SignedManifest, ManifestError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge {
                len: trimmed.len(),
                max: MAX_MANIFEST_LEN,
            });
        }
        let value = parse_json(trimmed)?;
        let fields = Fields::of(&value, "")?;
        let public_key = fields.hex::<32>("publicKey")?;
        let sequence = fields.sequence("sequence")?;
        let private = match fields.map.get("encrypted") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => {
                return Err(ManifestError::WrongType {
                    field: "encrypted".to_owned(),
                    expected: "a boolean",
                })
            }
        };
        let body = if private {
            let nonce = fields.hex::<24>("nonce")?;
            let ciphertext = fields.hex_vec("ciphertext")?;
            if ciphertext.len() < TAG_LEN {
                return Err(ManifestError::CiphertextTooShort {
                    len: ciphertext.len(),
                });
            }
            Body::Private { nonce, ciphertext }
        } else {
            Body::Plain(ManifestContent::from_object(&fields)?)
        };
        let signature = fields.hex::<64>("signature")?;
        if !signature_matches(&value, &public_key, &signature) {
            return Err(ManifestError::BadSignature);
        }
        // Parsing already proved the text UTF-8; this conversion only cannot fail.
        let text = String::from_utf8(trimmed.to_vec())
            .map_err(|e| ManifestError::BadJson(e.to_string()))?;
        Ok(SignedManifest {
            text,
            public_key,
            sequence,
            body,
        })
    }

    /// Like [`verify`](Self::verify), and also require that `expected_public_key` signed it
    /// (for a manifest found under that key, e.g. in the DHT).
    pub fn verify_signed_by(
        bytes: &[u8],
        expected_public_key: &[u8; 32],
    ) -> Result<SignedManifest, ManifestError> {
        let manifest = Self::verify(bytes)?;
        if manifest.public_key != *expected_public_key {
            return Err(ManifestError::SignerMismatch {
                expected: hex::encode(expected_public_key),
                found: manifest.public_key_hex(),
            });
        }
        Ok(manifest)
    }

    /// The exact signed JSON text: the received text without surrounding whitespace, or the
    /// text as created.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// [`as_bytes`](Self::as_bytes) as a string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signer's Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The signer's public key as 64 lowercase hex characters.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key)
    }

    /// The sequence number (1 to 2^53-1).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// True for a private (encrypted) manifest.
    pub fn is_private(&self) -> bool {
        matches!(self.body, Body::Private { .. })
    }

    /// The content of a plain manifest; `None` for a private one (see [`decrypt`](Self::decrypt)).
    pub fn content(&self) -> Option<&ManifestContent> {
        match &self.body {
            Body::Plain(content) => Some(content),
            Body::Private { .. } => None,
        }
    }

    /// Decrypt a private manifest and validate its content like a plain manifest's.
    pub fn decrypt(&self, key: &ReadKey) -> Result<ManifestContent, ManifestError> {
        let value = self.decrypt_value(key)?;
        let content = Fields::of(&value, "").and_then(|f| ManifestContent::from_object(&f));
        scrub(value);
        content
    }

    /// The decrypted manifest as plain-manifest JSON without a signature: `publicKey` and
    /// `sequence` of this manifest, then the decrypted members in their order, written as
    /// JavaScript writes them (the form of `vectors/manifests/private-small.decrypted.json`).
    /// The content is validated first, as by [`decrypt`](Self::decrypt).
    pub fn decrypted_json(&self, key: &ReadKey) -> Result<String, ManifestError> {
        let mut value = self.decrypt_value(key)?;
        let checked = Fields::of(&value, "").and_then(|f| ManifestContent::from_object(&f));
        if let Err(e) = checked {
            scrub(value);
            return Err(e);
        }
        let mut out = String::new();
        out.push_str("{\"publicKey\":");
        write_str(&mut out, &self.public_key_hex());
        out.push_str(",\"sequence\":");
        out.push_str(&self.sequence.to_string());
        if let Value::Object(map) = &mut value {
            // The outer, signed publicKey and sequence are authoritative.
            map.shift_remove("publicKey");
            map.shift_remove("sequence");
            for (k, v) in map.iter() {
                out.push(',');
                write_str(&mut out, k);
                out.push(':');
                write_value(&mut out, v, KeyOrder::Received, "");
            }
        }
        out.push('}');
        scrub(value);
        Ok(out)
    }

    fn decrypt_value(&self, key: &ReadKey) -> Result<Value, ManifestError> {
        let Body::Private { nonce, ciphertext } = &self.body else {
            return Err(ManifestError::NotPrivate);
        };
        let plaintext = secretbox::open(key.as_bytes(), nonce, ciphertext)?;
        if std::str::from_utf8(&plaintext).is_err() {
            return Err(ManifestError::BadPlaintext);
        }
        parse_json(&plaintext)
    }
}

/// Overwrite every string of a decrypted value (chunk keys among them) before freeing it.
fn scrub(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(mut s) => s.zeroize(),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (mut k, v) in map {
                    k.zeroize();
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
}

/// PROTOCOL.md 2.3: the signature covers the object without `signature`, keys in received
/// order, or else with keys sorted at every level.
fn signature_matches(value: &Value, public_key: &[u8; 32], signature: &[u8; 64]) -> bool {
    let mut received = String::new();
    write_value(&mut received, value, KeyOrder::Received, "signature");
    if verify_signature(public_key, received.as_bytes(), signature) {
        return true;
    }
    let mut sorted = String::new();
    write_value(&mut sorted, value, KeyOrder::Sorted, "signature");
    sorted != received && verify_signature(public_key, sorted.as_bytes(), signature)
}

fn check_sequence(sequence: u64) -> Result<(), ManifestError> {
    if !(1..=MAX_SEQUENCE).contains(&sequence) {
        return Err(ManifestError::SequenceOutOfRange {
            value: sequence.to_string(),
        });
    }
    Ok(())
}

/// A top-level manifest member other than `publicKey`, `sequence` and `signature`: its key and
/// what writes its value.
type Member<'a> = (&'static str, &'a dyn Fn(&mut String));

/// The one place that builds signed manifest text (PROTOCOL.md 2.3): `members` plus `publicKey`
/// and `sequence`, keys sorted at every level (nested objects are written sorted by their own
/// writers), is signed exactly as written; the result is that text with `signature` inserted at
/// its sorted place. Both reference verifiers accept it: the newest sorts the keys, the older
/// re-serializes in the received order, and both give back the signed text.
/// Fails when the result would exceed [`MAX_MANIFEST_LEN`], which no verifier would accept.
fn sign_members(
    identity: &Identity,
    sequence: u64,
    members: &[Member<'_>],
) -> Result<String, ManifestError> {
    let public_key = identity.public_key_hex();
    let write_public_key = |out: &mut String| write_str(out, &public_key);
    let write_sequence = |out: &mut String| out.push_str(&sequence.to_string());
    let mut all: Vec<Member<'_>> = members.to_vec();
    all.push(("publicKey", &write_public_key));
    all.push(("sequence", &write_sequence));
    all.sort_by(|a, b| key_cmp(a.0, b.0));

    let mut text = String::new();
    // Where `,"signature":".."` goes: before the first key that sorts after it, or before `}`.
    let mut signature_at = None;
    let mut object = ObjectWriter::new(&mut text);
    for (key, write) in all {
        debug_assert_ne!(key, "signature");
        if signature_at.is_none() && key_cmp(key, "signature").is_gt() {
            signature_at = Some(object.written());
        }
        write(object.key(key));
    }
    object.finish();
    let signature_at = signature_at.unwrap_or(text.len() - 1);
    let signature = identity.sign(text.as_bytes());
    let mut member = String::with_capacity(143);
    member.push_str(",\"signature\":\"");
    member.push_str(&hex::encode(signature));
    member.push('"');
    text.insert_str(signature_at, &member);
    if text.len() > MAX_MANIFEST_LEN {
        return Err(ManifestError::TooLarge {
            len: text.len(),
            max: MAX_MANIFEST_LEN,
        });
    }
    Ok(text)
}

/// Create and sign a plain manifest, keys sorted at every level (PROTOCOL.md 2.1, 2.3).
pub fn create_manifest(
    identity: &Identity,
    sequence: u64,
    content: &ManifestContent,
) -> Result<SignedManifest, ManifestError> {
    check_sequence(sequence)?;
    content.validate()?;
    let collections = |out: &mut String| content.write_collections(out);
    let timestamp = |out: &mut String| out.push_str(&content.timestamp.to_string());
    Ok(SignedManifest {
        text: sign_members(
            identity,
            sequence,
            &[("collections", &collections), ("timestamp", &timestamp)],
        )?,
        public_key: identity.public_key_bytes(),
        sequence,
        body: Body::Plain(content.clone()),
    })
}

/// Create and sign a private manifest (PROTOCOL.md 2.2): the content is sealed under `key`
/// with a fresh random 24-byte nonce.
pub fn create_private_manifest(
    identity: &Identity,
    sequence: u64,
    content: &ManifestContent,
    key: &ReadKey,
) -> Result<SignedManifest, ManifestError> {
    check_sequence(sequence)?;
    content.validate()?;
    let mut plaintext = Zeroizing::new(String::new());
    content.write_object(&mut plaintext);
    // 24 random bytes: a repeated nonce under one key is negligibly likely (2^-96 per pair).
    let mut nonce = [0u8; 24];
    crate::rng::fill(&mut nonce);
    let ciphertext = secretbox::seal(key.as_bytes(), &nonce, plaintext.as_bytes());
    let write_ciphertext = |out: &mut String| write_str(out, &hex::encode(&ciphertext));
    let write_encrypted = |out: &mut String| out.push_str("true");
    let write_nonce = |out: &mut String| write_str(out, &hex::encode(nonce));
    let text = sign_members(
        identity,
        sequence,
        &[
            ("ciphertext", &write_ciphertext),
            ("encrypted", &write_encrypted),
            ("nonce", &write_nonce),
        ],
    )?;
    Ok(SignedManifest {
        text,
        public_key: identity.public_key_bytes(),
        sequence,
        body: Body::Private { nonce, ciphertext },
    })
}
