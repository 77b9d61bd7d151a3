//! Inventory (issue 14's relay that loses nothing): which announced blocks and transactions
//! we still want, who announced each, and whom to ask next.
//!
//! - **One fetch of an id at a time.** Each wanted id waits in the queue of one announcer,
//!   chosen among those not yet tried: outbound peers first (an attacker cannot place them),
//!   then the least loaded; a peer runs [`MAX_IN_FLIGHT_PER_PEER`] fetches at once, oldest
//!   first. A peer that does not deliver (an empty answer, an error, or no end by
//!   [`IN_FLIGHT_LIMIT`]) passes the id to the next announcer, so an announced block or
//!   transaction one peer fails to deliver is fetched from another. An id waiting on a busy
//!   peer moves to an announcer with room as soon as one announces it.
//! - **A transaction refused as a race** (its proofs name a block we lack yet, or went stale
//!   on the way) is asked of its other announcers; when all were asked, of all of them again
//!   after [`RACE_RETRY`], at most [`MAX_RACE_RETRIES`] times.
//! - **Bounded, and fair under flooding:** every (peer, id) announcement is charged to the
//!   peer, [`MAX_WANTS_PER_PEER`] at most; [`MAX_WANTS`] ids in all. When full, an id only
//!   inbound peers announced gives way, taken from the inbound peer charged most: always to
//!   an outbound peer's announcement (inbound identities cost an attacker nothing; what our
//!   outbound peers announce always gets in), to an inbound one if that peer is charged more
//!   than one over the newcomer. [`MAX_ANNOUNCERS`] announcers per id, a failed one giving
//!   way to a newcomer and an inbound one to an outbound peer; an id is given up
//!   [`WANT_LIFETIME`] after it was first announced.
//! - Every input costs O(log n) per id and peer it touches (a departing peer touches what it
//!   announced, 512 ids at most), except an eviction, which sorts the peers and looks at the
//!   ids of at most 8 of them.
//!
//! Sans-I/O: the driver feeds [`Input`]s (announcements only for ids the chain does not
//! hold), carries out [`Output::Fetch`], and ticks at [`Inventory::poll_timeout`]. Nothing here
//! punishes a peer: one that cannot deliver what it announced may have pruned it since.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::Time;
use crate::crypto::Hash;

/// Most ids wanted at once.
pub const MAX_WANTS: usize = 4_096;
/// Most (peer, id) announcements one peer has charged at once.
pub const MAX_WANTS_PER_PEER: usize = 512;
/// How many of the most charged inbound peers an eviction looks through.
const EVICTION_CANDIDATES: usize = 8;
/// Most announcers remembered per id.
pub const MAX_ANNOUNCERS: usize = 8;
/// Most fetches in flight from one peer.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 8;
/// How long the driver waits for each answer of a fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// A fetch not ended this long after it began (answers, then the chain's verdict) passes the
/// id to the next announcer. The driver ends its fetch task by then too.
pub const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(60);
/// A transaction refused as a race by every announcer is asked for again this long after.
pub const RACE_RETRY: Duration = Duration::from_secs(30);
/// How many times a transaction refused as a race is asked for again.
pub const MAX_RACE_RETRIES: u8 = 2;
/// An id still not delivered this long after its first announcement is given up.
pub const WANT_LIFETIME: Duration = Duration::from_secs(300);

/// What happened, as the driver tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A handshake completed; `outbound`: we dialled it (preferred as a source).
    PeerUp {
        /// The peer.
        peer: Hash,
        /// We dialled it.
        outbound: bool,
    },
    /// `peer` disconnected: its announcements and fetches go to the others.
    PeerGone(Hash),
    /// `peer` announced `ids` that the chain does not hold.
    Announced {
        /// The announcer.
        peer: Hash,
        /// The ids, in the order announced (the driver caps how many of one `Inv`).
        ids: Vec<Hash>,
    },
    /// The id is ours now, or refused for good (invalid whoever sends it): settled.
    Settled(Hash),
    /// `peer` did not deliver `id` (an empty answer, an error, or what it sent was wrong in
    /// a way another sender's copy may not be): ask the next announcer.
    Failed {
        /// Who was asked.
        peer: Hash,
        /// What.
        id: Hash,
    },
    /// The transaction `id` from `peer` was refused as a race.
    Race {
        /// Who sent it.
        peer: Hash,
        /// What.
        id: Hash,
    },
    /// The moment [`Inventory::poll_timeout`] gave has come.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ask `peer` for `id` (a block, else a transaction), unless the chain holds it by now;
    /// end with [`Input::Settled`], [`Input::Failed`] or [`Input::Race`].
    Fetch {
        /// Whom to ask.
        peer: Hash,
        /// What.
        id: Hash,
    },
}

