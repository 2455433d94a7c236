//! The v5 messages (PROTOCOL.md 5.3), parsed and validated.
//!
//! Parsing is strict where the protocol is exact (ids are 64 lowercase hex, JSON payloads have
//! the documented shape) and ignores unknown JSON keys, as reference peers do. HELLO's version
//! is read as leniently as the reference reads it. DHT_QUERY and DHT_RESPONSE carry bencoded
//! KRPC, kept as received and decoded by [`super::krpc`] where it is used.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::TransportError;
use crate::id::{decode_hex_array, decode_hex_vec, BlobId};

/// Largest BEP 44 value (bytes) a PUBLISH may carry.
pub const MAX_PUBLISH_VALUE: usize = 1000;
/// Largest BEP 44 salt (bytes).
pub const MAX_SALT: usize = 64;
/// Longest `host:port` accepted in PEERS and ANNOUNCE.
pub const MAX_ADDRESS_LEN: usize = 261;
/// The protocol version we speak; a HELLO without a version means this one.
pub const PROTOCOL_VERSION: u64 = 5;

/// Message type bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// 0x01, client to server greeting (version, gossip, binding).
    Hello = 0x01,
    /// 0x02, ask for a blob by id.
    Request = 0x02,
    /// 0x03, the requested content.
    Data = 0x03,
    /// 0x04, ask for peers holding a blob.
    FindPeers = 0x04,
    /// 0x05, a list of `host:port`.
    Peers = 0x05,
    /// 0x06, a BEP 44 item to relay to the DHT.
    Publish = 0x06,
    /// 0x07, "I hold this blob at this address".
    Announce = 0x07,
    /// 0x08, success text.
    Ok = 0x08,
    /// 0x09, a bencoded KRPC query (newest reference).
    DhtQuery = 0x09,
    /// 0x0A, a bencoded KRPC response.
    DhtResponse = 0x0A,
    /// 0xFF, error text.
    Error = 0xFF,
}

impl MessageType {
    /// The type for a byte, if it is one we know.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::Hello,
            0x02 => Self::Request,
            0x03 => Self::Data,
            0x04 => Self::FindPeers,
            0x05 => Self::Peers,
            0x06 => Self::Publish,
            0x07 => Self::Announce,
            0x08 => Self::Ok,
            0x09 => Self::DhtQuery,
            0x0A => Self::DhtResponse,
            0xFF => Self::Error,
            _ => return None,
        })
    }

    /// The protocol name, for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hello => "HELLO",
            Self::Request => "REQUEST",
            Self::Data => "DATA",
            Self::FindPeers => "FIND_PEERS",
            Self::Peers => "PEERS",
            Self::Publish => "PUBLISH",
            Self::Announce => "ANNOUNCE",
            Self::Ok => "OK",
            Self::DhtQuery => "DHT_QUERY",
            Self::DhtResponse => "DHT_RESPONSE",
            Self::Error => "ERROR",
        }
    }
}

/// HELLO: protocol version, optional gossip of latest sequence numbers, and identity binding
/// (PROTOCOL.md 5.4): `bind` in a client's HELLO, `id` and `sig` in a server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version: 5, or what the peer claimed (a missing or non-numeric `v` reads as
    /// [`PROTOCOL_VERSION`], a numeric string as its number, a fraction rounded down).
    pub v: u64,
    /// Latest known sequence number per channel public key. `None` omits the key on the wire.
    pub gossip: Option<BTreeMap<[u8; 32], i64>>,
    /// The client asks the server to prove its identity.
    pub bind: bool,
    /// The server's Ed25519 public key (binding answer).
    pub id: Option<[u8; 32]>,
    /// The binding signature (binding answer).
    pub sig: Option<[u8; 64]>,
}

impl Hello {
    /// The HELLO a v5 client sends: `{"v":5,"gossip":{...}}`.
    pub fn v5(gossip: BTreeMap<[u8; 32], i64>) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            gossip: Some(gossip),
            bind: false,
            id: None,
            sig: None,
        }
    }
}

