//! Pending transaction TxPoWs: keyed by txid, bounded by bytes, ranked by burn per byte then
//! work per byte; a conflicting spend replaces another only with burn ≥ old + max(1, 12.5 %).

use std::collections::HashMap;

use thiserror::Error;

use crate::chain::pow::work_of;
use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::types::TxPoW;

/// Times one input's pending spend may be replaced per hour (SPEC's mempool rule).
pub const MAX_REPLACEMENTS_PER_HOUR: usize = 3;
/// Inputs whose replacements are tracked before old ones are swept.
const MAX_TRACKED_REPLACEMENTS: usize = 100_000;
/// An hour in ms (the pool reads its caller's clock, in ms since the epoch).
const HOUR_MS: u64 = 3_600_000;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    /// The same transaction is already pending (re-wrapping gains nothing).
    #[error("transaction already pending")]
    Duplicate,
    /// It spends a coin a pending transaction spends, without enough extra burn.
    #[error("conflicts with a pending spend and does not burn enough more to replace it")]
    Conflict,
    /// The pool is full of better-paying transactions.
    #[error("mempool full")]
    Full,
    /// An input's pending spend was already replaced [`MAX_REPLACEMENTS_PER_HOUR`] times in
    /// the last hour.
    #[error("an input's pending spend was replaced too often this hour")]
    TooManyReplacements,
}

/// A pending transaction.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The TxPoW.
    pub txpow: TxPoW,
    /// Its id.
    pub id: Hash,
    /// Its transaction's id.
    pub txid: Hash,
    /// One proof per input (created, proof), refreshed as blocks arrive.
    pub proofs: Vec<(u64, MmrProof)>,
    /// Σ in − Σ out.
    pub burn: u64,
    /// Encoded bytes.
    pub size: usize,
    /// Sig-ops (witness signatures and the `CHECKSIG`s its scripts ran) when last judged for
    /// the next block.
    pub sigops: u32,
    /// Script instructions its runs executed when last judged.
    pub script_ops: u32,
    /// A script read `@BLOCK`/`@COINAGE`: the entry is judged again for each block built.
    pub reads_height: bool,
}

impl Entry {
    /// An entry for `txpow` with its input `proofs`, as the chain judged it for the next block
    /// ([`crate::chain::Chain::check_mempool_txpow`]).
    pub fn new(txpow: TxPoW, proofs: Vec<(u64, MmrProof)>, j: &crate::chain::Judged) -> Entry {
        let burn = crate::chain::validate::burn(&txpow.body.transaction);
        Entry {
            id: j.info.id,
            txid: j.info.txid,
            size: j.info.size,
            txpow,
            proofs,
            burn,
            sigops: j.sigops,
            script_ops: j.script_ops,
            reads_height: j.reads_height,
        }
    }

    fn rank(&self) -> (u128, u128) {
        let size = self.size.max(1) as u128;
        ((self.burn as u128) * 1_000_000 / size, work_of(&self.txpow.body.txn_target) * 1_000 / size)
    }
}

/// The pool.
#[derive(Debug, Default)]
pub struct Mempool {
    /// Ordered, so every walk over the pool (announcing, carrying proofs after a reorg) goes
    /// the same way on every run (the simulator's runs repeat).
    by_txid: std::collections::BTreeMap<Hash, Entry>,
    by_coin: HashMap<Hash, Hash>,
    /// TxPoW id → txid (peers ask by TxPoW id).
    by_id: HashMap<Hash, Hash>,
    /// When each input's pending spend was replaced, within the last hour.
    replaced: HashMap<Hash, Vec<u64>>,
    bytes: usize,
    max_bytes: usize,
}

