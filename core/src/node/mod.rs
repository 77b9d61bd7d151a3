//! The orchestrator: the single API the CLI and the FFI use.
//!
//! [`Node::start`] opens the data dir (locked: one node per dir), reloads and re-validates the
//! stored tree, and starts the chain actor — a task that owns the chain state, the mempool and
//! the SQLite writer, fed by a channel, so consensus code needs no locks — and, if mining is on,
//! the miner thread. Blocks the local miner finds take the same path as blocks from peers.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::chain::{AddOutcome, Cascade, Chain, ChainError, ColdBlocks, TxPowSource};
use crate::crypto::{sha3, Hash};
use crate::mempool::{Entry, Mempool, MempoolError};
use crate::miner::{Found, Job, Miner};
use crate::mmr::{BlockWitness, Mmr, MmrProof, NodeKey};
use crate::net::peer::SyncFault;
use crate::params::Params;
use crate::store::{BlockCommit, Store, StoreError};
use crate::types::{CoinRecord, TxBody, TxHeader, TxPoW};
use crate::wallet::{WalletError, WalletState};

pub use clock::Clock;

mod clock;
mod energy;
mod future;
mod orphans;
mod serve;
#[cfg(feature = "sim")]
mod sim;
mod waiting;
mod wallet;

pub use energy::{EnergyReport, SyncReport};
#[cfg(feature = "sim")]
pub use sim::{SimNode, SimSetup};
pub use wallet::{ScanReport, SendReport, WalletSecret, RESTORE_GAP, SEALED_FILE as WALLET_FILE};

/// How the node mines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mining {
    /// No mining (stamps only, later).
    Off,
    /// Mine blocks continuously at this duty cycle (devnet).
    Continuous {
        /// Fraction of one core, (0, 1].
        duty: f64,
    },
    /// Pulse as the energy policy decides (SPEC §8): `pulse_work` hashes every 50 s on power,
    /// every 500 s on battery (phones only if the user opted in), none when the budget is spent.
    Pulses,
}

/// Node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// Network parameters, genesis included.
    pub params: Params,
    /// Keep the whole coin set (servers).
    pub full_mmr: bool,
    /// Mining mode.
    pub mining: Mining,
    /// Mempool byte limit (8 MiB phones, 64 MiB servers).
    pub mempool_bytes: usize,
    /// Cap the database at this many pages (tests simulate a full disk with it).
    pub max_db_pages: Option<u64>,
    /// Peering over QUIC (`None`: no network).
    pub net: Option<crate::net::peer::NetConfig>,
    /// The wallet to open at start: a seed the host keeps, or a passphrase that opens the
    /// seed sealed in the data dir (`None`: no wallet until one is created or opened).
    pub wallet: Option<WalletSecret>,
    /// Claim the `RETURN TRUE` genesis coin into the wallet once it opens (devnet `--genesis`).
    pub claim_genesis: bool,
    /// Hashes of work each payment's TxPoW carries (at least the size-scaled minimum).
    pub txn_work: u128,
    /// Energy settings: device class, pulse opt-in, the user's budget.
    pub energy: crate::energy::EnergyConfig,
    /// The power state at start (hosts update it with [`Node::set_power_state`]).
    pub power: crate::energy::PowerState,
    /// Device costs for the ledger's mAh estimate.
    pub device: crate::energy::DeviceProfile,
    /// Tree blocks below the tip whose witness and delta stay in memory ([`HOT_BLOCKS`]);
    /// older ones are read back from the store when needed.
    pub hot_blocks: u64,
    /// How long after the first sync our chain stays replaceable by any heavier verified
    /// chain, even one forking below our tree (SPEC §5's first hour; tests shorten it).
    pub anchor_after: Duration,
}

impl Config {
    /// Defaults for `params` in `data_dir`: no full MMR, mining continuous on devnet and off
    /// elsewhere, a 64 MiB mempool.
    pub fn new(data_dir: impl Into<PathBuf>, params: Params) -> Config {
        let mining = if params.continuous_mining { Mining::Continuous { duty: 0.5 } } else { Mining::Off };
        Config {
            data_dir: data_dir.into(),
            params,
            full_mmr: false,
            mining,
            mempool_bytes: 64 << 20,
            max_db_pages: None,
            net: None,
            wallet: None,
            claim_genesis: false,
            txn_work: 0,
            energy: crate::energy::EnergyConfig::server(),
            power: crate::energy::PowerState::PLUGGED,
            device: crate::energy::DeviceProfile::default(),
            hot_blocks: HOT_BLOCKS,
            anchor_after: ANCHOR_AFTER,
        }
    }
}

/// Errors of the node API.
#[derive(Debug, Error)]
pub enum NodeError {
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A block or transaction was invalid.
    #[error("invalid: {0}")]
    Invalid(#[from] ChainError),
    /// The mempool refused a transaction.
    #[error("mempool: {0}")]
    Mempool(#[from] MempoolError),
    /// Another node holds the data dir.
    #[error("another node is already running on data dir {0}")]
    Locked(PathBuf),
    /// The data dir holds files that are not a node's.
    #[error("{0} is not a minima data dir (it holds other files)")]
    NotADataDir(PathBuf),
    /// File system trouble.
    #[error("data dir {path}: {error}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// What failed.
        error: String,
    },
    /// Parameters unusable.
    #[error("parameters: {0}")]
    Params(#[from] crate::params::ParamsError),
    /// The stored chain failed re-validation.
    #[error("stored chain does not re-validate: {0}")]
    Corrupt(String),
    /// The node has stopped.
    #[error("the node is stopped")]
    Stopped,
    /// The runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
    /// Networking could not start.
    #[error("network: {0}")]
    Net(String),
    /// The wallet refused (bad address or amount, funds, passphrase, ...).
    #[error("wallet: {0}")]
    Wallet(#[from] WalletError),
}

/// Things that happened, for the host and the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new best tip.
    NewTip {
        /// Its height.
        height: u64,
        /// Its id (hex).
        tip: String,
    },
    /// The best chain switched branches.
    Reorg {
        /// Blocks that left.
        disconnected: usize,
        /// Blocks that joined.
        connected: usize,
    },
    /// A TxPoW was accepted (block or transaction).
    TxPowAccepted {
        /// Its id (hex).
        id: String,
    },
    /// The node cannot go on (storage failed, or an internal error); it has stopped processing.
    Fatal {
        /// Why.
        reason: String,
    },
    /// A TxPoW was refused.
    TxPowRejected {
        /// Its id (hex).
        id: String,
        /// Why.
        reason: String,
    },
    /// A sync from a peer's cascade advanced (blocks validated into the candidate chain).
    SyncProgress {
        /// Height the candidate chain has reached.
        height: u64,
        /// Height the peer's headers reach.
        target: u64,
    },
    /// A transaction moved the wallet's coins, or its confirmation changed.
    Payment {
        /// Transaction id (hex).
        txid: String,
        /// Base units to the wallet.
        received: u64,
        /// Base units of the wallet's coins spent.
        sent: u64,
        /// Confirming block (`None`: pending).
        block: Option<u64>,
    },
    /// Peers in two or more /16 groups offer a heavier chain that forks below our tree root,
    /// or the same such chain keeps being offered ([`CONFLICT_REPEATS`] syncs; `groups` says
    /// from how many /16 groups). Raised when first seen and again for a heavier one. The node will not reorganise that deep by itself
    /// once anchored; the host may call
    /// [`Node::accept_chain_conflict`] to resync onto it (stored non-chain data is kept).
    ChainConflict {
        /// Height of the conflicting chain.
        height: u64,
        /// Its tip (hex).
        tip: String,
        /// Its weight (decimal).
        weight: String,
        /// The /16 groups of the peers that offered it (SPEC §5 raises from two; one means a
        /// single source keeps offering it).
        groups: usize,
    },
}

/// A snapshot of the node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Network name.
    pub network: String,
    /// Tip height.
    pub height: u64,
    /// Tip id (hex).
    pub tip: String,
    /// Chain weight (decimal; u128).
    pub weight: String,
    /// Work the next block needs (hashes).
    pub difficulty: String,
    /// Pending transactions.
    pub mempool: usize,
    /// Cascade headers.
    pub cascade: usize,
    /// Tree blocks.
    pub tree: usize,
    /// Bytes of the data dir.
    pub storage_bytes: u64,
    /// Connected peers.
    pub peers: usize,
    /// Miner nonces per second (recent).
    pub hash_rate: f64,
    /// Nonces tried since start.
    pub hashes: u64,
    /// Total unspent supply at the tip (base units).
    pub mmr_total: u64,
    /// Whether this node keeps the full coin set.
    pub full_mmr: bool,
    /// UDP address of the QUIC endpoint, when networking is on.
    pub listen: Option<String>,
    /// Peers banned since start.
    pub bans: usize,
    /// UDP bytes received since start (all peers, QUIC overhead included).
    pub bytes_in: u64,
    /// UDP bytes sent since start.
    pub bytes_out: u64,
    /// Process CPU seconds since start (every thread).
    pub cpu_s: f64,
    /// Miner CPU seconds since start.
    pub miner_cpu_s: f64,
    /// Timer wake-ups the node scheduled (pulses, sync runs).
    pub wakeups: u64,
    /// Seconds between pulses under the current plan (`None`: no pulses).
    pub pulse_every_s: Option<u64>,
    /// Whether the node holds peer connections now.
    pub online: bool,
}

enum Cmd {
    Block {
        txpow: TxPoW,
        witness: BlockWitness,
        listed: Vec<TxPoW>,
        reply: Option<oneshot::Sender<Result<AddOutcome, NodeError>>>,
    },
    Mined(Found),
    TxPow {
        txpow: TxPoW,
        proofs: Vec<(u64, MmrProof)>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Status(oneshot::Sender<Status>),
    Net(crate::net::peer::ChainRequest),
    SetMining(bool),
    AcceptConflict(oneshot::Sender<Result<bool, NodeError>>),
    CheckCoinProofs(Vec<(CoinRecord, MmrProof)>, oneshot::Sender<Vec<(CoinRecord, MmrProof)>>),
    Wallet(wallet::WalletCmd),
    Energy(energy::EnergyCmd),
    Stop(oneshot::Sender<()>),
    /// Panic inside the actor (tests of the panic path).
    #[cfg(feature = "test-hooks")]
    Panic,
    /// Test hook: say so on the first channel, then block until the second one's sender drops.
    #[cfg(feature = "test-hooks")]
    Hold(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>),
    /// Test hook: damage the MMR witness of every later template that spends a coin.
    #[cfg(feature = "test-hooks")]
    SpoilNextTemplate,
    /// Test hook: report the next peer's block as failing on our own state.
    #[cfg(feature = "test-hooks")]
    CorruptNextBlock,
}

/// A running node.
pub struct Node {
    rt: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
    tx: mpsc::Sender<Cmd>,
    events: broadcast::Sender<Event>,
    data_dir: PathBuf,
    lock: std::sync::Mutex<Option<File>>,
    endpoint: Option<quinn::Endpoint>,
    net: Option<crate::net::peer::NetHandle>,
    node_id: Option<Hash>,
    params: Params,
    seed: std::sync::Mutex<Option<crate::wallet::Seed>>,
    /// Key pairs derived for signing (derivation costs ~0.1 s a key).
    keypairs: std::sync::Mutex<HashMap<u32, Arc<crate::crypto::Keypair>>>,
    claim_genesis: bool,
    txn_work: u128,
    /// Set by [`Node::cancel`]: a running `sync_once` stops early.
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// Give memory freed after loading (re-validating a full tree peaks far above what the node
/// then holds) and after each batch of a sync (short-lived frames, bodies and spilled witnesses
/// interleave with the long-lived tree it builds) back to the system, so the resident size
/// reflects what is in use. Elsewhere than glibc a no-op.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// New tips a transaction returned by a reorg is announced with.
const REANNOUNCE_TIPS: u32 = 64;

/// Name of the lock file in the data dir.
pub const LOCK_FILE: &str = "LOCK";

fn io_err(path: &Path, e: std::io::Error) -> NodeError {
    NodeError::Io { path: path.to_path_buf(), error: e.to_string() }
}

/// Files a data dir of ours may hold.
fn is_our_file(name: &str) -> bool {
    name.starts_with("minima.sqlite")
        || name == LOCK_FILE
        || name.starts_with("minima.sock")
        || name.starts_with(crate::net::transport::KEY_FILE)
        || name.starts_with(wallet::SEALED_FILE)
        || name.starts_with('.')
}

fn lock_data_dir(dir: &Path) -> Result<File, NodeError> {
    // The data dir holds keys and the wallet: private to its owner (0700), whatever the
    // umask; an existing one open to others is narrowed.
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_err(dir, e))?;
        let meta = std::fs::metadata(dir).map_err(|e| io_err(dir, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err(dir, e))?;
        }
    }
    let has_db = dir.join(crate::store::DB_FILE).exists();
    if !has_db {
        let foreign = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(|e| e.ok())
            .any(|e| !is_our_file(&e.file_name().to_string_lossy()));
        if foreign {
            return Err(NodeError::NotADataDir(dir.to_path_buf()));
        }
    }
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when the File closes.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(NodeError::Locked(dir.to_path_buf()));
    }
    Ok(f)
}

