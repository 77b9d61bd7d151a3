//! Difficulty golden vectors, heaviest-path fork choice and its tie-break, reorgs, the cascade at
//! 100,000 blocks against a reference walk, receiver-side cascade verification, forks below
//! the root, and Params invariants.

use std::collections::HashMap;

use minima_core::chain::cascade::{header_super_level, Cascade};
use minima_core::chain::pow::{median_time, next_target, work_of};
use minima_core::chain::{AddOutcome, Chain, ChainError, NoTxPows};
use minima_core::crypto::Hash;
use minima_core::fixture::ChainBuilder;
use minima_core::types::{TxHeader, TxPoW};
use minima_core::{Params, U256};

const NOW: u64 = 1_800_000_000_000;

fn window(targets: &[u64], spacing: u64) -> Vec<(U256, u64)> {
    targets.iter().enumerate().map(|(i, t)| (U256::from(*t), i as u64 * spacing)).collect()
}

#[test]
fn difficulty_golden_vectors() {
    let p = Params::devnet(); // window 32, median 8, 2,000 ms blocks
    let min = p.magic.min_target();
    // Blocks 1..7 always get the minimum-work target.
    assert_eq!(next_target(&p, 7, &window(&[5; 7], 1)), min);
    // Window start (h < diff_window): n = h = 20, k = 8, on-time blocks keep the target.
    assert_eq!(next_target(&p, 20, &window(&[1_000_000; 20], 2_000)), U256::from(1_000_000u64));
    // Full window, 1.5 s blocks: t_old = 4,500, t_new = 40,500, Δh = 24:
    // 32e6 · 36,000 / (32 · 24 · 2,000) = 750,000.
    assert_eq!(next_target(&p, 100, &window(&[1_000_000; 32], 1_500)), U256::from(750_000u64));
    // Truncation: Σ = 31,999,984 → 749,999.625 → 749,999.
    let mixed: Vec<u64> = (0..32).map(|i| if i % 2 == 0 { 1_000_001 } else { 999_998 }).collect();
    assert_eq!(next_target(&p, 100, &window(&mixed, 1_500)), U256::from(749_999u64));
    // Only the last diff_window ancestors count.
    let mut long = window(&[7; 10], 1_500);
    long.extend(window(&[1_000_000; 32], 1_500).into_iter().map(|(t, s)| (t, s + 15_000)));
    assert_eq!(next_target(&p, 100, &long), U256::from(750_000u64));
    // Clamp down: 20× too fast → raw 50,000 → mean / 2.
    assert_eq!(next_target(&p, 100, &window(&[1_000_000; 32], 100)), U256::from(500_000u64));
    // Clamp up: 10× too slow → raw 10,000,000 → 2 · mean.
    assert_eq!(next_target(&p, 100, &window(&[1_000_000; 32], 20_000)), U256::from(2_000_000u64));
    // Time going backwards: Δt = max(1, …) → clamped to mean / 2.
    let back: Vec<(U256, u64)> =
        (0..32u64).map(|i| (U256::from(1_000_000u64), 1_000_000 - i * 100)).collect();
    assert_eq!(next_target(&p, 100, &back), U256::from(500_000u64));
    // Minimum floor: never easier than the minimum-work target.
    let easy: Vec<(U256, u64)> = (0..32u64).map(|i| (min, i * 20_000)).collect();
    assert_eq!(next_target(&p, 100, &easy), min);
    // Median time past: element (m−1)/2 of the sorted list.
    assert_eq!(median_time(&[5, 1, 4, 2, 3]), 3);
    assert_eq!(median_time(&[4, 1, 3, 2]), 2);
    // Work of a target.
    assert_eq!(work_of(&min), 256);
}

