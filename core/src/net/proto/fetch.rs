//! Fetches of announced ids as state machines (issue 14): the inventory names whom to ask for
//! which id ([`super::inventory::Output::Fetch`]); a fetch asks that peer for it as a block
//! (`GetBlocks`), else as a pending transaction (`GetTxPow`), offers what comes to the chain,
//! fetches the transactions a block lists that we lack, and ends with what the inventory must
//! hear: settled, failed (ask the next announcer) or a race.
//!
//! Sans-I/O, like [`super::jobs`]: the chain answers at once through [`ChainSink`]; each
//! question to the peer is a [`ToPeer::Request`] with an id and a timeout. Each fetch asks at
//! most two questions, so it ends within [`FETCH_TIMEOUT`] + [`MISSING_TIMEOUT`], before the
//! inventory's own [`super::inventory::IN_FLIGHT_LIMIT`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::chain::{Again, ChainSink, Submitted};
use super::inventory::{Input as InvInput, FETCH_TIMEOUT};
use super::requests::{ReqId, Requests, ToPeer};
use super::Time;
use crate::crypto::Hash;
use crate::net::message::{BlockData, Message, MAX_GET};

/// How long a block's missing transactions are waited for.
pub const MISSING_TIMEOUT: Duration = Duration::from_secs(30);
/// Score for blocks sent that nobody asked for.
pub const UNASKED_PENALTY: u32 = 10;
/// Tag of this unit's request ids.
pub const REQ_TAG: u8 = 2;

/// What happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// Fetch `id` from `peer` (the inventory's [`super::inventory::Output::Fetch`]).
    Start {
        /// Whom to ask.
        peer: Hash,
        /// What.
        id: Hash,
    },
    /// The answer to a request (`None`: none came).
    Answer {
        /// The request.
        req: ReqId,
        /// What the peer answered.
        answer: Option<Message>,
    },
    /// The moment [`Fetches::poll_timeout`] gave has come.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ask the peer, or score it.
    Peer(ToPeer),
    /// Tell the inventory how the fetch ended.
    Done(InvInput),
    /// A block from `peer` has a parent we lack: catch up with it.
    CatchUp(Hash),
}

#[derive(Debug)]
enum State {
    /// Asked `GetBlocks([id])`.
    Block,
    /// Asked `GetTxPow([id])`: not a block the peer holds.
    Tx,
    /// Asked the transactions this block lists that we lack.
    Missing(Box<BlockData>),
}

#[derive(Debug)]
struct Fetch {
    peer: Hash,
    id: Hash,
    state: State,
}

/// The fetches running, by request.
#[derive(Debug)]
pub struct Fetches {
    requests: Requests<()>,
    running: BTreeMap<ReqId, Fetch>,
    out: VecDeque<Output>,
}

impl Default for Fetches {
    fn default() -> Self {
        Fetches { requests: Requests::tagged(REQ_TAG), running: BTreeMap::new(), out: VecDeque::new() }
    }
}

impl Fetches {
    /// No fetch running.
    pub fn new() -> Fetches {
        Fetches::default()
    }

    /// Fetches running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether none is running.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Take an input at `now`, offering what comes to `chain`.
    pub fn handle(&mut self, now: Time, input: Input, chain: &mut impl ChainSink) {
        match input {
            Input::Start { peer, id } => {
                if chain.has(&id) {
                    // Ours by now.
                    self.out.push_back(Output::Done(InvInput::Settled(id)));
                    return;
                }
                self.ask(
                    now,
                    Fetch { peer, id, state: State::Block },
                    Message::GetBlocks(vec![id]),
                    FETCH_TIMEOUT,
                );
            }
            Input::Answer { req, answer } => {
                if self.requests.close(req).is_some() {
                    if let Some(f) = self.running.remove(&req) {
                        self.answered(now, f, answer, chain);
                    }
                }
            }
            Input::Tick => {
                for (req, _, ()) in self.requests.expired(now) {
                    if let Some(f) = self.running.remove(&req) {
                        self.answered(now, f, None, chain);
                    }
                }
            }
        }
    }

    fn ask(&mut self, now: Time, f: Fetch, msg: Message, timeout: Duration) {
        let req = self.requests.open(now, f.peer, timeout, ());
        self.out.push_back(Output::Peer(ToPeer::Request { peer: f.peer, req, msg, timeout }));
        self.running.insert(req, f);
    }

