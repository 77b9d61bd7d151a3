//! The node's wallet: the public part lives in the chain actor (kept current with every
//! block, written in the block's SQL transaction); the seed stays with the [`Node`] handle
//! and is touched only to derive keys and sign, on the caller's thread, never the actor's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use super::{applied_txpows, created_coins, Actor, Cmd, Event, Node, NodeError};
use crate::crypto::{decode_address, encode_address, script_address, Hash, Keypair};
use crate::mmr::MmrProof;
use crate::types::{CoinRecord, Output, Transaction, TxHeader, TxPoW};
use crate::wallet::{
    fingerprint, sign_and_mine, spend::sign_and_mine_with, Balance, Draft, HistoryEntry, SealedSeed, Seed,
    WalletChanges, WalletError, WalletKey, WalletState,
};
use crate::U256;

/// File of the sealed seed inside the data dir.
pub const SEALED_FILE: &str = "wallet.seed";
/// Key indexes scanned past the last used one when restoring.
pub const RESTORE_GAP: u32 = 20;
/// How long coins chosen for a payment stay reserved if the payment never arrives.
const RESERVE_FOR: Duration = Duration::from_secs(120);

/// How the node gets its wallet seed.
#[derive(Clone)]
pub enum WalletSecret {
    /// The host keeps the seed and passes it at each start; the node stores nothing secret.
    Seed(Seed),
    /// The node keeps the seed sealed in its data dir; this passphrase (or host key) opens it.
    /// Wiped when dropped.
    Passphrase(zeroize::Zeroizing<Vec<u8>>),
}

impl WalletSecret {
    /// A passphrase secret, owning `bytes` (wiped when dropped).
    pub fn passphrase(bytes: Vec<u8>) -> WalletSecret {
        WalletSecret::Passphrase(zeroize::Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for WalletSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WalletSecret::Seed(_) => "WalletSecret::Seed(…)",
            WalletSecret::Passphrase(_) => "WalletSecret::Passphrase(…)",
        })
    }
}

/// What a payment did.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// Transaction id (hex).
    pub txid: String,
    /// TxPoW id (hex).
    pub txpow_id: String,
    /// Encoded TxPoW bytes.
    pub bytes: usize,
    /// Inputs spent.
    pub inputs: usize,
    /// Outputs made (change included).
    pub outputs: usize,
    /// Burn (base units).
    pub burn: u64,
    /// Time to derive the keys and sign (ms).
    pub sign_ms: f64,
    /// Time to mine the TxPoW (ms).
    pub mine_ms: f64,
    /// Hashes tried.
    pub hashes: u64,
}

/// What a restore scan found.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// Key indexes derived and scanned.
    pub keys_scanned: u32,
    /// Coins added from a `full_mmr` peer.
    pub coins_found: usize,
    /// Confirmed balance after the scan.
    pub confirmed: u64,
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// The seed of a [`WalletSecret`] (unsealing the data dir's seed with a passphrase).
pub(super) fn unseal(data_dir: &std::path::Path, secret: WalletSecret) -> Result<Seed, NodeError> {
    use crate::codec::Decode;
    let p = match secret {
        WalletSecret::Seed(s) => return Ok(s),
        WalletSecret::Passphrase(p) => p,
    };
    let path = data_dir.join(SEALED_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(WalletError::NoWallet.into()),
        Err(e) => return Err(super::io_err(&path, e)),
    };
    let sealed = SealedSeed::decode(&bytes).map_err(WalletError::Malformed)?;
    Ok(sealed.open(&p)?)
}

/// Open the wallet in an actor that is not running yet (at node start, before the miner):
/// and claim the genesis coin if asked, so it is pending before the first block is mined.
pub(super) fn open_at_start(
    actor: &mut Actor,
    seed: &Seed,
    claim: bool,
    txn_work: u128,
) -> Result<(), NodeError> {
    actor.wallet_open(fingerprint(seed), key_of(seed, 0)?)?;
    if claim {
        if let Some(d) = actor.genesis_claim()? {
            let s = sign_and_mine(seed, &actor.params, d, txn_work)?;
            actor.on_txpow(s.txpow, s.proofs)?;
        }
    }
    Ok(())
}

