//! Consensus: validation, difficulty, time, parents, the TxPoW tree with heaviest-path fork choice, and
//! the cascade. A pure state machine — blocks in, decisions out; time is an input.

pub mod cascade;
mod error;
pub mod pow;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use cascade::{Cascade, CascadeEntry};
pub use error::ChainError;

use crate::crypto::{Hash, TaggedHasher};
use crate::mmr::{BlockWitness, Mmr, MmrDelta, MmrPeaks, MmrProof};
use crate::params::Params;
use crate::script::SigCache;
use crate::types::{Coin, CoinRecord, Magic, Parents, Transaction, TxBody, TxHeader, TxPoW, Witness};
use crate::U256;
use pow::{median_time, next_target, super_level, work_of};
use validate::{apply_transaction, check_txpow_form, run_scripts, ScriptBudget, TxPowInfo};

/// What [`Chain::judge_block`] decided.
enum Judgement {
    /// Valid: the tree block to insert.
    Valid(Box<TreeBlock>),
    /// Lists TxPoWs we lack.
    Pending(Vec<Hash>),
}

/// Block ids remembered as invalid (oldest forgotten first).
pub const MAX_INVALID: usize = 4_096;

/// A transaction TxPoW judged for the next block: its facts and what its scripts cost there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Its stateless facts.
    pub info: TxPowInfo,
    /// Sig-ops: witness signatures plus the `CHECKSIG`s its scripts ran.
    pub sigops: u32,
    /// Script instructions its runs executed.
    pub script_ops: u32,
    /// Whether a script read `@BLOCK`/`@COINAGE`: judged again for each block built.
    pub reads_height: bool,
}

/// Highest block number any TxPoW, tree block or cascade header may carry (2^48: 8.9 million
/// years of 1-second blocks). Numbers from peers stay far from `u64::MAX`, so block
/// arithmetic cannot overflow.
pub const MAX_BLOCK_NUMBER: u64 = 1 << 48;
/// Highest `time_ms` any TxPoW or cascade header may carry (2^53 ms, ≈ 285,000 years; exact
/// in an `f64`).
pub const MAX_TIME_MS: u64 = 1 << 53;

/// Refuse a header whose number or time is past [`MAX_BLOCK_NUMBER`] / [`MAX_TIME_MS`].
pub fn check_header_bounds(h: &TxHeader) -> Result<(), ChainError> {
    if h.block_number > MAX_BLOCK_NUMBER {
        return Err(ChainError::BlockNumberTooHigh(h.block_number));
    }
    if h.time_ms > MAX_TIME_MS {
        return Err(ChainError::TimeTooHigh(h.time_ms));
    }
    Ok(())
}

/// A tree block's MMR witness and delta: the heavy part of a block, held in memory near the
/// tip and read back from [`ColdBlocks`] below it (see [`Chain::extra`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockExtra {
    /// Its MMR witness (kept so the block can be served).
    pub witness: BlockWitness,
    /// MMR nodes the block changed.
    pub delta: MmrDelta,
}

/// Where a chain reads the witness and listed TxPoWs of a block it no longer holds in memory
/// (the node's SQLite store). Only blocks already stored are spilled to it.
pub trait ColdBlocks: Send + Sync + std::fmt::Debug {
    /// The stored witness of tree block `id`.
    fn witness(&self, id: &Hash) -> Option<BlockWitness>;
    /// A stored TxPoW that a tree block lists.
    fn txpow(&self, id: &Hash) -> Option<TxPoW>;
}

/// A block of the tree with everything needed to build on it and choose the best tip; its
/// witness and delta (needed to serve it, refresh proofs and roll back) through [`Chain::extra`].
#[derive(Debug, Clone)]
pub struct TreeBlock {
    /// The block.
    pub txpow: TxPoW,
    /// Its id.
    pub id: Hash,
    /// Work of its target.
    pub work: u128,
    /// Work on the path to it: its parent's `path_work` plus its own work (the tree's first
    /// root counts its own work only). An offset common to every block of the tree, so two
    /// blocks' `path_work` compare as their root→block paths do.
    pub path_work: u128,
    /// Children in the tree.
    pub children: Vec<Hash>,
    /// MMR peaks after the block.
    pub peaks: MmrPeaks,
    /// Witness and delta while in memory (`None` once spilled to the chain's [`ColdBlocks`]).
    extra: Option<Arc<BlockExtra>>,
    /// MMR leaves its inputs spent (the only existing leaves a block changes).
    pub spent: Vec<u64>,
    /// Transactions it applied, in order.
    pub txids: Vec<Hash>,
    /// Every TxPoW id it applied (its own first if it is a transaction, then the listed ones).
    pub applied: Vec<Hash>,
}

impl TreeBlock {
    /// Block number.
    pub fn number(&self) -> u64 {
        self.txpow.header.block_number
    }
    /// Parent id.
    pub fn parent(&self) -> Hash {
        self.txpow.header.parents.0[0]
    }
    /// Witness and delta, when held in memory (see [`Chain::extra`] for any block).
    pub fn hot_extra(&self) -> Option<&Arc<BlockExtra>> {
        self.extra.as_ref()
    }
}

/// A change of the best chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reorg {
    /// Blocks that left the best chain, newest first.
    pub disconnected: Vec<Hash>,
    /// Blocks that joined it, oldest first.
    pub connected: Vec<Hash>,
}

/// What adding a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// Already in the tree.
    Known,
    /// Lists TxPoWs the node lacks: fetch them and add the block again.
    Pending {
        /// Missing TxPoW ids.
        missing: Vec<Hash>,
    },
    /// Valid and stored in the tree.
    Added {
        /// Tip changed; what moved (empty `disconnected` = extension).
        reorg: Option<Reorg>,
        /// Headers that moved into the cascade (oldest first).
        pruned: Vec<Hash>,
        /// Side-branch blocks discarded with them (they fork below the new root).
        dropped: Vec<Hash>,
    },
}

/// Where a coin stands on the best chain (see [`Chain::coin_fates`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinFate {
    /// Unspent at the tip; a proof against the tip.
    Unspent(MmrProof),
    /// Spent by best-chain block `block` (number `number`); `before` proves it at that
    /// block's parent, so a reorg that removes `block` can bring the coin back.
    Spent {
        /// The spending block.
        block: Hash,
        /// Its number.
        number: u64,
        /// Proof against the spending block's parent.
        before: MmrProof,
    },
    /// Not on the best chain: created on a branch that left it.
    Gone,
    /// Its proof's block is no longer in the tree, or the proof does not check against it.
    Unknown,
}

