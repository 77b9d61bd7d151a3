//! Criterion benches of the protocol core: header hashing, validating a 1-input signed
//! transaction, and MMR proof verification. Run: `cargo bench -p minima-core --bench core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use minima_core::chain::validate::{check_txpow, run_scripts, ScriptBudget};
use minima_core::crypto::{sha3, Hash, Keypair};
use minima_core::fixture::ChainBuilder;
use minima_core::mmr::Mmr;
use minima_core::script::SigCache;
use minima_core::types::{txpow_id, Coin, CoinRecord};
use minima_core::Params;

fn headers(c: &mut Criterion) {
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 20);
    b.mine(20);
    let h = b.chain.tip().txpow.header.clone();
    c.bench_function("header_id_full", |bn| bn.iter(|| black_box(&h).id()));
    let prefix = h.prefix_hash();
    let mut nonce = [0u8; 32];
    let mut n = 0u64;
    let data = [7u8; 100];
    c.bench_function("raw_sha3_100_bytes", |bn| bn.iter(|| sha3(black_box(&data))));
    c.bench_function("header_id_nonce_tail", |bn| {
        bn.iter(|| {
            n += 1;
            nonce[..8].copy_from_slice(&n.to_be_bytes());
            txpow_id(black_box(&prefix), &nonce)
        })
    });
}

fn signed_tx(c: &mut Criterion) {
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 20);
    b.mine(12);
    let k = b.add_key(Keypair::derive(&[9; 32], 0).unwrap());
    let f = b.pay_to_key(k, 1_000_000).unwrap();
    b.mine_block(false, vec![f]);
    let tx = b.make_signed_tx(k).unwrap();
    let coin = tx.body.transaction.inputs[0].coin_id;
    let proof = b.coin_proof(&coin).unwrap();
    let params = b.params.clone();
    c.bench_function("validate_signed_1in_txpow", |bn| {
        bn.iter(|| {
            check_txpow(&params, black_box(&tx)).unwrap();
            run_scripts(&params, &tx, &[proof.0], 20, &mut SigCache::new(), ScriptBudget::alone(&params, 1))
                .unwrap()
        })
    });
    c.bench_function("mempool_check_signed_1in_txpow", |bn| {
        bn.iter(|| b.chain.check_mempool_txpow(black_box(&tx), std::slice::from_ref(&proof)).unwrap())
    });
}

fn mmr_proofs(c: &mut Criterion) {
    let mut m = Mmr::new();
    let rec = |i: u64| CoinRecord {
        coin: Coin {
            coin_id: sha3(&i.to_be_bytes()),
            address: Hash::ZERO,
            amount: i + 1,
            token_id: Hash::ZERO,
            state: vec![],
        },
        created: 0,
    };
    for i in 0..100_000 {
        m.append_coin(&rec(i)).unwrap();
    }
    let root = m.root().unwrap();
    let p = m.proof(31_337, Hash::ZERO).unwrap();
    let r = rec(31_337);
    c.bench_function("mmr_proof_verify_100k_leaves", |bn| {
        bn.iter(|| assert!(p.verify(black_box(&r), 100_000, &root)))
    });
}

criterion_group!(benches, headers, signed_tx, mmr_proofs);
criterion_main!(benches);
