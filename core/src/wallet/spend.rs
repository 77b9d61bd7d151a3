//! Building a payment: coin selection within the TxPoW limits, change, burn; then signing
//! and mining the TxPoW to the sender's transaction target.
//!
//! Selection prefers few keys, since each distinct key costs one SPHINCS+ signature
//! (7,856 bytes) against the 64 KiB TxPoW limit: first the single key whose coins cover the
//! payment with the smallest total, else keys by value, largest first. The exact encoded size
//! is checked with placeholder signatures before anything is signed. Change goes back to the
//! address of the first input.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use super::state::{OwnCoin, WalletState};
use super::{Seed, WalletError};
use crate::chain::validate::txn_target_for;
use crate::crypto::{Hash, Keypair, PublicKey, Signature, SIGNATURE_BYTES};
use crate::mmr::MmrProof;
use crate::params::Params;
use crate::types::limits::{MAX_INPUTS, MAX_OUTPUTS};
use crate::types::{Coin, Output, Transaction, TxBody, TxHeader, TxPoW, Witness};
use crate::U256;

/// A payment ready to sign: the transaction, who signs each input, the inputs' relay proofs
/// and a header template.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The transaction.
    pub tx: Transaction,
    /// Key index of each input signed by a wallet key (same order as the inputs).
    pub keys: Vec<u32>,
    /// Scripts of inputs no key signs (the devnet `RETURN TRUE` genesis coin).
    pub scripts: Vec<String>,
    /// Relay proof of each input: (created, proof).
    pub proofs: Vec<(u64, MmrProof)>,
    /// Header to mine (block target zero: a transaction, never a block).
    pub header: TxHeader,
    /// Burn (base units).
    pub burn: u64,
    /// Encoded size of the signed TxPoW.
    pub size: usize,
}

/// What signing and mining a payment took.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The TxPoW.
    pub txpow: TxPoW,
    /// Its inputs' relay proofs.
    pub proofs: Vec<(u64, MmrProof)>,
    /// Time to derive keys and sign (ms).
    pub sign_ms: f64,
    /// Time to mine it (ms).
    pub mine_ms: f64,
    /// Hashes tried.
    pub hashes: u64,
}

/// Placeholder witness with one zero signature per key (for sizing).
fn sizing_witness(keys: &[(PublicKey, String)]) -> Witness {
    let zero = Signature::from_bytes(&[0u8; SIGNATURE_BYTES]).unwrap_or_else(|| unreachable!("exact length"));
    Witness::new(
        keys.iter().map(|(pk, _)| (*pk, zero.clone())).collect(),
        keys.iter().map(|k| k.1.clone()).collect(),
    )
}

fn txpow_for(header: &TxHeader, tx: Transaction, witness: Witness) -> TxPoW {
    let body = TxBody { txn_target: U256::ZERO, transaction: tx, witness, txpow_ids: vec![], prng: [0; 32] };
    TxPoW { header: header.clone(), body }
}

impl WalletState {
    /// Build a payment of `outputs` (address, amount) burning `burn`, from spendable coins not
    /// in `exclude` (coins pending elsewhere). `header` is the template to mine on.
    pub fn draft(
        &self,
        params: &Params,
        outputs: &[(Hash, u64)],
        burn: u64,
        exclude: &HashSet<Hash>,
        header: TxHeader,
    ) -> Result<Draft, WalletError> {
        if outputs.is_empty() || outputs.iter().any(|o| o.1 == 0) {
            return Err(WalletError::ZeroAmount);
        }
        if outputs.len() + 1 > MAX_OUTPUTS {
            return Err(WalletError::TooManyOutputs(outputs.len()));
        }
        let need = outputs
            .iter()
            .try_fold(burn as u128, |a, o| Some(a + o.1 as u128))
            .filter(|n| *n <= u64::MAX as u128)
            .ok_or(WalletError::AmountOverflow)? as u64;
        let free: Vec<&OwnCoin> =
            self.coins().filter(|c| c.spendable() && !exclude.contains(&c.rec.coin.coin_id)).collect();
        let sendable: u128 = free.iter().map(|c| c.rec.coin.amount as u128).sum();
        if sendable < need as u128 {
            let confirmed: u128 =
                self.coins().filter(|c| c.spendable()).map(|c| c.rec.coin.amount as u128).sum();
            return Err(WalletError::InsufficientFunds {
                needed: need,
                sendable: sendable.min(u64::MAX as u128) as u64,
                pending: (confirmed - sendable).min(u64::MAX as u128) as u64,
            });
        }
        let chosen = select(&free, need);
        if chosen.len() > MAX_INPUTS {
            return Err(WalletError::TxTooLarge {
                reason: format!("{} inputs needed, at most {MAX_INPUTS} fit one transaction", chosen.len()),
            });
        }
        let total: u64 = chosen.iter().map(|c| c.rec.coin.amount).sum();
        let mut outs: Vec<Output> = outputs
            .iter()
            .map(|(a, v)| Output { address: *a, amount: *v, token_id: Hash::ZERO, state: vec![] })
            .collect();
        if total > need {
            outs.push(Output {
                address: chosen[0].rec.coin.address,
                amount: total - need,
                token_id: Hash::ZERO,
                state: vec![],
            });
        }
        let inputs: Vec<Coin> = chosen.iter().map(|c| c.rec.coin.clone()).collect();
        let tx = Transaction { version: 1, inputs, outputs: outs, state: vec![] };
        let mut signers: BTreeMap<u32, (PublicKey, String)> = BTreeMap::new();
        for c in &chosen {
            let k = self.keys().iter().find(|k| k.index == c.key).ok_or(WalletError::UnknownKey(c.key))?;
            signers.insert(k.index, (k.public, k.public.default_script()));
        }
        let signers: Vec<(PublicKey, String)> = signers.into_values().collect();
        if signers.len() as u32 > params.magic.max_sigops_txpow {
            return Err(WalletError::TxTooLarge {
                reason: format!(
                    "{} keys must sign; at most {} fit",
                    signers.len(),
                    params.magic.max_sigops_txpow
                ),
            });
        }
        let size = txpow_for(&header, tx.clone(), sizing_witness(&signers)).size();
        let max = params.magic.max_txpow_bytes as usize;
        if size > max {
            return Err(WalletError::TxTooLarge {
                reason: format!(
                    "{size} bytes with {} signatures of {SIGNATURE_BYTES} bytes; a TxPoW holds at most {max}",
                    signers.len()
                ),
            });
        }
        Ok(Draft {
            keys: chosen.iter().map(|c| c.key).collect(),
            scripts: vec![],
            proofs: chosen.iter().map(|c| (c.rec.created, c.proof.clone())).collect(),
            tx,
            header,
            burn,
            size,
        })
    }
}

