use minima_core::fixture::ChainBuilder;
use minima_core::Params;

#[test]
fn devnet_fixture_chain_with_transactions_and_cascade() {
    let now = 1_800_000_000_000;
    let mut b = ChainBuilder::new(Params::devnet(), now, 300);
    let t0 = std::time::Instant::now();
    b.mine(300);
    eprintln!("300 blocks in {:?}", t0.elapsed());
    assert_eq!(b.chain.tip().number(), 300);
    assert_eq!(b.chain.tip().txpow.header.time_ms, now);
    assert!(!b.chain.cascade().is_empty());
    assert!(b.chain.tree_len() <= 64 + 8 + 1);
    assert_eq!(b.chain.tip().txpow.header.mmr_total, Params::devnet().genesis.amount);
}

#[test]
fn twenty_thousand_blocks_with_a_transaction_each() {
    // The fixture's promise: a long, fully validated chain in seconds, ending at `now`.
    let now = 1_800_000_000_000;
    let mut b = ChainBuilder::new(Params::devnet(), now, 20_000);
    b.keep_blocks = false;
    let t0 = std::time::Instant::now();
    b.mine(20_000);
    eprintln!("20,000 devnet blocks with a transaction each in {:?}", t0.elapsed());
    let tip = b.chain.tip();
    assert_eq!(tip.number(), 20_000);
    assert_eq!(tip.txpow.header.time_ms, now);
    assert_eq!(tip.txids.len(), 1);
    assert_eq!(b.mmr().leaf_count(), 1 + 2 * 20_000);
    assert_eq!(tip.txpow.header.mmr_total, Params::devnet().genesis.amount);
}

#[test]
fn main_params_fixture_reaches_a_full_tree() {
    // Main parameters (10,000-hash minimum work) with the open genesis coin the fixture adds.
    let now = 1_800_000_000_000;
    let p = Params::main();
    let n = p.tree_depth + p.cascade_step + 10;
    let mut b = ChainBuilder::new(p.clone(), now, n);
    b.keep_blocks = false;
    b.mine(n);
    assert_eq!(b.chain.tip().number(), n);
    assert_eq!(b.chain.tree_len() as u64, p.tree_depth + 10 + 1);
    assert_eq!(b.chain.cascade().len() as u64, p.cascade_step);
}