#[test]
fn the_heavier_branch_wins_and_the_reorg_is_reported() {
    let mut a = ChainBuilder::new(Params::devnet(), NOW, 100);
    a.mine(20);
    let fork = a.head();
    let mut b = a.clone().with_salt(7);
    a.mine(3);
    b.mine(5);
    let a_tip = a.head();
    let before = a.chain.weight();
    let mut last = None;
    for (t, w) in &b.blocks()[20..] {
        last = Some(a.chain.add_block(t.clone(), w.clone(), b.txpows()).unwrap());
    }
    assert_eq!(a.chain.tip_id(), b.head());
    assert!(a.chain.weight() > before);
    // The reorg was reported when the B branch overtook: 3 A blocks out, B blocks in.
    match last.unwrap() {
        AddOutcome::Added { reorg: Some(r), .. } => {
            assert_eq!(r.connected.last(), Some(&b.head()));
        }
        other => panic!("{other:?}"),
    }
    // Replay to see the switch itself.
    let mut c = ChainBuilder::new(Params::devnet(), NOW, 100);
    c.mine(20);
    assert_eq!(c.head(), fork);
    for (t, w) in &a.blocks()[20..] {
        c.chain.add_block(t.clone(), w.clone(), a.txpows()).unwrap();
    }
    assert_eq!(c.chain.tip_id(), a_tip);
    let mut switched = None;
    for (t, w) in &b.blocks()[20..] {
        if let AddOutcome::Added { reorg: Some(r), .. } =
            c.chain.add_block(t.clone(), w.clone(), b.txpows()).unwrap()
        {
            if !r.disconnected.is_empty() {
                switched = Some(r);
            }
        }
    }
    let r = switched.expect("a reorg");
    assert_eq!(r.disconnected.len(), 3);
    assert_eq!(r.disconnected[0], a_tip);
    assert_eq!(r.connected.len(), 4, "B overtakes with its 4th block");
    // The MMR state follows the tip: the header's root is the tip block's peaks root.
    assert_eq!(c.chain.tip().peaks.root(), c.chain.tip().txpow.header.mmr_root);
}

/// A chain of twelve blocks without transactions, to branch from.
fn twelve_empty_blocks() -> ChainBuilder {
    let mut base = ChainBuilder::new(Params::devnet(), NOW, 100);
    base.tx_per_block = false;
    base.mine(12);
    base
}

/// Add `blocks` to `chain`; each must be valid.
fn add(chain: &mut Chain, blocks: &[(TxPoW, minima_core::mmr::BlockWitness)]) {
    for (t, w) in blocks {
        chain.add_block(t.clone(), w.clone(), &NoTxPows).unwrap();
    }
}

/// The chain's weight (read in O(1) from the tip's and root's path work) is its cascade's
/// weight plus the work of every tree block on the best path, as the tree grows, prunes into
/// the cascade and reorganises.
#[test]
fn weight_is_the_cascade_and_the_best_path_through_pruning_and_reorgs() {
    let walked = |c: &Chain| {
        c.best_path()
            .iter()
            .fold(c.cascade().weight(), |w, id| w.saturating_add(c.block(id).map_or(0, |b| b.work)))
    };
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 100);
    b.tx_per_block = false;
    for _ in 0..10 {
        b.mine(12);
        assert_eq!(b.chain.weight(), walked(&b.chain));
    }
    assert!(!b.chain.cascade().is_empty(), "the tree was pruned into the cascade");
    let base = twelve_empty_blocks();
    let (mut x, mut y) = (base.clone().with_salt(1), base.clone().with_salt(2));
    x.mine(2);
    y.mine(3);
    let mut c = x.chain.clone();
    add(&mut c, &y.blocks()[12..]);
    assert_eq!(c.tip_id(), y.head(), "the heavier branch won");
    assert_eq!(c.weight(), walked(&c));
}