pub(super) enum WalletCmd {
    Open { fingerprint: Hash, first: WalletKey, reply: Reply<()> },
    AddKeys(Vec<WalletKey>, Reply<()>),
    Keys(Reply<Vec<WalletKey>>),
    Balance(Reply<Balance>),
    Draft { outputs: Vec<(Hash, u64)>, burn: u64, reply: Reply<Draft> },
    Release(Vec<Hash>),
    History(Reply<Vec<HistoryEntry>>),
    Export(Reply<Vec<(CoinRecord, MmrProof)>>),
    Import(Vec<(CoinRecord, MmrProof)>, Reply<usize>),
    GenesisClaim(Reply<Option<Draft>>),
    Submit(Box<crate::types::TxPoW>, Vec<(u64, MmrProof)>, Reply<()>),
}

pub(super) fn key_of(seed: &Seed, index: u32) -> Result<WalletKey, NodeError> {
    let kp = Keypair::derive(&seed.0, index).map_err(|e| WalletError::Crypto(e.to_string()))?;
    Ok(WalletKey { index, public: kp.public, address: kp.public.default_address(), used: false })
}

/// Export format: one line per coin, `hex(coin record) hex(proof)`.
fn export_text(coins: &[(CoinRecord, MmrProof)]) -> String {
    use crate::codec::Encode;
    coins.iter().map(|(r, p)| format!("{} {}\n", hex::encode(r.encode()), hex::encode(p.encode()))).collect()
}

/// Most coins one import may carry.
pub const MAX_IMPORT: usize = 10_000;

fn parse_export(s: &str) -> Result<Vec<(CoinRecord, MmrProof)>, WalletError> {
    use crate::codec::Decode;
    let bad = |line: usize, why: &str| WalletError::BadImport(format!("line {line}: {why}"));
    let mut out = vec![];
    for (i, line) in s.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        if out.len() >= MAX_IMPORT {
            return Err(WalletError::BadImport(format!("more than {MAX_IMPORT} coins")));
        }
        let mut it = line.split_whitespace();
        let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad(i + 1, "want two hex fields"));
        };
        let rec = hex::decode(a).map_err(|_| bad(i + 1, "coin is not hex"))?;
        let proof = hex::decode(b).map_err(|_| bad(i + 1, "proof is not hex"))?;
        let rec = CoinRecord::decode(&rec).map_err(|e| bad(i + 1, &e.to_string()))?;
        let proof = MmrProof::decode(&proof).map_err(|e| bad(i + 1, &e.to_string()))?;
        out.push((rec, proof));
    }
    Ok(out)
}

impl Node {
    fn wallet_call<T>(&self, f: impl FnOnce(Reply<T>) -> WalletCmd) -> Result<T, NodeError> {
        self.call(|r| Cmd::Wallet(f(r)))?
    }

    fn seed(&self) -> Result<Seed, NodeError> {
        self.seed.lock().unwrap_or_else(|e| e.into_inner()).clone().ok_or(WalletError::NoWallet.into())
    }

    /// Open the wallet: with a seed the host passes, or by unsealing the data dir's seed with
    /// a passphrase. The data dir's wallet must belong to this seed.
    pub fn open_wallet(&self, secret: WalletSecret) -> Result<(), NodeError> {
        self.load_seed(unseal(&self.data_dir, secret)?)
    }

    /// Whether the data dir holds a sealed seed.
    pub fn has_sealed_wallet(&self) -> bool {
        self.data_dir.join(SEALED_FILE).exists()
    }

