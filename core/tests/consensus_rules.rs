//! A table of invalid blocks and transactions: each is refused with its own error variant, and a
//! valid twin of each is accepted. A block listing a TxPoW the node lacks is *pending*.

use std::collections::{BTreeSet, HashMap};

use minima_core::chain::pow::meets;
use minima_core::chain::{AddOutcome, ChainError};
use minima_core::codec::{CodecError, Decode, Encode};
use minima_core::crypto::{script_address, Hash, Keypair};
use minima_core::fixture::ChainBuilder;
use minima_core::mmr::{BlockWitness, MmrError};
use minima_core::script::ScriptError;
use minima_core::types::{Coin, Output, StateVar, Transaction, TxPoW, Witness};
use minima_core::{Params, U256};

const NOW: u64 = 1_800_000_000_000;

type Cand = (TxPoW, BlockWitness, Vec<TxPoW>);

fn add(b: &ChainBuilder, c: &Cand) -> Result<AddOutcome, ChainError> {
    let mut chain = b.chain.clone();
    let src: HashMap<Hash, TxPoW> = c.2.iter().map(|t| (t.id(), t.clone())).collect();
    chain.add_block(c.0.clone(), c.1.clone(), &src)
}

fn variant(e: &ChainError) -> String {
    let d = format!("{e:?}");
    let name: String = d.chars().take_while(|c| c.is_alphanumeric()).collect();
    match e {
        ChainError::Script { error, .. } => format!(
            "Script::{}",
            format!("{error:?}").chars().take_while(|c| c.is_alphanumeric()).collect::<String>()
        ),
        ChainError::Codec(c) => format!(
            "Codec::{}",
            format!("{c:?}").chars().take_while(|c| c.is_alphanumeric()).collect::<String>()
        ),
        _ => name,
    }
}

struct Table {
    seen: BTreeSet<String>,
    rows: usize,
}

impl Table {
    fn case(
        &mut self,
        label: &str,
        b: &ChainBuilder,
        valid: Cand,
        mutate: impl FnOnce(&mut Cand),
        expect: impl Fn(&ChainError) -> bool,
    ) {
        eprintln!("case: {label}");
        match add(b, &valid) {
            Ok(AddOutcome::Added { .. }) => {}
            other => panic!("{label}: valid twin refused: {other:?}"),
        }
        let mut bad = valid;
        mutate(&mut bad);
        match add(b, &bad) {
            Err(e) if expect(&e) => {
                self.seen.insert(variant(&e));
                self.rows += 1;
            }
            other => panic!("{label}: expected rejection, got {other:?}"),
        }
    }
    fn record(&mut self, e: &ChainError) {
        self.seen.insert(variant(e));
        self.rows += 1;
    }
}

fn reseal(t: &mut TxPoW) {
    ChainBuilder::reseal(t, true);
}

fn own(b: &ChainBuilder) -> Cand {
    let (t, w) = b.candidate(true, vec![]);
    (t, w, vec![])
}

fn pulse(b: &ChainBuilder, listed: Vec<TxPoW>) -> Cand {
    let (t, w) = b.candidate(false, listed.clone());
    (t, w, listed)
}

/// A transaction spending the coin at `address` (locked by `script`) with optional tx state.
fn spend_script(b: &mut ChainBuilder, address: Hash, script: &str, state: Vec<StateVar>) -> TxPoW {
    let id = *b.coins_at(&address).first().expect("a coin at the address");
    let (rec, _) = b.coin(&id).unwrap();
    let tx = Transaction {
        version: 1,
        inputs: vec![rec.coin.clone()],
        outputs: vec![Output {
            address: script_address("RETURN TRUE"),
            amount: rec.coin.amount,
            token_id: Hash::ZERO,
            state: vec![],
        }],
        state,
    };
    b.make_custom_tx(tx, Witness::new(vec![], vec![script.to_string()]))
}