#[test]
fn a_tie_keeps_the_current_branch_else_the_lower_id() {
    let base = twelve_empty_blocks();
    let mut x = base.clone().with_salt(1);
    let mut y = base.clone().with_salt(2);
    let mut z = base.clone().with_salt(3);
    x.mine(2);
    y.mine(2);
    z.mine(3);
    let mut chain = base.chain.clone();
    add(&mut chain, &x.blocks()[12..]);
    assert_eq!(chain.tip_id(), x.head());
    // Y ties X (same work): the current branch stays.
    add(&mut chain, &y.blocks()[12..]);
    assert_eq!(chain.tip_id(), x.head());
    // Z has more work: it wins.
    add(&mut chain, &z.blocks()[12..14]);
    assert_eq!(chain.tip_id(), x.head(), "two Z blocks only tie");
    add(&mut chain, &z.blocks()[14..]);
    assert_eq!(chain.tip_id(), z.head());
    // A tie where neither side is the current branch goes to the lower id: with P (two
    // blocks) current, Q1 and Q2 (three blocks each, sharing their first two) arrive; the one
    // with the higher id first takes over, the other ties it and the first stays. Asked to
    // prefer P again (a restart whose stored tip is lighter), the choice is between the tied
    // Q1 and Q2: the lower id, which was never the tip before.
    let mut chain = base.chain.clone();
    let mut pb = base.clone().with_salt(21);
    pb.mine(2);
    let mut q = base.clone().with_salt(22);
    q.mine(2);
    let mut q1 = q.clone().with_salt(23);
    q1.mine(1);
    let mut q2 = q.clone().with_salt(24);
    q2.mine(1);
    let (higher, lower) = if q1.head() > q2.head() { (&q1, &q2) } else { (&q2, &q1) };
    add(&mut chain, &pb.blocks()[12..]);
    add(&mut chain, &q.blocks()[12..]);
    assert_eq!(chain.tip_id(), pb.head(), "Q ties P: the current branch stays");
    add(&mut chain, &higher.blocks()[14..]);
    assert_eq!(chain.tip_id(), higher.head());
    add(&mut chain, &lower.blocks()[14..]);
    assert_eq!(chain.tip_id(), higher.head(), "a tie: the current branch stays");
    chain.prefer_tip(&pb.head());
    assert_eq!(chain.tip_id(), lower.head(), "tie between two non-current tips: lower id");
}

/// Fork choice depends only on the branches every node learns of. Peers announce their best
/// tips (and sync fetches the path to them), never the side blocks they hold, so two nodes
/// that hold the same two best branches must choose the same tip whatever side blocks only
/// one of them has. Under GHOST (subtree work) they did not: a node whose branch A carried
/// two side blocks of its own kept A (3 path blocks + 2 side = 5) over B's longer path (4),
/// while a node without them took B, and the network stayed split (the `net_partition`
/// flake). The tip is the end of the heaviest root→tip path, the same weight sync compares.
#[test]
fn side_blocks_only_one_node_holds_do_not_split_the_network() {
    let base = twelve_empty_blocks();
    let mut a = base.clone().with_salt(1);
    a.mine(1);
    let mut side = a.clone().with_salt(5);
    side.mine(2);
    a.mine(2);
    let mut b = base.clone().with_salt(2);
    b.mine(4);
    // X mined on A and holds A's side blocks; Y learnt of A's tip only.
    let mut x = base.chain.clone();
    add(&mut x, &a.blocks()[12..]);
    add(&mut x, &side.blocks()[13..]);
    assert_eq!(x.tip_id(), a.head(), "the side blocks tie A's path: A stays");
    let mut y = base.chain.clone();
    add(&mut y, &a.blocks()[12..]);
    // Both then learn of B's tip and fetch its path.
    add(&mut x, &b.blocks()[12..]);
    add(&mut y, &b.blocks()[12..]);
    assert_eq!(y.tip_id(), b.head());
    assert_eq!(x.tip_id(), b.head(), "the same tip on both nodes: the heavier path");
    assert_eq!(x.weight(), y.weight());
}

/// The SPEC §6 walk, written out plainly for the reference: headers newest first.
fn reference_walk(sls: &[u32], per_level: usize, levels: u32) -> Vec<(usize, u32)> {
    let mut kept = vec![];
    let mut level = 0;
    let mut count = 0;
    let mut i = 0;
    while i < sls.len() {
        if count == per_level {
            if level == levels - 1 {
                break;
            }
            level += 1;
            count = 0;
            continue;
        }
        if sls[i] >= level {
            kept.push((i, level));
            count += 1;
        }
        i += 1;
    }
    kept
}

