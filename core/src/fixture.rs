//! Test support: a chain builder that mines *valid* chains at minimum work with synthetic
//! timestamps one block time apart, so a test can have a 20,000-block chain in seconds.
//!
//! Every block it makes goes through [`Chain::add_block`] — full validation — so a fixture chain
//! is a real chain. Transactions spend `RETURN TRUE` coins (no signature) unless a test asks for
//! signed spends with [`ChainBuilder::add_key`] / [`ChainBuilder::make_signed_tx`].
//! Forks: clone the builder and mine on the clone, then feed its blocks to the other chain.

use std::collections::{HashMap, VecDeque};

use crate::chain::validate::max_txn_target;
use crate::chain::{AddOutcome, Chain, NextBlock};
use crate::codec::Encode;
use crate::crypto::{script_address, Hash, Keypair};
use crate::mmr::{BlockWitness, Mmr, MmrProof, WitnessInput};
use crate::params::Params;
use crate::types::{Coin, CoinRecord, Output, Transaction, TxBody, TxHeader, TxPoW, Witness};
use crate::U256;

/// The script of the fixture's unsigned coins.
pub const OPEN_SCRIPT: &str = "RETURN TRUE";

#[derive(Debug, Clone)]
struct Owned {
    rec: CoinRecord,
    key: Option<usize>,
}

/// Mines valid chains for tests. See the module docs.
#[derive(Clone)]
pub struct ChainBuilder {
    /// The parameters (genesis time set so the planned last block lands at `now`).
    pub params: Params,
    /// The chain every block was added to.
    pub chain: Chain,
    mmr: Mmr,
    head: Hash,
    coins: VecDeque<Owned>,
    leaves: HashMap<Hash, (u64, u64)>,
    records: HashMap<Hash, CoinRecord>,
    keys: Vec<Keypair>,
    blocks: Vec<(TxPoW, BlockWitness)>,
    txpows: HashMap<Hash, TxPoW>,
    salt: u64,
    /// Keep every mined block in [`ChainBuilder::blocks`] (turn off for very long chains).
    pub keep_blocks: bool,
    /// Give each block its own transaction when a coin is free.
    pub tx_per_block: bool,
}

impl ChainBuilder {
    /// A builder at genesis whose block `planned_blocks` will be timestamped `now_ms`.
    /// Networks without a decided genesis (main) get the `RETURN TRUE` genesis coin.
    pub fn new(mut params: Params, now_ms: u64, planned_blocks: u64) -> ChainBuilder {
        params.genesis.time_ms = now_ms.saturating_sub(planned_blocks * params.block_time_ms);
        if params.genesis.address.is_none() {
            params.genesis.address = Some(script_address(OPEN_SCRIPT));
        }
        let chain = Chain::new(params.clone()).expect("fixture params are valid");
        let (_, mmr) = crate::chain::genesis(&params).expect("genesis");
        let g = crate::chain::genesis_coin(&params).expect("genesis coin");
        let mut coins = VecDeque::new();
        let mut leaves = HashMap::new();
        let mut records = HashMap::new();
        if g.coin.address == script_address(OPEN_SCRIPT) {
            leaves.insert(g.coin.coin_id, (0, 0));
            records.insert(g.coin.coin_id, g.clone());
            coins.push_back(Owned { rec: g, key: None });
        }
        let head = chain.tip_id();
        ChainBuilder {
            params,
            chain,
            mmr,
            head,
            coins,
            leaves,
            records,
            keys: vec![],
            blocks: vec![],
            txpows: HashMap::new(),
            salt: 0,
            keep_blocks: true,
            tx_per_block: true,
        }
    }

    /// Set a salt so two clones mine different blocks.
    pub fn with_salt(mut self, salt: u64) -> Self {
        self.salt = salt << 32;
        self
    }

    /// The head of the builder's branch.
    pub fn head(&self) -> Hash {
        self.head
    }

