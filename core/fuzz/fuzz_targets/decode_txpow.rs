//! TxPoW decoding: never panics, and the codec is canonical — whatever decodes re-encodes to
//! exactly the input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minima_core::codec::{Decode, Encode};
use minima_core::types::TxPoW;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = TxPoW::decode(data) {
        assert_eq!(t.encode(), data, "TxPoW encoding is not canonical");
        // What every receiver computes next must not panic either.
        let _ = t.id();
        let _ = t.body.hash();
    }
});