#[test]
fn cascade_of_a_hundred_thousand_blocks() {
    let p = Params::devnet();
    let n: u64 = 100_000;
    let mut b = ChainBuilder::new(p.clone(), NOW, n);
    b.keep_blocks = false;
    b.tx_per_block = false;
    // Super level of every block, by number.
    let g = b.chain.tip();
    let mut sl: Vec<u32> = vec![header_super_level(&g.txpow.header, &g.id)];
    let mut side_headers: Vec<TxHeader> = vec![];
    let mut old_builder = None;
    while b.chain.tip().number() < n {
        let number = b.chain.tip().number() + 1;
        if number == n - 150 {
            b.keep_blocks = true;
        }
        if number == 1_000 {
            old_builder = Some(b.clone().with_salt(99));
        }
        b.mine_block(false, vec![]);
        let t = b.chain.tip();
        assert_eq!(t.number(), number);
        let s = header_super_level(&t.txpow.header, &t.id);
        sl.push(s);
        if s == 0 && number > n - 3_000 && side_headers.len() < 50 {
            side_headers.push(t.txpow.header.clone());
        }
        if number % 10_000 == 0 {
            assert!(b.chain.cascade().links_ok(), "links at {number}");
            assert!(b.chain.cascade().len() <= p.cascade_per_level * p.cascade_levels as usize);
        }
    }
    let chain = &b.chain;
    let root_n = chain.root().number();
    assert_eq!(chain.tip().number() - root_n, p.tree_depth + (n - p.tree_depth) % p.cascade_step);
    // Reference: the walk over every header older than the root, newest first.
    let newest_first: Vec<u32> = (0..root_n).rev().map(|i| sl[i as usize]).collect();
    let want: Vec<(u64, u32)> = reference_walk(&newest_first, p.cascade_per_level, p.cascade_levels)
        .into_iter()
        .map(|(i, level)| (root_n - 1 - i as u64, level))
        .collect();
    let got: Vec<(u64, u32)> =
        chain.cascade().entries().iter().map(|e| (e.header.block_number, e.level)).collect();
    assert_eq!(got, want);
    assert!(got.len() <= p.cascade_per_level * p.cascade_levels as usize);
    assert_eq!(got.last(), Some(&(0, want.last().unwrap().1)), "genesis stays");
    eprintln!("cascade after {n} blocks: {} headers, top level {}", got.len(), got.last().unwrap().1);
    // Links and weight.
    assert!(chain.cascade().links_ok());
    let weight: u128 =
        chain.cascade().entries().iter().map(|e| work_of(&e.header.block_target) << e.level).sum();
    assert_eq!(chain.cascade().weight(), weight);

    // The receiver recomputes every level: the honest cascade verifies to the same levels…
    let headers = chain.cascade().headers();
    let verified = Cascade::verify(headers.clone(), &p, &chain.genesis_id()).unwrap();
    assert_eq!(verified.entries(), chain.cascade().entries());
    // …an inflated one (a level-0 header where level ≥ 2 is needed) is refused…
    let deep = chain.cascade().entries().iter().position(|e| e.level >= 2).unwrap();
    let mut inflated = headers.clone();
    let filler = side_headers.iter().find(|h| {
        h.block_number < inflated[deep - 1].block_number && h.block_number > inflated[deep + 1].block_number
    });
    if let Some(f) = filler {
        inflated[deep] = f.clone();
    } else {
        // No unkept header in range: a level-0 header from the tree end works too.
        inflated[deep] = side_headers[0].clone();
    }
    assert!(matches!(Cascade::verify(inflated, &p, &chain.genesis_id()), Err(ChainError::Cascade(_))));
    // …a missing header breaks a link…
    let mut missing = headers.clone();
    let lvl1 = chain.cascade().entries().iter().position(|e| e.level == 1).unwrap();
    missing.remove(lvl1 + 3);
    assert_eq!(Cascade::verify(missing, &p, &chain.genesis_id()), Err(ChainError::Cascade("broken link")));
    // …a forged link with valid proof of work is refused…
    let mut forged = headers.clone();
    forged[0].parents.0[0] = Hash([7; 32]);
    let mut t = TxPoW { header: forged[0].clone(), body: b.blocks()[0].0.body.clone() };
    t.header.block_target = forged[0].block_target;
    ChainBuilder::reseal(&mut t, false);
    forged[0] = t.header;
    assert_eq!(Cascade::verify(forged, &p, &chain.genesis_id()), Err(ChainError::Cascade("broken link")));
    // …and so is one that ends elsewhere than genesis.
    let mut short = headers.clone();
    short.pop();
    assert!(Cascade::verify(short, &p, &chain.genesis_id()).is_err());

    // A node starting from the verified cascade and the tree root checks every tree block and
    // reaches the same tip and weight.
    let root = chain.root();
    let mut synced = Chain::from_parts(
        p.clone(),
        verified,
        root.txpow.clone(),
        chain.extra(&root.id).unwrap().witness.clone(),
        root.peaks.clone(),
    )
    .unwrap();
    let by_id: HashMap<Hash, &(TxPoW, minima_core::mmr::BlockWitness)> =
        b.blocks().iter().map(|x| (x.0.id(), x)).collect();
    for id in chain.best_path().into_iter().skip(1) {
        let (t, w) = by_id[&id];
        assert!(matches!(synced.add_block(t.clone(), w.clone(), &NoTxPows), Ok(AddOutcome::Added { .. })));
    }
    assert_eq!(synced.tip_id(), chain.tip_id());
    assert_eq!(synced.weight(), chain.weight());

    // A fork below the tree root is refused.
    let mut old = old_builder.unwrap();
    old.keep_blocks = true;
    old.mine_block(false, vec![]);
    let (ft, fw) = old.blocks().last().unwrap().clone();
    let mut c2 = chain.clone();
    assert_eq!(c2.add_block(ft, fw, &NoTxPows), Err(ChainError::BelowRoot));
}

