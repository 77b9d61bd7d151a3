//! The peer protocol over QUIC: handshake, block relay by inventory, catch-up from the fork
//! point (headers, then blocks), and serving those requests.
//!
//! The network task never touches chain state: it asks the chain actor through
//! [`ChainRequest`]s, and every block it receives goes through the same validation path as the
//! local miner's. Misbehaviour (a bad frame, an invalid block, a forged cascade) bans the
//! peer's (IP, node id) for [`BAN_TIME`]. Not yet here (peering issue): transaction relay, the
//! persisted peer table, rate limits per address group, `GetCoinProofs`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::crypto::Hash;
use crate::net::message::{BlockData, Hello, Message, MAX_HEADERS, PROTOCOL_VERSION};
use crate::net::transport::{self, Identity, NetError, Timing};
use crate::types::TxHeader;

/// What a received block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Stored (or already known).
    Accepted,
    /// Its parent is unknown: catch up.
    UnknownParent,
    /// Valid-looking but useless (a fork below our tree root): ignored, not punished.
    Stale,
    /// Refused.
    Invalid(String),
}

/// Questions the network task asks the chain actor.
#[derive(Debug)]
pub enum ChainRequest {
    /// (genesis, tip, weight) for a `Hello`.
    Hello(oneshot::Sender<(Hash, Hash, u128)>),
    /// Is this block known?
    Has(Hash, oneshot::Sender<bool>),
    /// Tree blocks by id (with witnesses and listed TxPoWs), up to a byte budget.
    Blocks(Vec<Hash>, oneshot::Sender<Vec<BlockData>>),
    /// Best-chain headers after the first locator id we share.
    Headers(Vec<Hash>, u32, oneshot::Sender<Vec<TxHeader>>),
    /// Our locator: best-chain ids from the tip back, thinning out.
    Locator(oneshot::Sender<Vec<Hash>>),
    /// A block from a peer.
    Submit(Box<BlockData>, oneshot::Sender<Submitted>),
    /// Pending transaction TxPoWs by id, with their proofs, to serve `GetTxPow`.
    TxPows(Vec<Hash>, oneshot::Sender<Vec<crate::net::message::RelayTxPow>>),
    /// A transaction TxPoW from a peer (with its input proofs); `Err` says why it was refused.
    SubmitTx(Box<crate::net::message::RelayTxPow>, oneshot::Sender<Result<(), String>>),
    /// Remember a peer address we completed a handshake with.
    RecordPeer(SocketAddr),
    /// Our cascade, tree root block and its peaks, to serve `GetCascade`.
    Cascade(oneshot::Sender<Option<Message>>),
    /// A cascade from a peer: verify it end to end and, if its chain is heavier than ours,
    /// restart the chain from it (the answer says whether it was taken, or why not).
    Resync(Box<Message>, oneshot::Sender<Result<bool, String>>),
}

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// UDP address to listen on (`None`: a client that accepts no inbound connections).
    pub listen: Option<SocketAddr>,
    /// Peers to dial.
    pub peers: Vec<SocketAddr>,
    /// Keep-alive and idle timeout.
    pub timing: Timing,
    /// Reconnect backoff, first step (doubles up to 32×).
    pub backoff: Duration,
    /// Most inbound connections at once (servers 512).
    pub max_inbound: usize,
    /// New inbound connections accepted per address group (/24 IPv4, /48 IPv6) per minute.
    /// Groups are only rate-limited, never banned wholesale (carrier NAT pools).
    pub group_rate_per_min: u32,
}

/// The address group of an IP: its /24 (IPv4) or /48 (IPv6).
pub fn address_group(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets()[..3].to_vec(),
        IpAddr::V6(v) => v.octets()[..6].to_vec(),
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: None,
            peers: vec![],
            timing: Timing::default(),
            backoff: Duration::from_millis(500),
            max_inbound: 512,
            group_rate_per_min: 60,
        }
    }
}

/// How long a misbehaving (IP, node id) stays banned.
pub const BAN_TIME: Duration = Duration::from_secs(24 * 3600);

/// An id to announce to peers: a new best tip or a newly accepted transaction.
#[derive(Debug, Clone)]
pub struct TipAnnounce(pub Hash);

struct Shared {
    chain: mpsc::Sender<ChainRequest>,
    chain_id: u8,
    listen: Option<String>,
    peers: Mutex<HashMap<Hash, quinn::Connection>>,
    count: Arc<AtomicUsize>,
    node_id: Hash,
    bans: Mutex<HashMap<(IpAddr, Hash), std::time::Instant>>,
    ban_count: Arc<AtomicUsize>,
}

