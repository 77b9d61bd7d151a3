//! The QUIC driver of the peer protocol: it accepts and dials connections, turns each request
//! frame into an input of the protocol engine ([`crate::net::proto::engine`], run by the
//! chain actor) and carries out what the engine asks — requests, answers, announcements,
//! dials, closes — with one timer armed from the engine's deadline (in the actor). Reads
//! (blocks, bodies, cascade, TxPoWs, coin proofs) are served here, off the chain actor, from a
//! read-only store connection.
//!
//! Every decision — handshake, budgets, scores and bans (at [`BAN_SCORE`] an (IP, node id) is
//! banned for [`BAN_TIME`]), the mesh, sync, relay — is the engine's; the driver only adds
//! cheap limits before a TLS handshake (inbound connections at once, and a minute per address
//! group).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::net::message::{BlockData, CoinQuery, Hello, Message, RelayTxPow};
use crate::net::proto::engine::{
    self, CoinProofsResult, Engine, Fault, Input as EngineInput, Output as EngineOutput,
};
use crate::net::proto::mesh::{Dir, Mesh};
use crate::net::proto::Time;
use crate::net::transport::{self, Identity, NetError, Timing};
use crate::types::CoinRecord;

pub use crate::net::proto::chain::{Again, Submitted, SyncFault, SyncOutcome, SyncStart, TxRefusal};