impl Mempool {
    /// An empty pool holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Mempool {
        Mempool { max_bytes, ..Default::default() }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_txid.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_txid.is_empty()
    }

    /// The byte limit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A pending entry by TxPoW id.
    pub fn get_by_id(&self, id: &Hash) -> Option<&Entry> {
        self.by_id.get(id).and_then(|t| self.by_txid.get(t))
    }

    /// True when the transaction is pending.
    pub fn contains_txid(&self, txid: &Hash) -> bool {
        self.by_txid.contains_key(txid)
    }

    /// The refusals a transaction would get for what is already pending (a duplicate, or a
    /// conflict without enough extra burn): checked before any proof or signature.
    pub fn precheck(&self, txpow: &TxPoW, now_ms: u64) -> Result<(), MempoolError> {
        let txid = txpow.txid();
        if self.by_txid.contains_key(&txid) {
            return Err(MempoolError::Duplicate);
        }
        let burn = crate::chain::validate::burn(&txpow.body.transaction);
        self.conflicts(txpow, burn, now_ms).map(|_| ())
    }

    fn replacements(&self, coin: &Hash, now: u64) -> usize {
        self.replaced.get(coin).map_or(0, |v| v.iter().filter(|t| now.saturating_sub(**t) < HOUR_MS).count())
    }

    /// The pending txids a spend conflicts with, or `Conflict` if it does not burn enough more
    /// than all of them to replace them.
    fn conflicts(&self, txpow: &TxPoW, burn: u64, now: u64) -> Result<Vec<Hash>, MempoolError> {
        let mut conflicts: Vec<Hash> = vec![];
        for c in &txpow.body.transaction.inputs {
            if let Some(t) = self.by_coin.get(&c.coin_id) {
                if self.replacements(&c.coin_id, now) >= MAX_REPLACEMENTS_PER_HOUR {
                    return Err(MempoolError::TooManyReplacements);
                }
                if !conflicts.contains(t) {
                    conflicts.push(*t);
                }
            }
        }
        let old_burn: u64 =
            conflicts.iter().filter_map(|t| self.by_txid.get(t)).fold(0u64, |a, x| a.saturating_add(x.burn));
        if !conflicts.is_empty() && burn < old_burn.saturating_add((old_burn / 8).max(1)) {
            return Err(MempoolError::Conflict);
        }
        Ok(conflicts)
    }

    /// Add a checked transaction at `now_ms` (each input's replacements are counted per
    /// hour). Returns the TxPoW ids it pushed out.
    pub fn insert(&mut self, e: Entry, now_ms: u64) -> Result<Vec<Hash>, MempoolError> {
        let now = now_ms;
        if self.by_txid.contains_key(&e.txid) {
            return Err(MempoolError::Duplicate);
        }
        let conflicts = self.conflicts(&e.txpow, e.burn, now)?;
        // Plan the room it needs before changing anything: a refusal leaves the pool as it was.
        let (rank, size) = (e.rank(), e.size);
        let freed: usize = conflicts.iter().filter_map(|t| self.by_txid.get(t)).map(|x| x.size).sum();
        let mut used = self.bytes - freed;
        let mut evict: Vec<Hash> = vec![];
        if used + size > self.max_bytes {
            let mut worst: Vec<&Entry> =
                self.by_txid.values().filter(|x| !conflicts.contains(&x.txid)).collect();
            worst.sort_by(|a, b| a.rank().cmp(&b.rank()).then(a.id.cmp(&b.id)));
            for x in worst {
                if used + size <= self.max_bytes || x.rank() >= rank {
                    break;
                }
                used -= x.size;
                evict.push(x.txid);
            }
            if used + size > self.max_bytes {
                return Err(MempoolError::Full);
            }
        }
        if !conflicts.is_empty() {
            for c in &e.txpow.body.transaction.inputs {
                if self.by_coin.contains_key(&c.coin_id) {
                    let v = self.replaced.entry(c.coin_id).or_default();
                    v.retain(|t| now.saturating_sub(*t) < HOUR_MS);
                    v.push(now);
                }
            }
            if self.replaced.len() > MAX_TRACKED_REPLACEMENTS {
                self.replaced.retain(|_, v| v.iter().any(|t| now.saturating_sub(*t) < HOUR_MS));
            }
        }
        let mut removed = vec![];
        for t in conflicts.iter().chain(&evict) {
            if let Some(x) = self.remove_txid(t) {
                removed.push(x.id);
            }
        }
        for c in &e.txpow.body.transaction.inputs {
            self.by_coin.insert(c.coin_id, e.txid);
        }
        self.bytes += size;
        self.by_id.insert(e.id, e.txid);
        self.by_txid.insert(e.txid, e);
        Ok(removed)
    }

    /// Remove by txid.
    pub fn remove_txid(&mut self, txid: &Hash) -> Option<Entry> {
        let e = self.by_txid.remove(txid)?;
        self.by_id.remove(&e.id);
        for c in &e.txpow.body.transaction.inputs {
            if self.by_coin.get(&c.coin_id) == Some(txid) {
                self.by_coin.remove(&c.coin_id);
            }
        }
        self.bytes -= e.size;
        Some(e)
    }

    /// Entries, best first.
    pub fn ranked(&self) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self.by_txid.values().collect();
        v.sort_by(|a, b| b.rank().cmp(&a.rank()).then(a.id.cmp(&b.id)));
        v
    }

    /// Every entry, by txid.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_txid.values()
    }

    /// Record what an entry's scripts cost when judged again for the next block.
    pub fn set_cost(&mut self, txid: &Hash, sigops: u32, script_ops: u32) {
        if let Some(e) = self.by_txid.get_mut(txid) {
            e.sigops = sigops;
            e.script_ops = script_ops;
        }
    }

    /// Replace an entry's proofs (after refreshing them to the tip).
    pub fn set_proofs(&mut self, txid: &Hash, proofs: Vec<(u64, MmrProof)>) {
        if let Some(e) = self.by_txid.get_mut(txid) {
            e.proofs = proofs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Coin, Output, Transaction, TxBody, TxHeader, TxPoW, Witness};

    fn spend(coin: u8, burn: u64, salt: u8) -> Entry {
        let c = Coin {
            coin_id: Hash([coin; 32]),
            address: Hash([1; 32]),
            amount: 1_000_000,
            token_id: Hash::ZERO,
            state: vec![],
        };
        let tx = Transaction {
            version: 1,
            inputs: vec![c],
            outputs: vec![Output {
                address: Hash([salt; 32]),
                amount: 1_000_000 - burn,
                token_id: Hash::ZERO,
                state: vec![],
            }],
            state: vec![],
        };
        let (g, _) = crate::chain::genesis(&crate::params::Params::devnet()).expect("genesis");
        let body = TxBody {
            txn_target: g.body.txn_target,
            transaction: tx,
            witness: Witness::default(),
            txpow_ids: vec![],
            prng: [salt; 32],
        };
        let txpow = TxPoW { header: TxHeader { body_hash: body.hash(), ..g.header }, body };
        Entry {
            id: txpow.id(),
            txid: txpow.txid(),
            size: txpow.size(),
            burn,
            proofs: vec![],
            txpow,
            sigops: 0,
            script_ops: 0,
            reads_height: false,
        }
    }

    #[test]
    fn an_input_is_replaced_at_most_three_times_an_hour() {
        let t0 = 1_800_000_000_000u64;
        let mut m = Mempool::new(1 << 20);
        m.insert(spend(7, 8, 0), t0).unwrap();
        // Each replacement burns at least 12.5 % more; three go through within the hour…
        let mut burn = 8;
        for i in 1..=3u8 {
            burn = burn + burn / 8 + 1;
            m.insert(spend(7, burn, i), t0 + 60_000 * i as u64).unwrap();
        }
        burn *= 2;
        // …the fourth does not, however much it burns; an hour after the first it does.
        assert_eq!(m.insert(spend(7, burn, 9), t0 + 600_000), Err(MempoolError::TooManyReplacements));
        assert!(m.insert(spend(7, burn, 9), t0 + 3_700_000).is_ok());
        assert_eq!(m.len(), 1);
        // Another input is not affected.
        m.insert(spend(8, 8, 0), t0).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_refused_insert_leaves_the_pool_as_it_was() {
        let t0 = 1_800_000_000_000u64;
        let one = spend(1, 1_000, 0).size;
        let mut m = Mempool::new(2 * one + one / 2);
        m.insert(spend(1, 1_000, 0), t0).unwrap();
        m.insert(spend(2, 1_000, 0), t0).unwrap();
        // A replacement of coin 1 that burns more but does not fit even so: refused, and
        // the spend it would have replaced is still there.
        let mut big = spend(1, 2_000, 1);
        big.size = 3 * one;
        assert_eq!(m.insert(big, t0), Err(MempoolError::Full));
        assert_eq!(m.len(), 2);
        assert_eq!(m.bytes(), 2 * one);
        // A better-paying one evicts the worst to make room.
        let removed = m.insert(spend(3, 500_000, 0), t0).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(m.len(), 2);
    }
}
