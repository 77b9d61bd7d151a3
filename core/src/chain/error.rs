//! Validation errors: one variant per broken rule.

use thiserror::Error;

use crate::codec::CodecError;
use crate::crypto::Hash;
use crate::mmr::MmrError;
use crate::script::ScriptError;

/// Why a TxPoW, block, proof or cascade was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    /// Undecodable or non-canonical bytes.
    #[error("decoding: {0}")]
    Codec(#[from] CodecError),
    /// A chain id of another network (or none).
    #[error("chain id {0} is not this network's")]
    WrongChainId(u8),
    /// Header or transaction version other than 1.
    #[error("unsupported version {0}")]
    WrongVersion(u8),
    /// Magic differs from the Params values.
    #[error("magic differs from the network parameters")]
    MagicMismatch,
    /// `body_hash` is not SHA3 of the body.
    #[error("body hash does not match the body")]
    WrongBodyHash,
    /// Encoded TxPoW larger than `max_txpow_bytes`.
    #[error("TxPoW of {size} bytes exceeds {max}")]
    TxPowTooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// More listed TxPoWs than `max_txns`.
    #[error("{0} listed TxPoWs exceed max_txns")]
    TooManyTxns(usize),
    /// A TxPoW id listed twice.
    #[error("TxPoW {0:?} listed twice")]
    DuplicateListed(Hash),
    /// The id meets neither the block nor the transaction target.
    #[error("proof of work meets neither target")]
    InsufficientWork,
    /// Not a block (id ≥ block_target) where a block is required.
    #[error("TxPoW is not a block")]
    NotABlock,
    /// `txn_target` easier than `min_work` allows.
    #[error("txn_target is easier than the minimum work")]
    TxnTargetTooEasy,
    /// `txn_target` easier than the size-scaled work rule allows.
    #[error("TxPoW of {size} bytes needs more work (size-scaled rule)")]
    InsufficientTxWork {
        /// Encoded size.
        size: usize,
    },
    /// A block carrying a transaction with `txn_target` harder than `block_target`.
    #[error("txn_target is harder than block_target")]
    TxnTargetHarderThanBlock,
    /// A listed TxPoW that is not a transaction.
    #[error("listed TxPoW {0:?} is not a transaction")]
    ListedNotTransaction(Hash),
    /// A non-empty transaction with no inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// The empty transaction with a witness.
    #[error("empty transaction carries a witness")]
    UnexpectedWitness,
    /// An input coin id twice (in a transaction or a block).
    #[error("coin {0:?} spent twice")]
    DuplicateInput(Hash),
    /// A token other than the native coin (v1).
    #[error("tokens are not supported in v1")]
    NonNativeToken,
    /// An output of amount 0.
    #[error("output {0} has amount 0")]
    ZeroAmountOutput(usize),
    /// Σ inputs above `u64::MAX`.
    #[error("input sum overflows")]
    InputSumOverflow,
    /// Σ outputs above `u64::MAX`.
    #[error("output sum overflows")]
    OutputSumOverflow,
    /// Σ outputs > Σ inputs.
    #[error("outputs exceed inputs")]
    Overspend,
    /// An input address without a witness script hashing to it.
    #[error("no script hashes to the address of input {0}")]
    ScriptHashMismatch(usize),
    /// A witness script no input uses.
    #[error("witness script {0} matches no input address")]
    UnusedScript(usize),
    /// A script did not return TRUE.
    #[error("script of input {input} failed: {error}")]
    Script {
        /// Input position.
        input: usize,
        /// Why.
        error: ScriptError,
        /// Whether the failed run read `@BLOCK`/`@COINAGE` (only then may it pass at another
        /// height).
        read_height: bool,
    },
    /// A witness signature that does not verify.
    #[error("signature by key {0} does not verify")]
    BadSignature(usize),
    /// More sig-ops than one TxPoW may have.
    #[error("{0} sig-ops exceed the per-TxPoW limit")]
    TooManySigopsTxPow(u32),
    /// A block number above [`crate::chain::MAX_BLOCK_NUMBER`] (2^48).
    #[error("block number {0} is above 2^48")]
    BlockNumberTooHigh(u64),
    /// A time above [`crate::chain::MAX_TIME_MS`] (2^53 ms).
    #[error("time {0} ms is above 2^53")]
    TimeTooHigh(u64),
    /// A TxPoW's or block's scripts ran past `max_txpow_script_ops` / `max_block_script_ops`.
    #[error("script work past the TxPoW or block cap ({0} instructions)")]
    TooMuchScriptWork(u32),
    /// A block already refused for a reason its id settles.
    #[error("block {0:?} was already refused")]
    KnownInvalid(Hash),
    /// The parent is not known (yet).
    #[error("parent {0:?} is unknown")]
    UnknownParent(Hash),
    /// The block forks below the tree root.
    #[error("block forks below the tree root")]
    BelowRoot,
    /// The parent was rejected.
    #[error("parent {0:?} is invalid")]
    InvalidParent(Hash),
    /// `block_number` ≠ parent + 1.
    #[error("block number {0} does not follow its parent")]
    WrongBlockNumber(u64),
    /// `block_target` differs from the difficulty rule.
    #[error("block target differs from the difficulty rule")]
    WrongBlockTarget,
    /// `parents` differ from the rule.
    #[error("parents array differs from the rule")]
    WrongParents,
    /// `time_ms` not above the median time past.
    #[error("time {time} is not after the median time past {median}")]
    TimeTooEarly {
        /// Block time.
        time: u64,
        /// Median of recent ancestors.
        median: u64,
    },
    /// `time_ms` more than 24 h past the median time past.
    #[error("time {time} is too far ahead of the median time past {median}")]
    TimeTooFarAhead {
        /// Block time.
        time: u64,
        /// Median of recent ancestors.
        median: u64,
    },
    /// Block bytes above `max_block_bytes`.
    #[error("block of {0} bytes exceeds max_block_bytes")]
    BlockTooLarge(usize),
    /// Block inputs above `max_block_inputs`.
    #[error("block spends {0} inputs, above max_block_inputs")]
    TooManyBlockInputs(usize),
    /// Block sig-ops above `max_sigops_block`.
    #[error("block has {0} sig-ops, above max_sigops_block")]
    TooManySigopsBlock(u32),
    /// A txid already applied on this branch (or twice in the block).
    #[error("transaction {0:?} already applied on this branch")]
    TxidAppliedTwice(Hash),
    /// The block MMR witness does not match the parent's MMR.
    #[error("block MMR witness is invalid: {0}")]
    BadWitness(MmrError),
    /// An input coin is not unspent with exactly these fields.
    #[error("input {0} is not an unspent coin with these fields")]
    CoinNotUnspent(usize),
    /// `mmr_root` differs from the result of applying the block.
    #[error("mmr_root does not match the block's result")]
    WrongMmrRoot,
    /// `mmr_total` differs from the result of applying the block.
    #[error("mmr_total does not match the block's result")]
    WrongMmrTotal,
    /// A coin proof against a block not on this branch.
    #[error("coin proof refers to block {0:?} not on this branch")]
    CoinProofUnknownBlock(Hash),
    /// A coin proof older than `proof_window`.
    #[error("coin proof is {0} blocks old, beyond the proof window")]
    CoinProofTooOld(u64),
    /// A coin proof whose leaf changed in a later block.
    #[error("coin proof is stale: the coin changed after its block")]
    StaleProof,
    /// A coin proof that does not lead to its block's root.
    #[error("coin proof does not verify: {0}")]
    BadCoinProof(MmrError),
    /// Proofs given do not match the inputs.
    #[error("expected {expected} coin proofs, got {found}")]
    ProofCount {
        /// Inputs.
        expected: usize,
        /// Proofs.
        found: usize,
    },
    /// A cascade that fails verification.
    #[error("cascade: {0}")]
    Cascade(&'static str),
    /// A block at the Params checkpoint height that is not the checkpoint.
    #[error("block {0} is not the checkpoint block")]
    Checkpoint(u64),
    /// The genesis block is not this network's.
    #[error("genesis does not match the network parameters")]
    BadGenesis,
    /// Parameters that break the invariants.
    #[error("parameters: {0}")]
    Params(#[from] crate::params::ParamsError),
    /// An internal MMR failure (inconsistent state).
    #[error("MMR: {0}")]
    Mmr(MmrError),
    /// The stored witness or listed TxPoWs of a tree block could not be read back (or did
    /// not replay to its peaks): a fault of this node's storage, not of the input.
    #[error("stored data of tree block {0} is missing or damaged")]
    BlockDataMissing(Hash),
}

impl ChainError {
    /// True when a transaction refused for this reason is invalid whatever our state (tip,
    /// mempool, the height its scripts see): only then is its relayer at fault. Everything
    /// else — a stale or unknown proof, a spent coin, a script that read the height and failed
    /// at ours, a budget a script's path reached — an honest relayer can send.
    pub fn is_state_independent(&self) -> bool {
        use ChainError::*;
        matches!(
            self,
            Codec(_)
                | WrongChainId(_)
                | WrongVersion(_)
                | MagicMismatch
                | WrongBodyHash
                | TxPowTooLarge { .. }
                | TooManyTxns(_)
                | DuplicateListed(_)
                | InsufficientWork
                | TxnTargetTooEasy
                | InsufficientTxWork { .. }
                | NoInputs
                | UnexpectedWitness
                | DuplicateInput(_)
                | NonNativeToken
                | ZeroAmountOutput(_)
                | InputSumOverflow
                | OutputSumOverflow
                | Overspend
                | ScriptHashMismatch(_)
                | UnusedScript(_)
                | BadSignature(_)
                | ProofCount { .. }
                | BadCoinProof(_)
                | BlockNumberTooHigh(_)
                | TimeTooHigh(_)
                | WrongBlockTarget
                | TxnTargetHarderThanBlock
                | Script { read_height: false, .. }
        )
    }

    /// True for refusals an honest relayer can cause by racing a new block (its proof went
    /// stale, the coin was just spent, the block it proves against is gone): not
    /// misbehaviour.
    pub fn is_race(&self) -> bool {
        matches!(
            self,
            ChainError::CoinNotUnspent(_)
                | ChainError::CoinProofUnknownBlock(_)
                | ChainError::CoinProofTooOld(_)
                | ChainError::StaleProof
                | ChainError::TxidAppliedTwice(_)
                | ChainError::BlockDataMissing(_)
        )
    }
}