/// The genesis a data dir was created with (devnet genesis is made at `--genesis` time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGenesis {
    /// Network name.
    pub network: String,
    /// Genesis time (ms).
    pub time_ms: u64,
    /// Genesis prng.
    pub prng: [u8; 32],
    /// Address of the genesis coin.
    pub address: Option<Hash>,
}

/// Read the genesis a data dir was created with.
pub fn stored_genesis(dir: &Path) -> Option<StoredGenesis> {
    let s = std::fs::read_to_string(dir.join(".genesis")).ok()?;
    let mut it = s.split_whitespace();
    let network = it.next()?.to_string();
    let time_ms = it.next()?.parse().ok()?;
    let prng: [u8; 32] = hex::decode(it.next()?).ok()?.try_into().ok()?;
    let address = match it.next() {
        Some(a) => Some(Hash::from_hex(a).ok()?),
        None => None,
    };
    Some(StoredGenesis { network, time_ms, prng, address })
}

fn write_genesis(dir: &Path, p: &Params) -> Result<(), NodeError> {
    let path = dir.join(".genesis");
    let tmp = dir.join(".genesis.tmp");
    let addr = p.genesis.address.map(|a| format!(" {}", a.to_hex())).unwrap_or_default();
    std::fs::write(&tmp, format!("{} {} {}{addr}\n", p.name, p.genesis.time_ms, hex::encode(p.genesis.prng)))
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))
}

impl Node {
    /// Start a node: lock and open the data dir, reload and re-validate the stored chain, start
    /// the actor and (if configured) the miner.
    pub fn start(cfg: Config) -> Result<Node, NodeError> {
        cfg.params.check()?;
        let lock = lock_data_dir(&cfg.data_dir)?;
        let (genesis, _) = crate::chain::genesis(&cfg.params)?;
        let genesis_id = genesis.id();
        let store = Store::open(&cfg.data_dir, cfg.params.name, &genesis_id)?;
        store.integrity_check()?;
        if let Some(p) = cfg.max_db_pages {
            store.set_max_pages(p)?;
        }
        write_genesis(&cfg.data_dir, &cfg.params)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("minima-node")
            .enable_all()
            .build()
            .map_err(|e| NodeError::Runtime(e.to_string()))?;
        let (tx, rx) = mpsc::channel(256);
        let (events, _) = broadcast::channel(1024);
        // Addresses reached before start the address book; its anchors are dialled first.
        let remembered: Vec<std::net::SocketAddr> =
            store.peers()?.iter().filter_map(|a| a.parse().ok()).collect();
        let anchors: Vec<std::net::SocketAddr> =
            store.anchors()?.iter().filter_map(|a| a.parse().ok()).collect();
        let mut actor = Actor::load(&cfg, Clock::System, store, events.clone())?;
        actor.self_tx = Some(tx.clone());
        release_freed_memory();
        // The wallet opens before the miner starts (devnet blocks come fast at first).
        let seed = match cfg.wallet.clone() {
            Some(secret) => {
                let seed = wallet::unseal(&cfg.data_dir, secret)?;
                wallet::open_at_start(&mut actor, &seed, cfg.claim_genesis, cfg.txn_work)?;
                Some(seed)
            }
            None => None,
        };
        // With peers to reach, nothing is mined before we have synced with one of them.
        if let Some(n) = &cfg.net {
            if !n.peers.is_empty() || !cfg.params.seeds.is_empty() || !remembered.is_empty() {
                actor.synced = false;
                actor.synced_at = None;
            }
        }
        if let Mining::Continuous { duty } = cfg.mining {
            actor.ensure_miner();
            actor.duty = duty;
            actor.refresh_template();
        }
        let (mut endpoint, mut node_id, mut handle) = (None, None, None);
        if let Some(mut net) = cfg.net.clone() {
            // A node that starts in the background dials nobody.
            let first = crate::energy::plan(&cfg.energy, &cfg.power, &Default::default());
            net.online = net.online && first.hold_connections;
            // Seeds of the network (none on devnet) are kept like configured peers.
            let seeds = cfg.params.seeds.iter().filter_map(|a| a.parse::<std::net::SocketAddr>().ok());
            for a in seeds {
                if !net.peers.contains(&a) && net.peers.len() < 8 {
                    net.peers.push(a);
                }
            }
            net.reached = remembered;
            net.anchors = anchors;
            let identity = crate::net::transport::Identity::load_or_create(&cfg.data_dir)
                .map_err(|e| NodeError::Net(e.to_string()))?;
            let (net_tx, mut net_rx) = mpsc::channel(256);
            let local = crate::net::peer::Local {
                chain_id: cfg.params.chain_id,
                full_mmr: cfg.full_mmr,
                reads: Arc::new(serve::Served::new(actor.store.serve_reader()?, cfg.full_mmr)),
            };
            let jobs = jobs_config(&cfg.params);
            let (ep, h, engine) = crate::net::peer::start(rt.handle(), net, &identity, local, jobs, net_tx)
                .map_err(|e| NodeError::Net(e.to_string()))?;
            actor.announces = Some(vec![]);
            actor.net = Some(h.clone());
            actor.engine = Some(engine);
            handle = Some(h);
            actor.listen = ep.local_addr().ok().map(|a| a.to_string());
            let fwd = tx.clone();
            rt.spawn(async move {
                while let Some(r) = net_rx.recv().await {
                    if fwd.send(Cmd::Net(r)).await.is_err() {
                        break;
                    }
                }
            });
            endpoint = Some(ep);
            node_id = Some(identity.node_id);
        }
        {
            let _g = rt.enter();
            actor.apply_plan();
        }
        let actor_task = rt.spawn(actor.run(rx));
        // A panic in the actor (a bug: every input is meant to be refused, not to crash) must
        // not leave a silently dead node: it is raised as a fatal event and the node stops
        // talking to peers. Its state unwound with it (the miner thread joined, an open
        // SQLite transaction rolled back); every later call answers `Stopped`.
        let (ev, ep) = (events.clone(), endpoint.clone());
        rt.spawn(async move {
            if let Err(e) = actor_task.await {
                if e.is_panic() {
                    let p = e.into_panic();
                    let what = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown".into());
                    tracing::error!(panic = %what, "the chain actor panicked; the node stops");
                    if let Some(ep) = ep {
                        ep.close(1u32.into(), b"internal error");
                    }
                    let _ = ev.send(Event::Fatal {
                        reason: format!("internal error (chain actor panicked: {what})"),
                    });
                }
            }
        });
        Ok(Node {
            rt: std::sync::Mutex::new(Some(rt)),
            tx,
            events,
            data_dir: cfg.data_dir,
            lock: std::sync::Mutex::new(Some(lock)),
            endpoint,
            net: handle,
            node_id,
            params: cfg.params,
            seed: std::sync::Mutex::new(seed),
            keypairs: std::sync::Mutex::new(HashMap::new()),
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            claim_genesis: cfg.claim_genesis,
            txn_work: cfg.txn_work,
        })
    }