/// Live counters of the network task.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Connected peers (after the handshake).
    pub peers: Arc<AtomicUsize>,
    /// Bans issued since start.
    pub bans: Arc<AtomicUsize>,
}

fn is_banned(s: &Shared, ip: IpAddr, peer: &Hash) -> bool {
    let mut b = s.bans.lock().unwrap_or_else(|e| e.into_inner());
    match b.get(&(ip, *peer)) {
        Some(until) if *until > std::time::Instant::now() => true,
        Some(_) => {
            b.remove(&(ip, *peer));
            false
        }
        None => false,
    }
}

/// Ban a peer's (IP, node id) and cut it off.
fn ban(s: &Shared, conn: &quinn::Connection, peer: &Hash, why: &str) {
    tracing::warn!("banning peer {} at {}: {why}", &peer.to_hex()[..16], conn.remote_address());
    s.bans
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((conn.remote_address().ip(), *peer), std::time::Instant::now() + BAN_TIME);
    s.ban_count.fetch_add(1, Ordering::SeqCst);
    conn.close(5u32.into(), why.as_bytes());
}

async fn ask<T>(s: &Shared, f: impl FnOnce(oneshot::Sender<T>) -> ChainRequest) -> Result<T, NetError> {
    let (tx, rx) = oneshot::channel();
    s.chain.send(f(tx)).await.map_err(|_| NetError::Protocol("node stopped".into()))?;
    rx.await.map_err(|_| NetError::Protocol("node stopped".into()))
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
        want_txs: true,
        serves_blocks: true,
        full_mmr: false,
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

/// Start the network: listen (if configured), dial the configured peers with backoff, relay
/// new tips. Returns the endpoint (for its address) and the live peer count.
pub fn start(
    rt: &tokio::runtime::Handle,
    cfg: NetConfig,
    identity: &Identity,
    chain_id: u8,
    chain: mpsc::Sender<ChainRequest>,
    tips: broadcast::Receiver<TipAnnounce>,
) -> Result<(quinn::Endpoint, NetStats), NetError> {
    let _g = rt.enter();
    let bind = cfg.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let endpoint = match cfg.listen {
        Some(_) => quinn::Endpoint::server(transport::server_config(identity, cfg.timing)?, bind),
        None => quinn::Endpoint::client(bind),
    }
    .map_err(|e| NetError::Config(format!("bind {bind}: {e}")))?;
    let mut endpoint = endpoint;
    endpoint.set_default_client_config(transport::client_config(identity, cfg.timing)?);
    let stats = NetStats::default();
    let count = stats.peers.clone();
    let listen = endpoint.local_addr().ok().filter(|_| cfg.listen.is_some()).map(|a| a.to_string());
    let shared = Arc::new(Shared {
        chain,
        chain_id,
        listen,
        peers: Mutex::new(HashMap::new()),
        count: count.clone(),
        node_id: identity.node_id,
        bans: Mutex::new(HashMap::new()),
        ban_count: stats.bans.clone(),
    });
    if cfg.listen.is_some() {
        let (max_inbound, group_rate) = (cfg.max_inbound, cfg.group_rate_per_min);
        let ep = endpoint.clone();
        let s = shared.clone();
        rt.spawn(async move {
            let inbound = Arc::new(AtomicUsize::new(0));
            // Accept-rate window per address group: (window start, count).
            let mut groups: HashMap<Vec<u8>, (std::time::Instant, u32)> = HashMap::new();
            while let Some(inc) = ep.accept().await {
                let now = std::time::Instant::now();
                let g = groups.entry(address_group(inc.remote_address().ip())).or_insert((now, 0));
                if now.duration_since(g.0) >= Duration::from_secs(60) {
                    *g = (now, 0);
                }
                g.1 += 1;
                if g.1 > group_rate || inbound.load(Ordering::SeqCst) >= max_inbound {
                    inc.refuse();
                    continue;
                }
                if groups.len() > 4096 {
                    groups.retain(|_, v| now.duration_since(v.0) < Duration::from_secs(60));
                }
                let s = s.clone();
                let inbound = inbound.clone();
                inbound.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(conn) = inc.await {
                        let _ = serve(s, conn, false).await;
                    }
                    inbound.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    for addr in cfg.peers {
        let ep = endpoint.clone();
        let s = shared.clone();
        let backoff = cfg.backoff;
        rt.spawn(async move {
            let mut wait = backoff;
            loop {
                match ep.connect(addr, "minima") {
                    Ok(connecting) => {
                        if let Ok(conn) = connecting.await {
                            wait = backoff;
                            let r = serve(s.clone(), conn, true).await;
                            tracing::debug!("peer {addr} closed: {r:?}");
                        }
                    }
                    Err(e) => tracing::warn!("dial {addr}: {e}"),
                }
                if s.chain.is_closed() {
                    break;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(backoff * 32);
            }
        });
    }
    let s = shared.clone();
    rt.spawn(relay(s, tips));
    Ok((endpoint, stats))
}

async fn relay(s: Arc<Shared>, mut tips: broadcast::Receiver<TipAnnounce>) {
    loop {
        let id = match tips.recv().await {
            Ok(TipAnnounce(id)) => id,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let conns: Vec<quinn::Connection> =
            s.peers.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for c in conns {
            tokio::spawn(async move {
                let _ = transport::announce(&c, &Message::Inv(vec![id])).await;
            });
        }
    }
}

/// Run one connection: handshake, then answer its requests until it closes.
async fn serve(s: Arc<Shared>, conn: quinn::Connection, dialer: bool) -> Result<(), NetError> {
    let peer = transport::peer_id(&conn)?;
    if peer == s.node_id {
        conn.close(1u32.into(), b"self");
        return Err(NetError::Protocol("connected to self".into()));
    }
    if is_banned(&s, conn.remote_address().ip(), &peer) {
        conn.close(5u32.into(), b"banned");
        return Err(NetError::Protocol("banned peer".into()));
    }
    let timeout = Duration::from_secs(30);
    if dialer {
        let ours = our_hello(&s).await?;
        match transport::request(&conn, &Message::Hello(ours.clone()), timeout).await? {
            Message::Hello(h) => {
                check_hello(&s, &ours, &h)?;
                register(&s, peer, &conn);
                let _ = s.chain.send(ChainRequest::RecordPeer(conn.remote_address())).await;
                if h.tip_weight > ours.tip_weight {
                    let (s2, c2) = (s.clone(), conn.clone());
                    tokio::spawn(async move { catch_up(&s2, &c2, peer).await });
                }
            }
            _ => return Err(NetError::Protocol("expected Hello".into())),
        }
    }
    let result = loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(x) => x,
            Err(e) => break Err(NetError::Stream(e.to_string())),
        };
        let s = s.clone();
        let c = conn.clone();
        tokio::spawn(async move {
            let msg = match transport::read_msg(&mut recv).await {
                Ok(m) => m,
                Err(NetError::Frame(e)) => {
                    // Oversized, unknown type or undecodable: misbehaviour.
                    ban(&s, &c, &peer, &format!("bad frame: {e}"));
                    return;
                }
                Err(_) => return,
            };
            if let Some(answer) = handle(&s, &c, peer, msg).await {
                let _ = transport::write_msg(&mut send, &answer).await;
                let _ = send.finish();
            }
        });
    };
    unregister(&s, &peer);
    result
}

fn register(s: &Shared, peer: Hash, conn: &quinn::Connection) {
    let mut p = s.peers.lock().unwrap_or_else(|e| e.into_inner());
    p.insert(peer, conn.clone());
    s.count.store(p.len(), Ordering::SeqCst);
}

fn unregister(s: &Shared, peer: &Hash) {
    let mut p = s.peers.lock().unwrap_or_else(|e| e.into_inner());
    p.remove(peer);
    s.count.store(p.len(), Ordering::SeqCst);
}

async fn handle(s: &Arc<Shared>, conn: &quinn::Connection, peer: Hash, msg: Message) -> Option<Message> {
    match msg {
        Message::Hello(h) => {
            let ours = our_hello(s).await.ok()?;
            if check_hello(s, &ours, &h).is_err() {
                conn.close(3u32.into(), b"wrong network");
                return None;
            }
            register(s, peer, conn);
            if h.tip_weight > ours.tip_weight {
                let (s2, c2) = (s.clone(), conn.clone());
                tokio::spawn(async move { catch_up(&s2, &c2, peer).await });
            }
            Some(Message::Hello(ours))
        }
        Message::Inv(ids) => {
            for id in ids.into_iter().take(64) {
                if ask(s, |r| ChainRequest::Has(id, r)).await.unwrap_or(true) {
                    continue;
                }
                let got =
                    transport::request(conn, &Message::GetBlocks(vec![id]), Duration::from_secs(30)).await;
                if matches!(&got, Ok(Message::Blocks(bs)) if bs.is_empty()) {
                    // Not a block the peer holds: a pending transaction.
                    if let Ok(Message::TxPow(ts)) =
                        transport::request(conn, &Message::GetTxPow(vec![id]), Duration::from_secs(30)).await
                    {
                        for t in ts.into_iter().take(1) {
                            if let Ok(Err(e)) = ask(s, |r| ChainRequest::SubmitTx(Box::new(t), r)).await {
                                tracing::debug!("relayed transaction refused: {e}");
                            }
                        }
                    }
                    continue;
                }
                if let Ok(Message::Blocks(bs)) = got {
                    for b in bs {
                        match ask(s, |r| ChainRequest::Submit(Box::new(b), r)).await {
                            Ok(Submitted::UnknownParent) => catch_up(s, conn, peer).await,
                            Ok(Submitted::Invalid(e)) => {
                                ban(s, conn, &peer, &format!("invalid block: {e}"));
                                return None;
                            }
                            _ => {}
                        }
                    }
                }
            }
            None
        }
        Message::GetBlocks(ids) => {
            Some(Message::Blocks(ask(s, |r| ChainRequest::Blocks(ids, r)).await.ok()?))
        }
        Message::GetHeaders { locator, max } => {
            Some(Message::Headers(ask(s, |r| ChainRequest::Headers(locator, max, r)).await.ok()?))
        }
        Message::GetCascade => ask(s, ChainRequest::Cascade).await.ok().flatten(),
        Message::GetTxPow(ids) => Some(Message::TxPow(ask(s, |r| ChainRequest::TxPows(ids, r)).await.ok()?)),
        Message::Ping(n) => Some(Message::Pong(n)),
        _ => None,
    }
}

/// Catch up from the fork point: headers after our locator, then the blocks we lack, in order.
async fn catch_up(s: &Arc<Shared>, conn: &quinn::Connection, peer: Hash) {
    for _round in 0..1_000 {
        let Ok(locator) = ask(s, ChainRequest::Locator).await else { return };
        let req = Message::GetHeaders { locator, max: MAX_HEADERS as u32 };
        let headers = match transport::request(conn, &req, Duration::from_secs(60)).await {
            Ok(Message::Headers(h)) => h,
            _ => return,
        };
        let full = headers.len() == MAX_HEADERS;
        // Headers that do not connect to anything we hold: we are behind the peer's tree root
        // (a new node, or one that slept longer than the tree). Sync from its cascade.
        if let Some(first) = headers.first() {
            let parent = first.parents.0[0];
            if first.block_number > 0 && !ask(s, |r| ChainRequest::Has(parent, r)).await.unwrap_or(true) {
                match transport::request(conn, &Message::GetCascade, Duration::from_secs(60)).await {
                    Ok(m @ Message::Cascade { .. }) => {
                        match ask(s, |r| ChainRequest::Resync(Box::new(m), r)).await {
                            Ok(Ok(true)) => continue,
                            Ok(Ok(false)) => return,
                            Ok(Err(e)) => {
                                ban(s, conn, &peer, &format!("bad cascade: {e}"));
                                return;
                            }
                            Err(_) => return,
                        }
                    }
                    _ => return,
                }
            }
        }
        let mut want = vec![];
        for h in &headers {
            let id = h.id();
            if !ask(s, |r| ChainRequest::Has(id, r)).await.unwrap_or(true) {
                want.push(id);
            }
        }
        if want.is_empty() {
            return;
        }
        for chunk in want.chunks(50) {
            let blocks =
                match transport::request(conn, &Message::GetBlocks(chunk.to_vec()), Duration::from_secs(60))
                    .await
                {
                    Ok(Message::Blocks(b)) => b,
                    _ => return,
                };
            for b in blocks {
                match ask(s, |r| ChainRequest::Submit(Box::new(b), r)).await {
                    Ok(Submitted::Accepted) => {}
                    Ok(Submitted::Invalid(e)) => {
                        ban(s, conn, &peer, &format!("invalid block: {e}"));
                        return;
                    }
                    Ok(other) => {
                        tracing::debug!("catch-up block not connected: {other:?}");
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
        if !full {
            return;
        }
    }
}
