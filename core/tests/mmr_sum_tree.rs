//! The MMR sum tree at scale: 100,000 appends, 30,000 spends in 100 blocks, proofs, deltas,
//! rollbacks and block witnesses.

use minima_core::crypto::{sha3, Hash};
use minima_core::mmr::*;
use minima_core::types::{Coin, CoinRecord};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
}

fn rec(i: u64, amount: u64) -> CoinRecord {
    CoinRecord {
        coin: Coin {
            coin_id: sha3(&i.to_be_bytes()),
            address: sha3(b"RETURN TRUE"),
            amount,
            token_id: Hash::ZERO,
            state: vec![],
        },
        created: i / 1000,
    }
}

#[test]
fn hundred_thousand_appends_thirty_thousand_spends() {
    let mut rng = Rng(42);
    let mut mmr = Mmr::new();
    let mut coins: Vec<(CoinRecord, bool)> = Vec::new();
    for i in 0..100_000u64 {
        let r = rec(i, 1 + rng.next() % 1_000_000);
        assert_eq!(mmr.append_coin(&r).unwrap(), i);
        coins.push((r, false));
    }
    let unspent_sum =
        |c: &Vec<(CoinRecord, bool)>| -> u64 { c.iter().filter(|x| !x.1).map(|x| x.0.coin.amount).sum() };
    assert_eq!(mmr.total().unwrap(), unspent_sum(&coins));
    let root_before = mmr.root().unwrap();
    let nodes_before = mmr.node_count();
    let count_before = mmr.leaf_count();

    // Proofs taken before the blocks: some of these leaves get spent later.
    let early: Vec<u64> = (0..400).map(|_| rng.next() % 100_000).collect();
    let early_proofs: Vec<MmrProof> = early.iter().map(|&i| mmr.proof(i, Hash([1; 32])).unwrap()).collect();

    let mut deltas: Vec<MmrDelta> = Vec::new();
    let mut next_id = 100_000u64;
    let mut spent_total = 0;
    for block in 0..100u64 {
        let parent_peaks = mmr.peaks().unwrap();
        let parent_root = mmr.root().unwrap();
        // 300 distinct unspent leaves.
        let mut picks = Vec::with_capacity(300);
        while picks.len() < 300 {
            let i = rng.next() % coins.len() as u64;
            if !coins[i as usize].1 && !picks.contains(&i) {
                picks.push(i);
            }
        }
        // The block witness against the parent MMR (every 10th block also replays through it).
        let witness = BlockWitness {
            parent_peaks: parent_peaks.clone(),
            inputs: picks
                .iter()
                .map(|&i| WitnessInput {
                    leaf_index: i,
                    created: coins[i as usize].0.created,
                    siblings: mmr.siblings(i).unwrap(),
                })
                .collect(),
        };
        let new: Vec<CoinRecord> = (0..50)
            .map(|_| {
                next_id += 1;
                rec(next_id, 1 + rng.next() % 1000)
            })
            .collect();
        mmr.begin();
        for &i in &picks {
            mmr.spend(i, &coins[i as usize].0).unwrap();
            coins[i as usize].1 = true;
            spent_total += 1;
        }
        for r in &new {
            mmr.append_coin(r).unwrap();
            coins.push((r.clone(), false));
        }
        let d = mmr.finish();
        for &i in &picks {
            assert!(d.touches_leaf(i));
        }
        deltas.push(d);
        assert_eq!(mmr.total().unwrap(), unspent_sum(&coins), "block {block}");

        if block % 10 == 0 {
            assert_eq!(witness.parent_peaks.root(), parent_root);
            let input_coins: Vec<CoinRecord> = picks.iter().map(|&i| coins[i as usize].0.clone()).collect();
            let refs: Vec<&Coin> = input_coins.iter().map(|r| &r.coin).collect();
            let mut partial = Mmr::from_witness(&witness, &refs).unwrap();
            for (k, &i) in picks.iter().enumerate() {
                partial.spend(i, &input_coins[k]).unwrap();
            }
            for r in &new {
                partial.append_coin(r).unwrap();
            }
            assert_eq!(partial.root().unwrap(), mmr.root().unwrap(), "witness replay of block {block}");
            assert_eq!(partial.total().unwrap(), mmr.total().unwrap());
            // Tampered witnesses are refused.
            let mut bad = witness.clone();
            bad.inputs[7].siblings[3].sum += 1;
            assert!(Mmr::from_witness(&bad, &refs).is_err());
            let mut bad = witness.clone();
            bad.inputs[0].created += 1;
            assert_eq!(Mmr::from_witness(&bad, &refs).err(), Some(MmrError::BadProof));
            let mut bad = witness.clone();
            bad.parent_peaks.peaks[0].hash.0[0] ^= 1;
            assert_ne!(bad.parent_peaks.root(), parent_root);
            let mut bad = witness.clone();
            bad.inputs.swap(0, 1);
            assert!(Mmr::from_witness(&bad, &refs).is_err());
        }
    }
    assert_eq!(spent_total, 30_000);
    let root = mmr.root().unwrap();
    let count = mmr.leaf_count();

    // Every unspent coin's proof verifies against the root; spent ones do not.
    let mut checked = 0;
    for (i, (r, spent)) in coins.iter().enumerate() {
        let p = mmr.proof(i as u64, Hash::ZERO).unwrap();
        assert_eq!(p.verify(r, count, &root), !*spent, "leaf {i}");
        checked += !*spent as usize;
    }
    assert_eq!(checked, coins.len() - 30_000);

    // Proofs made before an update of their leaf are rejected; the others refresh through the
    // deltas to proofs that verify at the tip.
    let delta_refs: Vec<&MmrDelta> = deltas.iter().collect();
    let (mut stale, mut fresh) = (0, 0);
    for (p, &i) in early_proofs.iter().zip(&early) {
        let (r, spent) = &coins[i as usize];
        assert!(p.verify(r, count_before, &root_before));
        let refreshed = refresh_proof(p, r, count_before, &delta_refs, Hash([2; 32]));
        if *spent {
            assert_eq!(refreshed, Err(MmrError::Stale(i)));
            assert!(!p.verify(r, count, &root));
            stale += 1;
        } else {
            let np = refreshed.unwrap();
            assert!(np.verify(r, count, &root), "refreshed proof of {i}");
            assert_eq!(np, mmr.proof(i, Hash([2; 32])).unwrap());
            fresh += 1;
        }
    }
    assert!(stale > 0 && fresh > 0, "stale {stale} fresh {fresh}");

    // Rolling back the last 100 deltas restores the earlier root exactly.
    for d in deltas.iter().rev() {
        mmr.rollback(d);
    }
    assert_eq!(mmr.root().unwrap(), root_before);
    assert_eq!(mmr.leaf_count(), count_before);
    assert_eq!(mmr.node_count(), nodes_before);
    // …and replaying them forward returns to the tip.
    for d in &deltas {
        mmr.apply_forward(d);
    }
    assert_eq!(mmr.root().unwrap(), root);
}

#[test]
fn proofs_of_wrong_shape_or_value_fail_cleanly() {
    let mut mmr = Mmr::new();
    for i in 0..1000 {
        mmr.append_coin(&rec(i, 5)).unwrap();
    }
    let root = mmr.root().unwrap();
    let p = mmr.proof(77, Hash::ZERO).unwrap();
    assert!(p.verify(&rec(77, 5), 1000, &root));
    assert!(!p.verify(&rec(77, 6), 1000, &root));
    assert!(!p.verify(&rec(78, 5), 1000, &root));
    assert!(!p.verify(&rec(77, 5), 999, &root));
    let mut short = p.clone();
    short.path.pop();
    assert!(matches!(short.root_for(&leaf_node(&rec(77, 5), false), 1000), Err(MmrError::PathLength { .. })));
    let mut far = p.clone();
    far.leaf_index = 5000;
    assert!(matches!(
        far.root_for(&leaf_node(&rec(77, 5), false), 1000),
        Err(MmrError::LeafOutOfRange { .. })
    ));
    assert_eq!(mmr.spend(5000, &rec(1, 5)), Err(MmrError::LeafOutOfRange { index: 5000, count: 1000 }));
}
