//! JSON text as the protocol signs it (PROTOCOL.md 2.3).
//!
//! Two halves:
//! - a strict parser: keeps the received key order (serde_json's `preserve_order` map) and
//!   refuses duplicate keys, because with two values for one key the signed text is ambiguous
//!   (JavaScript keeps the last one, other parsers the first);
//! - a writer that produces exactly what JavaScript's `JSON.stringify(value)` produces for the
//!   parsed value: compact, strings escaped per the ECMAScript rules, numbers in JavaScript's
//!   `Number::toString` form. The writer emits either the received key order or keys sorted at
//!   every level (the form of `fast-json-stable-stringify` and Qt's `QJsonDocument`);
//! - [`ObjectWriter`], with which creators write sorted objects member by member.
//!
//! serde_json's own compact writer escapes strings the same way, but writes floats differently
//! (`1.0` where JavaScript writes `1`, `1e21` where it writes `1e+21`), and an unknown extra key
//! may hold such a number, so this module writes the text itself.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Largest integer JavaScript represents exactly: 2^53 - 1.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why [`parse_strict`] refused a text.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// Not JSON (message from serde_json, with line and column).
    Syntax(String),
    /// An object holds this key twice.
    DuplicateKey(String),
}

/// Parse one JSON value (surrounding whitespace allowed, nothing else after it), keeping the
/// received key order and refusing duplicate keys.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, ParseError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .map_err(|e| ParseError::Syntax(e.to_string()))?;
    de.end().map_err(|e| ParseError::Syntax(e.to_string()))?;
    match duplicate.into_inner() {
        Some(key) => Err(ParseError::DuplicateKey(key)),
        None => Ok(value),
    }
}

/// Builds a [`Value`] and records the first duplicate key it meets (parsing goes on, so a later
/// syntax error still wins: a broken text is reported as broken).
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(self)?;
            if map.contains_key(&key) {
                let mut first = self.duplicate.borrow_mut();
                if first.is_none() {
                    *first = Some(key);
                }
            } else {
                map.insert(key, value);
            }
        }
        Ok(Value::Object(map))
    }
}

/// Key order used when writing objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOrder {
    /// As received (as inserted, for built values).
    Received,
    /// Sorted at every level by UTF-16 code units, as Qt's `QJsonObject` (and JavaScript's
    /// default sort) order them.
    Sorted,
}

/// Append `value` as JavaScript's `JSON.stringify` would write it, with objects in `order`.
/// `skip_top_key` leaves one key of the top-level object out (the `signature`).
pub(crate) fn write_value(out: &mut String, value: &Value, order: KeyOrder, skip_top_key: &str) {
    write_inner(out, value, order, Some(skip_top_key));
}

fn write_inner(out: &mut String, value: &Value, order: KeyOrder, skip: Option<&str>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_inner(out, item, order, None);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .collect();
            if order == KeyOrder::Sorted {
                entries.sort_by(|a, b| key_cmp(a.0, b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_inner(out, v, order, None);
            }
            out.push('}');
        }
    }
}

/// `a` sorts before `b` in [`KeyOrder::Sorted`] order (UTF-16 code units, as JavaScript's default
/// sort, which `fast-json-stable-stringify` uses).
pub(crate) fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes one JSON object member by member, for creators that build manifest text without a
/// [`Value`]. Keys must come in [`KeyOrder::Sorted`] order, the canonical form every creator emits
/// (PROTOCOL.md 2.3); debug builds check it, so a member added out of order fails every test.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut String,
    last: Option<&'a str>,
}

impl<'a> ObjectWriter<'a> {
    /// Start an object (`{`) at the end of `out`.
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, last: None }
    }

    /// Write `"key":` and return the buffer for the member's value.
    pub(crate) fn key(&mut self, key: &'a str) -> &mut String {
        if let Some(last) = self.last {
            debug_assert!(
                key_cmp(last, key).is_lt(),
                "key {key:?} written after {last:?}: not sorted"
            );
            self.out.push(',');
        }
        self.last = Some(key);
        write_str(self.out, key);
        self.out.push(':');
        self.out
    }

    /// Write a string member.
    pub(crate) fn str(&mut self, key: &'a str, value: &str) {
        write_str(self.key(key), value);
    }

    /// Write an integer member.
    pub(crate) fn uint(&mut self, key: &'a str, value: u64) {
        use std::fmt::Write as _;
        let _ = write!(self.key(key), "{value}");
    }

    /// Bytes in the buffer so far (where the next member's separator goes).
    pub(crate) fn written(&self) -> usize {
        self.out.len()
    }

    /// Close the object (`}`).
    pub(crate) fn finish(self) {
        self.out.push('}');
    }
}

