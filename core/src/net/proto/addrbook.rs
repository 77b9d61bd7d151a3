//! The address book (issue 14's mesh): where peers may be found, kept so that no single
//! source of addresses can fill it, and no single address group can fill the part we trust.
//! A simplified Bitcoin Core `addrman`, socket-free: time and randomness are inputs.
//!
//! - **New** addresses were gossiped to us and never reached. Each lands in one of
//!   [`Limits::new_buckets`] buckets chosen by a keyed hash of (the /16 group of whoever told
//!   us, a slice of the address's own group): one source group reaches at most
//!   [`NEW_BUCKETS_PER_SOURCE`] buckets, whatever it sends.
//! - **Tried** addresses we connected to and completed a handshake with. Their bucket is
//!   chosen from the address's own /16 group: one group holds at most
//!   [`TRIED_BUCKETS_PER_GROUP`] tried buckets.
//! - The key is secret (drawn at start), so a peer cannot aim addresses at a bucket.
//! - A slot holds one address. A newcomer takes a new slot only from an address that looks
//!   dead ([`Entry::is_terrible`]); a tried slot's older occupant moves back to new, so a
//!   good address is never lost to a flood.
//! - Only tried addresses are gossiped ([`AddrBook::sample`]): an inbound peer's advertised
//!   address is vouched for only once we have dialled it back.
//!
//! Lookups use a map; every choice walks the bucket tables, never the map's order, so the
//! same inputs and random stream give the same choices.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand_core::RngCore;

use super::Time;
use crate::crypto::TaggedHasher;

/// How many new buckets the addresses from one source group can reach.
pub const NEW_BUCKETS_PER_SOURCE: u64 = 8;
/// How many tried buckets the addresses of one /16 group can reach.
pub const TRIED_BUCKETS_PER_GROUP: u64 = 4;
/// An address not heard of for this long is dead.
pub const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);
/// A new address that failed this many attempts (never having worked) is dead.
pub const MAX_NEW_FAILURES: u32 = 3;
/// A tried address that failed this many attempts in a row, its last success over
/// [`MIN_FAIL_SPAN`] ago, is dead.
pub const MAX_FAILURES: u32 = 10;
/// See [`MAX_FAILURES`].
pub const MIN_FAIL_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);
/// An address tried this recently is rarely chosen again.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// The book's size: buckets of each table and slots per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// New-table buckets.
    pub new_buckets: usize,
    /// Tried-table buckets.
    pub tried_buckets: usize,
    /// Slots per bucket.
    pub bucket_size: usize,
}

impl Limits {
    /// A server: 256 × 64 new and 64 × 64 tried slots (20,480 addresses).
    pub const SERVER: Limits = Limits { new_buckets: 256, tried_buckets: 64, bucket_size: 64 };
    /// A phone: 64 × 32 new and 16 × 32 tried slots (2,560 addresses).
    pub const PHONE: Limits = Limits { new_buckets: 64, tried_buckets: 16, bucket_size: 32 };
}

/// What the book knows of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address.
    pub addr: SocketAddr,
    /// The /16 (/32) group of the peer that told us of it (its own group once tried).
    pub source: Vec<u8>,
    /// Last time we heard of it or were connected to it.
    pub last_seen: Time,
    /// Last time we dialled it.
    pub last_try: Option<Time>,
    /// Last time a handshake with it completed.
    pub last_success: Option<Time>,
    /// Attempts since the last success.
    pub failures: u32,
    /// In the tried table (else new).
    pub tried: bool,
    /// Its (table, bucket, slot) position.
    slot: (usize, usize),
}

impl Entry {
    /// Whether it looks dead: unheard of past [`HORIZON`], a new address that failed
    /// [`MAX_NEW_FAILURES`] times, or a tried one that failed [`MAX_FAILURES`] times in a row
    /// with no success for [`MIN_FAIL_SPAN`]. Never one tried in the last minute.
    pub fn is_terrible(&self, now: Time) -> bool {
        if self.last_try.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(60)) {
            return false;
        }
        if now.saturating_duration_since(self.last_seen) > HORIZON {
            return true;
        }
        match self.last_success {
            None => self.failures >= MAX_NEW_FAILURES,
            Some(s) => self.failures >= MAX_FAILURES && now.saturating_duration_since(s) > MIN_FAIL_SPAN,
        }
    }

    /// How much [`AddrBook::select`] favours it (1 at best): a hundredth if tried in the last
    /// [`RETRY_AFTER`], and two thirds less for each recent failure (up to 8).
    fn chance(&self, now: Time) -> f64 {
        let mut c = 1.0;
        if self.last_try.is_some_and(|t| now.saturating_duration_since(t) < RETRY_AFTER) {
            c *= 0.01;
        }
        c * 0.66f64.powi(self.failures.min(8) as i32)
    }
}

