//! Partition and heal over real QUIC: five mining nodes split 2/3; the lighter side confirms
//! a transaction; after the heal every node follows the heavier branch, and the transaction
//! goes back to the mempool and confirms on the winning branch.

mod common;
use common::{start_with, wait_until};

use std::time::Duration;

use minima_core::crypto::{script_address, Hash};
use minima_core::fixture::ChainBuilder;
use minima_core::net::message::CoinQuery;
use minima_core::node::{Event, Mining, Node};
use minima_core::types::{Output, Transaction, Witness};
use minima_core::Params;

fn show(all: &[&Node]) -> String {
    all.iter()
        .map(|n| {
            let s = n.status().unwrap();
            format!(
                "h{} {} w{} mp{} peers{} bans{}",
                s.height,
                &s.tip[..12],
                s.weight,
                s.mempool,
                s.peers,
                s.bans
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn partition_and_heal() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    // Genesis now, so the difficulty rule paces blocks at devnet's 2 s from the start.
    let now = common::now_ms();
    // A main-sized tree, so the fork stays inside every tree however fast the first
    // (minimum-work) blocks come: the heal is a block-by-block reorg.
    let mut p = Params { tree_depth: 2_048, ..Params::devnet() };
    p.genesis.time_ms = now;
    let mine = |duty: f64| Mining::Continuous { duty };
    let ip = |n: u8| Some([127, n, 0, 1]);
    // Side A: nodes 0 and 1, little hash power. Side B: 2, 3, 4 (4 keeps the full coin set).
    let n0 = start_with(&dir.path().join("0"), &p, ip(10), vec![], mine(0.05), false);
    let n1 = start_with(&dir.path().join("1"), &p, ip(11), vec![n0.net_addr().unwrap()], mine(0.05), false);
    let n2 = start_with(&dir.path().join("2"), &p, ip(12), vec![], mine(0.3), false);
    let n4 = start_with(&dir.path().join("4"), &p, ip(14), vec![n2.net_addr().unwrap()], mine(0.3), true);
    let b_peers = vec![n2.net_addr().unwrap(), n4.net_addr().unwrap()];
    let n3 = start_with(&dir.path().join("3"), &p, ip(13), b_peers, mine(0.3), false);
    let all = [&n0, &n1, &n2, &n3, &n4];
    assert!(wait_until(Duration::from_secs(60), || n0.status().unwrap().height >= 3), "A mines");
    // A spends the genesis coin (devnet's is `RETURN TRUE`), proven against A's tip.
    let mut fx = ChainBuilder::new(p.clone(), now, 0);
    let g = fx.take_free_coin().unwrap();
    let sink = script_address("RETURN TRUE");
    let half = g.coin.amount / 2;
    let outputs = vec![
        Output { address: sink, amount: half, token_id: Hash::ZERO, state: vec![] },
        Output { address: sink, amount: g.coin.amount - half, token_id: Hash::ZERO, state: vec![] },
    ];
    let tx = Transaction { version: 1, inputs: vec![g.coin.clone()], outputs, state: vec![] };
    let out_id = tx.output_coin_id(0).unwrap();
    let txpow = fx.make_custom_tx(tx, Witness::new(vec![], vec!["RETURN TRUE".into()]));
    let (_, gmmr) = minima_core::chain::genesis(&p).unwrap();
    let tip = Hash::from_hex(&n0.status().unwrap().tip).unwrap();
    n0.submit_txpow(txpow, vec![(0, gmmr.proof(0, tip).unwrap())]).unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || n0.status().unwrap().mempool == 0
            && n1.status().unwrap().mempool == 0),
        "confirmed on A: {}",
        show(&all)
    );
    // A stops; B mines on until it is heavier.
    n0.set_mining(false).unwrap();
    n1.set_mining(false).unwrap();
    let w = |n: &Node| n.status().unwrap().weight.parse::<u128>().unwrap();
    assert!(wait_until(Duration::from_secs(180), || w(&n2) > w(&n0) * 3 / 2), "B heavier: {}", show(&all));
    eprintln!("before heal: {}", show(&all));
    let mut ev = n1.subscribe();
    n1.add_peer(n2.net_addr().unwrap()).unwrap();
    let reorged = wait_until(Duration::from_secs(60), || {
        std::iter::from_fn(|| ev.try_recv().ok()).any(|e| matches!(e, Event::Reorg { .. }))
    });
    assert!(reorged, "A reorganised onto B's branch: {}", show(&all));
    eprintln!("after heal: {}", show(&all));
    // The transaction comes back and confirms on B's branch: its output is provable there.
    n0.set_mining(true).unwrap();
    n1.set_mining(true).unwrap();
    let confirmed = wait_until(Duration::from_secs(120), || {
        n3.fetch_coin_proofs(CoinQuery::Coins(vec![out_id])).map(|v| v.len() == 1).unwrap_or(false)
    });
    assert!(confirmed, "confirmed on the winning branch: {}", show(&all));
    for n in all {
        n.set_mining(false).unwrap();
    }
    // Equal-weight tips may stay split (a tie keeps each node's own branch): one more block
    // from one node settles it.
    std::thread::sleep(Duration::from_secs(1));
    let top = all.iter().map(|n| n.status().unwrap().height).max().unwrap();
    n2.set_mining(true).unwrap();
    assert!(wait_until(Duration::from_secs(60), || n2.status().unwrap().height > top), "one more block");
    n2.set_mining(false).unwrap();
    let same = || {
        std::thread::sleep(Duration::from_millis(500));
        let t: Vec<String> = all.iter().map(|n| n.status().unwrap().tip).collect();
        t.iter().all(|x| *x == t[0])
    };
    assert!(wait_until(Duration::from_secs(60), same), "one tip: {}", show(&all));
    for n in all {
        assert_eq!(n.status().unwrap().mempool, 0);
        n.stop(Duration::from_secs(5)).unwrap();
    }
}
