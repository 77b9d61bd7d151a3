//! The simulated world: nodes, the links between them, the agenda, and what is measured.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use sha3::{Digest, Sha3_256};

use super::lab::Script;
use super::queue::Agenda;
use crate::crypto::{sha3, Hash};
use crate::net::message::Message;
use crate::net::peer::NetConfig;
use crate::net::proto::engine::{Input, Output};
use crate::net::proto::mesh::Dir;
use crate::net::proto::requests::ReqId;
use crate::node::{Clock, Event, NodeError, SimNode, SimSetup};
use crate::params::Params;

/// What went wrong running a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node failed (a storage error: the production node would stop).
    #[error("node {0}: {1}")]
    Node(usize, NodeError),
    /// The configuration cannot run.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The event log could not be written.
    #[error("event log: {0}")]
    Log(#[from] std::io::Error),
}

/// A partition: a `fraction` of the nodes (a seeded choice) cut from the rest between two
/// moments, in hours from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partition {
    /// When it starts.
    pub from_h: f64,
    /// When it heals.
    pub until_h: f64,
    /// Share of nodes on the small side.
    pub fraction: f64,
}

/// A simulation's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Nodes in all.
    pub nodes: usize,
    /// Share of them that are phones (dial-only, asleep but for a sync session on a schedule).
    pub phones: f64,
    /// Simulated hours of traffic (then a quiet period in which every phone syncs once more).
    pub hours: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Payments made per simulated hour. Node 0 and an even spread of the others, 64 at most,
    /// hold wallets; the payer is drawn among those awake with money, the payee among the
    /// rest. The genesis coin, claimed by node 0, is where the money starts.
    pub payments_per_hour: f64,
    /// One-way latency of a link, before jitter (ms).
    pub latency_ms: u64,
    /// Extra one-way delay drawn uniformly from 0..=jitter for each message (reorders them).
    pub jitter_ms: u64,
    /// Chance that a packet is lost (each loss delays the message by a QUIC probe timeout;
    /// streams are reliable, so nothing is dropped on a live connection).
    pub loss: f64,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// Desktop nodes every node is configured with (as a network's seeds).
    pub seeds: usize,
    /// Whether every node keeps the seeds as configured peers (redialled for ever); if not,
    /// it only remembers them (the address book's tried table, as after a restart) and its
    /// peers are whatever its mesh finds.
    pub fixed_seeds: bool,
    /// Hostile nodes added to the honest ones: listening desktops that run the node but
    /// never relay a block, serve no read, and answer `GetPeers` with hostile addresses only
    /// (an eclipse attempt); each keeps 16 outbound connections.
    pub hostile: usize,
    /// Restarts per desktop per simulated hour (but the seeds and the hostile): each stops
    /// at a random moment, stays down [`Config::churn_down_s`], then starts again from its
    /// store (a new process: the engine's state is gone, the chain, mempool and wallet are
    /// what it stored).
    pub churn_per_hour: f64,
    /// How long a churning desktop stays down (s, 1..=300: it is back well before the run's
    /// report).
    pub churn_down_s: u64,
    /// A phone wakes this often (s)…
    pub phone_wake_every_s: u64,
    /// …for this long (s).
    pub phone_awake_s: u64,
    /// Write the event log here.
    pub log: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 100,
            phones: 0.8,
            hours: 24.0,
            seed: 0,
            payments_per_hour: 10.0,
            latency_ms: 50,
            jitter_ms: 40,
            loss: 0.0,
            partitions: vec![],
            seeds: 3,
            fixed_seeds: true,
            hostile: 0,
            churn_per_hour: 0.0,
            churn_down_s: 120,
            phone_wake_every_s: 900,
            phone_awake_s: 60,
            log: None,
        }
    }
}

/// Percentiles in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// 50 %.
    pub p50: u64,
    /// 90 %.
    pub p90: u64,
    /// 99 %.
    pub p99: u64,
}

/// Smallest, mean and largest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Range {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Largest.
    pub max: f64,
}

/// CPU time per operation a node counts, from `minima bench` on the project's machine
/// (docs/performance.md): a block taken during a catch-up (1.16–1.45 CPU-s for 576 empty main
/// blocks, `sync_once` included) and a transaction's full check (975–1,043 signed 1-in
/// TxPoWs a second: SPHINCS+, script, MMR proof).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostModel {
    /// Per block accepted (ms).
    pub block_ms: f64,
    /// Per transaction accepted (ms).
    pub tx_ms: f64,
}

/// The cost model `minima sim` uses.
pub const COST_MODEL: CostModel = CostModel { block_ms: 2.3, tx_ms: 1.0 };

/// What a simulation measured (one JSON line from `minima sim`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Honest nodes.
    pub nodes: usize,
    /// Hostile nodes ([`Config::hostile`]).
    pub hostile: usize,
    /// Phones among them.
    pub phones: usize,
    /// Simulated hours of traffic.
    pub hours: f64,
    /// Blocks found (during traffic and the 5 minutes after it, which confirm the last
    /// payments).
    pub blocks: u64,
    /// Share of found blocks not on the final best chain.
    pub stale_rate: f64,
    /// From a block's creation to its arrival at 50/90/99 % of the nodes awake then: the
    /// median over blocks of each (blocks that never reached that share left out).
    pub block_propagation_ms: Percentiles,
    /// Blocks that reached 99 % of the nodes awake when they were found.
    pub blocks_reaching_p99: u64,
    /// Payments made.
    pub payments: u64,
    /// From a payment's submission at its payer to its payee's wallet showing it (pending or
    /// confirmed).
    pub payment_seen_ms: Percentiles,
    /// From a payment's submission to its payee's wallet showing it in a block.
    pub payment_confirmed_ms: Percentiles,
    /// Payments whose payee's wallet shows them in a block at the end, each once.
    pub payments_credited: u64,
    /// Transactions a node refused (with only honest nodes, races: the announcement of a
    /// transaction overtook the block its proofs name, or a conflict).
    pub tx_refusals: u64,
    /// Encoded frame bytes a phone sent and received per simulated day (QUIC and TLS not
    /// modelled), mean over phones.
    pub phone_bytes_per_day: u64,
    /// A phone's CPU seconds per simulated day: the blocks and transactions it accepted
    /// ([`Event::TxPowAccepted`]) × [`Report::cost_model`], mean over phones.
    pub phone_cpu_s_per_day: f64,
    /// The per-operation costs used.
    pub cost_model: CostModel,
    /// Peers each node holds at the end.
    pub peers: Range,
    /// After traffic stopped and every phone synced once more, every node holds the same tip
    /// and it is the heaviest any node has seen.
    pub converged: bool,
    /// Nodes whose tip is not the heaviest at the end.
    pub behind: usize,
    /// Bans issued by honest nodes (of anyone: with no hostile node, of honest peers).
    pub bans: u64,
    /// Desktops restarted ([`Config::churn_per_hour`]).
    pub restarts: u64,
    /// Events processed.
    pub events: u64,
    /// SHA3-256 of the event log.
    pub log_sha3: String,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Wall-clock seconds of the run, measured by the caller (`minima sim`): the simulator
    /// reads no clock but its own (0 from [`run`]).
    pub wall_s: f64,
}

