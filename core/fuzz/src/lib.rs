//! What the fuzz targets share: one fixed fixture world per process (built once, in a
//! `OnceLock`), so that each iteration only decodes, validates or assembles.
//!
//! Everything here is deterministic: the same binary builds the same chains, so a crash input
//! replays exactly (`cargo +nightly fuzz run TARGET crash-file`).

use std::collections::HashMap;
use std::sync::OnceLock;

use minima_core::chain::Chain;
use minima_core::crypto::{script_address, Hash, Keypair, PublicKey};
use minima_core::fixture::{ChainBuilder, OPEN_SCRIPT};
use minima_core::mempool::Entry;
use minima_core::mmr::BlockWitness;
use minima_core::types::{Coin, Output, StateVar, Transaction, TxPoW, Witness};
use minima_core::Params;

/// The fixed "now" of every fixture chain.
pub const NOW: u64 = 1_800_000_000_000;
/// Blocks the base builder plans for (its genesis is this many block times before `NOW`).
pub const PLANNED: u64 = 200;

/// A devnet builder at genesis; its params (genesis time included) are those of every target
/// that checks against "devnet" (the cascade target, the add_block world).
pub fn base_builder() -> ChainBuilder {
    ChainBuilder::new(Params::devnet(), NOW, PLANNED)
}

/// The params and genesis id of [`base_builder`].
pub fn base_params() -> &'static (Params, Hash) {
    static P: OnceLock<(Params, Hash)> = OnceLock::new();
    P.get_or_init(|| {
        let b = base_builder();
        let g = b.chain.genesis_id();
        (b.params, g)
    })
}

/// The add_block world: a 10-block devnet chain and the block that would come next (with a
/// transaction of its own and one listed TxPoW, so its witness proves inputs).
pub struct BlockWorld {
    /// The chain at block 10.
    pub chain: Chain,
    /// The candidate next block.
    pub block: TxPoW,
    /// Its MMR witness.
    pub witness: BlockWitness,
    /// The TxPoW it lists.
    pub listed: TxPoW,
}

/// The add_block world, built once.
pub fn block_world() -> &'static BlockWorld {
    static W: OnceLock<BlockWorld> = OnceLock::new();
    W.get_or_init(|| {
        let mut b = base_builder();
        b.mine(10);
        let listed = b.make_tx().expect("a free coin");
        let (block, witness) = b.candidate(true, vec![listed.clone()]);
        assert_eq!(block.body.txpow_ids, vec![listed.id()]);
        assert!(!witness.inputs.is_empty());
        // The unmutated candidate is valid: the target starts from a block the chain accepts.
        let src: HashMap<Hash, TxPoW> = [(listed.id(), listed.clone())].into();
        let out = b.chain.clone().add_block(block.clone(), witness.clone(), &src);
        assert!(matches!(out, Ok(minima_core::chain::AddOutcome::Added { .. })), "{out:?}");
        BlockWorld { chain: b.chain, block, witness, listed }
    })
}

/// The script target's fixed context: a coin with state, a two-input transaction, and one
/// signer whose key the fuzzer can only meet through the dictionary or by chance.
pub struct ScriptWorld {
    /// The coin spent by input 1.
    pub coin: Coin,
    /// The transaction.
    pub tx: Transaction,
    /// Keys whose signatures verified.
    pub signers: Vec<PublicKey>,
}

/// The script world, built once.
pub fn script_world() -> &'static ScriptWorld {
    static W: OnceLock<ScriptWorld> = OnceLock::new();
    W.get_or_init(|| {
        let coin = Coin {
            coin_id: minima_core::crypto::sha3(b"coin"),
            address: Hash([0xAA; 32]),
            amount: 1000,
            token_id: Hash::ZERO,
            state: vec![StateVar { port: 3, data: vec![0xAB] }],
        };
        let tx = Transaction {
            version: 1,
            inputs: vec![coin.clone(), coin.clone()],
            outputs: vec![Output {
                address: Hash([0xBB; 32]),
                amount: 600,
                token_id: Hash::ZERO,
                state: vec![],
            }],
            state: vec![StateVar { port: 1, data: vec![0x01, 0x02] }],
        };
        let kp = Keypair::derive(&[1; 32], 0).expect("derive");
        ScriptWorld { coin, tx, signers: vec![kp.public] }
    })
}

// ---------------------------------------------------------------------------------------------
// The template world: the approach of core/tests/template_props.rs, with every mempool entry
// made once up front so that an iteration only picks entries, builds and validates.

/// Coins made per script kind.
pub const PER_KIND: usize = 5;
/// The tip when the entries were admitted.
pub const ADMITTED_AT: u64 = 46;
/// The tip the template builds on.
pub const TIP: u64 = 47;
/// State padding choices per entry.
pub const PADS: [usize; 3] = [0, 300, 6_000];
/// Burn choices per entry.
pub const BURNS: [u64; 2] = [0, 4_000];