/// PUBLISH: a signed BEP 44 mutable item for a gateway to relay.
#[derive(Clone, PartialEq, Eq)]
pub struct Publish {
    /// The signer's Ed25519 public key.
    pub k: [u8; 32],
    /// The sequence number.
    pub seq: i64,
    /// The raw value bytes (bencoded), at most [`MAX_PUBLISH_VALUE`].
    pub v: Vec<u8>,
    /// The Ed25519 signature.
    pub sig: [u8; 64],
    /// Optional salt (extension), at most [`MAX_SALT`] bytes.
    pub salt: Option<Vec<u8>>,
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("k", &hex::encode(self.k))
            .field("seq", &self.seq)
            .field("v_len", &self.v.len())
            .field("salt", &self.salt.as_ref().map(hex::encode))
            .finish_non_exhaustive()
    }
}

/// ANNOUNCE: the sender holds `blob_id` and serves it at `peer_address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The blob held.
    pub blob_id: BlobId,
    /// Where it is served (`host:port`).
    pub peer_address: String,
}

/// One v5 message.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// 0x01
    Hello(Hello),
    /// 0x02
    Request(BlobId),
    /// 0x03
    Data(Vec<u8>),
    /// 0x04
    FindPeers(BlobId),
    /// 0x05
    Peers(Vec<String>),
    /// 0x06
    Publish(Publish),
    /// 0x07
    Announce(Announce),
    /// 0x08
    Ok(String),
    /// 0x09: the bencoded KRPC query as received (see [`super::KrpcQuery`]).
    DhtQuery(Vec<u8>),
    /// 0x0A: the bencoded KRPC response as received (see [`super::KrpcResponse`]).
    DhtResponse(Vec<u8>),
    /// 0xFF
    Error(String),
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never dump a megabyte into a log.
            Self::Data(d) => write!(f, "Data({} bytes)", d.len()),
            Self::Hello(h) => f.debug_tuple("Hello").field(h).finish(),
            Self::Request(id) => f.debug_tuple("Request").field(id).finish(),
            Self::FindPeers(id) => f.debug_tuple("FindPeers").field(id).finish(),
            Self::Peers(p) => f.debug_tuple("Peers").field(p).finish(),
            Self::Publish(p) => f.debug_tuple("Publish").field(p).finish(),
            Self::Announce(a) => f.debug_tuple("Announce").field(a).finish(),
            Self::Ok(t) => f.debug_tuple("Ok").field(t).finish(),
            Self::DhtQuery(q) => write!(f, "DhtQuery({} bytes)", q.len()),
            Self::DhtResponse(r) => write!(f, "DhtResponse({} bytes)", r.len()),
            Self::Error(t) => f.debug_tuple("Error").field(t).finish(),
        }
    }
}

fn bad(message: &'static str, reason: impl Into<String>) -> TransportError {
    TransportError::BadPayload {
        message,
        reason: reason.into(),
    }
}

fn json_object(
    message: &'static str,
    payload: &[u8],
) -> Result<Map<String, Value>, TransportError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad(message, "not a JSON object")),
        Err(e) => Err(bad(message, format!("invalid JSON: {e}"))),
    }
}

fn hex_field<const N: usize>(
    message: &'static str,
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<[u8; N]>, TransportError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => decode_hex_array::<N>(s)
            .map(Some)
            .map_err(|e| bad(message, format!("\"{key}\": {e}"))),
        Some(_) => Err(bad(message, format!("\"{key}\" is not a string"))),
    }
}

fn required<T>(message: &'static str, key: &str, v: Option<T>) -> Result<T, TransportError> {
    v.ok_or_else(|| bad(message, format!("missing \"{key}\"")))
}

fn parse_id(message: &'static str, payload: &[u8]) -> Result<BlobId, TransportError> {
    let s = std::str::from_utf8(payload).map_err(|_| TransportError::NotUtf8(message))?;
    BlobId::from_hex(s).map_err(|source| TransportError::BadId { message, source })
}

fn parse_text(message: &'static str, payload: Vec<u8>) -> Result<String, TransportError> {
    String::from_utf8(payload).map_err(|_| TransportError::NotUtf8(message))
}