/// Timer kinds: a state's (in flight, resting) and a want's lifetime.
const STATE_TIMER: u8 = 0;
const LIFETIME_TIMER: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announcer {
    peer: Hash,
    outbound: bool,
    tried: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between two steps (no queue, no timer).
    Idle,
    /// In this peer's queue.
    Queued(Hash),
    /// Being fetched from this peer, until the deadline.
    InFlight(Hash, Time),
    /// Every announcer refused it as a race: asked again from this moment.
    Resting(Time),
}

#[derive(Debug, Clone)]
struct Want {
    seq: u64,
    first: Time,
    announcers: Vec<Announcer>,
    state: State,
    races: u8,
}

#[derive(Debug, Default)]
struct Peer {
    outbound: bool,
    in_flight: usize,
    /// Ids waiting for this peer, oldest first (by arrival number).
    queue: BTreeSet<(u64, Hash)>,
    /// Ids this peer announced and is charged for.
    charged: BTreeSet<Hash>,
}

/// The inventory (see the module docs).
#[derive(Debug, Default)]
pub struct Inventory {
    wants: BTreeMap<Hash, Want>,
    peers: BTreeMap<Hash, Peer>,
    /// (moment, kind, id): in-flight deadlines and rest ends (kind 0), lifetimes (kind 1).
    timers: BTreeSet<(Time, u8, Hash)>,
    seq: u64,
    out: VecDeque<Output>,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Ids wanted.
    pub fn len(&self) -> usize {
        self.wants.len()
    }

    /// Whether nothing is wanted.
    pub fn is_empty(&self) -> bool {
        self.wants.is_empty()
    }

    /// Whether `id` is wanted (announced, not yet settled).
    pub fn wants(&self, id: &Hash) -> bool {
        self.wants.contains_key(id)
    }

