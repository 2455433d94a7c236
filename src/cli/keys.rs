//! Keys on the command line: public keys and read keys in upper- or lower-case hex, and read
//! keys from a file or the environment so that they stay out of the process list.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use megatorrent::id::decode_hex_array;
use megatorrent::manifest::ReadKey;
use zeroize::Zeroizing;

/// The environment variable a read key can come from (see [`ReadKeyArgs`]).
pub const READ_KEY_ENV: &str = "MEGATORRENT_READ_KEY";

/// A 32-byte key in hex, either case (what people paste is not always lower case).
pub fn parse_pubkey(s: &str) -> Result<[u8; 32], String> {
    decode_hex_array::<32>(&s.trim().to_ascii_lowercase())
        .map_err(|e| format!("invalid public key: {e}"))
}

/// A read key from its hex text (either case, surrounding white space ignored).
pub fn parse_read_key(text: &str) -> anyhow::Result<ReadKey> {
    let lower = Zeroizing::new(text.trim().to_ascii_lowercase());
    Ok(ReadKey::from_hex(&lower)?)
}

/// Where a read key comes from: `--read-key HEX`, `--read-key-file FILE`, or the
/// `MEGATORRENT_READ_KEY` environment variable, in that order. The last two keep the key out
/// of the process list (`ps` shows every argument to every user).
#[derive(Args, Clone, Debug, Default)]
pub struct ReadKeyArgs {
    /// Read key (64 hex) of a private channel. Visible to other users in the process list:
    /// prefer --read-key-file or the MEGATORRENT_READ_KEY environment variable.
    #[arg(long, value_name = "HEX", conflicts_with = "read_key_file")]
    pub read_key: Option<String>,
    /// File holding the read key (64 hex; white space around it ignored).
    #[arg(long, value_name = "FILE")]
    pub read_key_file: Option<PathBuf>,
}

impl ReadKeyArgs {
    /// The read key, if one was given in any of the three ways.
    pub fn get(&self) -> anyhow::Result<Option<ReadKey>> {
        if let Some(text) = &self.read_key {
            return parse_read_key(text).context("bad --read-key").map(Some);
        }
        if let Some(path) = &self.read_key_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --read-key-file {}", path.display()))?,
            );
            return parse_read_key(&text)
                .with_context(|| format!("bad read key in {}", path.display()))
                .map(Some);
        }
        match std::env::var(READ_KEY_ENV) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                if text.trim().is_empty() {
                    return Ok(None);
                }
                parse_read_key(&text)
                    .with_context(|| format!("bad read key in {READ_KEY_ENV}"))
                    .map(Some)
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{READ_KEY_ENV} is not valid text"),
        }
    }

    /// The read key; an error naming the three ways when none was given.
    pub fn require(&self) -> anyhow::Result<ReadKey> {
        self.get()?.with_context(|| {
            format!("a read key is needed: --read-key HEX, --read-key-file FILE or {READ_KEY_ENV}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_case() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_pubkey(&upper).unwrap(), [0xab; 32]);
        assert_eq!(parse_read_key(&upper).unwrap().as_bytes(), &[0xab; 32]);
        assert_eq!(
            parse_read_key(&format!(" {}\n", "cd".repeat(32)))
                .unwrap()
                .as_bytes(),
            &[0xcd; 32]
        );
        assert!(parse_pubkey("xyz").is_err());
        assert!(parse_read_key(&"ab".repeat(31)).is_err());
    }

    #[test]
    fn from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{}\n", "EF".repeat(32))).unwrap();
        let args = ReadKeyArgs {
            read_key: None,
            read_key_file: Some(file),
        };
        assert_eq!(args.get().unwrap().unwrap().as_bytes(), &[0xef; 32]);
        let missing = ReadKeyArgs {
            read_key: None,
            read_key_file: Some(dir.path().join("nope")),
        };
        let err = format!("{:#}", missing.get().unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }
}