#[test]
fn params_invariants_are_enforced_at_start() {
    let mut p = Params::devnet();
    p.proof_window = 60;
    assert!(matches!(Chain::new(p), Err(ChainError::Params(_))));
    let mut p = Params::devnet();
    p.mtp_window = 64;
    assert!(matches!(Chain::new(p), Err(ChainError::Params(_))));
    assert!(matches!(Chain::new(Params::main()), Err(ChainError::Params(_))));
    assert!(Chain::new(Params::test()).is_ok());
}

#[test]
fn coin_fates_follow_spends_and_reorgs() {
    use minima_core::chain::CoinFate;
    use minima_core::crypto::script_address;
    use minima_core::types::{Output, Transaction, Witness};
    const SCRIPT: &str = "RETURN TRUE AND TRUE";
    let mut a = ChainBuilder::new(Params::devnet(), NOW, 100);
    a.mine(6);
    let addr = script_address(SCRIPT);
    let pay = a.pay_to_address(addr, 1_000).unwrap();
    let x_id = pay.body.transaction.output_coin_id(0).unwrap();
    let k = a.mine_block(false, vec![pay]);
    let (x, leaf) = a.coin(&x_id).unwrap();
    // A proof from the creating block alone, carried to a later tip.
    let p_k = a.chain.proof_in_block(&k, leaf, &x).expect("created by k");
    assert!(a.chain.proof_in_block(&k, leaf + 1, &x).is_none(), "another leaf");
    let mut b = a.clone().with_salt(7);
    a.mine_block(false, vec![]);
    match &a.chain.coin_fates(&[(&x, &p_k)])[..] {
        [CoinFate::Unspent(p)] => assert_eq!(p.block_id, a.head()),
        other => panic!("{other:?}"),
    }
    // Spent on A's branch: the fate names the block and proves the coin just before it.
    let out = Output { address: addr, amount: 600, token_id: Hash::ZERO, state: vec![] };
    let spend = Transaction { version: 1, inputs: vec![x.coin.clone()], outputs: vec![out], state: vec![] };
    let y_id = spend.output_coin_id(0).unwrap();
    let spend = a.make_custom_tx(spend, Witness::new(vec![], vec![SCRIPT.into()]));
    let s = a.mine_block(false, vec![spend]);
    let before = match &a.chain.coin_fates(&[(&x, &p_k)])[..] {
        [CoinFate::Spent { block, before, .. }] => {
            assert_eq!(*block, s);
            before.clone()
        }
        other => panic!("{other:?}"),
    };
    let (y, y_leaf) = a.coin(&y_id).unwrap();
    let p_y = a.chain.proof_in_block(&s, y_leaf, &y).unwrap();
    // B's heavier branch without the spend: x is unspent again (its proof rewound from A's
    // side branch), y never existed there; a proof against an unknown block is Unknown.
    b.mine(4);
    for (t, w) in &b.blocks()[b.blocks().len() - 4..] {
        a.chain.add_block(t.clone(), w.clone(), b.txpows()).unwrap();
    }
    assert_eq!(a.chain.tip_id(), b.head());
    let mut forged = p_y.clone();
    forged.block_id = Hash([9; 32]);
    match &a.chain.coin_fates(&[(&x, &before), (&y, &p_y), (&y, &forged)])[..] {
        [CoinFate::Unspent(p), CoinFate::Gone, CoinFate::Unknown] => {
            assert_eq!(p.block_id, b.head());
            assert!(a.chain.check_coin_proof(&x, p).is_ok());
        }
        other => panic!("{other:?}"),
    }
}

