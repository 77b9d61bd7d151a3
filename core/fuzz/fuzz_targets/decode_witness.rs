//! Block MMR witness decoding: never panics, canonical round trip; rebuilding a partial MMR
//! from a decoded witness (what validation does first) and reading its root and total must
//! not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minima_core::codec::{Decode, Encode};
use minima_core::mmr::{BlockWitness, Mmr};

fuzz_target!(|data: &[u8]| {
    let Ok(w) = BlockWitness::decode(data) else { return };
    assert_eq!(w.encode(), data, "BlockWitness encoding is not canonical");
    let _ = w.parent_peaks.root();
    let _ = w.parent_peaks.total();
    let coin = &minima_core_fuzz::script_world().coin;
    let coins = vec![coin; w.inputs.len()];
    if let Ok(m) = Mmr::from_witness(&w, &coins) {
        let _ = m.root();
        let _ = m.total();
        let _ = m.peaks();
    }
});
