//! The peer protocol as one state machine (issue 14): every unit of `net/proto` behind one
//! entry, `handle(now, Input, &mut impl ChainSink)`, [`Engine::poll`] and
//! [`Engine::poll_timeout`]. The node's chain actor owns it and answers its questions to the
//! chain at once (no round trip); a driver — QUIC in a node ([`crate::net::peer`]), or a
//! simulator — tells it what the sockets did and carries out what it asks.
//!
//! What it decides, and where each concern lives:
//! - **Connections** (here): the handshake (the dialer sends `Hello` first; an inbound peer
//!   must within [`HELLO_GRACE`]), the network check, one connection per peer (a newer one
//!   replaces the older, except two dialled at once from both ends: the one the lower node
//!   id dialled is kept), inbound connections a misbehaving group may open a minute.
//! - **Requests peers make** (here): each peer's request budget ([`super::budget`]); `Inv`
//!   to the inventory, `GetHeaders` from the chain, `GetPeers` from the address book, reads
//!   (blocks, bodies, cascade, TxPoWs, coin proofs) handed to the driver, which serves them
//!   off the chain actor ([`Output::Read`]).
//! - **Scores and bans** ([`super::score`]), on every fault a unit or the driver reports.
//! - **Peers and the address book** ([`super::mesh`]), and configured peers redialled with
//!   doubling backoff.
//! - **Sync** ([`super::sync`] chooses, [`super::jobs`] runs), **relay** ([`super::inventory`]
//!   chooses, [`super::fetch`] fetches; our new tips and transactions are announced after
//!   [`RELAY_GATHER`]), **coin-proof look-ups** (pages from `full_mmr` peers, each checked
//!   against our chain).
//!
//! Connections are named by the driver's numbers; peers by node id. Inside, each handshake
//! gets a registration number, rising, which the units see: a report about a connection a
//! newer one replaced is ignored by them (no ghost peer).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::budget::group_factor;
use super::chain::ChainSink;
use super::fetch::{self, Fetches};
use super::inventory::{self, Inventory};
use super::jobs::{self, Config, Jobs};
use super::mesh::{self, Dir, Mesh};
use super::requests::{ReqId, Requests, ToPeer};
use super::score::{ScoreBook, Verdict, BAN_SCORE};
use super::sync::{self, Job, SyncManager};
use super::{Machine, Time};
use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::net::message::{CoinQuery, Hello, Message, MAX_INV, MAX_PEERS, PROTOCOL_VERSION};
use crate::types::CoinRecord;

/// Most ids of one `Inv` looked at.
pub const MAX_INV_TAKEN: usize = 64;
/// How long an inbound peer has to send its `Hello`, and a dialled one to answer ours.
pub const HELLO_GRACE: Duration = Duration::from_secs(10);
/// How long our `Hello` request waits for the answer.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Two connections to one peer in opposite directions registered this close together were
/// dialled at once: both sides keep the one the lower node id dialled.
pub const SIMULTANEOUS: Duration = Duration::from_secs(5);
/// How long announcements are gathered before one `Inv` goes out (only the newest tip of a
/// burst is sent: a node catching up adds hundreds of blocks a second).
pub const RELAY_GATHER: Duration = Duration::from_millis(100);
/// Most pages of coin proofs one look-up reads from one peer.
pub const MAX_COIN_PAGES: u32 = 64;
/// How long a `GetPeers` or a coin-proof page waits for its answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// Most recently departed peers whose IP is remembered, so a penalty a unit gives a peer that
/// has gone meanwhile still reaches its (IP, node id).
const RECENT_IPS: usize = 256;
/// Tag of the engine's own request ids.
const REQ_TAG: u8 = 3;
/// Score for an answer kind sent as a request.
const UNSOLICITED_PENALTY: u32 = 20;
/// Score for a frame sent slower than the transport's minimum rate.
const SLOW_PENALTY: u32 = 25;
/// Score for a coin-proof cursor that does not move.
const CURSOR_PENALTY: u32 = 20;

/// Close codes the driver passes on.
pub mod close {
    /// Nothing wrong (enough peers, sleeping, verified).
    pub const NORMAL: u32 = 0;
    /// Connected to ourselves.
    pub const SELF: u32 = 1;
    /// No `Hello`, or something else first.
    pub const NO_HELLO: u32 = 2;
    /// Another network or protocol version.
    pub const WRONG_NETWORK: u32 = 3;
    /// Banned.
    pub const BANNED: u32 = 5;
    /// Replaced by a newer connection (or lost to one dialled at once).
    pub const REPLACED: u32 = 6;
}

/// What the engine knows of its own node.
#[derive(Debug, Clone)]
pub struct Local {
    /// Our node id (our TLS key's).
    pub node_id: Hash,
    /// The network's chain id.
    pub chain_id: u8,
    /// Where we accept connections (`None`: a client).
    pub listen: Option<SocketAddr>,
    /// We keep the full coin set (and serve `GetCoinProofs`).
    pub full_mmr: bool,
    /// Ask peers for transaction announcements.
    pub want_txs: bool,
    /// New inbound connections a minute per address group (a misbehaving group gets fewer).
    pub group_rate_per_min: u32,
    /// Configured peers' redial backoff, first step (doubles up to 32×).
    pub backoff: Duration,
    /// Connections wanted at start.
    pub online: bool,
}

/// A fault the driver met in a peer's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Oversized, unknown type or undecodable: banned.
    Bad(String),
    /// An answer kind sent as a request.
    Unsolicited(String),
    /// Sent slower than the transport's minimum rate.
    Slow,
}

/// What happened, as the driver tells it.
#[derive(Debug, Clone)]
pub enum Input {
    /// A connection's TLS handshake completed (`peer` is the node id of its key).
    Connected {
        /// The driver's number for it.
        conn: u64,
        /// The node id.
        peer: Hash,
        /// Where it runs to (inbound: where it came from).
        addr: SocketAddr,
        /// How it came about.
        dir: Dir,
    },
    /// A request on stream `stream` of `conn`, admitted by the driver against the peer's
    /// request budget (reads — blocks, bodies, cascade, TxPoWs, coin proofs — the driver
    /// serves itself, off the chain actor). Answer with [`Output::Reply`], exactly once.
    Frame {
        /// The connection.
        conn: u64,
        /// The driver's number for the stream.
        stream: u64,
        /// The request.
        msg: Message,
    },
    /// A frame on `conn` was faulty.
    FrameFault {
        /// The connection.
        conn: u64,
        /// What was wrong.
        fault: Fault,
    },
    /// The connection closed.
    Closed {
        /// The connection.
        conn: u64,
    },
    /// A dial of [`Output::Dial`] ended (its connection, if any, closed); `connected`: it had
    /// reached the peer.
    DialEnded {
        /// The address.
        addr: SocketAddr,
        /// Whether a connection was made.
        connected: bool,
    },
    /// A dial-back of [`Output::Probe`] ended.
    Probed {
        /// The address.
        addr: SocketAddr,
        /// Whether the key behind it was the expected peer's.
        ok: bool,
    },
    /// The answer to a request (`None`: none came).
    Answer {
        /// The request.
        req: ReqId,
        /// What the peer answered.
        answer: Option<Message>,
    },
    /// Our chain has a new best tip (`block`), or a transaction to relay.
    Announce {
        /// The id.
        id: Hash,
        /// A tip rather than a transaction.
        block: bool,
    },
    /// Connections wanted, or not (the energy policy).
    Online(bool),
    /// The energy policy's knobs: outbound peers to keep, transaction announcements wanted.
    Policy {
        /// Outbound target.
        target: usize,
        /// Ask for transaction `Inv`s.
        want_txs: bool,
    },
    /// Dial this address and keep redialling it while the node runs.
    AddPeer(SocketAddr),
    /// Look up proven coins from `full_mmr` peers; answered by [`Output::CoinProofs`].
    CoinProofs {
        /// The caller's number for the look-up.
        lookup: u64,
        /// What to look up.
        query: CoinQuery,
    },
    /// The moment [`Engine::poll_timeout`] gave has come.
    Tick,
}

