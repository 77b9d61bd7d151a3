//! The wallet's view of the chain: its keys' addresses, its coins with MMR proofs kept
//! current as blocks arrive (and rolled back on reorgs), its balance and its history.
//!
//! Each coin holds one proof against a block of the tree. After every change of the best
//! chain, [`WalletState::follow`] carries each proof to the new tip with
//! [`Chain::coin_fates`]: the coin is unspent (proof now against the tip), spent by a named
//! best-chain block (proof kept against that block's parent, so a reorg can bring the coin
//! back), gone (it was created on a branch that left) or unknown (its block left the tree,
//! as after a resync — such a coin needs a proof from a `full_mmr` peer or an import). A
//! spend that sinks below the tree root is final and the coin is forgotten.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::chain::{Chain, CoinFate};
use crate::codec::{CodecError, Decode, Encode, Reader};
use crate::crypto::{Hash, PublicKey};
use crate::mmr::MmrProof;
use crate::types::{CoinRecord, Transaction};

/// One key of the wallet: its derivation index, public key and default address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletKey {
    /// Derivation index.
    pub index: u32,
    /// Public key.
    pub public: PublicKey,
    /// Address of its default script.
    pub address: Hash,
    /// Whether a coin was ever seen at its address.
    pub used: bool,
}

/// A coin of the wallet with a proof against a tree block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCoin {
    /// The coin and the block number that created it.
    pub rec: CoinRecord,
    /// Index of the key whose address holds it.
    pub key: u32,
    /// Proof against a tree block (the tip when unspent; the spending block's parent when spent).
    pub proof: MmrProof,
    /// The best-chain block that spent it, and its number.
    pub spent: Option<(Hash, u64)>,
    /// Whether the proof's block is in our tree (false after a resync left it behind).
    pub proven: bool,
}

impl OwnCoin {
    /// Unspent on the best chain with a usable proof.
    pub fn spendable(&self) -> bool {
        self.proven && self.spent.is_none()
    }
}

impl Encode for OwnCoin {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.rec.encode_to(out);
        self.key.encode_to(out);
        self.proof.encode_to(out);
        match &self.spent {
            Some((b, n)) => {
                out.push(1);
                b.encode_to(out);
                n.encode_to(out);
            }
            None => out.push(0),
        }
        out.push(self.proven as u8);
    }
}

impl Decode for OwnCoin {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let rec = CoinRecord::decode_from(r)?;
        let key = r.u32("own.key")?;
        let proof = MmrProof::decode_from(r)?;
        let spent =
            if r.option_tag("own.spent")? { Some((Hash::decode_from(r)?, r.u64("own.n")?)) } else { None };
        let proven = match r.u8("own.proven")? {
            0 => false,
            1 => true,
            t => return Err(CodecError::InvalidTag { field: "own.proven", tag: t }),
        };
        Ok(OwnCoin { rec, key, proof, spent, proven })
    }
}

/// A transaction that moved the wallet's coins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Transaction id (hex).
    pub txid: String,
    /// Base units paid to the wallet's addresses.
    pub received: u64,
    /// Base units of the wallet's coins it spent.
    pub sent: u64,
    /// Base units it burned (Σ inputs − Σ outputs; counted for the wallet that spent).
    pub burn: u64,
    /// Block number that confirms it on the best chain (`None`: pending).
    pub block: Option<u64>,
    /// When the node first saw it (ms since the epoch).
    pub time_ms: u64,
}

/// Balances in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Σ the wallet's coins unspent at the tip.
    pub confirmed: u64,
    /// Σ outputs to the wallet in pending (mempool) transactions, change included.
    pub unconfirmed: u64,
    /// What a payment can spend now: confirmed coins that no pending transaction spends.
    pub sendable: u64,
    /// Coins held (unspent at the tip).
    pub coins: usize,
    /// Coins whose proof was lost (a resync left its block behind); not in `confirmed`.
    pub unproven: usize,
}

/// What [`WalletState::follow`] changed, for the store and for events.
#[derive(Debug, Clone, Default)]
pub struct WalletChanges {
    /// Coins to write.
    pub coins_put: Vec<OwnCoin>,
    /// Coins to forget.
    pub coins_del: Vec<Hash>,
    /// History entries to write.
    pub history_put: Vec<HistoryEntry>,
    /// Keys first seen used.
    pub keys_used: Vec<u32>,
}

