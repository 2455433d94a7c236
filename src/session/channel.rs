//! [`ChannelRef`]: which channel (public key, sub-channel) and how to read it (read key).

use std::fmt;
use std::str::FromStr;

use crate::manifest::ReadKey;

/// The scheme of channel links (the reference client's form, plus `?salt=`).
pub const LINK_SCHEME: &str = "megatorrent://";

/// A channel to follow or list: its publisher's key, its sub-channel (BEP 44 salt; empty for
/// none) and, for a private channel, the key that opens its manifests.
///
/// Parsed from a 64-hex public key (either case) or a link
/// `megatorrent://<pubkey>[:<readkey>][?salt=<text>]` (salt percent-encoded where needed).
/// Two refs name the same channel when key and salt are equal ([`ChannelRef::id`]); the read
/// key is not part of the name. Debug output never shows the read key.
#[derive(Clone)]
pub struct ChannelRef {
    /// The publisher's Ed25519 public key.
    pub public_key: [u8; 32],
    /// Sub-channel name; empty for the main channel.
    pub salt: String,
    /// Read key of a private channel.
    pub read_key: Option<ReadKey>,
}

/// What names a channel: (public key, salt).
pub type ChannelId = ([u8; 32], String);

/// Why a channel reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelRefError {
    /// The public key is not 64 hex characters.
    #[error("invalid public key {found:?}: expected 64 hex characters")]
    PublicKey {
        /// What was given (a public key is not a secret).
        found: String,
    },
    /// The read key is not 64 hex characters (its text is not repeated: it is a secret).
    #[error("invalid read key in the link: expected 64 hex characters")]
    ReadKey,
    /// The link has a part this client does not understand (a blob path, an unknown query).
    #[error("unsupported part in the channel link: {0}")]
    Unsupported(String),
    /// A `%XX` escape of the salt is not valid or the salt is not UTF-8.
    #[error("invalid percent-encoding in the salt")]
    BadEscape,
}

impl ChannelRef {
    /// A public channel (main sub-channel).
    pub fn new(public_key: [u8; 32]) -> Self {
        Self {
            public_key,
            salt: String::new(),
            read_key: None,
        }
    }

    /// This ref with sub-channel `salt`.
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// This ref with a read key.
    pub fn with_read_key(mut self, key: Option<ReadKey>) -> Self {
        self.read_key = key;
        self
    }

    /// (public key, salt): what identifies the channel.
    pub fn id(&self) -> ChannelId {
        (self.public_key, self.salt.clone())
    }

    /// The public key in lowercase hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key)
    }

    /// The link form. The read key is included only when `with_read_key` (a link with it is
    /// a secret: whoever holds it reads the channel).
    pub fn to_link(&self, with_read_key: bool) -> String {
        let mut out = format!("{LINK_SCHEME}{}", self.public_key_hex());
        if with_read_key {
            if let Some(k) = &self.read_key {
                out.push(':');
                out.push_str(&k.to_hex());
            }
        }
        if !self.salt.is_empty() {
            out.push_str("?salt=");
            out.push_str(&percent_encode(&self.salt));
        }
        out
    }
}

impl PartialEq for ChannelRef {
    fn eq(&self, other: &Self) -> bool {
        self.public_key == other.public_key && self.salt == other.salt
    }
}

impl Eq for ChannelRef {}

impl fmt::Debug for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelRef")
            .field("public_key", &self.public_key_hex())
            .field("salt", &self.salt)
            .field("read_key", &self.read_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The link without the read key.
impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_link(false))
    }
}

impl FromStr for ChannelRef {
    type Err = ChannelRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some(rest) = strip_scheme(s) else {
            return Ok(Self::new(parse_public_key(s)?));
        };
        let (auth, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        // The reference allows `/<blob id>` after the key; a channel ref names no blob.
        let auth = auth.strip_suffix('/').unwrap_or(auth);
        if let Some((_, path)) = auth.split_once('/') {
            return Err(ChannelRefError::Unsupported(format!("path /{path}")));
        }
        let (key, read_key) = match auth.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (auth, None),
        };
        let mut channel = Self::new(parse_public_key(key)?);
        if let Some(r) = read_key {
            let lower = zeroize::Zeroizing::new(r.to_ascii_lowercase());
            channel.read_key =
                Some(ReadKey::from_hex(&lower).map_err(|_| ChannelRefError::ReadKey)?);
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("salt", v)) => channel.salt = percent_decode(v)?,
                _ if pair.is_empty() => {}
                _ => {
                    let name = pair.split('=').next().unwrap_or(pair);
                    return Err(ChannelRefError::Unsupported(format!("query {name:?}")));
                }
            }
        }
        Ok(channel)
    }
}

fn strip_scheme(s: &str) -> Option<&str> {
    let n = LINK_SCHEME.len();
    (s.len() >= n && s[..n].eq_ignore_ascii_case(LINK_SCHEME)).then(|| &s[n..])
}

fn parse_public_key(s: &str) -> Result<[u8; 32], ChannelRefError> {
    crate::id::decode_hex_array::<32>(&s.to_ascii_lowercase()).map_err(|_| {
        ChannelRefError::PublicKey {
            found: s.chars().take(80).collect(),
        }
    })
}

fn percent_decode(s: &str) -> Result<String, ChannelRefError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or(ChannelRefError::BadEscape)?;
                let b = u8::from_str_radix(hex, 16).map_err(|_| ChannelRefError::BadEscape)?;
                out.push(b);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ChannelRefError::BadEscape)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

    #[test]
    fn hex_in_either_case() {
        let a: ChannelRef = KEY.parse().unwrap();
        let b: ChannelRef = KEY.to_ascii_uppercase().parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.public_key_hex(), KEY);
        assert!(a.salt.is_empty() && a.read_key.is_none());
    }

    #[test]
    fn links_with_read_key_and_salt_round_trip() {
        let rk = "11".repeat(32);
        let link = format!("megatorrent://{KEY}:{rk}?salt=my%20videos");
        let c: ChannelRef = link.parse().unwrap();
        assert_eq!(c.salt, "my videos");
        assert_eq!(c.read_key.as_ref().unwrap().as_bytes(), &[0x11; 32]);
        assert_eq!(c.to_link(true), link.replace("%20", "%20"));
        let back: ChannelRef = c.to_link(true).parse().unwrap();
        assert_eq!(back.salt, c.salt);
        assert!(back.read_key.is_some());
        // Display and Debug never show the read key.
        assert!(!c.to_string().contains(&rk));
        assert!(!format!("{c:?}").contains(&rk));
        let plain: ChannelRef = format!("megatorrent://{KEY}").parse().unwrap();
        assert_eq!(plain.to_string(), format!("megatorrent://{KEY}"));
    }

    #[test]
    fn bad_refs_are_typed_errors() {
        assert!(matches!(
            "abc".parse::<ChannelRef>(),
            Err(ChannelRefError::PublicKey { .. })
        ));
        assert_eq!(
            format!("megatorrent://{KEY}:zz")
                .parse::<ChannelRef>()
                .unwrap_err(),
            ChannelRefError::ReadKey
        );
        assert!(matches!(
            format!("megatorrent://{KEY}/{KEY}").parse::<ChannelRef>(),
            Err(ChannelRefError::Unsupported(_))
        ));
        assert!(matches!(
            format!("megatorrent://{KEY}?x=1").parse::<ChannelRef>(),
            Err(ChannelRefError::Unsupported(_))
        ));
        assert_eq!(
            format!("megatorrent://{KEY}?salt=%zz")
                .parse::<ChannelRef>()
                .unwrap_err(),
            ChannelRefError::BadEscape
        );
    }
}