/// How long a dial to an unreachable address takes to fail (the driver's `DIAL_TIMEOUT`).
const DIAL_TIMEOUT_MS: u64 = 10_000;
/// After traffic (payments, phones' sleep, partitions) stops: every phone awake for good, and
/// blocks still found for `CONFIRM_MS` (the last payments are confirmed)…
const CONFIRM_MS: u64 = 5 * 60_000;
/// …then none for `QUIET_MS`, and the check.
const QUIET_MS: u64 = 5 * 60_000;
/// Mean time between blocks (main's).
const BLOCK_MS: f64 = 50_000.0;

/// Parameters of the simulated network: main's timing and tree, devnet's minimum work, a
/// genesis at `start_ms` whose coin is `RETURN TRUE`'s.
pub fn params(start_ms: u64) -> Params {
    let main = Params::main();
    let mut p = Params::devnet();
    p.name = "sim";
    p.chain_id = 3;
    p.block_time_ms = main.block_time_ms;
    p.tree_depth = main.tree_depth;
    p.cascade_step = main.cascade_step;
    p.cascade_per_level = main.cascade_per_level;
    p.diff_window = main.diff_window;
    p.diff_median = main.diff_median;
    p.mtp_window = main.mtp_window;
    p.proof_window = main.proof_window;
    p.pulse_interval_ms = main.pulse_interval_ms;
    p.continuous_mining = false;
    p.genesis.time_ms = start_ms;
    p.genesis.prng = *b"minima/sim/genesis/v1...........";
    p
}

/// The simulated clock's start: 2027-01-01.
const START_MS: u64 = 1_798_761_600_000;

#[derive(Debug)]
enum Ev {
    /// An input reaches a node.
    To(usize, Input),
    /// A dial's handshake completes, if the peer is still reachable (`as_id`: the identity a
    /// scripted peer presents, instead of its own).
    Connect { from: usize, to: usize, addr: SocketAddr, dir: Dir, as_id: Option<Hash> },
    /// A read request reaches its server.
    Read { server: usize, client: usize, req: ReqId, msg: Message, deadline: u64 },
    /// A node's timer.
    Timer(usize),
    /// The next block is found.
    Find,
    /// A phone wakes (`stay`: for good, the end of the run).
    Wake(usize, bool),
    /// A phone sleeps.
    Sleep(usize),
    /// Partition `k` starts.
    Cut(usize),
    /// Partition `k` heals.
    Heal(usize),
    /// The next payment is made.
    Pay,
    /// A desktop stops (its process ends).
    Down(usize),
    /// A stopped desktop starts again from its store.
    Up(usize),
}

struct Member {
    node: SimNode,
    /// How it was set up (a restart sets it up again on the same store).
    setup: SimSetup,
    /// Its wallet's seed and key 0, if it holds one.
    wallet: Option<(crate::wallet::Seed, Arc<crate::crypto::Keypair>)>,
    addr: SocketAddr,
    phone: bool,
    hostile: bool,
    /// Accepts connections.
    listens: bool,
    awake: bool,
    /// Stopped (churn): until it starts again, nothing reaches it.
    down: bool,
    /// Bans its earlier processes issued.
    bans_before: u64,
    timer: Option<u64>,
    bytes: u64,
    /// Its events, kept for a [`super::Lab`] to read.
    events: Vec<Event>,
    /// The peers it banned (on a connection still open) and why.
    bans: Vec<(Option<usize>, String)>,
    /// Blocks and transactions accepted.
    blocks_taken: u64,
    txs_taken: u64,
}

struct Found {
    id: Hash,
    at: u64,
    awake: Vec<bool>,
    reached: Vec<bool>,
    arrivals: Vec<u64>,
}

struct Payment {
    txid: Hash,
    payee: usize,
    at: u64,
    seen: Option<u64>,
    confirmed: Option<u64>,
}

/// A scripted peer's place in the world: index `SCRIPTS + k` is `scripts[k]`.
struct Scripted {
    script: Box<dyn Script>,
    addr: SocketAddr,
    id: Hash,
}

/// Index of the first scripted peer (nodes are numbered from 0).
const SCRIPTS: usize = usize::MAX / 2;

pub(super) struct World {
    cfg: Config,
    params: Params,
    /// Numbering of this world's in-memory databases.
    run: u64,
    /// The clock's start (the log counts from it).
    start: u64,
    scripts: Vec<Scripted>,
    /// Keep each node's events (a lab's).
    pub(super) keep_events: bool,
    clock: Arc<AtomicU64>,
    /// The nodes' view of it.
    node_clock: Clock,
    rng: ChaCha8Rng,
    agenda: Agenda<Ev>,
    members: Vec<Member>,
    by_addr: BTreeMap<SocketAddr, usize>,
    /// Each end of a connection → the other end.
    links: BTreeMap<(usize, u64), (usize, u64)>,
    /// A dialler's end → the address it dialled (it hears `DialEnded` when it closes).
    dialed: BTreeMap<(usize, u64), SocketAddr>,
    /// A request frame's stream at its server → (requester, its request, when it stops
    /// waiting).
    streams: BTreeMap<(usize, u64, u64), (usize, ReqId, u64)>,
    next_conn: u64,
    next_stream: u64,
    /// Per partition, each node's side (`true`: the cut-off share).
    sides: Vec<Vec<bool>>,
    active: Vec<bool>,
    found: Vec<Found>,
    /// Ids (hex) of the blocks found.
    block_ids: std::collections::BTreeSet<String>,
    tx_refusals: u64,
    payments: Vec<Payment>,
    by_txid: BTreeMap<String, usize>,
    /// The nodes holding a wallet, and its address.
    addresses: Vec<(usize, Hash)>,
    heaviest: u128,
    now: u64,
    /// When traffic stops.
    end: u64,
    /// When blocks stop.
    blocks_end: u64,
    events: u64,
    restarts: u64,
    log: Sha3_256,
    log_file: Option<std::io::BufWriter<std::fs::File>>,
}

/// Node `i`'s wallet seed and its key 0. The same in every run (only the run's other choices
/// follow its seed), so the SPHINCS+ key generation is done once per process.
fn wallet_key(i: usize) -> Result<(crate::wallet::Seed, Arc<crate::crypto::Keypair>), NodeError> {
    static KEYS: std::sync::OnceLock<std::sync::Mutex<BTreeMap<usize, Arc<crate::crypto::Keypair>>>> =
        std::sync::OnceLock::new();
    let seed = sha3(&[&b"minima/sim/wallet"[..], &(i as u64).to_be_bytes()].concat()).0;
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys.lock().unwrap_or_else(|e| e.into_inner()).get(&i) {
        return Ok((crate::wallet::Seed(seed), k.clone()));
    }
    let k = Arc::new(
        crate::crypto::Keypair::derive(&seed, 0)
            .map_err(|e| NodeError::Wallet(crate::wallet::WalletError::Crypto(e.to_string())))?,
    );
    keys.lock().unwrap_or_else(|e| e.into_inner()).insert(i, k.clone());
    Ok((crate::wallet::Seed(seed), k))
}