/// The scripts the entries' coins carry (index = kind): sig-ops run by scripts, height-bound
/// scripts (one expiring at the next height) and script work growing with the state.
pub fn template_scripts() -> Vec<String> {
    let checksigs = |k: usize| {
        let one = format!("ASSERT NOT CHECKSIG(0x{}, 0x00, 0x00)\n", "ab".repeat(32));
        format!("{}RETURN TRUE", one.repeat(k))
    };
    vec![
        OPEN_SCRIPT.to_string(),
        checksigs(5),
        checksigs(12),
        format!("ASSERT @BLOCK LTE {}\nRETURN TRUE", TIP + 1),
        format!("ASSERT @BLOCK LTE {TIP}\nRETURN TRUE"),
        "ASSERT SHA3(STATE(1)) NEQ 0x00\nASSERT SHA3(STATE(1)) NEQ 0x01\nRETURN TRUE".to_string(),
        "ASSERT @COINAGE GTE 1\nRETURN TRUE".to_string(),
    ]
}

/// Devnet with block limits small enough for a few entries to reach each of them.
pub fn template_params() -> Params {
    let mut p = Params::devnet();
    p.magic.max_txns = 10;
    p.magic.max_block_bytes = 40_000;
    p.magic.max_block_inputs = 8;
    p.magic.max_sigops_block = 30;
    p.max_block_script_ops = 2_500;
    p
}

/// The template world.
pub struct TemplateWorld {
    /// The chain the template is built on (tip [`TIP`]).
    pub tip: Chain,
    /// Every entry the fuzzer can put in the mempool (kind × coin × pad × burn).
    pub entries: Vec<Entry>,
}

fn make_entry(
    maker: &mut ChainBuilder,
    admitted: &ChainBuilder,
    script: &str,
    id: Hash,
    pad: usize,
    burn: u64,
) -> Option<Entry> {
    let (rec, _) = admitted.coin(&id)?;
    let (created, proof) = admitted.coin_proof(&id)?;
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
    let txpow = maker.make_custom_tx(tx, Witness::new(vec![], vec![script.to_string()]));
    let proofs = vec![(created, proof)];
    let j = admitted.chain.check_mempool_txpow(&txpow, &proofs).ok()?;
    Some(Entry::new(txpow, proofs, &j))
}

/// The template world, built once (a few seconds).
pub fn template_world() -> &'static TemplateWorld {
    static W: OnceLock<TemplateWorld> = OnceLock::new();
    W.get_or_init(|| {
        let mut b = ChainBuilder::new(template_params(), NOW, 100);
        b.mine(40);
        let scripts = template_scripts();
        let mut pays = vec![];
        for s in &scripts {
            for _ in 0..PER_KIND {
                pays.push(b.pay_to_address(script_address(s), 1_000_000).expect("a free coin"));
            }
        }
        for chunk in pays.chunks(8) {
            b.mine_block(false, chunk.to_vec());
        }
        while b.chain.tip().number() < ADMITTED_AT {
            b.mine_block(false, vec![]);
        }
        assert_eq!(b.chain.tip().number(), ADMITTED_AT);
        let admitted = b.clone();
        b.mine_block(false, vec![]);
        assert_eq!(b.chain.tip().number(), TIP);
        let mut maker = admitted.clone();
        let mut entries = vec![];
        for s in &scripts {
            for id in admitted.coins_at(&script_address(s)).into_iter().take(PER_KIND) {
                for pad in PADS {
                    for burn in BURNS {
                        if let Some(e) = make_entry(&mut maker, &admitted, s, id, pad, burn) {
                            entries.push(e);
                        }
                    }
                }
            }
        }
        assert!(entries.len() >= scripts.len() * PER_KIND, "entries made: {}", entries.len());
        TemplateWorld { tip: b.chain, entries }
    })
}

/// Most expected hashes [`reseal_cheap`] will spend on a nonce.
pub const MAX_RESEAL_WORK: u128 = 1 << 14;

/// [`ChainBuilder::reseal`] (body hash fixed if `fix_body`) when the target it mines to is
/// easy enough to meet within about [`MAX_RESEAL_WORK`] hashes; returns whether it resealed.
/// A fuzzed target can be arbitrarily hard, and a nonce search must not hang an iteration.
pub fn reseal_cheap(t: &mut TxPoW, fix_body: bool) -> bool {
    let target = if t.header.block_target.is_zero() { t.body.txn_target } else { t.header.block_target };
    if minima_core::chain::pow::work_of(&target) > MAX_RESEAL_WORK {
        return false;
    }
    ChainBuilder::reseal(t, fix_body);
    true
}

/// Apply the mutation program `ops` to `segs`: each 3-byte op `(a, b, x)` picks a position
/// `((a & 0x3f) << 8 | b) mod total` across the segments laid end to end and, by `a >> 6`,
/// XORs `x` into that byte (0, 1), inserts `x` before it (2) or removes it (3).
pub fn mutate(segs: &mut [Vec<u8>], ops: &[u8]) {
    for op in ops.chunks_exact(3) {
        let total: usize = segs.iter().map(Vec::len).sum();
        if total == 0 {
            return;
        }
        let mut pos = ((((op[0] & 0x3f) as usize) << 8) | op[1] as usize) % total;
        let seg = segs
            .iter_mut()
            .find(|s| {
                if pos < s.len() {
                    true
                } else {
                    pos -= s.len();
                    false
                }
            })
            .expect("pos < total");
        match op[0] >> 6 {
            0 | 1 => seg[pos] ^= op[2],
            2 => seg.insert(pos, op[2]),
            _ => {
                seg.remove(pos);
            }
        }
    }
}
