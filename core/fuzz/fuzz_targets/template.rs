//! Block assembly: the input picks mempool entries among the template world's (scripts with
//! sig-ops, height-bound scripts, one expiring at the next height, script work, large state,
//! conflicting spends of one coin with different burns) and the time; whenever
//! `miner::template::build` returns a template, the block it describes, once a nonce is
//! mined, is one `add_block` accepts.
//!
//! Input: a prng byte, a signed 16-bit time offset in seconds from NOW, then one 16-bit entry
//! index (mod the number of entries) per entry, at most 24.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use minima_core::chain::AddOutcome;
use minima_core::crypto::Hash;
use minima_core::fixture::ChainBuilder;
use minima_core::mempool::Mempool;
use minima_core::miner::template;
use minima_core::types::TxPoW;
use minima_core_fuzz::{template_world, NOW};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let w = template_world();
    let prng = [data[0]; 32];
    let offset = i16::from_be_bytes([data[1], data[2]]) as i64 * 1_000;
    let now = NOW.saturating_add_signed(offset);
    let mut pool = Mempool::new(usize::MAX);
    for pick in data[3..].chunks_exact(2).take(24) {
        let i = u16::from_be_bytes([pick[0], pick[1]]) as usize % w.entries.len();
        let _ = pool.insert(w.entries[i].clone(), 0);
    }
    let ranked = pool.ranked();
    let Ok(t) = template::build(&w.tip, &ranked, now, prng) else { return };
    let mut block = TxPoW { header: t.header.clone(), body: t.body.clone() };
    ChainBuilder::reseal(&mut block, false);
    let src: HashMap<Hash, TxPoW> = t.listed.iter().map(|x| (x.id(), x.clone())).collect();
    let mut after = w.tip.clone();
    let out = after.add_block(block, t.witness.clone(), &src);
    assert!(matches!(out, Ok(AddOutcome::Added { .. })), "template rejected: {out:?}");
});
