//! `Chain::add_block` on a fixture chain: the valid next block (its own transaction, one
//! listed TxPoW, a witness proving both inputs), its bytes mutated by the input, decoded and,
//! if the input asks, resealed (body hash, listed id and nonce fixed so the mutation reaches
//! the checks past proof of work). Whatever comes out, `add_block` must not panic.
//!
//! Input: one flag byte, then 3-byte mutation ops over [block | witness | listed] (see
//! `minima_core_fuzz::mutate`). Flags: 1 reseal the block, 2 with its body hash fixed,
//! 4 reseal the listed TxPoW (body hash fixed), 8 point the block's first listed id at the
//! (mutated) listed TxPoW, 16 withhold the listed TxPoW.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use minima_core::codec::{Decode, Encode};
use minima_core::crypto::Hash;
use minima_core::mmr::BlockWitness;
use minima_core::types::TxPoW;
use minima_core_fuzz::{block_world, mutate, reseal_cheap};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, ops)) = data.split_first() else { return };
    let w = block_world();
    let mut segs = [w.block.encode(), w.witness.encode(), w.listed.encode()];
    mutate(&mut segs, ops);
    let (Ok(mut block), Ok(witness), Ok(mut listed)) =
        (TxPoW::decode(&segs[0]), BlockWitness::decode(&segs[1]), TxPoW::decode(&segs[2]))
    else {
        return;
    };
    if flags & 4 != 0 && !reseal_cheap(&mut listed, true) {
        return;
    }
    let mut fix_body = flags & 2 != 0;
    if flags & 8 != 0 {
        if let Some(first) = block.body.txpow_ids.first_mut() {
            *first = listed.id();
            fix_body = true;
        }
    }
    if (flags & 1 != 0 || fix_body) && !reseal_cheap(&mut block, fix_body) {
        return;
    }
    let mut src: HashMap<Hash, TxPoW> = HashMap::new();
    if flags & 16 == 0 {
        src.insert(listed.id(), listed);
    }
    let mut chain = w.chain.clone();
    let _ = chain.add_block(block, witness, &src);
});