    fn load_seed(&self, seed: Seed) -> Result<(), NodeError> {
        if self.seed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(WalletError::Exists.into());
        }
        let first = key_of(&seed, 0)?;
        let fingerprint = fingerprint(&seed);
        self.wallet_call(|reply| WalletCmd::Open { fingerprint, first, reply })?;
        *self.seed.lock().unwrap_or_else(|e| e.into_inner()) = Some(seed);
        if self.claim_genesis {
            if let Err(e) = self.claim_genesis_coin() {
                tracing::warn!("could not claim the genesis coin: {e}");
            }
        }
        Ok(())
    }

    /// Create the wallet from `seed` (new or restored). With a passphrase the seed is sealed
    /// into the data dir (Argon2id + XChaCha20-Poly1305); without, the host keeps it and must
    /// pass it at each start. Refused if a wallet is open or sealed here already.
    pub fn create_wallet(&self, seed: Seed, passphrase: Option<&[u8]>) -> Result<(), NodeError> {
        if self.has_sealed_wallet() || self.seed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(WalletError::Exists.into());
        }
        if let Some(p) = passphrase {
            use crate::codec::Encode;
            let sealed = SealedSeed::seal(&seed, p)?;
            let path = self.data_dir.join(SEALED_FILE);
            let tmp = self.data_dir.join(format!("{SEALED_FILE}.tmp"));
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| super::io_err(&tmp, e))?;
                f.write_all(&sealed.encode()).map_err(|e| super::io_err(&tmp, e))?;
                f.sync_all().map_err(|e| super::io_err(&tmp, e))?;
            }
            std::fs::rename(&tmp, &path).map_err(|e| super::io_err(&path, e))?;
        }
        self.load_seed(seed)
    }

    /// A receiving address: the first key never used (or, with `new`, a freshly derived one).
    pub fn wallet_address(&self, new: bool) -> Result<String, NodeError> {
        let keys = self.wallet_call(WalletCmd::Keys)?;
        let unused = keys.iter().find(|k| !k.used);
        let k = match unused {
            Some(k) if !new => k.clone(),
            _ => {
                let next = keys.iter().map(|k| k.index + 1).max().unwrap_or(0);
                let k = key_of(&self.seed()?, next)?;
                self.wallet_call(|r| WalletCmd::AddKeys(vec![k.clone()], r))?;
                k
            }
        };
        Ok(encode_address(&k.address, self.params.chain_id))
    }

    /// Balances (confirmed, unconfirmed, sendable) in base units.
    pub fn wallet_balance(&self) -> Result<Balance, NodeError> {
        self.wallet_call(WalletCmd::Balance)
    }

    /// History, newest first.
    pub fn wallet_history(&self) -> Result<Vec<HistoryEntry>, NodeError> {
        self.wallet_call(WalletCmd::History)
    }

    /// Pay `amount` base units to `to` (a human address of this network), burning `burn`.
    pub fn wallet_send(&self, to: &str, amount: u64, burn: u64) -> Result<SendReport, NodeError> {
        self.wallet_send_many(&[(to.to_string(), amount)], burn)
    }

    /// Pay several recipients in one transaction. Nothing leaves the wallet on any error.
    pub fn wallet_send_many(&self, to: &[(String, u64)], burn: u64) -> Result<SendReport, NodeError> {
        let mut outputs = vec![];
        for (a, v) in to {
            let h = decode_address(a.trim(), self.params.chain_id).map_err(WalletError::Address)?;
            outputs.push((h, *v));
        }
        let seed = self.seed()?;
        let draft = self.wallet_call(|reply| WalletCmd::Draft { outputs, burn, reply })?;
        let chosen: Vec<Hash> = draft.tx.inputs.iter().map(|c| c.coin_id).collect();
        let r = self.sign_and_submit(&seed, draft);
        let _ = self.tx.blocking_send(Cmd::Wallet(WalletCmd::Release(chosen)));
        r
    }

    fn sign_and_submit(&self, seed: &Seed, draft: Draft) -> Result<SendReport, NodeError> {
        let burn = draft.burn;
        let mut keypair = |i: u32| -> Result<Arc<Keypair>, WalletError> {
            let mut cache = self.keypairs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = cache.get(&i) {
                return Ok(k.clone());
            }
            let k = Arc::new(Keypair::derive(&seed.0, i).map_err(|e| WalletError::Crypto(e.to_string()))?);
            cache.insert(i, k.clone());
            Ok(k)
        };
        let s = sign_and_mine_with(&mut keypair, &self.params, draft, self.txn_work)?;
        let report = SendReport {
            txid: s.txpow.txid().to_hex(),
            txpow_id: s.txpow.id().to_hex(),
            bytes: s.txpow.size(),
            inputs: s.txpow.body.transaction.inputs.len(),
            outputs: s.txpow.body.transaction.outputs.len(),
            burn,
            sign_ms: s.sign_ms,
            mine_ms: s.mine_ms,
            hashes: s.hashes,
        };
        let (txpow, proofs) = (Box::new(s.txpow), s.proofs);
        self.wallet_call(|r| WalletCmd::Submit(txpow, proofs, r))?;
        Ok(report)
    }

    fn claim_genesis_coin(&self) -> Result<Option<SendReport>, NodeError> {
        let Some(draft) = self.wallet_call(WalletCmd::GenesisClaim)? else { return Ok(None) };
        let seed = self.seed()?;
        let r = self.sign_and_submit(&seed, draft)?;
        tracing::info!("claimed the genesis coin into the wallet: {}", r.txid);
        Ok(Some(r))
    }

    /// The wallet's unspent coins with their proofs, as text another node can import.
    pub fn wallet_export(&self) -> Result<String, NodeError> {
        Ok(export_text(&self.wallet_call(WalletCmd::Export)?))
    }

    /// Import exported coins: those at this wallet's addresses whose proofs carry to our
    /// tip are added. Answers how many.
    pub fn wallet_import(&self, text: &str) -> Result<usize, NodeError> {
        let coins = parse_export(text)?;
        self.wallet_call(|r| WalletCmd::Import(coins, r))
    }

    /// Find the wallet's coins on a `full_mmr` peer (SPEC §7): derive keys in batches and ask
    /// for the unspent coins at their addresses, until [`RESTORE_GAP`] indexes in a row hold
    /// none. Coins created inside our tree are found from our own blocks as well.
    pub fn wallet_rescan(&self) -> Result<ScanReport, NodeError> {
        let seed = self.seed()?;
        let mut keys = self.wallet_call(WalletCmd::Keys)?;
        let mut found = 0usize;
        let mut idx: u32 = 0;
        let mut unused_run = 0u32;
        while unused_run < RESTORE_GAP {
            let batch: Vec<u32> = (idx..idx + RESTORE_GAP).collect();
            let mut fresh = vec![];
            for i in &batch {
                if !keys.iter().any(|k| k.index == *i) {
                    fresh.push(key_of(&seed, *i)?);
                }
            }
            if !fresh.is_empty() {
                self.wallet_call(|r| WalletCmd::AddKeys(fresh.clone(), r))?;
                keys.extend(fresh);
            }
            let addrs: Vec<Hash> =
                keys.iter().filter(|k| batch.contains(&k.index)).map(|k| k.address).collect();
            if self.net.is_some() {
                // A proof against a block we have not received yet fails the fetch: that is
                // a race with the peer's tip, so try a few times before giving up.
                let mut tries = 0;
                let coins = loop {
                    match self.fetch_coin_proofs(crate::net::message::CoinQuery::Addresses(addrs.clone())) {
                        Ok(c) => break c,
                        Err(e) if tries >= 4 => return Err(e),
                        Err(_) => {
                            tries += 1;
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                };
                found += self.wallet_call(|r| WalletCmd::Import(coins, r))?;
            }
            keys = self.wallet_call(WalletCmd::Keys)?;
            for i in &batch {
                if keys.iter().any(|k| k.index == *i && k.used) {
                    unused_run = 0;
                } else {
                    unused_run += 1;
                }
            }
            idx += RESTORE_GAP;
        }
        let confirmed = self.wallet_balance()?.confirmed;
        Ok(ScanReport { keys_scanned: idx, coins_found: found, confirmed })
    }
}

/// Tries of the coin look-up after a resync (each failure half a second apart).
const RECOVER_TRIES: u32 = 6;

impl Actor {
    fn wallet_mut(&mut self) -> Result<&mut WalletState, NodeError> {
        self.wallet.as_mut().ok_or(WalletError::NoWallet.into())
    }

    fn locked_coins(&mut self) -> HashSet<Hash> {
        let now = self.clock.now_ms();
        self.reserved.retain(|_, t| now.saturating_sub(*t) < RESERVE_FOR.as_millis() as u64);
        let mut s: HashSet<Hash> = self.reserved.keys().copied().collect();
        for e in self.mempool.entries() {
            s.extend(e.txpow.body.transaction.inputs.iter().map(|c| c.coin_id));
        }
        s
    }

    fn tx_header(&self) -> Result<TxHeader, NodeError> {
        let next = self.chain.next_block(&self.chain.tip_id())?;
        Ok(TxHeader {
            chain_id: self.params.chain_id,
            version: 1,
            block_number: next.block_number,
            time_ms: self.clock.now_ms().max(next.min_time).min(next.max_time),
            // A transaction only, never a block by chance.
            block_target: U256::ZERO,
            parents: next.parents,
            mmr_root: Hash::ZERO,
            mmr_total: 0,
            magic: self.params.magic,
            body_hash: Hash::ZERO,
            nonce: [0; 32],
        })
    }

    pub(super) fn on_wallet(&mut self, c: WalletCmd) {
        match c {
            WalletCmd::Open { fingerprint, first, reply } => {
                let _ = reply.send(self.wallet_open(fingerprint, first));
            }
            WalletCmd::AddKeys(keys, reply) => {
                let r = self.wallet_mut().map(|_| ()).and_then(|_| Ok(self.store.add_wallet_keys(&keys)?));
                if r.is_ok() {
                    if let Some(w) = self.wallet.as_mut() {
                        keys.into_iter().for_each(|k| w.add_key(k));
                    }
                    // Coins of the new keys may sit in our own tree already.
                    if let Err(e) = self.wallet_rescan_tree() {
                        tracing::warn!("wallet tree scan: {e}");
                    }
                }
                let _ = reply.send(r);
            }
            WalletCmd::Keys(reply) => {
                let _ = reply.send(self.wallet_mut().map(|w| w.keys().to_vec()));
            }
            WalletCmd::Balance(reply) => {
                let reserved: HashSet<Hash> = {
                    let now = self.clock.now_ms();
                    self.reserved.retain(|_, t| now.saturating_sub(*t) < RESERVE_FOR.as_millis() as u64);
                    self.reserved.keys().copied().collect()
                };
                let r = match &self.wallet {
                    Some(w) => {
                        Ok(w.balance(self.mempool.entries().map(|e| &e.txpow.body.transaction), &reserved))
                    }
                    None => Err(WalletError::NoWallet.into()),
                };
                let _ = reply.send(r);
            }
            WalletCmd::Draft { outputs, burn, reply } => {
                let r = self.wallet_draft(outputs, burn);
                if let Ok(d) = &r {
                    let now = self.clock.now_ms();
                    self.reserved.extend(d.tx.inputs.iter().map(|c| (c.coin_id, now)));
                }
                let _ = reply.send(r);
            }
            WalletCmd::Release(ids) => {
                for id in ids {
                    self.reserved.remove(&id);
                }
            }
            WalletCmd::History(reply) => {
                let _ = reply.send(self.wallet_mut().map(|w| w.history()));
            }
            WalletCmd::Export(reply) => {
                let r = self.wallet_mut().map(|w| {
                    w.coins().filter(|c| c.spendable()).map(|c| (c.rec.clone(), c.proof.clone())).collect()
                });
                let _ = reply.send(r);
            }
            WalletCmd::Import(coins, reply) => {
                let _ = reply.send(self.wallet_import(&coins));
            }
            WalletCmd::GenesisClaim(reply) => {
                let _ = reply.send(self.genesis_claim());
            }
            WalletCmd::Submit(txpow, proofs, reply) => {
                // Blocks may have come while it was signed and mined: carry the proofs to
                // the tip first (the node holds every delta of its tree).
                let proofs = txpow
                    .body
                    .transaction
                    .inputs
                    .iter()
                    .zip(&proofs)
                    .map(|(c, (created, p))| {
                        // The wallet's own proof is current; others are carried forward.
                        let own =
                            self.wallet.as_ref().and_then(|w| w.coin(&c.coin_id)).filter(|o| o.spendable());
                        if let Some(o) = own {
                            return (*created, o.proof.clone());
                        }
                        let rec = CoinRecord { coin: c.clone(), created: *created };
                        (*created, self.chain.refresh_proof(&rec, p).unwrap_or_else(|_| p.clone()))
                    })
                    .collect();
                let id = txpow.id();
                let r = self.on_txpow(*txpow, proofs);
                if r.is_ok() {
                    // Our own payment goes out again with each new tip while it is pending:
                    // announced just before the host sleeps (a phone sent to the background
                    // within the relay's gathering window), it would otherwise never leave.
                    self.reannounce.insert(id, super::REANNOUNCE_TIPS);
                }
                let _ = reply.send(r);
            }
        }
    }

    fn wallet_open(&mut self, fp: Hash, first: WalletKey) -> Result<(), NodeError> {
        if self.wallet.is_some() {
            return Err(WalletError::Exists.into());
        }
        let stored = self.store.wallet()?;
        match stored.fingerprint {
            Some(f) if f != fp => return Err(WalletError::OtherSeed.into()),
            Some(_) => {}
            None => self.store.set_wallet_fingerprint(&fp)?,
        }
        let mut keys = stored.keys;
        if keys.is_empty() {
            self.store.add_wallet_keys(std::slice::from_ref(&first))?;
            keys.push(first);
        }
        self.wallet = Some(WalletState::new(self.params.tree_depth, keys, stored.coins, stored.history));
        self.wallet_rescan_tree()
    }

    /// Follow the whole best path of the tree (after opening the wallet, adding keys or a
    /// resync): coins carried to the tip, coins our tree blocks created found.
    pub(super) fn wallet_rescan_tree(&mut self) -> Result<(), NodeError> {
        if self.wallet.is_none() {
            return Ok(());
        }
        let path = self.chain.best_path();
        let Some(ch) = self.wallet_follow(&path, &[]) else { return Ok(()) };
        if !ch.is_empty() {
            self.store.write_wallet(&ch)?;
            self.emit_payments(&ch);
        }
        Ok(())
    }

    /// The wallet's part of a change of the best chain (`None` without a wallet).
    pub(super) fn wallet_follow(
        &mut self,
        connected: &[Hash],
        disconnected: &[Hash],
    ) -> Option<WalletChanges> {
        self.wallet.as_ref()?;
        let mut created = vec![];
        let mut applied: Vec<(Vec<TxPoW>, u64)> = vec![];
        for id in connected {
            let Some(b) = self.chain.block(id) else { continue };
            let Some(x) = self.chain.extra(id) else {
                tracing::warn!(block = %id, "wallet: a connected block's stored data is missing");
                continue;
            };
            let Some(txs) = applied_txpows(b, |l| self.listed_txpow(l)) else {
                tracing::warn!(block = %id, "wallet: a connected block's listed TxPoWs are missing");
                continue;
            };
            created.extend(
                created_coins(b, x.delta.old_leaf_count, &txs)
                    .into_iter()
                    .map(|(leaf, rec)| (b.id, leaf, rec)),
            );
            // Only what concerns the wallet is kept: a rescan of a whole tree would otherwise
            // hold every TxPoW it lists (≈ 15 MB for a main-params tree).
            let w = self.wallet.as_ref()?;
            let txs: Vec<TxPoW> =
                txs.into_iter().filter(|t| w.concerns(&t.txid(), &t.body.transaction)).collect();
            applied.push((txs, b.number()));
        }
        let confirmed: Vec<_> = applied
            .iter()
            .flat_map(|(txs, n)| txs.iter().map(move |t| (t.txid(), &t.body.transaction, *n)))
            .collect();
        let unconfirmed: Vec<Hash> = disconnected
            .iter()
            .filter_map(|id| self.chain.block(id))
            .flat_map(|b| b.txids.iter().copied())
            .collect();
        let w = self.wallet.as_mut()?;
        Some(w.follow(&self.chain, &created, &unconfirmed, &confirmed, self.clock.now_ms()))
    }

    /// A transaction entered the mempool: note it in the history if it touches the wallet.
    pub(super) fn wallet_pending(&mut self, t: &crate::types::TxPoW) -> Result<(), NodeError> {
        let Some(w) = self.wallet.as_mut() else { return Ok(()) };
        let Some(e) = w.note_pending(t.txid(), &t.body.transaction, self.clock.now_ms()) else {
            return Ok(());
        };
        let ch = WalletChanges { history_put: vec![e], ..Default::default() };
        self.store.write_wallet(&ch)?;
        self.emit_payments(&ch);
        Ok(())
    }

    pub(super) fn emit_payments(&self, ch: &WalletChanges) {
        for h in &ch.history_put {
            self.emit(Event::Payment {
                txid: h.txid.clone(),
                received: h.received,
                sent: h.sent,
                block: h.block,
            });
        }
    }

    fn wallet_draft(&mut self, outputs: Vec<(Hash, u64)>, burn: u64) -> Result<Draft, NodeError> {
        let exclude = self.locked_coins();
        let header = self.tx_header()?;
        let w = self.wallet.as_ref().ok_or(WalletError::NoWallet)?;
        Ok(w.draft(&self.params, &outputs, burn, &exclude, header)?)
    }

    fn wallet_import(&mut self, coins: &[(CoinRecord, MmrProof)]) -> Result<usize, NodeError> {
        let w = self.wallet.as_mut().ok_or(WalletError::NoWallet)?;
        let (ch, n) = w.import(&self.chain, coins);
        if !ch.is_empty() {
            self.store.write_wallet(&ch)?;
            self.emit_payments(&ch);
        }
        Ok(n)
    }

    /// After a resync from a peer's cascade, the blocks between our old tip and the new tree
    /// root were never seen here: a coin they paid us (a payment we may have seen pending) can
    /// only be found through a `full_mmr` peer. Ask for every wallet address's coins, in the
    /// background; the answer comes back as an import.
    pub(super) fn wallet_recover_after_resync(&self) {
        let (Some(w), Some(net), Some(tx)) = (&self.wallet, &self.net, &self.self_tx) else { return };
        let addrs: Vec<Hash> = w.keys().iter().map(|k| k.address).collect();
        let (net, tx) = (net.clone(), tx.clone());
        tokio::spawn(async move {
            for chunk in addrs.chunks(crate::net::message::MAX_COIN_PROOFS) {
                let q = crate::net::message::CoinQuery::Addresses(chunk.to_vec());
                // Proofs against a tip we have not received yet fail the check (a race with
                // the peer's tip, as in a restore): a few tries, half a second apart.
                let mut tries = 0;
                let coins = loop {
                    match net.fetch_coin_proofs(q.clone()).await {
                        Ok((_, coins)) => break coins,
                        Err(e) if tries >= RECOVER_TRIES => {
                            tracing::warn!(
                                "after a resync, the wallet's coins in skipped blocks could not be \
                                 looked up ({e}); `rescan` with a full_mmr peer finds them"
                            );
                            return;
                        }
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                };
                let (r, _) = tokio::sync::oneshot::channel();
                if tx.send(super::Cmd::Wallet(WalletCmd::Import(coins, r))).await.is_err() {
                    return;
                }
            }
        });
    }

    /// The devnet genesis coin (`RETURN TRUE`), paid whole to the wallet's first key, if it
    /// is unspent and provable here and no pending transaction spends it.
    fn genesis_claim(&mut self) -> Result<Option<Draft>, NodeError> {
        let Some(w) = self.wallet.as_ref() else { return Err(WalletError::NoWallet.into()) };
        let Some(key) = w.keys().first().cloned() else { return Ok(None) };
        let open = "RETURN TRUE";
        let g = crate::chain::genesis_coin(&self.params)?;
        if g.coin.address != script_address(open) || self.locked_coins().contains(&g.coin.coin_id) {
            return Ok(None);
        }
        let gid = self.chain.genesis_id();
        let proof = if self.chain.block(&gid).is_some() {
            crate::chain::genesis(&self.params)?.1.proof(0, gid).ok()
        } else {
            self.full.as_ref().and_then(|m| m.proof(0, self.chain.tip_id()).ok())
        };
        let Some(proof) = proof else { return Ok(None) };
        let Some(crate::chain::CoinFate::Unspent(p)) = self.chain.coin_fates(&[(&g, &proof)]).pop() else {
            return Ok(None);
        };
        let out = Output { address: key.address, amount: g.coin.amount, token_id: Hash::ZERO, state: vec![] };
        let tx = Transaction { version: 1, inputs: vec![g.coin.clone()], outputs: vec![out], state: vec![] };
        Ok(Some(Draft {
            tx,
            keys: vec![],
            scripts: vec![open.to_string()],
            proofs: vec![(0, p)],
            header: self.tx_header()?,
            burn: 0,
            size: 0,
        }))
    }
}