/// Check a `host:port` address: a non-empty host of name/IP characters, a port 1-65535.
pub fn validate_peer_address(addr: &str) -> Result<(), String> {
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(format!("address longer than {MAX_ADDRESS_LEN} characters"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("address {addr:?} is not host:port"));
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b));
    if !host_ok {
        return Err(format!("address {addr:?} has an invalid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!("address {addr:?} has an invalid port")),
    }
}

fn parse_hello(payload: &[u8]) -> Result<Hello, TransportError> {
    const M: &str = "HELLO";
    let obj = json_object(M, payload)?;
    let v = hello_version(obj.get("v"));
    let gossip = match obj.get("gossip") {
        None => None,
        Some(Value::Object(g)) => {
            // Some peers nest the map: {"gossip":{"sequences":{...}}}.
            let g = match g.get("sequences") {
                Some(Value::Object(inner)) if g.len() == 1 => inner,
                _ => g,
            };
            let mut out = BTreeMap::new();
            for (k, seq) in g {
                let key = decode_hex_array::<32>(k)
                    .map_err(|e| bad(M, format!("gossip key {k:?}: {e}")))?;
                let seq = seq
                    .as_i64()
                    .ok_or_else(|| bad(M, format!("gossip sequence for {k} is not an integer")))?;
                out.insert(key, seq);
            }
            Some(out)
        }
        Some(_) => return Err(bad(M, "\"gossip\" is not an object")),
    };
    let bind = match obj.get("bind") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() != Some(0),
        Some(_) => return Err(bad(M, "\"bind\" is not 1, 0 or a boolean")),
    };
    let id = hex_field::<32>(M, &obj, "id")?;
    let sig = hex_field::<64>(M, &obj, "sig")?;
    if id.is_some() != sig.is_some() {
        return Err(bad(M, "\"id\" and \"sig\" come together"));
    }
    Ok(Hello {
        v,
        gossip,
        bind,
        id,
        sig,
    })
}

/// The version a HELLO claims, read as the reference reads it (it refuses only `v && v < 5`):
/// a number, or a string holding one, counts (negative as 0, fractions rounded down, so 4.5 is
/// below 5); a missing `v`, or one that is not numeric, means [`PROTOCOL_VERSION`].
fn hello_version(v: Option<&Value>) -> u64 {
    let number = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    match number {
        // `as` saturates: negatives become 0, huge values u64::MAX.
        Some(f) => f.floor() as u64,
        None => PROTOCOL_VERSION,
    }
}

fn parse_publish(payload: &[u8]) -> Result<Publish, TransportError> {
    const M: &str = "PUBLISH";
    let obj = json_object(M, payload)?;
    let k = required(M, "k", hex_field::<32>(M, &obj, "k")?)?;
    let sig = required(M, "sig", hex_field::<64>(M, &obj, "sig")?)?;
    let seq = required(M, "seq", obj.get("seq"))?
        .as_i64()
        .ok_or_else(|| bad(M, "\"seq\" is not an integer"))?;
    let hex_bytes = |key: &str, max: usize| -> Result<Option<Vec<u8>>, TransportError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let b = decode_hex_vec(s).map_err(|e| bad(M, format!("\"{key}\": {e}")))?;
                if b.len() > max {
                    return Err(bad(M, format!("\"{key}\" longer than {max} bytes")));
                }
                Ok(Some(b))
            }
            Some(_) => Err(bad(M, format!("\"{key}\" is not a string"))),
        }
    };
    let v = required(M, "v", hex_bytes("v", MAX_PUBLISH_VALUE)?)?;
    let salt = hex_bytes("salt", MAX_SALT)?;
    Ok(Publish {
        k,
        seq,
        v,
        sig,
        salt,
    })
}

fn parse_announce(payload: &[u8]) -> Result<Announce, TransportError> {
    const M: &str = "ANNOUNCE";
    let obj = json_object(M, payload)?;
    let blob_id = match obj.get("blobId") {
        Some(Value::String(s)) => {
            BlobId::from_hex(s).map_err(|source| TransportError::BadId { message: M, source })?
        }
        Some(_) => return Err(bad(M, "\"blobId\" is not a string")),
        None => return Err(bad(M, "missing \"blobId\"")),
    };
    let peer_address = match obj.get("peerAddress") {
        Some(Value::String(s)) => {
            validate_peer_address(s).map_err(|r| bad(M, r))?;
            s.clone()
        }
        Some(_) => return Err(bad(M, "\"peerAddress\" is not a string")),
        None => return Err(bad(M, "missing \"peerAddress\"")),
    };
    Ok(Announce {
        blob_id,
        peer_address,
    })
}