/// What the network driver hands the chain actor, which runs the protocol engine.
#[derive(Debug)]
pub enum ChainRequest {
    /// An input for the protocol engine ([`crate::net::proto::engine`]).
    Proto(EngineInput),
    /// Look up proven coins from `full_mmr` peers (the engine pages and checks them).
    CoinProofs(CoinQuery, oneshot::Sender<CoinProofsResult>),
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
pub use crate::net::proto::score::misbehaviour_group as address_group;

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
/// How long announcements are gathered before one `Inv` goes out.
pub use crate::net::proto::engine::RELAY_GATHER;
/// Score at which a peer is banned (see [`crate::net::proto::score`]).
pub use crate::net::proto::score::BAN_SCORE;
/// How long a misbehaving (IP, node id) stays banned.
pub use crate::net::proto::score::BAN_TIME;

/// The driver's clock origin: its first reading in this process.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The driver's clock, read once per event and passed to the protocol as a [`Time`].
pub(crate) fn now() -> Time {
    Time::from_origin(origin().elapsed())
}

/// The runtime's instant of a moment of the driver's clock (to sleep until it).
pub(crate) fn instant_at(t: Time) -> tokio::time::Instant {
    tokio::time::Instant::from_std(origin() + t.since_origin())
}

/// A connection the driver holds.
struct ConnInfo {
    conn: quinn::Connection,
    /// The handshake's result, once the engine reports it.
    up: Option<(Hash, Box<Hello>, bool)>,
    /// The peer's request budget, and the share of its rate the engine allows its group.
    budget: Arc<Mutex<(RequestBudget, f64)>>,
    /// Set when the engine reports the handshake done: requests other than `Hello` wait for it.
    ready: tokio::sync::watch::Sender<bool>,
}

struct Shared {
    chain: mpsc::Sender<ChainRequest>,
    reads: Arc<dyn Reads>,
    /// Reads served at once ([`READS_AT_ONCE`]): a flood queues here, not on blocking threads.
    reads_gate: tokio::sync::Semaphore,
    /// Connections are wanted (the energy policy turns this off in the background: no
    /// dialing, inbound refused before their TLS handshake).
    online: tokio::sync::watch::Sender<bool>,
    /// Builds the client config for new connections (keep-alive and idle timeout).
    client_config: Box<dyn Fn(Timing) -> Result<quinn::ClientConfig, NetError> + Send + Sync>,
    /// The client config new connections use.
    dial_config: Mutex<quinn::ClientConfig>,
    conns: Mutex<HashMap<u64, ConnInfo>>,
    /// Inbound connections a minute of address groups the engine slowed (misbehaviour).
    group_rates: Mutex<HashMap<Vec<u8>, u32>>,
    /// Send halves of request streams waiting for the engine's answer, by (conn, stream).
    streams: Mutex<HashMap<(u64, u64), quinn::SendStream>>,
    next_conn: AtomicU64,
    next_stream: AtomicU64,
    stats: NetStats,
    /// The configured inbound connections a minute per address group.
    group_rate: u32,
    rt: tokio::runtime::Handle,
    endpoint: quinn::Endpoint,
}

/// Live counters of the network driver.
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

/// A handle on the running network driver (cheap to clone).
#[derive(Clone)]
pub struct NetHandle {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hand the engine an input (through the chain actor, which runs it).
async fn tell(s: &Shared, input: EngineInput) {
    let _ = s.chain.send(ChainRequest::Proto(input)).await;
}

/// Hand the engine an input from a context that cannot wait.
fn tell_later(s: &Arc<Shared>, input: EngineInput) {
    let s2 = s.clone();
    s.rt.spawn(async move { tell(&s2, input).await });
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

    /// The engine's count of bans (the chain actor, which runs it, passes it on).
    pub fn set_ban_count(&self, n: u64) {
        self.shared.stats.bans.store(n as usize, Ordering::SeqCst);
    }

    /// UDP bytes (received, sent) since start, over every connection (QUIC and TLS overhead
    /// included). Never decreases.
    pub fn bytes(&self) -> (u64, u64) {
        let s = &self.shared;
        let c = lock(&s.conns);
        let (mut i, mut o) =
            (s.stats.closed_in.load(Ordering::SeqCst), s.stats.closed_out.load(Ordering::SeqCst));
        for p in c.values() {
            let st = p.conn.stats();
            i += st.udp_rx.bytes;
            o += st.udp_tx.bytes;
        }
        let mut last = lock(&s.stats.reported);
        *last = (last.0.max(i), last.1.max(o));
        *last
    }

    /// Connected peers: (address, node id, is_client, full_mmr).
    pub fn peers(&self) -> Vec<(SocketAddr, Hash, bool, bool)> {
        lock(&self.shared.conns)
            .values()
            .filter_map(|c| {
                c.up.as_ref().map(|(id, h, _)| (c.conn.remote_address(), *id, h.is_client, h.full_mmr))
            })
            .collect()
    }

    /// Go offline (every connection closes; no dialing; inbound refused) or online again.
    /// The chain actor tells the engine too ([`EngineInput::Online`]).
    pub fn set_online(&self, on: bool) {
        let s = &self.shared;
        s.online.send_replace(on);
        if !on {
            for c in lock(&s.conns).values() {
                c.conn.close(0u32.into(), b"sleeping");
            }
        }
    }

    /// Whether connections are wanted.
    pub fn is_online(&self) -> bool {
        *self.shared.online.borrow()
    }

    /// Apply the energy policy's keep-alive and idle timeout to new connections (the chain
    /// actor gives the engine the rest of the policy, [`EngineInput::Policy`]).
    pub fn set_timing(&self, timing: Timing) {
        let s = &self.shared;
        match (s.client_config)(timing) {
            Ok(c) => *lock(&s.dial_config) = c,
            Err(e) => tracing::warn!("cannot apply timing: {e}"),
        }
    }

    /// Highest chain weight connected peers claimed in their `Hello`.
    pub fn best_claim(&self) -> u128 {
        self.claims().into_iter().map(|(_, w)| w).max().unwrap_or(0)
    }

    /// (tip, claimed weight) of each connected peer's `Hello`.
    pub fn claims(&self) -> Vec<(Hash, u128)> {
        lock(&self.shared.conns)
            .values()
            .filter_map(|c| c.up.as_ref().map(|(_, h, _)| (h.tip, h.tip_weight)))
            .collect()
    }

    /// Dial `addr` and keep the connection up (redialling with backoff) while the node runs.
    pub fn add_peer(&self, addr: SocketAddr) {
        tell_later(&self.shared, EngineInput::AddPeer(addr));
    }

    /// Ask `full_mmr` peers for coin proofs, every page, each checked against our chain (a
    /// peer serving a bad proof is banned and the next one is asked). Answers the block the
    /// proofs are against and the proven coins.
    pub async fn fetch_coin_proofs(
        &self,
        query: CoinQuery,
    ) -> Result<(Hash, Vec<(CoinRecord, MmrProof)>), NetError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || NetError::Protocol("node stopped".into());
        self.shared.chain.send(ChainRequest::CoinProofs(query, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(NetError::Protocol)
    }

    /// Carry out what the protocol engine asks (called by the chain actor, which runs it).
    pub fn carry_out(&self, o: EngineOutput) {
        let s = &self.shared;
        match o {
            EngineOutput::Dial { addr, dir } => {
                let s2 = s.clone();
                s.rt.spawn(async move {
                    let connected = dial(&s2, addr, dir).await;
                    tell(&s2, EngineInput::DialEnded { addr, connected }).await;
                });
            }
            EngineOutput::Probe { addr, peer } => {
                let s2 = s.clone();
                s.rt.spawn(async move {
                    let ok = probe(&s2, addr, peer).await;
                    tracing::debug!("dial-back of {addr}: {}", if ok { "verified" } else { "not verified" });
                    tell(&s2, EngineInput::Probed { addr, ok }).await;
                });
            }
            EngineOutput::Request { conn, req, msg, timeout } => {
                let c = lock(&s.conns).get(&conn).map(|c| c.conn.clone());
                let s2 = s.clone();
                s.rt.spawn(async move {
                    let answer = match c {
                        Some(c) => transport::request(&c, &msg, timeout).await.ok(),
                        None => None,
                    };
                    tell(&s2, EngineInput::Answer { req, answer }).await;
                });
            }
            EngineOutput::Reply { conn, stream, msg } => {
                let Some(mut send) = lock(&s.streams).remove(&(conn, stream)) else { return };
                let budget = lock(&s.conns).get(&conn).map(|c| c.budget.clone());
                if let Some(m) = msg {
                    s.rt.spawn(async move {
                        let frame = m.to_frame();
                        if let Some(b) = budget {
                            lock(&b).0.charge(frame.len());
                        }
                        let _ = send.write_all(&frame).await;
                        let _ = send.finish();
                    });
                }
            }
            EngineOutput::Throttle { conn, factor } => {
                if let Some(c) = lock(&s.conns).get(&conn) {
                    lock(&c.budget).1 = factor;
                }
            }
            EngineOutput::Announce { conn, msg } => {
                if let Some(c) = lock(&s.conns).get(&conn).map(|c| c.conn.clone()) {
                    s.rt.spawn(async move {
                        let _ = transport::announce(&c, &msg).await;
                    });
                }
            }
            EngineOutput::Close { conn, code, reason } => {
                let mut c = lock(&s.conns);
                if let Some(info) = c.get_mut(&conn) {
                    info.conn.close(code.into(), reason.as_bytes());
                    // Not a peer any more (a replaced connection is not listed twice).
                    info.up = None;
                }
                s.stats.peers.store(c.values().filter(|i| i.up.is_some()).count(), Ordering::SeqCst);
            }
            EngineOutput::Up { conn, peer, hello, outbound } => {
                let mut c = lock(&s.conns);
                if let Some(info) = c.get_mut(&conn) {
                    info.up = Some((peer, hello, outbound));
                    info.ready.send_replace(true);
                }
                let n = c.values().filter(|i| i.up.is_some()).count();
                s.stats.peers.store(n, Ordering::SeqCst);
            }
            EngineOutput::GroupRate { group, per_min } => {
                let mut rates = lock(&s.group_rates);
                if per_min >= s.group_rate {
                    rates.remove(&group);
                } else {
                    rates.insert(group, per_min);
                }
            }
            // Answered by the chain actor, which holds the caller's channel.
            EngineOutput::CoinProofs { .. } => {}
        }
    }
}

/// Whether a request is a read the driver serves itself.
pub fn is_read(m: &Message) -> bool {
    matches!(
        m,
        Message::GetBlocks(_)
            | Message::GetBodies(_)
            | Message::GetCascade
            | Message::GetTxPow(_)
            | Message::GetCoinProofs { .. }
    )
}

/// Read requests served at once (they share one store connection).
const READS_AT_ONCE: usize = 2;

/// Answer a read request on a blocking thread, off the chain actor (`None`: nothing to send,
/// or the node is shutting down).
async fn read(s: &Shared, msg: Message) -> Option<Message> {
    let _one_of_few = s.reads_gate.acquire().await.ok()?;
    let r = s.reads.clone();
    tokio::task::spawn_blocking(move || serve_read(r.as_ref(), msg)).await.ok()?
}

/// The answer to a read request, from `reads`.
pub fn serve_read(r: &dyn Reads, msg: Message) -> Option<Message> {
    match msg {
        Message::GetBlocks(ids) => Some(Message::Blocks(r.blocks(&ids))),
        Message::GetBodies(ids) => {
            let blocks = r.blocks(&ids);
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
        Message::GetCascade => r.cascade(),
        Message::GetTxPow(ids) => Some(Message::TxPow(r.txpows(&ids))),
        Message::GetCoinProofs { query, after } => r.coin_proofs(query, after),
        _ => None,
    }
}

/// What the node passes to the network driver about itself.
pub struct Local {
    /// Chain id of the network.
    pub chain_id: u8,
    /// The node keeps the full coin set (and serves `GetCoinProofs`).
    pub full_mmr: bool,
    /// Serves peers' read requests.
    pub reads: Arc<dyn Reads>,
}

/// Start the network: bind (listening if configured) and accept connections. Returns the
/// endpoint, a handle, and the protocol engine for the chain actor to run (it dials the
/// configured peers, keeps the outbound target from gossiped addresses, and relays).
pub fn start(
    rt: &tokio::runtime::Handle,
    cfg: NetConfig,
    identity: &Identity,
    local: Local,
    jobs: crate::net::proto::jobs::Config,
    chain: mpsc::Sender<ChainRequest>,
) -> Result<(quinn::Endpoint, NetHandle, Engine), NetError> {
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
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let engine = engine_for(&cfg, own, identity.node_id, &local, jobs, seed, now());
    let shared = Arc::new(Shared {
        chain,
        reads: local.reads,
        reads_gate: tokio::sync::Semaphore::new(READS_AT_ONCE),
        online: tokio::sync::watch::channel(cfg.online).0,
        client_config: {
            let id = identity.clone();
            Box::new(move |t| transport::client_config(&id, t))
        },
        dial_config: Mutex::new(transport::client_config(identity, cfg.timing)?),
        conns: Mutex::new(HashMap::new()),
        group_rates: Mutex::new(HashMap::new()),
        streams: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(0),
        next_stream: AtomicU64::new(0),
        stats: NetStats::default(),
        group_rate: cfg.group_rate_per_min,
        rt: rt.clone(),
        endpoint: endpoint.clone(),
    });
    if cfg.listen.is_some() {
        rt.spawn(accept_loop(shared.clone(), cfg.max_inbound, cfg.group_rate_per_min));
    }
    Ok((endpoint, NetHandle { shared }, engine))
}

/// The protocol engine of a node configured by `cfg`, listening at `own` (a client: `None`),
/// its mesh's randomness from `seed`, at the moment `now`.
pub fn engine_for(
    cfg: &NetConfig,
    own: Option<SocketAddr>,
    node_id: Hash,
    local: &Local,
    jobs: crate::net::proto::jobs::Config,
    seed: [u8; 32],
    now: Time,
) -> Engine {
    let target = cfg.outbound_target.unwrap_or(if cfg.listen.is_some() { 8 } else { 2 });
    // A client (a phone) keeps a smaller book.
    let limits = if cfg.listen.is_some() { Limits::SERVER } else { Limits::PHONE };
    let mut mesh = Mesh::new(seed, limits, target, cfg.discover_interval, own);
    mesh.restore(now, &cfg.reached, &cfg.anchors);
    Engine::new(
        jobs,
        engine::Local {
            node_id,
            chain_id: local.chain_id,
            listen: own,
            full_mmr: local.full_mmr,
            want_txs: cfg.want_txs,
            group_rate_per_min: cfg.group_rate_per_min,
            backoff: cfg.backoff,
            online: cfg.online,
        },
        mesh,
        &cfg.peers,
        cfg.initial_wait,
    )
}

/// Accept connections. Before any TLS work: at most `max_inbound` at once, none while
/// offline, `group_rate` a minute per address group (fewer for a group the engine slowed for
/// misbehaviour, [`EngineOutput::GroupRate`]).
async fn accept_loop(s: Arc<Shared>, max_inbound: usize, group_rate: u32) {
    let inbound = Arc::new(AtomicUsize::new(0));
    // Accept-rate window per address group: (window start, count).
    let mut groups: HashMap<Vec<u8>, (Time, u32)> = HashMap::new();
    while let Some(inc) = s.endpoint.accept().await {
        let now = now();
        let ip = inc.remote_address().ip();
        let group = address_group(ip);
        let rate = lock(&s.group_rates).get(&group).copied().unwrap_or(group_rate);
        let g = groups.entry(group).or_insert((now, 0));
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
                serve(&s, conn, Dir::Inbound).await;
            }
            inbound.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// How long a dial or a dial-back may take to connect (a dead address frees its slot).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

fn dial_config(s: &Shared) -> quinn::ClientConfig {
    lock(&s.dial_config).clone()
}

/// Dial `addr` and run the connection until it closes; answers whether it connected.
async fn dial(s: &Arc<Shared>, addr: SocketAddr, dir: Dir) -> bool {
    if !*s.online.borrow() {
        return false;
    }
    let Ok(connecting) = s.endpoint.connect_with(dial_config(s), addr, "minima") else { return false };
    let Ok(Ok(conn)) = tokio::time::timeout(DIAL_TIMEOUT, connecting).await else { return false };
    if !*s.online.borrow() {
        // Gone offline while dialling.
        conn.close(0u32.into(), b"sleeping");
        return true;
    }
    serve(s, conn, dir).await;
    true
}

/// Dial `addr` back and check the key behind it is `peer`'s (then close at once: the TLS
/// handshake alone proves it).
async fn probe(s: &Shared, addr: SocketAddr, peer: Hash) -> bool {
    let Ok(connecting) = s.endpoint.connect_with(dial_config(s), addr, "minima") else { return false };
    match tokio::time::timeout(DIAL_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => {
            let ok = transport::peer_id(&conn).is_ok_and(|id| id == peer);
            conn.close(0u32.into(), b"verified");
            ok
        }
        _ => false,
    }
}

/// Run one connection: report it to the engine, turn each request stream into a frame for
/// it, and report the close.
async fn serve(s: &Arc<Shared>, conn: quinn::Connection, dir: Dir) {
    let Ok(peer) = transport::peer_id(&conn) else {
        conn.close(2u32.into(), b"no key");
        return;
    };
    let id = s.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
    let budget = Arc::new(Mutex::new((RequestBudget::new(now()), 1.0)));
    let ready = tokio::sync::watch::channel(false).0;
    let ready_rx = ready.subscribe();
    lock(&s.conns).insert(id, ConnInfo { conn: conn.clone(), up: None, budget: budget.clone(), ready });
    tell(s, EngineInput::Connected { conn: id, peer, addr: conn.remote_address(), dir }).await;
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(x) => x,
            Err(_) => break,
        };
        let (s2, budget, mut ready) = (s.clone(), budget.clone(), ready_rx.clone());
        tokio::spawn(async move {
            let msg = match transport::read_request_timed(&mut recv).await {
                Ok(msg) => msg,
                Err(e) => {
                    let fault = match e {
                        NetError::Frame(e) => Fault::Bad(e.to_string()),
                        e @ NetError::Unsolicited(_) => Fault::Unsolicited(e.to_string()),
                        NetError::Slow => Fault::Slow,
                        _ => return,
                    };
                    tell(&s2, EngineInput::FrameFault { conn: id, fault }).await;
                    return;
                }
            };
            // Each peer's requests and announcements, and the bytes of our answers, are rate
            // limited (slower for a group that misbehaved).
            let admit = {
                let mut b = lock(&budget);
                let factor = b.1;
                b.0.admit(now(), factor)
            };
            match admit {
                Admit::Now => {}
                Admit::After(d) => tokio::time::sleep(d).await,
                Admit::Drop => {
                    tracing::debug!("peer {} over its request budget: dropped", &peer.to_hex()[..16]);
                    return;
                }
            }
            if !matches!(msg, Message::Hello(_)) {
                // A peer may ask as soon as its side of the handshake is done: wait for ours
                // (the connection's close, or the handshake's limit, ends the wait).
                let up = tokio::time::timeout(engine::HELLO_TIMEOUT, ready.wait_for(|r| *r)).await;
                if !matches!(up, Ok(Ok(_))) {
                    return;
                }
            }
            if is_read(&msg) {
                // Served here, off the chain actor.
                let Some(answer) = read(&s2, msg).await else { return };
                let frame = answer.to_frame();
                lock(&budget).0.charge(frame.len());
                let _ = send.write_all(&frame).await;
                let _ = send.finish();
                return;
            }
            let stream = s2.next_stream.fetch_add(1, Ordering::SeqCst) + 1;
            lock(&s2.streams).insert((id, stream), send);
            if !lock(&s2.conns).contains_key(&id) {
                // Closed meanwhile (its streams were already dropped): no answer will come.
                lock(&s2.streams).remove(&(id, stream));
                return;
            }
            tell(&s2, EngineInput::Frame { conn: id, stream, msg }).await;
        });
    }
    {
        let mut c = lock(&s.conns);
        c.remove(&id);
        s.stats.peers.store(c.values().filter(|i| i.up.is_some()).count(), Ordering::SeqCst);
        // Under the lock, so `bytes()` never sees the connection in neither sum.
        let st = conn.stats();
        s.stats.closed_in.fetch_add(st.udp_rx.bytes, Ordering::SeqCst);
        s.stats.closed_out.fetch_add(st.udp_tx.bytes, Ordering::SeqCst);
    }
    lock(&s.streams).retain(|(c, _), _| *c != id);
    tell(s, EngineInput::Closed { conn: id }).await;
}
