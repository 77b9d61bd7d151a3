//! # minima-core
//!
//! A Complete node after the Minima design, as a library. This crate holds the protocol core —
//! pure code that decides everything from bytes alone, with no I/O and no clock.
//!
//! ## Map
//! | module | concern |
//! |---|---|
//! | [`codec`] | canonical, bounded binary encoding; the only place bytes become objects |
//! | [`crypto`] | SHA3 hashes, SPHINCS+ keys/sign/verify, seed derivation, bech32m addresses, BIP39 |
//! | [`types`] | Coin, Transaction, Witness, TxHeader, TxBody, TxPoW, Magic |
//! | [`params`] | Params (main, test, devnet) and their invariants |
//! | [`script`] | the v1 KISSVM subset with hard limits |
//! | [`mmr`] | the MMR sum tree: append, spend, proofs, peaks, per-block deltas, block witnesses |
//! | [`chain`] | validation, difficulty, time, parents, the TxPoW tree with heaviest-path fork choice, the cascade |
//! | [`store`] | SQLite: schema, one transaction per block, single writer |
//! | [`mempool`] | pending transactions, bounded, ranked by burn per byte |
//! | [`miner`] | the low-priority hash loop, cancellable |
//! | [`energy`] | the energy policy (pure: power state + budget → pulses, connections, peers, timeouts) and the per-hour ledger |
//! | [`wallet`] | seed (sealed or host-held), keys, own coins and their proofs, balance, history, payments |
//! | [`node`] | the orchestrator: start/stop, the chain actor, events, status, the wallet calls |
//! | `fixture` | (feature `fixture`) a chain builder that mines valid test chains in seconds |
//! | `sim` | (feature `sim`) the deterministic network simulator: production nodes on a simulated clock and network |
//!
//! ## Decisions where SPEC is silent
//! Each is pinned by a test.
//! - **Leaf count of a proof.** An MMR root commits to its leaf count (`H(0x02, count, P)`), but
//!   a header carries only the root. A relay [`mmr::MmrProof`]'s path is the siblings to its
//!   peak followed by the *other* peaks left to right; the verifier takes the leaf count from
//!   its record of the proof's block. A block MMR witness carries the parent's peaks *with* the
//!   leaf count ([`mmr::MmrPeaks`]); the root check covers both, and the peak sums must add up
//!   to the parent's `mmr_total`.
//! - **`created` of an input.** Inputs omit `created`; the block witness entry and the relay
//!   proof's companion carry it, and the leaf hash proves it.
//! - **Inputs come from the parent's MMR.** A block may not spend a coin created in the same
//!   block (the witness proves inputs against the parent's MMR).
//! - **Work.** `work(target) = floor(2^256 / (target + 1))`, saturated to `u128::MAX`.
//! - **Fork choice is the heaviest path, not GHOST** (a change to SPEC §5). The tip is the tree
//!   block whose root→block path holds the most work — the chain weight sync already compares;
//!   a tie keeps the current tip, else the lower id. Under GHOST (subtree work) side blocks
//!   count, but peers announce only best tips and sync fetches only the path to them, so two
//!   nodes holding the same best branches could choose differently for good: a partition
//!   whose side had bushy forks stayed split after it healed. Side blocks are rare at 50 s
//!   blocks, where GHOST gains little.
//! - **Sig-ops.** A TxPoW's sig-ops are its witness signatures plus the `CHECKSIG` calls its
//!   scripts execute; a block's are the sum over its own and listed TxPoWs.
//! - **Block bytes** count the block's own encoded TxPoW plus every listed TxPoW once.
//! - **A txid applied twice** is checked against every block of the tree on this branch; older
//!   history is covered by the spent inputs.
//! - **Transaction TxPoWs are judged with @BLOCK = the including block's number**, and are
//!   contextually valid only inside a block (a mempool check uses tip + 1).
//! - **Cascade order.** A cascade is listed newest first; the walk of SPEC §6 is run over the
//!   whole list each time new headers arrive, which keeps exactly what one walk over the full
//!   history would keep (tested against a reference).
//! - Script semantics: see [`script`].
//! - **No header sent twice.** Catch-up and sync fetch `Headers`, then block bodies with
//!   `GetBodies` → `Bodies` (message types 17 and 18, added to SPEC §9's list; bodies carry
//!   the witness and listed TxPoWs but not the header the receiver already holds).
//! - **Compact `Headers`.** A header that follows the previous one in a `Headers` list (the
//!   next number, same chain id/version/magic, `parents` as §5 derives them) travels as tag 1 with only
//!   its other fields and is rebuilt by the receiver; others travel whole as tag 0 (a tag 0
//!   that could be tag 1 is refused, so the encoding stays canonical).
//! - **What the wire cannot carry is invalid.** A TxPoW whose body would not decode (e.g. more
//!   than 32 outputs) is refused by validation too, so a local block can never fork us off.
//! - **Checkpoint.** A block at the `checkpoint` height with another id is invalid; a synced
//!   chain must reach that height and hold the id among its tree blocks, cascade headers or
//!   their `parents` links (releases pick checkpoints of high super level).
//! - **Fork inside our tree.** A synced chain may replace ours only if one of our tree blocks
//!   appears among its blocks, cascade headers or their `parents`; otherwise it forks below our
//!   root and counts towards `ChainConflict` (raised from two /16 groups).
//! - **Wallet.** Key i's address is its default script's (`RETURN SIGNEDBY(0x…)`). A payment's
//!   TxPoW is a transaction only (`block_target` zero), mined to the size-scaled minimum (or
//!   `Config::txn_work`). Change goes to the first input's address. Balances: `confirmed` =
//!   the wallet's coins unspent at the tip; `unconfirmed` = mempool outputs to the wallet
//!   (change included); `sendable` = confirmed coins no pending transaction spends. A restore
//!   scans key indexes in batches of 20 until 20 in a row hold no coin. The seed's public
//!   fingerprint (`H("minima/wallet-id/v1", seed)`) ties a data dir's wallet to its seed.
//! - **Bounds on peers' numbers.** A TxPoW, tree block or cascade header numbered above 2^48
//!   or timed above 2^53 ms is invalid ([`chain::MAX_BLOCK_NUMBER`], [`chain::MAX_TIME_MS`]),
//!   so block arithmetic on a peer's numbers cannot overflow; the release build keeps overflow
//!   checks and a panic in the chain actor stops the node with `Event::Fatal`.
//! - **Script costs and caps from genesis** (SPEC-v2 §14.5, v1 language): `SHA3` and HEX
//!   `EQ`/`NEQ` cost bc = max(1, ⌈bytes/64⌉) instructions; `CHECKSIG` sig-ops count as they
//!   run and abort at the TxPoW's or block's budget before verifying; all runs of one TxPoW
//!   may execute `max_txpow_script_ops` (16,384) instructions and one block's
//!   `max_block_script_ops` (262,144) — `Params` fields, not `Magic` (headers are unchanged).
//! - **Refusals remembered.** A block refused for a reason its id settles (after its proof of
//!   work holds: its header against its parent, or its signatures and scripts once its MMR
//!   witness is proven) is remembered (4,096, oldest forgotten); refusals that depend on the
//!   witness or a listed TxPoW sent with it are not.
//! - **Mining waits for a first sync.** A node with peers to reach mines nothing until it holds
//!   a connected peer's announced tip and reaches its claimed weight.
//! - **Anchoring.** Until two /16 groups of peers have shown our tip and an hour has passed
//!   since the first sync, any heavier verified chain is adopted, even one forking below our
//!   tree root; after that such a chain is raised as `ChainConflict` (from two /16 groups, or
//!   after 3 syncs from any). Only checked links count for "forks inside our tree" and the
//!   checkpoint (a cascade header's other `parents` slots are never checked).
//! - **Weight before work.** A sync proves the offered chain heavier than ours from its
//!   verified cascade and its tree headers (links and proof of work) before fetching any
//!   body. A `Hello` claim above 2× the proven weight costs 50 points, 2^16× bans.
//! - **Held blocks.** A peer's block dated over 2 h ahead of our clock (SPEC §5 policy) or
//!   whose parent we lack waits — 64 of each at most, only blocks with their own proof of
//!   work — and is offered again when due or when its parent arrives.
//! - **Reads off the actor.** Peers' read requests are answered from a read-only store
//!   connection; pending transactions are served with stored proofs, rewritten after a reorg
//!   and at a quarter of `proof_window`.
//! - **Pulses.** A pulse mines `pulse_work` hashes on the tip's template at full speed on the
//!   low-priority miner thread; a new tip during a pulse rebuilds the template with the hashes
//!   left. The ledger charges the miner thread's CPU time to the pulse budget.

pub mod chain;
pub mod codec;
pub mod crypto;
pub mod energy;
pub mod entropy;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod mempool;
pub mod miner;
pub mod mmr;
pub mod net;
pub mod node;
pub mod params;
pub mod rpc;
pub mod script;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod types;
pub mod wallet;

/// 256-bit unsigned integer (targets).
pub type U256 = ruint::aliases::U256;
/// 512-bit unsigned integer (intermediate products).
pub type U512 = ruint::aliases::U512;

pub use crypto::Hash;
pub use params::Params;
