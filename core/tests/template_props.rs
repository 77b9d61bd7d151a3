//! Block assembly (`miner::template::build`) as a property: for any mempool the fixture can
//! make — random sizes, sig-ops run by scripts, script work, scripts that expire at the next
//! height, conflicting spends — the template is a block `add_block` accepts, and it leaves out
//! no entry valid at the next height unless adding that entry would break a limit.
//!
//! 256 cases by default; `PROPTEST_CASES=10000 cargo test --release --test template_props`
//! for the long run.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use minima_core::chain::{AddOutcome, Chain};
use minima_core::crypto::{script_address, Hash};
use minima_core::fixture::{ChainBuilder, OPEN_SCRIPT};
use minima_core::mempool::{Entry, Mempool};
use minima_core::miner::template::{self, Usage};
use minima_core::types::{Output, StateVar, Transaction, TxPoW, Witness};
use minima_core::Params;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000_000;
/// Coins made per script kind.
const PER_KIND: usize = 5;
/// The tip when the entries were admitted, and the tip the template builds on.
const ADMITTED_AT: u64 = 46;
const TIP: u64 = 47;

/// The scripts the entries' coins carry (index = kind).
fn scripts() -> Vec<String> {
    let checksigs = |k: usize| {
        let one = format!("ASSERT NOT CHECKSIG(0x{}, 0x00, 0x00)\n", "ab".repeat(32));
        format!("{}RETURN TRUE", one.repeat(k))
    };
    vec![
        OPEN_SCRIPT.to_string(),
        checksigs(5),
        checksigs(12),
        // Valid at the next height (TIP + 1), and at admission.
        format!("ASSERT @BLOCK LTE {}\nRETURN TRUE", TIP + 1),
        // Valid at admission (@BLOCK = ADMITTED_AT + 1 = TIP), expired at the next height.
        format!("ASSERT @BLOCK LTE {TIP}\nRETURN TRUE"),
        // Script work that grows with the transaction's state.
        "ASSERT SHA3(STATE(1)) NEQ 0x00\nASSERT SHA3(STATE(1)) NEQ 0x01\nRETURN TRUE".to_string(),
        // Height-bound and always valid from here on (re-judged, still in).
        "ASSERT @COINAGE GTE 1\nRETURN TRUE".to_string(),
    ]
}

/// Devnet with block limits small enough for a few dozen entries to reach each of them.
fn params() -> Params {
    let mut p = Params::devnet();
    p.magic.max_txns = 10;
    p.magic.max_block_bytes = 40_000;
    p.magic.max_block_inputs = 8;
    p.magic.max_sigops_block = 30;
    p.max_block_script_ops = 2_500;
    p
}

struct World {
    /// The chain when the entries were judged (tip ADMITTED_AT).
    admitted: ChainBuilder,
    /// The chain the template is built on (tip TIP).
    tip: ChainBuilder,
    /// Coins per kind: (coin id).
    coins: Vec<Vec<Hash>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let mut b = ChainBuilder::new(params(), NOW, 100);
        b.mine(40);
        let scripts = scripts();
        let mut pays = vec![];
        for s in &scripts {
            for _ in 0..PER_KIND {
                pays.push(b.pay_to_address(script_address(s), 1_000_000).expect("a free coin"));
            }
        }
        for chunk in pays.chunks(8) {
            b.mine_block(false, chunk.to_vec());
        }
        // Pads the plan to ADMITTED_AT whatever the chunking gave.
        while b.chain.tip().number() < ADMITTED_AT {
            b.mine_block(false, vec![]);
        }
        assert_eq!(b.chain.tip().number(), ADMITTED_AT);
        let admitted = b.clone();
        b.mine_block(false, vec![]);
        assert_eq!(b.chain.tip().number(), TIP);
        let coins = scripts.iter().map(|s| admitted.coins_at(&script_address(s))).collect::<Vec<_>>();
        assert!(coins.iter().all(|c| c.len() >= PER_KIND));
        World { admitted, tip: b, coins }
    })
}

/// One mempool entry to make: (kind, coin, state bytes, burn).
type Spec = (usize, usize, usize, u64);