/// Append `s` as a JSON string literal escaped as ECMAScript's `JSON.stringify` escapes it:
/// `\"`, `\\`, `\b \f \n \r \t`, other characters below U+0020 as `\u00xx` (lower case), and
/// everything else (DEL, U+2028, U+2029, all non-ASCII) raw.
pub(crate) fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append a number as JavaScript writes the double it parses to.
fn write_number(out: &mut String, n: &Number) {
    use std::fmt::Write as _;
    if let Some(u) = n.as_u64() {
        if u <= 1 << 53 {
            let _ = write!(out, "{u}");
            return;
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= 1 << 53 {
            let _ = write!(out, "{i}");
            return;
        }
    }
    // Integers beyond 2^53 become doubles in JavaScript (rounded to nearest, as `as f64` does).
    let f = n
        .as_f64()
        .or_else(|| n.as_u64().map(|u| u as f64))
        .or_else(|| n.as_i64().map(|i| i as f64))
        .unwrap_or(0.0);
    out.push_str(&js_number_to_string(f));
}

/// ECMAScript `Number::toString(x)` (radix 10) for a finite double: the shortest digits that
/// round-trip, placed per ECMA-262 section 6.1.6.1.20.
pub(crate) fn js_number_to_string(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // -0 prints as "0"; JSON never yields NaN or infinities (serde_json refuses them).
        return "0".to_owned();
    }
    // `{:e}` prints the shortest round-trip digits: "d[.ddd]e<exp>".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1; // decimal point position
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stringify(text: &str) -> String {
        let v = parse_strict(text.as_bytes()).unwrap();
        let mut out = String::new();
        write_value(&mut out, &v, KeyOrder::Received, "");
        out
    }

    #[test]
    fn numbers_match_javascript() {
        // Expected values are what node's JSON.stringify(JSON.parse(text)) prints.
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("1.0", "1"),
            ("1e3", "1000"),
            ("1.5", "1.5"),
            ("-1.5", "-1.5"),
            ("0.1", "0.1"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("123e-20", "1.23e-18"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("123456789012345678901234", "1.2345678901234569e+23"),
            ("9007199254740993", "9007199254740992"),
            ("9007199254740992", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("2.5e-5", "0.000025"),
        ];
        for (input, expected) in cases {
            assert_eq!(stringify(input), expected, "input {input}");
        }
    }

    #[test]
    fn strings_match_javascript() {
        // JSON.stringify("\u0000\u0001\u001f\u007f\b\f\n\r\t\"\\/\u2028\u2029é😀")
        let s = "\u{0}\u{1}\u{1f}\u{7f}\u{8}\u{c}\n\r\t\"\\/\u{2028}\u{2029}é😀";
        let mut out = String::new();
        write_str(&mut out, s);
        assert_eq!(
            out,
            "\"\\u0000\\u0001\\u001f\u{7f}\\b\\f\\n\\r\\t\\\"\\\\/\u{2028}\u{2029}é😀\""
        );
        // serde_json agrees on strings (it is the floats where it differs).
        assert_eq!(serde_json::to_string(s).unwrap(), out);
    }

    #[test]
    fn sorted_order_sorts_every_level_and_keeps_arrays() {
        let v = parse_strict(br#"{"b":[{"z":1,"a":2}],"a":{"y":true,"x":null}}"#).unwrap();
        let mut out = String::new();
        write_value(&mut out, &v, KeyOrder::Sorted, "");
        assert_eq!(out, r#"{"a":{"x":null,"y":true},"b":[{"a":2,"z":1}]}"#);
    }

    #[test]
    fn sorted_order_uses_utf16_code_units() {
        // U+FF5E sorts after U+1F600 in UTF-16 (0xFF5E > 0xD83D) but before it by code point.
        let v = parse_strict("{\"\u{FF5E}\":2,\"\u{1F600}\":1}".as_bytes()).unwrap();
        let mut out = String::new();
        write_value(&mut out, &v, KeyOrder::Sorted, "");
        assert_eq!(out, "{\"\u{1F600}\":1,\"\u{FF5E}\":2}");
    }

    #[test]
    fn skip_applies_to_top_level_only() {
        let v = parse_strict(br#"{"s":1,"o":{"s":2}}"#).unwrap();
        let mut out = String::new();
        write_value(&mut out, &v, KeyOrder::Received, "s");
        assert_eq!(out, r#"{"o":{"s":2}}"#);
    }

    #[test]
    fn duplicates_and_trailing_garbage_are_refused() {
        assert!(matches!(
            parse_strict(br#"{"a":1,"b":{"c":1,"c":2}}"#),
            Err(ParseError::DuplicateKey(k)) if k == "c"
        ));
        assert!(matches!(
            parse_strict(br#"{"a":1} x"#),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_strict(br#"{"a":"#),
            Err(ParseError::Syntax(_))
        ));
        // A lone surrogate escape cannot become a Rust string: refused as bad JSON.
        assert!(matches!(
            parse_strict(br#"{"a":"\ud800"}"#),
            Err(ParseError::Syntax(_))
        ));
    }
}
