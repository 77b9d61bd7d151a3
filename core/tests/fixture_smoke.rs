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