fn parse_peers(payload: &[u8]) -> Result<Vec<String>, TransportError> {
    const M: &str = "PEERS";
    let list: Vec<Value> = match serde_json::from_slice(payload) {
        Ok(Value::Array(a)) => a,
        Ok(_) => return Err(bad(M, "not a JSON array")),
        Err(e) => return Err(bad(M, format!("invalid JSON: {e}"))),
    };
    list.into_iter()
        .map(|v| match v {
            Value::String(s) => {
                validate_peer_address(&s).map_err(|r| bad(M, r))?;
                Ok(s)
            }
            _ => Err(bad(M, "an entry is not a string")),
        })
        .collect()
}

impl Message {
    /// Parse a decrypted frame's type byte and payload.
    pub fn parse(msg_type: u8, payload: Vec<u8>) -> Result<Self, TransportError> {
        let t = MessageType::from_u8(msg_type).ok_or(TransportError::UnknownType(msg_type))?;
        Ok(match t {
            MessageType::Hello => Self::Hello(parse_hello(&payload)?),
            MessageType::Request => Self::Request(parse_id("REQUEST", &payload)?),
            MessageType::Data => Self::Data(payload),
            MessageType::FindPeers => Self::FindPeers(parse_id("FIND_PEERS", &payload)?),
            MessageType::Peers => Self::Peers(parse_peers(&payload)?),
            MessageType::Publish => Self::Publish(parse_publish(&payload)?),
            MessageType::Announce => Self::Announce(parse_announce(&payload)?),
            MessageType::Ok => Self::Ok(parse_text("OK", payload)?),
            // Never refused here: a receiver ignores what it cannot answer.
            MessageType::DhtQuery => Self::DhtQuery(payload),
            MessageType::DhtResponse => Self::DhtResponse(payload),
            MessageType::Error => Self::Error(parse_text("ERROR", payload)?),
        })
    }

    /// The message's type.
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Hello(_) => MessageType::Hello,
            Self::Request(_) => MessageType::Request,
            Self::Data(_) => MessageType::Data,
            Self::FindPeers(_) => MessageType::FindPeers,
            Self::Peers(_) => MessageType::Peers,
            Self::Publish(_) => MessageType::Publish,
            Self::Announce(_) => MessageType::Announce,
            Self::Ok(_) => MessageType::Ok,
            Self::DhtQuery(_) => MessageType::DhtQuery,
            Self::DhtResponse(_) => MessageType::DhtResponse,
            Self::Error(_) => MessageType::Error,
        }
    }

    /// The type byte.
    pub fn msg_type(&self) -> u8 {
        self.kind() as u8
    }

    /// The payload as sent on the wire (borrowed for DATA and text, so a blob is not copied).
    pub fn payload_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Self::Data(d) | Self::DhtQuery(d) | Self::DhtResponse(d) => Cow::Borrowed(d),
            Self::Ok(t) | Self::Error(t) => Cow::Borrowed(t.as_bytes()),
            Self::Request(id) | Self::FindPeers(id) => Cow::Owned(id.to_hex().into_bytes()),
            Self::Hello(h) => Cow::Owned(encode_hello(h)),
            Self::Peers(p) => Cow::Owned(Value::from(p.clone()).to_string().into_bytes()),
            Self::Publish(p) => {
                let mut m = Map::new();
                m.insert("k".into(), hex::encode(p.k).into());
                m.insert("seq".into(), p.seq.into());
                m.insert("v".into(), hex::encode(&p.v).into());
                m.insert("sig".into(), hex::encode(p.sig).into());
                if let Some(salt) = &p.salt {
                    m.insert("salt".into(), hex::encode(salt).into());
                }
                Cow::Owned(Value::Object(m).to_string().into_bytes())
            }
            Self::Announce(a) => {
                let mut m = Map::new();
                m.insert("blobId".into(), a.blob_id.to_hex().into());
                m.insert("peerAddress".into(), a.peer_address.clone().into());
                Cow::Owned(Value::Object(m).to_string().into_bytes())
            }
        }
    }
}

