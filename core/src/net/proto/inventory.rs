//! Inventory (issue 14's relay that loses nothing): which announced blocks and transactions
//! we still want, who announced each, and whom to ask next.
//!
//! - One fetch of an id at a time, from its first announcer; the others wait their turn. A
//!   peer that does not deliver (an empty answer, an error, or no answer: the driver's
//!   requests give up after [`FETCH_TIMEOUT`], and a fetch still open at [`IN_FLIGHT_LIMIT`]
//!   counts as failed) passes the turn to the next announcer, so an announced block or
//!   transaction one peer fails to deliver is fetched from another.
//! - A transaction refused as a race (its proofs name a block we lack yet, or went stale
//!   while it travelled) is asked for again after [`RACE_RETRY`] if it is still not ours (the
//!   driver checks before every fetch), at most [`MAX_RACE_RETRIES`] times.
//! - Everything is bounded: [`MAX_WANTS`] ids, [`MAX_WANTS_PER_PEER`] of them first announced
//!   by one peer, [`MAX_ANNOUNCERS`] announcers each, [`MAX_IN_FLIGHT_PER_PEER`] fetches per
//!   peer; an id is given up [`WANT_LIFETIME`] after it was first announced.
//!
//! Sans-I/O: the driver feeds [`Input`]s only for ids the chain does not hold, carries out
//! [`Output::Fetch`], and ticks at [`Inventory::poll_timeout`]. Nothing here punishes a peer:
//! a peer that cannot deliver what it announced may have pruned it or reorged since.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::Time;
use crate::crypto::Hash;

/// Most ids wanted at once (announcements past it are ignored until some are settled).
pub const MAX_WANTS: usize = 4_096;
/// Most wanted ids one peer may have announced first.
pub const MAX_WANTS_PER_PEER: usize = 512;
/// Most announcers remembered per id.
pub const MAX_ANNOUNCERS: usize = 8;
/// Most fetches in flight from one peer.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 8;
/// How long the driver waits for each answer of a fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A fetch still open this long after it began (its answers, then the chain's verdict)
/// passes the turn to the next announcer.
pub const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(30);
/// A transaction refused as a race is asked for again this long after.
pub const RACE_RETRY: Duration = Duration::from_secs(30);
/// How many times a transaction refused as a race is asked for again.
pub const MAX_RACE_RETRIES: u8 = 2;
/// An id still not delivered this long after its first announcement is given up.
pub const WANT_LIFETIME: Duration = Duration::from_secs(300);

/// What happened, as the driver tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `peer` announced `ids` that the chain does not hold.
    Announced {
        /// The announcer.
        peer: Hash,
        /// The ids (the driver caps how many of one `Inv` it passes).
        ids: Vec<Hash>,
    },
    /// The id is ours now, or was refused for good (invalid whoever sends it): settled.
    Settled(Hash),
    /// `peer` did not deliver `id` (an empty answer or an error).
    Failed {
        /// Who was asked.
        peer: Hash,
        /// What.
        id: Hash,
    },
    /// The transaction `id` was refused as a race: ask again after [`RACE_RETRY`].
    Race(Hash),
    /// `peer` disconnected: its fetches failed, it announces nothing more.
    PeerGone(Hash),
    /// The moment [`Inventory::poll_timeout`] gave has come.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ask `peer` for `id` (a block, else a transaction), unless the chain holds it by now
    /// (then [`Input::Settled`]); end with [`Input::Settled`], [`Input::Failed`] or
    /// [`Input::Race`].
    Fetch {
        /// Whom to ask.
        peer: Hash,
        /// What.
        id: Hash,
    },
}

#[derive(Debug, Clone)]
struct Want {
    /// Announcers in the order they announced; `next` is the next one to ask.
    announcers: Vec<Hash>,
    next: usize,
    /// The fetch in flight: from whom, answered by when.
    in_flight: Option<(Hash, Time)>,
    first: Time,
    /// Not to be fetched before this (a race's retry).
    not_before: Option<Time>,
    races: u8,
}

/// The inventory (see the module docs).
#[derive(Debug, Default)]
pub struct Inventory {
    wants: BTreeMap<Hash, Want>,
    /// Wanted ids each peer announced first.
    first_by: BTreeMap<Hash, usize>,
    in_flight: BTreeMap<Hash, usize>,
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

