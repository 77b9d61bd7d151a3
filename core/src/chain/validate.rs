//! Stateless checks of a TxPoW and the contextual application of transactions to an MMR.

use std::collections::HashSet;

use crate::chain::pow::{meets, target_for_work};
use crate::chain::ChainError;
use crate::codec::{Decode, Encode};
use crate::crypto::{self, sha3, Hash, PublicKey};
use crate::mmr::{leaf_node, Mmr, MmrError};
use crate::params::Params;
use crate::script::{self, Limits, SigCache};
use crate::types::{CoinRecord, Transaction, TxPoW};
use crate::U256;

/// What a TxPoW is, once its stateless checks passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPowInfo {
    /// The TxPoW id.
    pub id: Hash,
    /// Its transaction's id.
    pub txid: Hash,
    /// Encoded size.
    pub size: usize,
    /// `id < block_target`.
    pub is_block: bool,
    /// A non-empty transaction with `id < txn_target`.
    pub is_transaction: bool,
    /// Witness signatures (sig-ops before any `CHECKSIG`).
    pub sig_count: u32,
}

/// Largest `txn_target` a TxPoW of `size` bytes may carry:
/// `floor(min_target · 1,024 / max(1,024, size))`.
pub fn max_txn_target(params: &Params, size: usize) -> U256 {
    let min = params.magic.min_target();
    let b = size.max(1024) as u128;
    // min_target · 1024 / b = min_target / (b / 1024) computed without overflow in 512 bits.
    let v = crate::U512::from_be_slice(&min.to_be_bytes::<32>()) * crate::U512::from(1024u32)
        / crate::U512::from(b);
    U256::from_be_slice(&v.to_be_bytes::<64>()[32..])
}

/// The `txn_target` a sender mines to for a TxPoW of `size` bytes with `work` hashes of
/// effort (at least the size-scaled minimum).
pub fn txn_target_for(params: &Params, size: usize, work: u128) -> U256 {
    let cap = max_txn_target(params, size);
    let t = target_for_work(work);
    if t < cap {
        t
    } else {
        cap
    }
}

/// Checks that need only the TxPoW's own bytes and the Params: chain id, versions, magic, body
/// hash, size, proof of work, the size-scaled work rule, transaction form and signatures.
pub fn check_txpow(params: &Params, txpow: &TxPoW) -> Result<TxPowInfo, ChainError> {
    let info = check_txpow_form(params, txpow)?;
    verify_signatures(params, txpow, &info)?;
    Ok(info)
}

/// Verify a TxPoW's witness signatures (SPHINCS+: the expensive part of
/// [`check_txpow`], run only once every cheap check passed).
pub fn verify_signatures(params: &Params, txpow: &TxPoW, info: &TxPowInfo) -> Result<(), ChainError> {
    for (i, (pk, sig)) in txpow.body.witness.signatures.iter().enumerate() {
        if !crypto::verify_tx(pk, params.chain_id, &info.txid, sig) {
            return Err(ChainError::BadSignature(i));
        }
    }
    Ok(())
}

/// Every check of [`check_txpow`] but the signatures: hashes and counts only.
pub fn check_txpow_form(params: &Params, txpow: &TxPoW) -> Result<TxPowInfo, ChainError> {
    let h = &txpow.header;
    let b = &txpow.body;
    crate::chain::check_header_bounds(h)?;
    if h.chain_id != params.chain_id {
        return Err(ChainError::WrongChainId(h.chain_id));
    }
    if h.version != 1 {
        return Err(ChainError::WrongVersion(h.version));
    }
    if b.transaction.version != 1 {
        return Err(ChainError::WrongVersion(b.transaction.version));
    }
    if h.magic != params.magic {
        return Err(ChainError::MagicMismatch);
    }
    let body_bytes = b.encode();
    if sha3(&body_bytes) != h.body_hash {
        return Err(ChainError::WrongBodyHash);
    }
    let size = h.encoded_len() + body_bytes.len();
    if size > params.magic.max_txpow_bytes as usize {
        return Err(ChainError::TxPowTooLarge { size, max: params.magic.max_txpow_bytes as usize });
    }
    if b.txpow_ids.len() > params.magic.max_txns as usize {
        return Err(ChainError::TooManyTxns(b.txpow_ids.len()));
    }
    let mut seen = HashSet::with_capacity(b.txpow_ids.len());
    for id in &b.txpow_ids {
        if !seen.insert(*id) {
            return Err(ChainError::DuplicateListed(*id));
        }
    }
    let id = h.id();
    let is_block = meets(&id, &h.block_target);
    let has_tx = !b.transaction.is_empty();
    let is_transaction = has_tx && meets(&id, &b.txn_target);
    if !is_block && !is_transaction {
        return Err(ChainError::InsufficientWork);
    }
    let min_target = params.magic.min_target();
    if h.block_target > min_target && is_block {
        return Err(ChainError::WrongBlockTarget);
    }
    let txid = b.transaction.txid();
    if has_tx {
        if b.txn_target > min_target {
            return Err(ChainError::TxnTargetTooEasy);
        }
        if b.txn_target > max_txn_target(params, size) {
            return Err(ChainError::InsufficientTxWork { size });
        }
        if is_block && b.txn_target < h.block_target {
            return Err(ChainError::TxnTargetHarderThanBlock);
        }
        check_transaction_form(&b.transaction)?;
        check_witness_form(&b.transaction, &b.witness)?;
        if b.witness.signatures.len() as u32 > params.magic.max_sigops_txpow {
            return Err(ChainError::TooManySigopsTxPow(b.witness.signatures.len() as u32));
        }
    } else if !b.witness.signatures.is_empty() || !b.witness.scripts.is_empty() {
        return Err(ChainError::UnexpectedWitness);
    }
    // What no peer could decode (more outputs than the wire allows, …) is invalid here too,
    // or a locally built TxPoW would split us from the network.
    crate::types::TxBody::decode(&body_bytes)?;
    Ok(TxPowInfo { id, txid, size, is_block, is_transaction, sig_count: b.witness.signatures.len() as u32 })
}

