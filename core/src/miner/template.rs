//! Block assembly: a pure function from the chain, the ranked mempool, the time and a prng to
//! the pulse to mine. The actor calls it for every template; a property test and a fuzz target
//! check that what it builds is a block [`Chain::add_block`] accepts, and that it leaves out no
//! entry valid at the next height unless adding it would break a limit.

use std::collections::HashSet;

use crate::chain::validate::apply_transaction;
use crate::chain::{Chain, ChainError};
use crate::crypto::Hash;
use crate::mempool::Entry;
use crate::mmr::{BlockWitness, Mmr, WitnessInput};
use crate::types::{Coin, CoinRecord, Transaction, TxBody, TxHeader, TxPoW, Witness};

pub use crate::mmr::Proofs;

/// The block to mine (its nonce unset), and what the builder learnt about the mempool.
#[derive(Debug, Clone)]
pub struct Template {
    /// Header of the pulse (nonce zero).
    pub header: TxHeader,
    /// Its body: no transaction of its own, the chosen TxPoW ids.
    pub body: TxBody,
    /// The block's MMR witness.
    pub witness: BlockWitness,
    /// The listed TxPoWs, in order.
    pub listed: Vec<TxPoW>,
    /// Chosen entries' proofs carried to the tip (txid, proofs).
    pub refreshed: Vec<(Hash, Proofs)>,
    /// Entries judged again at the next height (txid, sig-ops, script instructions).
    pub rejudged: Vec<(Hash, u32, u32)>,
    /// Entries not valid on the tip or at the next height (coins gone, applied already, a
    /// height-bound script now false): the caller evicts them.
    pub invalid: Vec<Hash>,
}

/// What the block being built uses of each limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Listed TxPoWs.
    pub txns: usize,
    /// Bytes of the listed TxPoWs.
    pub listed_bytes: usize,
    /// Inputs spent.
    pub inputs: usize,
    /// Sig-ops.
    pub sigops: u32,
    /// Script instructions.
    pub script_ops: u32,
}

/// An entry's cost in a block: (sig-ops, script instructions).
pub type Cost = (u32, u32);

/// Whether adding an entry of `size` bytes, `n_in` inputs and `cost` to a block using `u`
/// keeps every limit, for a pulse whose encoding without listed ids is `base` bytes.
pub fn fits(chain: &Chain, base: usize, u: &Usage, size: usize, n_in: usize, cost: Cost) -> bool {
    let p = chain.params();
    let m = &p.magic;
    let txns = u.txns + 1;
    let own = base + 32 * txns;
    txns <= m.max_txns as usize
        && own <= m.max_txpow_bytes as usize
        && own + u.listed_bytes + size <= m.max_block_bytes as usize
        && u.inputs + n_in <= m.max_block_inputs as usize
        && u.sigops.saturating_add(cost.0) <= m.max_sigops_block
        && u.script_ops.saturating_add(cost.1) <= p.max_block_script_ops
}

/// The proofs of `e` carried to the tip, `None` if an input is not unspent there.
pub fn carried(chain: &Chain, e: &Entry) -> Option<Proofs> {
    let mut v = Vec::with_capacity(e.proofs.len());
    for (c, (created, p)) in e.txpow.body.transaction.inputs.iter().zip(&e.proofs) {
        let rec = CoinRecord { coin: c.clone(), created: *created };
        v.push((*created, chain.refresh_proof(&rec, p).ok()?));
    }
    (v.len() == e.txpow.body.transaction.inputs.len()).then_some(v)
}

/// An entry's cost at the next height: as judged at admission, or judged again if its scripts
/// read the height. `None` if it is not valid there.
pub fn cost_at(chain: &Chain, e: &Entry, proofs: &Proofs, block_number: u64) -> Option<(Cost, bool)> {
    if !e.reads_height {
        return Some(((e.sigops, e.script_ops), false));
    }
    let created: Vec<u64> = proofs.iter().map(|(c, _)| *c).collect();
    let (sigops, cost) = chain.judge_scripts(&e.txpow, &created, block_number).ok()?;
    Some(((sigops, cost.instructions), true))
}