/// Blocks kept "on disk" for [`spilled_blocks_read_back_from_cold_storage`].
#[derive(Debug, Default)]
struct TestCold {
    witnesses: std::sync::Mutex<HashMap<Hash, minima_core::mmr::BlockWitness>>,
    txpows: HashMap<Hash, TxPoW>,
}

impl minima_core::chain::ColdBlocks for TestCold {
    fn witness(&self, id: &Hash) -> Option<minima_core::mmr::BlockWitness> {
        self.witnesses.lock().unwrap().get(id).cloned()
    }
    fn txpow(&self, id: &Hash) -> Option<TxPoW> {
        self.txpows.get(id).cloned()
    }
}

#[test]
fn spilled_blocks_read_back_from_cold_storage() {
    use minima_core::chain::CoinFate;
    use std::sync::Arc;
    // A branch with spends and fan-outs, and a heavier side branch that forks off it.
    let mut a = ChainBuilder::new(Params::devnet(), NOW, 200);
    a.mine(30);
    let mut b = a.clone().with_salt(3);
    a.mine(6);
    b.mine(9);
    let mut txpows = a.txpows().clone();
    txpows.extend(b.txpows().iter().map(|(k, v)| (*k, v.clone())));
    for (t, w) in &b.blocks()[b.blocks().len() - 9..] {
        a.chain.add_block(t.clone(), w.clone(), &txpows).unwrap();
    }
    assert_eq!(a.chain.tip_id(), b.head());
    let hot = a.chain.clone();
    // In a fixed order (the tree is a HashMap): every choice below is the same in every run.
    let mut ids: Vec<Hash> = hot.tree_blocks().map(|x| x.id).collect();
    ids.sort_by_key(|id| (hot.block(id).map(|x| x.number()), *id));
    assert!(ids.len() > 30, "{} tree blocks", ids.len());
    let snapshot: HashMap<Hash, _> = ids.iter().map(|id| (*id, hot.extra(id).unwrap())).collect();
    let cold = Arc::new(TestCold {
        witnesses: std::sync::Mutex::new(snapshot.iter().map(|(k, v)| (*k, v.witness.clone())).collect()),
        txpows,
    });
    let mut chain = a.chain.clone();
    assert_eq!(chain.spill(0), 0, "no cold store: nothing leaves memory");
    chain.set_cold(cold.clone());
    // Blocks (of either branch) within 4 of the tip's number stay in memory.
    let tip_n = chain.tip().number();
    let near = hot.tree_blocks().filter(|x| x.number() + 4 >= tip_n).count();
    assert!(near > 5, "both branches reach that high");
    assert_eq!(chain.spill(4), ids.len() - near);
    assert_eq!(chain.hot_len(), near);
    let at_tip = hot.tree_blocks().filter(|x| x.number() == tip_n).count();
    assert_eq!(chain.spill(0), near - at_tip);
    // Each block's witness and delta come back equal (the root's witness; its delta is
    // never used).
    let root = chain.root().id;
    for id in &ids {
        let x = chain.extra(id).unwrap();
        assert_eq!(x.witness, snapshot[id].witness);
        if *id != root {
            assert_eq!(x.delta, snapshot[id].delta, "block {id}");
        }
    }
    // Proofs carried forward, fates and relay proofs agree with the in-memory chain, for
    // coins of the best branch and of the side branch that left it.
    let mut coins = vec![];
    for id in &ids {
        let blk = hot.block(id).unwrap();
        let txs: Vec<TxPoW> = blk
            .applied
            .iter()
            .map(|t| if *t == blk.id { blk.txpow.clone() } else { cold.txpows[t].clone() })
            .collect();
        let mut leaf = snapshot[id].delta.old_leaf_count;
        for t in &txs {
            for rec in
                minima_core::chain::validate::output_records(&t.body.transaction, blk.number()).unwrap()
            {
                let p = hot.proof_in_block(id, leaf, &rec).expect("created there");
                assert_eq!(chain.proof_in_block(id, leaf, &rec).as_ref(), Some(&p));
                coins.push((rec, p));
                leaf += 1;
            }
        }
    }
    assert!(coins.len() > 20, "{} coins", coins.len());
    let pairs: Vec<_> = coins.iter().map(|(r, p)| (r, p)).collect();
    let fates = chain.coin_fates(&pairs);
    assert_eq!(fates, hot.coin_fates(&pairs));
    assert!(fates.iter().any(|f| matches!(f, CoinFate::Unspent(_))));
    assert!(fates.iter().any(|f| matches!(f, CoinFate::Gone)));
    let mut refreshed = 0;
    for (rec, p) in &coins {
        let r = chain.refresh_proof(rec, p).ok();
        assert_eq!(r, hot.refresh_proof(rec, p).ok());
        refreshed += r.is_some() as usize;
    }
    assert!(refreshed > 0);
    // Damaged storage: a witness that does not replay to the block's peaks is refused, and
    // carrying a proof through that block reports the missing data.
    // The victim is the best-chain block after the coin's proof block, and it must be one that
    // was spilled (the tip stays in memory, and then the store is never read: the test once
    // picked it, depending on the HashMap's order).
    let path = chain.best_path();
    let (rec, p, victim) = coins
        .iter()
        .filter(|(r, p)| hot.refresh_proof(r, p).is_ok())
        .find_map(|(r, p)| {
            let v = *path.get(path.iter().position(|x| *x == p.block_id)? + 1)?;
            chain.block(&v)?.hot_extra().is_none().then_some((r, p, v))
        })
        .expect("a coin proved before a spilled block");
    let other = p.block_id;
    let w = cold.witnesses.lock().unwrap()[&other].clone();
    assert_ne!(w, cold.witnesses.lock().unwrap()[&victim], "the damage changes the stored witness");
    cold.witnesses.lock().unwrap().insert(victim, w);
    assert!(chain.extra(&victim).is_none());
    // A witness damaged in its parent peaks alone is refused too.
    let mut bad = snapshot[&victim].witness.clone();
    bad.parent_peaks.leaf_count ^= 1;
    cold.witnesses.lock().unwrap().insert(victim, bad);
    assert!(chain.extra(&victim).is_none());
    assert!(matches!(chain.refresh_proof(rec, p), Err(ChainError::BlockDataMissing(x)) if x == victim));
    // A block added later stays in memory until spilled.
    let mut a2 = b.clone();
    a2.mine(1);
    let (t, w) = a2.blocks().last().unwrap().clone();
    chain.add_block(t.clone(), w, a2.txpows()).unwrap();
    assert!(chain.block(&t.id()).unwrap().hot_extra().is_some());
}