/// The /16 group of an IPv4 address, /32 of IPv6 (SPEC §5's "distinct groups").
pub fn group16(ip: IpAddr) -> Vec<u8> {
    // An IPv4 peer seen through a dual-stack socket is still an IPv4 peer.
    match ip.to_canonical() {
        IpAddr::V4(v) => v.octets()[..2].to_vec(),
        IpAddr::V6(v) => v.octets()[..4].to_vec(),
    }
}

/// The address book (see the module docs).
#[derive(Debug, Clone)]
pub struct AddrBook {
    key: [u8; 32],
    limits: Limits,
    entries: HashMap<SocketAddr, Entry>,
    /// `tables[0]` new, `tables[1]` tried: bucket-major slots.
    tables: [Vec<Option<SocketAddr>>; 2],
}

const NEW: usize = 0;
const TRIED: usize = 1;

impl AddrBook {
    /// An empty book hashing with the secret `key`.
    pub fn new(key: [u8; 32], limits: Limits) -> AddrBook {
        let limits = Limits {
            new_buckets: limits.new_buckets.max(1),
            tried_buckets: limits.tried_buckets.max(1),
            bucket_size: limits.bucket_size.max(1),
        };
        AddrBook {
            key,
            limits,
            entries: HashMap::new(),
            tables: [
                vec![None; limits.new_buckets * limits.bucket_size],
                vec![None; limits.tried_buckets * limits.bucket_size],
            ],
        }
    }

    /// Addresses held (new and tried).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tried addresses held.
    pub fn tried_len(&self) -> usize {
        self.tables[TRIED].iter().filter(|s| s.is_some()).count()
    }

    /// What the book knows of `addr`.
    pub fn get(&self, addr: &SocketAddr) -> Option<&Entry> {
        self.entries.get(addr)
    }

    fn hash(&self, tag: &str, parts: &[&[u8]]) -> u64 {
        let mut h = TaggedHasher::new(tag).bytes(&self.key);
        for p in parts {
            h = h.bytes(&(p.len() as u32).to_le_bytes()).bytes(p);
        }
        let d = h.finish();
        u64::from_le_bytes(d.0[..8].try_into().unwrap_or([0; 8]))
    }

    fn addr_bytes(addr: &SocketAddr) -> Vec<u8> {
        let mut v = match addr.ip() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        v.extend_from_slice(&addr.port().to_le_bytes());
        v
    }

    /// The new-table slot of `addr` heard of from `source`.
    fn new_slot(&self, addr: &SocketAddr, source: &[u8]) -> usize {
        let group = group16(addr.ip());
        let part = self.hash("minima/addr/new-part", &[&group]) % NEW_BUCKETS_PER_SOURCE;
        let bucket = self.hash("minima/addr/new-bucket", &[source, &part.to_le_bytes()])
            % self.limits.new_buckets as u64;
        let slot = self.hash("minima/addr/new-slot", &[&bucket.to_le_bytes(), &Self::addr_bytes(addr)])
            % self.limits.bucket_size as u64;
        bucket as usize * self.limits.bucket_size + slot as usize
    }

    /// The tried-table slot of `addr`.
    fn tried_slot(&self, addr: &SocketAddr) -> usize {
        let group = group16(addr.ip());
        let bytes = Self::addr_bytes(addr);
        let part = self.hash("minima/addr/tried-part", &[&bytes]) % TRIED_BUCKETS_PER_GROUP;
        let bucket = self.hash("minima/addr/tried-bucket", &[&group, &part.to_le_bytes()])
            % self.limits.tried_buckets as u64;
        let slot = self.hash("minima/addr/tried-slot", &[&bucket.to_le_bytes(), &bytes])
            % self.limits.bucket_size as u64;
        bucket as usize * self.limits.bucket_size + slot as usize
    }

    /// Forget `addr` (our own address, met as a peer). Returns whether it was held.
    pub fn forget(&mut self, addr: &SocketAddr) -> bool {
        self.remove(addr).is_some()
    }

    /// The tried addresses, in table order (what is persisted across restarts).
    pub fn tried(&self) -> impl Iterator<Item = &Entry> {
        self.tables[TRIED].iter().flatten().filter_map(|a| self.entries.get(a))
    }

    /// Put back a tried address remembered from an earlier run, last reached at
    /// `last_success` (new if its tried slot is taken, as [`AddrBook::good`] would leave it).
    pub fn restore(&mut self, addr: SocketAddr, last_success: Time) {
        self.good(addr, last_success);
    }

