//! The peer protocol over QUIC: handshake, relay by inventory, catch-up from the fork point
//! (headers, then blocks), initial sync from a verified cascade, coin proofs from `full_mmr`
//! peers, peer gossip, and serving all of those requests.
//!
//! The network task never touches chain state: it asks the chain actor through
//! [`ChainRequest`]s, and every block it receives goes through the same validation path as the
//! local miner's. Misbehaviour raises the peer's score; at [`BAN_SCORE`] its
//! (IP, node id) is banned for [`BAN_TIME`]. Address groups (/24, /48) are only rate-limited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::net::message::{BlockData, CoinQuery, Hello, Message, RelayTxPow, PROTOCOL_VERSION};
use crate::net::transport::{self, Identity, NetError, Timing};
use crate::types::{CoinRecord, TxHeader};

pub use crate::net::proto::chain::{Again, Submitted, SyncOutcome, SyncStart, TxRefusal};

/// Questions the network task asks the chain actor.
#[derive(Debug)]
pub enum ChainRequest {
    /// (genesis, tip, weight) for a `Hello`.
    Hello(oneshot::Sender<(Hash, Hash, u128)>),
    /// Best-chain headers after the first locator id we share.
    Headers(Vec<Hash>, u32, oneshot::Sender<Vec<TxHeader>>),
    /// Remember a peer address we reached (a handshake we dialled).
    RecordPeer(SocketAddr),
    /// Persist these outbound peers as the anchors dialled first after a restart.
    Anchors(Vec<SocketAddr>),
    /// An input for the protocol engine ([`crate::net::proto::engine`]), which the chain
    /// actor runs.
    Proto(EngineInput),
    /// Check coin proofs a peer served against our chain.
    /// `Err(TxRefusal)` carries the penalty (0 when the proofs are against a block we do not
    /// have yet or that just left our best chain: a race, not misbehaviour).
    CheckCoinProofs(Vec<(CoinRecord, MmrProof)>, oneshot::Sender<Result<(), TxRefusal>>),
}

/// Peers' read requests, answered without the chain actor (the node serves them from a
/// read-only store connection: a flood of reads never delays blocks, transactions or the
/// miner). Called on blocking threads.
pub trait Reads: Send + Sync + 'static {
    /// Tree blocks by id (with witnesses and listed TxPoWs), at most
    /// [`crate::net::message::MAX_GET`], up to a byte budget.
    fn blocks(&self, ids: &[Hash]) -> Vec<BlockData>;
    /// Pending transaction TxPoWs with their proofs, and TxPoWs listed by tree blocks
    /// without, by id (at most [`crate::net::message::MAX_GET`]).
    fn txpows(&self, ids: &[Hash]) -> Vec<RelayTxPow>;
    /// Our cascade, tree root block and its peaks, to serve `GetCascade`.
    fn cascade(&self) -> Option<Message>;
    /// A page of `GetCoinProofs` after the cursor (`None` unless this node keeps the full
    /// coin set).
    fn coin_proofs(&self, query: CoinQuery, after: Option<Hash>) -> Option<Message>;
}

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// UDP address to listen on (`None`: a client that accepts no inbound connections).
    pub listen: Option<SocketAddr>,
    /// Peers to dial, and keep dialing (with backoff) whenever the connection drops.
    pub peers: Vec<SocketAddr>,
    /// Addresses an earlier run reached (the store's peer table): the address book's tried
    /// table starts with them.
    pub reached: Vec<SocketAddr>,
    /// Outbound peers of an earlier run, dialled first (at most
    /// [`crate::net::proto::mesh::MAX_ANCHORS`]).
    pub anchors: Vec<SocketAddr>,
    /// Keep-alive and idle timeout.
    pub timing: Timing,
    /// Reconnect backoff, first step (doubles up to 32×).
    pub backoff: Duration,
    /// Most inbound connections at once (servers 512).
    pub max_inbound: usize,
    /// New inbound connections accepted per address group (/24 IPv4, /48 IPv6) per minute.
    /// Groups are only rate-limited, never banned wholesale (carrier NAT pools).
    pub group_rate_per_min: u32,
    /// Outbound connections to keep, filled from addresses peers gossip (`None`: 8 for a
    /// listening node, 2 for a client).
    pub outbound_target: Option<usize>,
    /// How often to look for more outbound peers when below the target.
    pub discover_interval: Duration,
    /// Ask for transaction `Inv`s (the energy policy turns this off on cellular background).
    pub want_txs: bool,
    /// Initial sync (a node still at genesis) waits up to this long for 3 peers from 2 /16
    /// groups, then syncs from the heaviest claim first (SPEC §5).
    pub initial_wait: Duration,
    /// Start with connections wanted (`false`: a background node dials nobody until
    /// [`NetHandle::set_online`]).
    pub online: bool,
}

/// The address group of an IP: its /24 (IPv4) or /48 (IPv6).
pub fn address_group(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets()[..3].to_vec(),
        IpAddr::V6(v) => v.octets()[..6].to_vec(),
    }
}

/// The wider group used to tell independent sources apart (SPEC §5): /16 for IPv4, /32 IPv6.
pub use crate::net::proto::addrbook::group16 as source_group;

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: None,
            peers: vec![],
            reached: vec![],
            anchors: vec![],
            timing: Timing::default(),
            backoff: Duration::from_millis(500),
            max_inbound: 512,
            group_rate_per_min: 60,
            outbound_target: None,
            discover_interval: Duration::from_secs(30),
            want_txs: true,
            initial_wait: Duration::from_secs(5),
            online: true,
        }
    }
}

