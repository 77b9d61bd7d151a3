//! The protocol's chain-facing engine (issue 14): the units that need the chain — the sync
//! manager and its jobs, the inventory and its fetches — behind one entry,
//! `handle(now, Input, &mut impl ChainSink)`, [`Engine::poll`] and [`Engine::poll_timeout`].
//! The node's chain actor owns it and answers its questions at once (no round trip); a QUIC
//! driver (or a simulator) feeds it peers, announcements and answers, and carries out its
//! requests and penalties.
//!
//! Inside, the units hand each other their outputs until none has more: the sync manager's
//! `Start` runs a job, a job's end goes back to the manager, the inventory's `Fetch` starts a
//! fetch, a fetch's end goes back to the inventory, and a block whose parent we lack queues a
//! catch-up. Each peer's connection number comes with its up and down events, so a report
//! about a connection already replaced is ignored (no ghost peer is left in a unit).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::chain::ChainSink;
use super::fetch::{self, Fetches};
use super::inventory::{self, Inventory};
use super::jobs::{self, Config, Jobs};
use super::requests::ReqId;
use super::sync::{self, Job, SyncManager};
use super::Time;
use crate::crypto::Hash;
use crate::net::message::Message;

/// Most ids of one `Inv` looked at.
pub const MAX_INV_TAKEN: usize = 64;

/// What happened, as the driver tells it.
#[derive(Debug, Clone)]
pub enum Input {
    /// A handshake completed on connection `conn` (numbered in registration order).
    PeerUp {
        /// The peer.
        peer: Hash,
        /// Its connection's number.
        conn: u64,
        /// We dialled it.
        outbound: bool,
        /// The tip its `Hello` named.
        tip: Hash,
        /// The weight its `Hello` claimed.
        claim: u128,
        /// Its /16 (/32) group.
        group: Vec<u8>,
    },
    /// Connection `conn` to `peer` closed.
    PeerGone {
        /// The peer.
        peer: Hash,
        /// The connection's number.
        conn: u64,
    },
    /// `peer` announced these ids.
    Inv {
        /// The announcer.
        peer: Hash,
        /// What it announced.
        ids: Vec<Hash>,
    },
    /// The answer to a request (`None`: none came).
    Answer {
        /// The request.
        req: ReqId,
        /// What the peer answered.
        answer: Option<Message>,
    },
    /// The moment [`Engine::poll_timeout`] gave has come.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` to `peer` as a request; answer with [`Input::Answer`] by `timeout`.
    Request {
        /// The peer.
        peer: Hash,
        /// The request's id.
        req: ReqId,
        /// The request.
        msg: Message,
        /// How long to wait.
        timeout: Duration,
    },
    /// Add to the peer's misbehaviour score.
    Penalize {
        /// The peer.
        peer: Hash,
        /// Points.
        points: u32,
        /// What it did.
        why: String,
    },
    /// Ban the peer and cut it off.
    Ban {
        /// The peer.
        peer: Hash,
        /// What it did.
        why: String,
    },
}

#[derive(Debug, Clone)]
struct Peer {
    conn: u64,
    claim: u128,
    group: Vec<u8>,
}

/// The engine (see the module docs).
#[derive(Debug)]
pub struct Engine {
    jobs: Jobs,
    sync: SyncManager,
    inv: Inventory,
    fetches: Fetches,
    peers: BTreeMap<Hash, Peer>,
    out: VecDeque<Output>,
}