/// Build the pulse on the tip of `chain` listing the best of `ranked` (best first) that fit
/// the block limits, at `time_ms` (clamped into the valid range) with `prng`.
pub fn build(chain: &Chain, ranked: &[&Entry], time_ms: u64, prng: [u8; 32]) -> Result<Template, ChainError> {
    let params = chain.params();
    let magic = params.magic;
    let tip_id = chain.tip_id();
    let next = chain.next_block(&tip_id)?;
    let mut body = TxBody {
        txn_target: magic.min_target(),
        transaction: Transaction::empty(),
        witness: Witness::default(),
        txpow_ids: vec![],
        prng,
    };
    let mut header = TxHeader {
        chain_id: params.chain_id,
        version: 1,
        block_number: next.block_number,
        time_ms: time_ms.max(next.min_time).min(next.max_time),
        block_target: next.block_target,
        parents: next.parents,
        mmr_root: Hash::ZERO,
        mmr_total: 0,
        magic,
        body_hash: Hash::ZERO,
        nonce: [0; 32],
    };
    // The pulse's own encoding without ids; each listed id adds exactly 32 bytes.
    let base = TxPoW { header: header.clone(), body: body.clone() }.size();
    let applied = chain.applied_txids();
    let mut u = Usage::default();
    let mut spent: HashSet<Hash> = HashSet::new();
    let mut chosen: Vec<(&Entry, Proofs)> = vec![];
    let (mut refreshed, mut rejudged, mut invalid) = (vec![], vec![], vec![]);
    for e in ranked {
        let tx = &e.txpow.body.transaction;
        let n_in = tx.inputs.len();
        if u.txns >= magic.max_txns as usize {
            break;
        }
        if tx.inputs.iter().any(|c| spent.contains(&c.coin_id)) {
            continue;
        }
        // Cheap limits first, with the cost as last judged (a re-judged cost is checked again).
        if !fits(chain, base, &u, e.size, n_in, (e.sigops, e.script_ops)) && !e.reads_height {
            continue;
        }
        if applied.contains(&e.txid) {
            invalid.push(e.txid);
            continue;
        }
        let Some(proofs) = carried(chain, e) else {
            invalid.push(e.txid);
            continue;
        };
        let Some((cost, again)) = cost_at(chain, e, &proofs, next.block_number) else {
            invalid.push(e.txid);
            continue;
        };
        if again {
            rejudged.push((e.txid, cost.0, cost.1));
        }
        if !fits(chain, base, &u, e.size, n_in, cost) {
            continue;
        }
        u.txns += 1;
        u.listed_bytes += e.size;
        u.inputs += n_in;
        u.sigops = u.sigops.saturating_add(cost.0);
        u.script_ops = u.script_ops.saturating_add(cost.1);
        spent.extend(tx.inputs.iter().map(|c| c.coin_id));
        refreshed.push((e.txid, proofs.clone()));
        chosen.push((e, proofs));
    }
    // The block's witness: each input's path to its peak, against the tip's peaks.
    let peaks = chain.tip().peaks.clone();
    let n_peaks = peaks.leaf_count.count_ones() as usize;
    let mut winputs = vec![];
    let mut coins: Vec<&Coin> = vec![];
    for (e, proofs) in &chosen {
        for (c, (created, p)) in e.txpow.body.transaction.inputs.iter().zip(proofs) {
            let h = p.path.len().saturating_sub(n_peaks.saturating_sub(1));
            winputs.push(WitnessInput {
                leaf_index: p.leaf_index,
                created: *created,
                siblings: p.path[..h].to_vec(),
            });
            coins.push(c);
        }
    }
    let witness = BlockWitness { parent_peaks: peaks, inputs: winputs };
    let mut mmr = Mmr::from_witness(&witness, &coins).map_err(ChainError::BadWitness)?;
    let mut pos = 0;
    for (e, _) in &chosen {
        let tx = &e.txpow.body.transaction;
        let w = &witness.inputs[pos..pos + tx.inputs.len()];
        pos += tx.inputs.len();
        let leaves: Vec<u64> = w.iter().map(|x| x.leaf_index).collect();
        let created: Vec<u64> = w.iter().map(|x| x.created).collect();
        apply_transaction(&mut mmr, tx, &leaves, &created, next.block_number)?;
    }
    header.mmr_root = mmr.root().map_err(ChainError::Mmr)?;
    header.mmr_total = mmr.total().map_err(ChainError::Mmr)?;
    body.txpow_ids = chosen.iter().map(|(e, _)| e.id).collect();
    header.body_hash = body.hash();
    let listed = chosen.into_iter().map(|(e, _)| e.txpow.clone()).collect();
    Ok(Template { header, body, witness, listed, refreshed, rejudged, invalid })
}
