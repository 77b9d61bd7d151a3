//! Misbehaviour accounting, socket-free (time is an input): per-identity scores that decay,
//! bounded bans, and per-address-group counts that throttle (never ban) a source that keeps
//! minting fresh identities.
//!
//! A node id is a free self-signed certificate, so a ban by (IP, id) alone is cheap to dodge:
//! every point a peer earns is also counted against its group (/24 for IPv4, /48 for IPv6).
//! A group's count slows new connections from it and shrinks the request budget of its peers
//! (see [`super::budget`]) — a rate limit, never a ban (SPEC §9: a shared NAT must not lock
//! out its honest users).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::Time;

use crate::crypto::Hash;

/// Score at which an identity is banned.
pub const BAN_SCORE: u32 = 100;
/// How long a ban lasts.
pub const BAN_TIME: Duration = Duration::from_secs(24 * 3600);
/// Points a score loses per minute.
pub const DECAY_PER_MIN: u32 = 1;
/// Identities whose score is tracked; past it the lowest score is forgotten (never the
/// whole map).
pub const MAX_SCORED: usize = 10_000;
/// Bans kept; past it the one ending first is dropped.
pub const MAX_BANS: usize = 10_000;
/// Groups whose misbehaviour is tracked.
pub const MAX_GROUPS: usize = 4_096;
/// A group's decayed score above which new connections from it are throttled.
pub const GROUP_THROTTLE: u32 = BAN_SCORE;
/// Most a group's score counts (4 halvings of its rate; it decays within about 7 hours), so
/// honest neighbours in a /24 an attacker shares are slowed, never starved for days.
pub const GROUP_CAP: u32 = 4 * GROUP_THROTTLE;

/// The misbehaviour group of an address: /24 for IPv4 (also when IPv4-mapped), /48 for IPv6.
pub fn misbehaviour_group(ip: IpAddr) -> Vec<u8> {
    // An IPv4 peer seen through a dual-stack socket is an IPv4 address.
    match ip.to_canonical() {
        IpAddr::V4(v) => v.octets()[..3].to_vec(),
        IpAddr::V6(v) => v.octets()[..6].to_vec(),
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u32,
    at: Time,
}

impl Score {
    fn now(&self, now: Time) -> u32 {
        let mins = now.saturating_duration_since(self.at).as_secs() / 60;
        let decay = u32::try_from(mins).unwrap_or(u32::MAX).saturating_mul(DECAY_PER_MIN);
        self.points.saturating_sub(decay)
    }
    fn add(&mut self, now: Time, points: u32) -> u32 {
        let v = self.now(now).saturating_add(points);
        *self = Score { points: v, at: now };
        v
    }
}

/// What a penalty led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; the peer may stay.
    Counted(u32),
    /// The score reached [`BAN_SCORE`]: the identity is banned now.
    Banned,
}

/// Scores, bans and group counts.
#[derive(Debug, Default)]
pub struct ScoreBook {
    scores: BTreeMap<Hash, Score>,
    groups: BTreeMap<Vec<u8>, Score>,
    bans: BTreeMap<(IpAddr, Hash), Time>,
}

impl ScoreBook {
    /// An empty book.
    pub fn new() -> ScoreBook {
        ScoreBook::default()
    }

    /// Add `points` to `peer` (at `ip`) and to its group. At [`BAN_SCORE`] the identity is
    /// banned (and its score forgotten).
    pub fn penalize(&mut self, now: Time, ip: IpAddr, peer: &Hash, points: u32) -> Verdict {
        if points == 0 {
            return Verdict::Counted(self.score(now, peer));
        }
        let g = misbehaviour_group(ip);
        if !self.groups.contains_key(&g) && self.groups.len() >= MAX_GROUPS {
            evict_lowest(&mut self.groups, now);
        }
        let gs = self.groups.entry(g).or_insert(Score { points: 0, at: now });
        gs.add(now, points);
        gs.points = gs.points.min(GROUP_CAP);
        if !self.scores.contains_key(peer) && self.scores.len() >= MAX_SCORED {
            evict_lowest(&mut self.scores, now);
        }
        let v = self.scores.entry(*peer).or_insert(Score { points: 0, at: now }).add(now, points);
        if v >= BAN_SCORE {
            self.scores.remove(peer);
            self.ban(now, ip, peer);
            Verdict::Banned
        } else {
            Verdict::Counted(v)
        }
    }