    /// Take an input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::PeerUp { peer, outbound } => {
                self.peers.entry(peer).or_default().outbound = outbound;
            }
            Input::PeerGone(peer) => self.peer_gone(now, peer),
            Input::Announced { peer, ids } => {
                for id in ids {
                    self.announced(now, peer, id);
                }
            }
            Input::Settled(id) => self.settle(now, &id),
            Input::Failed { peer, id } => {
                if self.fetch_ended(now, &id, peer) {
                    self.place(now, id);
                }
            }
            Input::Race { peer, id } => {
                if self.fetch_ended(now, &id, peer) {
                    self.race(now, id);
                }
            }
            Input::Tick => self.expire(now),
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next (`None`: only on other inputs).
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.first().map(|t| t.0)
    }

    fn set_state(&mut self, id: &Hash, state: State) {
        let Some(w) = self.wants.get_mut(id) else { return };
        if let State::InFlight(_, t) | State::Resting(t) = w.state {
            self.timers.remove(&(t, STATE_TIMER, *id));
        }
        if let State::InFlight(_, t) | State::Resting(t) = state {
            self.timers.insert((t, STATE_TIMER, *id));
        }
        w.state = state;
    }

    fn announced(&mut self, now: Time, peer: Hash, id: Hash) {
        // Only registered peers announce (an `Inv` read before its peer left is dropped).
        let Some(p) = self.peers.get(&peer) else { return };
        if p.charged.contains(&id) || p.charged.len() >= MAX_WANTS_PER_PEER {
            return;
        }
        let me = Announcer { peer, outbound: p.outbound, tried: false };
        let room = p.in_flight < MAX_IN_FLIGHT_PER_PEER;
        if let Some(w) = self.wants.get_mut(&id) {
            if w.announcers.len() >= MAX_ANNOUNCERS {
                // A failed announcer gives way; else an inbound one to an outbound peer.
                let holds = |a: &Announcer| matches!(w.state, State::Queued(q) | State::InFlight(q, _) if q == a.peer);
                let slot = w.announcers.iter().rposition(|a| a.tried && !holds(a)).or_else(|| {
                    me.outbound.then(|| w.announcers.iter().rposition(|a| !a.outbound && !holds(a))).flatten()
                });
                let Some(i) = slot else { return };
                let old = w.announcers.remove(i);
                if let Some(op) = self.peers.get_mut(&old.peer) {
                    op.charged.remove(&id);
                }
            }
            w.announcers.push(me);
            let queued_on = match w.state {
                State::Queued(q) => Some((q, w.seq)),
                _ => None,
            };
            if let Some(p) = self.peers.get_mut(&peer) {
                p.charged.insert(id);
            }
            // Waiting on a busy peer: move to this one if it has room.
            if let Some((q, seq)) = queued_on.filter(|_| room) {
                if let Some(qp) = self.peers.get_mut(&q) {
                    qp.queue.remove(&(seq, id));
                }
                self.set_state(&id, State::Idle);
                self.place(now, id);
            }
            return;
        }
        if self.wants.len() >= MAX_WANTS && !self.evict_for(now, peer) {
            return;
        }
        self.seq += 1;
        let w = Want { seq: self.seq, first: now, announcers: vec![me], state: State::Idle, races: 0 };
        self.wants.insert(id, w);
        self.timers.insert((now + WANT_LIFETIME, LIFETIME_TIMER, id));
        if let Some(p) = self.peers.get_mut(&peer) {
            p.charged.insert(id);
        }
        self.place(now, id);
    }

    /// Make room for an announcement of `newcomer`: drop an id only inbound peers announced,
    /// taken from the inbound peer charged most — always for an outbound newcomer (what our
    /// own outbound peers announce always gets in: inbound identities cost an attacker
    /// nothing), for an inbound one only if that peer is charged more than one over it.
    /// Whether the id is queued or being fetched does not matter.
    fn evict_for(&mut self, now: Time, newcomer: Hash) -> bool {
        let Some(me) = self.peers.get(&newcomer) else { return false };
        let (mine, outbound) = (me.charged.len(), me.outbound);
        let mut heavy: Vec<(usize, Hash)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.outbound && (outbound || p.charged.len() > mine + 1))
            .map(|(id, p)| (p.charged.len(), *id))
            .collect();
        heavy.sort_unstable_by(|a, b| b.cmp(a));
        let (wants, peers) = (&self.wants, &self.peers);
        // The heaviest few inbound peers, until one holds an id no outbound peer announced.
        let victim = heavy.iter().take(EVICTION_CANDIDATES).find_map(|(_, id)| {
            peers
                .get(id)?
                .charged
                .iter()
                .find(|x| wants.get(x).is_some_and(|w| w.announcers.iter().all(|a| !a.outbound)))
        });
        match victim.copied() {
            Some(v) => {
                self.settle(now, &v);
                true
            }
            None => false,
        }
    }

    /// Queue `id` on its best untried announcer (one with room first, then outbound, then
    /// least loaded, then first announced), starting the fetch at once if that peer has room.
    /// With none left, it is given up.
    fn place(&mut self, now: Time, id: Hash) {
        let Some(w) = self.wants.get(&id) else { return };
        let best = w
            .announcers
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.tried)
            .filter_map(|(i, a)| self.peers.get(&a.peer).map(|p| (i, a, p)))
            .min_by_key(|(i, a, p)| {
                (p.in_flight >= MAX_IN_FLIGHT_PER_PEER, !a.outbound, p.in_flight + p.queue.len(), *i)
            })
            .map(|(_, a, _)| a.peer);
        let Some(peer) = best else {
            self.settle(now, &id);
            return;
        };
        let seq = w.seq;
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.in_flight < MAX_IN_FLIGHT_PER_PEER {
            p.in_flight += 1;
            self.start(now, id, peer);
        } else {
            p.queue.insert((seq, id));
            self.set_state(&id, State::Queued(peer));
        }
    }

    /// Fetch `id` from `peer` (its slot already counted).
    fn start(&mut self, now: Time, id: Hash, peer: Hash) {
        if let Some(a) =
            self.wants.get_mut(&id).and_then(|w| w.announcers.iter_mut().find(|a| a.peer == peer))
        {
            a.tried = true;
        }
        self.set_state(&id, State::InFlight(peer, now + IN_FLIGHT_LIMIT));
        self.out.push_back(Output::Fetch { peer, id });
    }

    /// The fetch of `id` from `peer` ended: free the slot. Returns whether that fetch was
    /// the one in flight.
    fn fetch_ended(&mut self, now: Time, id: &Hash, peer: Hash) -> bool {
        match self.wants.get(id).map(|w| w.state) {
            Some(State::InFlight(p, _)) if p == peer => {
                self.set_state(id, State::Idle);
                self.free_slot(now, peer);
                true
            }
            _ => false,
        }
    }

    /// One of `peer`'s fetches ended: start its oldest queued id.
    fn free_slot(&mut self, now: Time, peer: Hash) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.in_flight = p.in_flight.saturating_sub(1);
        if let Some((_, next)) = p.queue.pop_first() {
            p.in_flight += 1;
            self.start(now, next, peer);
        }
    }

    fn race(&mut self, now: Time, id: Hash) {
        let Some(w) = self.wants.get_mut(&id) else { return };
        if w.announcers.iter().any(|a| !a.tried) {
            self.place(now, id);
            return;
        }
        if w.races >= MAX_RACE_RETRIES {
            self.settle(now, &id);
            return;
        }
        w.races += 1;
        for a in w.announcers.iter_mut() {
            a.tried = false;
        }
        self.set_state(&id, State::Resting(now + RACE_RETRY));
    }

    fn peer_gone(&mut self, now: Time, peer: Hash) {
        let Some(p) = self.peers.remove(&peer) else { return };
        for id in p.charged {
            let Some(w) = self.wants.get_mut(&id) else { continue };
            w.announcers.retain(|a| a.peer != peer);
            match w.state {
                State::Queued(q) | State::InFlight(q, _) if q == peer => {
                    self.set_state(&id, State::Idle);
                    self.place(now, id);
                }
                _ if w.announcers.is_empty() => self.settle(now, &id),
                _ => {}
            }
        }
    }

    fn settle(&mut self, now: Time, id: &Hash) {
        let Some(w) = self.wants.get(id) else { return };
        let (first, state, seq) = (w.first, w.state, w.seq);
        self.set_state(id, State::Idle);
        let Some(w) = self.wants.remove(id) else { return };
        self.timers.remove(&(first + WANT_LIFETIME, LIFETIME_TIMER, *id));
        for a in &w.announcers {
            if let Some(p) = self.peers.get_mut(&a.peer) {
                p.charged.remove(id);
            }
        }
        match state {
            State::Queued(q) => {
                if let Some(p) = self.peers.get_mut(&q) {
                    p.queue.remove(&(seq, *id));
                }
            }
            State::InFlight(q, _) => self.free_slot(now, q),
            State::Idle | State::Resting(_) => {}
        }
    }

    /// Deadlines due: late fetches pass to the next announcer, rests end, lifetimes end.
    fn expire(&mut self, now: Time) {
        while let Some(&(t, kind, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, kind, id));
            let Some((first, state)) = self.wants.get(&id).map(|w| (w.first, w.state)) else { continue };
            if now.saturating_duration_since(first) >= WANT_LIFETIME {
                self.settle(now, &id);
                continue;
            }
            match state {
                State::InFlight(peer, d) if d == t && self.fetch_ended(now, &id, peer) => self.place(now, id),
                State::Resting(r) if r == t => {
                    self.set_state(&id, State::Idle);
                    self.place(now, id);
                }
                _ => {}
            }
        }
    }
}