/// The consensus state: cascade + tree, with the best tip: the end of the heaviest path.
#[derive(Debug, Clone)]
pub struct Chain {
    params: Params,
    genesis_id: Hash,
    /// Boxed: a map's spare slots then cost a pointer, not a whole block.
    tree: HashMap<Hash, Box<TreeBlock>>,
    root: Hash,
    tip: Hash,
    cascade: Cascade,
    /// Block ids refused for reasons their id settles, and their order (bounded by
    /// [`MAX_INVALID`]).
    invalid: HashSet<Hash>,
    invalid_order: std::collections::VecDeque<Hash>,
    cold: Option<Arc<dyn ColdBlocks>>,
    /// False while a stored tree is replayed (see [`Chain::hold_pruning`]).
    pruning: bool,
}

/// A transaction TxPoW looked up by id (the mempool, or blocks fetched for a pending block).
pub trait TxPowSource {
    /// The TxPoW with this id, if held.
    fn get_txpow(&self, id: &Hash) -> Option<TxPoW>;
}

impl TxPowSource for HashMap<Hash, TxPoW> {
    fn get_txpow(&self, id: &Hash) -> Option<TxPoW> {
        self.get(id).cloned()
    }
}

/// No TxPoWs at all.
pub struct NoTxPows;
impl TxPowSource for NoTxPows {
    fn get_txpow(&self, _id: &Hash) -> Option<TxPoW> {
        None
    }
}

/// Genesis coin id: `H("minima/genesis/v1", chain_id, prng)`.
pub fn genesis_coin_id(chain_id: u8, prng: &[u8; 32]) -> Hash {
    TaggedHasher::new("minima/genesis/v1").bytes(&[chain_id]).bytes(prng).finish()
}

/// The genesis coin of a parameter set.
pub fn genesis_coin(params: &Params) -> Result<CoinRecord, ChainError> {
    let address = params
        .genesis
        .address
        .ok_or(ChainError::Params(crate::params::ParamsError::GenesisUnset(params.name)))?;
    Ok(CoinRecord {
        coin: Coin {
            coin_id: genesis_coin_id(params.chain_id, &params.genesis.prng),
            address,
            amount: params.genesis.amount,
            token_id: Hash::ZERO,
            state: vec![],
        },
        created: 0,
    })
}

/// Block 0 of a parameter set and its MMR.
pub fn genesis(params: &Params) -> Result<(TxPoW, Mmr), ChainError> {
    let coin = genesis_coin(params)?;
    let mut mmr = Mmr::new();
    mmr.append_coin(&coin).map_err(ChainError::Mmr)?;
    let min_target = params.magic.min_target();
    let body = TxBody {
        txn_target: min_target,
        transaction: Transaction::empty(),
        witness: Witness::default(),
        txpow_ids: vec![],
        prng: params.genesis.prng,
    };
    let header = TxHeader {
        chain_id: params.chain_id,
        version: 1,
        block_number: 0,
        time_ms: params.genesis.time_ms,
        block_target: min_target,
        parents: Parents::default(),
        mmr_root: mmr.root().map_err(ChainError::Mmr)?,
        mmr_total: mmr.total().map_err(ChainError::Mmr)?,
        magic: params.magic,
        body_hash: body.hash(),
        nonce: [0; 32],
    };
    Ok((TxPoW { header, body }, mmr))
}

/// The header fields a block built on a parent must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextBlock {
    /// Its number.
    pub block_number: u64,
    /// The target the difficulty rule sets.
    pub block_target: U256,
    /// Its parents array.
    pub parents: Parents,
    /// Median time past: `time_ms` must be above it.
    pub median_time: u64,
    /// Earliest valid `time_ms`.
    pub min_time: u64,
    /// Latest valid `time_ms` (consensus bound).
    pub max_time: u64,
    /// The magic.
    pub magic: Magic,
}

/// A block's MMR step: the parent's partial MMR from `witness` (every proof checked against its
/// peaks), then the inputs spent and outputs appended of `txs` in order. Answers the nodes it
/// changed and the peaks after.
fn replay_mmr(
    witness: &BlockWitness,
    txs: &[&TxPoW],
    block_number: u64,
) -> Result<(MmrDelta, MmrPeaks), ChainError> {
    let coins: Vec<&Coin> = txs.iter().flat_map(|t| t.body.transaction.inputs.iter()).collect();
    let mut mmr = Mmr::from_witness(witness, &coins).map_err(ChainError::BadWitness)?;
    mmr.begin();
    let mut pos = 0usize;
    for t in txs {
        let n = t.body.transaction.inputs.len();
        let w = &witness.inputs[pos..pos + n];
        let leaves: Vec<u64> = w.iter().map(|x| x.leaf_index).collect();
        let created: Vec<u64> = w.iter().map(|x| x.created).collect();
        pos += n;
        apply_transaction(&mut mmr, &t.body.transaction, &leaves, &created, block_number)?;
    }
    let delta = mmr.finish();
    let peaks = mmr.peaks().map_err(ChainError::Mmr)?;
    Ok((delta, peaks))
}

/// Parents of a block built on `tip`.
pub fn parents_after(tip: &TxHeader, tip_id: &Hash) -> Parents {
    let sl =
        if tip.block_number == 0 { 31 } else { super_level(tip_id, &tip.block_target).unwrap_or(0) } as usize;
    let mut p = tip.parents;
    for slot in p.0.iter_mut().take(sl + 1) {
        *slot = *tip_id;
    }
    p
}

impl Chain {
    /// A chain holding only the genesis of `params` (which must pass [`Params::check`]).
    pub fn new(params: Params) -> Result<Chain, ChainError> {
        params.check()?;
        let (g, mmr) = genesis(&params)?;
        let id = g.id();
        let peaks = mmr.peaks().map_err(ChainError::Mmr)?;
        let work = work_of(&g.header.block_target);
        let root = TreeBlock {
            txpow: g,
            id,
            work,
            path_work: work,
            children: vec![],
            peaks,
            extra: Some(Arc::new(BlockExtra {
                witness: BlockWitness::default(),
                delta: MmrDelta { old_leaf_count: 0, new_leaf_count: 1, changes: vec![] },
            })),
            spent: vec![],
            txids: vec![],
            applied: vec![],
        };
        let mut tree = HashMap::new();
        tree.insert(id, Box::new(root));
        Ok(Chain {
            params,
            genesis_id: id,
            tree,
            root: id,
            tip: id,
            cascade: Cascade::new(),
            invalid: HashSet::new(),
            invalid_order: Default::default(),
            cold: None,
            pruning: true,
        })
    }