/// Pick coins covering `need` (the caller checked that `free` does): one key's coins when
/// one key can pay (the smallest such total), else keys by total, largest first; within a
/// key, largest coins first.
fn select<'a>(free: &[&'a OwnCoin], need: u64) -> Vec<&'a OwnCoin> {
    let mut groups: BTreeMap<u32, Vec<&OwnCoin>> = BTreeMap::new();
    for c in free {
        groups.entry(c.key).or_default().push(c);
    }
    let mut groups: Vec<(u128, Vec<&OwnCoin>)> = groups
        .into_values()
        .map(|mut g| {
            g.sort_by(|a, b| {
                b.rec.coin.amount.cmp(&a.rec.coin.amount).then(a.rec.coin.coin_id.cmp(&b.rec.coin.coin_id))
            });
            (g.iter().map(|c| c.rec.coin.amount as u128).sum(), g)
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.0));
    let order: Vec<&OwnCoin> = match groups.iter().filter(|g| g.0 >= need as u128).min_by_key(|g| g.0) {
        Some(g) => g.1.clone(),
        None => groups.into_iter().flat_map(|g| g.1).collect(),
    };
    let mut out = vec![];
    let mut sum: u128 = 0;
    for c in order {
        if sum >= need as u128 {
            break;
        }
        sum += c.rec.coin.amount as u128;
        out.push(c);
    }
    out
}

/// Sign a draft with the wallet's keys (derived from `seed`) and mine its TxPoW to `work`
/// hashes (at least the size-scaled minimum of `params`).
pub fn sign_and_mine(seed: &Seed, params: &Params, d: Draft, work: u128) -> Result<Signed, WalletError> {
    let mut derive = |i: u32| {
        Keypair::derive(&seed.0, i).map(std::sync::Arc::new).map_err(|e| WalletError::Crypto(e.to_string()))
    };
    sign_and_mine_with(&mut derive, params, d, work)
}

/// [`sign_and_mine`] with the key pairs from `keypair` (a cache: derivation takes ~0.1 s).
pub fn sign_and_mine_with(
    keypair: &mut dyn FnMut(u32) -> Result<std::sync::Arc<Keypair>, WalletError>,
    params: &Params,
    d: Draft,
    work: u128,
) -> Result<Signed, WalletError> {
    let t0 = Instant::now();
    let txid = d.tx.txid();
    let mut distinct: Vec<u32> = d.keys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut sigs = vec![];
    let mut scripts = vec![];
    for i in distinct {
        let kp = keypair(i)?;
        sigs.push((kp.public, kp.sign_tx(params.chain_id, &txid)));
        scripts.push(kp.public.default_script());
    }
    scripts.extend(d.scripts);
    let sign_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut prng = [0u8; 32];
    super::public_random(&mut prng)?;
    let mut txpow = txpow_for(&d.header, d.tx, Witness::new(sigs, scripts));
    txpow.body.prng = prng;
    let target = txn_target_for(params, txpow.size(), work);
    txpow.body.txn_target = target;
    txpow.header.body_hash = txpow.body.hash();
    let t1 = Instant::now();
    let hashes = mine(&mut txpow.header, &target)?;
    Ok(Signed { txpow, proofs: d.proofs, sign_ms, mine_ms: t1.elapsed().as_secs_f64() * 1e3, hashes })
}

/// Find a nonce with `id < target` (random start). Answers the hashes tried.
pub fn mine(header: &mut TxHeader, target: &U256) -> Result<u64, WalletError> {
    super::public_random(&mut header.nonce)?;
    let prefix = header.prefix_hash();
    let mut n: u64 = 0;
    loop {
        header.nonce[..8].copy_from_slice(&n.to_be_bytes());
        let id = crate::types::txpow_id(&prefix, &header.nonce);
        n += 1;
        if crate::chain::pow::meets(&id, target) {
            return Ok(n);
        }
    }
}