impl WalletChanges {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.coins_put.is_empty()
            && self.coins_del.is_empty()
            && self.history_put.is_empty()
            && self.keys_used.is_empty()
    }
}

/// A coin a block created: (block id, MMR leaf, coin).
pub type Created = (Hash, u64, CoinRecord);
/// A transaction a best-chain block applied: (txid, transaction, block number).
pub type Applied<'a> = (Hash, &'a Transaction, u64);

/// The wallet's keys, coins and history (everything public; the seed lives elsewhere).
#[derive(Debug, Clone)]
pub struct WalletState {
    keys: Vec<WalletKey>,
    by_address: HashMap<Hash, u32>,
    coins: HashMap<Hash, OwnCoin>,
    history: HashMap<Hash, HistoryEntry>,
    /// Block number of each coin's stored proof anchor (rewritten when it grows old).
    stored_anchor: HashMap<Hash, u64>,
    refresh_every: u64,
    /// Coins that pending transactions pay to the wallet, and their transaction: a coin
    /// found later through a `full_mmr` peer (after a resync skipped its block) confirms it.
    pending_outputs: HashMap<Hash, Hash>,
}

impl WalletState {
    /// A wallet from stored keys, coins and history; stored proofs are rewritten once their
    /// block is `tree_depth / 4` deep (they must stay inside the tree to be carried).
    pub fn new(
        tree_depth: u64,
        keys: Vec<WalletKey>,
        coins: Vec<OwnCoin>,
        history: Vec<HistoryEntry>,
    ) -> Self {
        let mut w = WalletState {
            keys: vec![],
            by_address: HashMap::new(),
            coins: HashMap::new(),
            history: HashMap::new(),
            stored_anchor: HashMap::new(),
            refresh_every: (tree_depth / 4).max(1),
            pending_outputs: HashMap::new(),
        };
        for k in keys {
            w.add_key(k);
        }
        for c in coins {
            w.coins.insert(c.rec.coin.coin_id, c);
        }
        for h in history {
            if let Ok(id) = Hash::from_hex(&h.txid) {
                w.history.insert(id, h);
            }
        }
        w
    }

    /// Add a derived key (ignored if its index is known).
    pub fn add_key(&mut self, k: WalletKey) {
        if self.by_address.contains_key(&k.address) {
            return;
        }
        self.by_address.insert(k.address, k.index);
        self.keys.push(k);
        self.keys.sort_by_key(|k| k.index);
    }

    /// The keys, by index.
    pub fn keys(&self) -> &[WalletKey] {
        &self.keys
    }

    /// The key index owning `address`.
    pub fn owner(&self, address: &Hash) -> Option<u32> {
        self.by_address.get(address).copied()
    }

    /// Every tracked coin (spent ones wait here until their spend is final).
    pub fn coins(&self) -> impl Iterator<Item = &OwnCoin> {
        self.coins.values()
    }

    /// A tracked coin.
    pub fn coin(&self, id: &Hash) -> Option<&OwnCoin> {
        self.coins.get(id)
    }

    /// The first key never used (`None` when every derived key is used).
    pub fn unused_key(&self) -> Option<&WalletKey> {
        self.keys.iter().find(|k| !k.used)
    }

    fn mark_used(&mut self, index: u32, ch: &mut WalletChanges) {
        if let Some(k) = self.keys.iter_mut().find(|k| k.index == index) {
            if !k.used {
                k.used = true;
                ch.keys_used.push(index);
            }
        }
    }

    /// Σ inputs from the wallet's addresses and Σ outputs to them.
    fn touch(&self, tx: &Transaction) -> (u64, u64) {
        let sent = tx.inputs.iter().filter(|c| self.by_address.contains_key(&c.address)).map(|c| c.amount);
        let recv = tx.outputs.iter().filter(|o| self.by_address.contains_key(&o.address)).map(|o| o.amount);
        (sent.fold(0u64, |a, b| a.saturating_add(b)), recv.fold(0u64, |a, b| a.saturating_add(b)))
    }

