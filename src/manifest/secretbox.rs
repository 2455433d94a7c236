//! NaCl `crypto_secretbox` (XSalsa20-Poly1305), the cipher of private manifests (PROTOCOL.md
//! 2.2), as the reference's TweetNaCl writes it: `tag (16) || ciphertext`.
//!
//! Composed from the RustCrypto `salsa20` and `poly1305` crates exactly as `crypto_secretbox`
//! does it, because that crate has no release on the cipher/aead generation the rest of the
//! crypto stack uses (its only one is a pre-release pinned to an `aead` release candidate):
//! the Poly1305 key is the first 32 bytes of the XSalsa20 keystream, the message is encrypted
//! with the keystream from byte 32 on, and the tag authenticates the ciphertext. The NaCl test
//! vector below and the shared protocol vectors hold it to that.

use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::XSalsa20;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::ManifestError;

/// Length of the Poly1305 tag in front of the ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of an XSalsa20 nonce.
pub const NONCE_LEN: usize = 24;

/// The cipher positioned after the Poly1305 key, and the MAC keyed with it.
fn cipher_and_mac(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> (XSalsa20, Poly1305) {
    let mut cipher = XSalsa20::new(key.into(), nonce.into());
    let mut mac_key = Zeroizing::new(poly1305::Key::default());
    cipher.apply_keystream(&mut mac_key[..]);
    (cipher, Poly1305::new(&mac_key))
}

/// Seal `plaintext` under `key` and `nonce`: `tag || ciphertext`. A nonce must never be used
/// twice under one key.
pub fn seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let (mut cipher, mac) = cipher_and_mac(key, nonce);
    let mut out = vec![0u8; TAG_LEN + plaintext.len()];
    let (tag, body) = out.split_at_mut(TAG_LEN);
    body.copy_from_slice(plaintext);
    cipher.apply_keystream(body);
    tag.copy_from_slice(&mac.compute_unpadded(body));
    out
}

/// Open `sealed` (`tag || ciphertext`): the plaintext, zeroized when dropped. The tag is checked
/// (in constant time) before anything is decrypted.
pub fn open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ManifestError> {
    if sealed.len() < TAG_LEN {
        return Err(ManifestError::CiphertextTooShort { len: sealed.len() });
    }
    let (tag, body) = sealed.split_at(TAG_LEN);
    let (mut cipher, mac) = cipher_and_mac(key, nonce);
    let expected = mac.compute_unpadded(body);
    if !bool::from(expected.as_slice().ct_eq(tag)) {
        return Err(ManifestError::WrongReadKey);
    }
    let mut plaintext = Zeroizing::new(body.to_vec());
    cipher.apply_keystream(&mut plaintext);
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// The NaCl distribution's secretbox test (tests/secretbox.c, also libsodium's): firstkey,
    /// nonce, the 131-byte message and the expected box (without NaCl's 16 leading zeros).
    #[test]
    fn nacl_secretbox_vector() {
        let key: [u8; 32] = h("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
            .try_into()
            .unwrap();
        let nonce: [u8; 24] = h("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
            .try_into()
            .unwrap();
        let message = h(
            "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc
             e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31
             0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde
             048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864
             5e0705",
        );
        let expected = h(
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce
             48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972
             71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae
             90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3
             7973f622a43d14a6599b1f654cb45a74e355a5",
        );
        let sealed = seal(&key, &nonce, &message);
        assert_eq!(sealed, expected);
        assert_eq!(&open(&key, &nonce, &sealed).unwrap()[..], &message[..]);
    }

    /// Stops compiling if the stream cipher ever stops wiping its key on drop (a crate upgrade
    /// that drops the `zeroize` feature). Poly1305 wipes itself in its `Drop` under the same
    /// feature but has no marker trait to check.
    #[test]
    fn cipher_zeroizes_its_key() {
        fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wipes_on_drop::<XSalsa20>();
    }

    #[test]
    fn any_change_is_refused() {
        let (key, nonce) = ([3u8; 32], [4u8; 24]);
        let sealed = seal(&key, &nonce, b"hello");
        assert_eq!(sealed.len(), TAG_LEN + 5);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(matches!(
                open(&key, &nonce, &bad),
                Err(ManifestError::WrongReadKey)
            ));
        }
        let mut other = nonce;
        other[23] ^= 1;
        assert!(open(&key, &other, &sealed).is_err());
        assert!(open(&[5; 32], &nonce, &sealed).is_err());
        assert!(matches!(
            open(&key, &nonce, &sealed[..15]),
            Err(ManifestError::CiphertextTooShort { len: 15 })
        ));
        // The empty message seals to a bare tag and opens again.
        let empty = seal(&key, &nonce, b"");
        assert_eq!(empty.len(), TAG_LEN);
        assert!(open(&key, &nonce, &empty).unwrap().is_empty());
    }
}
