//! DHT_QUERY / DHT_RESPONSE (types 0x09, 0x0A) on arbitrary bytes: always a typed message that
//! round-trips, and the KRPC decoders give a typed error or a value, never a panic or a stack
//! overflow (the payload is hostile bencode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent::transport::{KrpcQuery, KrpcResponse};
use megatorrent_fuzz::check_message;

fuzz_target!(|data: &[u8]| {
    assert!(check_message(0x09, data).is_some());
    assert!(check_message(0x0A, data).is_some());
    if let Ok(q) = KrpcQuery::decode(data) {
        // A decoded query's transaction id echoes in a response that decodes back.
        let r = KrpcResponse::encode(&q.transaction, &[7; 20]);
        let back = KrpcResponse::decode(&r).expect("our response decodes");
        assert_eq!(back.transaction, q.transaction);
    }
    let _ = KrpcResponse::decode(data);
});