    /// Every block mined so far with its witness, in order.
    pub fn blocks(&self) -> &[(TxPoW, BlockWitness)] {
        &self.blocks
    }

    /// Take the blocks mined since the last call (keeps memory flat on long runs).
    pub fn take_blocks(&mut self) -> Vec<(TxPoW, BlockWitness)> {
        std::mem::take(&mut self.blocks)
    }

    /// Every transaction TxPoW made for listing.
    pub fn txpows(&self) -> &HashMap<Hash, TxPoW> {
        &self.txpows
    }

    /// The full MMR at the head.
    pub fn mmr(&self) -> &Mmr {
        &self.mmr
    }

    /// Number of free coins.
    pub fn free_coins(&self) -> usize {
        self.coins.len()
    }

    /// Register a key whose coins the builder can spend with signatures.
    pub fn add_key(&mut self, kp: Keypair) -> usize {
        self.keys.push(kp);
        self.keys.len() - 1
    }

    /// A relay proof of a coin at the head.
    pub fn coin_proof(&self, coin_id: &Hash) -> Option<(u64, MmrProof)> {
        let (leaf, created) = *self.leaves.get(coin_id)?;
        let p = self.mmr.proof(leaf, self.head).ok()?;
        Some((created, p))
    }

    fn next_salt(&mut self) -> u64 {
        self.salt += 1;
        self.salt
    }

    fn time_for(&self, next: &NextBlock) -> u64 {
        let t = self.params.genesis.time_ms + next.block_number * self.params.block_time_ms;
        t.max(next.min_time)
    }

    fn take_coin(&mut self, key: Option<usize>) -> Option<Owned> {
        let pos = self.coins.iter().position(|c| c.key == key && c.rec.coin.amount >= 2)?;
        self.coins.remove(pos)
    }

    fn split_tx(input: &Owned, dest: Option<(Hash, u64)>) -> Transaction {
        let a = input.rec.coin.amount;
        let open = script_address(OPEN_SCRIPT);
        let mut outputs = vec![];
        match dest {
            Some((addr, amt)) => {
                let amt = amt.min(a - 1).max(1);
                outputs.push(Output { address: addr, amount: amt, token_id: Hash::ZERO, state: vec![] });
                outputs.push(Output { address: open, amount: a - amt, token_id: Hash::ZERO, state: vec![] });
            }
            None => {
                outputs.push(Output { address: open, amount: a / 2, token_id: Hash::ZERO, state: vec![] });
                outputs.push(Output {
                    address: open,
                    amount: a - a / 2,
                    token_id: Hash::ZERO,
                    state: vec![],
                });
            }
        }
        Transaction { version: 1, inputs: vec![input.rec.coin.clone()], outputs, state: vec![] }
    }

    fn witness_for(&self, tx: &Transaction, inputs: &[Owned]) -> Witness {
        let mut scripts = vec![];
        let mut sigs = vec![];
        let txid = tx.txid();
        for o in inputs {
            match o.key {
                None => scripts.push(OPEN_SCRIPT.to_string()),
                Some(k) => {
                    let kp = &self.keys[k];
                    scripts.push(kp.public.default_script());
                    sigs.push((kp.public, kp.sign_tx(self.params.chain_id, &txid)));
                }
            }
        }
        Witness::new(sigs, scripts)
    }

    fn mine_nonce(header: &mut TxHeader, target: &U256, salt: u64) {
        let prefix = header.prefix_hash();
        let mut n: u64 = 0;
        loop {
            header.nonce[..8].copy_from_slice(&n.to_be_bytes());
            header.nonce[8..16].copy_from_slice(&salt.to_be_bytes());
            let id = crate::types::txpow_id(&prefix, &header.nonce);
            if crate::chain::pow::meets(&id, target) {
                return;
            }
            n += 1;
        }
    }