/// Most wallets in a run (each costs a SPHINCS+ key generation once per process).
const WALLETS: usize = 64;

/// Node `i`'s address: 10.(i % 250).(i / 250).1, port 9001 (a /16 group per 250 nodes).
pub(super) fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, (i % 250) as u8, (i / 250 % 256) as u8, 1)), 9001)
}

/// Process-wide numbering of in-memory databases (runs may share a process).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Run a simulation.
pub fn run(cfg: &Config) -> Result<Report, SimError> {
    // Signatures' and payments' randomness from the seed, on this thread only, for the run.
    let _seeded = crate::entropy::seed_thread(cfg.seed);
    run_seeded(cfg)
}

fn run_seeded(cfg: &Config) -> Result<Report, SimError> {
    let mut w = World::new(cfg.clone())?;
    debug_assert_eq!(w.start, START_MS);
    let traffic_end = START_MS + (cfg.hours * 3_600_000.0) as u64;
    w.end = traffic_end;
    w.blocks_end = traffic_end + CONFIRM_MS;
    let first = w.exp(BLOCK_MS);
    w.agenda.push(START_MS + first, Ev::Find);
    for i in 0..w.members.len() {
        if w.members[i].phone {
            let phase = w.rng.next_u64() % (cfg.phone_wake_every_s * 1000).max(1);
            w.agenda.push(START_MS + phase, Ev::Wake(i, false));
        } else {
            w.agenda.push(START_MS, Ev::To(i, Input::Tick));
        }
    }
    if cfg.churn_per_hour > 0.0 {
        for i in cfg.seeds..cfg.nodes {
            if !w.members[i].phone {
                let at = START_MS + w.exp(3_600_000.0 / cfg.churn_per_hour);
                if at < traffic_end {
                    w.agenda.push(at, Ev::Down(i));
                }
            }
        }
    }
    for (k, p) in cfg.partitions.iter().enumerate() {
        w.agenda.push(START_MS + (p.from_h * 3_600_000.0) as u64, Ev::Cut(k));
        w.agenda.push(START_MS + (p.until_h * 3_600_000.0) as u64, Ev::Heal(k));
    }
    if cfg.payments_per_hour > 0.0 {
        // Node 0 claims the genesis coin: the money every payment moves.
        let (_, out) = w.members[0].node.claim_genesis().map_err(|e| SimError::Node(0, e))?;
        w.after(0, out)?;
        let first = START_MS + w.exp(3_600_000.0 / cfg.payments_per_hour);
        if first <= traffic_end {
            w.agenda.push(first, Ev::Pay);
        }
    }
    w.run_until(traffic_end)?;
    // Quiet: no more payments, every phone wakes for good and syncs; blocks go on a while.
    for i in 0..w.members.len() {
        if w.members[i].phone {
            w.agenda.push(traffic_end, Ev::Wake(i, true));
        }
    }
    for k in 0..cfg.partitions.len() {
        w.agenda.push(traffic_end, Ev::Heal(k));
    }
    w.run_until(traffic_end + CONFIRM_MS + QUIET_MS)?;
    w.report()
}

impl World {
    fn new(cfg: Config) -> Result<World, SimError> {
        if cfg.nodes == 0 || !(0.0..=1.0).contains(&cfg.phones) || !(0.0..1.0).contains(&cfg.loss) {
            return Err(SimError::Config("need nodes ≥ 1, phones in 0..=1, loss in 0..1".into()));
        }
        let phones = ((cfg.nodes as f64) * cfg.phones).round() as usize;
        let desktops = cfg.nodes - phones.min(cfg.nodes);
        if desktops == 0 {
            return Err(SimError::Config("every node is a phone: nobody listens or mines".into()));
        }
        // A desktop stopped as traffic ends must be back, and synced, before the report.
        if !(0.0..=60.0).contains(&cfg.churn_per_hour) || cfg.churn_down_s == 0 || cfg.churn_down_s > 300 {
            return Err(SimError::Config("need churn in 0..=60 per hour, churn_down_s in 1..=300".into()));
        }
        let mut w = World::bare(cfg, params(START_MS - 1_000), START_MS)?;
        let cfg = w.cfg.clone();
        let seeds: Vec<SocketAddr> = (0..cfg.seeds.min(desktops)).map(addr).collect();
        for i in 0..cfg.nodes + cfg.hostile {
            let hostile = i >= cfg.nodes;
            let phone = !hostile && i >= desktops;
            let net = NetConfig {
                listen: (!phone).then(|| addr(i)),
                peers: seeds.iter().copied().filter(|a| cfg.fixed_seeds && *a != addr(i)).collect(),
                reached: seeds.iter().copied().filter(|a| !cfg.fixed_seeds && *a != addr(i)).collect(),
                online: !phone,
                outbound_target: hostile.then_some(16),
                ..NetConfig::default()
            };
            w.push_node(net, phone, hostile)?;
        }
        w.sides = cfg
            .partitions
            .iter()
            .map(|p| {
                let cut = ((cfg.nodes as f64) * p.fraction).round() as usize;
                let mut order: Vec<usize> = (0..cfg.nodes + cfg.hostile).collect();
                for k in (1..order.len()).rev() {
                    order.swap(k, (w.rng.next_u64() % (k as u64 + 1)) as usize);
                }
                let mut side = vec![false; cfg.nodes + cfg.hostile];
                for i in order.into_iter().take(cut) {
                    side[i] = true;
                }
                side
            })
            .collect();
        w.active = vec![false; cfg.partitions.len()];
        // Wallets: node 0 and every `stride`-th honest node (desktops and phones alike), at
        // most `WALLETS`; payments go to a wallet's first address.
        let stride = cfg.nodes.div_ceil(WALLETS).max(1);
        let holders = if cfg.payments_per_hour > 0.0 { cfg.nodes } else { 0 };
        for (i, m) in w.members.iter_mut().enumerate().take(holders).step_by(stride) {
            let (seed, key0) = wallet_key(i).map_err(|e| SimError::Node(i, e))?;
            m.wallet = Some((seed.clone(), key0.clone()));
            m.node.open_wallet(seed, Some(key0)).map_err(|e| SimError::Node(i, e))?;
            w.addresses.push((i, m.node.address().map_err(|e| SimError::Node(i, e))?));
        }
        Ok(w)
    }

