//! Cascade headers as a peer sends them: decode (canonical round trip), then
//! `Cascade::verify` against devnet and its genesis — never a panic, and what verifies has
//! consistent links.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minima_core::chain::cascade::{Cascade, CascadeHeaders};
use minima_core::codec::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = CascadeHeaders::decode(data) else { return };
    assert_eq!(h.encode(), data, "CascadeHeaders encoding is not canonical");
    let (params, genesis) = minima_core_fuzz::base_params();
    if let Ok(c) = Cascade::verify(h.0, params, genesis) {
        assert!(c.links_ok());
        let _ = c.weight();
    }
});