    fn remove(&mut self, addr: &SocketAddr) -> Option<Entry> {
        let e = self.entries.remove(addr)?;
        self.tables[e.slot.0][e.slot.1] = None;
        Some(e)
    }

    /// `addr` was gossiped by a peer at `source` (or configured: pass its own ip). A known
    /// address is only refreshed; a new one takes its new-table slot if that is free or holds
    /// a dead address. Returns whether it was added.
    pub fn add(&mut self, addr: SocketAddr, source: IpAddr, now: Time) -> bool {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.last_seen = e.last_seen.max(now);
            return false;
        }
        let src = group16(source);
        let slot = self.new_slot(&addr, &src);
        if let Some(old) = self.tables[NEW][slot] {
            match self.entries.get(&old) {
                Some(o) if !o.is_terrible(now) => return false,
                _ => {
                    self.remove(&old);
                }
            }
        }
        self.tables[NEW][slot] = Some(addr);
        let e = Entry {
            addr,
            source: src,
            last_seen: now,
            last_try: None,
            last_success: None,
            failures: 0,
            tried: false,
            slot: (NEW, slot),
        };
        self.entries.insert(addr, e);
        true
    }

    /// We dialled `addr` at `now` (counted as a failure until [`AddrBook::good`]).
    pub fn attempt(&mut self, addr: &SocketAddr, now: Time) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.last_try = Some(now);
            e.failures = e.failures.saturating_add(1);
        }
    }

    /// A handshake with `addr` completed at `now`: it moves to (or stays in) the tried
    /// table. An address we never heard of (a configured peer, or one we were told of and
    /// forgot) is added first. A tried slot's other occupant goes back to the new table (or
    /// is dropped if that slot is taken by a live address).
    pub fn good(&mut self, addr: SocketAddr, now: Time) {
        if !self.entries.contains_key(&addr) {
            self.add(addr, addr.ip(), now);
        }
        let slot = self.tried_slot(&addr);
        let Some(mut e) = self.remove(&addr) else {
            // Its new slot was held by a live address: go straight to tried.
            let e = Entry {
                addr,
                source: group16(addr.ip()),
                last_seen: now,
                last_try: Some(now),
                last_success: Some(now),
                failures: 0,
                tried: true,
                slot: (TRIED, slot),
            };
            self.place_tried(e, now);
            return;
        };
        e.last_seen = now;
        e.last_try = Some(now);
        e.last_success = Some(now);
        e.failures = 0;
        e.tried = true;
        e.source = group16(addr.ip());
        e.slot = (TRIED, slot);
        self.place_tried(e, now);
    }

    fn place_tried(&mut self, e: Entry, now: Time) {
        let slot = e.slot.1;
        if let Some(old) = self.tables[TRIED][slot] {
            if let Some(mut o) = self.remove(&old) {
                // Back to new, as if it had told us of itself.
                let ns = self.new_slot(&o.addr, &o.source);
                let free = match self.tables[NEW][ns] {
                    None => true,
                    Some(x) => self.entries.get(&x).is_none_or(|x| x.is_terrible(now)),
                };
                if free {
                    if let Some(x) = self.tables[NEW][ns] {
                        self.remove(&x);
                    }
                    o.tried = false;
                    o.slot = (NEW, ns);
                    self.tables[NEW][ns] = Some(o.addr);
                    self.entries.insert(o.addr, o);
                }
            }
        }
        self.tables[TRIED][slot] = Some(e.addr);
        self.entries.insert(e.addr, e);
    }

    /// Choose an address to dial: from the tried or the new table with even odds (the other
    /// if the first holds nothing that qualifies), weighted by [`Entry::chance`] (addresses
    /// not tried lately first), never one for which `skip` holds (connected already, or its
    /// group taken). One pass over the tables: `None` only when nothing qualifies.
    pub fn select(
        &self,
        rng: &mut impl RngCore,
        now: Time,
        skip: impl Fn(&SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        let first = (rng.next_u32() & 1) as usize;
        for table in [first, 1 - first] {
            let candidates: Vec<&Entry> = self.tables[table]
                .iter()
                .flatten()
                .filter(|a| !skip(a))
                .filter_map(|a| self.entries.get(a))
                .collect();
            let total: f64 = candidates.iter().map(|e| e.chance(now)).sum();
            if candidates.is_empty() || total <= 0.0 {
                continue;
            }
            let mut roll = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
            for e in &candidates {
                roll -= e.chance(now);
                if roll < 0.0 {
                    return Some(e.addr);
                }
            }
            return candidates.last().map(|e| e.addr);
        }
        None
    }

    /// An outbound address whose /16 group none of `groups` (those we already have an
    /// outbound peer in) holds, and that is not in `connected`.
    pub fn select_outbound(
        &self,
        rng: &mut impl RngCore,
        now: Time,
        groups: &HashSet<Vec<u8>>,
        connected: &HashSet<SocketAddr>,
    ) -> Option<SocketAddr> {
        self.select(rng, now, |a| connected.contains(a) || groups.contains(&group16(a.ip())))
    }

    /// Up to `n` tried addresses, drawn at random (an answer to `GetPeers`): only addresses
    /// we reached ourselves are passed on.
    pub fn sample(&self, rng: &mut impl RngCore, n: usize) -> Vec<SocketAddr> {
        let mut tried: Vec<SocketAddr> = self.tables[TRIED].iter().flatten().copied().collect();
        // A partial Fisher–Yates shuffle: the first n are a uniform sample.
        let k = n.min(tried.len());
        for i in 0..k {
            let j = i + (rng.next_u64() % (tried.len() - i) as u64) as usize;
            tried.swap(i, j);
        }
        tried.truncate(k);
        tried
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn a(b0: u8, b1: u8, b2: u8, b3: u8) -> SocketAddr {
        SocketAddr::from(([b0, b1, b2, b3], 9001))
    }

    fn ip(b0: u8, b1: u8) -> IpAddr {
        IpAddr::from([b0, b1, 7, 7])
    }

    fn book() -> AddrBook {
        AddrBook::new([7; 32], Limits::PHONE)
    }

    #[test]
    fn one_source_group_reaches_only_its_share_of_the_new_table() {
        let mut b = book();
        let t = Time::ZERO;
        // A flood of 20,000 addresses from 20,000 /16 groups, all from one source group.
        for i in 0..20_000u32 {
            let [_, _, y, z] = i.to_be_bytes();
            b.add(a(y + 1, z, 1, 1), ip(66, 6), t);
        }
        let cap = NEW_BUCKETS_PER_SOURCE as usize * Limits::PHONE.bucket_size;
        assert!(b.len() <= cap, "{} addresses from one source, cap {cap}", b.len());
        // Honest addresses from other sources still find room.
        let mut honest = 0;
        for s in 0..50u8 {
            for k in 0..10u8 {
                honest += b.add(a(100 + s, k, 1, 1), ip(10, s), t) as usize;
            }
        }
        assert!(honest >= 300, "only {honest} of 500 honest addresses found room");
    }

    #[test]
    fn one_group_reaches_only_its_share_of_the_tried_table() {
        let mut b = AddrBook::new([9; 32], Limits::SERVER);
        let t = Time::ZERO;
        for i in 0..5_000u32 {
            let [_, _, y, z] = i.to_be_bytes();
            b.good(a(44, 44, y, z), t);
        }
        let cap = TRIED_BUCKETS_PER_GROUP as usize * Limits::SERVER.bucket_size;
        assert!(b.tried_len() <= cap, "{} tried from one /16, cap {cap}", b.tried_len());
    }

    #[test]
    fn a_flood_never_evicts_a_live_address_and_dead_ones_give_way() {
        let mut b = AddrBook::new([1; 32], Limits { new_buckets: 1, tried_buckets: 1, bucket_size: 1 });
        let t0 = Time::ZERO;
        assert!(b.add(a(1, 1, 1, 1), ip(1, 1), t0));
        for i in 0..100u8 {
            assert!(!b.add(a(2, i, 1, 1), ip(66, 6), t0), "a live address keeps its slot");
        }
        // Three failed attempts, never reached: dead. The next newcomer takes the slot.
        for k in 0..3u64 {
            b.attempt(&a(1, 1, 1, 1), t0 + Duration::from_secs(k * 600));
        }
        let later = t0 + Duration::from_secs(3_600);
        assert!(b.get(&a(1, 1, 1, 1)).unwrap().is_terrible(later));
        assert!(b.add(a(3, 3, 3, 3), ip(66, 6), later));
        assert!(b.get(&a(1, 1, 1, 1)).is_none());
        // Unheard of for 30 days: dead as well.
        let far = later + HORIZON + Duration::from_secs(61);
        assert!(b.get(&a(3, 3, 3, 3)).unwrap().is_terrible(far));
    }

    #[test]
    fn a_good_address_moves_to_tried_and_its_slot_mate_goes_back_to_new() {
        let mut b = AddrBook::new([2; 32], Limits { new_buckets: 4, tried_buckets: 1, bucket_size: 1 });
        let t = Time::ZERO;
        b.add(a(5, 5, 5, 5), ip(8, 8), t);
        b.good(a(5, 5, 5, 5), t);
        let e = b.get(&a(5, 5, 5, 5)).unwrap();
        assert!(e.tried && e.failures == 0 && e.last_success == Some(t));
        assert_eq!(b.tried_len(), 1);
        // Another good address needs the only tried slot: the first goes back to new.
        b.good(a(6, 6, 6, 6), t + Duration::from_secs(1));
        assert!(b.get(&a(6, 6, 6, 6)).unwrap().tried);
        let moved = b.get(&a(5, 5, 5, 5)).expect("not lost");
        assert!(!moved.tried);
        assert_eq!(b.tried_len(), 1);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn outbound_choices_skip_taken_groups_and_connected_addresses() {
        let mut b = book();
        let t = Time::ZERO;
        for g in 1..=20u8 {
            b.add(a(g, g, 1, 1), ip(g, 0), t);
            b.good(a(g, g, 1, 1), t);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut groups = HashSet::new();
        let mut connected = HashSet::new();
        for _ in 0..8 {
            let pick = b.select_outbound(&mut rng, t, &groups, &connected).expect("an address");
            assert!(groups.insert(group16(pick.ip())), "a second outbound in one /16");
            connected.insert(pick);
        }
        // Every group taken: nothing left.
        let all: HashSet<Vec<u8>> = (1..=20u8).map(|g| vec![g, g]).collect();
        assert_eq!(b.select_outbound(&mut rng, t, &all, &connected), None);
    }

    #[test]
    fn recently_tried_addresses_are_rarely_chosen() {
        let mut b = book();
        let t = Time::ZERO;
        b.add(a(1, 1, 1, 1), ip(1, 1), t);
        b.add(a(2, 2, 2, 2), ip(2, 2), t);
        b.attempt(&a(1, 1, 1, 1), t);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let picks: Vec<_> = (0..200).filter_map(|_| b.select(&mut rng, t, |_| false)).collect();
        let fresh = picks.iter().filter(|p| **p == a(2, 2, 2, 2)).count();
        assert_eq!(picks.len(), 200);
        assert!(fresh >= 150, "the untried address was picked {fresh} times of 200");
    }

    #[test]
    fn only_tried_addresses_are_gossiped() {
        let mut b = book();
        let t = Time::ZERO;
        for i in 1..=30u8 {
            b.add(a(i, 1, 1, 1), ip(i, 9), t);
        }
        for i in 1..=5u8 {
            b.good(a(i, 1, 1, 1), t);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let s = b.sample(&mut rng, 50);
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|x| b.get(x).unwrap().tried));
        assert_eq!(b.sample(&mut rng, 2).len(), 2);
    }

    #[test]
    fn tried_addresses_survive_a_restart_and_a_forgotten_one_is_gone() {
        let mut b = book();
        let t = Time::ZERO + Duration::from_secs(1_000);
        for i in 1..=6u8 {
            b.add(a(i, 2, 2, 2), ip(i, 5), t);
        }
        for i in 1..=3u8 {
            b.good(a(i, 2, 2, 2), t + Duration::from_secs(i as u64));
        }
        let kept: Vec<(SocketAddr, Time)> =
            b.tried().map(|e| (e.addr, e.last_success.expect("tried"))).collect();
        assert_eq!(kept.len(), 3);
        // A new run: the tried ones come back as they were; the new ones were not kept.
        let mut again = book();
        for (addr, at) in &kept {
            again.restore(*addr, *at);
        }
        let back: Vec<(SocketAddr, Time)> =
            again.tried().map(|e| (e.addr, e.last_success.expect("tried"))).collect();
        assert_eq!(back, kept);
        assert!(again.forget(&a(1, 2, 2, 2)));
        assert!(!again.forget(&a(1, 2, 2, 2)));
        assert_eq!((again.len(), again.tried_len()), (2, 2));
    }

    #[test]
    fn the_same_inputs_and_seed_make_the_same_choices() {
        let run = |seed: u64| {
            let mut b = book();
            for i in 0..200u32 {
                let [_, _, _, y] = i.to_be_bytes();
                b.add(a(1, y, 1, 1), ip(y, 3), Time::ZERO);
                if i % 7 == 0 {
                    b.good(a(1, y, 1, 1), Time::ZERO);
                }
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let picks: Vec<_> = (0..20).map(|_| b.select(&mut rng, Time::ZERO, |_| false)).collect();
            (picks, b.sample(&mut rng, 10))
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }
}
