//! KRPC (BEP 5) messages carried over the secure channel in DHT_QUERY (0x09) and DHT_RESPONSE
//! (0x0A), as the newest reference client defines them (PROTOCOL.md 5.3).
//!
//! Bencode is read and written by `serde_bencode` (the crate `mainline` already uses). A hostile
//! payload gets a typed error. The decoder recurses once per nesting level and has no limit of
//! its own, so before decoding we cap the size and the number of bytes that could open a list
//! or dictionary (`l`, `d`): an upper bound on the depth, whatever those bytes turn out to be.

use serde_bencode::value::Value;
use std::collections::HashMap;

use super::TransportError;

/// Largest KRPC payload decoded: a UDP datagram's worth (a BEP 44 `put` with a 1000-byte value
/// fits). Larger payloads are refused unread.
pub const MAX_KRPC_LEN: usize = 1500;

/// Most `l`/`d` bytes a decoded payload may hold (so at most this deep). A real KRPC message
/// nests 3 levels; its random bytes (ids, tokens, values) hold about one such byte in 128.
const MAX_OPENERS: usize = 128;

/// A KRPC query (`"y":"q"`): its transaction id, method and the querying node's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrpcQuery {
    /// Transaction id (`t`), echoed in the response.
    pub transaction: Vec<u8>,
    /// Method name (`q`), e.g. `ping`.
    pub method: Vec<u8>,
    /// The querying node's id (`a.id`), when present and 20 bytes.
    pub sender: Option<[u8; 20]>,
}

/// A KRPC response (`"y":"r"`): its transaction id and the answering node's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrpcResponse {
    /// Transaction id (`t`) of the query answered.
    pub transaction: Vec<u8>,
    /// The answering node's id (`r.id`).
    pub id: [u8; 20],
}

fn bad(reason: impl Into<String>) -> TransportError {
    TransportError::BadKrpc(reason.into())
}

/// Decode a bencoded dictionary of at most [`MAX_KRPC_LEN`] bytes.
fn decode_dict(payload: &[u8]) -> Result<HashMap<Vec<u8>, Value>, TransportError> {
    if payload.len() > MAX_KRPC_LEN {
        return Err(bad(format!(
            "{} bytes, more than {MAX_KRPC_LEN}",
            payload.len()
        )));
    }
    let openers = payload.iter().filter(|&&b| b == b'l' || b == b'd').count();
    if openers > MAX_OPENERS {
        return Err(bad(format!(
            "{openers} bytes that may open a list or dictionary, more than {MAX_OPENERS}"
        )));
    }
    match serde_bencode::from_bytes::<Value>(payload) {
        Ok(Value::Dict(d)) => Ok(d),
        Ok(_) => Err(bad("not a bencoded dictionary")),
        Err(e) => Err(bad(format!("bad bencode: {e}"))),
    }
}

fn bytes<'a>(dict: &'a HashMap<Vec<u8>, Value>, key: &str) -> Result<&'a [u8], TransportError> {
    match dict.get(key.as_bytes()) {
        Some(Value::Bytes(b)) => Ok(b),
        Some(_) => Err(bad(format!("\"{key}\" is not a byte string"))),
        None => Err(bad(format!("missing \"{key}\""))),
    }
}

fn node_id(dict: &HashMap<Vec<u8>, Value>, key: &str) -> Result<[u8; 20], TransportError> {
    let id = match dict.get(key.as_bytes()) {
        Some(Value::Dict(inner)) => bytes(inner, "id")?,
        Some(_) => return Err(bad(format!("\"{key}\" is not a dictionary"))),
        None => return Err(bad(format!("missing \"{key}\""))),
    };
    id.try_into()
        .map_err(|_| bad(format!("\"{key}.id\" is {} bytes, not 20", id.len())))
}

impl KrpcQuery {
    /// Decode a DHT_QUERY payload: a dictionary with `y` = `q`, a byte-string `t` and `q`.
    pub fn decode(payload: &[u8]) -> Result<Self, TransportError> {
        let dict = decode_dict(payload)?;
        if bytes(&dict, "y")? != b"q" {
            return Err(bad("not a query (\"y\" is not \"q\")"));
        }
        Ok(KrpcQuery {
            transaction: bytes(&dict, "t")?.to_vec(),
            method: bytes(&dict, "q")?.to_vec(),
            sender: node_id(&dict, "a").ok(),
        })
    }

    /// A `ping` query from `sender` with transaction id `transaction`.
    pub fn ping(transaction: &[u8], sender: &[u8; 20]) -> Vec<u8> {
        let args = dict([("id", Value::Bytes(sender.to_vec()))]);
        encode(dict([
            ("a", args),
            ("q", Value::Bytes(b"ping".to_vec())),
            ("t", Value::Bytes(transaction.to_vec())),
            ("y", Value::Bytes(b"q".to_vec())),
        ]))
    }
}