    fn build_txpow(
        &mut self,
        tx: Transaction,
        witness: Witness,
        listed: Vec<Hash>,
        as_block: bool,
    ) -> (TxPoW, NextBlock) {
        let next = self.chain.next_block(&self.head).expect("head is in the tree");
        let salt = self.next_salt();
        let mut prng = [0u8; 32];
        prng[..8].copy_from_slice(&salt.to_be_bytes());
        let has_tx = !tx.is_empty();
        let mut body = TxBody {
            txn_target: self.params.magic.min_target(),
            transaction: tx,
            witness,
            txpow_ids: listed,
            prng,
        };
        let header = TxHeader {
            chain_id: self.params.chain_id,
            version: 1,
            block_number: next.block_number,
            time_ms: self.time_for(&next),
            block_target: next.block_target,
            parents: next.parents,
            mmr_root: Hash::ZERO,
            mmr_total: 0,
            magic: self.params.magic,
            body_hash: Hash::ZERO,
            nonce: [0; 32],
        };
        let size = header.encode().len() + body.encode().len();
        if has_tx {
            body.txn_target = max_txn_target(&self.params, size);
            if as_block && body.txn_target < next.block_target {
                body.txn_target = next.block_target;
            }
        }
        let mut txpow = TxPoW { header, body };
        txpow.header.body_hash = txpow.body.hash();
        (txpow, next)
    }

    /// Make a transaction TxPoW (not a block) spending one free unsigned coin into two; list it
    /// in a later block with [`ChainBuilder::mine_block`].
    pub fn make_tx(&mut self) -> Option<TxPoW> {
        let c = self.take_coin(None)?;
        let tx = Self::split_tx(&c, None);
        Some(self.finish_tx(tx, vec![c]))
    }

    /// Pay `amount` from a free unsigned coin to registered key `key`'s default address.
    pub fn pay_to_key(&mut self, key: usize, amount: u64) -> Option<TxPoW> {
        let c = self.take_coin(None)?;
        let addr = self.keys[key].public.default_address();
        let tx = Self::split_tx(&c, Some((addr, amount)));
        Some(self.finish_tx(tx, vec![c]))
    }

    /// Spend a coin of registered key `key` (signed) back to `RETURN TRUE` coins.
    pub fn make_signed_tx(&mut self, key: usize) -> Option<TxPoW> {
        let c = self.take_coin(Some(key))?;
        let tx = Self::split_tx(&c, None);
        Some(self.finish_tx(tx, vec![c]))
    }

    fn finish_tx(&mut self, tx: Transaction, inputs: Vec<Owned>) -> TxPoW {
        let witness = self.witness_for(&tx, &inputs);
        let (mut t, _) = self.build_txpow(tx, witness, vec![], false);
        // Header fields other than chain id/version/body are ignored for listed TxPoWs; mine to
        // the transaction target only (never a block by accident: target the txn only).
        t.header.block_target = U256::ZERO;
        let target = t.body.txn_target;
        Self::mine_nonce(&mut t.header, &target, self.salt);
        let id = t.id();
        self.txpows.insert(id, t.clone());
        drop(inputs);
        t
    }

    /// Mine one block on the head: its own transaction if `own_tx` and a coin is free, then
    /// the listed transaction TxPoWs (made by this builder). Returns the block id.
    pub fn mine_block(&mut self, own_tx: bool, listed: Vec<TxPoW>) -> Hash {
        self.mine_block_inner(own_tx, listed, true)
    }