    /// Dial a peer and keep the connection up while the node runs.
    pub fn add_peer(&self, addr: std::net::SocketAddr) -> Result<(), NodeError> {
        let Some(net) = &self.net else { return Err(NodeError::Net("networking is off".into())) };
        if self.rt.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(NodeError::Stopped);
        }
        net.add_peer(addr);
        Ok(())
    }

    /// Connected peers: (address, node id, is_client, full_mmr).
    pub fn peers(&self) -> Vec<(std::net::SocketAddr, Hash, bool, bool)> {
        self.net.as_ref().map(|n| n.peers()).unwrap_or_default()
    }

    /// Fetch proofs of unspent coins (by id or address) from a connected `full_mmr` peer and
    /// keep those that check against our chain: how a wallet that slept longer than the tree,
    /// or was restored, finds its coins (SPEC §7). Answers (coin, proof) pairs.
    pub fn fetch_coin_proofs(
        &self,
        query: crate::net::message::CoinQuery,
    ) -> Result<Vec<(CoinRecord, MmrProof)>, NodeError> {
        let Some(net) = self.net.clone() else { return Err(NodeError::Net("networking is off".into())) };
        let fetched = {
            let rt = self.rt.lock().unwrap_or_else(|e| e.into_inner());
            let rt = rt.as_ref().ok_or(NodeError::Stopped)?;
            rt.block_on(net.fetch_coin_proofs(query)).map_err(|e| NodeError::Net(e.to_string()))?
        };
        self.call(|r| Cmd::CheckCoinProofs(fetched.1, r))
    }

    /// Resync onto the heavier chain of a raised [`Event::ChainConflict`]. Answers whether a
    /// conflicting chain was waiting (it must still be heavier than ours).
    pub fn accept_chain_conflict(&self) -> Result<bool, NodeError> {
        self.call(Cmd::AcceptConflict)?
    }

    fn call<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, NodeError> {
        let (s, r) = oneshot::channel();
        self.tx.blocking_send(f(s)).map_err(|_| NodeError::Stopped)?;
        r.blocking_recv().map_err(|_| NodeError::Stopped)
    }

    /// The UDP address the node's QUIC endpoint is bound to (when networking is on).
    pub fn net_addr(&self) -> Option<std::net::SocketAddr> {
        self.endpoint.as_ref().and_then(|e| e.local_addr().ok())
    }

    /// The phone's network changed (wifi ↔ cellular): rebind the QUIC endpoint to a fresh UDP
    /// socket (a new port on the same local IP) so open connections migrate instead of timing
    /// out. A listening node's advertised port changes too; servers rarely need this.
    pub fn network_changed(&self) -> Result<(), NodeError> {
        let Some(ep) = &self.endpoint else { return Ok(()) };
        let rt = self.rt.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rt) = rt.as_ref() else { return Err(NodeError::Stopped) };
        let _g = rt.enter();
        let old = ep.local_addr().map_err(|e| NodeError::Net(e.to_string()))?;
        // A fresh port on the same IP (phones are clients: nobody dials them).
        let bind = std::net::UdpSocket::bind(std::net::SocketAddr::new(old.ip(), 0))
            .map_err(|e| NodeError::Net(format!("rebind: {e}")))?;
        ep.rebind(bind).map_err(|e| NodeError::Net(format!("rebind: {e}")))
    }

    /// This node's id (SHA3 of its certificate's public key), when networking is on.
    pub fn node_id(&self) -> Option<Hash> {
        self.node_id
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A snapshot of the node.
    pub fn status(&self) -> Result<Status, NodeError> {
        self.call(Cmd::Status)
    }

    /// Subscribe to events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Pause (`false`) or resume (`true`) mining; nodes started without mining ignore it.
    pub fn set_mining(&self, on: bool) -> Result<(), NodeError> {
        self.tx.blocking_send(Cmd::SetMining(on)).map_err(|_| NodeError::Stopped)
    }

    /// Offer a block (with its MMR witness and any listed TxPoWs the node may lack) — the path
    /// every block takes, from peers and from the local miner alike.
    pub fn submit_block(
        &self,
        txpow: TxPoW,
        witness: BlockWitness,
        listed: Vec<TxPoW>,
    ) -> Result<AddOutcome, NodeError> {
        self.call(|reply| Cmd::Block { txpow, witness, listed, reply: Some(reply) })?
    }

    /// Offer a transaction TxPoW with one relay proof per input.
    pub fn submit_txpow(&self, txpow: TxPoW, proofs: Vec<(u64, MmrProof)>) -> Result<(), NodeError> {
        self.call(|reply| Cmd::TxPow { txpow, proofs, reply })?
    }

    /// Make the chain actor panic (tests of the panic path only).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn inject_actor_panic(&self) -> Result<(), NodeError> {
        self.tx.blocking_send(Cmd::Panic).map_err(|_| NodeError::Stopped)
    }

    /// Test hook: block the chain actor until the returned sender is dropped (returns once
    /// the actor is held), to show what is served without it.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn hold_actor(&self) -> Result<std::sync::mpsc::Sender<()>, NodeError> {
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, wait) = std::sync::mpsc::channel();
        self.tx.blocking_send(Cmd::Hold(held, wait)).map_err(|_| NodeError::Stopped)?;
        is_held.recv().map_err(|_| NodeError::Stopped)?;
        Ok(release)
    }

    /// Test hook: from now on, every block template that spends a coin gets a damaged MMR
    /// witness, so the chain refuses the block our miner finds (the refused-own-block path):
    /// unless the entries it lists are evicted, the same refused template comes back forever.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn spoil_next_template(&self) -> Result<(), NodeError> {
        self.tx.blocking_send(Cmd::SpoilNextTemplate).map_err(|_| NodeError::Stopped)
    }

    /// Test hook: the next block a peer sends is added, then reported as failing on our own
    /// state (`NodeError::Corrupt`), to show that such a failure never blames the sender.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn corrupt_next_block(&self) -> Result<(), NodeError> {
        self.tx.blocking_send(Cmd::CorruptNextBlock).map_err(|_| NodeError::Stopped)
    }

    /// Stop: flush, checkpoint the WAL, stop the miner, within `deadline`. Later calls (and
    /// every other method afterwards) return [`NodeError::Stopped`] or do nothing.
    pub fn stop(&self, deadline: Duration) -> Result<(), NodeError> {
        let rt = self.rt.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(rt) = rt else { return Ok(()) };
        if let Some(ep) = &self.endpoint {
            ep.close(0u32.into(), b"node stopping");
        }
        let (s, r) = oneshot::channel();
        let tx = self.tx.clone();
        rt.block_on(async move {
            if tx.send(Cmd::Stop(s)).await.is_ok() {
                let _ = tokio::time::timeout(deadline, r).await;
            }
        });
        rt.shutdown_timeout(deadline);
        // Release the data dir only once everything is flushed.
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

struct Template {
    tag: u64,
    body: TxBody,
    witness: BlockWitness,
    listed: Vec<TxPoW>,
}

struct Actor {
    params: Params,
    chain: Chain,
    store: Store,
    mempool: Mempool,
    /// TxPoWs listed by the block being added, until its commit stores them (tree blocks'
    /// listed TxPoWs are read from the store).
    fresh: HashMap<Hash, TxPoW>,
    /// Tree blocks below the tip that keep their witness and delta in memory.
    hot_blocks: u64,
    /// Transactions from peers whose proofs name a block we lack yet (the block is usually
    /// still on its way, the announcement having overtaken it): tried again when it arrives.
    parked: std::collections::VecDeque<(Hash, TxPoW, Proofs)>,
    /// Transactions a reorg returned whose inputs another returned transaction creates.
    waiting: waiting::Waiting,
    full: Option<Mmr>,
    miner: Option<Arc<Miner>>,
    duty: f64,
    template: Option<Template>,
    tag: u64,
    events: broadcast::Sender<Event>,
    rate: (Instant, u64, f64),
    full_mmr: bool,
    /// New tips and transactions for the engine to announce (`None` without networking),
    /// handed to it after the input or command that made them.
    announces: Option<Vec<(Hash, bool)>>,
    net: Option<crate::net::peer::NetHandle>,
    listen: Option<String>,
    mining_on: bool,
    /// A chain being synced from a peer's cascade (not ours until adopted).
    candidate: Option<Candidate>,
    /// The last staging generation given to a candidate.
    stage_gen: u64,
    /// A heavier chain forking below our root, and the /16 groups that offered one.
    conflict: Option<Candidate>,
    conflict_groups: std::collections::HashSet<Vec<u8>>,
    /// Syncs that ended in a conflict since the last adoption.
    conflict_repeats: u32,
    /// Whether the held conflict was raised to the host (it may then accept it).
    conflict_raised: bool,
    /// The wallet's public state, when a wallet is open.
    wallet: Option<WalletState>,
    /// Coins chosen by payments being signed, and when.
    reserved: HashMap<Hash, u64>,
    /// Transactions returned by a reorg, announced again with each new tip (times left).
    reannounce: std::collections::BTreeMap<Hash, u32>,
    /// The actor's own channel (the miner thread reports through it).
    self_tx: Option<mpsc::Sender<Cmd>>,
    /// Pulse as the energy plan says (else continuous or no mining).
    pulses: bool,
    /// Whether we have synced with a peer (or have none configured): until then we do not
    /// mine — a block of ours on a stale tip would fork us off the network.
    synced: bool,
    /// When we first synced (or started without peers).
    synced_at: Option<u64>,
    /// /16 groups of peers whose chain matched ours: with two, and an hour after the first
    /// sync, our chain is anchored; before that any heavier verified chain replaces it.
    anchor_groups: std::collections::HashSet<Vec<u8>>,
    anchor_after: Duration,
    energy: energy::EnergyState,
    /// Tip height when the pending entries' stored proofs (which peers are served) were last
    /// rewritten (0 at start: the first tip rewrites them).
    proofs_written_at: u64,
    /// See [`Node::spoil_next_template`].
    #[cfg(feature = "test-hooks")]
    spoil_next: bool,
    /// See [`Node::corrupt_next_block`].
    #[cfg(feature = "test-hooks")]
    corrupt_next: bool,
    /// Peers' blocks dated too far ahead of our clock, until they are due.
    future: future::FutureBlocks,
    /// Peers' blocks whose parent we lack yet, until it arrives.
    orphans: orphans::Orphans,
    /// A storage failure met while answering the protocol (the node stops after the input).
    fatal: Option<NodeError>,
    /// Where the engine's outputs go instead of the driver (a simulator collects them).
    outbox: Option<Vec<crate::net::proto::engine::Output>>,
    /// The protocol's chain-facing engine (sync manager and jobs, inventory and fetches),
    /// run here against the chain (`None` without networking).
    engine: Option<crate::net::proto::engine::Engine>,
    /// Coin-proof look-ups running in the engine, by number, with their callers.
    lookups: HashMap<u64, oneshot::Sender<crate::net::proto::engine::CoinProofsResult>>,
    lookup_seq: u64,
    /// What time is (the system's, or a simulator's).
    clock: Clock,
    /// Mixed into block templates' PRNG so two nodes' templates differ (the process id; a
    /// simulated node's number).
    salt: u64,
}

/// What the protocol's sync jobs need of the network's parameters.
fn jobs_config(p: &Params) -> crate::net::proto::jobs::Config {
    crate::net::proto::jobs::Config {
        min_chain_weight: p.min_chain_weight,
        tree_blocks: p.tree_depth.saturating_add(p.cascade_step),
        max_local_future_ms: p.max_local_future_ms,
    }
}

/// Syncs ending in a conflict with the same chain (a heavier chain forking below our tree
/// root, or one extending it) after which it is raised to the host even from a single /16
/// group.
pub const CONFLICT_REPEATS: u32 = 3;

/// Most tree blocks a sync candidate may bring. A peer's tree holds at most `tree_depth +
/// cascade_step` blocks above its cascade; with room for what it mines while we sync, more
/// than this is a peer feeding us without end: the sync is aborted (and the peer banned).
fn sync_cap(p: &Params) -> u64 {
    p.tree_depth
        .saturating_add(p.cascade_step)
        .saturating_mul(2)
        .saturating_add(crate::net::message::MAX_HEADERS as u64)
}

/// A chain built from a peer's cascade during sync. Its blocks' witnesses and the TxPoWs they
/// list are staged in the store under `gen` as they are validated ([`Store::stage`]), so only
/// its tip's are held in memory; adopting it moves them into the chain tables.
struct Candidate {
    chain: Chain,
    /// Its staging generation.
    gen: u64,
    /// Blocks validated into it so far.
    blocks: u64,
}

struct Src<'a> {
    /// A sync candidate's staged TxPoWs.
    a: Option<&'a dyn ColdBlocks>,
    b: &'a HashMap<Hash, TxPoW>,
    m: &'a Mempool,
    store: Option<&'a Store>,
}

impl TxPowSource for Src<'_> {
    fn get_txpow(&self, id: &Hash) -> Option<TxPoW> {
        self.b
            .get(id)
            .cloned()
            .or_else(|| self.a.and_then(|a| a.txpow(id)))
            .or_else(|| self.m.get_by_id(id).map(|e| e.txpow.clone()))
            .or_else(|| self.store.and_then(|s| s.txpow(id).ok().flatten()))
    }
}

/// The TxPoWs a tree block applied, in order (its own first if it is a transaction, then the
/// listed ones, through `listed`); `None` if one is missing.
fn applied_txpows(
    b: &crate::chain::TreeBlock,
    listed: impl Fn(&Hash) -> Option<TxPoW>,
) -> Option<Vec<TxPoW>> {
    b.applied.iter().map(|id| if *id == b.id { Some(b.txpow.clone()) } else { listed(id) }).collect()
}

/// The coins a tree block created, with their MMR leaf indexes (its own transaction first,
/// then the listed ones, as the chain applied them), starting at leaf `first`.
fn created_coins(b: &crate::chain::TreeBlock, first: u64, txs: &[TxPoW]) -> Vec<(u64, CoinRecord)> {
    let mut out = vec![];
    let mut leaf = first;
    for t in txs {
        for rec in crate::chain::validate::output_records(&t.body.transaction, b.number()).unwrap_or_default()
        {
            out.push((leaf, rec));
            leaf += 1;
        }
    }
    out
}

/// A tree block's stored witness or listed TxPoWs could not be read back while a block was
/// being added: the store is damaged, which stops the node (a storage error is fatal).
fn block_data_missing(id: &Hash) -> NodeError {
    NodeError::Store(StoreError::Corrupt(format!("stored data of tree block {id} is missing or damaged")))
}

/// Tree blocks below the tip whose witness and delta stay in memory (mempool proofs, refreshes
/// and reorgs stay near the tip); older ones are read back from the store when needed.
pub const HOT_BLOCKS: u64 = 64;

use crate::mmr::Proofs;

/// Time after the first sync before our chain can be anchored (SPEC §5's first hour).
pub const ANCHOR_AFTER: Duration = Duration::from_secs(3600);

/// Peers' transactions kept until the block their proofs name arrives.
const MAX_PARKED: usize = 32;

/// Ids a chain vouches for: its tree blocks, its cascade headers, and the links that
/// validation checked — every `parents` slot of a tree block added through `add_block`, and
/// the root's parent. A cascade header's other `parents` slots are never checked (only the
/// link to the next kept header is), so a peer could write any id there: they do not count.
fn vouched_ids(chain: &Chain) -> std::collections::HashSet<Hash> {
    let root = chain.root().id;
    let mut v = std::collections::HashSet::new();
    for b in chain.tree_blocks() {
        v.insert(b.id);
        if b.id == root {
            v.insert(b.parent());
        } else {
            v.extend(b.txpow.header.parents.0.iter().copied());
        }
    }
    v.extend(chain.cascade().entries().iter().map(|e| e.id));
    v
}

/// Whether `chain` holds the block `id` at height `h`: it reaches that height and vouches for
/// the id ([`vouched_ids`]; releases pick checkpoints of high super level, which every
/// cascade keeps).
fn holds_checkpoint(chain: &Chain, h: u64, id: &Hash) -> bool {
    chain.tip().number() >= h && vouched_ids(chain).contains(id)
}

/// Whether `theirs` shares a block of our tree (so it forks from our chain inside the tree,
/// where a reorg is allowed): one of our tree ids among the ids it vouches for.
fn forks_in_tree(ours: &Chain, theirs: &Chain) -> bool {
    let v = vouched_ids(theirs);
    ours.tree_blocks().any(|b| v.contains(&b.id))
}

/// The engine answers the protocol's questions at once: it owns the chain. A storage failure
/// is kept in [`Actor::fatal`] (the node stops after the input); the unit is answered as if
/// the input had been refused quietly.
impl crate::net::proto::chain::ChainSink for Actor {
    fn hello(&mut self) -> (Hash, Hash, u128) {
        (self.chain.genesis_id(), self.chain.tip_id(), self.chain.weight())
    }

    fn has(&mut self, id: &Hash) -> bool {
        // Held orphans do not count: each announcement of one, and each catch-up, fetches it
        // again, so a catch-up that failed is retried (a held orphan then joins when its
        // parent arrives, whichever copy comes first). Future blocks count: they cannot be
        // taken before they are due anyway.
        self.chain.knows(id) || self.mempool.get_by_id(id).is_some() || self.future.contains(id)
    }

    fn headers(&mut self, locator: &[Hash], max: u32) -> Vec<TxHeader> {
        self.chain.headers_after(locator, (max as usize).min(crate::net::message::MAX_HEADERS))
    }

    fn locator(&mut self) -> Vec<Hash> {
        self.chain.locator(crate::net::message::MAX_LOCATOR)
    }