impl KrpcResponse {
    /// Decode a DHT_RESPONSE payload: `y` = `r`, a byte-string `t`, and `r.id` of 20 bytes.
    pub fn decode(payload: &[u8]) -> Result<Self, TransportError> {
        let dict = decode_dict(payload)?;
        if bytes(&dict, "y")? != b"r" {
            return Err(bad("not a response (\"y\" is not \"r\")"));
        }
        Ok(KrpcResponse {
            transaction: bytes(&dict, "t")?.to_vec(),
            id: node_id(&dict, "r")?,
        })
    }

    /// The response of node `id` to the query with transaction id `transaction` (the answer to
    /// `ping`: `{"t":..,"y":"r","r":{"id":..}}`).
    pub fn encode(transaction: &[u8], id: &[u8; 20]) -> Vec<u8> {
        encode(dict([
            ("r", dict([("id", Value::Bytes(id.to_vec()))])),
            ("t", Value::Bytes(transaction.to_vec())),
            ("y", Value::Bytes(b"r".to_vec())),
        ]))
    }
}

fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn encode(value: Value) -> Vec<u8> {
    // Serializing a Value of byte strings and dictionaries cannot fail.
    serde_bencode::to_bytes(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_and_its_response_in_bep5_form() {
        let query = KrpcQuery::ping(b"aa", b"abcdefghij0123456789");
        assert_eq!(
            query,
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        );
        let q = KrpcQuery::decode(&query).unwrap();
        assert_eq!(q.transaction, b"aa");
        assert_eq!(q.method, b"ping");
        assert_eq!(q.sender, Some(*b"abcdefghij0123456789"));
        let response = KrpcResponse::encode(b"aa", b"mnopqrstuvwxyz123456");
        assert_eq!(response, b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re");
        assert_eq!(
            KrpcResponse::decode(&response).unwrap(),
            KrpcResponse {
                transaction: b"aa".to_vec(),
                id: *b"mnopqrstuvwxyz123456"
            }
        );
    }

    #[test]
    fn hostile_payloads_are_typed_errors() {
        let deep_list = vec![b'l'; MAX_KRPC_LEN];
        let deep_dict: Vec<u8> = b"d1:a".repeat(MAX_KRPC_LEN / 4);
        // As deep as the cap lets through: decoded without exhausting the stack.
        let deepest = vec![b'l'; MAX_OPENERS];
        let long = [b"d1:t".as_slice(), &vec![b'x'; MAX_KRPC_LEN]].concat();
        for payload in [
            &b""[..],
            b"le",
            b"i5e",
            b"d",
            b"d1:y1:qe",
            b"d1:t2:aa1:y1:qe",
            b"d1:q4:ping1:t2:aa1:y1:re",
            b"d1:q4:ping1:ti5e1:y1:qe",
            b"d1:t99999999999999999999:x1:y1:qe",
            b"d1:t2:aa1:y1:r1:rd2:id3:abcee",
            b"i99999999999999999999999e",
            &deep_list,
            &deep_dict,
            &deepest,
            &long,
        ] {
            assert!(
                matches!(KrpcQuery::decode(payload), Err(TransportError::BadKrpc(_))),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
            assert!(matches!(
                KrpcResponse::decode(payload),
                Err(TransportError::BadKrpc(_))
            ));
        }
    }

    #[test]
    fn the_deepest_payload_let_through_fits_a_small_stack() {
        // Tokio workers have 2 MiB of stack; the deepest payload the cap admits must decode in
        // a quarter of that, even unoptimized (about 4 KiB per level in a debug build).
        let deepest = [vec![b'l'; MAX_OPENERS], vec![b'e'; MAX_OPENERS]].concat();
        let decoded = std::thread::Builder::new()
            .stack_size(512 << 10)
            .spawn(move || KrpcQuery::decode(&deepest).is_err())
            .unwrap()
            .join()
            .unwrap();
        assert!(decoded);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let _ = KrpcQuery::decode(&payload);
            let _ = KrpcResponse::decode(&payload);
        }

        #[test]
        fn bencode_shaped_payloads_never_panic(s in "(d|l|e|i-?[0-9]{0,3}e|[0-9]{1,2}:[a-z]{0,4}|1:t2:aa|1:y1:q|1:q4:ping){0,30}") {
            let _ = KrpcQuery::decode(s.as_bytes());
            let _ = KrpcResponse::decode(s.as_bytes());
        }
    }
}