use crate::net::proto::addrbook::Limits;
use crate::net::proto::budget::{Admit, RequestBudget};
use crate::net::proto::engine::{Input as EngineInput, Output as EngineOutput};
use crate::net::proto::mesh::{Dir, Input as MeshInput, Mesh, Output as MeshOutput};
/// Score at which a peer is banned. A malformed frame, an invalid block or a forged cascade
/// reach it at once; an invalid transaction (invalid whatever our state) adds 20, an answer
/// kind sent as a request 20, a frame sent slower than [`transport::MIN_FRAME_RATE`] 25.
/// Scores fall by a point a minute ([`crate::net::proto::score`]).
pub use crate::net::proto::score::BAN_SCORE;
/// How long a misbehaving (IP, node id) stays banned.
pub use crate::net::proto::score::BAN_TIME;
use crate::net::proto::score::{ScoreBook, Verdict};
use crate::net::proto::{Machine, Time};

/// The driver's clock origin: its first reading in this process.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The driver's clock, read once per event and passed to the protocol's units as a [`Time`].
pub(crate) fn now() -> Time {
    Time::from_origin(origin().elapsed())
}

/// The runtime's instant of a moment of the driver's clock (to sleep until it).
pub(crate) fn instant_at(t: Time) -> tokio::time::Instant {
    tokio::time::Instant::from_std(origin() + t.since_origin())
}
/// Most pages of coin proofs one look-up reads from one peer.
const MAX_COIN_PAGES: u32 = 64;

/// Something to announce to peers.
#[derive(Debug, Clone)]
pub struct TipAnnounce {
    /// The TxPoW id.
    pub id: Hash,
    /// A new best tip (sent to every peer) rather than a transaction (sent to peers that
    /// asked for transactions).
    pub block: bool,
}

struct PeerInfo {
    conn: quinn::Connection,
    hello: Hello,
    /// We dialled it.
    outbound: bool,
    /// When it was registered.
    since: Time,
}

/// Two connections to one peer in opposite directions registered this close together were
/// dialled at once: both sides keep the one the lower node id dialled. Otherwise the newer
/// connection replaces the older (the peer restarted or moved).
const SIMULTANEOUS: Duration = Duration::from_secs(5);

struct Shared {
    chain: mpsc::Sender<ChainRequest>,
    reads: Arc<dyn Reads>,
    /// Reads served at once ([`READS_AT_ONCE`]): a flood queues here, not on blocking threads.
    reads_gate: tokio::sync::Semaphore,
    chain_id: u8,
    listen: Option<String>,
    full_mmr: bool,
    want_txs: AtomicBool,
    /// Connections are wanted (the energy policy turns this off in the background: no
    /// dialing, no discovery timer, inbound refused).
    online: tokio::sync::watch::Sender<bool>,
    /// Builds the client config for new connections (keep-alive and idle timeout).
    client_config: Box<dyn Fn(Timing) -> Result<quinn::ClientConfig, NetError> + Send + Sync>,
    /// The client config new connections use.
    dial_config: Mutex<quinn::ClientConfig>,
    peers: Mutex<HashMap<Hash, PeerInfo>>,
    node_id: Hash,
    /// Scores, bans and per-group misbehaviour (socket-free: [`ScoreBook`]).
    book: Mutex<ScoreBook>,
    stats: NetStats,
    /// Peers and the address book (socket-free: [`Mesh`]); its outputs are carried out by
    /// [`drive`].
    mesh: Mutex<Mesh>,
    /// Recently departed peers' IPs (at most [`RECENT_IPS`]): a penalty the engine gives a
    /// peer that has gone meanwhile still reaches its (IP, node id).
    recent_ips: Mutex<std::collections::VecDeque<(Hash, IpAddr)>>,
    /// Wakes [`proto_timer`] to read the units' next deadlines again.
    wake: tokio::sync::Notify,
    rt: tokio::runtime::Handle,
    endpoint: quinn::Endpoint,
    backoff: Duration,
}

/// Live counters of the network task.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Connected peers (after the handshake).
    pub peers: Arc<AtomicUsize>,
    /// Bans issued since start.
    pub bans: Arc<AtomicUsize>,
    /// UDP bytes received on connections that have closed.
    closed_in: Arc<AtomicU64>,
    /// UDP bytes sent on connections that have closed.
    closed_out: Arc<AtomicU64>,
    /// The largest totals reported so far.
    reported: Arc<Mutex<(u64, u64)>>,
}

/// A handle on the running network task (cheap to clone).
#[derive(Clone)]
pub struct NetHandle {
    shared: Arc<Shared>,
}

