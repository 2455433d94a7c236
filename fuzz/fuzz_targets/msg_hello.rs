//! The HELLO payload parser (type 0x01) on arbitrary bytes: typed error or a message
//! that survives an encode/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use megatorrent_fuzz::check_message;

fuzz_target!(|data: &[u8]| {
    check_message(0x01, data);
});