/// Form of a non-empty transaction: inputs present and distinct, native token, amounts ≥ 1,
/// sums within `u64`, no overspend.
pub fn check_transaction_form(tx: &Transaction) -> Result<(), ChainError> {
    if tx.inputs.is_empty() {
        return Err(ChainError::NoInputs);
    }
    let mut ids = HashSet::with_capacity(tx.inputs.len());
    let mut sum_in: u128 = 0;
    for c in &tx.inputs {
        if !ids.insert(c.coin_id) {
            return Err(ChainError::DuplicateInput(c.coin_id));
        }
        if c.token_id != Hash::ZERO {
            return Err(ChainError::NonNativeToken);
        }
        sum_in += c.amount as u128;
    }
    if sum_in > u64::MAX as u128 {
        return Err(ChainError::InputSumOverflow);
    }
    let mut sum_out: u128 = 0;
    for (i, o) in tx.outputs.iter().enumerate() {
        if o.amount == 0 {
            return Err(ChainError::ZeroAmountOutput(i));
        }
        if o.token_id != Hash::ZERO {
            return Err(ChainError::NonNativeToken);
        }
        sum_out += o.amount as u128;
    }
    if sum_out > u64::MAX as u128 {
        return Err(ChainError::OutputSumOverflow);
    }
    if sum_out > sum_in {
        return Err(ChainError::Overspend);
    }
    Ok(())
}

/// Every input address has a witness script hashing to it, and every script is used.
pub fn check_witness_form(tx: &Transaction, w: &crate::types::Witness) -> Result<(), ChainError> {
    let addrs: Vec<Hash> = w.scripts.iter().map(|s| sha3(s.as_bytes())).collect();
    let mut used = vec![false; addrs.len()];
    for (i, c) in tx.inputs.iter().enumerate() {
        match addrs.binary_search(&c.address) {
            Ok(j) => used[j] = true,
            Err(_) => return Err(ChainError::ScriptHashMismatch(i)),
        }
    }
    if let Some(j) = used.iter().position(|u| !u) {
        return Err(ChainError::UnusedScript(j));
    }
    Ok(())
}

/// Burn of a transaction: Σ inputs − Σ outputs (form already checked).
pub fn burn(tx: &Transaction) -> u64 {
    let i: u128 = tx.inputs.iter().map(|c| c.amount as u128).sum();
    let o: u128 = tx.outputs.iter().map(|c| c.amount as u128).sum();
    u64::try_from(i.saturating_sub(o)).unwrap_or(u64::MAX)
}

/// What is left, for one TxPoW's scripts, of the sig-op and script-work budgets of the TxPoW
/// and of the block it goes into (see [`ScriptBudget::for_txpow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptBudget {
    /// `CHECKSIG` sig-ops the TxPoW may still run (`max_sigops_txpow` less its witness
    /// signatures).
    pub txpow_sigops: u32,
    /// Sig-ops the block has left.
    pub block_sigops: u32,
    /// Instructions the TxPoW's runs may execute together (`max_txpow_script_ops`).
    pub txpow_ops: u32,
    /// Instructions the block has left.
    pub block_ops: u32,
}

impl ScriptBudget {
    /// The budget of a TxPoW with `sig_count` witness signatures, in a block that has
    /// `block_sigops` sig-ops and `block_ops` instructions left.
    pub fn for_txpow(params: &Params, sig_count: u32, block_sigops: u32, block_ops: u32) -> ScriptBudget {
        ScriptBudget {
            txpow_sigops: params.magic.max_sigops_txpow.saturating_sub(sig_count),
            block_sigops: block_sigops.saturating_sub(sig_count),
            txpow_ops: params.max_txpow_script_ops,
            block_ops,
        }
    }
    /// A TxPoW judged alone (the mempool): the whole block budget is its.
    pub fn alone(params: &Params, sig_count: u32) -> ScriptBudget {
        Self::for_txpow(params, sig_count, params.magic.max_sigops_block, params.max_block_script_ops)
    }
}