    /// Ban `(ip, peer)` for [`BAN_TIME`] (bounded: past [`MAX_BANS`] the ban ending first
    /// goes).
    pub fn ban(&mut self, now: Time, ip: IpAddr, peer: &Hash) {
        if !self.bans.contains_key(&(ip, *peer)) && self.bans.len() >= MAX_BANS {
            self.bans.retain(|_, until| *until > now);
            if self.bans.len() >= MAX_BANS {
                if let Some(k) = self.bans.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k) {
                    self.bans.remove(&k);
                }
            }
        }
        self.bans.insert((ip, *peer), now + BAN_TIME);
    }

    /// Whether `(ip, peer)` is banned now.
    pub fn is_banned(&mut self, now: Time, ip: IpAddr, peer: &Hash) -> bool {
        match self.bans.get(&(ip, *peer)) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.bans.remove(&(ip, *peer));
                false
            }
            None => false,
        }
    }

    /// A peer's score now (after decay).
    pub fn score(&self, now: Time, peer: &Hash) -> u32 {
        self.scores.get(peer).map(|s| s.now(now)).unwrap_or(0)
    }

    /// The misbehaviour counted against `ip`'s group now (after decay).
    pub fn group_score(&self, now: Time, ip: IpAddr) -> u32 {
        self.groups.get(&misbehaviour_group(ip)).map(|s| s.now(now)).unwrap_or(0)
    }

    /// How many new connections per minute `ip`'s group may open: `normal` until its score
    /// passes [`GROUP_THROTTLE`], then halved for each further [`GROUP_THROTTLE`], down to 1.
    pub fn group_connections_per_min(&self, now: Time, ip: IpAddr, normal: u32) -> u32 {
        let s = self.group_score(now, ip);
        if s < GROUP_THROTTLE {
            return normal;
        }
        let halvings = (s / GROUP_THROTTLE).min(31);
        (normal >> halvings).max(1)
    }

    /// Tracked identities, groups and bans (for tests of the bounds).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.scores.len(), self.groups.len(), self.bans.len())
    }
}

/// Forget the entry with the lowest score now (the first in key order among equals: the
/// same choice every run).
fn evict_lowest<K: Clone + Ord>(m: &mut BTreeMap<K, Score>, now: Time) {
    if let Some(k) = m.iter().min_by_key(|(_, s)| s.now(now)).map(|(k, _)| k.clone()) {
        m.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Hash {
        Hash([n; 32])
    }
    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::from([10, 0, a, b])
    }

    #[test]
    fn scores_decay_one_point_a_minute_and_ban_at_the_threshold() {
        let t0 = Time::ZERO;
        let mut book = ScoreBook::new();
        assert_eq!(book.penalize(t0, ip(1, 1), &id(1), 60), Verdict::Counted(60));
        // 30 minutes later 30 points are gone: 30 + 60 = 90, still below the ban.
        let t1 = t0 + Duration::from_secs(30 * 60);
        assert_eq!(book.score(t1, &id(1)), 30);
        assert_eq!(book.penalize(t1, ip(1, 1), &id(1), 60), Verdict::Counted(90));
        assert_eq!(book.penalize(t1, ip(1, 1), &id(1), 10), Verdict::Banned);
        assert!(book.is_banned(t1, ip(1, 1), &id(1)));
        assert!(!book.is_banned(t1, ip(1, 2), &id(1)), "another address is another ban");
        assert!(!book.is_banned(t1 + BAN_TIME, ip(1, 1), &id(1)), "bans end");
        // Honest mistakes spread over time never add up to a ban.
        let mut t = t0;
        for _ in 0..1_000 {
            t += Duration::from_secs(60);
            assert!(matches!(book.penalize(t, ip(2, 1), &id(2), 1), Verdict::Counted(_)));
        }
        assert!(book.score(t, &id(2)) <= 1);
    }

    #[test]
    fn the_maps_are_bounded_and_never_cleared_wholesale() {
        let t0 = Time::ZERO;
        let mut book = ScoreBook::new();
        let heavy = Hash([0xEE; 32]);
        book.penalize(t0, ip(9, 9), &heavy, 90);
        for i in 0..(MAX_SCORED as u32 + 500) {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            let a = IpAddr::from([11, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            book.penalize(t0, a, &Hash(h), 1);
        }
        let (scores, groups, _) = book.sizes();
        assert!(scores <= MAX_SCORED && groups <= MAX_GROUPS);
        assert_eq!(book.score(t0, &heavy), 90, "a flood of small scores does not wipe a big one");
        for i in 0..(MAX_BANS as u32 + 10) {
            let mut h = [1u8; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            book.ban(t0 + Duration::from_millis(i as u64), ip(3, 3), &Hash(h));
        }
        assert!(book.sizes().2 <= MAX_BANS);
    }

    #[test]
    fn fresh_identities_from_one_group_are_throttled_not_banned() {
        let t0 = Time::ZERO;
        let mut book = ScoreBook::new();
        // 50 identities from one /24, each banned once for an invalid block.
        for n in 0..50u8 {
            assert_eq!(book.penalize(t0, ip(7, n), &id(n), BAN_SCORE), Verdict::Banned);
        }
        assert_eq!(book.group_score(t0, ip(7, 200)), GROUP_CAP, "capped");
        assert_eq!(book.group_connections_per_min(t0, ip(7, 200), 60), 3);
        // A fresh identity of that group is not banned: it is only rate limited.
        assert!(!book.is_banned(t0, ip(7, 200), &id(200)));
        // Other groups are untouched, and the throttle wears off with time.
        assert_eq!(book.group_connections_per_min(t0, ip(8, 1), 60), 60);
        let later = t0 + Duration::from_secs(60 * u64::from(GROUP_CAP));
        assert_eq!(book.group_connections_per_min(later, ip(7, 200), 60), 60);
    }
}