super::machine!(Inventory, Input, Output);

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    /// Distinct ids that sort before every `h(n)` with n ≥ 1 (an attacker grinds low ids).
    fn low(i: u32) -> Hash {
        let mut b = [0u8; 32];
        b[28..].copy_from_slice(&i.to_be_bytes());
        Hash(b)
    }

    fn t(ms: u64) -> Time {
        Time::from_origin(Duration::from_millis(ms))
    }

    fn drain(inv: &mut Inventory) -> Vec<Output> {
        std::iter::from_fn(|| inv.poll()).collect()
    }

    fn fetch(peer: u8, id: Hash) -> Output {
        Output::Fetch { peer: h(peer), id }
    }

    fn with_peers(peers: &[(u8, bool)]) -> Inventory {
        let mut inv = Inventory::new();
        for (p, outbound) in peers {
            inv.handle(t(0), Input::PeerUp { peer: h(*p), outbound: *outbound });
        }
        inv
    }

    fn announce(inv: &mut Inventory, now: Time, peer: u8, ids: Vec<Hash>) {
        inv.handle(now, Input::Announced { peer: h(peer), ids });
    }

    /// Two peers announce one block: it is fetched once, from the first; when the first fails
    /// to deliver, from the second.
    #[test]
    fn what_one_peer_fails_to_deliver_is_fetched_from_another() {
        let mut inv = with_peers(&[(1, false), (2, false)]);
        announce(&mut inv, t(0), 1, vec![h(50)]);
        announce(&mut inv, t(5), 2, vec![h(50)]);
        assert_eq!(drain(&mut inv), vec![fetch(1, h(50))], "one fetch at a time");
        inv.handle(t(10), Input::Failed { peer: h(1), id: h(50) });
        assert_eq!(drain(&mut inv), vec![fetch(2, h(50))]);
        inv.handle(t(20), Input::Settled(h(50)));
        assert!(inv.is_empty());
        assert_eq!(inv.poll_timeout(), None);
    }

    /// A peer that never ends its fetch loses the id at the deadline; a peer that leaves
    /// loses it at once; a late answer from a peer no longer asked changes nothing; when the
    /// last announcer fails, the id is given up.
    #[test]
    fn silence_and_disconnection_pass_the_turn() {
        let mut inv = with_peers(&[(1, false), (2, false), (3, false)]);
        for p in 1..=3 {
            announce(&mut inv, t(0), p, vec![h(60)]);
        }
        assert_eq!(drain(&mut inv), vec![fetch(1, h(60))]);
        let deadline = inv.poll_timeout().unwrap();
        assert_eq!(deadline, t(0) + IN_FLIGHT_LIMIT);
        inv.handle(deadline - Duration::from_millis(1), Input::Tick);
        assert!(drain(&mut inv).is_empty(), "not yet");
        inv.handle(deadline, Input::Tick);
        assert_eq!(drain(&mut inv), vec![fetch(2, h(60))]);
        inv.handle(deadline, Input::PeerGone(h(2)));
        assert_eq!(drain(&mut inv), vec![fetch(3, h(60))]);
        inv.handle(deadline, Input::Failed { peer: h(1), id: h(60) });
        assert!(drain(&mut inv).is_empty());
        inv.handle(deadline, Input::Failed { peer: h(3), id: h(60) });
        assert!(inv.is_empty());
    }

    /// A transaction refused as a race is asked of its other announcers first; when all
    /// refused it, of all again after [`RACE_RETRY`], at most [`MAX_RACE_RETRIES`] times.
    #[test]
    fn a_race_asks_the_others_then_all_again_later_a_bounded_number_of_times() {
        let mut inv = with_peers(&[(1, false), (2, false)]);
        announce(&mut inv, t(0), 1, vec![h(70)]);
        announce(&mut inv, t(0), 2, vec![h(70)]);
        assert_eq!(drain(&mut inv), vec![fetch(1, h(70))]);
        let mut now = t(100);
        for round in 0..=MAX_RACE_RETRIES {
            inv.handle(now, Input::Race { peer: h(1), id: h(70) });
            assert_eq!(drain(&mut inv), vec![fetch(2, h(70))], "the other announcer at once");
            inv.handle(now, Input::Race { peer: h(2), id: h(70) });
            assert!(drain(&mut inv).is_empty());
            if round == MAX_RACE_RETRIES {
                break;
            }
            assert_eq!(inv.poll_timeout(), Some(now + RACE_RETRY), "round {round}: resting");
            now += RACE_RETRY;
            inv.handle(now, Input::Tick);
            assert_eq!(drain(&mut inv), vec![fetch(1, h(70))], "round {round}: all asked again");
        }
        assert!(!inv.wants(&h(70)), "given up after {MAX_RACE_RETRIES} rounds");
    }

    /// An attacker that announces low-sorting junk it never delivers, and every honest id
    /// first, cannot hold an honest id: an outbound announcer is asked at once, and an
    /// inbound one with room takes an id waiting on the busy attacker.
    #[test]
    fn a_busy_first_announcer_does_not_hold_what_others_announce() {
        let mut inv = with_peers(&[(1, false), (2, true), (3, false)]);
        let junk: Vec<Hash> = (0..100).map(low).collect();
        announce(&mut inv, t(0), 1, junk);
        announce(&mut inv, t(0), 1, vec![h(80), h(81)]);
        assert_eq!(drain(&mut inv).len(), MAX_IN_FLIGHT_PER_PEER, "the attacker's slots are full");
        announce(&mut inv, t(100), 2, vec![h(80)]);
        assert_eq!(drain(&mut inv), vec![fetch(2, h(80))], "an outbound announcer, at once");
        announce(&mut inv, t(100), 3, vec![h(81)]);
        assert_eq!(drain(&mut inv), vec![fetch(3, h(81))], "moved off the busy attacker");
        // The attacker's next slot goes to its own oldest waiting id, not to ours.
        inv.handle(t(200), Input::Failed { peer: h(1), id: low(0) });
        assert_eq!(drain(&mut inv), vec![fetch(1, low(MAX_IN_FLIGHT_PER_PEER as u32))]);
    }

    /// A flood that fills the inventory gives way to an honest announcement: the newest id
    /// waiting on the peer charged most is dropped for it.
    #[test]
    fn a_full_inventory_evicts_from_the_heaviest_announcer() {
        let sybils: Vec<(u8, bool)> = (1..=8).map(|p| (p, false)).collect();
        let mut inv = with_peers(&sybils);
        inv.handle(t(0), Input::PeerUp { peer: h(99), outbound: false });
        for p in 1..=8u8 {
            let ids: Vec<Hash> =
                (0..MAX_WANTS_PER_PEER as u32).map(|i| low(p as u32 * 100_000 + i)).collect();
            announce(&mut inv, t(0), p, ids);
        }
        assert_eq!(inv.len(), MAX_WANTS);
        drain(&mut inv);
        announce(&mut inv, t(1), 99, vec![h(90)]);
        assert!(inv.wants(&h(90)), "the honest id got in");
        assert_eq!(inv.len(), MAX_WANTS);
        assert!(drain(&mut inv).contains(&fetch(99, h(90))));
        // A peer at its charge cannot add more.
        assert_eq!(inv.peers[&h(1)].charged.len(), MAX_WANTS_PER_PEER);
        announce(&mut inv, t(1), 1, vec![h(91)]);
        assert!(!inv.wants(&h(91)));
    }

    /// An inventory full of ids being fetched (512 inbound identities × 8, none queued) still
    /// takes what an outbound peer announces, and an honest newcomer's: ids only inbound
    /// peers announced give way whether queued or in flight; the outbound peer's never do.
    #[test]
    fn ids_in_flight_from_a_flood_give_way_to_an_outbound_announcement() {
        let mut inv = Inventory::new();
        for p in 0..512u32 {
            let peer = low(1_000_000 + p);
            inv.handle(t(0), Input::PeerUp { peer, outbound: false });
            let ids: Vec<Hash> = (0..8).map(|i| low(p * 8 + i)).collect();
            inv.handle(t(0), Input::Announced { peer, ids });
        }
        assert_eq!(inv.len(), MAX_WANTS);
        assert!(inv.peers.values().all(|p| p.queue.is_empty() && p.in_flight == 8));
        drain(&mut inv);
        inv.handle(t(1), Input::PeerUp { peer: h(200), outbound: true });
        announce(&mut inv, t(1), 200, vec![h(201), h(202)]);
        assert!(inv.wants(&h(201)) && inv.wants(&h(202)), "the outbound peer's ids got in");
        assert_eq!(drain(&mut inv), vec![fetch(200, h(201)), fetch(200, h(202))]);
        inv.handle(t(1), Input::PeerUp { peer: h(210), outbound: false });
        announce(&mut inv, t(1), 210, vec![h(211)]);
        assert!(inv.wants(&h(211)), "a fresh inbound peer's too (it is charged least)");
        assert_eq!(inv.len(), MAX_WANTS);
        // Outbound-announced ids never give way.
        for p in 0..MAX_WANTS as u32 {
            let peer = low(2_000_000 + p);
            inv.handle(t(2), Input::PeerUp { peer, outbound: false });
            inv.handle(t(2), Input::Announced { peer, ids: vec![low(3_000_000 + p)] });
        }
        assert!(inv.wants(&h(201)) && inv.wants(&h(202)));
    }

    /// An idle inbound announcer is asked before a busy outbound one.
    #[test]
    fn an_announcer_with_room_comes_before_a_busy_one() {
        let mut inv = with_peers(&[(1, true), (2, false)]);
        let busy: Vec<Hash> = (0..MAX_IN_FLIGHT_PER_PEER as u32).map(low).collect();
        announce(&mut inv, t(0), 1, busy);
        drain(&mut inv);
        announce(&mut inv, t(1), 1, vec![h(5)]);
        assert!(drain(&mut inv).is_empty(), "queued on the busy outbound peer");
        announce(&mut inv, t(2), 2, vec![h(5)]);
        assert_eq!(drain(&mut inv), vec![fetch(2, h(5))], "moved to the idle inbound one");
    }

    /// Eight inbound identities announcing first do not shut out an outbound peer; one that
    /// failed gives way to any newcomer.
    #[test]
    fn first_come_inbound_announcers_do_not_shut_out_an_outbound_one() {
        let mut peers: Vec<(u8, bool)> = (1..=8).map(|p| (p, false)).collect();
        peers.extend([(20, true), (21, false)]);
        let mut inv = with_peers(&peers);
        for p in 1..=8 {
            announce(&mut inv, t(0), p, vec![h(100)]);
        }
        assert_eq!(drain(&mut inv), vec![fetch(1, h(100))]);
        announce(&mut inv, t(1), 20, vec![h(100)]);
        inv.handle(t(2), Input::Failed { peer: h(1), id: h(100) });
        assert_eq!(drain(&mut inv), vec![fetch(20, h(100))], "the outbound peer is next");
        inv.handle(t(3), Input::Failed { peer: h(20), id: h(100) });
        drain(&mut inv);
        // Failed announcers give way: a new inbound one gets in.
        announce(&mut inv, t(4), 21, vec![h(100)]);
        assert!(inv.wants(&h(100)));
        assert!(inv.wants.get(&h(100)).unwrap().announcers.iter().any(|a| a.peer == h(21)));
    }

    /// Announcements of a peer not (or no longer) registered are ignored; a peer's charges
    /// leave with it; everything is given up after [`WANT_LIFETIME`].
    #[test]
    fn charges_follow_peers_and_lifetimes_end() {
        let mut inv = with_peers(&[(1, false), (2, false)]);
        announce(&mut inv, t(0), 7, vec![h(1)]);
        assert!(inv.is_empty(), "unknown peer");
        announce(&mut inv, t(0), 1, vec![h(2), h(3)]);
        announce(&mut inv, t(0), 2, vec![h(3)]);
        inv.handle(t(1), Input::PeerGone(h(1)));
        assert!(!inv.wants(&h(2)), "nobody else announced it");
        assert!(inv.wants(&h(3)));
        assert_eq!(drain(&mut inv).last(), Some(&fetch(2, h(3))));
        announce(&mut inv, t(1), 1, vec![h(4)]);
        assert!(!inv.wants(&h(4)), "gone");
        inv.handle(t(0) + WANT_LIFETIME, Input::Tick);
        assert!(inv.is_empty());
        assert_eq!(inv.poll_timeout(), None);
        assert!(inv.peers.values().all(|p| p.charged.is_empty() && p.queue.is_empty()));
    }
}