    fn mine_block_inner(&mut self, own_tx: bool, listed: Vec<TxPoW>, validate: bool) -> Hash {
        let own = if own_tx { self.take_coin(None) } else { None };
        let (tx, own_inputs) = match own {
            Some(c) => (Self::split_tx(&c, None), vec![c]),
            None => (Transaction::empty(), vec![]),
        };
        let witness = if tx.is_empty() { Witness::default() } else { self.witness_for(&tx, &own_inputs) };
        let listed_ids: Vec<Hash> = listed.iter().map(|t| t.id()).collect();
        let (mut txpow, next) = self.build_txpow(tx, witness, listed_ids, true);
        if !txpow.body.transaction.is_empty() && txpow.body.txn_target < next.block_target {
            // Too big to be its own block at this difficulty: give the coin back.
            for c in own_inputs.into_iter().rev() {
                self.coins.push_front(c);
            }
            return self.mine_block_inner(false, listed, validate);
        }
        // Apply to our full MMR to learn the root, recording the witness from the parent.
        let parent_peaks = self.mmr.peaks().expect("peaks");
        let mut txs: Vec<&Transaction> = vec![];
        if !txpow.body.transaction.is_empty() {
            txs.push(&txpow.body.transaction);
        }
        for t in &listed {
            txs.push(&t.body.transaction);
        }
        let mut winputs = vec![];
        for t in &txs {
            for c in &t.inputs {
                let (leaf, created) = self.leaves[&c.coin_id];
                winputs.push(WitnessInput {
                    leaf_index: leaf,
                    created,
                    siblings: self.mmr.siblings(leaf).expect("siblings"),
                });
            }
        }
        let bw = BlockWitness { parent_peaks, inputs: winputs };
        let n = next.block_number;
        let mut new_coins = vec![];
        for t in &txs {
            for c in &t.inputs {
                let (leaf, created) = self.leaves.remove(&c.coin_id).expect("known coin");
                self.records.remove(&c.coin_id);
                self.mmr
                    .spend(leaf, &CoinRecord { coin: c.clone(), created })
                    .expect("fixture spends unspent coins");
            }
            for (i, o) in t.outputs.iter().enumerate() {
                let rec = CoinRecord {
                    coin: Coin {
                        coin_id: t.output_coin_id(i as u32).expect("has inputs"),
                        address: o.address,
                        amount: o.amount,
                        token_id: o.token_id,
                        state: o.state.clone(),
                    },
                    created: n,
                };
                let leaf = self.mmr.append_coin(&rec).expect("append");
                self.leaves.insert(rec.coin.coin_id, (leaf, n));
                self.records.insert(rec.coin.coin_id, rec.clone());
                let key = self.keys.iter().position(|k| k.public.default_address() == o.address);
                if o.address == script_address(OPEN_SCRIPT) || key.is_some() {
                    new_coins.push(Owned { rec, key });
                }
            }
        }
        drop(txs);
        txpow.header.mmr_root = self.mmr.root().expect("root");
        txpow.header.mmr_total = self.mmr.total().expect("total");
        let target = txpow.header.block_target;
        Self::mine_nonce(&mut txpow.header, &target, self.salt);
        let id = txpow.id();
        let src: HashMap<Hash, TxPoW> = listed.iter().map(|t| (t.id(), t.clone())).collect();
        if validate {
            match self.chain.add_block(txpow.clone(), bw.clone(), &src) {
                Ok(AddOutcome::Added { .. }) => {}
                other => panic!("fixture block {n} rejected: {other:?}"),
            }
        }
        self.head = id;
        self.coins.extend(new_coins);
        if self.keep_blocks {
            self.blocks.push((txpow, bw));
        }
        id
    }

    /// Mine `n` blocks, each with its own transaction when [`ChainBuilder::tx_per_block`].
    pub fn mine(&mut self, n: u64) {
        for _ in 0..n {
            let t = self.tx_per_block;
            self.mine_block(t, vec![]);
        }
    }

    /// An unspent coin the builder knows (any address), with its leaf and `created`.
    pub fn coin(&self, coin_id: &Hash) -> Option<(CoinRecord, u64)> {
        let (leaf, _) = self.leaves.get(coin_id)?;
        Some((self.records.get(coin_id)?.clone(), *leaf))
    }

    /// Ids of every unspent coin at `address`.
    pub fn coins_at(&self, address: &Hash) -> Vec<Hash> {
        let mut v: Vec<Hash> =
            self.records.values().filter(|r| r.coin.address == *address).map(|r| r.coin.coin_id).collect();
        v.sort();
        v
    }

