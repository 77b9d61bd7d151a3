//! Peers and the address book as one state machine (issue 14's mesh): which addresses to
//! dial to keep the outbound target spread over /16 groups, which inbound peers' advertised
//! addresses to verify by dialling them back before they are passed on, what to answer
//! `GetPeers`, which outbound peers to close when the target falls, and which addresses to
//! persist (reached ones, and a few anchors dialled first after a restart).
//!
//! Sans-I/O: the driver feeds [`Input`]s with the time
//! ([`Mesh::handle`]), carries out the [`Output`]s [`Mesh::poll`] gives, and calls
//! [`Mesh::handle`] with [`Input::Tick`] at [`Mesh::poll_timeout`]. Randomness is a seeded
//! ChaCha stream, so the same seed and inputs give the same outputs.
//!
//! Connections the driver keeps by itself (configured peers and seeds, redialled with
//! backoff for as long as the node runs) are [`Dir::Fixed`]: they count towards the target
//! and their groups towards diversity, but are never closed to meet a lower target.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::addrbook::{group16, AddrBook, Limits};
use super::Time;
use crate::crypto::Hash;

/// Dial-backs in flight at once.
pub const MAX_PROBES: usize = 4;
/// Inbound peers waiting for a dial-back; past this, newcomers are not verified (they are
/// again when they next connect).
pub const MAX_PROBE_QUEUE: usize = 64;
/// An IP with an address verified (or found wrong) this recently is not dialled back again.
pub const PROBE_AGAIN_AFTER: Duration = Duration::from_secs(600);
/// Most dial-backs queued for one /16 group.
pub const MAX_PROBES_PER_GROUP: usize = 4;
/// Addresses remembered as recently probed (oldest forgotten first).
const MAX_PROBED: usize = 1_024;
/// Most anchors: outbound peers persisted and dialled first after a restart.
pub const MAX_ANCHORS: usize = 4;
/// First wait between discovery rounds while below the target (doubles up to the configured
/// interval; back to this when an outbound peer is lost).
pub const FIRST_STEP: Duration = Duration::from_secs(1);
/// Most of our own addresses remembered (met when a dial reached ourselves).
const MAX_OWN: usize = 16;

/// How a connection came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The peer dialled us.
    Inbound,
    /// We dialled an address the mesh chose ([`Output::Dial`]).
    Outbound,
    /// We dialled a configured peer or seed (the driver redials it by itself).
    Fixed,
}

/// What happened, as the driver tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A handshake completed.
    Connected {
        /// The peer's node id (from its TLS key).
        peer: Hash,
        /// The connection's id: the driver's, rising in the order connections register.
        conn: u64,
        /// The address the connection runs to (for inbound: where it came from).
        addr: SocketAddr,
        /// How it came about.
        dir: Dir,
        /// The address its `Hello` says it listens on (`None` for a client).
        listen: Option<SocketAddr>,
    },
    /// A connection closed (every connection the driver had registered, current or not).
    Disconnected {
        /// The peer's node id.
        peer: Hash,
        /// The connection's id: only the peer's current connection counts.
        conn: u64,
    },
    /// A dial of [`Output::Dial`] ended (connected and since closed, or never connected).
    DialEnded(SocketAddr),
    /// A dial reached ourselves: never dial that address again.
    Myself(SocketAddr),
    /// A peer at `from` answered `GetPeers` with `addrs`.
    Addrs {
        /// Where the answer came from (its /16 group is the source of every address).
        from: SocketAddr,
        /// The addresses, as parsed.
        addrs: Vec<SocketAddr>,
    },
    /// A dial-back ([`Output::Probe`]) ended: `ok` if the address answered with the
    /// expected node id.
    Probed {
        /// The address dialled back.
        addr: SocketAddr,
        /// Whether it held the key of the peer that advertised it.
        ok: bool,
    },
    /// Outbound peers to keep (the energy policy's knob).
    Target(usize),
    /// Connections wanted (`false`: the driver closes every connection; no dialling).
    Online(bool),
    /// The moment [`Mesh::poll_timeout`] gave has come (early calls do nothing).
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Dial this address and handshake ([`Dir::Outbound`]); then [`Input::DialEnded`].
    Dial(SocketAddr),
    /// Dial `addr` only to check that the key behind it is `peer`'s, then close; then
    /// [`Input::Probed`].
    Probe {
        /// The address to check.
        addr: SocketAddr,
        /// The node id expected there.
        peer: Hash,
    },
    /// Ask this peer for addresses (`GetPeers`); its answer is [`Input::Addrs`].
    AskAddrs(Hash),
    /// Close the connection to this peer (above the target).
    Close(Hash),
    /// Persist this address as reached (the store's peer table).
    Remember(SocketAddr),
    /// Persist these as the anchors, replacing the last set.
    Anchors(Vec<SocketAddr>),
}