    /// Resume from a verified cascade and a tree root block whose MMR peaks are `root_peaks`
    /// (initial sync, or a restart from storage). The root's header must link to the cascade.
    pub fn from_parts(
        params: Params,
        cascade: Cascade,
        root: TxPoW,
        root_witness: BlockWitness,
        root_peaks: MmrPeaks,
    ) -> Result<Chain, ChainError> {
        params.check()?;
        check_header_bounds(&root.header)?;
        let (g, _) = genesis(&params)?;
        let genesis_id = g.id();
        let id = root.id();
        if root_peaks.root() != root.header.mmr_root || root_peaks.total().ok() != Some(root.header.mmr_total)
        {
            return Err(ChainError::BadWitness(crate::mmr::MmrError::BadProof));
        }
        if let Some(n) = cascade.newest() {
            if root.header.parents.0[0] != n.id
                || Some(root.header.block_number) != n.header.block_number.checked_add(1)
            {
                return Err(ChainError::Cascade("tree root does not follow the cascade"));
            }
        } else if id != genesis_id {
            return Err(ChainError::BadGenesis);
        }
        let work = work_of(&root.header.block_target);
        let tb = TreeBlock {
            txpow: root,
            id,
            work,
            path_work: work,
            children: vec![],
            peaks: root_peaks,
            spent: root_witness.inputs.iter().map(|w| w.leaf_index).collect(),
            extra: Some(Arc::new(BlockExtra { witness: root_witness, delta: MmrDelta::default() })),
            txids: vec![],
            applied: vec![],
        };
        let mut tree = HashMap::new();
        tree.insert(id, Box::new(tb));
        Ok(Chain {
            params,
            genesis_id,
            tree,
            root: id,
            tip: id,
            cascade,
            invalid: HashSet::new(),
            invalid_order: Default::default(),
            cold: None,
            pruning: true,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// Id of block 0.
    pub fn genesis_id(&self) -> Hash {
        self.genesis_id
    }
    /// The best tip.
    pub fn tip(&self) -> &TreeBlock {
        &self.tree[&self.tip]
    }
    /// Id of the best tip.
    pub fn tip_id(&self) -> Hash {
        self.tip
    }
    /// The tree root.
    pub fn root(&self) -> &TreeBlock {
        &self.tree[&self.root]
    }
    /// The cascade.
    pub fn cascade(&self) -> &Cascade {
        &self.cascade
    }
    /// A tree block.
    pub fn block(&self, id: &Hash) -> Option<&TreeBlock> {
        self.tree.get(id).map(|b| &**b)
    }
    /// Every block of the tree (any order).
    pub fn tree_blocks(&self) -> impl Iterator<Item = &TreeBlock> {
        self.tree.values().map(|b| &**b)
    }

    /// Read spilled blocks back from `cold` (see [`Chain::spill`]).
    pub fn set_cold(&mut self, cold: Arc<dyn ColdBlocks>) {
        self.cold = Some(cold);
    }

    /// Where spilled blocks are read back from, if anywhere.
    pub fn cold(&self) -> Option<&Arc<dyn ColdBlocks>> {
        self.cold.as_ref()
    }

    /// Drop from memory the witness and delta of tree blocks more than `keep` blocks below the
    /// tip; [`Chain::extra`] reads them back. Only for blocks already stored in the chain's
    /// [`ColdBlocks`]; without one this does nothing. Answers how many were dropped.
    pub fn spill(&mut self, keep: u64) -> usize {
        if self.cold.is_none() {
            return 0;
        }
        let tip = self.tip().number();
        let mut n = 0;
        for b in self.tree.values_mut() {
            if b.extra.is_some() && b.number().saturating_add(keep) < tip {
                b.extra = None;
                n += 1;
            }
        }
        n
    }

    /// Tree blocks whose witness and delta are in memory.
    pub fn hot_len(&self) -> usize {
        self.tree.values().filter(|b| b.extra.is_some()).count()
    }

    /// The witness and delta of tree block `id`: from memory, or read back from the cold store
    /// (the witness and listed TxPoWs) with the delta recomputed by replaying the block's MMR
    /// step, which must land on the peaks kept for it. `None` if the block is not in the tree
    /// or its stored data is missing or does not match.
    pub fn extra(&self, id: &Hash) -> Option<Arc<BlockExtra>> {
        let b = self.tree.get(id)?;
        if let Some(e) = &b.extra {
            return Some(e.clone());
        }
        let cold = self.cold.as_ref()?;
        let Some(witness) = cold.witness(id) else {
            tracing::warn!(block = %id, "a spilled tree block's witness is not in the store");
            return None;
        };
        // The parent's MMR it claims must be the one we hold (the root's parent is the newest
        // cascade header, whose root is all we keep of it).
        let parent_ok = match self.tree.get(&b.parent()) {
            Some(p) if b.id != self.root => witness.parent_peaks == p.peaks,
            _ => self.cascade.newest().is_none_or(|n| n.header.mmr_root == witness.parent_peaks.root()),
        };
        if !parent_ok {
            tracing::warn!(block = %id, "a spilled tree block's stored witness names another parent MMR");
            return None;
        }
        let mut listed: Vec<TxPoW> = Vec::with_capacity(b.applied.len());
        for a in &b.applied {
            if *a != b.id {
                let Some(t) = cold.txpow(a) else {
                    tracing::warn!(block = %id, txpow = %a, "a spilled tree block's listed TxPoW is not in the store");
                    return None;
                };
                listed.push(t);
            }
        }
        let mut txs: Vec<&TxPoW> = Vec::with_capacity(b.applied.len());
        let mut it = listed.iter();
        for a in &b.applied {
            txs.push(if *a == b.id { &b.txpow } else { it.next()? });
        }
        if b.id == self.root && b.applied.is_empty() {
            // Genesis, or a root resumed from storage or a cascade: no step of its own is
            // replayed (the root's delta is never used: proofs move from it, not through it).
            return Some(Arc::new(BlockExtra { witness, delta: MmrDelta::default() }));
        }
        match replay_mmr(&witness, &txs, b.number()) {
            Ok((delta, peaks)) if peaks == b.peaks => Some(Arc::new(BlockExtra { witness, delta })),
            Ok(_) | Err(_) => {
                tracing::warn!(block = %id, "stored block data does not replay to its MMR peaks");
                None
            }
        }
    }

    /// Blocks in the tree.
    pub fn tree_len(&self) -> usize {
        self.tree.len()
    }
    /// True when the tree or cascade holds `id`.
    pub fn knows(&self, id: &Hash) -> bool {
        self.tree.contains_key(id) || self.cascade.contains(id)
    }

    /// Whether [`Chain::add_block`] would refuse `txpow` only for its unknown parent (one that
    /// may still arrive): the parent is not in the tree, the cascade or the refused, and the
    /// block is numbered above our root.
    pub fn is_orphan(&self, txpow: &TxPoW) -> bool {
        let parent = txpow.header.parents.0[0];
        !self.tree.contains_key(&parent)
            && !self.cascade.contains(&parent)
            && !self.invalid.contains(&parent)
            && txpow.header.block_number > self.root().number()
    }

    /// Chain weight: cascade weight + work on the root→tip path.
    pub fn weight(&self) -> u128 {
        // The tip's and root's `path_work` share one offset: their difference is the work of
        // the tree path after the root (unless a sum saturated: then walk the path).
        if let (Some(tip), Some(root)) = (self.tree.get(&self.tip), self.tree.get(&self.root)) {
            if tip.path_work < u128::MAX {
                return self
                    .cascade
                    .weight()
                    .saturating_add(root.work)
                    .saturating_add(tip.path_work.saturating_sub(root.path_work));
            }
        }
        let mut w = self.cascade.weight();
        let mut cur = self.tip;
        loop {
            let b = &self.tree[&cur];
            w = w.saturating_add(b.work);
            if cur == self.root {
                break;
            }
            cur = b.parent();
        }
        w
    }

    /// Ids from the root to the tip, oldest first.
    pub fn best_path(&self) -> Vec<Hash> {
        self.path_to(self.tip)
    }

    /// Best-chain headers after the first `locator` id on our best path (from the root when
    /// none is), at most `max`.
    pub fn headers_after(&self, locator: &[Hash], max: usize) -> Vec<TxHeader> {
        let path = self.best_path();
        let pos: HashMap<Hash, usize> = path.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let start = locator.iter().find_map(|l| pos.get(l)).map(|i| i + 1).unwrap_or(0);
        path[start.min(path.len())..]
            .iter()
            .take(max)
            .filter_map(|id| self.block(id).map(|b| b.txpow.header.clone()))
            .collect()
    }

    /// A locator of at most `max_len` ids: best-chain ids from the tip back, the 16 newest one
    /// apart, then thinning out by doubling steps, ending at the tree root.
    pub fn locator(&self, max_len: usize) -> Vec<Hash> {
        let path = self.best_path();
        let mut loc = vec![];
        let mut i = path.len();
        let mut step = 1;
        while i > 0 && loc.len() < max_len.saturating_sub(1) {
            i -= 1;
            loc.push(path[i]);
            if loc.len() >= 16 {
                step *= 2;
            }
            i = i.saturating_sub(step - 1);
        }
        if let Some(root) = path.first() {
            if loc.last() != Some(root) {
                loc.push(*root);
            }
        }
        loc
    }

    fn path_to(&self, id: Hash) -> Vec<Hash> {
        let mut v = vec![];
        let mut cur = id;
        loop {
            v.push(cur);
            if cur == self.root {
                break;
            }
            match self.tree.get(&cur) {
                Some(b) => cur = b.parent(),
                None => break,
            }
        }
        v.reverse();
        v
    }

    /// (target, time) of `id` and up to `n − 1` ancestors, oldest first, across the cascade.
    fn history(&self, id: &Hash, n: usize) -> Vec<(U256, u64)> {
        let mut v = Vec::with_capacity(n);
        let mut cur = *id;
        while v.len() < n {
            match self.tree.get(&cur) {
                Some(b) => {
                    v.push((b.txpow.header.block_target, b.txpow.header.time_ms));
                    if cur == self.root {
                        // Continue into the cascade: its level-0 run is contiguous.
                        for e in self.cascade.entries() {
                            if v.len() >= n || e.level != 0 {
                                break;
                            }
                            v.push((e.header.block_target, e.header.time_ms));
                        }
                        break;
                    }
                    cur = b.parent();
                }
                None => break,
            }
        }
        v.reverse();
        v
    }

    /// What a block built on `parent` must carry.
    pub fn next_block(&self, parent: &Hash) -> Result<NextBlock, ChainError> {
        let p = self.tree.get(parent).ok_or(ChainError::UnknownParent(*parent))?;
        let h = p.number().checked_add(1).ok_or(ChainError::BlockNumberTooHigh(p.number()))?;
        let want = self.params.diff_window.max(self.params.mtp_window) as usize;
        let hist = self.history(parent, want.min(h as usize));
        let target = next_target(&self.params, h, &hist);
        let m = (self.params.mtp_window as usize).min(hist.len());
        let times: Vec<u64> = hist[hist.len() - m..].iter().map(|x| x.1).collect();
        let median = median_time(&times);
        Ok(NextBlock {
            block_number: h,
            block_target: target,
            parents: parents_after(&p.txpow.header, parent),
            median_time: median,
            min_time: median.saturating_add(1),
            max_time: median.saturating_add(self.params.max_time_ahead_of_median_ms),
            magic: self.params.magic,
        })
    }

    fn txid_on_branch(&self, from: &Hash, txid: &Hash) -> bool {
        let mut cur = *from;
        loop {
            let Some(b) = self.tree.get(&cur) else { return false };
            if b.txids.contains(txid) {
                return true;
            }
            if cur == self.root {
                return false;
            }
            cur = b.parent();
        }
    }

    /// Validate a block against its parent and, if valid, add it to the tree, re-run fork
    /// choice and prune into the cascade. Listed TxPoWs come from `txpows`.
    ///
    /// Checks run cheapest first: the header's hashes and counts, its place on the parent
    /// (number, target, time, parents), the listed TxPoWs' form and the block's totals, the
    /// MMR witness, and only then SPHINCS+ signatures and scripts. A block refused for a
    /// reason its id alone settles (its header against its parent, or its signatures and
    /// scripts once the witness checked) is remembered (bounded), so a replay costs a lookup.
    pub fn add_block(
        &mut self,
        txpow: TxPoW,
        witness: BlockWitness,
        txpows: &dyn TxPowSource,
    ) -> Result<AddOutcome, ChainError> {
        let id = txpow.id();
        if self.tree.contains_key(&id) || self.cascade.contains(&id) {
            return Ok(AddOutcome::Known);
        }
        if self.invalid.contains(&id) {
            return Err(ChainError::KnownInvalid(id));
        }
        match self.judge_block(txpow, witness, txpows) {
            Ok(Judgement::Pending(missing)) => Ok(AddOutcome::Pending { missing }),
            Ok(Judgement::Valid(tb)) => {
                let id = tb.id;
                self.insert(*tb);
                let old_tip = self.tip;
                // The tip was the heaviest ([`Chain::heaviest`]) and only the new block's path
                // changed: it takes over if strictly heavier (a tie keeps the current tip).
                let work = |b: &Hash| self.tree.get(b).map_or(0, |b| b.path_work);
                if work(&id) > work(&old_tip) {
                    self.tip = id;
                }
                let reorg = (self.tip != old_tip).then(|| self.reorg_between(old_tip, self.tip));
                let (pruned, dropped) = if self.pruning { self.prune_to_limit() } else { (vec![], vec![]) };
                Ok(AddOutcome::Added { reorg, pruned, dropped })
            }
            Err((e, settled)) => {
                if settled {
                    self.mark_invalid(id);
                }
                Err(e)
            }
        }
    }

    /// [`Chain::add_block`]'s checks. An error comes with whether the block's id alone settles
    /// it (true: the block is invalid whatever data comes with it; false: the witness or a
    /// listed TxPoW sent with it may be at fault, or our state is).
    fn judge_block(
        &self,
        txpow: TxPoW,
        witness: BlockWitness,
        txpows: &dyn TxPowSource,
    ) -> Result<Judgement, (ChainError, bool)> {
        let id = txpow.id();
        let unsettled = |e: ChainError| (e, false);
        let settled = |e: ChainError| (e, true);
        // The header alone (the body is checked against its hash here too).
        // Nothing is remembered before the proof of work holds: a header without it costs its
        // sender nothing to make, and could flush the cache.
        let info = check_txpow_form(&self.params, &txpow).map_err(unsettled)?;
        if !info.is_block {
            return Err(unsettled(ChainError::NotABlock));
        }
        if let Some((h, cp)) = self.params.checkpoint {
            if txpow.header.block_number == h && id != cp {
                return Err(settled(ChainError::Checkpoint(h)));
            }
        }
        let parent_id = txpow.header.parents.0[0];
        if self.invalid.contains(&parent_id) {
            return Err(settled(ChainError::InvalidParent(parent_id)));
        }
        let Some(parent) = self.tree.get(&parent_id) else {
            if self.cascade.contains(&parent_id) || txpow.header.block_number <= self.root().number() {
                return Err(unsettled(ChainError::BelowRoot));
            }
            return Err(unsettled(ChainError::UnknownParent(parent_id)));
        };
        let parent_number = parent.number();
        let parent_peaks = parent.peaks.clone();
        let parent_root = parent.txpow.header.mmr_root;
        if Some(txpow.header.block_number) != parent_number.checked_add(1) {
            return Err(settled(ChainError::WrongBlockNumber(txpow.header.block_number)));
        }
        let next = self.next_block(&parent_id).map_err(unsettled)?;
        if txpow.header.block_target != next.block_target {
            return Err(settled(ChainError::WrongBlockTarget));
        }
        let t = txpow.header.time_ms;
        if t <= next.median_time {
            return Err(settled(ChainError::TimeTooEarly { time: t, median: next.median_time }));
        }
        if t > next.max_time {
            return Err(settled(ChainError::TimeTooFarAhead { time: t, median: next.median_time }));
        }
        if txpow.header.parents != next.parents {
            return Err(settled(ChainError::WrongParents));
        }
        // Gather the block's transactions: its own first, then each listed one.
        let mut missing = vec![];
        let mut listed = Vec::with_capacity(txpow.body.txpow_ids.len());
        for lid in &txpow.body.txpow_ids {
            match txpows.get_txpow(lid) {
                Some(t) if t.id() == *lid => listed.push(t),
                _ => missing.push(*lid),
            }
        }
        if !missing.is_empty() {
            return Ok(Judgement::Pending(missing));
        }
        let mut txs: Vec<(&TxPoW, TxPowInfo)> = vec![];
        if info.is_transaction {
            txs.push((&txpow, info));
        }
        let magic = &self.params.magic;
        let mut block_bytes = info.size;
        let mut witness_sigs = info.sig_count;
        for t in &listed {
            // A listed TxPoW is named by its id, but its body may not match it: unsettled.
            let li = check_txpow_form(&self.params, t).map_err(unsettled)?;
            if !li.is_transaction {
                return Err(settled(ChainError::ListedNotTransaction(li.id)));
            }
            block_bytes += li.size;
            witness_sigs = witness_sigs.saturating_add(li.sig_count);
            txs.push((t, li));
        }
        if block_bytes > magic.max_block_bytes as usize {
            return Err(settled(ChainError::BlockTooLarge(block_bytes)));
        }
        let n_inputs: usize = txs.iter().map(|(t, _)| t.body.transaction.inputs.len()).sum();
        if n_inputs > magic.max_block_inputs as usize {
            return Err(settled(ChainError::TooManyBlockInputs(n_inputs)));
        }
        if witness_sigs > magic.max_sigops_block {
            return Err(settled(ChainError::TooManySigopsBlock(witness_sigs)));
        }
        let mut seen_txids = HashSet::new();
        let mut seen_coins = HashSet::new();
        for (t, li) in &txs {
            if !seen_txids.insert(li.txid) || self.txid_on_branch(&parent_id, &li.txid) {
                return Err(settled(ChainError::TxidAppliedTwice(li.txid)));
            }
            for c in &t.body.transaction.inputs {
                if !seen_coins.insert(c.coin_id) {
                    return Err(settled(ChainError::DuplicateInput(c.coin_id)));
                }
            }
        }
        // The witness must be the parent's MMR and prove every input, in order: it is not
        // named by the block id, so what fails here is unsettled.
        if witness.parent_peaks != parent_peaks || witness.parent_peaks.root() != parent_root {
            return Err(unsettled(ChainError::BadWitness(crate::mmr::MmrError::BadProof)));
        }
        if witness.inputs.len() != n_inputs {
            return Err(unsettled(ChainError::BadWitness(crate::mmr::MmrError::PathLength {
                expected: n_inputs,
                found: witness.inputs.len(),
            })));
        }
        let block_number = txpow.header.block_number;
        let tx_refs: Vec<&TxPoW> = txs.iter().map(|(t, _)| *t).collect();
        let (delta, peaks) = replay_mmr(&witness, &tx_refs, block_number).map_err(unsettled)?;
        drop(tx_refs);
        if peaks.root() != txpow.header.mmr_root {
            return Err(unsettled(ChainError::WrongMmrRoot));
        }
        if peaks.total().map_err(|e| unsettled(ChainError::Mmr(e)))? != txpow.header.mmr_total {
            return Err(unsettled(ChainError::WrongMmrTotal));
        }
        // From here the witness is proven against the parent: every remaining verdict is the
        // block's own. SPHINCS+ signatures, then scripts within the sig-op and work budgets.
        for (t, li) in &txs {
            validate::verify_signatures(&self.params, t, li).map_err(settled)?;
        }
        let mut cache = SigCache::new();
        let (mut sigops_block, mut ops_block) = (0u32, 0u32);
        let mut pos = 0usize;
        for (t, li) in &txs {
            let n = t.body.transaction.inputs.len();
            let created: Vec<u64> = witness.inputs[pos..pos + n].iter().map(|x| x.created).collect();
            pos += n;
            let budget = ScriptBudget::for_txpow(
                &self.params,
                li.sig_count,
                magic.max_sigops_block.saturating_sub(sigops_block),
                self.params.max_block_script_ops.saturating_sub(ops_block),
            );
            let cost =
                run_scripts(&self.params, t, &created, block_number, &mut cache, budget).map_err(settled)?;
            let sigops = li.sig_count.saturating_add(cost.sigops);
            if sigops > magic.max_sigops_txpow {
                return Err(settled(ChainError::TooManySigopsTxPow(sigops)));
            }
            sigops_block = sigops_block.saturating_add(sigops);
            if sigops_block > magic.max_sigops_block {
                return Err(settled(ChainError::TooManySigopsBlock(sigops_block)));
            }
            ops_block = ops_block.saturating_add(cost.instructions);
        }
        let txids: Vec<Hash> = txs.iter().map(|(_, li)| li.txid).collect();
        let applied: Vec<Hash> = txs.iter().map(|(_, li)| li.id).collect();
        drop(txs);
        let work = work_of(&txpow.header.block_target);
        Ok(Judgement::Valid(Box::new(TreeBlock {
            txpow,
            id,
            work,
            path_work: work,
            children: vec![],
            peaks,
            spent: witness.inputs.iter().map(|w| w.leaf_index).collect(),
            extra: Some(Arc::new(BlockExtra { witness, delta })),
            txids,
            applied,
        })))
    }

    fn insert(&mut self, mut tb: TreeBlock) {
        let id = tb.id;
        let parent = tb.parent();
        debug_assert!(self.tree.contains_key(&parent), "a judged block's parent is in the tree");
        if let Some(p) = self.tree.get_mut(&parent) {
            tb.path_work = p.path_work.saturating_add(tb.work);
            p.children.push(id);
        }
        self.tree.insert(id, Box::new(tb));
    }

    /// Fork choice: the tree block at the end of the heaviest root→block path (the weight a
    /// sync compares; side blocks count for nothing, so every node that holds the same best
    /// branches chooses the same tip — but for an exact tie, which keeps each node's own tip
    /// until the next block). A tie keeps the current tip, else the lower id.
    fn heaviest(&self) -> Hash {
        self.tree
            .values()
            .max_by_key(|b| (b.path_work, b.id == self.tip, std::cmp::Reverse(b.id)))
            .map_or(self.root, |b| b.id)
    }

    fn reorg_between(&self, old: Hash, new: Hash) -> Reorg {
        if self.tree.get(&new).is_some_and(|b| b.parent() == old) {
            return Reorg { disconnected: vec![], connected: vec![new] };
        }
        let old_path = self.path_to(old);
        let new_path = self.path_to(new);
        let common = old_path.iter().zip(new_path.iter()).take_while(|(a, b)| a == b).count();
        Reorg {
            disconnected: old_path[common..].iter().rev().copied().collect(),
            connected: new_path[common..].to_vec(),
        }
    }

    /// Move the oldest blocks of the best branch into the cascade once it is
    /// `tree_depth + cascade_step` past the root.
    /// Prune step by step until the tree is within its limit: a reorg can raise the tip by
    /// more than one `cascade_step`, and a tree left over its limit would let a later block
    /// (a side block below the next root) be dropped by its own arrival. Returns the headers
    /// moved into the cascade (oldest first) and the side blocks dropped with them.
    pub fn prune_to_limit(&mut self) -> (Vec<Hash>, Vec<Hash>) {
        let (mut pruned, mut dropped) = (vec![], vec![]);
        loop {
            let (p, d) = self.prune_tree();
            if p.is_empty() {
                return (pruned, dropped);
            }
            pruned.extend(p);
            dropped.extend(d);
        }
    }

    fn prune_tree(&mut self) -> (Vec<Hash>, Vec<Hash>) {
        let tip_n = self.tip().number();
        let root_n = self.root().number();
        let due = root_n.saturating_add(self.params.tree_depth).saturating_add(self.params.cascade_step);
        if tip_n < due {
            return (vec![], vec![]);
        }
        let path = self.best_path();
        let step = self.params.cascade_step as usize;
        let Some(&new_root) = path.get(step) else { return (vec![], vec![]) };
        let moved: Vec<Hash> = path[..step].to_vec();
        // Keep the new root and its descendants; everything else leaves the tree.
        let mut keep = HashSet::new();
        let mut stack = vec![new_root];
        while let Some(x) = stack.pop() {
            keep.insert(x);
            if let Some(b) = self.tree.get(&x) {
                stack.extend(b.children.iter().copied());
            }
        }
        let headers: Vec<(TxHeader, Hash)> = moved
            .iter()
            .rev()
            .filter_map(|id| self.tree.get(id).map(|b| (b.txpow.header.clone(), *id)))
            .collect();
        let dropped: Vec<Hash> =
            self.tree.keys().filter(|k| !keep.contains(*k) && !moved.contains(*k)).copied().collect();
        self.tree.retain(|k, _| keep.contains(k));
        self.root = new_root;
        self.cascade.push_newest(headers, &self.params);
        (moved, dropped)
    }

    /// Stop (`true`) or resume (`false`) pruning into the cascade. A stored tree is replayed
    /// block by block in number order: pruning then would follow whichever branch leads part
    /// way through, and could drop the stored tip's branch or move the root away from the
    /// stored one. Pruning resumes with the next block added after it is released.
    pub fn hold_pruning(&mut self, hold: bool) {
        self.pruning = !hold;
    }

    /// Prefer `id` as the tip if fork choice allows it (a tie keeps the current branch): used
    /// when reloading a stored tree so a tie resolves as it did before the restart.
    pub fn prefer_tip(&mut self, id: &Hash) {
        if self.tree.contains_key(id) {
            self.tip = *id;
            self.tip = self.heaviest();
        }
    }

    /// A relay proof, valid at the tip, for input `input` of tree block `block` — a block that
    /// may have left the best chain in a reorg. The proof in the block's witness (against its
    /// parent) is rewound through the deltas of its old branch to the fork point, then carried
    /// forward to the tip. `None` if the coin does not exist unspent on the best chain.
    pub fn reproof_input(&self, block: &Hash, input: usize, rec: &CoinRecord) -> Option<MmrProof> {
        let b = self.tree.get(block)?;
        let bx = self.extra(block)?;
        let w = bx.witness.inputs.get(input)?;
        let parent = b.parent();
        let best: HashSet<Hash> = self.best_path().into_iter().collect();
        // Old-branch blocks from the parent down to (excluding) the fork point.
        let mut old = vec![];
        let mut cur = parent;
        while !best.contains(&cur) {
            let x = self.tree.get(&cur)?;
            old.push(cur);
            cur = x.parent();
        }
        let fork = cur;
        let fork_peaks = &self.tree.get(&fork)?.peaks;
        if w.leaf_index >= fork_peaks.leaf_count {
            return None;
        }
        let leaf = crate::mmr::leaf_node(rec, false);
        let mut m = Mmr::from_witness(
            &BlockWitness { parent_peaks: bx.witness.parent_peaks.clone(), inputs: vec![w.clone()] },
            &[&rec.coin],
        )
        .ok()?;
        for id in &old {
            m.rollback(&self.extra(id)?.delta);
        }
        // Now at the fork point: add its peaks (kept per block) and read the path back.
        let mut at_fork = Mmr::from_peaks(fork_peaks).ok()?;
        let sibs = m.siblings(w.leaf_index).ok()?;
        at_fork.add_path(w.leaf_index, &leaf, &sibs).ok()?;
        let proof = at_fork.proof(w.leaf_index, fork).ok()?;
        if fork == self.tip {
            return Some(proof);
        }
        self.refresh_proof(rec, &proof).ok()
    }

    /// A proof, against block `block`, of the coin its MMR step put at leaf `leaf` (a coin the
    /// block created): the block's parent peaks replayed through its delta. `None` if the
    /// block is not in the tree or the coin is not at that leaf.
    pub fn proof_in_block(&self, block: &Hash, leaf: u64, rec: &CoinRecord) -> Option<MmrProof> {
        let b = self.tree.get(block)?;
        let bx = self.extra(block)?;
        let mut m = Mmr::from_peaks(&bx.witness.parent_peaks).ok()?;
        m.apply_forward(&bx.delta);
        let p = m.proof(leaf, *block).ok()?;
        p.verify(rec, b.peaks.leaf_count, &b.txpow.header.mmr_root).then_some(p)
    }

    /// Where each coin stands on the best chain, from a proof against any tree block — one on
    /// the best chain, or one a reorg left on a side branch (rewound to the fork point through
    /// its branch's deltas, then carried forward). How a wallet keeps its coins current.
    pub fn coin_fates(&self, coins: &[(&CoinRecord, &MmrProof)]) -> Vec<CoinFate> {
        let path = self.best_path();
        let on_best: HashMap<Hash, usize> = path.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        coins.iter().map(|(rec, proof)| self.coin_fate(&path, &on_best, rec, proof)).collect()
    }

    fn coin_fate(
        &self,
        path: &[Hash],
        on_best: &HashMap<Hash, usize>,
        rec: &CoinRecord,
        proof: &MmrProof,
    ) -> CoinFate {
        let Some(b) = self.tree.get(&proof.block_id) else { return CoinFate::Unknown };
        let leaf = crate::mmr::leaf_node(rec, false);
        let count = b.peaks.leaf_count;
        if proof.root_for(&leaf, count).ok() != Some(b.txpow.header.mmr_root) {
            return CoinFate::Unknown;
        }
        let Ok(mut m) = Mmr::from_proof(proof, &leaf, count) else { return CoinFate::Unknown };
        // Rewind a side branch to the fork point.
        let mut cur = proof.block_id;
        while !on_best.contains_key(&cur) {
            let (Some(x), Some(xx)) = (self.tree.get(&cur), self.extra(&cur)) else {
                return CoinFate::Unknown;
            };
            if proof.leaf_index >= xx.delta.old_leaf_count {
                return CoinFate::Gone;
            }
            m.rollback(&xx.delta);
            cur = x.parent();
        }
        if cur != proof.block_id {
            let Some(fork) = self.tree.get(&cur) else { return CoinFate::Unknown };
            let Ok(sibs) = m.siblings(proof.leaf_index) else { return CoinFate::Unknown };
            let Ok(mut at) = Mmr::from_peaks(&fork.peaks) else { return CoinFate::Unknown };
            if at.add_path(proof.leaf_index, &leaf, &sibs).is_err() {
                return CoinFate::Unknown;
            }
            m = at;
        }
        let pos = on_best[&cur];
        for id in &path[pos + 1..] {
            let x = &self.tree[id];
            let Some(xx) = self.extra(id) else { return CoinFate::Unknown };
            if xx.delta.touches_leaf(proof.leaf_index) {
                return match m.proof(proof.leaf_index, x.parent()) {
                    Ok(before) => CoinFate::Spent { block: *id, number: x.number(), before },
                    Err(_) => CoinFate::Unknown,
                };
            }
            if xx.delta.old_leaf_count != m.leaf_count() {
                return CoinFate::Unknown;
            }
            m.apply_forward(&xx.delta);
        }
        m.proof(proof.leaf_index, self.tip).map(CoinFate::Unspent).unwrap_or(CoinFate::Unknown)
    }

    /// Check a relay coin proof for the mempool: its block is on the best branch at most
    /// `proof_window` below the tip, the path leads to that block's root, and no later block
    /// changed the leaf.
    pub fn check_coin_proof(&self, rec: &CoinRecord, proof: &MmrProof) -> Result<(), ChainError> {
        self.check_proof(rec, proof, true)
    }

    /// [`Chain::check_coin_proof`], with or without the `proof_window` age limit (a proof the
    /// node already holds may be carried forward through the deltas of its whole tree).
    fn check_proof(&self, rec: &CoinRecord, proof: &MmrProof, window: bool) -> Result<(), ChainError> {
        let path = self.best_path();
        let pos = path
            .iter()
            .position(|x| *x == proof.block_id)
            .ok_or(ChainError::CoinProofUnknownBlock(proof.block_id))?;
        let b = &self.tree[&proof.block_id];
        let age = self.tip().number().saturating_sub(b.number());
        if window && age > self.params.proof_window {
            return Err(ChainError::CoinProofTooOld(age));
        }
        let leaf = crate::mmr::leaf_node(rec, false);
        let root = proof.root_for(&leaf, b.peaks.leaf_count).map_err(ChainError::BadCoinProof)?;
        if root != b.txpow.header.mmr_root {
            return Err(ChainError::BadCoinProof(crate::mmr::MmrError::BadProof));
        }
        self.check_unchanged(&path[pos + 1..], proof.leaf_index)
    }

    /// No block of `blocks` changed leaf `leaf` (one that existed before them: a block only
    /// changes an existing leaf by spending it).
    fn check_unchanged(&self, blocks: &[Hash], leaf: u64) -> Result<(), ChainError> {
        for later in blocks {
            if self.tree[later].spent.contains(&leaf) {
                return Err(ChainError::StaleProof);
            }
        }
        Ok(())
    }

    /// Carry a valid coin proof forward to the tip (from any block of the best branch in the
    /// tree: the node holds every delta there, so `proof_window` does not limit this).
    pub fn refresh_proof(&self, rec: &CoinRecord, proof: &MmrProof) -> Result<MmrProof, ChainError> {
        self.check_proof(rec, proof, false)?;
        let path = self.best_path();
        let pos = path.iter().position(|x| *x == proof.block_id).unwrap_or(0);
        let extras = path[pos + 1..]
            .iter()
            .map(|x| self.extra(x).ok_or(ChainError::BlockDataMissing(*x)))
            .collect::<Result<Vec<_>, _>>()?;
        let deltas: Vec<&MmrDelta> = extras.iter().map(|x| &x.delta).collect();
        let count = self.tree[&proof.block_id].peaks.leaf_count;
        crate::mmr::refresh_proof(proof, rec, count, &deltas, self.tip).map_err(|e| match e {
            crate::mmr::MmrError::Stale(_) => ChainError::StaleProof,
            e => ChainError::BadCoinProof(e),
        })
    }

    /// Check a transaction TxPoW for the mempool with one relay proof per input
    /// (`created`, proof): stateless checks, proofs, then scripts with `@BLOCK` = tip + 1.
    /// Returns the TxPoW's facts and its sig-ops.
    pub fn check_mempool_txpow(
        &self,
        txpow: &TxPoW,
        proofs: &[(u64, MmrProof)],
    ) -> Result<Judged, ChainError> {
        // Hashes and counts, then our state (txid, proofs), then SPHINCS+ and scripts.
        let info = check_txpow_form(&self.params, txpow)?;
        if !info.is_transaction {
            return Err(ChainError::InsufficientWork);
        }
        let tx = &txpow.body.transaction;
        if proofs.len() != tx.inputs.len() {
            return Err(ChainError::ProofCount { expected: tx.inputs.len(), found: proofs.len() });
        }
        if self.txid_on_branch(&self.tip, &info.txid) {
            return Err(ChainError::TxidAppliedTwice(info.txid));
        }
        let mut created = Vec::with_capacity(proofs.len());
        for (coin, (c, p)) in tx.inputs.iter().zip(proofs) {
            self.check_coin_proof(&CoinRecord { coin: coin.clone(), created: *c }, p)?;
            created.push(*c);
        }
        validate::verify_signatures(&self.params, txpow, &info)?;
        let next = self.tip().number().saturating_add(1);
        let (sigops, cost) = self.judge_scripts(txpow, &created, next)?;
        Ok(Judged { info, sigops, script_ops: cost.instructions, reads_height: cost.reads_height })
    }

    /// Run a transaction TxPoW's scripts as block `block_number` would (alone in it; its
    /// inputs created at `created`): its sig-ops (witness signatures included) and what its
    /// scripts cost.
    pub fn judge_scripts(
        &self,
        txpow: &TxPoW,
        created: &[u64],
        block_number: u64,
    ) -> Result<(u32, validate::ScriptCost), ChainError> {
        let sig_count = txpow.body.witness.signatures.len() as u32;
        let mut cache = SigCache::new();
        let budget = ScriptBudget::alone(&self.params, sig_count);
        let cost = run_scripts(&self.params, txpow, created, block_number, &mut cache, budget)?;
        let sigops = sig_count.saturating_add(cost.sigops);
        if sigops > self.params.magic.max_sigops_txpow {
            return Err(ChainError::TooManySigopsTxPow(sigops));
        }
        Ok((sigops, cost))
    }

    /// True when transaction `txid` was applied by a block of the best chain's tree.
    pub fn txid_applied(&self, txid: &Hash) -> bool {
        self.txid_on_branch(&self.tip, txid)
    }

    /// Every txid the best chain's tree blocks applied (one walk, for checking many).
    pub fn applied_txids(&self) -> HashSet<Hash> {
        let mut v = HashSet::new();
        let mut cur = self.tip;
        while let Some(b) = self.tree.get(&cur) {
            v.extend(b.txids.iter().copied());
            if cur == self.root {
                break;
            }
            cur = b.parent();
        }
        v
    }

    /// Mark a block id invalid so it and its descendants are refused at once (the oldest of
    /// more than [`MAX_INVALID`] is forgotten).
    pub fn mark_invalid(&mut self, id: Hash) {
        if self.invalid.insert(id) {
            self.invalid_order.push_back(id);
            while self.invalid_order.len() > MAX_INVALID {
                if let Some(old) = self.invalid_order.pop_front() {
                    self.invalid.remove(&old);
                }
            }
        }
    }

    /// Whether a block id is remembered as invalid.
    pub fn is_known_invalid(&self, id: &Hash) -> bool {
        self.invalid.contains(id)
    }
}