fn encode_hello(h: &Hello) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("v".into(), h.v.into());
    if let Some(g) = &h.gossip {
        let g: Map<String, Value> = g
            .iter()
            .map(|(k, s)| (hex::encode(k), (*s).into()))
            .collect();
        m.insert("gossip".into(), Value::Object(g));
    }
    if h.bind {
        m.insert("bind".into(), 1.into());
    }
    if let (Some(id), Some(sig)) = (&h.id, &h.sig) {
        m.insert("id".into(), hex::encode(id).into());
        m.insert("sig".into(), hex::encode(sig).into());
    }
    Value::Object(m).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::HexError;

    const ID: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn round_trip(m: Message) {
        let back = Message::parse(m.msg_type(), m.payload_bytes().into_owned()).unwrap();
        assert_eq!(back, m);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(
            t in proptest::prelude::any::<u8>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            // Typed error or a message that re-encodes to something that parses again.
            if let Ok(m) = Message::parse(t, payload) {
                let again = Message::parse(m.msg_type(), m.payload_bytes().into_owned());
                proptest::prop_assert_eq!(again.ok(), Some(m));
            }
        }

        #[test]
        fn json_shaped_payloads_never_panic(s in r#"\{("(v|gossip|bind|id|sig|k|seq|blobId|peerAddress|sequences)":(\{|\[|[0-9a-f"]{0,70}|-?[0-9]{1,20}|true|null)[,}\]]{0,2}){0,5}"#) {
            for t in [1u8, 5, 6, 7] {
                let _ = Message::parse(t, s.clone().into_bytes());
            }
        }
    }

    #[test]
    fn every_type_round_trips() {
        let id = BlobId::from_hex(ID).unwrap();
        let mut gossip = BTreeMap::new();
        gossip.insert([7u8; 32], 42);
        round_trip(Message::Hello(Hello::v5(gossip)));
        round_trip(Message::Hello(Hello {
            v: 5,
            gossip: None,
            bind: false,
            id: Some([1; 32]),
            sig: Some([2; 64]),
        }));
        round_trip(Message::Request(id));
        round_trip(Message::Data(vec![0, 1, 2]));
        round_trip(Message::FindPeers(id));
        round_trip(Message::Peers(vec![
            "127.0.0.1:6881".into(),
            "[::1]:80".into(),
        ]));
        round_trip(Message::Publish(Publish {
            k: [3; 32],
            seq: 9,
            v: b"5:hello".to_vec(),
            sig: [4; 64],
            salt: Some(b"s".to_vec()),
        }));
        round_trip(Message::Announce(Announce {
            blob_id: id,
            peer_address: "example.org:1234".into(),
        }));
        round_trip(Message::Ok("Published".into()));
        round_trip(Message::DhtQuery(b"d1:q4:ping1:t2:aa1:y1:qe".to_vec()));
        // Whatever a DHT_QUERY/DHT_RESPONSE holds, it is a typed message (never refused here).
        round_trip(Message::DhtQuery(b"\xff not bencode".to_vec()));
        round_trip(Message::DhtResponse(vec![]));
        round_trip(Message::Error("Not Found".into()));
    }

    #[test]
    fn hello_wire_form_and_nested_gossip() {
        assert_eq!(
            Message::Hello(Hello::v5(BTreeMap::new()))
                .payload_bytes()
                .as_ref(),
            br#"{"v":5,"gossip":{}}"#
        );
        let nested = format!(r#"{{"v":5,"gossip":{{"sequences":{{"{ID}":3}}}},"x":1}}"#);
        let Message::Hello(h) = Message::parse(1, nested.into_bytes()).unwrap() else {
            panic!("not a hello")
        };
        let key = decode_hex_array::<32>(ID).unwrap();
        assert_eq!(h.gossip.unwrap().get(&key), Some(&3));
        let Message::Hello(h) = Message::parse(1, br#"{"v":4,"bind":1}"#.to_vec()).unwrap() else {
            panic!("not a hello")
        };
        assert_eq!((h.v, h.bind), (4, true));
    }

    #[test]
    fn hello_version_is_read_as_the_reference_reads_it() {
        let version = |payload: &str| match Message::parse(1, payload.as_bytes().to_vec()) {
            Ok(Message::Hello(h)) => h.v,
            other => panic!("{payload}: {other:?}"),
        };
        // Missing, null or not numeric: current.
        for p in [
            "{}",
            r#"{"v":null}"#,
            r#"{"v":"abc"}"#,
            r#"{"v":""}"#,
            r#"{"v":true}"#,
            r#"{"v":{}}"#,
            r#"{"v":"NaN"}"#,
            r#"{"x":1,"y":[1,{"z":2}]}"#,
        ] {
            assert_eq!(version(p), PROTOCOL_VERSION, "{p}");
        }
        for (p, v) in [
            (r#"{"v":5}"#, 5),
            (r#"{"v":"5"}"#, 5),
            (r#"{"v":" 5 "}"#, 5),
            (r#"{"v":"6"}"#, 6),
            (r#"{"v":5.0}"#, 5),
            (r#"{"v":5.7}"#, 5),
            (r#"{"v":4}"#, 4),
            (r#"{"v":"4"}"#, 4),
            (r#"{"v":4.9}"#, 4),
            (r#"{"v":0}"#, 0),
            (r#"{"v":-3}"#, 0),
            (r#"{"v":1e300}"#, u64::MAX),
        ] {
            assert_eq!(version(p), v, "{p}");
        }
    }

    #[test]
    fn ids_must_be_64_lowercase_hex() {
        assert!(matches!(
            Message::parse(2, b"../x".to_vec()),
            Err(TransportError::BadId {
                message: "REQUEST",
                source: HexError::Length {
                    expected: 64,
                    got: 4
                }
            })
        ));
        assert!(matches!(
            Message::parse(2, ID.as_bytes()[..63].to_vec()),
            Err(TransportError::BadId {
                message: "REQUEST",
                source: HexError::Length {
                    expected: 64,
                    got: 63
                }
            })
        ));
        assert!(matches!(
            Message::parse(2, ID.to_uppercase().into_bytes()),
            Err(TransportError::BadId {
                message: "REQUEST",
                source: HexError::NotLowercaseHex
            })
        ));
        assert!(matches!(
            Message::parse(2, b"\xff\xfe".to_vec()),
            Err(TransportError::NotUtf8("REQUEST"))
        ));
        assert!(matches!(
            Message::parse(4, b"ab".to_vec()),
            Err(TransportError::BadId {
                message: "FIND_PEERS",
                ..
            })
        ));
    }

    #[test]
    fn malformed_json_is_refused_with_reason() {
        for (t, payload, name) in [
            (1u8, &b"{\"v\":"[..], "HELLO"),
            (1, b"[5]", "HELLO"),
            (1, b"{\"v\":5,\"gossip\":{\"zz\":1}}", "HELLO"),
            (1, b"{\"v\":5,\"id\":\"00\"}", "HELLO"),
            (6, b"{\"k\":1}", "PUBLISH"),
            (6, b"not json", "PUBLISH"),
            (7, b"{\"blobId\":5}", "ANNOUNCE"),
            (5, b"{}", "PEERS"),
            (5, b"[\"nohost\"]", "PEERS"),
            (5, b"[\"h:0\"]", "PEERS"),
        ] {
            match Message::parse(t, payload.to_vec()) {
                Err(TransportError::BadPayload { message, .. }) => assert_eq!(message, name),
                other => panic!("{name} {:?}: {other:?}", String::from_utf8_lossy(payload)),
            }
        }
        let announce = format!(r#"{{"blobId":"{ID}","peerAddress":"a b:1"}}"#);
        assert!(matches!(
            Message::parse(7, announce.into_bytes()),
            Err(TransportError::BadPayload {
                message: "ANNOUNCE",
                ..
            })
        ));
        let big_v = format!(
            r#"{{"k":"{ID}","seq":1,"v":"{}","sig":"{}"}}"#,
            "00".repeat(MAX_PUBLISH_VALUE + 1),
            "00".repeat(64)
        );
        assert!(matches!(
            Message::parse(6, big_v.into_bytes()),
            Err(TransportError::BadPayload {
                message: "PUBLISH",
                ..
            })
        ));
        for t in [0x00, 0x0b, 0x42, 0xfe] {
            assert!(matches!(
                Message::parse(t, vec![1, 2]),
                Err(TransportError::UnknownType(u)) if u == t
            ));
        }
        assert!(matches!(
            Message::parse(0xff, vec![0xc3]),
            Err(TransportError::NotUtf8("ERROR"))
        ));
    }
}