    /// Whether a confirmed transaction matters to [`WalletState::follow`]: it moves the wallet's
    /// coins, or its history holds it.
    pub fn concerns(&self, txid: &Hash, tx: &Transaction) -> bool {
        let (sent, received) = self.touch(tx);
        sent > 0 || received > 0 || self.history.contains_key(txid)
    }

    /// Record a pending transaction that touches the wallet (from the mempool). Answers the
    /// entry when it is new.
    pub fn note_pending(&mut self, txid: Hash, tx: &Transaction, now_ms: u64) -> Option<HistoryEntry> {
        let (sent, received) = self.touch(tx);
        if sent == 0 && received == 0 || self.history.contains_key(&txid) {
            return None;
        }
        for (i, o) in tx.outputs.iter().enumerate() {
            if self.by_address.contains_key(&o.address) {
                if let Some(id) = tx.output_coin_id(i as u32) {
                    self.pending_outputs.insert(id, txid);
                }
            }
        }
        let e = HistoryEntry {
            txid: txid.to_hex(),
            received,
            sent,
            burn: if sent > 0 { crate::chain::validate::burn(tx) } else { 0 },
            block: None,
            time_ms: now_ms,
        };
        self.history.insert(txid, e.clone());
        Some(e)
    }

    /// Follow a change of the best chain: carry every coin's proof to the new tip, add the
    /// wallet's coins that `created` lists (coins made by blocks that joined the best
    /// chain), mark the transactions of blocks that left as pending and those of blocks
    /// that joined as confirmed.
    pub fn follow(
        &mut self,
        chain: &Chain,
        created: &[Created],
        unconfirmed: &[Hash],
        confirmed: &[Applied<'_>],
        now_ms: u64,
    ) -> WalletChanges {
        let mut ch = WalletChanges::default();
        let tip_n = chain.tip().number();
        let root_n = chain.root().number();
        let ids: Vec<Hash> = self.coins.keys().copied().collect();
        let fates = {
            let list: Vec<(&CoinRecord, &MmrProof)> =
                ids.iter().filter_map(|i| self.coins.get(i)).map(|c| (&c.rec, &c.proof)).collect();
            chain.coin_fates(&list)
        };
        for (id, fate) in ids.iter().zip(fates) {
            let Some(c) = self.coins.get_mut(id) else { continue };
            let forget = match fate {
                CoinFate::Unspent(p) => {
                    let changed = c.spent.is_some() || !c.proven;
                    c.proof = p;
                    c.spent = None;
                    c.proven = true;
                    let old = self
                        .stored_anchor
                        .get(id)
                        .is_none_or(|n| tip_n.saturating_sub(*n) >= self.refresh_every);
                    if changed || old {
                        self.stored_anchor.insert(*id, tip_n);
                        ch.coins_put.push(c.clone());
                    }
                    false
                }
                // A spend at or below the root can no longer be undone.
                CoinFate::Spent { number, .. } if number <= root_n => true,
                CoinFate::Spent { block, number, before } => {
                    if c.spent != Some((block, number)) || !c.proven {
                        c.spent = Some((block, number));
                        self.stored_anchor.insert(*id, number.saturating_sub(1));
                        c.proof = before;
                        c.proven = true;
                        ch.coins_put.push(c.clone());
                    }
                    false
                }
                CoinFate::Gone => true,
                CoinFate::Unknown if c.spent.is_some() => true,
                CoinFate::Unknown => {
                    if c.proven {
                        c.proven = false;
                        ch.coins_put.push(c.clone());
                    }
                    false
                }
            };
            if forget {
                self.coins.remove(id);
                self.stored_anchor.remove(id);
                ch.coins_del.push(*id);
            }
        }
        for (block, leaf, rec) in created {
            let Some(key) = self.owner(&rec.coin.address) else { continue };
            if self.coins.get(&rec.coin.coin_id).is_some_and(|c| c.proven) {
                continue;
            }
            let Some(p) = chain.proof_in_block(block, *leaf, rec) else { continue };
            let Some(fate) = chain.coin_fates(&[(rec, &p)]).pop() else { continue };
            let (proof, spent, anchor) = match fate {
                CoinFate::Unspent(p) => (p, None, tip_n),
                CoinFate::Spent { block, number, before } if number > root_n => {
                    (before, Some((block, number)), number - 1)
                }
                _ => continue,
            };
            let c = OwnCoin { rec: rec.clone(), key, proof, spent, proven: true };
            self.stored_anchor.insert(rec.coin.coin_id, anchor);
            self.coins.insert(rec.coin.coin_id, c.clone());
            ch.coins_put.push(c);
            self.mark_used(key, &mut ch);
        }
        // Blocks that left first, then blocks that joined (a transaction may be in both).
        for txid in unconfirmed {
            if let Some(e) = self.history.get_mut(txid) {
                if e.block.is_some() {
                    e.block = None;
                    ch.history_put.push(e.clone());
                }
            }
        }
        for (txid, tx, number) in confirmed {
            self.pending_outputs.retain(|_, t| t != txid);
            if self.note_pending(*txid, tx, now_ms).is_none() && !self.history.contains_key(txid) {
                continue;
            }
            if let Some(e) = self.history.get_mut(txid) {
                if e.block != Some(*number) {
                    e.block = Some(*number);
                    ch.history_put.push(e.clone());
                }
            }
        }
        ch
    }

    /// Add coins proven by someone else (a `full_mmr` peer's `CoinProofs`, an import): those
    /// at the wallet's addresses whose proof carries to our tip. Answers the changes and how
    /// many coins were added or re-proven.
    pub fn import(&mut self, chain: &Chain, coins: &[(CoinRecord, MmrProof)]) -> (WalletChanges, usize) {
        let mut ch = WalletChanges::default();
        let mut n = 0;
        let tip_n = chain.tip().number();
        for (rec, proof) in coins {
            let Some(key) = self.owner(&rec.coin.address) else { continue };
            if self.coins.get(&rec.coin.coin_id).is_some_and(|c| c.proven) {
                continue;
            }
            let Some(CoinFate::Unspent(p)) = chain.coin_fates(&[(rec, proof)]).pop() else { continue };
            let c = OwnCoin { rec: rec.clone(), key, proof: p, spent: None, proven: true };
            self.stored_anchor.insert(rec.coin.coin_id, tip_n);
            self.coins.insert(rec.coin.coin_id, c.clone());
            ch.coins_put.push(c);
            self.mark_used(key, &mut ch);
            n += 1;
            // A pending payment whose block we never held (a resync skipped it) is confirmed
            // by its coin.
            if let Some(txid) = self.pending_outputs.remove(&rec.coin.coin_id) {
                if let Some(e) = self.history.get_mut(&txid) {
                    if e.block.is_none() {
                        e.block = Some(rec.created);
                        ch.history_put.push(e.clone());
                    }
                }
            }
        }
        (ch, n)
    }

    /// Balances, given the transactions pending in the mempool and coins reserved by
    /// payments being signed.
    pub fn balance<'a>(
        &self,
        pending: impl Iterator<Item = &'a Transaction>,
        reserved: &HashSet<Hash>,
    ) -> Balance {
        let mut b = Balance { confirmed: 0, unconfirmed: 0, sendable: 0, coins: 0, unproven: 0 };
        let mut locked: HashSet<Hash> = reserved.clone();
        for tx in pending {
            for c in &tx.inputs {
                if self.coins.contains_key(&c.coin_id) {
                    locked.insert(c.coin_id);
                }
            }
            for o in &tx.outputs {
                if self.by_address.contains_key(&o.address) {
                    b.unconfirmed = b.unconfirmed.saturating_add(o.amount);
                }
            }
        }
        for c in self.coins.values() {
            if c.spent.is_some() {
                continue;
            }
            if !c.proven {
                b.unproven += 1;
                continue;
            }
            b.coins += 1;
            b.confirmed = b.confirmed.saturating_add(c.rec.coin.amount);
            if !locked.contains(&c.rec.coin.coin_id) {
                b.sendable = b.sendable.saturating_add(c.rec.coin.amount);
            }
        }
        b
    }

    /// History, newest first (pending ones on top).
    pub fn history(&self) -> Vec<HistoryEntry> {
        let mut v: Vec<HistoryEntry> = self.history.values().cloned().collect();
        v.sort_by(|a, b| {
            let ka = (a.block.is_none(), a.block.unwrap_or(0), a.time_ms);
            let kb = (b.block.is_none(), b.block.unwrap_or(0), b.time_ms);
            kb.cmp(&ka)
        });
        v
    }
}