impl NetHandle {
    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.shared.stats.peers.load(Ordering::SeqCst)
    }

    /// Bans issued since start.
    pub fn ban_count(&self) -> usize {
        self.shared.stats.bans.load(Ordering::SeqCst)
    }

    /// UDP bytes (received, sent) since start, over every connection (QUIC and TLS overhead
    /// included). Never decreases (a connection replaced by a newer one to the same peer is
    /// out of the live sum until it closes).
    pub fn bytes(&self) -> (u64, u64) {
        let s = &self.shared;
        let p = s.peers.lock().unwrap_or_else(|e| e.into_inner());
        let (mut i, mut o) =
            (s.stats.closed_in.load(Ordering::SeqCst), s.stats.closed_out.load(Ordering::SeqCst));
        for p in p.values() {
            let st = p.conn.stats();
            i += st.udp_rx.bytes;
            o += st.udp_tx.bytes;
        }
        let mut last = s.stats.reported.lock().unwrap_or_else(|e| e.into_inner());
        *last = (last.0.max(i), last.1.max(o));
        *last
    }

    /// Connected peers: (address, node id, is_client, full_mmr).
    pub fn peers(&self) -> Vec<(SocketAddr, Hash, bool, bool)> {
        let p = self.shared.peers.lock().unwrap_or_else(|e| e.into_inner());
        p.iter().map(|(id, i)| (i.conn.remote_address(), *id, i.hello.is_client, i.hello.full_mmr)).collect()
    }

    /// Go offline (close every connection; no dialing, no discovery timer, inbound refused)
    /// or online again (the dial loops reconnect at once).
    pub fn set_online(&self, on: bool) {
        let s = &self.shared;
        s.online.send_replace(on);
        drive(s, MeshInput::Online(on));
        if !on {
            for p in lock(&s.peers).values() {
                p.conn.close(0u32.into(), b"sleeping");
            }
        }
    }

    /// Whether connections are wanted.
    pub fn is_online(&self) -> bool {
        *self.shared.online.borrow()
    }

    /// Apply the energy policy's knobs: outbound peers to keep, whether to ask for transaction
    /// announcements, and keep-alive / idle timeout for new connections.
    pub fn set_policy(&self, target: usize, want_txs: bool, timing: Timing) {
        let s = &self.shared;
        drive(s, MeshInput::Target(target));
        s.want_txs.store(want_txs, Ordering::SeqCst);
        match (s.client_config)(timing) {
            Ok(c) => *lock(&s.dial_config) = c,
            Err(e) => tracing::warn!("cannot apply timing: {e}"),
        }
    }

    /// Highest chain weight connected peers claimed in their `Hello`.
    pub fn best_claim(&self) -> u128 {
        lock(&self.shared.peers).values().map(|p| p.hello.tip_weight).max().unwrap_or(0)
    }

    /// (tip, claimed weight) of each connected peer's `Hello`.
    pub fn claims(&self) -> Vec<(Hash, u128)> {
        lock(&self.shared.peers).values().map(|p| (p.hello.tip, p.hello.tip_weight)).collect()
    }

    /// Carry out what the protocol engine asks (called by the chain actor, which runs it):
    /// send a request on the peer's connection and hand the answer back, or score the peer.
    pub fn engine_output(&self, o: EngineOutput) {
        let s = &self.shared;
        match o {
            EngineOutput::Request { peer, req, msg, timeout } => {
                let conn = lock(&s.peers).get(&peer).map(|p| p.conn.clone());
                let chain = s.chain.clone();
                s.rt.spawn(async move {
                    let answer = match conn {
                        Some(c) => transport::request(&c, &msg, timeout).await.ok(),
                        None => None,
                    };
                    let _ = chain.send(ChainRequest::Proto(EngineInput::Answer { req, answer })).await;
                });
            }
            EngineOutput::Penalize { peer, points, why } => punish(s, &peer, points, &why),
            EngineOutput::Ban { peer, why } => punish(s, &peer, BAN_SCORE, &why),
        }
    }

    /// Dial `addr` and keep the connection up (redialling with backoff) while the node runs.
    pub fn add_peer(&self, rt: &tokio::runtime::Handle, addr: SocketAddr) {
        rt.spawn(dial_loop(self.shared.clone(), addr));
    }

    /// Ask `full_mmr` peers for coin proofs, every page, and check each against our chain
    /// (a peer serving a bad proof is banned and the next one is asked). Answers the block
    /// the proofs are against and the proven coins.
    pub async fn fetch_coin_proofs(
        &self,
        query: CoinQuery,
    ) -> Result<(Hash, Vec<(CoinRecord, MmrProof)>), NetError> {
        let s = &self.shared;
        let servers: Vec<(Hash, quinn::Connection)> = {
            let p = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            p.iter().filter(|(_, i)| i.hello.full_mmr).map(|(id, i)| (*id, i.conn.clone())).collect()
        };
        if servers.is_empty() {
            return Err(NetError::Protocol("no connected peer keeps the full coin set".into()));
        }
        let mut last = NetError::Protocol("no answer".into());
        'peers: for (peer, conn) in servers {
            let mut out = vec![];
            let mut block = Hash::ZERO;
            let mut after: Option<Hash> = None;
            for page in 0..MAX_COIN_PAGES {
                let req = Message::GetCoinProofs { query: query.clone(), after };
                match transport::request(&conn, &req, Duration::from_secs(30)).await {
                    Ok(Message::CoinProofs { block: b, proofs, next }) => {
                        if page > 0 && b != block {
                            // The peer's tip moved between pages: start over with it.
                            last = NetError::Protocol("tip moved while paging".into());
                            continue 'peers;
                        }
                        block = b;
                        match ask(s, |r| ChainRequest::CheckCoinProofs(proofs.clone(), r)).await? {
                            Ok(()) => out.extend(proofs),
                            Err(e) => {
                                let why = format!("coin proof: {}", e.reason);
                                penalize(s, &conn, &peer, e.penalty, &why);
                                last = NetError::Protocol(why);
                                continue 'peers;
                            }
                        }
                        match next {
                            // A cursor must move (pages run in (address, coin id) order, so a
                            // next coin id may be lower than the last one); the page cap
                            // bounds the rest.
                            Some(n) if after != Some(n) => after = Some(n),
                            Some(_) => {
                                penalize(s, &conn, &peer, 20, "coin proof cursor did not move");
                                last = NetError::Protocol("coin proof cursor did not move".into());
                                continue 'peers;
                            }
                            None => return Ok((block, out)),
                        }
                    }
                    Ok(_) => {
                        last = NetError::Protocol("unexpected answer to GetCoinProofs".into());
                        continue 'peers;
                    }
                    Err(e) => {
                        last = e;
                        continue 'peers;
                    }
                }
            }
            // Never a partial answer as if it were whole.
            last = NetError::Protocol(format!("more than {MAX_COIN_PAGES} pages of coin proofs"));
        }
        Err(last)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_banned(s: &Shared, ip: IpAddr, peer: &Hash) -> bool {
    lock(&s.book).is_banned(now(), ip, peer)
}