    /// A world with no node yet: `params`' network on a clock starting at `start`.
    pub(super) fn bare(cfg: Config, params: Params, start: u64) -> Result<World, SimError> {
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let (clock, handle) = Clock::set_at(start);
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let log_file = match &cfg.log {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        };
        Ok(World {
            active: vec![],
            cfg,
            params,
            run,
            start,
            scripts: vec![],
            keep_events: false,
            clock: handle,
            node_clock: clock,
            rng,
            agenda: Agenda::default(),
            members: vec![],
            by_addr: BTreeMap::new(),
            links: BTreeMap::new(),
            dialed: BTreeMap::new(),
            streams: BTreeMap::new(),
            next_conn: 0,
            next_stream: 0,
            sides: vec![],
            found: vec![],
            block_ids: Default::default(),
            tx_refusals: 0,
            payments: vec![],
            by_txid: BTreeMap::new(),
            addresses: vec![],
            heaviest: 0,
            now: start,
            end: start,
            blocks_end: start,
            events: 0,
            restarts: 0,
            log: Sha3_256::new(),
            log_file,
        })
    }

    /// Add a node (`phone`: asleep at first; `hostile`: see [`Config::hostile`]) at the next
    /// address: its index.
    pub(super) fn push_node(
        &mut self,
        net: NetConfig,
        phone: bool,
        hostile: bool,
    ) -> Result<usize, SimError> {
        let i = self.members.len();
        let mut mesh_seed = [0u8; 32];
        self.rng.fill_bytes(&mut mesh_seed);
        let listens = net.listen.is_some();
        let setup = SimSetup {
            params: self.params.clone(),
            store_name: format!("minima-sim-{}-{}-{i}", std::process::id(), self.run),
            clock: self.node_clock.clone(),
            node_id: sha3(&[&self.cfg.seed.to_be_bytes()[..], &(i as u64).to_be_bytes()].concat()),
            net,
            full_mmr: false,
            mesh_seed,
            salt: i as u64,
        };
        let node = SimNode::new(setup.clone()).map_err(|e| SimError::Node(i, e))?;
        self.by_addr.insert(addr(i), i);
        self.members.push(Member {
            node,
            setup,
            wallet: None,
            addr: addr(i),
            phone,
            hostile,
            listens,
            awake: !phone,
            down: false,
            bans_before: 0,
            timer: None,
            bytes: 0,
            events: vec![],
            bans: vec![],
            blocks_taken: 0,
            txs_taken: 0,
        });
        Ok(i)
    }