    fn submit(&mut self, b: crate::net::message::BlockData) -> crate::net::peer::Submitted {
        match self.take(b) {
            Ok(r) => r,
            Err(e) => {
                // Our storage failed (the node stops): nothing the sender did.
                self.fatal = Some(e);
                crate::net::peer::Submitted::Stale
            }
        }
    }

    fn submit_tx(&mut self, t: crate::net::message::RelayTxPow) -> Result<(), crate::net::peer::TxRefusal> {
        let (txpow, proofs) = t;
        let kept = (txpow.clone(), proofs.clone());
        let r = self.on_txpow(txpow, proofs);
        if let Err(NodeError::Invalid(ChainError::CoinProofUnknownBlock(b))) = &r {
            self.park(*b, kept.0, kept.1);
        }
        let refusal = |penalty: u32, e: &NodeError| {
            use crate::net::peer::Again;
            let again = match e {
                NodeError::Invalid(
                    ChainError::CoinProofUnknownBlock(_)
                    | ChainError::CoinProofTooOld(_)
                    | ChainError::StaleProof,
                ) => Again::Later,
                NodeError::Invalid(ChainError::ProofCount { .. } | ChainError::BadCoinProof(_)) => {
                    Again::Elsewhere
                }
                _ => Again::No,
            };
            crate::net::peer::TxRefusal { penalty, reason: e.to_string(), again }
        };
        // Only invalidity that no state of ours explains costs the relayer: a duplicate, a
        // conflict (two honest relayers of a double spend), a race or a script failing at our
        // height are not its fault.
        let answer = match &r {
            Ok(()) => Ok(()),
            Err(e @ NodeError::Invalid(c)) if c.is_state_independent() => Err(refusal(20, e)),
            Err(e) => Err(refusal(0, e)),
        };
        if let Err(NodeError::Store(e)) = r {
            self.fatal = Some(NodeError::Store(e));
        }
        answer
    }

    fn check_coin_proofs(
        &mut self,
        proofs: &[(CoinRecord, MmrProof)],
    ) -> Result<(), crate::net::peer::TxRefusal> {
        proofs.iter().try_for_each(|(rec, p)| self.chain.check_coin_proof(rec, p)).map_err(|e| {
            let penalty = if e.is_race() { 0 } else { crate::net::peer::BAN_SCORE };
            crate::net::peer::TxRefusal { penalty, reason: e.to_string(), again: crate::net::peer::Again::No }
        })
    }

    fn sync_begin(
        &mut self,
        m: crate::net::message::Message,
    ) -> Result<crate::net::peer::SyncStart, SyncFault> {
        let r = Actor::sync_begin(self, m);
        r.map_err(|e| self.sync_fault(e))
    }

    fn sync_blocks(
        &mut self,
        blocks: Vec<crate::net::message::BlockData>,
        target: u64,
    ) -> Result<(), SyncFault> {
        let r = Actor::sync_blocks(self, blocks, target);
        r.map_err(|e| self.sync_fault(e))
    }

    fn sync_end(&mut self, group: Vec<u8>) -> crate::net::peer::SyncOutcome {
        let r = Actor::sync_end(self, group);
        // The candidate's staged blocks go with it (a held conflict's stay).
        if let Err(e) = self.store.stage_drop(self.conflict.as_ref().map(|c| c.gen)) {
            self.fatal = Some(e.into());
        }
        match r {
            Ok(o) => o,
            Err(NodeError::Store(e)) => {
                let outcome = crate::net::peer::SyncOutcome::Refused(e.to_string());
                self.fatal = Some(NodeError::Store(e));
                outcome
            }
            Err(e) => crate::net::peer::SyncOutcome::Refused(e.to_string()),
        }
    }

    fn peer_up(&mut self, group: Vec<u8>, tip: Hash, claim: u128) {
        // A peer whose tip we hold and whose claim ours reaches shares our chain: it counts
        // towards the groups that verified it.
        if tip != self.chain.genesis_id() && claim <= self.chain.weight() && self.chain.knows(&tip) {
            self.anchor_groups.insert(group);
        }
    }

    fn record_peer(&mut self, addr: std::net::SocketAddr) {
        if let Err(e) = self.store.add_peer(&addr.to_string(), self.clock.now_ms()) {
            self.fatal = Some(e.into());
        }
    }

    fn anchors(&mut self, addrs: Vec<std::net::SocketAddr>) {
        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        if let Err(e) = self.store.set_anchors(&addrs) {
            self.fatal = Some(e.into());
        }
    }

    fn clock_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }
}