impl Engine {
    /// An engine with no peer; an initial sync waits up to `initial_wait` for several.
    pub fn new(cfg: Config, initial_wait: Duration) -> Engine {
        Engine {
            jobs: Jobs::new(cfg),
            sync: SyncManager::new(initial_wait),
            inv: Inventory::new(),
            fetches: Fetches::new(),
            peers: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Connected peers the engine knows.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Ids wanted from announcers.
    pub fn wanted(&self) -> usize {
        self.inv.len()
    }

    /// The sync job running, if any.
    pub fn running_job(&self) -> Option<(Hash, Job)> {
        self.sync.running()
    }

    /// Take an input at `now`, asking `chain` what the units need.
    pub fn handle(&mut self, now: Time, input: Input, chain: &mut impl ChainSink) {
        match input {
            Input::PeerUp { peer, conn, outbound, tip, claim, group } => {
                if self.peers.get(&peer).is_some_and(|p| p.conn > conn) {
                    // A report about a connection a newer one already replaced.
                    return;
                }
                self.peers.insert(peer, Peer { conn, claim, group: group.clone() });
                self.inv.handle(now, inventory::Input::PeerUp { peer, outbound });
                self.sync.handle(now, sync::Input::PeerUp { peer, claim, group: group.clone(), outbound });
                chain.peer_up(group, tip, claim);
                let (genesis, ours, weight) = chain.hello();
                if claim > weight {
                    let at_genesis = genesis == ours;
                    self.sync.handle(now, sync::Input::Wanted { peer, job: Job::CatchUp, at_genesis });
                }
            }
            Input::PeerGone { peer, conn } => {
                if self.peers.get(&peer).is_some_and(|p| p.conn == conn) {
                    self.peers.remove(&peer);
                    self.inv.handle(now, inventory::Input::PeerGone(peer));
                    self.sync.handle(now, sync::Input::PeerGone(peer));
                }
            }
            Input::Inv { peer, ids } => {
                if !self.peers.contains_key(&peer) {
                    return;
                }
                // What the chain lacks is wanted; the inventory decides whom to ask and when.
                // Cheap first: an id already wanted needs no question to the chain.
                let fresh: Vec<Hash> = ids
                    .into_iter()
                    .take(MAX_INV_TAKEN)
                    .filter(|id| self.inv.wants(id) || !chain.has(id))
                    .collect();
                if !fresh.is_empty() {
                    self.inv.handle(now, inventory::Input::Announced { peer, ids: fresh });
                }
            }
            Input::Answer { req, answer } => match req.tag() {
                jobs::REQ_TAG => self.jobs.handle(now, jobs::Input::Answer { req, answer }, chain),
                fetch::REQ_TAG => self.fetches.handle(now, fetch::Input::Answer { req, answer }, chain),
                _ => {}
            },
            Input::Tick => {
                let due = |t: Option<Time>| t.is_some_and(|t| t <= now);
                if due(self.jobs.poll_timeout()) {
                    self.jobs.handle(now, jobs::Input::Tick, chain);
                }
                if due(self.fetches.poll_timeout()) {
                    self.fetches.handle(now, fetch::Input::Tick, chain);
                }
                if due(self.inv.poll_timeout()) {
                    self.inv.handle(now, inventory::Input::Tick);
                }
                if due(self.sync.poll_timeout()) {
                    self.sync.handle(now, sync::Input::Tick);
                }
            }
        }
        self.pump(now, chain);
    }

    /// Hand outputs between the units until none has more.
    fn pump(&mut self, now: Time, chain: &mut impl ChainSink) {
        loop {
            let mut moved = false;
            while let Some(sync::Output::Start { peer, job }) = self.sync.poll() {
                moved = true;
                // A peer gone meanwhile: its job's first request fails at once and it ends.
                let (claim, group) =
                    self.peers.get(&peer).map(|p| (p.claim, p.group.clone())).unwrap_or_default();
                self.jobs.handle(now, jobs::Input::Start { peer, job, claim, group }, chain);
            }
            while let Some(o) = self.jobs.poll() {
                moved = true;
                match o {
                    jobs::Output::Request { peer, req, msg, timeout } => {
                        self.out.push_back(Output::Request { peer, req, msg, timeout })
                    }
                    jobs::Output::Penalize { peer, points, why } => {
                        self.out.push_back(Output::Penalize { peer, points, why })
                    }
                    jobs::Output::Ban { peer, why } => self.out.push_back(Output::Ban { peer, why }),
                    jobs::Output::Ended { peer, then, at_genesis } => {
                        self.sync.handle(now, sync::Input::Ended { peer, then, at_genesis })
                    }
                }
            }
            while let Some(inventory::Output::Fetch { peer, id }) = self.inv.poll() {
                moved = true;
                self.fetches.handle(now, fetch::Input::Start { peer, id }, chain);
            }
            while let Some(o) = self.fetches.poll() {
                moved = true;
                match o {
                    fetch::Output::Request { peer, req, msg, timeout } => {
                        self.out.push_back(Output::Request { peer, req, msg, timeout })
                    }
                    fetch::Output::Penalize { peer, points, why } => {
                        self.out.push_back(Output::Penalize { peer, points, why })
                    }
                    fetch::Output::Ban { peer, why } => self.out.push_back(Output::Ban { peer, why }),
                    fetch::Output::Done(i) => self.inv.handle(now, i),
                    fetch::Output::CatchUp(peer) => {
                        let (genesis, tip, _) = chain.hello();
                        let wanted =
                            sync::Input::Wanted { peer, job: Job::CatchUp, at_genesis: genesis == tip };
                        self.sync.handle(now, wanted);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next: the earliest deadline of any unit.
    pub fn poll_timeout(&self) -> Option<Time> {
        [
            self.jobs.poll_timeout(),
            self.fetches.poll_timeout(),
            self.inv.poll_timeout(),
            self.sync.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    use super::super::testkit::{peer_chain, serve, t, Ours};
    use super::*;
    use crate::net::message::BlockData;

    const A: Hash = Hash([1; 32]);
    const B: Hash = Hash([2; 32]);

    fn cfg() -> Config {
        Config { min_chain_weight: 0, tree_blocks: 72, max_local_future_ms: 7_200_000 }
    }

    fn up(peer: Hash, conn: u64, outbound: bool, claim: u128) -> Input {
        Input::PeerUp { peer, conn, outbound, tip: Hash::ZERO, claim, group: vec![10, conn as u8] }
    }

    fn requests(e: &mut Engine) -> Vec<(Hash, ReqId, Message)> {
        let mut v = vec![];
        while let Some(o) = e.poll() {
            match o {
                Output::Request { peer, req, msg, .. } => v.push((peer, req, msg)),
                other => panic!("unexpected {other:?}"),
            }
        }
        v
    }

    #[test]
    fn an_announced_block_one_peer_fails_to_deliver_comes_from_the_next() {
        let peer = peer_chain(6);
        let mut ours = Ours::new(peer.params.clone());
        for (txpow, witness) in &peer.blocks()[..5] {
            let b = BlockData { txpow: txpow.clone(), witness: witness.clone(), listed: vec![] };
            assert_eq!(ours.submit(b), crate::net::proto::chain::Submitted::Accepted);
        }
        let mut e = Engine::new(cfg(), Duration::from_secs(5));
        let claim = ours.chain.weight();
        e.handle(t(0), up(B, 1, false, claim), &mut ours);
        e.handle(t(0), up(A, 2, true, claim), &mut ours);
        assert!(requests(&mut e).is_empty(), "no peer claims more: nothing to sync");
        let tip = peer.chain.tip_id();
        e.handle(t(1), Input::Inv { peer: B, ids: vec![tip] }, &mut ours);
        e.handle(t(1), Input::Inv { peer: A, ids: vec![tip] }, &mut ours);
        // One fetch of an id at a time: B, the first announcer, is asked; A waits its turn.
        let asked = requests(&mut e);
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (first, req, msg) = asked[0].clone();
        assert_eq!(msg, Message::GetBlocks(vec![tip]));
        // The first announcer fails to deliver (an empty answer).
        e.handle(t(2), Input::Answer { req, answer: Some(Message::Blocks(vec![])) }, &mut ours);
        let asked = requests(&mut e);
        assert_eq!(asked.len(), 1);
        let (same, req, msg) = asked[0].clone();
        assert_eq!((same, &msg), (first, &Message::GetTxPow(vec![tip])), "not a block: a transaction?");
        e.handle(t(2), Input::Answer { req, answer: None }, &mut ours);
        let asked = requests(&mut e);
        let (next, req, msg) = asked[0].clone();
        assert_ne!(next, first, "the next announcer is asked");
        e.handle(t(3), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        assert!(requests(&mut e).is_empty());
        assert_eq!(ours.chain.tip_id(), tip);
        assert_eq!(e.wanted(), 0);
    }

    #[test]
    fn a_heavier_claim_starts_a_catch_up_and_a_replaced_connection_leaves_no_ghost() {
        let peer = peer_chain(20);
        let mut ours = Ours::new(peer.params.clone());
        let mut e = Engine::new(cfg(), Duration::from_secs(5));
        e.handle(t(0), up(A, 1, true, peer.chain.weight()), &mut ours);
        let asked = requests(&mut e);
        assert!(matches!(asked[..], [(A, _, Message::GetHeaders { .. })]), "{asked:?}");
        // A reconnects (connection 2), then connection 1's late departure arrives.
        e.handle(t(1), up(A, 2, true, peer.chain.weight()), &mut ours);
        e.handle(t(1), Input::PeerGone { peer: A, conn: 1 }, &mut ours);
        assert_eq!(e.peer_count(), 1, "the current connection's peer stays");
        // A stale PeerUp of connection 1 does not replace connection 2 either.
        e.handle(t(1), up(A, 1, true, 0), &mut ours);
        e.handle(t(1), Input::PeerGone { peer: A, conn: 2 }, &mut ours);
        assert_eq!(e.peer_count(), 0);
        // The running job goes on to its answer: the catch-up completes from the answers.
        let (_, req, msg) = asked[0].clone();
        e.handle(t(2), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        while let Some(Output::Request { req, msg, .. }) = e.poll() {
            e.handle(t(2), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        }
        assert_eq!(ours.chain.tip_id(), peer.chain.tip_id());
        assert_eq!(e.running_job(), None);
        // Announcements from a peer not connected are not taken.
        e.handle(t(3), Input::Inv { peer: B, ids: vec![Hash([9; 32])] }, &mut ours);
        assert_eq!(e.wanted(), 0);
    }
}