#[test]
fn invalid_blocks_each_have_their_own_error_and_a_valid_twin() {
    let mut t = Table { seen: BTreeSet::new(), rows: 0 };
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 60);
    b.mine(20);

    // Coins locked by scripts for the script cases.
    let cond = "RETURN STATE(1) EQ 0x01";
    let long_ok = format!("{}RETURN TRUE", "LET a = 1\n".repeat(100));
    let long_bad = format!("{}RETURN TRUE", "LET a = 1\n".repeat(600));
    let p1 = b.pay_to_address(script_address(cond), 1000).unwrap();
    let p2 = b.pay_to_address(script_address(&long_ok), 1000).unwrap();
    let p3 = b.pay_to_address(script_address(&long_bad), 1000).unwrap();
    let applied = b.make_tx().unwrap();
    b.mine_block(true, vec![p1, p2, p3, applied.clone()]);
    b.mine(2);
    let head = b.head();

    // --- header and body rules on a block carrying its own transaction ---
    t.case(
        "chain id",
        &b,
        own(&b),
        |c| {
            c.0.header.chain_id = 7;
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::WrongChainId(7)),
    );
    t.case(
        "header version",
        &b,
        own(&b),
        |c| {
            c.0.header.version = 2;
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::WrongVersion(2)),
    );
    t.case(
        "magic differs from params",
        &b,
        own(&b),
        |c| {
            c.0.header.magic.max_txns = 255;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::MagicMismatch,
    );
    t.case(
        "wrong body hash",
        &b,
        own(&b),
        |c| {
            c.0.body.prng[0] ^= 1;
            ChainBuilder::reseal(&mut c.0, false)
        },
        |e| *e == ChainError::WrongBodyHash,
    );
    t.case(
        "oversize TxPoW",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.state = (0..9).map(|p| StateVar { port: p, data: vec![7; 8000] }).collect();
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::TxPowTooLarge { .. }),
    );
    t.case(
        "too many txns",
        &b,
        pulse(&b, vec![]),
        |c| {
            c.0.body.txpow_ids = (0..257u32).map(|i| minima_core::crypto::sha3(&i.to_be_bytes())).collect();
            reseal(&mut c.0)
        },
        |e| *e == ChainError::TooManyTxns(257),
    );
    t.case(
        "txpow listed twice",
        &b,
        pulse(&b, vec![]),
        |c| {
            c.0.body.txpow_ids = vec![Hash([5; 32]), Hash([5; 32])];
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::DuplicateListed(_)),
    );
    t.case(
        "bad PoW",
        &b,
        own(&b),
        |c| {
            let h = &mut c.0.header;
            let mut n = 0u64;
            loop {
                h.nonce[..8].copy_from_slice(&n.to_be_bytes());
                let id = h.id();
                if !meets(&id, &h.block_target) && !meets(&id, &c.0.body.txn_target) {
                    break;
                }
                n += 1;
            }
        },
        |e| *e == ChainError::InsufficientWork,
    );
    t.case(
        "txn_target easier than min_work",
        &b,
        own(&b),
        |c| {
            c.0.body.txn_target = c.0.header.magic.min_target() + U256::from(1u8);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::TxnTargetTooEasy,
    );
    t.case(
        "under the size-scaled work",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.state = vec![StateVar { port: 0, data: vec![1; 3000] }];
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::InsufficientTxWork { .. }),
    );
    t.case(
        "txn_target harder than block_target",
        &b,
        own(&b),
        |c| {
            c.0.body.txn_target = c.0.header.block_target / U256::from(4u8);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::TxnTargetHarderThanBlock,
    );
    t.case(
        "no inputs",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.inputs.clear();
            reseal(&mut c.0)
        },
        |e| *e == ChainError::NoInputs,
    );
    t.case(
        "duplicate input in a transaction",
        &b,
        own(&b),
        |c| {
            let i = c.0.body.transaction.inputs[0].clone();
            c.0.body.transaction.inputs.push(i);
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::DuplicateInput(_)),
    );
    t.case(
        "non-native token",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.outputs[0].token_id = Hash([1; 32]);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::NonNativeToken,
    );
    t.case(
        "zero-amount output",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.outputs[0].amount = 0;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::ZeroAmountOutput(0),
    );
    t.case(
        "output sum overflow",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.outputs[0].amount = u64::MAX;
            c.0.body.transaction.outputs[1].amount = 2;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::OutputSumOverflow,
    );
    t.case(
        "input sum overflow",
        &b,
        own(&b),
        |c| {
            let mut extra: Coin = c.0.body.transaction.inputs[0].clone();
            extra.coin_id = Hash([9; 32]);
            extra.amount = u64::MAX;
            c.0.body.transaction.inputs.push(extra);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::InputSumOverflow,
    );
    t.case(
        "overspend",
        &b,
        own(&b),
        |c| {
            c.0.body.transaction.outputs[0].amount += 1;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::Overspend,
    );
    t.case(
        "script hash mismatch",
        &b,
        own(&b),
        |c| {
            c.0.body.witness = Witness::new(vec![], vec!["RETURN  TRUE".into()]);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::ScriptHashMismatch(0),
    );
    t.case(
        "unused witness script",
        &b,
        own(&b),
        |c| {
            c.0.body.witness = Witness::new(vec![], vec!["RETURN TRUE".into(), "RETURN FALSE".into()]);
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::UnusedScript(_)),
    );
    let t4 = b.make_tx().unwrap();
    let mut t4_bad = t4.clone();
    {
        let kp = Keypair::derive(&[3; 32], 0).unwrap();
        let txid = t4_bad.txid();
        let sig = kp.sign_message(&txid.0);
        t4_bad.body.witness = Witness::new(vec![(kp.public, sig)], t4_bad.body.witness.scripts.clone());
        let size = t4_bad.size();
        t4_bad.body.txn_target = minima_core::chain::validate::max_txn_target(&b.params, size + 64);
        ChainBuilder::reseal(&mut t4_bad, true);
    }
    t.case(
        "a CHECKSIG-style message signature over the txid is no spend signature",
        &b,
        pulse(&b, vec![t4.clone()]),
        |c| {
            c.0.body.txpow_ids = vec![t4_bad.id()];
            c.2 = vec![t4_bad.clone()];
            reseal(&mut c.0)
        },
        |e| *e == ChainError::BadSignature(0),
    );
    t.case(
        "empty transaction with a witness",
        &b,
        pulse(&b, vec![]),
        |c| {
            c.0.body.witness = Witness::new(vec![], vec!["RETURN TRUE".into()]);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::UnexpectedWitness,
    );
    let lone_tx = b.make_tx().unwrap();
    t.case(
        "a transaction TxPoW offered as a block",
        &b,
        own(&b),
        |c| {
            c.0 = lone_tx.clone();
        },
        |e| *e == ChainError::NotABlock,
    );

    // --- contextual header rules ---
    t.case(
        "unknown parent",
        &b,
        own(&b),
        |c| {
            c.0.header.parents.0[0] = Hash([8; 32]);
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::UnknownParent(_)),
    );
    t.case(
        "wrong block number",
        &b,
        own(&b),
        |c| {
            c.0.header.block_number += 1;
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::WrongBlockNumber(_)),
    );
    t.case(
        "wrong block target",
        &b,
        own(&b),
        |c| {
            c.0.header.block_target /= U256::from(2u8);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::WrongBlockTarget,
    );
    t.case(
        "wrong parents",
        &b,
        own(&b),
        |c| {
            c.0.header.parents.0[20] = Hash([9; 32]);
            reseal(&mut c.0)
        },
        |e| *e == ChainError::WrongParents,
    );
    let next = b.chain.next_block(&head).unwrap();
    t.case(
        "timestamp too early",
        &b,
        own(&b),
        |c| {
            c.0.header.time_ms = next.median_time;
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::TimeTooEarly { .. }),
    );
    t.case(
        "timestamp too far ahead",
        &b,
        own(&b),
        |c| {
            c.0.header.time_ms = next.median_time + 24 * 3_600_000 + 1;
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::TimeTooFarAhead { .. }),
    );
    t.case(
        "wrong mmr root",
        &b,
        own(&b),
        |c| {
            c.0.header.mmr_root.0[0] ^= 1;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::WrongMmrRoot,
    );
    t.case(
        "wrong mmr total",
        &b,
        own(&b),
        |c| {
            c.0.header.mmr_total += 1;
            reseal(&mut c.0)
        },
        |e| *e == ChainError::WrongMmrTotal,
    );
    t.case(
        "tampered block MMR witness",
        &b,
        own(&b),
        |c| c.1.inputs[0].siblings[0].hash.0[0] ^= 1,
        |e| matches!(e, ChainError::BadWitness(_)),
    );
    t.case(
        "witness of another MMR state",
        &b,
        own(&b),
        |c| c.1.parent_peaks.peaks[0].sum += 1,
        |e| matches!(e, ChainError::BadWitness(MmrError::BadProof)),
    );

    // --- listed transactions ---
    let other_pulse = b.candidate(false, vec![]).0;
    t.case(
        "listed TxPoW is not a transaction",
        &b,
        pulse(&b, vec![]),
        |c| {
            c.0.body.txpow_ids = vec![other_pulse.id()];
            c.2 = vec![other_pulse.clone()];
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::ListedNotTransaction(_)),
    );
    t.case(
        "a txid applied twice on a branch",
        &b,
        pulse(&b, vec![]),
        |c| {
            c.0.body.txpow_ids = vec![applied.id()];
            c.2 = vec![applied.clone()];
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::TxidAppliedTwice(_)),
    );
    let t2 = b.make_tx().unwrap();
    let mut t2b = t2.clone();
    t2b.body.transaction.state = vec![StateVar { port: 1, data: vec![1] }];
    ChainBuilder::reseal(&mut t2b, true);
    t.case(
        "duplicate input in a block",
        &b,
        pulse(&b, vec![t2.clone()]),
        |c| {
            c.0.body.txpow_ids.push(t2b.id());
            c.2.push(t2b.clone());
            // The witness must name an input per spend to get as far as the duplicate check.
            let extra = c.1.inputs[0].clone();
            c.1.inputs.push(extra);
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::DuplicateInput(_)),
    );

    // --- scripts ---
    let ok = spend_script(&mut b, script_address(cond), cond, vec![StateVar { port: 1, data: vec![1] }]);
    let mut b2 = b.clone();
    let bad = spend_script(&mut b2, script_address(cond), cond, vec![StateVar { port: 1, data: vec![2] }]);
    t.case(
        "script returns false",
        &b,
        pulse(&b, vec![ok.clone()]),
        |c| {
            c.0.body.txpow_ids = vec![bad.id()];
            c.2 = vec![bad.clone()];
            reseal(&mut c.0)
        },
        |e| matches!(e, ChainError::Script { error: ScriptError::ReturnedFalse, .. }),
    );
    let ok = spend_script(&mut b, script_address(&long_ok), &long_ok, vec![]);
    let bad = spend_script(&mut b, script_address(&long_bad), &long_bad, vec![]);
    let (bt, bw) = b.candidate(false, vec![ok.clone()]);
    let bad_block = {
        let b3 = b.clone();
        b3.candidate(false, vec![bad.clone()])
    };
    let _ = &mut t;
    t.case(
        "op-limit exhausted",
        &b,
        (bt, bw, vec![ok]),
        |c| {
            c.0 = bad_block.0.clone();
            c.1 = bad_block.1.clone();
            c.2 = vec![bad.clone()];
        },
        |e| matches!(e, ChainError::Script { error: ScriptError::InstructionLimit, .. }),
    );

    // --- pending: a listed TxPoW the node lacks ---
    let t3 = b.make_tx().unwrap();
    let (pt, pw) = b.candidate(false, vec![t3.clone()]);
    let mut chain = b.chain.clone();
    assert_eq!(
        chain.add_block(pt.clone(), pw.clone(), &minima_core::chain::NoTxPows),
        Ok(AddOutcome::Pending { missing: vec![t3.id()] })
    );
    let src: HashMap<Hash, TxPoW> = [(t3.id(), t3.clone())].into();
    assert!(matches!(chain.add_block(pt, pw, &src), Ok(AddOutcome::Added { .. })));

    // --- a non-canonical parents encoding never decodes ---
    let (good, _) = b.candidate(false, vec![]);
    let bytes = good.encode();
    assert!(TxPoW::decode(&bytes).is_ok());
    let runs_at = 1 + 1 + 8 + 8 + 32;
    let runs = bytes[runs_at] as usize;
    // Split the last run (count ≥ 2 after the tip run of a pulse chain) into two runs.
    let mut pos = runs_at + 1;
    for _ in 0..runs - 1 {
        pos += 33;
    }
    let count = bytes[pos];
    assert!(count >= 2);
    let mut split = bytes[..runs_at].to_vec();
    split.push(runs as u8 + 1);
    split.extend_from_slice(&bytes[runs_at + 1..pos]);
    split.push(1);
    split.extend_from_slice(&bytes[pos + 1..pos + 33]);
    split.push(count - 1);
    split.extend_from_slice(&bytes[pos + 1..]);
    let e: ChainError = TxPoW::decode(&split).unwrap_err().into();
    assert!(matches!(e, ChainError::Codec(CodecError::NonCanonical { field: "header.parents", .. })));
    t.record(&e);

    // --- relay coin proofs for the mempool ---
    mempool_proof_rules(&mut t);
    // --- block limits (parameter sets with small limits) ---
    block_limits(&mut t);

    eprintln!("{} rows, {} distinct variants: {:?}", t.rows, t.seen.len(), t.seen);
    assert!(t.seen.len() >= 30, "only {} distinct error variants", t.seen.len());
}

fn mempool_proof_rules(t: &mut Table) {
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 200);
    b.mine(12);
    let tx = b.make_tx().unwrap();
    let coin = tx.body.transaction.inputs[0].coin_id;
    let (created, proof) = b.coin_proof(&coin).unwrap();
    // Valid twin.
    assert!(b.chain.check_mempool_txpow(&tx, &[(created, proof.clone())]).is_ok());
    // Tampered path.
    let mut bad = proof.clone();
    bad.path[0].hash.0[0] ^= 1;
    let e = b.chain.check_mempool_txpow(&tx, &[(created, bad)]).unwrap_err();
    assert!(matches!(e, ChainError::BadCoinProof(_)));
    t.record(&e);
    // Wrong count.
    let e = b.chain.check_mempool_txpow(&tx, &[]).unwrap_err();
    assert!(matches!(e, ChainError::ProofCount { .. }));
    t.record(&e);
    // A block not on the branch.
    let mut unknown = proof.clone();
    unknown.block_id = Hash([4; 32]);
    let e = b.chain.check_mempool_txpow(&tx, &[(created, unknown)]).unwrap_err();
    assert!(matches!(e, ChainError::CoinProofUnknownBlock(_)));
    t.record(&e);
    // Too old: proof_window + 1 blocks later (the coin itself still unspent).
    let mut old = b.clone();
    old.tx_per_block = false;
    old.mine(Params::devnet().proof_window + 1);
    let e = old.chain.check_mempool_txpow(&tx, &[(created, proof.clone())]).unwrap_err();
    assert!(matches!(e, ChainError::CoinProofTooOld(_)));
    t.record(&e);
    // …but refreshed through the deltas it is good again.
    let mut young = b.clone();
    young.tx_per_block = false;
    young.mine(5);
    let rec = minima_core::types::CoinRecord { coin: tx.body.transaction.inputs[0].clone(), created };
    let fresh = young.chain.refresh_proof(&rec, &proof).unwrap();
    assert_eq!(fresh.block_id, young.head());
    assert!(young.chain.check_mempool_txpow(&tx, &[(created, fresh)]).is_ok());
    // Stale: a block spends the coin after the proof was made.
    let mut spent = b.clone();
    spent.mine_block(false, vec![tx.clone()]);
    let e = spent.chain.check_mempool_txpow(&tx, &[(created, proof.clone())]).unwrap_err();
    // The txid is now applied on the branch: that rule fires first; check the proof rule alone.
    assert!(matches!(e, ChainError::TxidAppliedTwice(_)));
    t.record(&e);
    let e = spent.chain.check_coin_proof(&rec, &proof).unwrap_err();
    assert_eq!(e, ChainError::StaleProof);
    t.record(&e);
}

fn block_limits(t: &mut Table) {
    // max_block_bytes
    let mut p = Params::devnet();
    p.magic.max_block_bytes = 2_500;
    let mut b = ChainBuilder::new(p, NOW, 100);
    b.mine(10);
    let txs: Vec<TxPoW> = (0..6).map(|_| b.make_tx().unwrap()).collect();
    let valid = pulse(&b, txs[..2].to_vec());
    let big = pulse(&b, txs.clone());
    t.case(
        "block over max_block_bytes",
        &b,
        valid,
        |c| *c = big,
        |e| matches!(e, ChainError::BlockTooLarge(_)),
    );

    // max_block_inputs
    let mut p = Params::devnet();
    p.magic.max_block_inputs = 3;
    let mut b = ChainBuilder::new(p, NOW, 100);
    b.mine(10);
    let txs: Vec<TxPoW> = (0..4).map(|_| b.make_tx().unwrap()).collect();
    let valid = pulse(&b, txs[..3].to_vec());
    let big = pulse(&b, txs.clone());
    t.case(
        "block over max_block_inputs",
        &b,
        valid,
        |c| *c = big,
        |e| matches!(e, ChainError::TooManyBlockInputs(4)),
    );

    // max_sigops per block, and per TxPoW
    let mut p = Params::devnet();
    p.magic.max_sigops_block = 1;
    let mut b = ChainBuilder::new(p, NOW, 100);
    b.mine(10);
    let k = b.add_key(Keypair::derive(&[1; 32], 0).unwrap());
    let f1 = b.pay_to_key(k, 5_000).unwrap();
    let f2 = b.pay_to_key(k, 6_000).unwrap();
    b.mine_block(false, vec![f1, f2]);
    let s1 = b.make_signed_tx(k).unwrap();
    let s2 = b.make_signed_tx(k).unwrap();
    let valid = pulse(&b, vec![s1.clone()]);
    let big = pulse(&b, vec![s1.clone(), s2.clone()]);
    t.case(
        "block over max_sigops",
        &b,
        valid,
        |c| *c = big,
        |e| matches!(e, ChainError::TooManySigopsBlock(2)),
    );

    let mut strict = b.params.clone();
    strict.magic.max_sigops_txpow = 0;
    let e = minima_core::chain::validate::check_txpow(&strict, &{
        let mut s = s1.clone();
        s.header.magic = strict.magic;
        ChainBuilder::reseal(&mut s, true);
        s
    })
    .unwrap_err();
    assert_eq!(e, ChainError::TooManySigopsTxPow(1));
    t.record(&e);
}

#[test]
fn signed_spend_is_accepted_and_checksig_counts_sigops() {
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 100);
    b.mine(10);
    let k = b.add_key(Keypair::derive(&[2; 32], 0).unwrap());
    let f = b.pay_to_key(k, 1_000_000).unwrap();
    b.mine_block(true, vec![f]);
    let s = b.make_signed_tx(k).unwrap();
    let id = b.mine_block(true, vec![s.clone()]);
    let blk = b.chain.block(&id).unwrap();
    assert!(blk.txids.contains(&s.txid()));
    assert_eq!(b.chain.tip().txpow.header.mmr_total, Params::devnet().genesis.amount);
}

/// Cheap checks run before any SPHINCS+ verification, and a refusal the block id settles
/// is remembered: a block listing a signed transaction but carrying a wrong time costs no
/// verification; a block whose script fails costs its verifications once, and a replay
/// none. A block refused for its witness (not named by its id) is not remembered, so an
/// attacker sending a valid block with a bad witness cannot get it refused later.
#[test]
fn signatures_are_verified_last_and_settled_refusals_are_remembered() {
    use minima_core::crypto::thread_verifications;
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 100);
    b.mine(10);
    let k = b.add_key(Keypair::derive(&[3; 32], 0).unwrap());
    let f = b.pay_to_key(k, 1_000_000).unwrap();
    b.mine_block(true, vec![f]);
    let s = b.make_signed_tx(k).unwrap();
    let src: std::collections::HashMap<_, _> = [(s.id(), s.clone())].into_iter().collect();
    let (good, w) = b.candidate(false, vec![s.clone()]);
    // A wrong time: refused before the listed signature is verified.
    let mut late = good.clone();
    late.header.time_ms = b.chain.tip().txpow.header.time_ms - 1_000_000;
    ChainBuilder::reseal(&mut late, false);
    let mut chain = b.chain.clone();
    let v0 = thread_verifications();
    let r = chain.add_block(late.clone(), w.clone(), &src);
    assert!(matches!(r, Err(ChainError::TimeTooEarly { .. })), "{r:?}");
    assert_eq!(thread_verifications(), v0, "no SPHINCS+ for a block refused on its header");
    assert!(matches!(chain.add_block(late, w.clone(), &src), Err(ChainError::KnownInvalid(_))));
    // A damaged witness: refused, not remembered, and the same block with its real witness
    // is then taken.
    let mut bad = w.clone();
    bad.inputs[0].leaf_index += 1;
    let v1 = thread_verifications();
    let r = chain.add_block(good.clone(), bad, &src);
    assert!(matches!(r, Err(ChainError::BadWitness(_)) | Err(ChainError::CoinNotUnspent(_))), "{r:?}");
    assert_eq!(thread_verifications(), v1, "no SPHINCS+ for a block refused on its witness");
    let v2 = thread_verifications();
    assert!(matches!(chain.add_block(good, w, &src), Ok(AddOutcome::Added { .. })));
    assert!(thread_verifications() > v2, "the valid block's signature was verified");
}

/// A relayer is charged only for invalidity no state of ours explains: a script that fails
/// without reading the height fails at any height (its relayer's fault), one that read
/// `@BLOCK` may pass at another (no fault).
#[test]
fn script_failures_are_the_relayers_fault_only_when_the_height_played_no_part() {
    let mut b = ChainBuilder::new(Params::devnet(), NOW, 100);
    b.mine(5);
    let judge = |b: &mut ChainBuilder, script: &str| {
        let pay = b.pay_to_address(script_address(script), 1_000).unwrap();
        b.mine_block(false, vec![pay]);
        let id = b.coins_at(&script_address(script))[0];
        let (rec, _) = b.coin(&id).unwrap();
        let tx = Transaction {
            version: 1,
            inputs: vec![rec.coin.clone()],
            outputs: vec![Output {
                address: script_address("RETURN TRUE"),
                amount: 1_000,
                token_id: Hash::ZERO,
                state: vec![],
            }],
            state: vec![],
        };
        let t = b.make_custom_tx(tx, Witness::new(vec![], vec![script.to_string()]));
        let proof = b.coin_proof(&id).unwrap();
        b.chain.check_mempool_txpow(&t, &[proof]).unwrap_err()
    };
    let e = judge(&mut b, "RETURN FALSE");
    assert!(matches!(e, ChainError::Script { read_height: false, .. }), "{e:?}");
    assert!(e.is_state_independent());
    let e = judge(&mut b, "ASSERT @BLOCK LT 3\nRETURN TRUE");
    assert!(matches!(e, ChainError::Script { read_height: true, .. }), "{e:?}");
    assert!(!e.is_state_independent());
    assert!(!ChainError::StaleProof.is_state_independent());
    assert!(ChainError::BadSignature(0).is_state_independent());
}
