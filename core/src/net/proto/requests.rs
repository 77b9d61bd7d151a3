//! Requests in flight, each with an id and a deadline (issue 14's "request ids with
//! deadlines"): a unit that asks a peer something opens one, the driver answers it by id, and
//! a request whose deadline passes is answered "no answer" by the unit itself. Ids rise from 1
//! in the order requests open, so a simulated run numbers them the same way every time; an
//! answer to an id no longer open (late, or never asked) is ignored. Each unit's ids carry its
//! tag in the top byte ([`Requests::tagged`], [`ReqId::tag`]), so one driver answers them all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Time;
use crate::crypto::Hash;

/// What a unit asks of a peer, or says about it (the engine sends the request on the peer's
/// connection, or scores the peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPeer {
    /// Send `msg` to `peer` as a request; its answer comes back by `req` within `timeout`.
    Request {
        /// The peer.
        peer: Hash,
        /// The request's id.
        req: ReqId,
        /// The request.
        msg: crate::net::message::Message,
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

/// A request's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqId(pub u64);

impl ReqId {
    /// The tag of the unit that opened it.
    pub fn tag(self) -> u8 {
        (self.0 >> 56) as u8
    }
}

/// Open requests: who was asked, until when, and what the asker keeps with it (`K`).
#[derive(Debug)]
pub struct Requests<K> {
    tag: u8,
    next: u64,
    open: BTreeMap<ReqId, (Hash, Time, K)>,
    deadlines: BTreeSet<(Time, ReqId)>,
}

impl<K> Default for Requests<K> {
    fn default() -> Self {
        Requests { tag: 0, next: 0, open: BTreeMap::new(), deadlines: BTreeSet::new() }
    }
}

impl<K> Requests<K> {
    /// No request open; ids tagged 0.
    pub fn new() -> Requests<K> {
        Requests::default()
    }

    /// No request open; ids carry `tag` (see [`ReqId::tag`]).
    pub fn tagged(tag: u8) -> Requests<K> {
        Requests { tag, ..Requests::default() }
    }

    /// Open a request to `peer` at `now`, answered by `now + timeout` at the latest.
    pub fn open(&mut self, now: Time, peer: Hash, timeout: Duration, keep: K) -> ReqId {
        self.next += 1;
        let id = ReqId(u64::from(self.tag) << 56 | (self.next & ((1 << 56) - 1)));
        let deadline = now + timeout;
        self.open.insert(id, (peer, deadline, keep));
        self.deadlines.insert((deadline, id));
        id
    }

    /// Close a request that was answered: who was asked and what was kept with it (`None`: not
    /// open, e.g. already out of time).
    pub fn close(&mut self, id: ReqId) -> Option<(Hash, K)> {
        let (peer, deadline, keep) = self.open.remove(&id)?;
        self.deadlines.remove(&(deadline, id));
        Some((peer, keep))
    }

    /// Close and return every request whose deadline is `now` or earlier, oldest deadline
    /// first.
    pub fn expired(&mut self, now: Time) -> Vec<(ReqId, Hash, K)> {
        let mut out = vec![];
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((peer, _, keep)) = self.open.remove(&id) {
                out.push((id, peer, keep));
            }
        }
        out
    }

    /// The earliest deadline of an open request.
    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Requests open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no request is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Time {
        Time::from_origin(Duration::from_secs(s))
    }

    #[test]
    fn ids_rise_answers_close_once_and_deadlines_expire_in_order() {
        let mut r: Requests<&str> = Requests::new();
        let peer = Hash([1; 32]);
        let a = r.open(t(0), peer, Duration::from_secs(30), "a");
        let b = r.open(t(1), peer, Duration::from_secs(10), "b");
        let c = r.open(t(2), peer, Duration::from_secs(60), "c");
        assert!(a < b && b < c);
        assert_eq!(r.next_deadline(), Some(t(11)));
        assert_eq!(r.close(a), Some((peer, "a")));
        assert_eq!(r.close(a), None, "an id answers once");
        assert!(r.expired(t(10)).is_empty());
        let gone: Vec<_> = r.expired(t(100)).into_iter().map(|(id, _, k)| (id, k)).collect();
        assert_eq!(gone, vec![(b, "b"), (c, "c")]);
        assert_eq!(r.close(b), None, "a late answer to an expired id is not taken");
        assert!(r.is_empty() && r.next_deadline().is_none());
        let mut tagged: Requests<()> = Requests::tagged(3);
        let id = tagged.open(t(0), peer, Duration::from_secs(1), ());
        assert_eq!((id.tag(), a.tag()), (3, 0));
    }
}