/// Ban a peer's (IP, node id) and cut it off (its group is charged a ban's worth too).
fn ban(s: &Shared, conn: &quinn::Connection, peer: &Hash, why: &str) {
    lock(&s.book).penalize(now(), conn.remote_address().ip(), peer, BAN_SCORE);
    banned(s, conn, peer, why);
}

fn banned(s: &Shared, conn: &quinn::Connection, peer: &Hash, why: &str) {
    tracing::warn!("banning peer {} at {}: {why}", &peer.to_hex()[..16], conn.remote_address());
    s.stats.bans.fetch_add(1, Ordering::SeqCst);
    conn.close(5u32.into(), why.as_bytes());
}

/// Most recently departed peers whose IP is remembered for a late penalty.
const RECENT_IPS: usize = 256;

/// Score a peer the engine judged: on its current connection, else at the IP it left from
/// (if recent). At [`BAN_SCORE`] it is banned (and cut off if connected).
fn punish(s: &Shared, peer: &Hash, points: u32, why: &str) {
    let conn = lock(&s.peers).get(peer).map(|p| p.conn.clone());
    match conn {
        Some(c) if points >= BAN_SCORE => ban(s, &c, peer, why),
        Some(c) => penalize(s, &c, peer, points, why),
        None => {
            let ip = lock(&s.recent_ips).iter().rev().find(|(p, _)| p == peer).map(|(_, ip)| *ip);
            let Some(ip) = ip else { return };
            if let Verdict::Banned = lock(&s.book).penalize(now(), ip, peer, points) {
                tracing::warn!("banning departed peer {} at {ip}: {why}", &peer.to_hex()[..16]);
                s.stats.bans.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Add to a peer's misbehaviour score (and its group's); at [`BAN_SCORE`] it is banned.
fn penalize(s: &Shared, conn: &quinn::Connection, peer: &Hash, points: u32, why: &str) {
    if points == 0 {
        return;
    }
    let v = lock(&s.book).penalize(now(), conn.remote_address().ip(), peer, points);
    match v {
        Verdict::Banned => banned(s, conn, peer, why),
        Verdict::Counted(n) => {
            tracing::debug!("peer {} scored {points} (now {n}): {why}", &peer.to_hex()[..16])
        }
    }
}

async fn ask<T>(s: &Shared, f: impl FnOnce(oneshot::Sender<T>) -> ChainRequest) -> Result<T, NetError> {
    let (tx, rx) = oneshot::channel();
    s.chain.send(f(tx)).await.map_err(|_| NetError::Protocol("node stopped".into()))?;
    rx.await.map_err(|_| NetError::Protocol("node stopped".into()))
}

/// Read requests served at once (they share one store connection).
const READS_AT_ONCE: usize = 2;

/// Answer a read request on a blocking thread, off the chain actor (`None`: the node is
/// shutting down).
async fn read<T: Send + 'static>(s: &Shared, f: impl FnOnce(&dyn Reads) -> T + Send + 'static) -> Option<T> {
    let _one_of_few = s.reads_gate.acquire().await.ok()?;
    let r = s.reads.clone();
    tokio::task::spawn_blocking(move || f(r.as_ref())).await.ok()
}

async fn our_hello(s: &Shared) -> Result<Hello, NetError> {
    let (genesis, tip, w) = ask(s, ChainRequest::Hello).await?;
    Ok(Hello {
        version: PROTOCOL_VERSION,
        chain_id: s.chain_id,
        genesis,
        tip,
        tip_weight: w,
        time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        listen: s.listen.clone(),
        is_client: s.listen.is_none(),
        want_txs: s.want_txs.load(Ordering::SeqCst),
        serves_blocks: true,
        full_mmr: s.full_mmr,
    })
}

fn check_hello(s: &Shared, ours: &Hello, theirs: &Hello) -> Result<(), NetError> {
    if theirs.chain_id != s.chain_id || theirs.genesis != ours.genesis {
        return Err(NetError::Protocol("peer is on another network".into()));
    }
    if theirs.version != PROTOCOL_VERSION {
        return Err(NetError::Protocol(format!("protocol version {}", theirs.version)));
    }
    Ok(())
}

/// What the node passes to the network task about itself.
pub struct Local {
    /// Chain id of the network.
    pub chain_id: u8,
    /// The node keeps the full coin set (and serves `GetCoinProofs`).
    pub full_mmr: bool,
    /// Serves peers' read requests.
    pub reads: Arc<dyn Reads>,
}

/// Start the network: listen (if configured), dial the configured peers with backoff, keep
/// the outbound target from gossiped addresses, relay announcements. Returns the endpoint
/// and a handle.
pub fn start(
    rt: &tokio::runtime::Handle,
    cfg: NetConfig,
    identity: &Identity,
    local: Local,
    chain: mpsc::Sender<ChainRequest>,
    tips: broadcast::Receiver<TipAnnounce>,
) -> Result<(quinn::Endpoint, NetHandle), NetError> {
    let _g = rt.enter();
    let bind = cfg.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let endpoint = match cfg.listen {
        Some(_) => quinn::Endpoint::server(transport::server_config(identity, cfg.timing)?, bind),
        None => quinn::Endpoint::client(bind),
    }
    .map_err(|e| NetError::Config(format!("bind {bind}: {e}")))?;
    let mut endpoint = endpoint;
    endpoint.set_default_client_config(transport::client_config(identity, cfg.timing)?);
    let own = endpoint.local_addr().ok().filter(|_| cfg.listen.is_some());
    let listen = own.map(|a| a.to_string());
    let target = cfg.outbound_target.unwrap_or(if cfg.listen.is_some() { 8 } else { 2 });
    // A client (a phone) keeps a smaller book.
    let limits = if cfg.listen.is_some() { Limits::SERVER } else { Limits::PHONE };
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let mut mesh = Mesh::new(seed, limits, target, cfg.discover_interval, own);
    mesh.restore(now(), &cfg.reached, &cfg.anchors);
    mesh.handle(now(), MeshInput::Online(cfg.online));
    let shared = Arc::new(Shared {
        chain,
        reads: local.reads,
        reads_gate: tokio::sync::Semaphore::new(READS_AT_ONCE),
        chain_id: local.chain_id,
        listen,
        full_mmr: local.full_mmr,
        want_txs: AtomicBool::new(cfg.want_txs),
        online: tokio::sync::watch::channel(cfg.online).0,
        client_config: {
            let id = identity.clone();
            Box::new(move |t| transport::client_config(&id, t))
        },
        dial_config: Mutex::new(transport::client_config(identity, cfg.timing)?),
        peers: Mutex::new(HashMap::new()),
        node_id: identity.node_id,
        book: Mutex::new(ScoreBook::new()),
        stats: NetStats::default(),
        mesh: Mutex::new(mesh),
        recent_ips: Mutex::new(Default::default()),
        wake: tokio::sync::Notify::new(),
        rt: rt.clone(),
        endpoint: endpoint.clone(),
        backoff: cfg.backoff,
    });
    if cfg.listen.is_some() {
        rt.spawn(accept_loop(shared.clone(), cfg.max_inbound, cfg.group_rate_per_min));
    }
    for addr in cfg.peers {
        rt.spawn(dial_loop(shared.clone(), addr));
    }
    rt.spawn(proto_timer(shared.clone()));
    rt.spawn(relay(shared.clone(), tips));
    Ok((endpoint, NetHandle { shared }))
}

async fn accept_loop(s: Arc<Shared>, max_inbound: usize, group_rate: u32) {
    let inbound = Arc::new(AtomicUsize::new(0));
    // Accept-rate window per address group: (window start, count).
    let mut groups: HashMap<Vec<u8>, (Time, u32)> = HashMap::new();
    while let Some(inc) = s.endpoint.accept().await {
        let now = now();
        let ip = inc.remote_address().ip();
        // A group that misbehaved (fresh identities banned one after another) gets fewer
        // connections a minute: a rate limit, never a ban.
        let rate = lock(&s.book).group_connections_per_min(now, ip, group_rate);
        let g = groups.entry(address_group(ip)).or_insert((now, 0));
        if now.saturating_duration_since(g.0) >= Duration::from_secs(60) {
            *g = (now, 0);
        }
        g.1 += 1;
        if g.1 > rate || inbound.load(Ordering::SeqCst) >= max_inbound || !*s.online.borrow() {
            inc.refuse();
            continue;
        }
        if groups.len() > 4096 {
            groups.retain(|_, v| now.saturating_duration_since(v.0) < Duration::from_secs(60));
        }
        let s = s.clone();
        let inbound = inbound.clone();
        inbound.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Ok(conn) = inc.await {
                let _ = serve(s, conn, Dir::Inbound).await;
            }
            inbound.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn connected_to(s: &Shared, addr: SocketAddr) -> bool {
    let addr = canon(addr);
    lock(&s.peers).values().any(|p| canon(p.conn.remote_address()) == addr)
}

/// An address as the protocol units see it: an IPv4 peer seen through a dual-stack socket
/// (`::ffff:a.b.c.d`) is an IPv4 address.
fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Dial `addr` now and again whenever the connection drops, with doubling backoff.
async fn dial_loop(s: Arc<Shared>, addr: SocketAddr) {
    let mut wait = s.backoff;
    loop {
        if !wait_online(&s).await {
            break;
        }
        if !connected_to(&s, addr) {
            match s.endpoint.connect_with(dial_config(&s), addr, "minima") {
                Ok(connecting) => {
                    if let Ok(conn) = connecting.await {
                        wait = s.backoff;
                        let r = serve(s.clone(), conn, Dir::Fixed).await;
                        tracing::debug!("peer {addr} closed: {r:?}");
                    }
                }
                Err(e) => tracing::warn!("dial {addr}: {e}"),
            }
        }
        if s.chain.is_closed() {
            break;
        }
        // Back off, but wake at once when the node goes offline (no timer then).
        let mut online = s.online.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = online.wait_for(|on| !*on) => {}
        }
        wait = (wait * 2).min(s.backoff * 32);
    }
}

fn dial_config(s: &Shared) -> quinn::ClientConfig {
    lock(&s.dial_config).clone()
}

/// Wait until connections are wanted (no timer while offline). `false` when the node stops.
async fn wait_online(s: &Shared) -> bool {
    let mut rx = s.online.subscribe();
    let r = rx.wait_for(|on| *on).await.is_ok();
    r && !s.chain.is_closed()
}

/// Feed a protocol unit one input at the driver's time; answers what it asks (its lock is
/// released before any of it is carried out).
fn step<M: Machine>(m: &Mutex<M>, input: M::Input) -> Vec<M::Output> {
    let mut m = lock(m);
    m.handle(now(), input);
    std::iter::from_fn(|| m.poll()).collect()
}

/// Feed the mesh one input and carry out what it asks.
fn drive(s: &Arc<Shared>, input: MeshInput) {
    for o in step(&s.mesh, input) {
        carry_out(s, o);
    }
    s.wake.notify_one();
}

fn carry_out(s: &Arc<Shared>, o: MeshOutput) {
    match o {
        MeshOutput::Dial(addr) => {
            let s2 = s.clone();
            s.rt.spawn(async move {
                if let Ok(connecting) = s2.endpoint.connect_with(dial_config(&s2), addr, "minima") {
                    if let Ok(Ok(conn)) = tokio::time::timeout(DIAL_TIMEOUT, connecting).await {
                        if transport::peer_id(&conn).is_ok_and(|id| id == s2.node_id) {
                            conn.close(1u32.into(), b"self");
                            drive(&s2, MeshInput::Myself(addr));
                        } else if !*s2.online.borrow() {
                            // Gone offline while dialling.
                            conn.close(0u32.into(), b"sleeping");
                        } else {
                            let r = serve(s2.clone(), conn, Dir::Outbound).await;
                            tracing::debug!("peer {addr} closed: {r:?}");
                        }
                    }
                }
                drive(&s2, MeshInput::DialEnded(addr));
            });
        }
        MeshOutput::Probe { addr, peer } => {
            let s2 = s.clone();
            s.rt.spawn(async move {
                let ok = probe(&s2, addr, peer).await;
                tracing::debug!("dial-back of {addr}: {}", if ok { "verified" } else { "not verified" });
                drive(&s2, MeshInput::Probed { addr, ok });
            });
        }
        MeshOutput::AskAddrs(peer) => {
            let Some(conn) = lock(&s.peers).get(&peer).map(|p| p.conn.clone()) else { return };
            let s2 = s.clone();
            s.rt.spawn(async move {
                if let Ok(Message::Peers(addrs)) =
                    transport::request(&conn, &Message::GetPeers, Duration::from_secs(30)).await
                {
                    let addrs = addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()).collect();
                    drive(&s2, MeshInput::Addrs { from: canon(conn.remote_address()), addrs });
                }
            });
        }
        MeshOutput::Close(peer) => {
            if let Some(p) = lock(&s.peers).get(&peer) {
                p.conn.close(0u32.into(), b"enough peers");
            }
        }
        MeshOutput::Remember(addr) => tell_chain(s, ChainRequest::RecordPeer(addr)),
        MeshOutput::Anchors(v) => tell_chain(s, ChainRequest::Anchors(v)),
    }
}

/// A hint for the store (an address to remember, the anchors): in order, and dropped when
/// the chain actor is too busy to take it (the next one brings it up to date).
fn tell_chain(s: &Arc<Shared>, r: ChainRequest) {
    if s.chain.try_send(r).is_err() {
        tracing::debug!("chain busy: a peer address is not persisted this time");
    }
}

/// How long a dial-back may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dial of the mesh may take to connect (a dead address frees its slot).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Dial `addr` back and check the key behind it is `peer`'s (then close at once: the TLS
/// handshake alone proves it).
async fn probe(s: &Shared, addr: SocketAddr, peer: Hash) -> bool {
    let Ok(connecting) = s.endpoint.connect_with(dial_config(s), addr, "minima") else { return false };
    match tokio::time::timeout(PROBE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => {
            let ok = transport::peer_id(&conn).is_ok_and(|id| id == peer);
            conn.close(0u32.into(), b"verified");
            ok
        }
        _ => false,
    }
}

/// The mesh's timer: a tick at the deadline it gives (none while it has none), re-read
/// whenever an input may have moved it. (The engine's units tick in the chain actor.)
async fn proto_timer(s: Arc<Shared>) {
    loop {
        if s.chain.is_closed() {
            return;
        }
        let next = lock(&s.mesh).poll_timeout();
        match next {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(instant_at(t)) => drive(&s, MeshInput::Tick),
                    _ = s.wake.notified() => {}
                }
            }
            None => s.wake.notified().await,
        }
    }
}