    /// Take an input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Announced { peer, ids } => {
                for id in ids {
                    self.announced(now, peer, id);
                }
            }
            Input::Settled(id) => self.settle(&id),
            Input::Failed { peer, id } => {
                if self.wants.get(&id).is_some_and(|w| w.in_flight.is_some_and(|(p, _)| p == peer)) {
                    self.end_fetch(&id);
                }
            }
            Input::Race(id) => {
                let mut drop = false;
                if let Some(w) = self.wants.get_mut(&id) {
                    if w.races >= MAX_RACE_RETRIES {
                        drop = true;
                    } else {
                        w.races += 1;
                        w.not_before = Some(now + RACE_RETRY);
                        // Every announcer may be asked again.
                        w.next = 0;
                    }
                }
                if drop {
                    self.settle(&id);
                } else {
                    self.end_fetch(&id);
                }
            }
            Input::PeerGone(peer) => {
                let ids: Vec<Hash> = self
                    .wants
                    .iter()
                    .filter(|(_, w)| w.in_flight.is_some_and(|(p, _)| p == peer))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.end_fetch(&id);
                }
                for w in self.wants.values_mut() {
                    if let Some(i) = w.announcers.iter().position(|p| *p == peer) {
                        w.announcers.remove(i);
                        if i < w.next {
                            w.next -= 1;
                        }
                    }
                }
                self.in_flight.remove(&peer);
                // What it announced first stays wanted (others may have it) but no longer
                // counts against it.
                self.first_by.remove(&peer);
            }
            Input::Tick => {}
        }
        self.expire(now);
        self.schedule(now);
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next (`None`: only on other inputs).
    pub fn poll_timeout(&self) -> Option<Time> {
        self.wants
            .values()
            .map(|w| match (w.in_flight, w.not_before) {
                (Some((_, deadline)), _) => deadline,
                (None, Some(t)) => t,
                (None, None) => w.first + WANT_LIFETIME,
            })
            .min()
    }

    fn announced(&mut self, now: Time, peer: Hash, id: Hash) {
        if let Some(w) = self.wants.get_mut(&id) {
            if w.announcers.len() < MAX_ANNOUNCERS && !w.announcers.contains(&peer) {
                w.announcers.push(peer);
            }
            return;
        }
        let by = self.first_by.get(&peer).copied().unwrap_or(0);
        if self.wants.len() >= MAX_WANTS || by >= MAX_WANTS_PER_PEER {
            return;
        }
        *self.first_by.entry(peer).or_insert(0) += 1;
        self.wants.insert(
            id,
            Want { announcers: vec![peer], next: 0, in_flight: None, first: now, not_before: None, races: 0 },
        );
    }

    fn end_fetch(&mut self, id: &Hash) {
        if let Some(w) = self.wants.get_mut(id) {
            if let Some((p, _)) = w.in_flight.take() {
                if let Some(n) = self.in_flight.get_mut(&p) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    fn settle(&mut self, id: &Hash) {
        self.end_fetch(id);
        if let Some(w) = self.wants.remove(id) {
            if let Some(first) = w.announcers.first() {
                if let Some(n) = self.first_by.get_mut(first) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    /// Fetches past their deadline fail; ids past their lifetime, or with no announcer left
    /// to ask and none asked, are given up.
    fn expire(&mut self, now: Time) {
        let late: Vec<Hash> = self
            .wants
            .iter()
            .filter(|(_, w)| w.in_flight.is_some_and(|(_, d)| now >= d))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.end_fetch(&id);
        }
        let over: Vec<Hash> = self
            .wants
            .iter()
            .filter(|(_, w)| {
                now.saturating_duration_since(w.first) >= WANT_LIFETIME
                    || (w.in_flight.is_none() && w.not_before.is_none() && w.next >= w.announcers.len())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in over {
            self.settle(&id);
        }
    }

    /// Start a fetch for every id with none in flight, from its next announcer with room.
    fn schedule(&mut self, now: Time) {
        for (id, w) in self.wants.iter_mut() {
            if w.in_flight.is_some() || w.not_before.is_some_and(|t| now < t) {
                continue;
            }
            w.not_before = None;
            let Some(&p) = w.announcers.get(w.next) else { continue };
            let n = self.in_flight.entry(p).or_insert(0);
            // A busy peer is asked later rather than skipped for good.
            if *n < MAX_IN_FLIGHT_PER_PEER {
                *n += 1;
                w.next += 1;
                w.in_flight = Some((p, now + IN_FLIGHT_LIMIT));
                self.out.push_back(Output::Fetch { peer: p, id: *id });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    fn t(ms: u64) -> Time {
        Time::from_origin(Duration::from_millis(ms))
    }

    fn drain(inv: &mut Inventory) -> Vec<Output> {
        std::iter::from_fn(|| inv.poll()).collect()
    }

    fn fetch(peer: u8, id: u8) -> Output {
        Output::Fetch { peer: h(peer), id: h(id) }
    }

    /// Two peers announce one block: it is fetched once, from the first; when the first
    /// fails to deliver, from the second.
    #[test]
    fn what_one_peer_fails_to_deliver_is_fetched_from_another() {
        let mut inv = Inventory::new();
        inv.handle(t(0), Input::Announced { peer: h(1), ids: vec![h(50)] });
        inv.handle(t(5), Input::Announced { peer: h(2), ids: vec![h(50)] });
        assert_eq!(drain(&mut inv), vec![fetch(1, 50)], "one fetch at a time");
        inv.handle(t(10), Input::Failed { peer: h(1), id: h(50) });
        assert_eq!(drain(&mut inv), vec![fetch(2, 50)]);
        inv.handle(t(20), Input::Settled(h(50)));
        assert!(inv.is_empty());
        assert!(drain(&mut inv).is_empty());
    }

    /// A peer that never answers loses its turn at the deadline; a peer that leaves
    /// loses it at once.
    #[test]
    fn silence_and_disconnection_pass_the_turn() {
        let mut inv = Inventory::new();
        for p in 1..=3 {
            inv.handle(t(0), Input::Announced { peer: h(p), ids: vec![h(60)] });
        }
        assert_eq!(drain(&mut inv), vec![fetch(1, 60)]);
        let deadline = inv.poll_timeout().unwrap();
        assert_eq!(deadline, t(0) + IN_FLIGHT_LIMIT);
        inv.handle(deadline - Duration::from_millis(1), Input::Tick);
        assert!(drain(&mut inv).is_empty(), "not yet");
        inv.handle(deadline, Input::Tick);
        assert_eq!(drain(&mut inv), vec![fetch(2, 60)]);
        inv.handle(deadline, Input::PeerGone(h(2)));
        assert_eq!(drain(&mut inv), vec![fetch(3, 60)]);
        // A late answer from a peer no longer asked changes nothing.
        inv.handle(deadline, Input::Failed { peer: h(1), id: h(60) });
        assert!(drain(&mut inv).is_empty());
        // The last announcer fails too: given up.
        inv.handle(deadline, Input::Failed { peer: h(3), id: h(60) });
        assert!(inv.is_empty());
    }

    /// A transaction refused as a race is asked for again after [`RACE_RETRY`] (from its
    /// announcers again), at most [`MAX_RACE_RETRIES`] times.
    #[test]
    fn a_race_is_asked_again_later_a_bounded_number_of_times() {
        let mut inv = Inventory::new();
        inv.handle(t(0), Input::Announced { peer: h(1), ids: vec![h(70)] });
        assert_eq!(drain(&mut inv), vec![fetch(1, 70)]);
        let mut now = t(100);
        for _ in 0..MAX_RACE_RETRIES {
            inv.handle(now, Input::Race(h(70)));
            assert!(drain(&mut inv).is_empty());
            assert_eq!(inv.poll_timeout(), Some(now + RACE_RETRY));
            now += RACE_RETRY;
            inv.handle(now, Input::Tick);
            assert_eq!(drain(&mut inv), vec![fetch(1, 70)]);
        }
        inv.handle(now, Input::Race(h(70)));
        assert!(inv.is_empty(), "given up after {MAX_RACE_RETRIES} retries");
    }

    /// One peer cannot fill the inventory, nor keep more than its share in flight; what it
    /// announced is given up after [`WANT_LIFETIME`].
    #[test]
    fn announcements_are_bounded_per_peer_and_in_time() {
        let mut inv = Inventory::new();
        let ids: Vec<Hash> = (0..2_000u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                Hash(b)
            })
            .collect();
        inv.handle(t(0), Input::Announced { peer: h(1), ids: ids.clone() });
        assert_eq!(inv.len(), MAX_WANTS_PER_PEER);
        assert_eq!(drain(&mut inv).len(), MAX_IN_FLIGHT_PER_PEER);
        // Another peer's announcements still get in.
        inv.handle(t(0), Input::Announced { peer: h(2), ids: vec![h(9)] });
        assert_eq!(drain(&mut inv), vec![fetch(2, 9)]);
        // Past the lifetime everything is given up, in flight or not.
        inv.handle(t(0) + WANT_LIFETIME, Input::Tick);
        assert!(inv.is_empty());
        assert_eq!(inv.poll_timeout(), None);
    }

    /// A busy peer's turn waits: once one of its fetches ends, the next id goes to it.
    #[test]
    fn a_busy_peer_is_asked_when_it_has_room() {
        let mut inv = Inventory::new();
        let ids: Vec<Hash> = (100..100 + MAX_IN_FLIGHT_PER_PEER as u8 + 1).map(h).collect();
        inv.handle(t(0), Input::Announced { peer: h(1), ids: ids.clone() });
        assert_eq!(drain(&mut inv).len(), MAX_IN_FLIGHT_PER_PEER);
        inv.handle(t(1), Input::Settled(ids[0]));
        assert_eq!(drain(&mut inv), vec![Output::Fetch { peer: h(1), id: *ids.last().unwrap() }]);
    }
}