    /// Add a scripted peer, listening at `addr` (`None`: an address of its own): its index.
    pub(super) fn push_script(&mut self, script: Box<dyn Script>, addr: Option<SocketAddr>) -> usize {
        let k = self.scripts.len();
        let own = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(172, 16 + (k / 250 % 16) as u8, (k % 250) as u8, 1)),
            9001,
        );
        let addr = addr.unwrap_or(own);
        let id = sha3(&[&b"minima/sim/script"[..], &(k as u64).to_be_bytes()].concat());
        self.scripts.push(Scripted { script, addr, id });
        self.by_addr.insert(addr, SCRIPTS + k);
        SCRIPTS + k
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An exponential draw with this mean (ms).
    fn exp(&mut self, mean: f64) -> u64 {
        (-(1.0 - self.unit()).ln() * mean) as u64
    }

    fn note(&mut self, line: std::fmt::Arguments<'_>) -> Result<(), SimError> {
        let s = format!("{} {line}\n", self.now.saturating_sub(self.start));
        self.log.update(s.as_bytes());
        if let Some(f) = self.log_file.as_mut() {
            f.write_all(s.as_bytes())?;
        }
        Ok(())
    }

    /// Whether a partition separates `a` and `b` now (scripted peers are on no side).
    fn cut(&self, a: usize, b: usize) -> bool {
        a < SCRIPTS
            && b < SCRIPTS
            && self.sides.iter().zip(&self.active).any(|(s, on)| *on && s.get(a) != s.get(b))
    }

    /// Count `bytes` that node `i` sent or received (scripted peers are not measured).
    fn count(&mut self, i: usize, bytes: u64) {
        if let Some(m) = self.members.get_mut(i) {
            m.bytes += bytes;
        }
    }

    /// The identity and the address of node or scripted peer `i`.
    fn who(&self, i: usize) -> (Hash, SocketAddr) {
        match i.checked_sub(SCRIPTS) {
            Some(k) => (self.scripts[k].id, self.scripts[k].addr),
            None => (self.members[i].node.node_id(), self.members[i].addr),
        }
    }

    /// Whether `i` is up: an awake node or a scripted peer.
    fn up(&self, i: usize) -> bool {
        self.members.get(i).is_none_or(|m| m.awake)
    }

    /// One-way delay of a message: latency and jitter, and for each loss (QUIC delivers a
    /// stream's data or the connection dies) a retransmission after a probe timeout that
    /// doubles each time.
    fn delay(&mut self) -> u64 {
        let j = self.rng.next_u64() % (self.cfg.jitter_ms + 1);
        let mut d = self.cfg.latency_ms + j;
        let mut pto = (2 * (self.cfg.latency_ms + self.cfg.jitter_ms)).max(100) + 25;
        while self.cfg.loss > 0.0 && self.unit() < self.cfg.loss {
            d += pto;
            pto = pto.saturating_mul(2);
        }
        d
    }

    /// Deliver `answer` to request `req` of `client` a delay from now, unless its deadline
    /// comes first (the driver then answers "no answer" at the deadline).
    fn answer(&mut self, client: usize, req: ReqId, answer: Option<Message>, deadline: u64) {
        self.answer_after(client, req, answer, deadline, 0)
    }

    /// [`World::answer`], sent `extra` ms from now.
    fn answer_after(
        &mut self,
        client: usize,
        req: ReqId,
        answer: Option<Message>,
        deadline: u64,
        extra: u64,
    ) {
        let at = self.now + extra + self.delay();
        if at > deadline {
            self.agenda.push(deadline.max(self.now), Ev::To(client, Input::Answer { req, answer: None }));
        } else {
            self.agenda.push(at, Ev::To(client, Input::Answer { req, answer }));
        }
    }

    /// The node a dial of `addr` from `from` reaches now, if any.
    fn reachable(&self, from: usize, addr: SocketAddr) -> Option<usize> {
        let to = *self.by_addr.get(&addr)?;
        let listens = self.members.get(to).is_none_or(|m| m.listens);
        (to != from && listens && self.up(to) && self.up(from) && !self.cut(from, to)).then_some(to)
    }

    pub(super) fn run_until(&mut self, until: u64) -> Result<(), SimError> {
        while self.step_next(until)? {}
        Ok(())
    }

    /// Run the next event if it is due by `until` (`false`: none is; the clock is then at
    /// `until`).
    pub(super) fn step_next(&mut self, until: u64) -> Result<bool, SimError> {
        let Some((t, ev)) = self.agenda.pop_until(until) else {
            self.now = self.now.max(until);
            self.clock.store(self.now, Ordering::Relaxed);
            return Ok(false);
        };
        self.now = t;
        self.clock.store(t, Ordering::Relaxed);
        self.events += 1;
        self.step(t, ev)?;
        Ok(true)
    }

    /// The clock (ms since the epoch).
    pub(super) fn now_ms(&self) -> u64 {
        self.now
    }

    /// Nodes so far.
    pub(super) fn members_len(&self) -> usize {
        self.members.len()
    }

    /// Whether a node or scripted peer is at `addr`.
    pub(super) fn taken(&self, addr: SocketAddr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    /// The address of node or scripted peer `i`.
    pub(super) fn addr_of(&self, i: usize) -> SocketAddr {
        self.who(i).1
    }

    /// The peers node `i` banned and cut off (a node or scripted peer's index), and why.
    pub(super) fn bans_of(&self, i: usize) -> &[(Option<usize>, String)] {
        &self.members[i].bans
    }

    /// Node `i`'s events since the last call (kept if `keep_events`).
    pub(super) fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.members[i].events)
    }

    /// Node `i`.
    pub(super) fn node_mut(&mut self, i: usize) -> &mut SimNode {
        &mut self.members[i].node
    }

    /// Start node `i` now (its first tick dials its peers).
    pub(super) fn start_node(&mut self, i: usize) {
        self.agenda.push(self.now, Ev::To(i, Input::Tick));
    }

    /// Carry out what node `i` asked of the network outside an event (a direct call).
    pub(super) fn carry_out(&mut self, i: usize, out: Vec<Output>) -> Result<(), SimError> {
        self.after(i, out)
    }

    fn step(&mut self, now: u64, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::To(i, input) if i >= SCRIPTS => self.script_input(i, input),
            // A stopped process hears nothing.
            Ev::To(i, _) | Ev::Timer(i) if self.members[i].down => {}
            Ev::To(i, input) => {
                let out = self.members[i].node.handle(input).map_err(|e| SimError::Node(i, e))?;
                self.after(i, out)?;
            }
            Ev::Connect { from, to, addr, dir, as_id } => {
                if self.reachable(from, addr) != Some(to) {
                    self.agenda.push(now, Ev::To(from, Input::DialEnded { addr, connected: false }));
                    return Ok(());
                }
                let (ca, cb) = (self.next_conn + 1, self.next_conn + 2);
                self.next_conn += 2;
                self.links.insert((from, ca), (to, cb));
                self.links.insert((to, cb), (from, ca));
                self.dialed.insert((from, ca), addr);
                self.note(format_args!("connect {from} {to}"))?;
                let ((pf, back), (pt, _)) = (self.who(from), self.who(to));
                let pf = as_id.unwrap_or(pf);
                self.agenda.push(now, Ev::To(from, Input::Connected { conn: ca, peer: pt, addr, dir }));
                self.agenda.push(
                    now,
                    Ev::To(to, Input::Connected { conn: cb, peer: pf, addr: back, dir: Dir::Inbound }),
                );
            }
            Ev::Read { server, client, req, msg, deadline } => {
                // Nothing crosses a cut, and a server gone asleep answers nothing.
                if self.cut(server, client) || !self.up(server) {
                    self.agenda.push(deadline.max(now), Ev::To(client, Input::Answer { req, answer: None }));
                    return Ok(());
                }
                // A hostile server serves nothing; a scripted one answers as scripted, when
                // it chooses.
                let (answer, extra) = match server.checked_sub(SCRIPTS) {
                    Some(k) => {
                        let s = &mut self.scripts[k].script;
                        let extra = s.delay_ms(&msg);
                        (s.answer(now, msg), extra)
                    }
                    None if self.members[server].hostile => (None, 0),
                    None => (self.members[server].node.serve(msg), 0),
                };
                let bytes = answer.as_ref().map_or(0, |m| m.to_frame().len() as u64);
                self.count(server, bytes);
                self.count(client, bytes);
                self.answer_after(client, req, answer, deadline, extra);
            }
            Ev::Timer(i) => {
                if self.members[i].timer != Some(now) {
                    return Ok(());
                }
                self.members[i].timer = None;
                let out = self.members[i].node.tick().map_err(|e| SimError::Node(i, e))?;
                self.after(i, out)?;
            }
            Ev::Find => {
                let weights: Vec<usize> = (0..self.members.len())
                    .filter(|i| {
                        !self.members[*i].phone && !self.members[*i].hostile && self.members[*i].awake
                    })
                    .collect();
                if !weights.is_empty() {
                    let i = weights[(self.rng.next_u64() % weights.len() as u64) as usize];
                    let (id, out) = self.members[i].node.mine().map_err(|e| SimError::Node(i, e))?;
                    if let Some(id) = id {
                        self.note(format_args!("found {i} {}", id.to_hex()))?;
                        let n = self.members.len();
                        let awake: Vec<bool> = self.members.iter().map(|m| m.awake && !m.hostile).collect();
                        let mut reached = vec![false; n];
                        reached[i] = true;
                        self.found.push(Found { id, at: now, awake, reached, arrivals: vec![0] });
                        self.block_ids.insert(id.to_hex());
                    }
                    self.after(i, out)?;
                }
                // The last block comes a minute after the one before at least: two blocks found
                // at once are a tie only the next block settles, and there is no next.
                let next = now + self.exp(BLOCK_MS).max(1);
                if next <= self.blocks_end {
                    self.agenda.push(next, Ev::Find);
                } else if now < self.blocks_end {
                    self.agenda.push(self.blocks_end.max(now + 60_000), Ev::Find);
                }
            }
            Ev::Wake(i, stay) => {
                if !self.members[i].awake {
                    self.members[i].awake = true;
                    self.note(format_args!("wake {i}"))?;
                    let out =
                        self.members[i].node.handle(Input::Online(true)).map_err(|e| SimError::Node(i, e))?;
                    self.after(i, out)?;
                }
                if !stay && now < self.end {
                    self.agenda.push(now + self.cfg.phone_awake_s * 1000, Ev::Sleep(i));
                }
            }
            Ev::Sleep(i) => {
                if now >= self.end || !self.members[i].awake {
                    return Ok(());
                }
                let out =
                    self.members[i].node.handle(Input::Online(false)).map_err(|e| SimError::Node(i, e))?;
                self.after(i, out)?;
                self.members[i].awake = false;
                self.note(format_args!("sleep {i}"))?;
                // Whatever the engine left open goes with the process's sockets.
                let open: Vec<u64> = self.links.range((i, 0)..(i + 1, 0)).map(|((_, c), _)| *c).collect();
                for c in open {
                    self.close(i, c)?;
                }
                let every = self.cfg.phone_wake_every_s * 1000;
                let next = now + every.saturating_sub(self.cfg.phone_awake_s * 1000).max(1);
                self.agenda.push(next, Ev::Wake(i, false));
            }
            Ev::Down(i) => {
                if !self.members[i].awake {
                    return Ok(());
                }
                self.members[i].awake = false;
                self.members[i].down = true;
                self.members[i].timer = None;
                self.note(format_args!("down {i}"))?;
                // A block it has not got yet is no longer waited for (its arrival after the
                // restart would count the downtime as propagation).
                let from = self.found.len().saturating_sub(32);
                for f in &mut self.found[from..] {
                    if !f.reached[i] {
                        f.awake[i] = false;
                    }
                }
                // Its connections end with the process; the peers hear of it a delay later.
                let open: Vec<u64> = self.links.range((i, 0)..(i + 1, 0)).map(|((_, c), _)| *c).collect();
                for c in open {
                    self.close(i, c)?;
                }
                // Nothing on its way to the old process reaches the new one.
                self.agenda.retain(|e| match e {
                    Ev::To(n, _)
                    | Ev::Timer(n)
                    | Ev::Read { client: n, .. }
                    | Ev::Connect { from: n, .. } => *n != i,
                    _ => true,
                });
                self.agenda.push(now + self.cfg.churn_down_s * 1000, Ev::Up(i));
            }
            Ev::Up(i) => {
                // The new process: the same store (the old one's connections are let go only
                // once the new one holds it), a new engine, the wallet opened again.
                let m = &mut self.members[i];
                let node = SimNode::new(m.setup.clone()).map_err(|e| SimError::Node(i, e))?;
                m.bans_before += m.node.bans();
                m.node = node;
                if let Some((seed, key0)) = m.wallet.clone() {
                    m.node.open_wallet(seed, Some(key0)).map_err(|e| SimError::Node(i, e))?;
                }
                m.awake = true;
                m.down = false;
                m.timer = None;
                self.restarts += 1;
                self.note(format_args!("up {i}"))?;
                self.agenda.push(now, Ev::To(i, Input::Tick));
                let next = now + self.exp(3_600_000.0 / self.cfg.churn_per_hour).max(1_000);
                if next < self.end {
                    self.agenda.push(next, Ev::Down(i));
                }
            }
            Ev::Cut(k) => {
                self.active[k] = true;
                let side: Vec<String> =
                    (0..self.members.len()).filter(|i| self.sides[k][*i]).map(|i| i.to_string()).collect();
                self.note(format_args!("cut {k} {}", side.join(",")))?;
                // Connections across it die (their idle timeout, 30 s, runs out).
                let across: Vec<(usize, u64)> = self
                    .links
                    .iter()
                    .filter(|(a, b)| a.0 < b.0 && self.cut(a.0, b.0))
                    .map(|(a, _)| *a)
                    .collect();
                for (i, c) in across {
                    self.close_late(i, c, 30_000)?;
                }
            }
            Ev::Heal(k) => {
                if self.active[k] {
                    self.active[k] = false;
                    self.note(format_args!("heal {k}"))?;
                }
            }
            Ev::Pay => {
                self.pay()?;
                let next = now + self.exp(3_600_000.0 / self.cfg.payments_per_hour).max(1);
                if next <= self.end {
                    self.agenda.push(next, Ev::Pay);
                }
            }
        }
        Ok(())
    }

    /// One payment: a payer drawn among awake wallet holders with money to send pays half
    /// its sendable balance to another holder.
    fn pay(&mut self) -> Result<(), SimError> {
        let holders = self.addresses.len();
        let mut payers = vec![];
        for k in 0..holders {
            let i = self.addresses[k].0;
            if self.members[i].awake {
                let b = self.members[i].node.balance().map_err(|e| SimError::Node(i, e))?;
                if b.sendable >= 2 {
                    payers.push((k, b.sendable));
                }
            }
        }
        if payers.is_empty() || holders < 2 {
            return Ok(());
        }
        let (k, sendable) = payers[(self.rng.next_u64() % payers.len() as u64) as usize];
        let mut to = (self.rng.next_u64() % (holders as u64 - 1)) as usize;
        if to >= k {
            to += 1;
        }
        let (i, (payee, to)) = (self.addresses[k].0, self.addresses[to]);
        match self.members[i].node.pay(to, sendable / 2) {
            Ok((txid, out)) => {
                self.note(format_args!("pay {i} {payee} {}", txid.to_hex()))?;
                self.by_txid.insert(txid.to_hex(), self.payments.len());
                self.payments.push(Payment { txid, payee, at: self.now, seen: None, confirmed: None });
                self.after(i, out)
            }
            // A storage failure stops the node; any other refusal is the payer's to show.
            Err(e @ NodeError::Store(_)) => Err(SimError::Node(i, e)),
            Err(e) => self.note(format_args!("pay {i} refused {e}")),
        }
    }

    /// After node `i` ran: carry out its outputs, note its new tips, arm its timer.
    fn after(&mut self, i: usize, out: Vec<Output>) -> Result<(), SimError> {
        for o in out {
            self.carry(i, o)?;
        }
        let events = self.members[i].node.events();
        if self.keep_events {
            self.members[i].events.extend(events.iter().cloned());
        }
        for e in events {
            match e {
                Event::NewTip { height, tip } => {
                    self.note(format_args!("tip {i} {height} {tip}"))?;
                    let (_, _, weight) = self.members[i].node.tip();
                    self.heaviest = self.heaviest.max(weight);
                    self.arrived(i);
                }
                Event::TxPowRejected { id, reason } if !self.block_ids.contains(&id) => {
                    self.tx_refusals += 1;
                    self.note(format_args!("refused {i} {id} {reason}"))?;
                }
                Event::TxPowAccepted { id } => {
                    let m = &mut self.members[i];
                    if self.block_ids.contains(&id) {
                        m.blocks_taken += 1;
                    } else {
                        m.txs_taken += 1;
                    }
                }
                Event::Payment { txid, received, block, .. } if received > 0 => {
                    let Some(&k) = self.by_txid.get(&txid) else { continue };
                    let p = &mut self.payments[k];
                    if p.payee != i {
                        continue;
                    }
                    let now = self.now;
                    p.seen.get_or_insert(now);
                    if block.is_some() {
                        p.confirmed.get_or_insert(now);
                    }
                    self.note(format_args!("paid {i} {txid} {block:?}"))?;
                }
                _ => {}
            }
        }
        self.arm(i);
        Ok(())
    }

    /// Blocks found lately that node `i` now holds.
    fn arrived(&mut self, i: usize) {
        let now = self.now;
        let from = self.found.len().saturating_sub(32);
        for f in &mut self.found[from..] {
            if !f.reached[i] && f.awake[i] && self.members[i].node.has_block(&f.id) {
                f.reached[i] = true;
                f.arrivals.push(now - f.at);
            }
        }
    }

    fn arm(&mut self, i: usize) {
        let Some(t) = self.members[i].node.poll_timeout() else { return };
        let at = (t.since_origin().as_millis() as u64).max(self.now + 1);
        if self.members[i].timer.is_none_or(|x| at < x) {
            self.members[i].timer = Some(at);
            self.agenda.push(at, Ev::Timer(i));
        }
    }

    fn carry(&mut self, i: usize, o: Output) -> Result<(), SimError> {
        let now = self.now;
        match o {
            Output::Dial { addr, dir } => match self.reachable(i, addr) {
                Some(j) => {
                    let rtt = self.delay() + self.delay();
                    self.agenda.push(now + rtt, Ev::Connect { from: i, to: j, addr, dir, as_id: None });
                }
                None => self
                    .agenda
                    .push(now + DIAL_TIMEOUT_MS, Ev::To(i, Input::DialEnded { addr, connected: false })),
            },
            Output::Probe { addr, peer } => {
                let (ok, at) = match self.reachable(i, addr) {
                    Some(j) => (self.who(j).0 == peer, now + self.delay() + self.delay()),
                    None => (false, now + DIAL_TIMEOUT_MS),
                };
                self.agenda.push(at, Ev::To(i, Input::Probed { addr, ok }));
            }
            Output::Request { conn, req, msg, timeout } => {
                let Some(&(j, cj)) = self.links.get(&(i, conn)) else {
                    self.agenda.push(now, Ev::To(i, Input::Answer { req, answer: None }));
                    return Ok(());
                };
                let bytes = msg.to_frame().len() as u64;
                self.count(i, bytes);
                self.count(j, bytes);
                let deadline = now + timeout.as_millis() as u64;
                let at = now + self.delay();
                // Nothing crosses a cut (the connection dies at its idle timeout).
                if at > deadline || self.cut(i, j) {
                    self.agenda.push(deadline, Ev::To(i, Input::Answer { req, answer: None }));
                } else if j >= SCRIPTS || SimNode::is_read(&msg) {
                    self.agenda.push(at, Ev::Read { server: j, client: i, req, msg, deadline });
                } else {
                    self.next_stream += 1;
                    let stream = self.next_stream;
                    self.streams.insert((j, cj, stream), (i, req, deadline));
                    self.agenda.push(at, Ev::To(j, Input::Frame { conn: cj, stream, msg }));
                }
            }
            Output::Reply { conn, stream, msg } => {
                // A hostile node answers `GetPeers` with its own kind only, and nothing else
                // but the handshake.
                let msg = match msg {
                    Some(Message::Peers(_)) if self.members[i].hostile => Some(Message::Peers(
                        self.members
                            .iter()
                            .filter(|m| m.hostile)
                            .map(|m| m.addr.to_string())
                            .take(64)
                            .collect(),
                    )),
                    Some(Message::Hello(h)) => Some(Message::Hello(h)),
                    _ if self.members[i].hostile => None,
                    m => m,
                };
                // Announcements' streams wait for nothing.
                let Some((k, req, deadline)) = self.streams.remove(&(i, conn, stream)) else { return Ok(()) };
                if !self.links.contains_key(&(i, conn)) {
                    return Ok(());
                }
                let bytes = msg.as_ref().map_or(0, |m| m.to_frame().len() as u64);
                self.count(i, bytes);
                self.count(k, bytes);
                if self.cut(i, k) {
                    self.agenda.push(deadline.max(now), Ev::To(k, Input::Answer { req, answer: None }));
                } else {
                    self.answer(k, req, msg, deadline);
                }
            }
            // A hostile node relays nothing.
            Output::Announce { .. } if self.members[i].hostile => {}
            Output::Announce { conn, msg } => {
                let Some(&(j, cj)) = self.links.get(&(i, conn)) else { return Ok(()) };
                if self.cut(i, j) {
                    return Ok(());
                }
                let bytes = msg.to_frame().len() as u64;
                self.count(i, bytes);
                self.count(j, bytes);
                self.frame(j, cj, msg);
            }
            Output::Close { conn, code, reason } => {
                if code == crate::net::proto::engine::close::BANNED {
                    let peer = self.links.get(&(i, conn)).map(|(j, _)| *j);
                    self.note(format_args!("ban {i} {peer:?} {reason}"))?;
                    self.members[i].bans.push((peer, reason));
                }
                self.close(i, conn)?
            }
            // Not modelled: the per-peer request budget and the pre-TLS accept rate per group
            // (docs/security.md), and coin look-ups (nobody asks).
            Output::Up { .. }
            | Output::Throttle { .. }
            | Output::GroupRate { .. }
            | Output::CoinProofs { .. } => {}
        }
        Ok(())
    }

    /// A frame reaches node `j` on its connection `cj` a delay from now, on a stream of its own
    /// (nobody waits for its reply).
    fn frame(&mut self, j: usize, cj: u64, msg: Message) {
        self.next_stream += 1;
        let stream = self.next_stream;
        let at = self.now + self.delay();
        self.agenda.push(at, Ev::To(j, Input::Frame { conn: cj, stream, msg }));
    }

    /// What the driver would tell scripted peer `i`: its own dials' completion (when it sends
    /// what it sends on a new connection), announcements, answers to its requests.
    fn script_input(&mut self, i: usize, input: Input) {
        let now = self.now;
        let script = &mut self.scripts[i - SCRIPTS].script;
        match input {
            Input::Connected { conn, dir, .. } if dir != Dir::Inbound => {
                let Some(&(j, cj)) = self.links.get(&(i, conn)) else { return };
                for msg in script.opened(now) {
                    self.frame(j, cj, msg);
                }
            }
            Input::Frame { msg, .. } => script.heard(now, msg),
            Input::Answer { answer, .. } => script.answered(now, answer),
            _ => {}
        }
    }

    /// Scripted peer `from` dials node `to` (as `as_id`, or its own identity): connected a
    /// round trip later if reachable.
    pub(super) fn script_dial(&mut self, from: usize, to: usize, as_id: Option<Hash>) {
        let addr = self.members[to].addr;
        let rtt = self.delay() + self.delay();
        self.agenda.push(self.now + rtt, Ev::Connect { from, to, addr, dir: Dir::Outbound, as_id });
    }

    /// Scripted peer `from` sends `msg` to node `to` on their newest connection, if any
    /// (`false`: none).
    pub(super) fn script_send(&mut self, from: usize, to: usize, msg: Message) -> bool {
        let link = self.links.range((from, 0)..(from + 1, 0)).rev().find(|(_, b)| b.0 == to).map(|(_, b)| *b);
        let Some((j, cj)) = link else { return false };
        self.frame(j, cj, msg);
        true
    }

    /// Scripted peer `from` sends request `msg` to node `to` on their newest connection; the
    /// answer, or `None` after `timeout` ms, comes back as an `Answer` (`false`: none).
    pub(super) fn script_request(&mut self, from: usize, to: usize, msg: Message, timeout: u64) -> bool {
        let link = self.links.range((from, 0)..(from + 1, 0)).rev().find(|(_, b)| b.0 == to).map(|(_, b)| *b);
        let Some((j, cj)) = link else { return false };
        self.next_stream += 1;
        let stream = self.next_stream;
        let deadline = self.now + timeout;
        self.streams.insert((j, cj, stream), (from, ReqId(stream), deadline));
        let at = self.now + self.delay();
        self.agenda.push(at, Ev::To(j, Input::Frame { conn: cj, stream, msg }));
        true
    }

    /// Close a connection from end (i, conn): at once for `i`, a delay later for the peer.
    fn close(&mut self, i: usize, conn: u64) -> Result<(), SimError> {
        let d = self.delay();
        self.close_after(i, conn, 0, d)
    }

    /// A connection that dies without a word (a partition): both ends learn it after `ms`.
    fn close_late(&mut self, i: usize, conn: u64, ms: u64) -> Result<(), SimError> {
        self.close_after(i, conn, ms, ms)
    }

    fn close_after(&mut self, i: usize, conn: u64, mine: u64, theirs: u64) -> Result<(), SimError> {
        let Some((j, cj)) = self.links.remove(&(i, conn)) else { return Ok(()) };
        self.links.remove(&(j, cj));
        self.note(format_args!("close {i} {j}"))?;
        for (n, c, after) in [(i, conn, mine), (j, cj, theirs)] {
            let at = self.now + after;
            self.agenda.push(at, Ev::To(n, Input::Closed { conn: c }));
            if let Some(addr) = self.dialed.remove(&(n, c)) {
                self.agenda.push(at, Ev::To(n, Input::DialEnded { addr, connected: true }));
            }
            // Requests waiting on it are answered by the engine when it hears of the close.
            let gone: Vec<_> = self.streams.range((n, c, 0)..(n, c + 1, 0)).map(|(k, _)| *k).collect();
            for k in gone {
                self.streams.remove(&k);
            }
        }
        Ok(())
    }

    fn report(mut self) -> Result<Report, SimError> {
        let n = self.cfg.nodes;
        let tips: Vec<(Hash, u64, u128)> = self.members[..n].iter().map(|m| m.node.tip()).collect();
        let heaviest = tips.iter().map(|t| t.2).max().unwrap_or(0).max(self.heaviest);
        let best = tips.iter().find(|t| t.2 == heaviest).map(|t| t.0);
        let behind = tips.iter().filter(|t| Some(t.0) != best || t.2 != heaviest).count();
        let converged = behind == 0;
        // Stale blocks: found, but not on the best chain of a node holding the heaviest tip.
        let holder = tips.iter().position(|t| Some(t.0) == best).unwrap_or(0);
        let on_best = self.members[holder].node.best_path();
        let stale = self.found.iter().filter(|f| !on_best.contains(&f.id)).count();
        let quantile = |f: &Found, q: f64| -> Option<u64> {
            let awake = f.awake.iter().filter(|a| **a).count();
            let need = ((awake as f64) * q).ceil().max(1.0) as usize;
            let mut a = f.arrivals.clone();
            a.sort_unstable();
            a.get(need - 1).copied()
        };
        let median = |mut v: Vec<u64>| -> u64 {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let q = |p: f64| -> Vec<u64> { self.found.iter().filter_map(|f| quantile(f, p)).collect() };
        let (q50, q90, q99) = (q(0.5), q(0.9), q(0.99));
        let blocks_reaching_p99 = q99.len() as u64;
        let phone_bytes: Vec<f64> = self.members.iter().filter(|m| m.phone).map(|m| m.bytes as f64).collect();
        let days = (self.cfg.hours / 24.0).max(1e-9);
        let phone_bytes_per_day = if phone_bytes.is_empty() {
            0
        } else {
            (phone_bytes.iter().sum::<f64>() / phone_bytes.len() as f64 / days) as u64
        };
        let phone_cpu: Vec<f64> = self
            .members
            .iter()
            .filter(|m| m.phone)
            .map(|m| {
                (m.blocks_taken as f64 * COST_MODEL.block_ms + m.txs_taken as f64 * COST_MODEL.tx_ms) / 1000.0
            })
            .collect();
        let phone_cpu_s_per_day = if phone_cpu.is_empty() {
            0.0
        } else {
            phone_cpu.iter().sum::<f64>() / phone_cpu.len() as f64 / days
        };
        let peers: Vec<f64> = self.members[..n].iter().map(|m| m.node.peer_count() as f64).collect();
        let pct = |mut v: Vec<u64>| -> Percentiles {
            v.sort_unstable();
            let at = |q: f64| {
                v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0)
            };
            Percentiles { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
        };
        let seen = pct(self.payments.iter().filter_map(|p| Some(p.seen? - p.at)).collect());
        let confirmed = pct(self.payments.iter().filter_map(|p| Some(p.confirmed? - p.at)).collect());
        let mut credited = 0;
        for k in 0..self.payments.len() {
            let (txid, payee) = (self.payments[k].txid.to_hex(), self.payments[k].payee);
            let h = self.members[payee].node.history().map_err(|e| SimError::Node(payee, e))?;
            if h.iter().filter(|e| e.txid == txid && e.received > 0 && e.block.is_some()).count() == 1 {
                credited += 1;
            }
        }
        let bans = self.members[..n].iter().map(|m| m.node.bans() + m.bans_before).sum();
        self.note(format_args!("end behind {behind} bans {bans}"))?;
        if let Some(f) = self.log_file.as_mut() {
            f.flush()?;
        }
        Ok(Report {
            nodes: n,
            hostile: self.cfg.hostile,
            phones: phone_bytes.len(),
            hours: self.cfg.hours,
            blocks: self.found.len() as u64,
            stale_rate: if self.found.is_empty() { 0.0 } else { stale as f64 / self.found.len() as f64 },
            block_propagation_ms: Percentiles { p50: median(q50), p90: median(q90), p99: median(q99) },
            blocks_reaching_p99,
            payments: self.payments.len() as u64,
            payment_seen_ms: seen,
            payment_confirmed_ms: confirmed,
            payments_credited: credited,
            tx_refusals: self.tx_refusals,
            phone_bytes_per_day,
            phone_cpu_s_per_day,
            cost_model: COST_MODEL,
            peers: Range {
                min: peers.iter().copied().fold(f64::INFINITY, f64::min).min(f64::MAX),
                mean: peers.iter().sum::<f64>() / n as f64,
                max: peers.iter().copied().fold(0.0, f64::max),
            },
            converged,
            behind,
            bans,
            restarts: self.restarts,
            events: self.events,
            log_sha3: hex::encode(self.log.clone().finalize()),
            peak_rss_bytes: crate::energy::process_peak_rss_bytes(),
            wall_s: 0.0,
        })
    }
}