    /// Take a free unsigned coin out of the pool (for hand-built transactions).
    pub fn take_free_coin(&mut self) -> Option<CoinRecord> {
        self.take_coin(None).map(|o| o.rec)
    }

    /// Pay `amount` from a free unsigned coin to any address (change back to `RETURN TRUE`).
    pub fn pay_to_address(&mut self, address: Hash, amount: u64) -> Option<TxPoW> {
        let c = self.take_coin(None)?;
        let tx = Self::split_tx(&c, Some((address, amount)));
        Some(self.finish_tx(tx, vec![c]))
    }

    /// Make a transaction TxPoW from a hand-built transaction and witness, mined to the
    /// size-scaled transaction target.
    pub fn make_custom_tx(&mut self, tx: Transaction, witness: Witness) -> TxPoW {
        let (mut t, _) = self.build_txpow(tx, witness, vec![], false);
        t.header.block_target = U256::ZERO;
        let target = t.body.txn_target;
        Self::mine_nonce(&mut t.header, &target, self.salt);
        self.txpows.insert(t.id(), t.clone());
        t
    }

    /// The block `mine_block` would make, without changing this builder and without
    /// validating it (tests judge it themselves).
    pub fn candidate(&self, own_tx: bool, listed: Vec<TxPoW>) -> (TxPoW, BlockWitness) {
        let mut c = self.clone();
        c.keep_blocks = true;
        c.mine_block_inner(own_tx, listed, false);
        c.blocks.pop().expect("one block mined")
    }

    /// After a test mutated a TxPoW: recompute the body hash (if `fix_body`) and mine a nonce
    /// meeting its block target (or its transaction target when it is no block).
    pub fn reseal(txpow: &mut TxPoW, fix_body: bool) {
        if fix_body {
            txpow.header.body_hash = txpow.body.hash();
        }
        let target = if txpow.header.block_target.is_zero() {
            txpow.body.txn_target
        } else {
            txpow.header.block_target
        };
        Self::mine_nonce(&mut txpow.header, &target, 0xfeed);
    }
}

/// The overflow attack of a hostile sync peer: a cascade `[H, genesis]` whose header `H` is
/// numbered `u64::MAX − 11` (its parents all genesis), a tree root `u64::MAX − 10` carrying
/// the empty MMR, and one child on it — each mined at the minimum target of `params` (whose
/// genesis must be set). Returns (cascade headers newest first, root, child).
pub fn overflow_chain(params: &Params) -> (Vec<TxHeader>, TxPoW, TxPoW) {
    use crate::types::Parents;
    let (g, _) = crate::chain::genesis(params).expect("genesis");
    let gid = g.id();
    let empty = crate::mmr::MmrPeaks::default();
    let block = |number: u64, time_ms: u64, parents: Parents| {
        let body = TxBody {
            txn_target: params.magic.min_target(),
            transaction: Transaction::empty(),
            witness: Witness::default(),
            txpow_ids: vec![],
            prng: [7; 32],
        };
        let mut t = TxPoW {
            header: TxHeader {
                chain_id: params.chain_id,
                version: 1,
                block_number: number,
                time_ms,
                block_target: params.magic.min_target(),
                parents,
                mmr_root: empty.root(),
                mmr_total: 0,
                magic: params.magic,
                body_hash: body.hash(),
                nonce: [0; 32],
            },
            body,
        };
        ChainBuilder::reseal(&mut t, false);
        t
    };
    let t0 = g.header.time_ms;
    let h = block(u64::MAX - 11, t0 + 1_000, Parents([gid; crate::types::limits::PARENTS]));
    let root = block(u64::MAX - 10, t0 + 2_000, crate::chain::parents_after(&h.header, &h.id()));
    let child = block(u64::MAX - 9, t0 + 3_000, crate::chain::parents_after(&root.header, &root.id()));
    (vec![h.header, g.header], root, child)
}