#[derive(Debug, Clone)]
struct Conn {
    id: u64,
    addr: SocketAddr,
    dir: Dir,
    since: Time,
}

/// The mesh (see the module docs).
#[derive(Debug)]
pub struct Mesh {
    book: AddrBook,
    rng: ChaCha8Rng,
    target: usize,
    online: bool,
    /// How long discovery rounds wait at most (the configured interval).
    every: Duration,
    /// The current wait between rounds while below the target.
    step: Duration,
    next_round: Time,
    own: BTreeSet<SocketAddr>,
    peers: BTreeMap<Hash, Conn>,
    dialing: BTreeSet<SocketAddr>,
    /// Anchors from the last run, dialled at the first round.
    anchors_due: Vec<SocketAddr>,
    last_anchors: Vec<SocketAddr>,
    probing: BTreeMap<SocketAddr, Hash>,
    probe_queue: VecDeque<(SocketAddr, Hash)>,
    probed: VecDeque<(SocketAddr, Time)>,
    out: VecDeque<Output>,
}

impl Mesh {
    /// A mesh keeping `target` outbound peers, looking for more every `every` at most, with
    /// an address book of `limits`; `seed` keys the book and seeds every random choice.
    /// `own` is our listen address (never dialled). It starts online (see [`Input::Online`]).
    pub fn new(
        seed: [u8; 32],
        limits: Limits,
        target: usize,
        every: Duration,
        own: Option<SocketAddr>,
    ) -> Mesh {
        let mut rng = ChaCha8Rng::from_seed(seed);
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        Mesh {
            book: AddrBook::new(key, limits),
            rng,
            target,
            online: true,
            every: every.max(FIRST_STEP),
            step: FIRST_STEP,
            next_round: Time::ZERO,
            own: own.into_iter().collect(),
            peers: BTreeMap::new(),
            dialing: BTreeSet::new(),
            anchors_due: vec![],
            last_anchors: vec![],
            probing: BTreeMap::new(),
            probe_queue: VecDeque::new(),
            probed: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// Put back what an earlier run persisted: reached addresses (into the tried table) and
    /// anchors (dialled first, at the next round).
    pub fn restore(&mut self, now: Time, reached: &[SocketAddr], anchors: &[SocketAddr]) {
        for a in reached.iter().chain(anchors) {
            if !self.own.contains(a) {
                self.book.restore(*a, now);
            }
        }
        self.anchors_due =
            anchors.iter().filter(|a| !self.own.contains(a)).take(MAX_ANCHORS).copied().collect();
        self.last_anchors = self.anchors_due.clone();
        self.next_round = now;
    }

    /// The address book (read-only).
    pub fn book(&self) -> &AddrBook {
        &self.book
    }

    /// Connected outbound peers (mesh-chosen and fixed).
    pub fn outbound(&self) -> usize {
        self.peers.values().filter(|c| c.dir != Dir::Inbound).count()
    }

    /// Up to `n` addresses to answer `GetPeers` with: tried ones only (reached by us, or
    /// verified by a dial-back).
    pub fn share(&mut self, n: usize) -> Vec<SocketAddr> {
        self.book.sample(&mut self.rng, n)
    }

    /// Take an input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Connected { peer, conn, addr, dir, listen } => {
                self.connected(now, peer, conn, addr, dir, listen)
            }
            Input::Disconnected { peer, conn } => {
                if self.peers.get(&peer).is_some_and(|c| c.id == conn) {
                    let c = self.peers.remove(&peer);
                    if c.is_some_and(|c| c.dir != Dir::Inbound) {
                        // Refill soon.
                        self.step = FIRST_STEP;
                        self.next_round = self.next_round.min(now + FIRST_STEP);
                    }
                }
            }
            Input::DialEnded(addr) => {
                self.dialing.remove(&addr);
            }
            Input::Myself(addr) => {
                self.book.forget(&addr);
                self.dialing.remove(&addr);
                if self.own.len() < MAX_OWN {
                    self.own.insert(addr);
                }
            }
            Input::Addrs { from, addrs } => {
                let from_class = class(from.ip());
                for a in addrs.into_iter().take(crate::net::message::MAX_PEERS) {
                    let a = SocketAddr::new(a.ip().to_canonical(), a.port());
                    // Global addresses, or of the class of the peer that told us (loopback
                    // from loopback, a LAN from the LAN): a peer cannot aim our dials at our
                    // own host or network.
                    let c = class(a.ip());
                    let fits = c == Class::Global || (c != Class::Never && c == from_class);
                    if fits && a.port() != 0 && !self.own.contains(&a) {
                        self.book.add(a, from.ip(), now);
                    }
                }
            }
            Input::Probed { addr, ok } => {
                // Verified addresses are passed on, not persisted: only addresses we dialled
                // ourselves are (one host cannot fill our peer table by connecting to us).
                if self.probing.remove(&addr).is_some() && ok {
                    self.book.good(addr, now);
                }
                self.next_probe(now);
            }
            Input::Target(n) => {
                if n > self.target {
                    self.next_round = now;
                }
                self.target = n;
                self.trim();
            }
            Input::Online(on) if on == self.online => {}
            Input::Online(on) => {
                self.online = on;
                if on {
                    self.step = FIRST_STEP;
                    self.next_round = now;
                } else {
                    self.probe_queue.clear();
                }
            }
            Input::Tick => {
                if self.online && now >= self.next_round {
                    self.round(now);
                }
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Mesh::handle`] with [`Input::Tick`] (`None`: only on other inputs).
    pub fn poll_timeout(&self) -> Option<Time> {
        self.online.then_some(self.next_round)
    }

    fn connected(
        &mut self,
        now: Time,
        peer: Hash,
        id: u64,
        addr: SocketAddr,
        dir: Dir,
        listen: Option<SocketAddr>,
    ) {
        self.dialing.remove(&addr);
        // Connection ids rise in the order connections register: an older one reported late
        // does not replace the newer.
        if self.peers.get(&peer).is_some_and(|c| c.id > id) {
            return;
        }
        self.peers.insert(peer, Conn { id, addr, dir, since: now });
        match dir {
            Dir::Inbound => {
                // Its advertised address, at the IP it came from (never another host's).
                if let Some(l) = listen.filter(|l| l.port() != 0) {
                    let at = SocketAddr::new(addr.ip(), l.port());
                    self.queue_probe(now, at, peer);
                }
            }
            Dir::Outbound | Dir::Fixed => {
                self.book.good(addr, now);
                self.out.push_back(Output::Remember(addr));
                self.out.push_back(Output::AskAddrs(peer));
                if dir == Dir::Outbound {
                    // The mesh-chosen outbound peers connected longest (configured ones are
                    // dialled anyway; a node id, which costs nothing to make, decides nothing).
                    let mut chosen: Vec<(Time, SocketAddr)> = self
                        .peers
                        .values()
                        .filter(|c| c.dir == Dir::Outbound)
                        .map(|c| (c.since, c.addr))
                        .collect();
                    chosen.sort();
                    let anchors: Vec<SocketAddr> =
                        chosen.into_iter().map(|c| c.1).take(MAX_ANCHORS).collect();
                    if anchors != self.last_anchors {
                        self.last_anchors = anchors.clone();
                        self.out.push_back(Output::Anchors(anchors));
                    }
                }
            }
        }
    }

    /// Queue a dial-back of `at`. One address per IP: an IP with a verified address, one
    /// being checked or queued, or one checked in the last [`PROBE_AGAIN_AFTER`] gets no
    /// other (a host cannot fill the book by advertising port after port); at most
    /// [`MAX_PROBES_PER_GROUP`] queued per /16 group (one group cannot starve the queue).
    fn queue_probe(&mut self, now: Time, at: SocketAddr, peer: Hash) {
        let ip = at.ip();
        let fresh = |t: &Time| now.saturating_duration_since(*t) < PROBE_AGAIN_AFTER;
        let group = group16(ip);
        if self.own.contains(&at)
            || self.book.tried().any(|e| e.addr.ip() == ip)
            || self.probing.keys().any(|a| a.ip() == ip)
            || self.probe_queue.iter().any(|(a, _)| a.ip() == ip)
            || self.probed.iter().any(|(a, t)| a.ip() == ip && fresh(t))
            || self.probe_queue.iter().filter(|(a, _)| group16(a.ip()) == group).count()
                >= MAX_PROBES_PER_GROUP
        {
            return;
        }
        if self.probe_queue.len() < MAX_PROBE_QUEUE {
            self.probe_queue.push_back((at, peer));
        }
        self.next_probe(now);
    }

    fn next_probe(&mut self, now: Time) {
        while self.probing.len() < MAX_PROBES {
            let Some((at, peer)) = self.probe_queue.pop_front() else { return };
            if self.probed.len() >= MAX_PROBED {
                self.probed.pop_front();
            }
            self.probed.push_back((at, now));
            self.probing.insert(at, peer);
            self.out.push_back(Output::Probe { addr: at, peer });
        }
    }

    /// Close mesh-chosen outbound peers above the target, the newest first.
    fn trim(&mut self) {
        let mut excess = self.outbound().saturating_sub(self.target);
        if excess == 0 {
            return;
        }
        let mut chosen: Vec<(Time, Hash)> =
            self.peers.iter().filter(|(_, c)| c.dir == Dir::Outbound).map(|(id, c)| (c.since, *id)).collect();
        chosen.sort_by(|a, b| b.cmp(a));
        for (_, id) in chosen {
            if excess == 0 {
                break;
            }
            self.out.push_back(Output::Close(id));
            self.peers.remove(&id);
            excess -= 1;
        }
    }

    /// One discovery round: dial towards the target (anchors first, then one address per
    /// /16 group not yet covered), ask a peer for addresses when the book has none to give.
    fn round(&mut self, now: Time) {
        let have = self.outbound() + self.dialing.len();
        if have >= self.target {
            self.step = self.every;
            self.next_round = now + self.every;
            return;
        }
        let mut want = self.target - have;
        let mut busy: HashSet<SocketAddr> = self.peers.values().map(|c| c.addr).collect();
        busy.extend(self.dialing.iter().copied());
        busy.extend(self.own.iter().copied());
        let mut groups: HashSet<Vec<u8>> = self
            .peers
            .values()
            .filter(|c| c.dir != Dir::Inbound)
            .map(|c| group16(c.addr.ip()))
            .chain(self.dialing.iter().map(|a| group16(a.ip())))
            .collect();
        for a in std::mem::take(&mut self.anchors_due) {
            if want > 0 && !busy.contains(&a) {
                self.dial(now, a, &mut busy, &mut groups);
                want -= 1;
            }
        }
        while want > 0 {
            let Some(a) = self.book.select_outbound(&mut self.rng, now, &groups, &busy) else { break };
            self.dial(now, a, &mut busy, &mut groups);
            want -= 1;
        }
        if want > 0 {
            // Short of addresses: ask one peer (a different one each round, at random).
            let ids: Vec<Hash> = self.peers.keys().copied().collect();
            if !ids.is_empty() {
                let i = (self.rng.next_u64() % ids.len() as u64) as usize;
                self.out.push_back(Output::AskAddrs(ids[i]));
            }
        }
        self.next_round = now + self.step;
        self.step = (self.step * 2).min(self.every);
    }

    fn dial(
        &mut self,
        now: Time,
        a: SocketAddr,
        busy: &mut HashSet<SocketAddr>,
        groups: &mut HashSet<Vec<u8>>,
    ) {
        self.book.attempt(&a, now);
        self.dialing.insert(a);
        busy.insert(a);
        groups.insert(group16(a.ip()));
        self.out.push_back(Output::Dial(a));
    }
}

/// What kind of network an address is on, for which gossiped addresses we dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Reachable from the internet.
    Global,
    /// This host.
    Loopback,
    /// A private network (RFC 1918, link-local, unique-local).
    Local,
    /// Carrier-grade NAT and overlay networks (100.64/10): not the LAN's class.
    Shared,
    /// Never dialled (unspecified, multicast, broadcast, documentation).
    Never,
}

fn class(ip: std::net::IpAddr) -> Class {
    use std::net::IpAddr;
    match ip.to_canonical() {
        IpAddr::V4(v) => {
            let o = v.octets();
            if v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_documentation() || o[0] == 0
            {
                Class::Never
            } else if v.is_loopback() {
                Class::Loopback
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Class::Shared
            } else if v.is_private() || v.is_link_local() {
                Class::Local
            } else {
                Class::Global
            }
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            if v.is_unspecified() || v.is_multicast() || (s[0] == 0x2001 && s[1] == 0xdb8) {
                Class::Never
            } else if v.is_loopback() {
                Class::Loopback
            } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 {
                Class::Local
            } else {
                Class::Global
            }
        }
    }
}

super::machine!(Mesh, Input, Output);

#[cfg(test)]
mod tests {
    use super::*;

    fn a(b1: u8) -> SocketAddr {
        SocketAddr::from(([127, b1, 0, 1], 9000))
    }

    fn id(n: u8) -> Hash {
        Hash([n; 32])
    }

    fn t(s: u64) -> Time {
        Time::from_origin(Duration::from_secs(s))
    }

    fn mesh(target: usize) -> Mesh {
        Mesh::new([3; 32], Limits::SERVER, target, Duration::from_secs(30), Some(a(0)))
    }

    fn drain(m: &mut Mesh) -> Vec<Output> {
        std::iter::from_fn(|| m.poll()).collect()
    }

    fn dials(out: &[Output]) -> Vec<SocketAddr> {
        out.iter().filter_map(|o| if let Output::Dial(a) = o { Some(*a) } else { None }).collect()
    }

    /// Node 0 of a devnet: every other node dials it; it verifies each advertised address
    /// by dialling it back (never more than [`MAX_PROBES`] at once), and only then passes
    /// it on.
    #[test]
    fn inbound_addresses_are_passed_on_only_once_dialled_back() {
        let mut m = mesh(8);
        for i in 1..=7 {
            m.handle(
                t(1),
                Input::Connected { conn: 0, peer: id(i), addr: a(i), dir: Dir::Inbound, listen: Some(a(i)) },
            );
        }
        let out = drain(&mut m);
        let probes: Vec<_> = out.iter().filter(|o| matches!(o, Output::Probe { .. })).collect();
        assert_eq!(probes.len(), MAX_PROBES);
        assert_eq!(probes[0], &Output::Probe { addr: a(1), peer: id(1) });
        assert!(m.share(50).is_empty(), "nothing verified yet");
        // One fails (another host's key there), the rest hold.
        m.handle(t(2), Input::Probed { addr: a(1), ok: false });
        for i in 2..=4 {
            m.handle(t(2), Input::Probed { addr: a(i), ok: true });
        }
        let out = drain(&mut m);
        assert_eq!(out.iter().filter(|o| matches!(o, Output::Probe { .. })).count(), 3, "the queue moves on");
        assert!(!out.iter().any(|o| matches!(o, Output::Remember(_))), "verified, not persisted");
        let mut shared = m.share(50);
        shared.sort();
        assert_eq!(shared, vec![a(2), a(3), a(4)]);
        // A reconnecting peer is not dialled back again so soon.
        m.handle(t(3), Input::Disconnected { peer: id(1), conn: 0 });
        m.handle(
            t(3),
            Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Inbound, listen: Some(a(1)) },
        );
        assert!(!drain(&mut m).iter().any(|o| matches!(o, Output::Probe { .. })));
    }

    /// The advertised address is dialled back only at the IP the peer came from: a peer
    /// cannot make us dial a third host.
    #[test]
    fn dial_back_goes_only_to_the_observed_ip() {
        let mut m = mesh(8);
        let elsewhere = SocketAddr::from(([10, 9, 9, 9], 4444));
        m.handle(
            t(1),
            Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Inbound, listen: Some(elsewhere) },
        );
        let out = drain(&mut m);
        assert_eq!(out, vec![Output::Probe { addr: SocketAddr::new(a(1).ip(), 4444), peer: id(1) }]);
        // Clients advertise nothing: no probe.
        m.handle(
            t(1),
            Input::Connected { conn: 0, peer: id(2), addr: a(2), dir: Dir::Inbound, listen: None },
        );
        assert!(drain(&mut m).is_empty());
    }

    /// Gossiped addresses fill the target one /16 group at a time, and never our own.
    #[test]
    fn the_target_is_filled_across_groups() {
        let mut m = mesh(4);
        m.handle(
            t(0),
            Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Fixed, listen: Some(a(1)) },
        );
        let out = drain(&mut m);
        assert!(out.contains(&Output::AskAddrs(id(1))));
        assert!(out.contains(&Output::Remember(a(1))));
        assert!(!out.iter().any(|o| matches!(o, Output::Anchors(_))), "a configured peer is no anchor");
        // Ten addresses in /16 group 127.2, one each in 127.3 and 127.4, and ourselves.
        let mut addrs: Vec<SocketAddr> = (0..10).map(|p| SocketAddr::from(([127, 2, 0, p], 9000))).collect();
        addrs.extend([a(3), a(4), a(0)]);
        m.handle(t(0), Input::Addrs { from: a(1), addrs });
        m.handle(t(1), Input::Tick);
        let mut d = dials(&drain(&mut m));
        d.sort();
        assert_eq!(d.len(), 3, "{d:?}");
        let groups: HashSet<Vec<u8>> = d.iter().map(|x| group16(x.ip())).collect();
        assert_eq!(groups.len(), 3, "one per group: {d:?}");
        assert!(!d.contains(&a(0)) && !d.contains(&a(1)));
        // Dialling counts towards the target: the next round dials nothing more.
        m.handle(t(5), Input::Tick);
        assert!(dials(&drain(&mut m)).is_empty());
    }

    /// Short of addresses, a round asks a connected peer for more; rounds come quickly at
    /// first (1 s, doubling), then at the configured interval.
    #[test]
    fn short_of_addresses_a_round_asks_and_backs_off() {
        let mut m = mesh(8);
        m.handle(t(0), Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Fixed, listen: None });
        drain(&mut m);
        let mut rounds = vec![];
        let mut now = t(0);
        for _ in 0..8 {
            let due = m.poll_timeout().unwrap();
            now = now.max(due);
            m.handle(now, Input::Tick);
            assert!(drain(&mut m).contains(&Output::AskAddrs(id(1))));
            rounds.push(now.since_origin().as_secs());
        }
        assert_eq!(rounds, vec![0, 1, 3, 7, 15, 31, 61, 91]);
        // An early tick does nothing.
        m.handle(now + Duration::from_secs(1), Input::Tick);
        assert!(drain(&mut m).is_empty());
    }

    /// A lower target (a phone going to the background) closes mesh-chosen outbound peers,
    /// the newest first; fixed peers and inbound ones stay.
    #[test]
    fn a_lower_target_closes_the_newest_outbound_peers() {
        let mut m = mesh(8);
        m.handle(t(0), Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Fixed, listen: None });
        for i in 2..=5 {
            m.handle(
                t(i as u64),
                Input::Connected { conn: 0, peer: id(i), addr: a(i), dir: Dir::Outbound, listen: None },
            );
        }
        m.handle(
            t(9),
            Input::Connected { conn: 0, peer: id(9), addr: a(9), dir: Dir::Inbound, listen: None },
        );
        drain(&mut m);
        m.handle(t(10), Input::Target(2));
        let closed: Vec<Output> = drain(&mut m);
        assert_eq!(closed, vec![Output::Close(id(5)), Output::Close(id(4)), Output::Close(id(3))]);
        assert_eq!(m.outbound(), 2);
        // Offline: no round is due at all.
        m.handle(t(11), Input::Online(false));
        assert_eq!(m.poll_timeout(), None);
    }

    /// After a restart, the anchors are dialled first, before any other address.
    #[test]
    fn anchors_are_dialled_first_after_a_restart() {
        let mut m = mesh(8);
        let reached: Vec<SocketAddr> = (10..30).map(a).collect();
        m.restore(t(0), &reached, &[a(7), a(8)]);
        assert_eq!(m.book().tried_len(), 22);
        m.handle(t(0), Input::Tick);
        let d = dials(&drain(&mut m));
        assert_eq!(&d[..2], &[a(7), a(8)]);
        assert_eq!(d.len(), 8);
        // A dial that reached ourselves is never made again.
        m.handle(t(1), Input::Myself(a(10)));
        assert!(m.book().get(&a(10)).is_none());
    }

    /// One host gets one verified address, however many ports it advertises; one /16 group
    /// cannot fill the dial-back queue.
    #[test]
    fn dial_backs_are_one_per_ip_and_a_few_per_group() {
        let mut m = mesh(8);
        for port in 1..=20u16 {
            let addr = SocketAddr::from(([127, 1, 0, 1], 40_000 + port));
            m.handle(
                t(1),
                Input::Connected {
                    conn: port as u64,
                    peer: id(port as u8),
                    addr,
                    dir: Dir::Inbound,
                    listen: Some(addr),
                },
            );
        }
        assert_eq!(drain(&mut m).len(), 1, "one probe for one IP");
        let mut m = mesh(8);
        for host in 1..=40u8 {
            let addr = SocketAddr::from(([127, 1, 0, host], 9000));
            m.handle(
                t(1),
                Input::Connected {
                    conn: host as u64,
                    peer: id(host),
                    addr,
                    dir: Dir::Inbound,
                    listen: Some(addr),
                },
            );
        }
        let probes = drain(&mut m).len();
        assert_eq!(probes, MAX_PROBES, "in flight");
        assert_eq!(m.probe_queue.len(), MAX_PROBES_PER_GROUP, "queued for that group");
    }

    /// Gossiped addresses are dialled only if global, or of the class of the peer that told
    /// us: a peer on the internet cannot aim our dials at our own host or LAN.
    #[test]
    fn a_global_peer_cannot_point_us_at_local_addresses() {
        let mut m = Mesh::new([3; 32], Limits::SERVER, 8, Duration::from_secs(30), None);
        let global = SocketAddr::from(([8, 8, 4, 4], 9000));
        let local = [
            SocketAddr::from(([127, 0, 0, 1], 22)),
            SocketAddr::from(([192, 168, 1, 1], 80)),
            SocketAddr::from(([10, 0, 0, 1], 53)),
            SocketAddr::from(([224, 0, 0, 1], 9000)),
            SocketAddr::from(([0, 0, 0, 0], 9000)),
            "[::ffff:127.0.0.1]:22".parse().unwrap(),
            "[fe80::1]:9000".parse().unwrap(),
        ];
        let mut addrs = local.to_vec();
        addrs.push(SocketAddr::from(([9, 9, 9, 9], 9000)));
        m.handle(t(0), Input::Addrs { from: global, addrs });
        assert_eq!(m.book().len(), 1);
        assert!(m.book().get(&SocketAddr::from(([9, 9, 9, 9], 9000))).is_some());
        // Loopback from loopback is fine (a devnet).
        m.handle(t(0), Input::Addrs { from: a(1), addrs: vec![a(2)] });
        assert!(m.book().get(&a(2)).is_some());
        // A carrier-NAT or overlay peer (100.64/10) is not on our LAN: its LAN addresses are
        // refused, its own class is not.
        let shared = SocketAddr::from(([100, 64, 0, 9], 9000));
        let lan = SocketAddr::from(([10, 1, 1, 1], 9000));
        let other = SocketAddr::from(([100, 100, 0, 1], 9000));
        m.handle(t(0), Input::Addrs { from: global, addrs: vec![other] });
        assert!(m.book().get(&other).is_none(), "not from a global peer");
        m.handle(t(0), Input::Addrs { from: shared, addrs: vec![lan, other] });
        assert!(m.book().get(&lan).is_none());
        assert!(m.book().get(&other).is_some());
    }

    /// A connection that closes after a newer one to the same peer replaced it does not take
    /// the newer one out of the mesh; a repeated `Online(true)` does not restart discovery.
    #[test]
    fn only_the_current_connection_counts() {
        let mut m = mesh(8);
        m.handle(
            t(0),
            Input::Connected { conn: 1, peer: id(1), addr: a(1), dir: Dir::Outbound, listen: None },
        );
        m.handle(
            t(1),
            Input::Connected { conn: 2, peer: id(1), addr: a(1), dir: Dir::Outbound, listen: None },
        );
        m.handle(t(2), Input::Disconnected { peer: id(1), conn: 1 });
        // A registration reported late (an older connection) changes nothing.
        m.handle(
            t(2),
            Input::Connected { conn: 1, peer: id(1), addr: a(1), dir: Dir::Inbound, listen: None },
        );
        assert_eq!(m.outbound(), 1);
        assert_eq!(m.outbound(), 1);
        m.handle(t(3), Input::Disconnected { peer: id(1), conn: 2 });
        assert_eq!(m.outbound(), 0);
        m.handle(t(40), Input::Tick);
        let due = m.poll_timeout();
        m.handle(t(41), Input::Online(true));
        assert_eq!(m.poll_timeout(), due);
    }

    /// Same seed and inputs, same outputs; another seed chooses differently.
    #[test]
    fn choices_follow_the_seed() {
        let run = |seed: u8| {
            let mut m = Mesh::new([seed; 32], Limits::SERVER, 8, Duration::from_secs(30), None);
            m.handle(
                t(0),
                Input::Connected { conn: 0, peer: id(1), addr: a(1), dir: Dir::Fixed, listen: None },
            );
            let addrs: Vec<SocketAddr> = (2..200).map(a).collect();
            m.handle(t(0), Input::Addrs { from: a(1), addrs });
            m.handle(t(1), Input::Tick);
            drain(&mut m)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(dials(&run(1)), dials(&run(2)));
    }
}
