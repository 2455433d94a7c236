//! Private manifest decryption (PROTOCOL.md 2.2).
//!
//! First byte even: the rest is a whole manifest text, verified and (if private) opened with
//! the vector read key. Odd: the rest is the *plaintext*; it is sealed under the read key,
//! wrapped in a private manifest and signed, so the fuzzer drives the parsing and validation
//! of decrypted content. Decryption must agree with `decrypted_json`, re-create to the same
//! content, and refuse a wrong key with `WrongReadKey`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::manifest::{create_private_manifest, secretbox, ManifestError, ReadKey, SignedManifest};
use megatorrent_fuzz::{identity, sign_appended, READ_KEY};

// A fixed nonce is fine here (fuzzing only; nothing secret is sealed) and keeps runs reproducible.
const NONCE: [u8; 24] = [0x24; 24];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = ReadKey::from_bytes(READ_KEY);
    if mode & 1 == 0 {
        if let Ok(m) = SignedManifest::verify(rest) {
            open(&m, &key);
        }
        return;
    }
    let ciphertext = secretbox::seal(&READ_KEY, &NONCE, rest);
    let id = identity();
    let text = format!(
        "{{\"publicKey\":\"{}\",\"sequence\":1,\"encrypted\":true,\"nonce\":\"{}\",\"ciphertext\":\"{}\"}}",
        id.public_key_hex(),
        hex::encode(NONCE),
        hex::encode(&ciphertext)
    );
    let signed = sign_appended(&id, text.as_bytes()).expect("ends with }");
    let m = SignedManifest::verify(&signed).expect("a well-formed private manifest verifies");
    assert!(m.is_private() && m.content().is_none());
    assert!(matches!(
        m.decrypt(&ReadKey::from_bytes([0x34; 32])),
        Err(ManifestError::WrongReadKey)
    ));
    if std::str::from_utf8(rest).is_err() {
        assert!(matches!(m.decrypt(&key), Err(ManifestError::BadPlaintext)));
    }
    open(&m, &key);
});

fn open(m: &SignedManifest, key: &ReadKey) {
    let content = m.decrypt(key);
    let json = m.decrypted_json(key);
    assert_eq!(
        content.is_ok(),
        json.is_ok(),
        "decrypt and decrypted_json disagree"
    );
    let Ok(content) = content else {
        return;
    };
    let json = json.expect("checked above");
    assert!(json.starts_with("{\"publicKey\":\""));
    let created = create_private_manifest(&identity(), m.sequence(), &content, key)
        .expect("decrypted content can be re-created");
    let back = SignedManifest::verify(created.as_bytes()).expect("created manifest verifies");
    assert_eq!(back.decrypt(key).expect("opens"), content);
    // Members named like envelope keys would make the decrypted form something else than a
    // plain manifest (private, or doubly signed); such content is legal, just not comparable.
    let envelope_like = json.contains("\"encrypted\"") || json.contains("\"signature\"");
    if m.public_key() == identity().public_key_bytes() && !envelope_like {
        // The decrypted form, signed, is a plain manifest with the same content.
        let plain = sign_appended(&identity(), json.as_bytes()).expect("ends with }");
        let plain = SignedManifest::verify(&plain).expect("decrypted form verifies as plain");
        assert_eq!(plain.content(), Some(&content));
    }
}
