//! Wire frames (`Message::from_frame`: the 5-byte header checks, then the payload): never
//! panic, and the codec is canonical — an accepted frame re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minima_core::net::message::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::from_frame(data) {
        assert_eq!(m.to_frame(), data, "message encoding is not canonical: {:?}", m.kind());
    }
});