/// What a TxPoW's script runs cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptCost {
    /// `CHECKSIG` sig-ops executed.
    pub sigops: u32,
    /// Instructions executed.
    pub instructions: u32,
    /// Whether a run read `@BLOCK` or `@COINAGE` (the result may differ at another height).
    pub reads_height: bool,
}

/// Run every input's script within `budget`, aborting as soon as a sig-op or instruction cap
/// is reached (before the `CHECKSIG` that would pass it is verified).
pub fn run_scripts(
    params: &Params,
    txpow: &TxPoW,
    created: &[u64],
    block_number: u64,
    cache: &mut SigCache,
    budget: ScriptBudget,
) -> Result<ScriptCost, ChainError> {
    let tx = &txpow.body.transaction;
    let w = &txpow.body.witness;
    let base = Limits::from_params(params);
    let signers: Vec<PublicKey> = w.signatures.iter().map(|s| s.0).collect();
    let sig_count = w.signatures.len() as u32;
    let mut cost = ScriptCost::default();
    for (i, coin) in tx.inputs.iter().enumerate() {
        let src = w
            .scripts
            .iter()
            .find(|s| sha3(s.as_bytes()) == coin.address)
            .ok_or(ChainError::ScriptHashMismatch(i))?;
        let ctx = script::Context {
            block: block_number,
            input_index: i,
            coin,
            created: created.get(i).copied().unwrap_or(0),
            tx,
            signers: &signers,
        };
        let ops_left = budget.txpow_ops.min(budget.block_ops).saturating_sub(cost.instructions);
        let sigops_left = budget.txpow_sigops.min(budget.block_sigops).saturating_sub(cost.sigops);
        let limits =
            Limits { max_instructions: base.max_instructions.min(ops_left), max_sigops: sigops_left, ..base };
        let (result, read_height) = script::run_script_traced(src, ctx, &limits, cache);
        match result {
            Ok(stats) => {
                cost.sigops = cost.sigops.saturating_add(stats.sigops);
                cost.instructions = cost.instructions.saturating_add(stats.instructions);
                cost.reads_height |= stats.reads_height;
            }
            Err(script::ScriptError::SigopLimit) => {
                let n = sig_count.saturating_add(cost.sigops).saturating_add(sigops_left).saturating_add(1);
                return Err(if cost.sigops.saturating_add(sigops_left) >= budget.txpow_sigops {
                    ChainError::TooManySigopsTxPow(n)
                } else {
                    ChainError::TooManySigopsBlock(n)
                });
            }
            Err(script::ScriptError::InstructionLimit) if limits.max_instructions < base.max_instructions => {
                return Err(ChainError::TooMuchScriptWork(
                    cost.instructions.saturating_add(limits.max_instructions),
                ));
            }
            Err(error) => return Err(ChainError::Script { input: i, error, read_height }),
        }
    }
    Ok(cost)
}

/// Spend a transaction's inputs and append its outputs in `mmr`, in order. `leaves[i]` and
/// `created[i]` locate input i.
pub fn apply_transaction(
    mmr: &mut Mmr,
    tx: &Transaction,
    leaves: &[u64],
    created: &[u64],
    block_number: u64,
) -> Result<(), ChainError> {
    for (i, coin) in tx.inputs.iter().enumerate() {
        let rec = CoinRecord { coin: coin.clone(), created: created[i] };
        match mmr.spend(leaves[i], &rec) {
            Ok(()) => {}
            Err(MmrError::NotUnspent(_)) | Err(MmrError::LeafOutOfRange { .. }) => {
                return Err(ChainError::CoinNotUnspent(i))
            }
            Err(MmrError::MissingNode(_)) => return Err(ChainError::CoinNotUnspent(i)),
            Err(e) => return Err(ChainError::Mmr(e)),
        }
    }
    for rec in output_records(tx, block_number)? {
        mmr.append(leaf_node(&rec, false)).map_err(ChainError::Mmr)?;
    }
    Ok(())
}

/// The coins a transaction creates, in output order, as a block at `block_number` appends them.
pub fn output_records(tx: &Transaction, block_number: u64) -> Result<Vec<CoinRecord>, ChainError> {
    tx.outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            Ok(CoinRecord {
                coin: crate::types::Coin {
                    coin_id: tx.output_coin_id(i as u32).ok_or(ChainError::NoInputs)?,
                    address: o.address,
                    amount: o.amount,
                    token_id: o.token_id,
                    state: o.state.clone(),
                },
                created: block_number,
            })
        })
        .collect()
}
