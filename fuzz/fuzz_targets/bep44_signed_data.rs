//! The BEP 44 signed-data builder and mutable items (PROTOCOL.md 4).
//!
//! Input: 8 bytes big-endian `seq`, 1 byte salt length, the salt, then the value. The signed
//! data must parse back (as bencode) to exactly these fields and equal `mainline`'s own
//! encoding; within the limits, our signature must equal `mainline`'s, verify, and survive the
//! round trip through a `mainline` item; outside them, the specific error is returned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::dht::bep44::{
    mutable_target, salt_option, signed_data, Bep44Error, MutableRecord, MAX_SALT_LEN,
    MAX_VALUE_LEN,
};
use megatorrent_fuzz::{identity, SEED};

/// Take `<decimal>:<bytes>` from the front of `s`.
fn byte_string(s: &[u8]) -> (&[u8], &[u8]) {
    let colon = s.iter().position(|&b| b == b':').expect("length prefix");
    let digits = std::str::from_utf8(&s[..colon]).expect("ascii digits");
    assert!(
        digits == "0" || !digits.starts_with('0'),
        "canonical length {digits}"
    );
    let len: usize = digits.parse().expect("decimal length");
    let body = &s[colon + 1..];
    (&body[..len], &body[len..])
}

fn parse_signed(s: &[u8]) -> (Option<&[u8]>, i64, &[u8]) {
    let (salt, s) = match s.strip_prefix(b"4:salt") {
        Some(rest) => {
            let (salt, rest) = byte_string(rest);
            (Some(salt), rest)
        }
        None => (None, s),
    };
    let s = s.strip_prefix(b"3:seqi").expect("seq key");
    let end = s.iter().position(|&b| b == b'e').expect("seq end");
    let digits = std::str::from_utf8(&s[..end]).expect("ascii");
    let seq: i64 = digits.parse().expect("integer");
    assert_eq!(seq.to_string(), digits, "canonical integer");
    let s = s[end + 1..].strip_prefix(b"1:v").expect("v key");
    let (value, rest) = byte_string(s);
    assert!(rest.is_empty(), "trailing bytes");
    (salt, seq, value)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let seq = i64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let salt_len = usize::from(data[8]).min(data.len() - 9);
    let (salt, value) = data[9..].split_at(salt_len);

    let signed = signed_data(seq, value, salt);
    let (p_salt, p_seq, p_value) = parse_signed(&signed);
    assert_eq!(
        (p_salt.unwrap_or_default(), p_seq, p_value),
        (salt, seq, value)
    );
    assert_eq!(
        p_salt.is_some(),
        !salt.is_empty(),
        "an empty salt is never signed"
    );
    let theirs = mainline::MutableItem::new(
        mainline::SigningKey::from_bytes(&SEED),
        value,
        seq,
        salt_option(salt),
    );
    assert_eq!(
        theirs.signature(),
        &identity().sign(&signed),
        "same signed data as mainline"
    );

    let id = identity();
    match MutableRecord::sign(&id, seq, value, salt) {
        Ok(rec) => {
            assert!(value.len() <= MAX_VALUE_LEN && salt.len() <= MAX_SALT_LEN && seq >= 0);
            assert_eq!(rec.target(), mutable_target(&id.public_key_bytes(), salt));
            let item = rec.to_mainline();
            assert_eq!(item.target().as_bytes(), &rec.target());
            assert_eq!(
                MutableRecord::from_mainline(&item).expect("own item verifies"),
                rec
            );
            let again =
                MutableRecord::verified(*rec.public_key(), seq, value, salt, *rec.signature())
                    .expect("own signature verifies");
            assert_eq!(again, rec);
            if let Some(other) = seq.checked_add(1) {
                assert_eq!(
                    MutableRecord::verified(
                        *rec.public_key(),
                        other,
                        value,
                        salt,
                        *rec.signature()
                    ),
                    Err(Bep44Error::BadSignature)
                );
            }
        }
        Err(Bep44Error::ValueTooLarge { len }) => {
            assert!(len == value.len() && len > MAX_VALUE_LEN)
        }
        Err(Bep44Error::SaltTooLarge { len }) => {
            assert!(len == salt.len() && len > MAX_SALT_LEN && value.len() <= MAX_VALUE_LEN)
        }
        Err(Bep44Error::NegativeSeq(s)) => {
            assert!(
                s == seq && seq < 0 && value.len() <= MAX_VALUE_LEN && salt.len() <= MAX_SALT_LEN
            )
        }
        Err(e) => panic!("unexpected {e:?}"),
    }
});