    fn done(&mut self, input: InvInput) {
        self.out.push_back(Output::Done(input));
    }

    fn answered(&mut self, now: Time, f: Fetch, answer: Option<Message>, chain: &mut impl ChainSink) {
        let (peer, id) = (f.peer, f.id);
        let failed = InvInput::Failed { peer, id };
        match (f.state, answer) {
            (State::Block, Some(Message::Blocks(blocks))) if blocks.is_empty() => {
                // Not a block the peer holds: a pending transaction.
                let f = Fetch { peer, id, state: State::Tx };
                self.ask(now, f, Message::GetTxPow(vec![id]), FETCH_TIMEOUT);
            }
            (State::Block, Some(Message::Blocks(blocks))) => {
                // Only the block asked for is looked at: others in the answer are dropped
                // unread and cost the sender.
                let n = blocks.len();
                let Some(b) = blocks.into_iter().find(|b| b.txpow.id() == id) else {
                    self.penalize(peer, UNASKED_PENALTY, "blocks nobody asked for");
                    return self.done(failed);
                };
                if n > 1 {
                    self.penalize(peer, UNASKED_PENALTY, "blocks nobody asked for");
                }
                self.offer(now, peer, id, b, chain, true);
            }
            (State::Tx, Some(Message::TxPow(ts))) => {
                // One without proofs is one its sender holds only as listed by a block (it
                // left the mempool in between): not delivered, no fault.
                let Some(t) =
                    ts.into_iter().find(|(t, p)| t.id() == id && p.len() == t.body.transaction.inputs.len())
                else {
                    return self.done(failed);
                };
                let end = match chain.submit_tx(t) {
                    Ok(()) => InvInput::Settled(id),
                    Err(e) => {
                        self.penalize(peer, e.penalty, &format!("relayed transaction: {}", e.reason));
                        match e.again {
                            Again::No => InvInput::Settled(id),
                            // A race (a proof against a block we lack yet, or one gone stale).
                            Again::Later => InvInput::Race { peer, id },
                            // This sender's proofs were wrong; another's may not be.
                            Again::Elsewhere => failed,
                        }
                    }
                };
                self.done(end);
            }
            (State::Missing(mut b), Some(Message::TxPow(ts))) => {
                b.listed.extend(ts.into_iter().map(|(t, _)| t));
                self.offer(now, peer, id, *b, chain, false);
            }
            // No answer (an error, a timeout, a closed connection), or one of the wrong kind:
            // ask the next announcer; nothing here is misbehaviour.
            _ => self.done(failed),
        }
    }

    /// Offer a block to the chain; if it lists transactions we lack, fetch them from the peer
    /// (once) and offer it again.
    fn offer(
        &mut self,
        now: Time,
        peer: Hash,
        id: Hash,
        b: BlockData,
        chain: &mut impl ChainSink,
        first: bool,
    ) {
        let kept = b.clone();
        match chain.submit(b) {
            Submitted::Pending(missing) if first => {
                let ids = missing.into_iter().take(MAX_GET).collect();
                let f = Fetch { peer, id, state: State::Missing(Box::new(kept)) };
                self.ask(now, f, Message::GetTxPow(ids), MISSING_TIMEOUT);
            }
            Submitted::Pending(m) => {
                self.ban(peer, format!("lists {} TxPoWs its sender cannot supply", m.len()));
                self.done(InvInput::Failed { peer, id });
            }
            Submitted::UnknownParent => {
                // Queued behind a running job; one per peer.
                self.out.push_back(Output::CatchUp(peer));
                self.done(InvInput::Settled(id));
            }
            Submitted::Invalid(e) => {
                self.ban(peer, format!("invalid block: {e}"));
                // What it sent with the block (witness, listed TxPoWs) is not covered by the
                // id: another announcer's copy may be valid.
                self.done(InvInput::Failed { peer, id });
            }
            _ => self.done(InvInput::Settled(id)),
        }
    }

    fn penalize(&mut self, peer: Hash, points: u32, why: &str) {
        if points > 0 {
            self.out.push_back(Output::Peer(ToPeer::Penalize { peer, points, why: why.into() }));
        }
    }

    fn ban(&mut self, peer: Hash, why: String) {
        self.out.push_back(Output::Peer(ToPeer::Ban { peer, why }));
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next: the earliest request deadline.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.requests.next_deadline()
    }
}