/// A hostile sync peer's numbers near `u64::MAX` (its cascade, its tree root, one child) must
/// be refused, never overflow: before the bounds, adding the child wrapped
/// `root + tree_depth + cascade_step` in `prune_tree` (index out of bounds in release, an
/// overflow panic with checks) and killed the chain actor.
#[test]
fn block_numbers_and_times_near_the_integer_limits_are_refused() {
    use minima_core::chain::cascade::CascadeEntry;
    use minima_core::chain::{MAX_BLOCK_NUMBER, MAX_TIME_MS};
    use minima_core::mmr::{BlockWitness, MmrPeaks};
    let b = ChainBuilder::new(Params::devnet(), NOW, 10);
    let p = b.params.clone();
    let g = b.chain.genesis_id();
    let (headers, root, child) = minima_core::fixture::overflow_chain(&p);
    // The sync path: verify the cascade, resume from the root, validate the child.
    let refused = match Cascade::verify(headers.clone(), &p, &g) {
        Err(e) => e,
        Ok(cascade) => {
            match Chain::from_parts(
                p.clone(),
                cascade,
                root.clone(),
                BlockWitness::default(),
                MmrPeaks::default(),
            ) {
                Err(e) => e,
                Ok(mut chain) => chain
                    .add_block(child.clone(), BlockWitness::default(), &NoTxPows)
                    .expect_err("a child numbered u64::MAX − 9 is refused"),
            }
        }
    };
    assert!(matches!(refused, ChainError::BlockNumberTooHigh(n) if n == u64::MAX - 11), "{refused:?}");
    // Each layer refuses on its own: a trusted cascade (our store) with such a root…
    let entries = headers.iter().map(|h| CascadeEntry { header: h.clone(), id: h.id(), level: 0 }).collect();
    let r = Chain::from_parts(
        p.clone(),
        Cascade::from_entries(entries),
        root.clone(),
        BlockWitness::default(),
        MmrPeaks::default(),
    );
    assert!(matches!(r, Err(ChainError::BlockNumberTooHigh(n)) if n == u64::MAX - 10), "{r:?}");
    // …and any TxPoW whose number or time is past the bounds, before anything else is judged.
    let mut a = b.clone();
    a.mine(3);
    let (t, w) = a.candidate(false, vec![]);
    let mut late = t.clone();
    late.header.time_ms = MAX_TIME_MS + 1;
    ChainBuilder::reseal(&mut late, false);
    let mut chain = a.chain.clone();
    let r = chain.add_block(late.clone(), w.clone(), &NoTxPows);
    assert!(matches!(r, Err(ChainError::TimeTooHigh(x)) if x == MAX_TIME_MS + 1), "{r:?}");
    let mut high = t.clone();
    high.header.block_number = MAX_BLOCK_NUMBER + 1;
    ChainBuilder::reseal(&mut high, false);
    let r = chain.add_block(high, w.clone(), &NoTxPows);
    assert!(matches!(r, Err(ChainError::BlockNumberTooHigh(x)) if x == MAX_BLOCK_NUMBER + 1), "{r:?}");
    let mut hs = headers.clone();
    hs[0] = late.header.clone();
    let r = Cascade::verify(hs, &p, &g);
    assert!(matches!(r, Err(ChainError::TimeTooHigh(_))), "{r:?}");
    // The bounds themselves are valid: the unaltered candidate is taken.
    assert!(matches!(chain.add_block(t, w, &NoTxPows), Ok(AddOutcome::Added { .. })));
}