fn make_entry(maker: &mut ChainBuilder, w: &World, (kind, coin, pad, burn): Spec) -> Option<Entry> {
    let scripts = scripts();
    let id = w.coins[kind][coin % PER_KIND];
    let (rec, _) = w.admitted.coin(&id)?;
    let (created, proof) = w.admitted.coin_proof(&id)?;
    let amount = rec.coin.amount - burn.min(rec.coin.amount - 1);
    let mut state = vec![];
    if pad > 0 {
        state.push(StateVar { port: 1, data: vec![(pad % 251) as u8; pad] });
    }
    let tx = Transaction {
        version: 1,
        inputs: vec![rec.coin.clone()],
        outputs: vec![Output {
            address: script_address(OPEN_SCRIPT),
            amount,
            token_id: Hash::ZERO,
            state: vec![],
        }],
        state,
    };
    let txpow = maker.make_custom_tx(tx, Witness::new(vec![], vec![scripts[kind].clone()]));
    let proofs = vec![(created, proof)];
    let j = w.admitted.chain.check_mempool_txpow(&txpow, &proofs).ok()?;
    Some(Entry::new(txpow, proofs, &j))
}

/// An entry's judgement for the next block on `chain`, with its proofs carried to the tip.
fn judged_next(chain: &Chain, e: &Entry) -> Option<(u32, u32)> {
    let mut proofs = vec![];
    for (c, (created, p)) in e.txpow.body.transaction.inputs.iter().zip(&e.proofs) {
        let rec = minima_core::types::CoinRecord { coin: c.clone(), created: *created };
        proofs.push((*created, chain.refresh_proof(&rec, p).ok()?));
    }
    let j = chain.check_mempool_txpow(&e.txpow, &proofs).ok()?;
    Some((j.sigops, j.script_ops))
}

fn spec() -> impl Strategy<Value = Spec> {
    (0..scripts().len(), 0..PER_KIND, prop_oneof![Just(0usize), 1..9_000usize], 0..5_000u64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_template_is_a_valid_block_that_leaves_out_only_what_breaks_a_limit(
        specs in prop::collection::vec(spec(), 0..24),
        prng in any::<[u8; 32]>(),
    ) {
        let w = world();
        let mut maker = w.admitted.clone();
        let mut pool = Mempool::new(usize::MAX);
        for s in specs {
            if let Some(e) = make_entry(&mut maker, w, s) {
                let _ = pool.insert(e, 0);
            }
        }
        let chain = &w.tip.chain;
        let ranked = pool.ranked();
        let t = template::build(chain, &ranked, NOW, prng).expect("a template");
        // It is a block add_block accepts.
        let mut block = TxPoW { header: t.header.clone(), body: t.body.clone() };
        ChainBuilder::reseal(&mut block, false);
        let src: HashMap<Hash, TxPoW> = t.listed.iter().map(|x| (x.id(), x.clone())).collect();
        let mut after = chain.clone();
        let out = after.add_block(block.clone(), t.witness.clone(), &src);
        prop_assert!(matches!(out, Ok(AddOutcome::Added { .. })), "{out:?}");
        // What it used of each limit, judged at the next height.
        let chosen: HashSet<Hash> = t.body.txpow_ids.iter().copied().collect();
        let mut u = Usage::default();
        let mut spent = HashSet::new();
        for e in ranked.iter().filter(|e| chosen.contains(&e.id)) {
            let (sigops, ops) = judged_next(chain, e).expect("a chosen entry is valid");
            u.txns += 1;
            u.listed_bytes += e.size;
            u.inputs += e.txpow.body.transaction.inputs.len();
            u.sigops += sigops;
            u.script_ops += ops;
            spent.extend(e.txpow.body.transaction.inputs.iter().map(|c| c.coin_id));
        }
        let base = block.size() - 32 * u.txns;
        let invalid: HashSet<Hash> = t.invalid.iter().copied().collect();
        for e in ranked.iter().filter(|e| !chosen.contains(&e.id)) {
            let next = judged_next(chain, e);
            if invalid.contains(&e.txid) {
                prop_assert!(next.is_none(), "an evicted entry is invalid at the next height");
                continue;
            }
            let Some(cost) = next else { continue };
            let conflicts = e.txpow.body.transaction.inputs.iter().any(|c| spent.contains(&c.coin_id));
            let n_in = e.txpow.body.transaction.inputs.len();
            prop_assert!(
                conflicts || !template::fits(chain, base, &u, e.size, n_in, cost),
                "entry {} left out though it fits ({u:?}, size {}, cost {cost:?})", e.id, e.size
            );
        }
    }
}