/// Announce new tips and transactions. Announcements are gathered for [`RELAY_GATHER`] and
/// only the newest tip of a burst is sent (a node catching up adds hundreds of blocks a
/// second; its peers need only the last), with the transactions in the same `Inv`.
async fn relay(s: Arc<Shared>, mut tips: broadcast::Receiver<TipAnnounce>) {
    loop {
        let first = match tips.recv().await {
            Ok(a) => a,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        tokio::time::sleep(RELAY_GATHER).await;
        let mut tip = None;
        let mut txs = vec![];
        let mut add = |a: TipAnnounce| {
            if a.block {
                tip = Some(a.id);
            } else if txs.len() < crate::net::message::MAX_INV {
                txs.push(a.id);
            }
        };
        add(first);
        loop {
            match tips.try_recv() {
                Ok(a) => add(a),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        let peers: Vec<(quinn::Connection, bool)> =
            lock(&s.peers).values().map(|p| (p.conn.clone(), p.hello.want_txs)).collect();
        for (c, want_txs) in peers {
            let mut ids: Vec<Hash> = tip.into_iter().collect();
            if want_txs {
                ids.extend(&txs);
            }
            if ids.is_empty() {
                continue;
            }
            tokio::spawn(async move {
                let _ = transport::announce(&c, &Message::Inv(ids)).await;
            });
        }
    }
}

/// How long announcements are gathered before one `Inv` goes out.
pub const RELAY_GATHER: Duration = Duration::from_millis(100);

/// Run one connection: handshake (the dialer sends `Hello` first; an inbound peer must send
/// it as its first request within [`transport::FRAME_GRACE`]), then answer its requests
/// until it closes.
async fn serve(s: Arc<Shared>, conn: quinn::Connection, dir: Dir) -> Result<(), NetError> {
    let dialer = dir != Dir::Inbound;
    let peer = transport::peer_id(&conn)?;
    if peer == s.node_id {
        conn.close(1u32.into(), b"self");
        return Err(NetError::Protocol("connected to self".into()));
    }
    if is_banned(&s, conn.remote_address().ip(), &peer) {
        conn.close(5u32.into(), b"banned");
        return Err(NetError::Protocol("banned peer".into()));
    }
    let ours = our_hello(&s).await?;
    let theirs = if dialer {
        match transport::request(&conn, &Message::Hello(ours.clone()), Duration::from_secs(30)).await? {
            Message::Hello(h) => h,
            _ => return Err(NetError::Protocol("expected Hello".into())),
        }
    } else {
        let first = tokio::time::timeout(transport::FRAME_GRACE, conn.accept_bi()).await;
        let (mut send, mut recv) = match first {
            Ok(Ok(x)) => x,
            _ => {
                conn.close(2u32.into(), b"no hello");
                return Err(NetError::Protocol("no Hello".into()));
            }
        };
        match transport::read_msg_timed(&mut recv).await {
            Ok(Message::Hello(h)) => {
                transport::write_msg(&mut send, &Message::Hello(ours.clone())).await?;
                let _ = send.finish();
                h
            }
            Ok(_) => {
                conn.close(2u32.into(), b"expected hello");
                return Err(NetError::Protocol("expected Hello".into()));
            }
            Err(NetError::Frame(e)) => {
                ban(&s, &conn, &peer, &format!("bad frame: {e}"));
                return Err(NetError::Frame(e));
            }
            Err(e) => return Err(e),
        }
    };
    if let Err(e) = check_hello(&s, &ours, &theirs) {
        conn.close(3u32.into(), b"wrong network");
        return Err(e);
    }
    let group = source_group(conn.remote_address().ip());
    let (tip, claim) = (theirs.tip, theirs.tip_weight);
    let listen =
        theirs.listen.as_deref().and_then(|l| l.parse::<SocketAddr>().ok()).filter(|_| !theirs.is_client);
    let Some(id) = register(&s, peer, &conn, theirs, dialer) else {
        conn.close(6u32.into(), b"duplicate");
        return Err(NetError::Protocol("a connection dialled at the same time is kept".into()));
    };
    drive(&s, MeshInput::Connected { peer, conn: id, addr: canon(conn.remote_address()), dir, listen });
    let up = EngineInput::PeerUp { peer, conn: id, outbound: dialer, tip, claim, group };
    let _ = s.chain.send(ChainRequest::Proto(up)).await;
    let budget = Arc::new(Mutex::new(RequestBudget::new(now())));
    let result = loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(x) => x,
            Err(e) => break Err(NetError::Stream(e.to_string())),
        };
        let s = s.clone();
        let c = conn.clone();
        let budget = budget.clone();
        tokio::spawn(async move {
            let msg = match transport::read_request_timed(&mut recv).await {
                Ok(m) => m,
                Err(NetError::Frame(e)) => {
                    // Oversized, unknown type or undecodable: misbehaviour.
                    ban(&s, &c, &peer, &format!("bad frame: {e}"));
                    return;
                }
                Err(e @ NetError::Unsolicited(_)) => {
                    penalize(&s, &c, &peer, 20, &e.to_string());
                    return;
                }
                Err(NetError::Slow) => {
                    penalize(&s, &c, &peer, 25, "frame sent too slowly");
                    return;
                }
                Err(_) => return,
            };
            // Each peer's requests and announcements, and the bytes of our answers, are rate
            // limited (slower for a group that misbehaved).
            {
                let now = now();
                let factor = crate::net::proto::budget::group_factor(
                    lock(&s.book).group_score(now, c.remote_address().ip()),
                );
                let admit = lock(&budget).admit(now, factor);
                match admit {
                    Admit::Now => {}
                    Admit::After(d) => tokio::time::sleep(d).await,
                    Admit::Drop => {
                        tracing::debug!("peer {} over its request budget: dropped", &peer.to_hex()[..16]);
                        return;
                    }
                }
            }
            if let Some(answer) = handle(&s, peer, msg).await {
                let frame = answer.to_frame();
                lock(&budget).charge(frame.len());
                let _ = send.write_all(&frame).await;
                let _ = send.finish();
            }
        });
    };
    unregister(&s, &peer, &conn);
    drive(&s, MeshInput::Disconnected { peer, conn: id });
    // The engine ignores it if a newer connection replaced this one.
    let _ = s.chain.send(ChainRequest::Proto(EngineInput::PeerGone { peer, conn: id })).await;
    result
}

/// Register a connection to `peer`; answers its registration number (rising). A connection
/// already registered is closed and replaced, unless the two were dialled at once from both
/// ends ([`SIMULTANEOUS`]): then the one the lower node id dialled is kept on both sides, and
/// `None` says `conn` lost.
fn register(s: &Shared, peer: Hash, conn: &quinn::Connection, hello: Hello, outbound: bool) -> Option<u64> {
    static REGISTERED: AtomicU64 = AtomicU64::new(0);
    let now = now();
    let mut p = lock(&s.peers);
    if let Some(old) = p.get(&peer) {
        let crossed = old.outbound != outbound
            && old.conn.close_reason().is_none()
            && now.saturating_duration_since(old.since) < SIMULTANEOUS;
        // Our dial wins if our id is the lower.
        if crossed && outbound != (s.node_id < peer) {
            return None;
        }
        old.conn.close(6u32.into(), b"replaced");
    }
    p.insert(peer, PeerInfo { conn: conn.clone(), hello, outbound, since: now });
    s.stats.peers.store(p.len(), Ordering::SeqCst);
    // Numbered under the lock: registration order.
    Some(REGISTERED.fetch_add(1, Ordering::SeqCst) + 1)
}

/// Returns whether `conn` was the peer's current connection (a newer one may have replaced it).
fn unregister(s: &Shared, peer: &Hash, conn: &quinn::Connection) -> bool {
    let mut p = lock(&s.peers);
    let current = p.get(peer).is_some_and(|i| i.conn.stable_id() == conn.stable_id());
    if current {
        p.remove(peer);
        let mut recent = lock(&s.recent_ips);
        if recent.len() >= RECENT_IPS {
            recent.pop_front();
        }
        recent.push_back((*peer, conn.remote_address().ip()));
    }
    s.stats.peers.store(p.len(), Ordering::SeqCst);
    // Under the lock, so `bytes()` never sees the connection in neither sum.
    let st = conn.stats();
    s.stats.closed_in.fetch_add(st.udp_rx.bytes, Ordering::SeqCst);
    s.stats.closed_out.fetch_add(st.udp_tx.bytes, Ordering::SeqCst);
    drop(p);
    current
}

async fn handle(s: &Arc<Shared>, peer: Hash, msg: Message) -> Option<Message> {
    match msg {
        Message::Inv(ids) => {
            // The engine (in the chain actor) decides what is wanted and whom to ask.
            let _ = s.chain.send(ChainRequest::Proto(EngineInput::Inv { peer, ids })).await;
            None
        }
        Message::GetBlocks(ids) => Some(Message::Blocks(read(s, move |r| r.blocks(&ids)).await?)),
        Message::GetBodies(ids) => {
            let (blocks, ids) = read(s, move |r| (r.blocks(&ids), ids)).await?;
            let bodies = blocks
                .into_iter()
                .zip(&ids)
                .take_while(|(b, id)| b.txpow.id() == **id)
                .map(|(b, _)| crate::net::message::BlockBody {
                    body: b.txpow.body,
                    witness: b.witness,
                    listed: b.listed,
                })
                .collect();
            Some(Message::Bodies(bodies))
        }
        Message::GetHeaders { locator, max } => {
            Some(Message::Headers(ask(s, |r| ChainRequest::Headers(locator, max, r)).await.ok()?))
        }
        Message::GetCascade => read(s, |r| r.cascade()).await?,
        Message::GetTxPow(ids) => Some(Message::TxPow(read(s, move |r| r.txpows(&ids)).await?)),
        Message::GetCoinProofs { query, after } => read(s, move |r| r.coin_proofs(query, after)).await?,
        // Only addresses we reached, or verified by dialling them back.
        Message::GetPeers => Some(Message::Peers(
            lock(&s.mesh).share(crate::net::message::MAX_PEERS).iter().map(|a| a.to_string()).collect(),
        )),
        Message::Ping(n) => Some(Message::Pong(n)),
        // A second Hello, or answers nobody asked for: ignored.
        _ => None,
    }
}