/// Script work is capped per TxPoW (`max_txpow_script_ops`) and per block
/// (`max_block_script_ops`): 20 inputs each hashing 8 KiB seven times stay within each run's
/// 1,024 instructions but not within the TxPoW's 16,384.
#[test]
fn script_work_is_capped_per_txpow_and_per_block() {
    use minima_core::chain::validate::{run_scripts, ScriptBudget};
    use minima_core::script::SigCache;
    use minima_core::types::{Coin, StateVar, Transaction, TxBody, Witness};
    let p = Params::devnet();
    let script = format!("{}RETURN TRUE", "LET h = SHA3(STATE(1))\n".repeat(7));
    let addr = minima_core::crypto::script_address(&script);
    let inputs = |n: usize| -> Vec<Coin> {
        (0..n)
            .map(|i| Coin {
                coin_id: minima_core::crypto::sha3(&[i as u8]),
                address: addr,
                amount: 10,
                token_id: Hash::ZERO,
                state: vec![],
            })
            .collect()
    };
    let txpow = |n: usize| {
        let b = ChainBuilder::new(p.clone(), NOW, 10);
        let body = TxBody {
            txn_target: p.magic.min_target(),
            transaction: Transaction {
                version: 1,
                inputs: inputs(n),
                outputs: vec![],
                state: vec![StateVar { port: 1, data: vec![1; 8192] }],
            },
            witness: Witness::new(vec![], vec![script.clone()]),
            txpow_ids: vec![],
            prng: [0; 32],
        };
        TxPoW { header: b.chain.tip().txpow.header.clone(), body }
    };
    let run = |t: &TxPoW, budget| run_scripts(&p, t, &[0; 20], 5, &mut SigCache::new(), budget);
    let one = run(&txpow(1), ScriptBudget::alone(&p, 0)).unwrap();
    assert!(one.instructions > 900 && one.instructions <= 1024, "{}", one.instructions);
    let n_fit = (p.max_txpow_script_ops / one.instructions) as usize;
    assert!(run(&txpow(n_fit), ScriptBudget::alone(&p, 0)).is_ok());
    let r = run(&txpow(n_fit + 1), ScriptBudget::alone(&p, 0));
    assert!(matches!(r, Err(ChainError::TooMuchScriptWork(_))), "{r:?}");
    // The block's budget left binds the same way.
    let r = run(&txpow(2), ScriptBudget::for_txpow(&p, 0, 100, one.instructions + 1));
    assert!(matches!(r, Err(ChainError::TooMuchScriptWork(_))), "{r:?}");
}