impl Actor {
    fn load(
        cfg: &Config,
        clock: Clock,
        mut store: Store,
        events: broadcast::Sender<Event>,
    ) -> Result<Actor, NodeError> {
        let params = cfg.params.clone();
        let loaded = store.load()?;
        let mut full = None;
        let chain = if loaded.block_count == 0 {
            let mut chain = Chain::new(params.clone())?;
            chain.set_cold(store.cold_reader()?);
            let root = chain.root();
            let (_, gmmr) = crate::chain::genesis(&params)?;
            let mut commit = BlockCommit { block: Some(root), tip: chain.tip_id(), ..Default::default() };
            if cfg.full_mmr {
                commit.mmr_changes =
                    (0..1).map(|i| (NodeKey::leaf(i), gmmr.node(NodeKey::leaf(i)))).collect();
                commit.mmr_leaf_count = Some(1);
                commit.coins_added = vec![(0, crate::chain::genesis_coin(&params)?)];
                full = Some(gmmr);
            }
            store.commit(&commit)?;
            chain
        } else {
            let cascade = Cascade::from_entries(loaded.cascade);
            if !cascade.links_ok() {
                return Err(NodeError::Corrupt("stored cascade links are broken".into()));
            }
            let rp = loaded.root_peaks.ok_or_else(|| NodeError::Corrupt("no root peaks".into()))?;
            let mut chain: Option<Chain> = None;
            let cold = store.cold_reader()?;
            let (empty, none) = (HashMap::new(), Mempool::new(0));
            let src = Src { a: None, b: &empty, m: &none, store: Some(&store) };
            let mut cascade = Some(cascade);
            let mut n = 0u64;
            store.for_each_block(|t, w| -> Result<(), NodeError> {
                let Some(c) = chain.as_mut() else {
                    let cascade = cascade.take().unwrap_or_default();
                    let mut c = Chain::from_parts(params.clone(), cascade, t, w, rp.clone())?;
                    c.set_cold(cold.clone());
                    c.hold_pruning(true);
                    chain = Some(c);
                    return Ok(());
                };
                // Every block is checked again (its peaks and delta are recomputed), holding
                // only the newest ones' witnesses and deltas in memory.
                let id = t.id();
                match c.add_block(t, w, &src) {
                    Ok(AddOutcome::Added { .. }) | Ok(AddOutcome::Known) => {}
                    Ok(AddOutcome::Pending { .. }) => {
                        return Err(NodeError::Corrupt(format!("block {id} lists a TxPoW the store lacks")))
                    }
                    Err(e) => return Err(NodeError::Corrupt(format!("block {id}: {e}"))),
                }
                n += 1;
                if n % 64 == 0 {
                    c.spill(cfg.hot_blocks);
                }
                Ok(())
            })?;
            let mut chain = chain.ok_or_else(|| NodeError::Corrupt("no root".into()))?;
            if let Some(tip) = loaded.tip {
                chain.prefer_tip(&tip);
                // The tree, its root and everything derived from the tip (full MMR, wallet,
                // mempool) were stored for this tip: another would need a reorg nobody ran.
                if chain.tip_id() != tip {
                    return Err(NodeError::Corrupt(format!(
                        "the stored tip {tip} is not the best block of the stored tree ({}): \
                         written under another fork choice? Stop, move the data dir aside (it also \
                         holds the wallet and the node key: keep it), start afresh with the same \
                         seed and let the wallet rescan",
                        chain.tip_id()
                    )));
                }
            }
            chain.hold_pruning(false);
            // A tree stored over its limit (before pruning went step by step) is brought
            // within it now, and the store with it.
            let (pruned, dropped) = chain.prune_to_limit();
            if !pruned.is_empty() {
                let mut removed = pruned;
                removed.extend(dropped);
                store.commit(&BlockCommit {
                    removed,
                    cascade: Some((chain.cascade(), chain.root())),
                    tip: chain.tip_id(),
                    ..Default::default()
                })?;
            }
            chain.spill(cfg.hot_blocks);
            if cfg.full_mmr {
                let mut m = Mmr::new();
                for (k, n) in &loaded.mmr_nodes {
                    m.insert_node(*k, *n);
                }
                m.set_leaf_count(loaded.mmr_leaf_count);
                if m.root().ok() != Some(chain.tip().txpow.header.mmr_root) {
                    return Err(NodeError::Corrupt("stored full MMR does not match the tip".into()));
                }
                full = Some(m);
            }
            chain
        };
        let mut mempool = Mempool::new(cfg.mempool_bytes);
        // Entries no longer valid leave the store too (peers are served from it).
        let mut dropped = vec![];
        for (t, proofs) in loaded.mempool {
            let id = t.id();
            match chain.check_mempool_txpow(&t, &proofs) {
                Ok(j) => match mempool.insert(Entry::new(t, proofs, &j), clock.now_ms()) {
                    Ok(removed) => dropped.extend(removed),
                    Err(_) => dropped.push(id),
                },
                Err(_) => dropped.push(id),
            }
        }
        if !dropped.is_empty() {
            store.commit(&BlockCommit {
                tip: chain.tip_id(),
                mempool_removed: dropped,
                ..Default::default()
            })?;
        }
        Ok(Actor {
            params,
            chain,
            store,
            mempool,
            fresh: HashMap::new(),
            hot_blocks: cfg.hot_blocks,
            parked: Default::default(),
            waiting: Default::default(),
            full,
            miner: None,
            duty: 1.0,
            template: None,
            tag: 0,
            events,
            rate: (Instant::now(), 0, 0.0),
            full_mmr: cfg.full_mmr,
            announces: None,
            net: None,
            listen: None,
            mining_on: true,
            candidate: None,
            stage_gen: 0,
            conflict: None,
            conflict_groups: Default::default(),
            conflict_repeats: 0,
            conflict_raised: false,
            wallet: None,
            reserved: HashMap::new(),
            reannounce: Default::default(),
            self_tx: None,
            pulses: cfg.mining == Mining::Pulses,
            synced: true,
            synced_at: Some(clock.now_ms()),
            anchor_groups: Default::default(),
            anchor_after: cfg.anchor_after,
            energy: energy::EnergyState::new(cfg, clock.now_ms()),
            proofs_written_at: 0,
            #[cfg(feature = "test-hooks")]
            spoil_next: false,
            #[cfg(feature = "test-hooks")]
            corrupt_next: false,
            future: future::FutureBlocks::new(cfg.params.max_local_future_ms),
            orphans: Default::default(),
            fatal: None,
            engine: None,
            outbox: None,
            lookups: HashMap::new(),
            lookup_seq: 0,
            clock,
            salt: std::process::id() as u64,
        })
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        /// Most queued inputs taken before a timer that is due.
        const QUEUED_FIRST: u32 = 64;
        let mut streak = 0u32;
        loop {
            // No timer unless a pulse or a held block is due: an idle node sleeps on its channel.
            let held = self
                .future
                .next_due_in(self.clock.now_ms())
                .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
            let engine =
                self.engine.as_ref().and_then(|e| e.poll_timeout()).map(crate::net::peer::instant_at);
            let wake = [self.energy.next_pulse, held, engine].into_iter().flatten().min();
            // Inputs already queued go before a due timer (a handshake's `Hello` or an answer
            // waiting in the channel is not judged late), but at most `QUEUED_FIRST` in a row.
            let overdue = wake.is_some_and(|at| at <= tokio::time::Instant::now());
            streak = if overdue { streak + 1 } else { 0 };
            let cmd = match wake {
                Some(at) => tokio::select! {
                    biased;
                    c = rx.recv(), if streak <= QUEUED_FIRST => c,
                    _ = tokio::time::sleep_until(at) => {
                        streak = 0;
                        if self.energy.next_pulse.is_some_and(|p| p <= tokio::time::Instant::now()) {
                            self.pulse_due();
                        }
                        if engine.is_some_and(|e| e <= tokio::time::Instant::now()) {
                            self.run_engine(crate::net::proto::engine::Input::Tick);
                            if let Some(e) = self.fatal.take() {
                                self.emit(Event::Fatal { reason: e.to_string() });
                                break;
                            }
                        }
                        if let Err(e) = self.retry_future() {
                            self.emit(Event::Fatal { reason: e.to_string() });
                            break;
                        }
                        if !self.flushed() {
                            break;
                        }
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(cmd) = cmd else { break };
            match cmd {
                Cmd::Block { txpow, witness, listed, reply } => {
                    let r = self.on_block(txpow, witness, listed);
                    let fatal = matches!(r, Err(NodeError::Store(_)));
                    if let (true, Err(e)) = (fatal, &r) {
                        self.emit(Event::Fatal { reason: e.to_string() });
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                    if fatal {
                        break;
                    }
                }
                Cmd::Mined(f) => {
                    if let Err(e) = self.on_mined(f) {
                        self.emit(Event::Fatal { reason: e.to_string() });
                        break;
                    }
                }
                Cmd::TxPow { txpow, proofs, reply } => {
                    let _ = reply.send(self.on_txpow(txpow, proofs));
                }
                Cmd::Status(reply) => {
                    let _ = reply.send(self.status());
                }
                Cmd::AcceptConflict(reply) => {
                    let raised = std::mem::take(&mut self.conflict_raised);
                    self.conflict_repeats = 0;
                    let r = match self.conflict.take() {
                        Some(c) if raised && c.chain.weight() > self.chain.weight() => {
                            // `false`: the disk was too full to adopt it (nothing changed).
                            self.adopt(c)
                        }
                        _ => Ok(false),
                    };
                    let fatal = matches!(r, Err(NodeError::Store(_)));
                    let _ = reply.send(r);
                    if fatal {
                        self.emit(Event::Fatal { reason: "storage failed during resync".into() });
                        break;
                    }
                }
                Cmd::CheckCoinProofs(proofs, reply) => {
                    let ok = proofs
                        .into_iter()
                        .filter(|(rec, p)| self.chain.check_coin_proof(rec, p).is_ok())
                        .collect();
                    let _ = reply.send(ok);
                }
                Cmd::Wallet(c) => self.on_wallet(c),
                Cmd::Energy(c) => self.on_energy(c),
                Cmd::SetMining(on) => {
                    self.mining_on = on;
                    if on {
                        self.refresh_template();
                    } else if let Some(m) = &self.miner {
                        self.template = None;
                        m.set_job(None);
                    }
                }
                Cmd::Net(r) => {
                    if let Err(e) = self.on_net(r) {
                        self.emit(Event::Fatal { reason: e.to_string() });
                        break;
                    }
                }
                #[cfg(feature = "test-hooks")]
                Cmd::Panic => panic!("panic injected by a test"),
                #[cfg(feature = "test-hooks")]
                Cmd::CorruptNextBlock => self.corrupt_next = true,
                #[cfg(feature = "test-hooks")]
                Cmd::SpoilNextTemplate => {
                    self.spoil_next = true;
                    self.refresh_template();
                }
                #[cfg(feature = "test-hooks")]
                Cmd::Hold(held, wait) => {
                    let _ = held.send(());
                    tokio::task::block_in_place(|| {
                        let _ = wait.recv();
                    });
                }
                Cmd::Stop(reply) => {
                    if let Some(m) = &self.miner {
                        m.set_job(None);
                    }
                    if let Err(e) = self.store.checkpoint() {
                        tracing::warn!("checkpoint on stop: {e}");
                    }
                    let _ = reply.send(());
                    break;
                }
            }
            if !self.flushed() {
                break;
            }
        }
        // Dropping the last Arc joins the miner thread.
        if let Some(m) = self.miner.take() {
            if let Ok(mut m) = Arc::try_unwrap(m) {
                m.shutdown();
            }
        }
    }

    fn status(&mut self) -> Status {
        let tip = self.chain.tip();
        let next = self.chain.next_block(&self.chain.tip_id()).ok();
        let hashes = self.miner.as_ref().map(|m| m.hashes()).unwrap_or(0);
        let el = self.rate.0.elapsed().as_secs_f64();
        if el >= 1.0 {
            self.rate = (Instant::now(), hashes, (hashes - self.rate.1) as f64 / el);
        }
        Status {
            network: self.params.name.to_string(),
            height: tip.number(),
            tip: tip.id.to_hex(),
            weight: self.chain.weight().to_string(),
            difficulty: next.map(|n| crate::chain::pow::work_of(&n.block_target)).unwrap_or(0).to_string(),
            mempool: self.mempool.len(),
            cascade: self.chain.cascade().len(),
            tree: self.chain.tree_len(),
            storage_bytes: self.store.size_bytes(),
            peers: self.net.as_ref().map(|n| n.peer_count()).unwrap_or(0),
            hash_rate: self.rate.2,
            hashes,
            mmr_total: tip.txpow.header.mmr_total,
            full_mmr: self.full_mmr,
            listen: self.listen.clone(),
            bans: self.net.as_ref().map(|n| n.ban_count()).unwrap_or(0),
            bytes_in: self.net.as_ref().map(|n| n.bytes().0).unwrap_or(0),
            bytes_out: self.net.as_ref().map(|n| n.bytes().1).unwrap_or(0),
            cpu_s: crate::energy::process_cpu_s(),
            miner_cpu_s: self.miner.as_ref().map(|m| m.cpu_s()).unwrap_or(0.0),
            wakeups: self.energy.wakeups,
            pulse_every_s: self.energy.plan.pulse_every.filter(|_| self.pulses).map(|d| d.as_secs()),
            online: self.net.as_ref().is_some_and(|n| n.is_online()),
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// A block from our miner takes the same path as one from a peer. Storage failures are
    /// fatal (returned); a refused block only means the template was stale.
    fn on_mined(&mut self, f: Found) -> Result<(), NodeError> {
        let Some(t) = self.template.take() else { return Ok(()) };
        if t.tag != f.tag {
            self.template = Some(t);
            return Ok(());
        }
        let txpow = TxPoW { header: f.header, body: t.body };
        let listed = t.listed.clone();
        match self.on_block(txpow, t.witness, t.listed) {
            Ok(_) => Ok(()),
            Err(NodeError::Store(e)) => Err(NodeError::Store(e)),
            Err(e) => {
                // A template the chain refuses must never be mined again: judge each listed
                // entry alone for the next block and evict those that fail; if each passes
                // alone (their sum broke a rule the builder missed), evict them all, so the
                // next template is a valid pulse either way.
                tracing::warn!("own block refused: {e}");
                let bad: Vec<Hash> = listed
                    .iter()
                    .filter_map(|t| {
                        let entry = self.mempool.get_by_id(&t.id())?;
                        self.chain.check_mempool_txpow(t, &entry.proofs).is_err().then_some(entry.txid)
                    })
                    .collect();
                let evict = if bad.is_empty() { listed.iter().map(|t| t.txid()).collect() } else { bad };
                self.evict(&evict)?;
                self.refresh_template();
                Ok(())
            }
        }
    }

    fn on_txpow(&mut self, txpow: TxPoW, proofs: Vec<(u64, MmrProof)>) -> Result<(), NodeError> {
        let id = txpow.id();
        // What is already pending settles a duplicate or a weak conflict before any proof or
        // signature is checked.
        self.mempool.precheck(&txpow, self.clock.now_ms())?;
        let proofs = self.onto_best(&txpow, proofs);
        let judged = match self.chain.check_mempool_txpow(&txpow, &proofs) {
            Ok(j) => j,
            Err(e) => {
                self.emit(Event::TxPowRejected { id: id.to_hex(), reason: e.to_string() });
                return Err(e.into());
            }
        };
        let mut e = Entry::new(txpow, proofs, &judged);
        // Stored (and served to peers) carried to our tip when older than a rewrite period: a
        // relayer's proofs may be nearly `proof_window` old already.
        let tip = self.chain.tip().number();
        let every = (self.params.proof_window / serve::PROOF_REWRITE).max(1);
        let old = e.proofs.iter().any(|(_, p)| {
            self.chain.block(&p.block_id).is_none_or(|b| tip.saturating_sub(b.number()) > every)
        });
        if old {
            if let Some(p) = self.refreshed(&e) {
                e.proofs = p;
            }
        }
        let removed = self.mempool.insert(e.clone(), self.clock.now_ms())?;
        self.store.commit(&BlockCommit {
            tip: self.chain.tip_id(),
            mempool_removed: removed,
            mempool_added: vec![(&e.txpow, &e.proofs)],
            ..Default::default()
        })?;
        self.wallet_pending(&e.txpow)?;
        self.emit(Event::TxPowAccepted { id: id.to_hex() });
        // Announce to peers (the engine sends `Inv`; receivers fetch what they lack).
        self.announce(id, false);
        self.refresh_template();
        Ok(())
    }

    /// A sender on another fork of our tree proves inputs against its own tip: proofs against
    /// a block we hold on a side branch are carried to our tip (through the branch's deltas to
    /// the fork, then ours) when the coin is unspent here. Others are left as they are, for
    /// the mempool check to judge. Only after the TxPoW's own form and work hold, and only
    /// for a branch forking within the hot blocks ([`HOT_BLOCKS`]: deltas in memory, no store
    /// read), so a sender cannot make us replay deep branches for free.
    fn onto_best(&self, txpow: &TxPoW, proofs: Vec<(u64, MmrProof)>) -> Vec<(u64, MmrProof)> {
        let inputs = &txpow.body.transaction.inputs;
        let tip = self.chain.tip().number();
        let near = |id: &Hash| {
            self.chain.block(id).is_some_and(|b| tip.saturating_sub(b.number()) < self.hot_blocks)
        };
        if inputs.len() != proofs.len() || !proofs.iter().any(|(_, p)| near(&p.block_id)) {
            return proofs;
        }
        let best: std::collections::HashSet<Hash> = self.chain.best_path().into_iter().collect();
        // A side-branch block whose fork point is near the tip too.
        let side = |p: &MmrProof| {
            let mut cur = p.block_id;
            while !best.contains(&cur) {
                match self.chain.block(&cur) {
                    Some(b) if near(&cur) => cur = b.parent(),
                    _ => return false,
                }
            }
            cur != p.block_id && near(&cur)
        };
        let carry: Vec<bool> = proofs.iter().map(|(_, p)| side(p)).collect();
        if !carry.iter().any(|c| *c) {
            return proofs;
        }
        match crate::chain::validate::check_txpow_form(&self.params, txpow) {
            Ok(info) if info.is_transaction => {}
            _ => return proofs,
        }
        let recs: Vec<CoinRecord> = inputs
            .iter()
            .zip(&proofs)
            .zip(&carry)
            .filter(|(_, c)| **c)
            .map(|((coin, (created, _)), _)| CoinRecord { coin: coin.clone(), created: *created })
            .collect();
        let pairs: Vec<(&CoinRecord, &MmrProof)> =
            recs.iter().zip(proofs.iter().zip(&carry).filter(|(_, c)| **c).map(|((_, p), _)| p)).collect();
        let mut fates = self.chain.coin_fates(&pairs).into_iter();
        proofs
            .into_iter()
            .zip(carry)
            .map(|((created, p), c)| match (c, c.then(|| fates.next()).flatten()) {
                (true, Some(crate::chain::CoinFate::Unspent(carried))) => (created, carried),
                _ => (created, p),
            })
            .collect()
    }

    fn on_block(
        &mut self,
        txpow: TxPoW,
        witness: BlockWitness,
        listed: Vec<TxPoW>,
    ) -> Result<AddOutcome, NodeError> {
        let id = txpow.id();
        let given: HashMap<Hash, TxPoW> = listed.into_iter().map(|t| (t.id(), t)).collect();
        let out = {
            let src = Src { a: None, b: &given, m: &self.mempool, store: Some(&self.store) };
            self.chain.add_block(txpow, witness, &src)
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.emit(Event::TxPowRejected { id: id.to_hex(), reason: e.to_string() });
                return Err(e.into());
            }
        };
        let AddOutcome::Added { reorg, pruned, dropped } = &out else { return Ok(out) };
        // Listed TxPoWs become part of the stored tree.
        let block =
            self.chain.block(&id).cloned().ok_or_else(|| NodeError::Corrupt("added block missing".into()))?;
        let mut listed_now = vec![];
        self.fresh.clear();
        for lid in &block.txpow.body.txpow_ids {
            let t = given
                .get(lid)
                .cloned()
                .or_else(|| self.mempool.get_by_id(lid).map(|e| e.txpow.clone()))
                .or_else(|| self.store.txpow(lid).ok().flatten());
            if let Some(t) = t {
                self.fresh.insert(*lid, t.clone());
                listed_now.push(t);
            }
        }
        // Mempool and full MMR follow the best chain.
        let mut mempool_removed = vec![];
        let mut mempool_added: Vec<(TxPoW, Vec<(u64, MmrProof)>)> = vec![];
        let mut mmr_changes: Vec<(NodeKey, Option<crate::mmr::MmrNode>)> = vec![];
        let mut coins_from: Option<u64> = None;
        let mut coins_added: Vec<(u64, CoinRecord)> = vec![];
        let mut rewrite: Vec<(Hash, Proofs)> = vec![];
        if let Some(r) = reorg {
            // Transactions of blocks that left the best chain return to the mempool.
            for bid in &r.disconnected {
                let Some(b) = self.chain.block(bid).cloned() else { continue };
                let bx = self.chain.extra(bid).ok_or_else(|| block_data_missing(bid))?;
                let txs =
                    applied_txpows(&b, |l| self.listed_txpow(l)).ok_or_else(|| block_data_missing(bid))?;
                let mut pos = 0;
                for t in txs {
                    let n = t.body.transaction.inputs.len();
                    let mut known = vec![];
                    for (k, c) in t.body.transaction.inputs.iter().enumerate() {
                        let created = bx.witness.inputs.get(pos + k).map(|w| w.created).unwrap_or(0);
                        let rec = CoinRecord { coin: c.clone(), created };
                        known.push(self.chain.reproof_input(bid, pos + k, &rec).map(|p| (created, p)));
                    }
                    pos += n;
                    if known.iter().any(Option::is_none) {
                        // An input another returned transaction created: it waits for that
                        // one's block.
                        self.waiting.hold(t, known, self.chain.tip().number());
                        continue;
                    }
                    let proofs: Vec<(u64, MmrProof)> = known.into_iter().flatten().collect();
                    {
                        if let Ok(j) = self.chain.check_mempool_txpow(&t, &proofs) {
                            let e = Entry::new(t.clone(), proofs.clone(), &j);
                            if let Ok(evicted) = self.mempool.insert(e, self.clock.now_ms()) {
                                mempool_removed.extend(evicted);
                                mempool_added.push((t, proofs));
                            }
                        }
                    }
                }
                if let Some(m) = self.full.as_mut() {
                    for (k, old, _) in &bx.delta.changes {
                        mmr_changes.push((*k, *old));
                    }
                    m.rollback(&bx.delta);
                    let from = bx.delta.old_leaf_count;
                    coins_from = Some(coins_from.map_or(from, |x| x.min(from)));
                }
            }
            for bid in &r.connected {
                let Some(b) = self.chain.block(bid) else { continue };
                for txid in &b.txids {
                    if let Some(e) = self.mempool.remove_txid(txid) {
                        mempool_removed.push(e.id);
                    }
                }
                if self.full.is_some() {
                    let bx = self.chain.extra(bid).ok_or_else(|| block_data_missing(bid))?;
                    let txs =
                        applied_txpows(b, |l| self.listed_txpow(l)).ok_or_else(|| block_data_missing(bid))?;
                    coins_added.extend(created_coins(b, bx.delta.old_leaf_count, &txs));
                    if let Some(m) = self.full.as_mut() {
                        for (k, _, new) in &bx.delta.changes {
                            mmr_changes.push((*k, Some(*new)));
                        }
                        m.apply_forward(&bx.delta);
                    }
                }
            }
            // Carry every mempool entry's proofs to the new tip (one block's delta, usually held
            // in memory) and drop the entries whose coins are gone: a proof that cannot be
            // carried is exactly a failed coin-proof check, so no need to re-verify signatures
            // and scripts of every entry on every new tip. The proofs were carried to the old
            // tip, which a reorg leaves on a side branch: `coin_fates` rewinds them from there.
            let carried: Vec<_> = self.mempool.entries().map(|e| (e.txid, self.carried(e))).collect();
            let height = self.chain.tip().number();
            for (t, (proofs, spent)) in carried {
                if proofs.iter().all(Option::is_some) {
                    self.mempool.set_proofs(&t, proofs.into_iter().flatten().collect());
                    continue;
                }
                if let Some(e) = self.mempool.remove_txid(&t) {
                    mempool_removed.push(e.id);
                    // An input created on the branch that left (by a transaction now back in
                    // the mempool, or waiting): this one waits for that block. An input spent
                    // on the new chain is a conflict it lost.
                    if !spent {
                        self.waiting.hold(e.txpow, proofs, height);
                    }
                }
            }
            // Entries evicted or removed later in this block's changes are not stored.
            mempool_added.retain(|(t, _)| self.mempool.get_by_id(&t.id()).is_some());
            mempool_removed.retain(|id| self.mempool.get_by_id(id).is_none());
            // Peers are served the stored proofs (off this actor): rewrite them when a reorg
            // may have left them on a side branch, or when they grow old for a peer's window.
            let n = self.chain.tip().number();
            let every = (self.params.proof_window / serve::PROOF_REWRITE).max(1);
            if !r.disconnected.is_empty()
                || n < self.proofs_written_at
                || n >= self.proofs_written_at.saturating_add(every)
            {
                self.proofs_written_at = n;
                let added: std::collections::HashSet<Hash> =
                    mempool_added.iter().map(|(t, _)| t.id()).collect();
                rewrite = self
                    .mempool
                    .entries()
                    .filter(|e| !added.contains(&e.id))
                    .map(|e| (e.id, e.proofs.clone()))
                    .collect();
            }
        }
        let cascade_changed = !pruned.is_empty();
        let mut removed: Vec<Hash> = pruned.clone();
        removed.extend(dropped.iter().copied());
        let wallet = match reorg {
            Some(r) => self.wallet_follow(&r.connected, &r.disconnected),
            None => None,
        };
        let added_refs: Vec<(&TxPoW, &[(u64, MmrProof)])> =
            mempool_added.iter().map(|(t, p)| (t, p.as_slice())).collect();
        self.store.commit(&BlockCommit {
            block: Some(&block),
            listed: listed_now.iter().collect(),
            removed,
            cascade: cascade_changed.then(|| (self.chain.cascade(), self.chain.root())),
            tip: self.chain.tip_id(),
            mempool_removed,
            mempool_added: added_refs,
            mempool_proofs: rewrite.iter().map(|(id, p)| (*id, p.as_slice())).collect(),
            mmr_leaf_count: self.full.as_ref().map(|m| m.leaf_count()),
            mmr_changes,
            coins_from,
            coins_added,
            wallet: wallet.as_ref(),
        })?;
        self.fresh.clear();
        self.chain.spill(self.hot_blocks);
        self.sync_gate();
        if let Some(w) = &wallet {
            self.emit_payments(w);
        }
        self.emit(Event::TxPowAccepted { id: id.to_hex() });
        if let Some(r) = reorg {
            if !r.disconnected.is_empty() {
                self.emit(Event::Reorg { disconnected: r.disconnected.len(), connected: r.connected.len() });
            }
            let t = self.chain.tip();
            self.emit(Event::NewTip { height: t.number(), tip: t.id.to_hex() });
            let tip = t.id;
            if self.announces.is_some() {
                self.announce(tip, true);
                // Transactions that came back from the losing branch go out again — and again
                // with the next tips: a reorg often happens midway through a catch-up, when the
                // proofs we serve are still too old for the peer that is ahead of us.
                for (tx, _) in &mempool_added {
                    self.reannounce.insert(tx.id(), REANNOUNCE_TIPS);
                }
                let mut again = vec![];
                self.reannounce.retain(|id, left| {
                    *left = left.saturating_sub(1);
                    let pending = self.mempool.get_by_id(id).is_some();
                    if pending {
                        again.push(*id);
                    }
                    pending && *left > 0
                });
                for id in again {
                    self.announce(id, false);
                }
            }
            self.refresh_template();
        }
        self.unpark(&id)?;
        if let Some(r) = reorg {
            self.release_waiting(&r.connected)?;
        }
        Ok(out)
    }

    /// Hand the transactions waiting after a reorg ([`waiting`]) the coins the blocks
    /// `connected` created; those with every input proven now go back to the mempool.
    fn release_waiting(&mut self, connected: &[Hash]) -> Result<(), NodeError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        for bid in connected {
            let Some(b) = self.chain.block(bid).cloned() else { continue };
            let Some(first) = self.chain.extra(bid).map(|x| x.delta.old_leaf_count) else { continue };
            let Some(txs) = applied_txpows(&b, |l| self.listed_txpow(l)) else { continue };
            for (leaf, rec) in created_coins(&b, first, &txs) {
                if self.waiting.wants(&rec.coin.coin_id) {
                    if let Some(p) = self.chain.proof_in_block(bid, leaf, &rec) {
                        self.waiting.supply(&rec.coin.coin_id, rec.created, &p);
                    }
                }
            }
        }
        for (t, proofs) in self.waiting.take_ready(self.chain.tip().number()) {
            let proofs = t
                .body
                .transaction
                .inputs
                .iter()
                .zip(proofs)
                .map(|(c, (created, p))| {
                    let rec = CoinRecord { coin: c.clone(), created };
                    (created, self.chain.refresh_proof(&rec, &p).unwrap_or(p))
                })
                .collect();
            // Other refusals were raised as events by `on_txpow`; only storage stops us.
            if let Err(e @ NodeError::Store(_)) = self.on_txpow(t, proofs) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Answer the network task. Only storage failures are returned (they are fatal).
    fn on_net(&mut self, r: crate::net::peer::ChainRequest) -> Result<(), NodeError> {
        use crate::net::peer::ChainRequest as R;
        match r {
            R::Proto(input) => self.run_engine(input),
            R::CoinProofs(query, reply) => {
                self.lookup_seq += 1;
                let lookup = self.lookup_seq;
                self.lookups.insert(lookup, reply);
                self.run_engine(crate::net::proto::engine::Input::CoinProofs { lookup, query });
            }
        }
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Feed the protocol engine one input (it asks the chain through [`ChainSink`], at once)
    /// and hand what it asks of the network to the driver.
    ///
    /// [`ChainSink`]: crate::net::proto::chain::ChainSink
    fn run_engine(&mut self, input: crate::net::proto::engine::Input) {
        let Some(mut engine) = self.engine.take() else { return };
        let now = self.clock.moment();
        engine.handle(now, input, self);
        // What the chain announced meanwhile (a block or transaction it took) goes out too.
        while let Some(a) = self.announces.as_mut().filter(|a| !a.is_empty()).map(std::mem::take) {
            for (id, block) in a {
                engine.handle(now, crate::net::proto::engine::Input::Announce { id, block }, self);
            }
        }
        let out: Vec<_> = std::iter::from_fn(|| engine.poll()).collect();
        let bans = engine.bans();
        self.engine = Some(engine);
        if let Some(net) = &self.net {
            net.set_ban_count(bans);
        }
        for o in out {
            match o {
                crate::net::proto::engine::Output::CoinProofs { lookup, result } => {
                    if let Some(reply) = self.lookups.remove(&lookup) {
                        let _ = reply.send(result);
                    }
                }
                o => match (&mut self.outbox, &self.net) {
                    (Some(outbox), _) => outbox.push(o),
                    (None, Some(net)) => net.carry_out(o),
                    (None, None) => {}
                },
            }
        }
        // A peer on our chain (its claim, or our chain now reaching it) lets mining start.
        if !self.synced && self.sync_gate() {
            self.refresh_template();
        }
    }

    /// Have the engine announce a new tip (`block`) or a transaction to peers: handed to it
    /// after the current input, or after the current command ([`Actor::flush_announces`]).
    fn announce(&mut self, id: Hash, block: bool) {
        if let Some(a) = self.announces.as_mut() {
            a.push((id, block));
        }
    }

    /// Hand the engine what was announced outside an engine input (a block we mined, a
    /// transaction of ours).
    fn flush_announces(&mut self) {
        let first = self.announces.as_mut().and_then(|a| (!a.is_empty()).then(|| a.remove(0)));
        if let Some((id, block)) = first {
            self.run_engine(crate::net::proto::engine::Input::Announce { id, block });
        }
    }

    /// [`Actor::flush_announces`], then whether the node goes on (a storage failure met
    /// meanwhile stops it, raised as [`Event::Fatal`]).
    fn flushed(&mut self) -> bool {
        self.flush_announces();
        match self.fatal.take() {
            Some(e) => {
                self.emit(Event::Fatal { reason: e.to_string() });
                false
            }
            None => true,
        }
    }

    /// A sync step's failure as the protocol sees it: a storage failure is ours (raised as
    /// fatal, the node stops; but a disk the candidate's staging filled only drops the sync,
    /// see [`Actor::staging_full`]), anything else the peer's.
    fn sync_fault(&mut self, e: NodeError) -> SyncFault {
        match e {
            NodeError::Store(StoreError::DiskFull(m)) => {
                self.staging_full(&m);
                SyncFault::Ours(format!("the disk is full: {m}"))
            }
            NodeError::Store(e) => {
                let f = SyncFault::Ours(e.to_string());
                self.candidate = None;
                self.fatal = Some(NodeError::Store(e));
                f
            }
            e => SyncFault::Invalid(e.to_string()),
        }
    }

    /// The disk filled while a candidate was staged or adopted: the candidate and its staged
    /// blocks go (a peer offering a long chain of large blocks must not stop the node by
    /// filling the disk with it); our chain is untouched. A disk full for our own chain stops
    /// the node at its next commit, as ever.
    fn staging_full(&mut self, m: &str) {
        tracing::warn!("a sync was dropped: the disk is full ({m})");
        self.candidate = None;
        if let Err(e) = self.store.stage_drop(self.conflict.as_ref().map(|c| c.gen)) {
            self.fatal = Some(e.into());
        }
    }

    /// Start a sync from a peer's cascade: verify it end to end (every cascade level
    /// recomputed, links, proof of work, ending at our genesis; the root a valid block whose
    /// peaks give its MMR root) and hold it as a candidate. Our chain is untouched.
    fn sync_begin(
        &mut self,
        m: crate::net::message::Message,
    ) -> Result<crate::net::peer::SyncStart, NodeError> {
        let crate::net::message::Message::Cascade { headers, root, root_peaks } = m else {
            return Err(ChainError::Cascade("not a cascade").into());
        };
        self.candidate = None;
        // Staged blocks of an earlier candidate go (those of a held conflict stay).
        self.store.stage_drop(self.conflict.as_ref().map(|c| c.gen))?;
        let genesis = self.chain.genesis_id();
        let chain = if headers.is_empty() && root.txpow.id() == genesis {
            // A chain still shorter than the tree: its root is our genesis.
            Chain::new(self.params.clone())?
        } else {
            let cascade = Cascade::verify(headers, &self.params, &genesis)?;
            if !crate::chain::validate::check_txpow(&self.params, &root.txpow)?.is_block {
                return Err(ChainError::NotABlock.into());
            }
            Chain::from_parts(self.params.clone(), cascade, root.txpow, root.witness, root_peaks)?
        };
        let start = crate::net::peer::SyncStart {
            root: chain.root().id,
            proven: chain.weight(),
            ours: self.chain.weight(),
            max_blocks: sync_cap(&self.params),
        };
        self.stage_gen = self.stage_gen.wrapping_add(1);
        let gen = self.stage_gen;
        let mut chain = chain;
        {
            let r = chain.root();
            let x = r.hot_extra().ok_or(ChainError::BlockDataMissing(r.id))?;
            // Only what the root lists (the peer sends the rest for nothing).
            let ids: std::collections::HashSet<&Hash> = r.txpow.body.txpow_ids.iter().collect();
            let listed: Vec<(&TxPoW, u64)> =
                root.listed.iter().filter(|t| ids.contains(&t.id())).map(|t| (t, r.number())).collect();
            self.store.stage(gen, &[(r, &x.witness)], &listed, &[])?;
        }
        chain.set_cold(self.store.staging_reader(gen)?);
        self.candidate = Some(Candidate { chain, gen, blocks: 0 });
        Ok(start)
    }

    /// Validate tree blocks into the candidate chain (full checks: PoW, witness, scripts).
    fn sync_blocks(
        &mut self,
        blocks: Vec<crate::net::message::BlockData>,
        target: u64,
    ) -> Result<(), NodeError> {
        let c = self.candidate.as_mut().ok_or(NodeError::Net("no sync in progress".into()))?;
        let cap = sync_cap(&self.params);
        c.blocks = c.blocks.saturating_add(blocks.len() as u64);
        if c.blocks > cap {
            self.candidate = None;
            return Err(NodeError::Net(format!("a sync candidate past {cap} blocks")));
        }
        let staged = c.chain.cold().cloned();
        for b in blocks {
            let id = b.txpow.id();
            let given: HashMap<Hash, TxPoW> = b.listed.into_iter().map(|t| (t.id(), t)).collect();
            let src = Src { a: staged.as_deref(), b: &given, m: &Mempool::new(0), store: None };
            let (pruned, dropped) = match c.chain.add_block(b.txpow, b.witness, &src) {
                Ok(AddOutcome::Added { pruned, dropped, .. }) => (pruned, dropped),
                Ok(AddOutcome::Known) => continue,
                Ok(AddOutcome::Pending { missing }) => {
                    self.candidate = None;
                    return Err(NodeError::Net(format!("a block lists {} TxPoWs not sent", missing.len())));
                }
                Err(e) => {
                    self.candidate = None;
                    return Err(e.into());
                }
            };
            // Staged at once, with what left the candidate's tree (pruned into its cascade,
            // or dropped with a side branch): a batch's witnesses, deltas and listed TxPoWs
            // are never all in memory together.
            let removed: Vec<Hash> = pruned.into_iter().chain(dropped).filter(|r| *r != id).collect();
            match c.chain.block(&id) {
                Some(tb) => {
                    let x = tb.hot_extra().ok_or(ChainError::BlockDataMissing(id))?;
                    let listed: Vec<(&TxPoW, u64)> = tb
                        .txpow
                        .body
                        .txpow_ids
                        .iter()
                        .filter_map(|l| given.get(l).map(|t| (t, tb.number())))
                        .collect();
                    self.store.stage(c.gen, &[(tb, &x.witness)], &listed, &removed)?;
                }
                None => self.store.stage(c.gen, &[], &[], &removed)?,
            }
            // Only the tip's witness and delta stay in memory (the next block is checked
            // against its parent's peaks, which every tree block keeps; anything older is
            // read back from the staging tables).
            c.chain.spill(0);
        }
        release_freed_memory();
        let height = c.chain.tip().number();
        self.emit(Event::SyncProgress { height, target });
        Ok(())
    }

    /// Finish a sync: adopt the candidate if it is heavier than our chain, not lighter than
    /// `min_chain_weight`, holds the `checkpoint`, and forks from our chain inside our tree.
    /// A heavier chain forking below our root is refused and counted per /16 group; from two
    /// groups it is raised as [`Event::ChainConflict`].
    fn sync_end(&mut self, group: Vec<u8>) -> Result<crate::net::peer::SyncOutcome, NodeError> {
        use crate::net::peer::SyncOutcome;
        let Some(c) = self.candidate.take() else {
            return Ok(SyncOutcome::Refused("no sync in progress".into()));
        };
        let w = c.chain.weight();
        if w <= self.chain.weight() {
            return Ok(SyncOutcome::NotHeavier);
        }
        let (tip_time, now) = (c.chain.tip().txpow.header.time_ms, self.clock.now_ms());
        if self.future.is_ahead(tip_time, now) {
            // SPEC §5's clock policy: not now, and not the peer's fault; a later sync retries.
            let s = tip_time.saturating_sub(now) / 1_000;
            return Ok(SyncOutcome::Refused(format!("its tip is dated {s} s ahead of our clock")));
        }
        if w < self.params.min_chain_weight {
            return Ok(SyncOutcome::Refused("chain lighter than min_chain_weight".into()));
        }
        if let Some((h, id)) = self.params.checkpoint {
            if !holds_checkpoint(&c.chain, h, &id) {
                return Ok(SyncOutcome::Refused(format!("chain lacks the checkpoint at height {h}")));
            }
        }
        if self.full_mmr {
            // A full coin set cannot be rebuilt from a cascade.
            return Ok(SyncOutcome::Refused("a full_mmr node does not restart from a cascade".into()));
        }
        if !forks_in_tree(&self.chain, &c.chain) && !self.anchored() {
            // Not anchored yet (a fresh node, or one that mined alone): the heavier verified
            // chain wins.
            tracing::info!("a heavier chain forking below our tree replaces ours (not anchored yet)");
            if !self.adopt(c)? {
                return Ok(SyncOutcome::Refused("the disk is too full to adopt it".into()));
            }
            // The groups that vouched for the chain we left vouch for nothing now.
            self.anchor_groups.clear();
            self.anchor_groups.insert(group);
            return Ok(SyncOutcome::Adopted);
        }
        if !forks_in_tree(&self.chain, &c.chain) {
            self.conflict_groups.insert(group);
            let t = c.chain.tip();
            let (height, tip) = (t.number(), t.id.to_hex());
            // Repeats count for one conflicting chain: the held one, or one extending it.
            let same = self.conflict.as_ref().is_some_and(|old| c.chain.knows(&old.chain.tip_id()));
            self.conflict_repeats = if same { self.conflict_repeats.saturating_add(1) } else { 1 };
            let heavier = self.conflict.as_ref().is_none_or(|old| old.chain.weight() < w);
            if heavier {
                if !same {
                    // What the host was told about is not what is held any more.
                    self.conflict_raised = false;
                }
                self.conflict = Some(c);
            }
            // Surfaced to the host, not retried in silence: from two groups (SPEC §5), or once
            // the same chain keeps coming back (the event says from how many groups: the host
            // decides whether one is enough).
            let raise = self.conflict_groups.len() >= 2 || self.conflict_repeats >= CONFLICT_REPEATS;
            if raise && (heavier || !self.conflict_raised) {
                tracing::warn!(height, "a heavier chain forking below our tree root keeps being offered");
                let groups = self.conflict_groups.len();
                self.emit(Event::ChainConflict { height, tip, weight: w.to_string(), groups });
            }
            self.conflict_raised |= raise;
            return Ok(SyncOutcome::Conflict);
        }
        if !self.adopt(c)? {
            return Ok(SyncOutcome::Refused("the disk is too full to adopt it".into()));
        }
        self.anchor_groups.insert(group);
        Ok(SyncOutcome::Adopted)
    }

    /// Replace our chain by a verified candidate, atomically in the store. The peer table,
    /// node key and other non-chain data stay; the mempool keeps what still checks. `false`:
    /// the disk was too full to copy the candidate in; nothing changed and it is dropped.
    fn adopt(&mut self, c: Candidate) -> Result<bool, NodeError> {
        let r = c.chain.root();
        match self.store.adopt_staged(c.gen, c.chain.cascade(), &r.id, &r.peaks, &c.chain.tip_id()) {
            Ok(()) => {}
            // Copying the staged chain filled the disk: the transaction rolled back, our chain
            // is as it was, and the candidate goes (see `staging_full`). A disk full for what
            // follows (our own chain's writes) is fatal, as ever.
            Err(StoreError::DiskFull(m)) => {
                self.staging_full(&m);
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        let max = self.mempool.max_bytes();
        let old = std::mem::replace(&mut self.mempool, Mempool::new(max));
        self.chain = c.chain;
        self.chain.set_cold(self.store.cold_reader()?);
        self.chain.spill(self.hot_blocks);
        let mut kept: Vec<(TxPoW, Vec<(u64, MmrProof)>)> = vec![];
        for e in old.entries() {
            if let Some(p) = self.refreshed(e) {
                let mut e = e.clone();
                e.proofs = p.clone();
                let t = e.txpow.clone();
                if self.mempool.insert(e, self.clock.now_ms()).is_ok() {
                    kept.push((t, p));
                }
            }
        }
        // An entry a later one evicted is not stored.
        kept.retain(|(t, _)| self.mempool.get_by_id(&t.id()).is_some());
        if !kept.is_empty() {
            self.store.commit(&BlockCommit {
                tip: self.chain.tip_id(),
                mempool_added: kept.iter().map(|(t, p)| (t, p.as_slice())).collect(),
                ..Default::default()
            })?;
        }
        self.conflict = None;
        self.conflict_groups.clear();
        self.conflict_repeats = 0;
        self.conflict_raised = false;
        // Blocks held as orphans whose parent the new chain holds join it now.
        for b in self.orphans.release(|t| !self.chain.is_orphan(t)) {
            let r = self.take(b)?;
            if r != crate::net::peer::Submitted::Accepted {
                tracing::info!("an orphan block, its parent now here, was not taken: {r:?}");
            }
        }
        self.wallet_rescan_tree()?;
        self.wallet_recover_after_resync();
        let t = self.chain.tip();
        let (height, id) = (t.number(), t.id);
        self.emit(Event::NewTip { height, tip: id.to_hex() });
        self.announce(id, true);
        self.refresh_template();
        Ok(true)
    }

    /// A peer's block: held if dated too far ahead of our clock (SPEC §5) or if its parent
    /// is missing (an orphan), else offered to the chain. Blocks are held only once every
    /// check of their own form passed (proof of work at least the minimum, size, magic): junk
    /// costs its sender the work and a ban, never our memory. Only storage failures are
    /// errors.
    fn offer(&mut self, b: crate::net::message::BlockData) -> Result<crate::net::peer::Submitted, NodeError> {
        use crate::net::peer::Submitted;
        let ahead = self.future.is_ahead(b.txpow.header.time_ms, self.clock.now_ms());
        if ahead || self.chain.is_orphan(&b.txpow) {
            match crate::chain::validate::check_txpow_form(&self.params, &b.txpow) {
                Ok(info) if info.is_block => {}
                Ok(_) => return Ok(Submitted::Invalid(ChainError::NotABlock.to_string())),
                Err(e) => return Ok(Submitted::Invalid(e.to_string())),
            }
            // Only what the block lists is kept with it, and no more than a block may hold.
            let mut b = b;
            let ids: std::collections::HashSet<Hash> = b.txpow.body.txpow_ids.iter().copied().collect();
            b.listed.retain(|t| ids.contains(&t.id()));
            let (id, size) = (b.txpow.id(), crate::codec::Encode::encode(&b).len());
            // Its TxPoW and listed ones may take `max_block_bytes`, its MMR witness as much
            // again: anything larger is not held (not the sender's fault as such: the listed
            // TxPoWs sent with a block are not what its id commits to).
            let fits = size <= (self.params.magic.max_block_bytes as usize).saturating_mul(2);
            return Ok(if ahead {
                if fits && self.future.hold(id, size, b) {
                    let held = self.future.len();
                    tracing::info!(id = %id.to_hex(), held, "a block dated too far ahead of our clock waits");
                }
                Submitted::Future
            } else {
                if fits && self.orphans.add(id, size, b) {
                    tracing::debug!(id = %id.to_hex(), held = self.orphans.len(), "orphan block kept");
                }
                Submitted::UnknownParent
            });
        }
        let added = self.on_block(b.txpow, b.witness, b.listed);
        #[cfg(feature = "test-hooks")]
        let added = match std::mem::take(&mut self.corrupt_next) {
            true => Err(NodeError::Corrupt("injected by a test".into())),
            false => added,
        };
        Ok(match added {
            Ok(AddOutcome::Added { .. }) | Ok(AddOutcome::Known) => Submitted::Accepted,
            Ok(AddOutcome::Pending { missing }) => Submitted::Pending(missing),
            Err(NodeError::Invalid(ChainError::UnknownParent(_))) => Submitted::UnknownParent,
            Err(NodeError::Invalid(ChainError::BelowRoot)) => Submitted::Stale,
            Err(e @ NodeError::Store(_)) => return Err(e),
            // Our own state failed, not the sender: no blame.
            Err(NodeError::Corrupt(e)) => {
                tracing::error!("a peer's block hit a fault in our own state: {e}");
                Submitted::Stale
            }
            Err(e) => Submitted::Invalid(e.to_string()),
        })
    }

    /// [`Actor::offer`], then, once the block is in, the orphans that waited for it (and
    /// theirs in turn). An orphan refused now is logged: its sender is not known any more.
    fn take(&mut self, b: crate::net::message::BlockData) -> Result<crate::net::peer::Submitted, NodeError> {
        use crate::net::peer::Submitted;
        let id = b.txpow.id();
        let r = self.offer(b)?;
        if r == Submitted::Accepted {
            let mut ready = self.orphans.children_of(&id);
            while let Some(c) = ready.pop() {
                let cid = c.txpow.id();
                match self.offer(c)? {
                    Submitted::Accepted => ready.extend(self.orphans.children_of(&cid)),
                    other => tracing::info!("an orphan block, its parent now here, was not taken: {other:?}"),
                }
            }
        }
        Ok(r)
    }

    /// Offer the held blocks that are now due to the chain (one whose parent is missing
    /// becomes an orphan; a refusal now is logged: its sender is not known any more).
    fn retry_future(&mut self) -> Result<(), NodeError> {
        for b in self.future.due(self.clock.now_ms()) {
            let r = self.take(b)?;
            if r != crate::net::peer::Submitted::Accepted {
                tracing::info!("a held block, now due, was not taken: {r:?}");
            }
        }
        Ok(())
    }

    /// Keep a peer's transaction whose proofs name block `block`, which we lack, to try it
    /// again when the block arrives (at most [`MAX_PARKED`], the oldest dropped first).
    fn park(&mut self, block: Hash, txpow: TxPoW, proofs: Vec<(u64, MmrProof)>) {
        if self.chain.knows(&block) {
            return;
        }
        let id = txpow.id();
        if self.parked.iter().any(|(_, t, _)| t.id() == id) {
            return;
        }
        if self.parked.len() >= MAX_PARKED {
            self.parked.pop_front();
        }
        self.parked.push_back((block, txpow, proofs));
    }

    /// Try again the parked transactions whose proofs name block `id`, now in the tree.
    fn unpark(&mut self, id: &Hash) -> Result<(), NodeError> {
        if !self.parked.iter().any(|(b, _, _)| b == id) {
            return Ok(());
        }
        let (now, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.parked).into_iter().partition(|(b, _, _)| b == id);
        self.parked = rest.into();
        for (_, t, p) in now {
            // Other refusals were raised as events by `on_txpow`; only storage stops us.
            if let Err(e @ NodeError::Store(_)) = self.on_txpow(t, p) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// A TxPoW listed by a tree block: the block being added, else the store.
    fn listed_txpow(&self, id: &Hash) -> Option<TxPoW> {
        self.fresh.get(id).cloned().or_else(|| match self.store.txpow(id) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reading a listed TxPoW failed");
                None
            }
        })
    }

    /// An entry's proofs carried to the tip from any tree block, a side branch's included
    /// (`None` for an input not unspent on the best chain), and whether an input is spent on
    /// the best chain.
    fn carried(&self, e: &Entry) -> (Vec<Option<(u64, MmrProof)>>, bool) {
        let recs: Vec<CoinRecord> = e
            .txpow
            .body
            .transaction
            .inputs
            .iter()
            .zip(&e.proofs)
            .map(|(c, (created, _))| CoinRecord { coin: c.clone(), created: *created })
            .collect();
        let pairs: Vec<(&CoinRecord, &MmrProof)> = recs.iter().zip(e.proofs.iter().map(|(_, p)| p)).collect();
        let fates = self.chain.coin_fates(&pairs);
        let spent = fates.iter().any(|f| matches!(f, crate::chain::CoinFate::Spent { .. }));
        let proofs = fates
            .into_iter()
            .zip(&recs)
            .map(|(f, r)| match f {
                crate::chain::CoinFate::Unspent(p) => Some((r.created, p)),
                _ => None,
            })
            .collect();
        (proofs, spent)
    }

    fn refreshed(&self, e: &Entry) -> Option<Vec<(u64, MmrProof)>> {
        crate::miner::template::carried(&self.chain, e)
    }

    /// Whether we have synced with a peer — we hold the tip a connected peer announced, and
    /// our weight reaches its claim — or have none configured: until then we do not mine.
    /// Checked on every handshake and block whether or not we mine (it also starts the
    /// anchoring clock); once true it stays true (a peer claiming a huge weight cannot stop
    /// us later).
    fn sync_gate(&mut self) -> bool {
        if !self.synced {
            let ours = self.chain.weight();
            let claims = self.engine.as_ref().map(|e| e.claims()).unwrap_or_default();
            if claims.iter().any(|(tip, claim)| *claim <= ours && self.chain.knows(tip)) {
                tracing::info!("synced with a peer: mining may start");
                self.synced = true;
                self.synced_at = Some(self.clock.now_ms());
            }
        }
        self.synced
    }

    /// Whether our chain is anchored: verified by peers in two /16 groups and an hour past
    /// the first sync. Until then a heavier verified chain wins even if it forks below our
    /// tree root (it may be one we only mined ourselves).
    fn anchored(&self) -> bool {
        self.anchor_groups.len() >= 2
            && self.synced_at.is_some_and(|t| {
                self.clock.now_ms().saturating_sub(t) >= self.anchor_after.as_millis() as u64
            })
    }

    /// Build a pulse on the tip listing the best mempool transactions and hand it to the miner.
    fn refresh_template(&mut self) {
        let Some(miner) = self.miner.clone() else { return };
        if !self.mining_on {
            return;
        }
        if !self.sync_gate() {
            self.template = None;
            miner.set_job(None);
            return;
        }
        match self.build_template() {
            Ok((header, t)) => {
                // A pulse mines its remaining hashes at full speed on the low-priority thread.
                let (duty, max_hashes) = if self.pulses {
                    match self.energy.pulse_end {
                        Some(end) if miner.hashes() < end => (1.0, Some(end - miner.hashes())),
                        _ => {
                            self.energy.pulse_end = None;
                            self.template = None;
                            miner.set_job(None);
                            return;
                        }
                    }
                } else {
                    (self.duty, None)
                };
                let target = header.block_target;
                self.tag += 1;
                let tag = self.tag;
                #[cfg(feature = "test-hooks")]
                let t = self.spoiled(t);
                self.template = Some(Template { tag, ..t });
                miner.set_job(Some(Job { header, target, duty, max_hashes, tag }));
            }
            Err(e) => {
                tracing::warn!("cannot build a block template: {e}");
                miner.set_job(None);
            }
        }
    }

    /// See [`Node::spoil_next_template`].
    #[cfg(feature = "test-hooks")]
    fn spoiled(&mut self, mut t: Template) -> Template {
        if self.spoil_next {
            if let Some(w) = t.witness.inputs.first_mut() {
                w.leaf_index ^= 1;
            }
        }
        t
    }

    fn build_template(&mut self) -> Result<(TxHeader, Template), NodeError> {
        let mut prng = [0u8; 32];
        prng.copy_from_slice(
            &sha3(
                &[&self.clock.now_ms().to_be_bytes()[..], &self.tag.to_be_bytes(), &self.salt.to_be_bytes()]
                    .concat(),
            )
            .0,
        );
        let t = {
            let ranked = self.mempool.ranked();
            crate::miner::template::build(&self.chain, &ranked, self.clock.now_ms(), prng)?
        };
        for (txid, proofs) in t.refreshed {
            self.mempool.set_proofs(&txid, proofs);
        }
        for (txid, sigops, ops) in t.rejudged {
            self.mempool.set_cost(&txid, sigops, ops);
        }
        self.evict(&t.invalid)?;
        Ok((t.header, Template { tag: 0, body: t.body, witness: t.witness, listed: t.listed }))
    }

    /// Drop mempool entries (by txid) that can no longer go into a block, in the store too.
    fn evict(&mut self, txids: &[Hash]) -> Result<(), NodeError> {
        let removed: Vec<Hash> =
            txids.iter().filter_map(|t| self.mempool.remove_txid(t)).map(|e| e.id).collect();
        if removed.is_empty() {
            return Ok(());
        }
        tracing::debug!(n = removed.len(), "mempool entries no longer valid for the next block evicted");
        self.store.commit(&BlockCommit {
            tip: self.chain.tip_id(),
            mempool_removed: removed,
            ..Default::default()
        })?;
        Ok(())
    }
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    use super::*;
    use crate::chain::cascade::CascadeEntry;
    use crate::fixture::ChainBuilder;

    /// A cascade header's unchecked `parents` slots cannot make a chain look as if it forked
    /// inside our tree or held a checkpoint: only checked links count.
    #[test]
    fn only_checked_links_vouch_for_an_id() {
        let mut base = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 400);
        base.tx_per_block = false;
        let mut ours = base.clone().with_salt(1);
        ours.mine(100);
        let mut theirs = base.clone().with_salt(2);
        theirs.mine(150);
        let ours = &ours.chain;
        let honest = theirs.chain.clone();
        assert!(!forks_in_tree(ours, &honest), "a chain forking at genesis");
        let target = ours.tip_id();
        // Write one of our tree ids into an unchecked slot of an old cascade header.
        let mut entries: Vec<CascadeEntry> = honest.cascade().entries().to_vec();
        let i = entries.len() / 2;
        let slot = entries[i].level as usize + 3;
        entries[i].header.parents.0[slot] = target;
        let root = honest.root();
        let forged = Chain::from_parts(
            honest.params().clone(),
            Cascade::from_entries(entries),
            root.txpow.clone(),
            honest.extra(&root.id).map(|x| x.witness.clone()).unwrap_or_default(),
            root.peaks.clone(),
        )
        .unwrap();
        assert!(!forks_in_tree(ours, &forged), "a forged slot is not a fork inside our tree");
        assert!(!holds_checkpoint(&forged, ours.tip().number(), &target), "nor a checkpoint");
        // Real links do count: a chain built on our tree forks inside it.
        assert!(holds_checkpoint(&honest, 50, &honest.best_path()[10]));
        let mut ext = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 400);
        ext.tx_per_block = false;
        ext.mine(100);
        let mut longer = ext.clone();
        longer.mine(5);
        assert!(forks_in_tree(&ext.chain, &longer.chain));
    }
}
