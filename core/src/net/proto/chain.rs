//! The chain side of the protocol: what the protocol's units ask of the node's chain, mempool
//! and store ([`ChainSink`]), answered at once by whoever owns them (the node's engine, a
//! simulated node), and the answers' types.

use std::net::SocketAddr;

use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::net::message::{BlockData, Message, RelayTxPow};
use crate::types::{CoinRecord, TxHeader};

/// What a received block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Stored (or already known).
    Accepted,
    /// Its parent is unknown: catch up.
    UnknownParent,
    /// Valid-looking but useless (a fork below our tree root): ignored, not punished.
    Stale,
    /// It lists transaction TxPoWs we lack (and were not sent with it): fetch them, offer again.
    Pending(Vec<Hash>),
    /// Dated more than 2 h ahead of our clock (SPEC §5's policy): held and offered again
    /// when due; not the sender's fault.
    Future,
    /// Refused.
    Invalid(String),
}

/// Why a relayed transaction was refused, and how much that counts against the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRefusal {
    /// Score added to the sender (0 for an honest race such as a proof that went stale).
    pub penalty: u32,
    /// What was wrong.
    pub reason: String,
    /// Whether the transaction is worth fetching again.
    pub again: Again,
}

/// Whether a refused transaction is worth fetching again (its id does not cover the proofs
/// sent with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// No: the transaction itself is refused, or we hold it or a conflicting one.
    No,
    /// Later, with fresh proofs: they named a block we lack yet, or went stale on the way.
    Later,
    /// From another sender: these proofs were wrong, the transaction may not be.
    Elsewhere,
}

/// How a sync from a peer's cascade ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The candidate chain replaced ours.
    Adopted,
    /// It was not heavier than ours: nothing changed.
    NotHeavier,
    /// It broke a rule of initial sync (`min_chain_weight`, `checkpoint`): refused.
    Refused(String),
    /// It forks below our tree root: refused, and counted towards a `ChainConflict`.
    Conflict,
}

/// A sync whose cascade verified: what its headers must prove before any body is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStart {
    /// The candidate's tree root.
    pub root: Hash,
    /// Weight its verified cascade and root prove.
    pub proven: u128,
    /// Our chain's weight.
    pub ours: u128,
    /// Most tree blocks a candidate may bring.
    pub max_blocks: u64,
}

/// Why a sync step was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFault {
    /// What the peer sent is invalid: it is banned.
    Invalid(String),
    /// Not the peer's doing (our storage failed; the implementor raises that): the sync ends
    /// quietly.
    Ours(String),
}

impl std::fmt::Display for SyncFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncFault::Invalid(e) | SyncFault::Ours(e) => f.write_str(e),
        }
    }
}

/// The chain side, as the protocol's units see it. Every call answers at once: the engine owns
/// the chain, so there is no round trip. A storage failure is the implementor's to raise (the
/// node stops); the unit is answered as if the input had been refused quietly.
pub trait ChainSink {
    /// (genesis, tip, weight) of our best chain.
    fn hello(&mut self) -> (Hash, Hash, u128);
    /// Whether a block or transaction is known (held orphans do not count).
    fn has(&mut self, id: &Hash) -> bool;
    /// Best-chain headers after the first locator id we share (at most `max`, capped at
    /// [`crate::net::message::MAX_HEADERS`]).
    fn headers(&mut self, locator: &[Hash], max: u32) -> Vec<TxHeader>;
    /// Our locator: best-chain ids from the tip back, thinning out.
    fn locator(&mut self) -> Vec<Hash>;
    /// A block from a peer.
    fn submit(&mut self, block: BlockData) -> Submitted;
    /// A transaction TxPoW from a peer, with its input proofs.
    fn submit_tx(&mut self, tx: RelayTxPow) -> Result<(), TxRefusal>;
    /// Check coin proofs a peer served against our chain.
    fn check_coin_proofs(&mut self, proofs: &[(CoinRecord, MmrProof)]) -> Result<(), TxRefusal>;
    /// Start a sync from a peer's cascade (verified end to end into a candidate chain).
    fn sync_begin(&mut self, cascade: Message) -> Result<SyncStart, SyncFault>;
    /// Tree blocks for the candidate, oldest first; `target` is the height the peer's headers
    /// reach (for progress events).
    fn sync_blocks(&mut self, blocks: Vec<BlockData>, target: u64) -> Result<(), SyncFault>;
    /// Finish the sync (adopt the candidate if heavier and within SPEC §5's rules); `group` is
    /// the peer's /16 group.
    fn sync_end(&mut self, group: Vec<u8>) -> SyncOutcome;
    /// A handshake completed: the peer's /16 group, its tip and claimed weight.
    fn peer_up(&mut self, group: Vec<u8>, tip: Hash, claim: u128);
    /// Remember an address we reached.
    fn record_peer(&mut self, addr: SocketAddr);
    /// Persist these outbound peers as the anchors dialled first after a restart.
    fn anchors(&mut self, addrs: Vec<SocketAddr>);
    /// Wall-clock milliseconds since the Unix epoch (a simulated node's is simulated).
    fn clock_ms(&mut self) -> u64;
}