/// A coin-proof look-up's result: the block the proofs are against and the proven coins.
pub type CoinProofsResult = Result<(Hash, Vec<(CoinRecord, MmrProof)>), String>;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Dial `addr`, then report [`Input::Connected`] (with `dir`) and, when the connection
    /// ends (or was never made), [`Input::DialEnded`].
    Dial {
        /// The address.
        addr: SocketAddr,
        /// [`Dir::Outbound`] (the mesh's choice) or [`Dir::Fixed`] (configured).
        dir: Dir,
    },
    /// Dial `addr` only to check the key behind it is `peer`'s; then [`Input::Probed`].
    Probe {
        /// The address.
        addr: SocketAddr,
        /// The node id expected there.
        peer: Hash,
    },
    /// Send `msg` on `conn` as a request; answer with [`Input::Answer`] by `timeout`.
    Request {
        /// The connection.
        conn: u64,
        /// The request's id.
        req: ReqId,
        /// The request.
        msg: Message,
        /// How long to wait.
        timeout: Duration,
    },
    /// Answer the request on `stream` of `conn` (`None`: close the stream unanswered).
    Reply {
        /// The connection.
        conn: u64,
        /// The stream.
        stream: u64,
        /// The answer.
        msg: Option<Message>,
    },
    /// The request budget of `conn` refills at this share of the normal rate (its address
    /// group misbehaved; 1: normal again). The driver admits every request against it before
    /// anything else is done with it.
    Throttle {
        /// The connection.
        conn: u64,
        /// Share of the normal rate.
        factor: f64,
    },
    /// Send `msg` on `conn` without waiting for an answer.
    Announce {
        /// The connection.
        conn: u64,
        /// The announcement.
        msg: Message,
    },
    /// Close `conn`.
    Close {
        /// The connection.
        conn: u64,
        /// A [`close`] code.
        code: u32,
        /// Why.
        reason: String,
    },
    /// A handshake completed on `conn` (for the driver's view of its peers).
    Up {
        /// The connection.
        conn: u64,
        /// The peer.
        peer: Hash,
        /// Its `Hello`.
        hello: Box<Hello>,
        /// We dialled it.
        outbound: bool,
    },
    /// New inbound connections `group` (a /24, /48) may open a minute, until told otherwise
    /// (its misbehaviour lowers it; back to normal, it is the configured rate again). The
    /// driver refuses those over it before any TLS work.
    GroupRate {
        /// The address group ([`super::score::misbehaviour_group`]).
        group: Vec<u8>,
        /// Connections a minute.
        per_min: u32,
    },
    /// A coin-proof look-up ended.
    CoinProofs {
        /// The caller's number for it.
        lookup: u64,
        /// What it found.
        result: CoinProofsResult,
    },
}

#[derive(Debug, Clone)]
enum ConnState {
    /// Waiting for the peer's `Hello` until the deadline.
    Handshake { deadline: Time },
    /// Handshake done: registered under `reg`.
    Up { hello: Box<Hello>, reg: u64 },
}

#[derive(Debug, Clone)]
struct Conn {
    peer: Hash,
    addr: SocketAddr,
    dir: Dir,
    since: Time,
    state: ConnState,
    /// We asked the driver to close it: nothing more it sends is taken.
    closing: bool,
}

#[derive(Debug, Clone)]
struct Peer {
    conn: u64,
    claim: u128,
    group: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Fixed {
    wait: Duration,
    next: Time,
    dialing: bool,
    /// When the running dial's handshake completed (a connection that lasts
    /// [`FIXED_STEADY`] starts the backoff over).
    up_at: Option<Time>,
    /// The node id met at this address by our own dial (a peer that connects to us with it
    /// is this configured peer: it is not dialled as well).
    peer: Option<Hash>,
}

/// A configured peer's connection that lasted this long starts its redial backoff over.
const FIXED_STEADY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Ask {
    Hello(u64),
    Addrs(u64),
    Coin(u64),
}

#[derive(Debug)]
struct CoinLookup {
    query: CoinQuery,
    servers: VecDeque<Hash>,
    peer: Hash,
    page: u32,
    block: Hash,
    after: Option<Hash>,
    found: Vec<(CoinRecord, MmrProof)>,
    last: String,
}

/// The engine (see the module docs).
#[derive(Debug)]
pub struct Engine {
    local: Local,
    online: bool,
    jobs: Jobs,
    sync: SyncManager,
    inv: Inventory,
    fetches: Fetches,
    mesh: Mesh,
    book: ScoreBook,
    requests: Requests<Ask>,
    conns: BTreeMap<u64, Conn>,
    peers: BTreeMap<Hash, Peer>,
    handshakes: BTreeSet<(Time, u64)>,
    /// Groups whose connection rate is lowered: the rate last given, and an IP of the group.
    slow_groups: BTreeMap<Vec<u8>, (u32, IpAddr)>,
    /// The connection each open request went out on.
    req_conns: BTreeMap<ReqId, u64>,
    /// Connections whose budget is throttled, and the factor last given.
    throttled: BTreeMap<u64, f64>,
    /// When throttled connections' factors are looked at again (group scores decay).
    throttle_at: Option<Time>,
    registered: u64,
    fixed: BTreeMap<SocketAddr, Fixed>,
    /// Inbound connections accepted per address group this minute: (window start, count).
    accepts: BTreeMap<Vec<u8>, (Time, u32)>,
    recent_ips: VecDeque<(Hash, IpAddr)>,
    relay_at: Option<Time>,
    relay_tip: Option<Hash>,
    relay_txs: Vec<Hash>,
    lookups: BTreeMap<u64, CoinLookup>,
    bans: u64,
    out: VecDeque<Output>,
}

/// Tick a unit whose deadline has come.
fn tick_if_due<M: Machine>(m: &mut M, now: Time, tick: M::Input) {
    if m.poll_timeout().is_some_and(|t| t <= now) {
        m.handle(now, tick);
    }
}

/// An address as the units see it: an IPv4 peer seen through a dual-stack socket
/// (`::ffff:a.b.c.d`) is an IPv4 address.
pub fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Engine {
    /// An engine with no connection. `mesh` is the address book restored from the store;
    /// `fixed` the configured peers (and seeds), dialled and redialled for as long as it runs;
    /// an initial sync waits up to `initial_wait` for several peers.
    pub fn new(
        cfg: Config,
        local: Local,
        mut mesh: Mesh,
        fixed: &[SocketAddr],
        initial_wait: Duration,
    ) -> Engine {
        mesh.handle(Time::ZERO, mesh::Input::Online(local.online));
        let fixed = fixed
            .iter()
            .map(|a| {
                (
                    canon(*a),
                    Fixed { wait: local.backoff, next: Time::ZERO, dialing: false, up_at: None, peer: None },
                )
            })
            .collect();
        Engine {
            online: local.online,
            local,
            jobs: Jobs::new(cfg),
            sync: SyncManager::new(initial_wait),
            inv: Inventory::new(),
            fetches: Fetches::new(),
            mesh,
            book: ScoreBook::new(),
            requests: Requests::tagged(REQ_TAG),
            conns: BTreeMap::new(),
            peers: BTreeMap::new(),
            handshakes: BTreeSet::new(),
            req_conns: BTreeMap::new(),
            throttled: BTreeMap::new(),
            slow_groups: BTreeMap::new(),
            throttle_at: None,
            registered: 0,
            fixed,
            accepts: BTreeMap::new(),
            recent_ips: VecDeque::new(),
            relay_at: None,
            relay_tip: None,
            relay_txs: vec![],
            lookups: BTreeMap::new(),
            bans: 0,
            out: VecDeque::new(),
        }
    }

    /// Connected peers (handshake done).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// (tip, claimed weight) of each connected peer's `Hello`.
    pub fn claims(&self) -> Vec<(Hash, u128)> {
        self.peers
            .values()
            .filter_map(|p| match &self.conns.get(&p.conn)?.state {
                ConnState::Up { hello, .. } => Some((hello.tip, hello.tip_weight)),
                _ => None,
            })
            .collect()
    }

    /// Bans issued since start.
    pub fn bans(&self) -> u64 {
        self.bans
    }

    /// Ids wanted from announcers.
    pub fn wanted(&self) -> usize {
        self.inv.len()
    }

    /// The sync job running, if any.
    pub fn running_job(&self) -> Option<(Hash, Job)> {
        self.sync.running()
    }

    /// Whether connections are wanted.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Take an input at `now`, asking `chain` what the units need.
    pub fn handle(&mut self, now: Time, input: Input, chain: &mut impl ChainSink) {
        match input {
            Input::Connected { conn, peer, addr, dir } => {
                self.connected(now, conn, peer, canon(addr), dir, chain)
            }
            Input::Frame { conn, stream, msg } => self.frame(now, conn, stream, msg, chain),
            Input::FrameFault { conn, fault } => {
                let Some(c) = self.conns.get(&conn).filter(|c| !c.closing) else { return };
                let peer = c.peer;
                match fault {
                    Fault::Bad(e) => self.ban_conn(now, conn, &format!("bad frame: {e}")),
                    Fault::Unsolicited(e) => self.penalize_peer(now, peer, UNSOLICITED_PENALTY, &e),
                    Fault::Slow => self.penalize_peer(now, peer, SLOW_PENALTY, "frame sent too slowly"),
                }
            }
            Input::Closed { conn } => self.closed(now, conn),
            Input::DialEnded { addr, connected: _ } => {
                let addr = canon(addr);
                self.mesh.handle(now, mesh::Input::DialEnded(addr));
                if let Some(f) = self.fixed.get_mut(&addr) {
                    f.dialing = false;
                    if f.up_at.take().is_some_and(|t| now.saturating_duration_since(t) >= FIXED_STEADY) {
                        f.wait = self.local.backoff;
                    }
                    f.next = now + f.wait;
                    f.wait = (f.wait * 2).min(self.local.backoff * 32);
                }
            }
            Input::Probed { addr, ok } => {
                self.mesh.handle(now, mesh::Input::Probed { addr: canon(addr), ok })
            }
            Input::Answer { req, mut answer } => {
                // An answer from a connection we are closing (a banned peer) is not taken.
                if let Some(conn) = self.req_conns.remove(&req) {
                    if self.conns.get(&conn).is_none_or(|c| c.closing) {
                        answer = None;
                    }
                }
                self.deliver(now, req, answer, chain);
            }
            Input::Announce { id, block } => {
                if block {
                    self.relay_tip = Some(id);
                } else if self.relay_txs.len() < MAX_INV {
                    self.relay_txs.push(id);
                }
                self.relay_at.get_or_insert(now + RELAY_GATHER);
            }
            Input::Online(on) if on == self.online => {}
            Input::Online(on) => {
                self.online = on;
                self.mesh.handle(now, mesh::Input::Online(on));
                if on {
                    for f in self.fixed.values_mut() {
                        f.wait = self.local.backoff;
                        f.next = now;
                    }
                } else {
                    for conn in self.conns.keys().copied().collect::<Vec<_>>() {
                        self.close(conn, close::NORMAL, "sleeping");
                    }
                }
            }
            Input::Policy { target, want_txs } => {
                self.local.want_txs = want_txs;
                self.mesh.handle(now, mesh::Input::Target(target));
            }
            Input::AddPeer(addr) => {
                let backoff = self.local.backoff;
                self.fixed.entry(canon(addr)).or_insert(Fixed {
                    wait: backoff,
                    next: now,
                    dialing: false,
                    up_at: None,
                    peer: None,
                });
            }
            Input::CoinProofs { lookup, query } => self.start_lookup(now, lookup, query),
            Input::Tick => self.tick(now, chain),
        }
        self.pump(now, chain);
    }

    fn tick(&mut self, now: Time, chain: &mut impl ChainSink) {
        let due = |t: Option<Time>| t.is_some_and(|t| t <= now);
        if due(self.jobs.poll_timeout()) {
            self.jobs.handle(now, jobs::Input::Tick, chain);
        }
        if due(self.fetches.poll_timeout()) {
            self.fetches.handle(now, fetch::Input::Tick, chain);
        }
        tick_if_due(&mut self.inv, now, inventory::Input::Tick);
        tick_if_due(&mut self.sync, now, sync::Input::Tick);
        tick_if_due(&mut self.mesh, now, mesh::Input::Tick);
        for (_, _, ask) in self.requests.expired(now) {
            self.answered(now, ask, None, chain);
        }
        while let Some(&(t, conn)) = self.handshakes.first() {
            if t > now {
                break;
            }
            self.handshakes.pop_first();
            if matches!(self.conns.get(&conn), Some(Conn { state: ConnState::Handshake { deadline }, .. }) if *deadline <= now)
            {
                self.close(conn, close::NO_HELLO, "no hello");
            }
        }
        if self.throttle_at.is_some_and(|t| t <= now) {
            self.throttle_at = None;
            let conns: Vec<u64> = self.throttled.keys().copied().collect();
            for conn in conns {
                self.throttle(now, conn);
            }
            let groups: Vec<IpAddr> = self.slow_groups.values().map(|(_, ip)| *ip).collect();
            for ip in groups {
                self.group_rate(now, ip);
            }
        }
        if self.relay_at.is_some_and(|t| t <= now) {
            self.relay();
        }
        if self.online {
            let due: Vec<SocketAddr> = self
                .fixed
                .iter()
                .filter(|(a, f)| !f.dialing && f.next <= now && !self.connected_to(a, f))
                .map(|(a, _)| *a)
                .collect();
            for addr in due {
                if let Some(f) = self.fixed.get_mut(&addr) {
                    f.dialing = true;
                }
                self.out.push_back(Output::Dial { addr, dir: Dir::Fixed });
            }
        }
    }

    /// Whether configured peer `addr` is connected: a connection runs to that address, or
    /// the node id our own dial met there is connected (in either direction). A peer's claim
    /// of where it listens is not taken for it.
    fn connected_to(&self, addr: &SocketAddr, f: &Fixed) -> bool {
        f.peer.is_some_and(|p| self.peers.contains_key(&p))
            || self.conns.values().any(|c| !c.closing && c.addr == *addr)
    }

    fn connected(
        &mut self,
        now: Time,
        conn: u64,
        peer: Hash,
        addr: SocketAddr,
        dir: Dir,
        chain: &mut impl ChainSink,
    ) {
        if peer == self.local.node_id {
            if dir != Dir::Inbound {
                self.mesh.handle(now, mesh::Input::Myself(addr));
            }
            self.out.push_back(Output::Close { conn, code: close::SELF, reason: "self".into() });
            return;
        }
        if self.book.is_banned(now, addr.ip(), &peer) {
            self.out.push_back(Output::Close { conn, code: close::BANNED, reason: "banned".into() });
            return;
        }
        if !self.online {
            self.out.push_back(Output::Close { conn, code: close::NORMAL, reason: "sleeping".into() });
            return;
        }
        if dir == Dir::Inbound && !self.accept_from(now, addr.ip()) {
            self.out.push_back(Output::Close { conn, code: close::NORMAL, reason: "busy".into() });
            return;
        }
        // An inbound peer must send its `Hello` within the grace; a dialled one must answer
        // ours within the request's timeout.
        let deadline = now + if dir == Dir::Inbound { HELLO_GRACE } else { HELLO_TIMEOUT };
        let state = ConnState::Handshake { deadline };
        self.conns.insert(conn, Conn { peer, addr, dir, since: now, state, closing: false });
        self.handshakes.insert((deadline, conn));
        self.throttle(now, conn);
        if dir != Dir::Inbound {
            let req = self.requests.open(now, peer, HELLO_TIMEOUT, Ask::Hello(conn));
            let msg = Message::Hello(self.hello(chain));
            self.out.push_back(Output::Request { conn, req, msg, timeout: HELLO_TIMEOUT });
        }
    }

    /// Inbound connections a group may open a minute: fewer once it misbehaved.
    fn accept_from(&mut self, now: Time, ip: IpAddr) -> bool {
        let rate = self.book.group_connections_per_min(now, ip, self.local.group_rate_per_min);
        if self.accepts.len() > 4096 {
            self.accepts.retain(|_, (t, _)| now.saturating_duration_since(*t) < Duration::from_secs(60));
        }
        let g = self.accepts.entry(super::score::misbehaviour_group(ip)).or_insert((now, 0));
        if now.saturating_duration_since(g.0) >= Duration::from_secs(60) {
            *g = (now, 0);
        }
        g.1 += 1;
        g.1 <= rate
    }

    /// Our `Hello`.
    fn hello(&self, chain: &mut impl ChainSink) -> Hello {
        let (genesis, tip, tip_weight) = chain.hello();
        Hello {
            version: PROTOCOL_VERSION,
            chain_id: self.local.chain_id,
            genesis,
            tip,
            tip_weight,
            time_ms: chain.clock_ms(),
            listen: self.local.listen.map(|a| a.to_string()),
            is_client: self.local.listen.is_none(),
            want_txs: self.local.want_txs,
            serves_blocks: true,
            full_mmr: self.local.full_mmr,
        }
    }

    /// A request from a peer.
    fn frame(&mut self, now: Time, conn: u64, stream: u64, msg: Message, chain: &mut impl ChainSink) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            self.out.push_back(Output::Reply { conn, stream, msg: None });
            return;
        };
        match &mut c.state {
            ConnState::Handshake { .. } => {
                // An inbound peer's first request must be its `Hello`; a dialled peer answers
                // ours (a request from it before that is ignored).
                match (c.dir, msg) {
                    (Dir::Inbound, Message::Hello(h)) => {
                        let ours = self.hello(chain);
                        self.out.push_back(Output::Reply { conn, stream, msg: Some(Message::Hello(ours)) });
                        self.complete(now, conn, h, chain);
                    }
                    (Dir::Inbound, _) => {
                        self.out.push_back(Output::Reply { conn, stream, msg: None });
                        self.close(conn, close::NO_HELLO, "expected hello");
                    }
                    _ => self.out.push_back(Output::Reply { conn, stream, msg: None }),
                }
            }
            ConnState::Up { .. } => self.dispatch(now, conn, stream, msg, chain),
        }
    }

    /// Serve a request.
    fn dispatch(&mut self, now: Time, conn: u64, stream: u64, msg: Message, chain: &mut impl ChainSink) {
        let Some(c) = self.conns.get(&conn) else {
            self.out.push_back(Output::Reply { conn, stream, msg: None });
            return;
        };
        let peer = c.peer;
        let answer = match msg {
            Message::Inv(ids) => {
                self.inv_from(now, peer, ids, chain);
                None
            }
            Message::GetHeaders { locator, max } => Some(Message::Headers(chain.headers(&locator, max))),
            // Only addresses we reached, or verified by dialling them back.
            Message::GetPeers => {
                Some(Message::Peers(self.mesh.share(MAX_PEERS).iter().map(|a| a.to_string()).collect()))
            }
            Message::Ping(n) => Some(Message::Pong(n)),
            // A second `Hello`: an answer kind once the connection is open.
            Message::Hello(_) => {
                self.penalize_peer(now, peer, UNSOLICITED_PENALTY, "Hello after the handshake");
                None
            }
            // Reads (the driver serves them), answers nobody asked for (the driver refuses them
            // unread): nothing here.
            _ => None,
        };
        self.out.push_back(Output::Reply { conn, stream, msg: answer });
    }

    /// An announcement: what the chain lacks is wanted; the inventory decides whom to ask.
    fn inv_from(&mut self, now: Time, peer: Hash, ids: Vec<Hash>, chain: &mut impl ChainSink) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        // Cheap first: an id already wanted needs no question to the chain.
        let fresh: Vec<Hash> =
            ids.into_iter().take(MAX_INV_TAKEN).filter(|id| self.inv.wants(id) || !chain.has(id)).collect();
        if !fresh.is_empty() {
            self.inv.handle(now, inventory::Input::Announced { peer, ids: fresh });
        }
    }

    /// The peer's `Hello` came: check it, register the connection.
    fn complete(&mut self, now: Time, conn: u64, theirs: Hello, chain: &mut impl ChainSink) {
        let (genesis, _, _) = chain.hello();
        if theirs.chain_id != self.local.chain_id || theirs.genesis != genesis {
            self.close(conn, close::WRONG_NETWORK, "wrong network");
            return;
        }
        if theirs.version != PROTOCOL_VERSION {
            self.close(conn, close::WRONG_NETWORK, "protocol version");
            return;
        }
        let Some(c) = self.conns.get(&conn).filter(|c| !c.closing) else { return };
        let (peer, addr, dir, outbound) = (c.peer, c.addr, c.dir, c.dir != Dir::Inbound);
        if let Some(old) = self.peers.get(&peer).map(|p| p.conn) {
            if let Some(o) = self.conns.get(&old) {
                let crossed = (o.dir != Dir::Inbound) != outbound
                    && now.saturating_duration_since(o.since) < SIMULTANEOUS;
                // Our dial wins if our id is the lower.
                if crossed && outbound != (self.local.node_id < peer) {
                    self.close(conn, close::REPLACED, "duplicate");
                    return;
                }
            }
            self.close(old, close::REPLACED, "replaced");
        }
        self.registered += 1;
        let reg = self.registered;
        let listen =
            theirs.listen.as_deref().and_then(|l| l.parse::<SocketAddr>().ok()).filter(|_| !theirs.is_client);
        let (tip, claim) = (theirs.tip, theirs.tip_weight);
        let group = super::addrbook::group16(addr.ip());
        self.out.push_back(Output::Up { conn, peer, hello: Box::new(theirs.clone()), outbound });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Up { hello: Box::new(theirs), reg };
        }
        self.peers.insert(peer, Peer { conn, claim, group: group.clone() });
        if dir == Dir::Fixed {
            if let Some(f) = self.fixed.get_mut(&addr) {
                f.up_at = Some(now);
                f.peer = Some(peer);
            }
        }
        self.mesh.handle(now, mesh::Input::Connected { peer, conn: reg, addr, dir, listen });
        self.inv.handle(now, inventory::Input::PeerUp { peer, outbound });
        self.sync.handle(now, sync::Input::PeerUp { peer, claim, group: group.clone(), outbound });
        chain.peer_up(group, tip, claim);
        let (genesis, ours, weight) = chain.hello();
        if claim > weight {
            self.sync
                .handle(now, sync::Input::Wanted { peer, job: Job::CatchUp, at_genesis: genesis == ours });
        }
    }

    /// Close a connection (nothing more it sends is taken; it is forgotten when the driver
    /// reports [`Input::Closed`]).
    fn close(&mut self, conn: u64, code: u32, reason: &str) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
        }
        self.out.push_back(Output::Close { conn, code, reason: reason.into() });
    }

    fn closed(&mut self, now: Time, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else { return };
        self.req_conns.retain(|_, c2| *c2 != conn);
        if let ConnState::Up { reg, .. } = c.state {
            self.mesh.handle(now, mesh::Input::Disconnected { peer: c.peer, conn: reg });
            if self.peers.get(&c.peer).is_some_and(|p| p.conn == conn) {
                self.peers.remove(&c.peer);
                if self.recent_ips.len() >= RECENT_IPS {
                    self.recent_ips.pop_front();
                }
                self.recent_ips.push_back((c.peer, c.addr.ip()));
                self.inv.handle(now, inventory::Input::PeerGone(c.peer));
                self.sync.handle(now, sync::Input::PeerGone(c.peer));
            }
        }
        self.throttled.remove(&conn);
    }

    /// Tell the driver the budget factor of `conn`'s group, if it changed.
    fn throttle(&mut self, now: Time, conn: u64) {
        let Some(c) = self.conns.get(&conn) else {
            self.throttled.remove(&conn);
            return;
        };
        let factor = group_factor(self.book.group_score(now, c.addr.ip()));
        let last = self.throttled.get(&conn).copied().unwrap_or(1.0);
        if factor != last {
            self.out.push_back(Output::Throttle { conn, factor });
        }
        if factor < 1.0 {
            self.throttled.insert(conn, factor);
            self.throttle_at.get_or_insert(now + Duration::from_secs(60));
        } else {
            self.throttled.remove(&conn);
        }
    }

    /// Tell the driver the connection rate of `ip`'s group, if it changed.
    fn group_rate(&mut self, now: Time, ip: IpAddr) {
        let normal = self.local.group_rate_per_min;
        let rate = self.book.group_connections_per_min(now, ip, normal);
        let group = super::score::misbehaviour_group(ip);
        let last = self.slow_groups.get(&group).map(|(r, _)| *r).unwrap_or(normal);
        if rate != last {
            self.out.push_back(Output::GroupRate { group: group.clone(), per_min: rate });
        }
        if rate < normal {
            self.slow_groups.insert(group, (rate, ip));
            self.throttle_at.get_or_insert(now + Duration::from_secs(60));
        } else {
            self.slow_groups.remove(&group);
        }
    }

    /// After a penalty at `ip`: the connections of its misbehaviour group refill slower, and
    /// the group may open fewer.
    fn throttle_group(&mut self, now: Time, ip: IpAddr) {
        self.group_rate(now, ip);
        let g = super::score::misbehaviour_group(ip);
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| super::score::misbehaviour_group(c.addr.ip()) == g)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.throttle(now, conn);
        }
    }

    /// Ban the peer on `conn` and cut it off.
    fn ban_conn(&mut self, now: Time, conn: u64, why: &str) {
        let Some(c) = self.conns.get(&conn) else { return };
        let (peer, ip) = (c.peer, c.addr.ip());
        self.book.penalize(now, ip, &peer, BAN_SCORE);
        self.banned(conn, peer, ip, why);
        self.throttle_group(now, ip);
    }

    fn banned(&mut self, conn: u64, peer: Hash, ip: IpAddr, why: &str) {
        tracing::warn!("banning peer {} at {ip}: {why}", &peer.to_hex()[..16]);
        self.bans += 1;
        self.close(conn, close::BANNED, why);
    }

    /// Add to a peer's score (on its current connection, else at the IP it recently left
    /// from); at [`BAN_SCORE`] it is banned and cut off.
    fn penalize_peer(&mut self, now: Time, peer: Hash, points: u32, why: &str) {
        if points == 0 {
            return;
        }
        let current = self.peers.get(&peer).map(|p| p.conn).or_else(|| {
            // A connection still in its handshake (a fault in its first frames).
            self.conns.iter().find(|(_, c)| c.peer == peer).map(|(id, _)| *id)
        });
        let at = current.and_then(|c| self.conns.get(&c).map(|x| (c, x.addr.ip())));
        // Already banned (a second fault in flight from a connection being closed): once.
        if let Some((_, ip)) = at {
            if self.book.is_banned(now, ip, &peer) {
                return;
            }
        }
        match at {
            Some((conn, ip)) => {
                match self.book.penalize(now, ip, &peer, points) {
                    Verdict::Banned => self.banned(conn, peer, ip, why),
                    Verdict::Counted(n) => {
                        tracing::debug!("peer {} scored {points} (now {n}): {why}", &peer.to_hex()[..16])
                    }
                }
                self.throttle_group(now, ip);
            }
            None => {
                let ip = self.recent_ips.iter().rev().find(|(p, _)| *p == peer).map(|(_, ip)| *ip);
                if let Some(ip) = ip {
                    if self.book.penalize(now, ip, &peer, points) == Verdict::Banned {
                        tracing::warn!("banning departed peer {} at {ip}: {why}", &peer.to_hex()[..16]);
                        self.bans += 1;
                    }
                    self.throttle_group(now, ip);
                }
            }
        }
    }

    fn answered(&mut self, now: Time, ask: Ask, answer: Option<Message>, chain: &mut impl ChainSink) {
        match ask {
            Ask::Hello(conn) => match answer {
                Some(Message::Hello(h))
                    if matches!(
                        self.conns.get(&conn),
                        Some(Conn { state: ConnState::Handshake { .. }, .. })
                    ) =>
                {
                    self.complete(now, conn, h, chain)
                }
                Some(_) => self.close(conn, close::NO_HELLO, "expected hello"),
                None => self.close(conn, close::NO_HELLO, "no hello"),
            },
            Ask::Addrs(conn) => {
                if let (Some(Message::Peers(addrs)), Some(c)) = (answer, self.conns.get(&conn)) {
                    let addrs = addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()).collect();
                    self.mesh.handle(now, mesh::Input::Addrs { from: c.addr, addrs });
                }
            }
            Ask::Coin(lookup) => self.coin_page(now, lookup, answer, chain),
        }
    }

    fn relay(&mut self) {
        self.relay_at = None;
        let tip = self.relay_tip.take();
        let txs = std::mem::take(&mut self.relay_txs);
        for (conn, c) in self.conns.iter().filter(|(_, c)| !c.closing) {
            let ConnState::Up { hello, .. } = &c.state else { continue };
            let mut ids: Vec<Hash> = tip.into_iter().collect();
            if hello.want_txs {
                ids.extend(&txs);
            }
            if !ids.is_empty() {
                self.out.push_back(Output::Announce { conn: *conn, msg: Message::Inv(ids) });
            }
        }
    }

    fn start_lookup(&mut self, now: Time, lookup: u64, query: CoinQuery) {
        let servers: VecDeque<Hash> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                matches!(self.conns.get(&p.conn), Some(Conn { state: ConnState::Up { hello, .. }, .. }) if hello.full_mmr)
            })
            .map(|(id, _)| *id)
            .collect();
        let l = CoinLookup {
            query,
            servers,
            peer: Hash::ZERO,
            page: 0,
            block: Hash::ZERO,
            after: None,
            found: vec![],
            last: "no connected peer keeps the full coin set".into(),
        };
        self.lookups.insert(lookup, l);
        self.next_server(now, lookup);
    }

    /// Ask the next server from the first page, or end the look-up.
    fn next_server(&mut self, now: Time, lookup: u64) {
        let Some(l) = self.lookups.get_mut(&lookup) else { return };
        while let Some(peer) = l.servers.pop_front() {
            let Some(conn) = self.peers.get(&peer).map(|p| p.conn) else { continue };
            l.peer = peer;
            l.page = 0;
            l.block = Hash::ZERO;
            l.after = None;
            l.found.clear();
            let msg = Message::GetCoinProofs { query: l.query.clone(), after: None };
            let req = self.requests.open(now, peer, ASK_TIMEOUT, Ask::Coin(lookup));
            self.out.push_back(Output::Request { conn, req, msg, timeout: ASK_TIMEOUT });
            return;
        }
        if let Some(l) = self.lookups.remove(&lookup) {
            self.out.push_back(Output::CoinProofs { lookup, result: Err(l.last) });
        }
    }

    fn coin_page(&mut self, now: Time, lookup: u64, answer: Option<Message>, chain: &mut impl ChainSink) {
        let Some(l) = self.lookups.get_mut(&lookup) else { return };
        let peer = l.peer;
        let (block, proofs, next) = match answer {
            Some(Message::CoinProofs { block, proofs, next }) => (block, proofs, next),
            Some(_) => {
                l.last = "unexpected answer to GetCoinProofs".into();
                return self.next_server(now, lookup);
            }
            None => {
                l.last = "no answer to GetCoinProofs".into();
                return self.next_server(now, lookup);
            }
        };
        if l.page > 0 && block != l.block {
            // The peer's tip moved between pages: the next peer (its answer is not whole).
            l.last = "tip moved while paging".into();
            return self.next_server(now, lookup);
        }
        l.block = block;
        if let Err(e) = chain.check_coin_proofs(&proofs) {
            let why = format!("coin proof: {}", e.reason);
            l.last = why.clone();
            self.penalize_peer(now, peer, e.penalty, &why);
            return self.next_server(now, lookup);
        }
        let Some(l) = self.lookups.get_mut(&lookup) else { return };
        l.found.extend(proofs);
        l.page += 1;
        match next {
            // A cursor must move (pages run in (address, coin id) order, so a next coin id may
            // be lower than the last one); the page cap bounds the rest.
            Some(n) if l.after != Some(n) && l.page < MAX_COIN_PAGES => {
                l.after = Some(n);
                let msg = Message::GetCoinProofs { query: l.query.clone(), after: Some(n) };
                match self.peers.get(&peer).map(|p| p.conn) {
                    Some(conn) => {
                        let req = self.requests.open(now, peer, ASK_TIMEOUT, Ask::Coin(lookup));
                        self.out.push_back(Output::Request { conn, req, msg, timeout: ASK_TIMEOUT });
                    }
                    None => {
                        l.last = "peer gone while paging".into();
                        self.next_server(now, lookup);
                    }
                }
            }
            Some(n) if l.after == Some(n) => {
                l.last = "coin proof cursor did not move".into();
                self.penalize_peer(now, peer, CURSOR_PENALTY, "coin proof cursor did not move");
                self.next_server(now, lookup);
            }
            // Never a partial answer as if it were whole.
            Some(_) => {
                l.last = format!("more than {MAX_COIN_PAGES} pages of coin proofs");
                self.next_server(now, lookup);
            }
            None => {
                if let Some(l) = self.lookups.remove(&lookup) {
                    self.out.push_back(Output::CoinProofs { lookup, result: Ok((l.block, l.found)) });
                }
            }
        }
    }

    /// Hand an answer (or "no answer") to the unit whose request it is, by the id's tag.
    fn deliver(&mut self, now: Time, req: ReqId, answer: Option<Message>, chain: &mut impl ChainSink) {
        match req.tag() {
            jobs::REQ_TAG => self.jobs.handle(now, jobs::Input::Answer { req, answer }, chain),
            fetch::REQ_TAG => self.fetches.handle(now, fetch::Input::Answer { req, answer }, chain),
            REQ_TAG => {
                if let Some((_, ask)) = self.requests.close(req) {
                    self.answered(now, ask, answer, chain);
                }
            }
            _ => {}
        }
    }

    /// A unit's request goes on the peer's current connection (none: answered "no answer" at
    /// once, back to the unit that asked); its penalties go to the score book.
    fn peer_action(&mut self, now: Time, p: ToPeer, chain: &mut impl ChainSink) {
        match p {
            ToPeer::Request { peer, req, msg, timeout } => match self.peers.get(&peer) {
                Some(p) => self.out.push_back(Output::Request { conn: p.conn, req, msg, timeout }),
                None => self.deliver(now, req, None, chain),
            },
            ToPeer::Penalize { peer, points, why } => self.penalize_peer(now, peer, points, &why),
            ToPeer::Ban { peer, why } => self.penalize_peer(now, peer, BAN_SCORE, &why),
        }
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
                    jobs::Output::Peer(p) => self.peer_action(now, p, chain),
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
                    fetch::Output::Peer(p) => self.peer_action(now, p, chain),
                    fetch::Output::Done(i) => self.inv.handle(now, i),
                    fetch::Output::CatchUp(peer) => {
                        let (genesis, tip, _) = chain.hello();
                        let wanted =
                            sync::Input::Wanted { peer, job: Job::CatchUp, at_genesis: genesis == tip };
                        self.sync.handle(now, wanted);
                    }
                }
            }
            while let Some(o) = self.mesh.poll() {
                moved = true;
                match o {
                    // A configured peer is dialled (and redialled) as such, never twice.
                    mesh::Output::Dial(addr) if self.fixed.contains_key(&addr) => {
                        self.mesh.handle(now, mesh::Input::DialEnded(addr))
                    }
                    mesh::Output::Dial(addr) => self.out.push_back(Output::Dial { addr, dir: Dir::Outbound }),
                    mesh::Output::Probe { addr, peer } => self.out.push_back(Output::Probe { addr, peer }),
                    mesh::Output::AskAddrs(peer) => {
                        if let Some(conn) = self.peers.get(&peer).map(|p| p.conn) {
                            let req = self.requests.open(now, peer, ASK_TIMEOUT, Ask::Addrs(conn));
                            self.out.push_back(Output::Request {
                                conn,
                                req,
                                msg: Message::GetPeers,
                                timeout: ASK_TIMEOUT,
                            });
                        }
                    }
                    mesh::Output::Close(peer) => {
                        if let Some(conn) = self.peers.get(&peer).map(|p| p.conn) {
                            self.close(conn, close::NORMAL, "enough peers");
                        }
                    }
                    mesh::Output::Remember(addr) => chain.record_peer(addr),
                    mesh::Output::Anchors(v) => chain.anchors(v),
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        let o = self.out.pop_front()?;
        if let Output::Request { conn, req, .. } = &o {
            self.req_conns.insert(*req, *conn);
        }
        Some(o)
    }

    /// When to tick next: the earliest deadline of any unit, handshake, delayed request,
    /// relay or configured peer's redial.
    pub fn poll_timeout(&self) -> Option<Time> {
        let fixed = if self.online {
            self.fixed
                .iter()
                .filter(|(a, f)| !f.dialing && !self.connected_to(a, f))
                .map(|(_, f)| f.next)
                .min()
        } else {
            None
        };
        [
            self.jobs.poll_timeout(),
            self.fetches.poll_timeout(),
            self.inv.poll_timeout(),
            self.sync.poll_timeout(),
            self.mesh.poll_timeout(),
            self.requests.next_deadline(),
            self.handshakes.first().map(|(t, _)| *t),
            self.throttle_at,
            self.relay_at,
            fixed,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    //! The engine driven with no socket and no sleep: our side a real chain, peers answered
    //! from a fixture chain of real blocks.

    use super::super::addrbook::Limits;
    use super::super::testkit::{peer_chain, serve, t, Ours};
    use super::*;
    use crate::fixture::ChainBuilder;
    use crate::net::message::BlockData;

    const ME: Hash = Hash([0x80; 32]);
    const A: Hash = Hash([1; 32]);
    const B: Hash = Hash([2; 32]);

    fn cfg() -> Config {
        Config { min_chain_weight: 0, tree_blocks: 72, max_local_future_ms: 7_200_000 }
    }

    fn engine(chain_id: u8) -> Engine {
        let own: SocketAddr = "10.0.0.1:9000".parse().unwrap();
        let mesh = Mesh::new([7; 32], Limits::SERVER, 0, Duration::from_secs(30), Some(own));
        let local = Local {
            node_id: ME,
            chain_id,
            listen: Some(own),
            full_mmr: false,
            want_txs: true,
            group_rate_per_min: 60,
            backoff: Duration::from_millis(500),
            online: true,
        };
        Engine::new(cfg(), local, mesh, &[], Duration::from_secs(5))
    }

    fn addr(conn: u64) -> SocketAddr {
        SocketAddr::from(([10, conn as u8, 0, 2], 9000))
    }

    fn hello(peer: &ChainBuilder, claim: u128) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            chain_id: peer.params.chain_id,
            genesis: peer.chain.genesis_id(),
            tip: peer.chain.tip_id(),
            tip_weight: claim,
            time_ms: 0,
            listen: None,
            is_client: true,
            want_txs: true,
            serves_blocks: true,
            full_mmr: false,
        }
    }

    fn drain(e: &mut Engine) -> Vec<Output> {
        std::iter::from_fn(|| e.poll()).collect()
    }

    /// Handshake `peer` on `conn` (we dialled it if `outbound`); answers what else came out.
    fn connect(
        e: &mut Engine,
        ours: &mut Ours,
        conn: u64,
        peer: Hash,
        outbound: bool,
        h: Hello,
    ) -> Vec<Output> {
        let dir = if outbound { Dir::Outbound } else { Dir::Inbound };
        e.handle(t(0), Input::Connected { conn, peer, addr: addr(conn), dir }, ours);
        let mut out = drain(e);
        if outbound {
            let Some(Output::Request { req, msg: Message::Hello(_), .. }) = out.first().cloned() else {
                panic!("we send our Hello first: {out:?}")
            };
            out.remove(0);
            e.handle(t(0), Input::Answer { req, answer: Some(Message::Hello(h)) }, ours);
        } else {
            e.handle(t(0), Input::Frame { conn, stream: 1, msg: Message::Hello(h) }, ours);
        }
        out.extend(drain(e));
        out
    }

    /// The requests among `out`, but the mesh's `GetPeers`.
    fn requests(out: &[Output]) -> Vec<(u64, ReqId, Message)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Request { msg: Message::GetPeers, .. } => None,
                Output::Request { conn, req, msg, .. } => Some((*conn, *req, msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_announced_block_one_peer_fails_to_deliver_comes_from_the_next() {
        let peer = peer_chain(6);
        let mut ours = Ours::new(peer.params.clone());
        for (txpow, witness) in &peer.blocks()[..5] {
            let b = BlockData { txpow: txpow.clone(), witness: witness.clone(), listed: vec![] };
            assert_eq!(ours.submit(b), crate::net::proto::chain::Submitted::Accepted);
        }
        let mut e = engine(peer.params.chain_id);
        let claim = ours.chain.weight();
        let out = connect(&mut e, &mut ours, 1, B, false, hello(&peer, claim));
        assert!(requests(&out).is_empty(), "no peer claims more: nothing to sync");
        connect(&mut e, &mut ours, 2, A, false, hello(&peer, claim));
        assert_eq!(e.peer_count(), 2);
        let tip = peer.chain.tip_id();
        e.handle(t(1), Input::Frame { conn: 1, stream: 2, msg: Message::Inv(vec![tip]) }, &mut ours);
        e.handle(t(1), Input::Frame { conn: 2, stream: 3, msg: Message::Inv(vec![tip]) }, &mut ours);
        // One fetch of an id at a time: B, the first announcer, is asked; A waits its turn.
        let asked = requests(&drain(&mut e));
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (first, req, msg) = asked[0].clone();
        assert_eq!((first, &msg), (1, &Message::GetBlocks(vec![tip])));
        // It fails to deliver (an empty answer, then no transaction either).
        e.handle(t(2), Input::Answer { req, answer: Some(Message::Blocks(vec![])) }, &mut ours);
        let asked = requests(&drain(&mut e));
        let (same, req, msg) = asked[0].clone();
        assert_eq!((same, &msg), (1, &Message::GetTxPow(vec![tip])), "not a block: a transaction?");
        e.handle(t(2), Input::Answer { req, answer: None }, &mut ours);
        let asked = requests(&drain(&mut e));
        let (next, req, msg) = asked[0].clone();
        assert_eq!(next, 2, "the next announcer is asked");
        e.handle(t(3), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        let out = drain(&mut e);
        assert!(requests(&out).is_empty(), "{out:?}");
        assert_eq!(ours.chain.tip_id(), tip);
        assert_eq!(e.wanted(), 0);
        assert_eq!(e.bans(), 0, "nobody is punished for what it could not deliver");
    }

    #[test]
    fn a_heavier_claim_starts_a_catch_up_and_a_replaced_connection_leaves_no_ghost() {
        let peer = peer_chain(20);
        let mut ours = Ours::new(peer.params.clone());
        let mut e = engine(peer.params.chain_id);
        let out = connect(&mut e, &mut ours, 1, A, true, hello(&peer, peer.chain.weight()));
        let asked = requests(&out);
        assert!(matches!(asked[..], [(1, _, Message::GetHeaders { .. })]), "{out:?}");
        // A connects again (connection 2): the older one is closed; its late close report
        // does not remove A.
        let out = connect(&mut e, &mut ours, 2, A, false, hello(&peer, peer.chain.weight()));
        assert!(
            out.contains(&Output::Close { conn: 1, code: close::REPLACED, reason: "replaced".into() }),
            "{out:?}"
        );
        e.handle(t(1), Input::Closed { conn: 1 }, &mut ours);
        assert_eq!(e.peer_count(), 1, "the current connection's peer stays");
        // The running job's request went on connection 1: it failed with it.
        let (_, req, _) = asked[0].clone();
        e.handle(t(1), Input::Answer { req, answer: None }, &mut ours);
        // The catch-up is queued again when A announces a block we cannot connect... here,
        // A's heavier Hello on connection 2 queued one: it runs on connection 2.
        let mut asked = requests(&drain(&mut e));
        let mut rounds = 0;
        while let Some((conn, req, msg)) = asked.pop() {
            assert_eq!(conn, 2);
            e.handle(t(2), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
            asked.extend(requests(&drain(&mut e)));
            rounds += 1;
            assert!(rounds < 100);
        }
        assert_eq!(ours.chain.tip_id(), peer.chain.tip_id());
        assert_eq!(e.running_job(), None);
        e.handle(t(3), Input::Closed { conn: 2 }, &mut ours);
        assert_eq!(e.peer_count(), 0);
        // Announcements on a connection gone are not taken.
        e.handle(
            t(3),
            Input::Frame { conn: 2, stream: 9, msg: Message::Inv(vec![Hash([9; 32])]) },
            &mut ours,
        );
        assert_eq!(e.wanted(), 0);
    }

    #[test]
    fn handshakes_refuse_silence_other_networks_and_banned_peers_and_crossed_dials_keep_one() {
        let peer = peer_chain(3);
        let mut ours = Ours::new(peer.params.clone());
        let mut e = engine(peer.params.chain_id);
        // Silent inbound: closed at the grace.
        e.handle(t(0), Input::Tick, &mut ours);
        e.handle(t(0), Input::Connected { conn: 1, peer: A, addr: addr(1), dir: Dir::Inbound }, &mut ours);
        assert!(drain(&mut e).is_empty());
        assert!(e.poll_timeout().is_some_and(|d| d <= t(0) + HELLO_GRACE));
        e.handle(t(5), Input::Tick, &mut ours);
        assert!(drain(&mut e).is_empty(), "not yet");
        e.handle(t(0) + HELLO_GRACE, Input::Tick, &mut ours);
        assert_eq!(
            drain(&mut e),
            vec![Output::Close { conn: 1, code: close::NO_HELLO, reason: "no hello".into() }]
        );
        e.handle(t(10), Input::Closed { conn: 1 }, &mut ours);
        // Another network.
        let mut other = hello(&peer, 0);
        other.genesis = Hash([3; 32]);
        let out = connect(&mut e, &mut ours, 2, A, false, other);
        assert!(out.contains(&Output::Close {
            conn: 2,
            code: close::WRONG_NETWORK,
            reason: "wrong network".into()
        }));
        assert_eq!(e.peer_count(), 0);
        e.handle(t(10), Input::Closed { conn: 2 }, &mut ours);
        // A bad frame bans; the same identity from the same IP is refused at once after.
        connect(&mut e, &mut ours, 3, A, false, hello(&peer, 0));
        e.handle(t(11), Input::FrameFault { conn: 3, fault: Fault::Bad("junk".into()) }, &mut ours);
        assert!(drain(&mut e)
            .iter()
            .any(|o| matches!(o, Output::Close { conn: 3, code: close::BANNED, .. })));
        e.handle(t(11), Input::Closed { conn: 3 }, &mut ours);
        e.handle(t(12), Input::Connected { conn: 4, peer: A, addr: addr(3), dir: Dir::Inbound }, &mut ours);
        assert_eq!(
            drain(&mut e),
            vec![Output::Close { conn: 4, code: close::BANNED, reason: "banned".into() }]
        );
        // Crossed dials keep the dial of the lower node id, on both ends: with C (above us)
        // ours, with B (below us) its.
        let c = Hash([0xf0; 32]);
        let out = connect(&mut e, &mut ours, 5, c, true, hello(&peer, 0));
        assert!(!out.iter().any(|o| matches!(o, Output::Close { .. })), "{out:?}");
        let out = connect(&mut e, &mut ours, 6, c, false, hello(&peer, 0));
        assert!(
            out.contains(&Output::Close { conn: 6, code: close::REPLACED, reason: "duplicate".into() }),
            "{out:?}"
        );
        connect(&mut e, &mut ours, 7, B, true, hello(&peer, 0));
        let out = connect(&mut e, &mut ours, 8, B, false, hello(&peer, 0));
        assert!(
            out.contains(&Output::Close { conn: 7, code: close::REPLACED, reason: "replaced".into() }),
            "{out:?}"
        );
        assert_eq!(e.peer_count(), 2);
    }

    #[test]
    fn a_configured_peer_that_dialled_us_is_not_dialled_again_and_its_backoff_restarts_only_after_a_handshake(
    ) {
        let peer = peer_chain(3);
        let mut ours = Ours::new(peer.params.clone());
        let fixed = addr(1);
        let own: SocketAddr = "10.0.0.1:9000".parse().unwrap();
        let mesh = Mesh::new([7; 32], Limits::SERVER, 0, Duration::from_secs(30), Some(own));
        let local = Local {
            node_id: ME,
            chain_id: peer.params.chain_id,
            listen: Some(own),
            full_mmr: false,
            want_txs: true,
            group_rate_per_min: 60,
            backoff: Duration::from_secs(1),
            online: true,
        };
        let mut e = Engine::new(cfg(), local, mesh, &[fixed], Duration::from_secs(5));
        e.handle(t(0), Input::Tick, &mut ours);
        assert!(drain(&mut e).contains(&Output::Dial { addr: fixed, dir: Dir::Fixed }));
        // The dial fails (no handshake): the next try waits the backoff, then twice that.
        e.handle(t(1), Input::DialEnded { addr: fixed, connected: true }, &mut ours);
        assert_eq!(e.poll_timeout(), Some(t(2)));
        e.handle(t(2), Input::Tick, &mut ours);
        assert!(drain(&mut e).contains(&Output::Dial { addr: fixed, dir: Dir::Fixed }));
        e.handle(t(2), Input::DialEnded { addr: fixed, connected: false }, &mut ours);
        assert_eq!(e.poll_timeout(), Some(t(4)), "doubled");
        // Meanwhile the configured peer dials us, from that address: no dial of ours follows.
        connect(&mut e, &mut ours, 1, A, false, hello(&peer, 0));
        e.handle(t(10), Input::Tick, &mut ours);
        assert!(!drain(&mut e).iter().any(|o| matches!(o, Output::Dial { .. })));
        assert_eq!(e.peer_count(), 1);
        e.handle(t(10), Input::Closed { conn: 1 }, &mut ours);
        // A stranger claiming to listen at the configured address does not stand in for it.
        let mut liar = hello(&peer, 0);
        (liar.listen, liar.is_client) = (Some(fixed.to_string()), false);
        connect(&mut e, &mut ours, 2, B, false, liar);
        e.handle(t(11), Input::Tick, &mut ours);
        assert!(drain(&mut e).contains(&Output::Dial { addr: fixed, dir: Dir::Fixed }));
        // Our dial meets A there; a short-lived connection does not restart the backoff.
        e.handle(t(11), Input::Connected { conn: 3, peer: A, addr: fixed, dir: Dir::Fixed }, &mut ours);
        let out = drain(&mut e);
        let Some(Output::Request { req, .. }) =
            out.iter().find(|o| matches!(o, Output::Request { .. })).cloned()
        else {
            panic!("our Hello: {out:?}")
        };
        e.handle(t(11), Input::Answer { req, answer: Some(Message::Hello(hello(&peer, 0))) }, &mut ours);
        e.handle(t(15), Input::Closed { conn: 3 }, &mut ours);
        e.handle(t(15), Input::DialEnded { addr: fixed, connected: true }, &mut ours);
        drain(&mut e);
        e.handle(t(18), Input::Tick, &mut ours);
        assert!(!drain(&mut e).iter().any(|o| matches!(o, Output::Dial { addr, .. } if *addr == fixed)));
        e.handle(t(19), Input::Tick, &mut ours);
        assert!(
            drain(&mut e).contains(&Output::Dial { addr: fixed, dir: Dir::Fixed }),
            "4 s later: still doubling"
        );
        e.handle(t(20), Input::DialEnded { addr: fixed, connected: false }, &mut ours);
        // A, met by our dial, connecting to us from another address counts as connected.
        connect(&mut e, &mut ours, 4, A, false, hello(&peer, 0));
        e.handle(t(100), Input::Tick, &mut ours);
        assert!(!drain(&mut e).iter().any(|o| matches!(o, Output::Dial { addr, .. } if *addr == fixed)));
    }

    #[test]
    fn misbehaviour_slows_the_group_and_a_closing_connection_is_not_heard() {
        let peer = peer_chain(3);
        let mut ours = Ours::new(peer.params.clone());
        let mut e = engine(peer.params.chain_id);
        // An inbound peer whose first request is not its Hello: answered (empty) and closed.
        e.handle(t(0), Input::Connected { conn: 1, peer: A, addr: addr(1), dir: Dir::Inbound }, &mut ours);
        e.handle(t(0), Input::Frame { conn: 1, stream: 1, msg: Message::GetPeers }, &mut ours);
        let out = drain(&mut e);
        assert_eq!(out[0], Output::Reply { conn: 1, stream: 1, msg: None });
        assert!(matches!(out[1], Output::Close { conn: 1, code: close::NO_HELLO, .. }));
        // Its Hello, arriving after the close was asked, does not register it.
        e.handle(t(0), Input::Frame { conn: 1, stream: 2, msg: Message::Hello(hello(&peer, 0)) }, &mut ours);
        assert_eq!(e.peer_count(), 0);
        assert_eq!(drain(&mut e), vec![Output::Reply { conn: 1, stream: 2, msg: None }]);
        // A ban in a group: its budget refills slower and it may open fewer connections.
        connect(&mut e, &mut ours, 2, B, false, hello(&peer, 0));
        e.handle(t(1), Input::FrameFault { conn: 2, fault: Fault::Bad("junk".into()) }, &mut ours);
        let out = drain(&mut e);
        assert!(
            out.iter().any(|o| matches!(o, Output::Throttle { conn: 2, factor } if *factor < 1.0)),
            "{out:?}"
        );
        assert!(
            out.iter().any(|o| matches!(o, Output::GroupRate { per_min, .. } if *per_min < 60)),
            "{out:?}"
        );
        assert_eq!(e.bans(), 1);
    }

    #[test]
    fn a_block_whose_missing_transactions_never_come_is_asked_of_the_next_announcer_unpunished() {
        let mut peer = peer_chain(3);
        let tx = peer.make_tx().expect("a free coin");
        let tip = peer.mine_block(false, vec![tx]);
        let mut ours = Ours::new(peer.params.clone());
        for (txpow, witness) in &peer.blocks()[..3] {
            let b = BlockData { txpow: txpow.clone(), witness: witness.clone(), listed: vec![] };
            assert_eq!(ours.submit(b), crate::net::proto::chain::Submitted::Accepted);
        }
        let mut e = engine(peer.params.chain_id);
        let claim = ours.chain.weight();
        connect(&mut e, &mut ours, 1, A, false, hello(&peer, claim));
        connect(&mut e, &mut ours, 2, B, false, hello(&peer, claim));
        e.handle(t(1), Input::Frame { conn: 1, stream: 5, msg: Message::Inv(vec![tip]) }, &mut ours);
        e.handle(t(1), Input::Frame { conn: 2, stream: 6, msg: Message::Inv(vec![tip]) }, &mut ours);
        let (conn, req, _) = requests(&drain(&mut e))[0].clone();
        assert_eq!(conn, 1);
        // The block without the transaction it lists.
        let (txpow, witness) = peer.blocks()[3].clone();
        let bare = BlockData { txpow, witness, listed: vec![] };
        e.handle(t(2), Input::Answer { req, answer: Some(Message::Blocks(vec![bare])) }, &mut ours);
        let asked = requests(&drain(&mut e));
        assert!(matches!(&asked[..], [(1, _, Message::GetTxPow(_))]), "{asked:?}");
        // No answer: not a fault; the next announcer is asked.
        e.handle(t(3), Input::Answer { req: asked[0].1, answer: None }, &mut ours);
        let asked = requests(&drain(&mut e));
        assert!(matches!(&asked[..], [(2, _, Message::GetBlocks(_))]), "{asked:?}");
        assert_eq!(e.bans(), 0);
        let (_, req, msg) = asked[0].clone();
        e.handle(t(4), Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        assert_eq!(ours.chain.tip_id(), tip);
    }
}
