//! # minima-ffi
//!
//! The uniffi facade of `minima-core` for phone apps: nothing but translation — every call
//! goes to [`minima_core::node::Node`]. Kotlin (Android, JVM) and Swift (iOS) bindings are
//! generated from this crate's library with its `uniffi-bindgen` binary.
//!
//! Lifecycle: [`MinimaNode::new`] is a plain constructor (it only checks the config);
//! [`MinimaNode::start`] opens the data dir and runs the node; [`MinimaNode::suspend`] stops it
//! (flushes, checkpoints the WAL, closes sockets and the database — iOS kills a suspended app
//! that holds a database lock) and [`MinimaNode::resume`] starts it again with the same
//! config; [`MinimaNode::stop`] ends it. Event listeners survive suspend/resume. Errors are
//! [`MinimaError`] variants with a message; panics never cross the FFI (uniffi catches them
//! and they become errors in the foreign language).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minima_core::energy::{EnergyConfig, NetworkType, PowerState};
use minima_core::net::peer::NetConfig;
use minima_core::node::{Config, Event, Mining, Node, NodeError, WalletSecret};
use minima_core::wallet::{Seed, WalletError};
use minima_core::Params;
use zeroize::{Zeroize, Zeroizing};

uniffi::setup_scaffolding!();

/// Errors, each with a human message.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum MinimaError {
    /// The configuration cannot be used.
    #[error("{detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// Malformed address, checksum error, or an address of another network.
    #[error("{detail}")]
    InvalidAddress {
        /// Details.
        detail: String,
    },
    /// An amount of zero or an unreadable amount.
    #[error("{detail}")]
    InvalidAmount {
        /// Details.
        detail: String,
    },
    /// Not enough sendable coins.
    #[error("{detail}")]
    InsufficientFunds {
        /// Details.
        detail: String,
    },
    /// The payment needs more inputs or signatures than one TxPoW holds.
    #[error("{detail}")]
    TxTooLarge {
        /// Details.
        detail: String,
    },
    /// The passphrase does not open the sealed seed.
    #[error("{detail}")]
    WrongPassphrase {
        /// Details.
        detail: String,
    },
    /// A seed phrase that is not 24 valid BIP39 words.
    #[error("{detail}")]
    InvalidSeedPhrase {
        /// Details.
        detail: String,
    },
    /// No wallet is open, or one already exists, or it belongs to another seed.
    #[error("{detail}")]
    Wallet {
        /// Details.
        detail: String,
    },
    /// The node is not running (call `start` or `resume`).
    #[error("{detail}")]
    NotRunning {
        /// Details.
        detail: String,
    },
    /// Another node holds the data dir.
    #[error("{detail}")]
    Locked {
        /// Details.
        detail: String,
    },
    /// Networking failed or is off.
    #[error("{detail}")]
    Network {
        /// Details.
        detail: String,
    },
    /// Storage failed (disk full, corrupt database).
    #[error("{detail}")]
    Storage {
        /// Details.
        detail: String,
    },
    /// Anything else the node refused.
    #[error("{detail}")]
    Refused {
        /// Details.
        detail: String,
    },
}

impl From<NodeError> for MinimaError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::Wallet(w) => match w {
                WalletError::Address(_) => MinimaError::InvalidAddress { detail: message },
                WalletError::ZeroAmount | WalletError::BadAmount(_) | WalletError::AmountOverflow => {
                    MinimaError::InvalidAmount { detail: message }
                }
                WalletError::InsufficientFunds { .. } => MinimaError::InsufficientFunds { detail: message },
                WalletError::TxTooLarge { .. } | WalletError::TooManyOutputs(_) => {
                    MinimaError::TxTooLarge { detail: message }
                }
                WalletError::WrongPassphrase => MinimaError::WrongPassphrase { detail: message },
                _ => MinimaError::Wallet { detail: message },
            },
            NodeError::Stopped => MinimaError::NotRunning { detail: message },
            NodeError::Locked(_) | NodeError::NotADataDir(_) => MinimaError::Locked { detail: message },
            NodeError::Net(_) => MinimaError::Network { detail: message },
            NodeError::Store(_) | NodeError::Corrupt(_) | NodeError::Io { .. } => {
                MinimaError::Storage { detail: message }
            }
            NodeError::Params(_) | NodeError::Runtime(_) => MinimaError::Config { detail: message },
            _ => MinimaError::Refused { detail: message },
        }
    }
}

/// The network a phone is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NetworkKind {
    /// Wi-Fi (or wired).
    Wifi,
    /// Cellular (metered).
    Cellular,
    /// No network.
    None,
}

impl From<NetworkKind> for NetworkType {
    fn from(n: NetworkKind) -> Self {
        match n {
            NetworkKind::Wifi => NetworkType::Wifi,
            NetworkKind::Cellular => NetworkType::Cellular,
            NetworkKind::None => NetworkType::None,
        }
    }
}

/// A secret the host hands the node: the wallet's seed phrase, or the passphrase that opens
/// the seed sealed in the data dir. An object, not a string, so that nothing prints it: a
/// Kotlin data class's `toString`, a Swift struct's `description` and Rust's `Debug` of a
/// [`NodeConfig`] show only `Secret`. The Rust copy is wiped when the last reference goes.
#[derive(uniffi::Object)]
pub struct Secret(Zeroizing<String>);

#[uniffi::export]
impl Secret {
    /// Wrap a seed phrase or passphrase.
    #[uniffi::constructor]
    pub fn new(value: String) -> Arc<Secret> {
        Arc::new(Secret(Zeroizing::new(value)))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How a node is set up. Its secrets are [`Secret`] objects, so printing a config never
/// shows them.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeConfig {
    /// Data directory (Android `filesDir`, iOS Application Support).
    pub data_dir: String,
    /// `main`, `test` or `devnet`.
    pub network: String,
    /// Devnet only: make a new genesis in this data dir (the network's first node).
    pub new_devnet_genesis: bool,
    /// Devnet only: the `.genesis` file of the network's first node, copied in at start.
    pub devnet_genesis_file: Option<String>,
    /// UDP address to accept peers on (`None`: a client, as phones are).
    pub listen: Option<String>,
    /// Peers to dial (`ip:port`).
    pub peers: Vec<String>,
    /// Keep the whole coin set (servers).
    pub full_mmr: bool,
    /// A phone: pulses only if opted in, no connections in the background.
    pub phone: bool,
    /// The user turned pulses on.
    pub pulses_opt_in: bool,
    /// Devnet: mine continuously at this duty (a fraction of one core); `None`: pulses as the
    /// energy policy decides.
    pub devnet_duty: Option<f64>,
    /// The wallet's 24 words, if the host keeps the seed (Keystore/Keychain) and passes it
    /// at each start; the node then stores nothing secret.
    pub seed_phrase: Option<Arc<Secret>>,
    /// Or the passphrase (or host key) that opens the seed sealed in the data dir.
    pub passphrase: Option<Arc<Secret>>,
    /// Devnet: claim the genesis coin into the wallet.
    pub claim_genesis: bool,
}

/// A snapshot of the node.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeStatus {
    /// Network name.
    pub network: String,
    /// Tip height.
    pub height: u64,
    /// Tip id (hex).
    pub tip: String,
    /// Connected peers.
    pub peers: u32,
    /// Pending transactions.
    pub mempool: u32,
    /// Bytes of the data dir.
    pub storage_bytes: u64,
    /// UDP bytes received since start.
    pub bytes_in: u64,
    /// UDP bytes sent since start.
    pub bytes_out: u64,
    /// Whether the node holds peer connections now.
    pub online: bool,
    /// Seconds between pulses (`None`: no pulses).
    pub pulse_every_s: Option<u64>,
    /// Total unspent supply at the tip (base units).
    pub mmr_total: u64,
    /// The UDP address the node listens on, if it does.
    pub listen: Option<String>,
}

/// Wallet balance in base units (1 coin = 10^9).
#[derive(Debug, Clone, uniffi::Record)]
pub struct WalletBalance {
    /// Coins unspent at the tip.
    pub confirmed: u64,
    /// Outputs to the wallet in pending transactions (change included).
    pub unconfirmed: u64,
    /// Confirmed coins no pending payment spends.
    pub sendable: u64,
}

/// A sent payment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Payment {
    /// Transaction id (hex).
    pub txid: String,
    /// Encoded TxPoW bytes.
    pub bytes: u64,
    /// Time to sign (ms).
    pub sign_ms: f64,
    /// Time to mine its stamp (ms).
    pub mine_ms: f64,
}

/// A history entry.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HistoryItem {
    /// Transaction id (hex).
    pub txid: String,
    /// Base units received.
    pub received: u64,
    /// Base units of the wallet's coins spent.
    pub sent: u64,
    /// Burned.
    pub burn: u64,
    /// Confirming block (`None`: pending).
    pub block: Option<u64>,
}

/// A connected peer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerInfo {
    /// Its UDP address.
    pub address: String,
    /// Its node id (hex).
    pub node_id: String,
    /// It keeps the full coin set.
    pub full_mmr: bool,
}

/// What a `sync_once` run did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncReport {
    /// Tip height before.
    pub height_before: u64,
    /// Tip height after.
    pub height_after: u64,
    /// Reached the heaviest weight a peer claimed.
    pub caught_up: bool,
    /// A pulse ran.
    pub pulsed: bool,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Process CPU seconds.
    pub cpu_s: f64,
    /// Wall time (ms).
    pub duration_ms: u64,
    /// Stopped early by `cancel` or the budget.
    pub cancelled: bool,
}

/// One hour of the energy ledger.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnergyHour {
    /// Start of the hour (ms since the epoch).
    pub hour_ms: u64,
    /// Process CPU seconds.
    pub cpu_s: f64,
    /// Miner CPU seconds.
    pub miner_cpu_s: f64,
    /// Nonces tried.
    pub hashes: u64,
    /// Bytes in + out on Wi-Fi.
    pub bytes_wifi: u64,
    /// Bytes in + out on cellular.
    pub bytes_cellular: u64,
    /// Scheduled wake-ups.
    pub wakeups: u64,
    /// Estimated charge (mAh).
    pub mah: f64,
}

/// The energy ledger and the plan.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnergyReport {
    /// Hours, oldest first.
    pub hours: Vec<EnergyHour>,
    /// Estimated charge over them (mAh).
    pub total_mah: f64,
    /// Seconds between pulses (`None`: none).
    pub pulse_every_s: Option<u64>,
    /// Connections held.
    pub hold_connections: bool,
    /// How often a background host should call `sync_once` (seconds; `None`: not now).
    pub sync_every_s: Option<u64>,
}

/// What a restore scan found.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RestoreReport {
    /// Key indexes scanned.
    pub keys_scanned: u32,
    /// Coins found on a full-MMR peer.
    pub coins_found: u64,
    /// Confirmed balance after the scan.
    pub confirmed: u64,
}

/// Things that happened.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum NodeEvent {
    /// A new best tip.
    NewTip {
        /// Height.
        height: u64,
        /// Id (hex).
        tip: String,
    },
    /// The best chain switched branches.
    Reorg {
        /// Blocks that left.
        disconnected: u64,
        /// Blocks that joined.
        connected: u64,
    },
    /// A sync from a peer advanced.
    SyncProgress {
        /// Height reached.
        height: u64,
        /// Height the peer offers.
        target: u64,
    },
    /// A payment touched the wallet (pending when `block` is `None`): the balance changed.
    Payment {
        /// Transaction id (hex).
        txid: String,
        /// Base units received.
        received: u64,
        /// Base units spent.
        sent: u64,
        /// Confirming block.
        block: Option<u64>,
    },
    /// Peers offer a heavier chain forking below our tree.
    ChainConflict {
        /// Its height.
        height: u64,
    },
    /// A transaction or block was refused.
    Rejected {
        /// Its id (hex).
        id: String,
        /// Why.
        reason: String,
    },
    /// The node stopped on a fatal error.
    Error {
        /// Why.
        reason: String,
    },
}

fn event(e: Event) -> Option<NodeEvent> {
    Some(match e {
        Event::NewTip { height, tip } => NodeEvent::NewTip { height, tip },
        Event::Reorg { disconnected, connected } => {
            NodeEvent::Reorg { disconnected: disconnected as u64, connected: connected as u64 }
        }
        Event::SyncProgress { height, target } => NodeEvent::SyncProgress { height, target },
        Event::Payment { txid, received, sent, block } => NodeEvent::Payment { txid, received, sent, block },
        Event::ChainConflict { height, .. } => NodeEvent::ChainConflict { height },
        Event::TxPowRejected { id, reason } => NodeEvent::Rejected { id, reason },
        Event::Fatal { reason } => NodeEvent::Error { reason },
        Event::TxPowAccepted { .. } => return None,
    })
}

/// Receives the node's events (implemented in Kotlin or Swift).
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: NodeEvent);
}

/// Receives log lines (implemented in Kotlin or Swift).
#[uniffi::export(with_foreign)]
pub trait LogListener: Send + Sync {
    /// One line: level (`ERROR`…`TRACE`), target, message.
    fn on_log(&self, level: String, target: String, message: String);
}

/// A subscription; `cancel` ends it.
#[derive(uniffi::Object)]
pub struct Subscription {
    cancelled: Arc<AtomicBool>,
}

#[uniffi::export]
impl Subscription {
    /// Stop delivering events to this listener.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}

type Listeners = Arc<Mutex<Vec<(Arc<AtomicBool>, Arc<dyn EventListener>)>>>;

/// A node, as a phone app holds it.
#[derive(uniffi::Object)]
pub struct MinimaNode {
    config: Config,
    node: Mutex<Option<Arc<Node>>>,
    listeners: Listeners,
}

fn parse_addr(s: &str) -> Result<std::net::SocketAddr, MinimaError> {
    s.parse().map_err(|_| MinimaError::Config { detail: format!("'{s}' is not an ip:port address") })
}

fn build_config(c: &NodeConfig) -> Result<Config, MinimaError> {
    let mut p = Params::by_name(&c.network)
        .ok_or_else(|| MinimaError::Config { detail: format!("unknown network '{}'", c.network) })?;
    let dir = std::path::PathBuf::from(&c.data_dir);
    if p.name == "devnet" {
        if let Some(f) = &c.devnet_genesis_file {
            std::fs::create_dir_all(&dir).map_err(|e| MinimaError::Storage { detail: e.to_string() })?;
            std::fs::copy(f, dir.join(".genesis"))
                .map_err(|e| MinimaError::Config { detail: format!("genesis file {f}: {e}") })?;
        }
        match minima_core::node::stored_genesis(&dir) {
            Some(g) => {
                p.genesis.time_ms = g.time_ms;
                p.genesis.prng = g.prng;
            }
            None if c.new_devnet_genesis => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                p.genesis.time_ms = now;
                p.genesis.prng =
                    minima_core::crypto::sha3(&[&now.to_be_bytes()[..], c.data_dir.as_bytes()].concat()).0;
            }
            None => {
                return Err(MinimaError::Config {
                    detail: "devnet needs new_devnet_genesis or the first node's devnet_genesis_file".into(),
                })
            }
        }
    }
    let mut cfg = Config::new(&dir, p.clone());
    cfg.full_mmr = c.full_mmr;
    cfg.claim_genesis = c.claim_genesis;
    cfg.mining = match (p.continuous_mining, c.devnet_duty) {
        (true, Some(d)) if d > 0.0 && d <= 1.0 => Mining::Continuous { duty: d },
        (true, Some(d)) => return Err(MinimaError::Config { detail: format!("duty {d} is not in (0, 1]") }),
        _ => Mining::Pulses,
    };
    if c.phone {
        cfg.energy = EnergyConfig { pulses_opt_in: c.pulses_opt_in, ..EnergyConfig::phone() };
        // Until the host reports otherwise: a phone in the foreground on Wi-Fi, on battery.
        cfg.power =
            PowerState { charging: false, battery_pct: 100, network: NetworkType::Wifi, foreground: true };
    }
    let listen = c.listen.as_deref().map(parse_addr).transpose()?;
    let peers = c.peers.iter().map(|s| parse_addr(s)).collect::<Result<Vec<_>, _>>()?;
    cfg.net = Some(NetConfig { listen, peers, ..Default::default() });
    cfg.wallet = match (&c.seed_phrase, &c.passphrase) {
        (Some(words), _) => Some(WalletSecret::Seed(seed_of(&words.0)?)),
        (None, Some(pass)) if dir.join(minima_core::node::WALLET_FILE).exists() => {
            Some(WalletSecret::passphrase(pass.0.as_bytes().to_vec()))
        }
        _ => None,
    };
    Ok(cfg)
}

/// The seed of 24 words (no copy of it left behind).
fn seed_of(words: &str) -> Result<Seed, MinimaError> {
    let mut s = minima_core::crypto::phrase_to_seed(words.trim())
        .map_err(|e| MinimaError::InvalidSeedPhrase { detail: e.to_string() })?;
    let seed = Seed(s);
    s.zeroize();
    Ok(seed)
}

impl MinimaNode {
    fn running(&self) -> Result<Arc<Node>, MinimaError> {
        self.node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(MinimaError::NotRunning { detail: "the node is not running (start or resume it)".into() })
    }

    fn forward(&self, node: &Node) {
        let mut rx = node.subscribe();
        let listeners = self.listeners.clone();
        let _ = std::thread::Builder::new().name("minima-events".into()).spawn(move || {
            while let Ok(e) = rx.blocking_recv() {
                let Some(ev) = event(e) else { continue };
                let ls: Vec<Arc<dyn EventListener>> = {
                    let mut g = listeners.lock().unwrap_or_else(|e| e.into_inner());
                    g.retain(|(c, _)| !c.load(Ordering::SeqCst));
                    g.iter().map(|(_, l)| l.clone()).collect()
                };
                for l in ls {
                    l.on_event(ev.clone());
                }
            }
        });
    }
}

#[uniffi::export]
impl MinimaNode {
    /// Check a config; nothing runs until [`MinimaNode::start`].
    #[uniffi::constructor]
    pub fn new(config: NodeConfig) -> Result<Arc<MinimaNode>, MinimaError> {
        let config = build_config(&config)?;
        Ok(Arc::new(MinimaNode { config, node: Mutex::new(None), listeners: Arc::new(Mutex::new(vec![])) }))
    }

    /// Open the data dir and run the node (a no-op if it runs).
    pub fn start(&self) -> Result<(), MinimaError> {
        let mut g = self.node.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            return Ok(());
        }
        let node = Arc::new(Node::start(self.config.clone())?);
        self.forward(&node);
        *g = Some(node);
        Ok(())
    }

    /// Stop within `deadline_ms`: flush, checkpoint, close. `start` may run it again.
    pub fn stop(&self, deadline_ms: u64) -> Result<(), MinimaError> {
        let node = self.node.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(n) = node {
            n.stop(Duration::from_millis(deadline_ms))?;
        }
        Ok(())
    }

    /// Before the app is suspended: flush, checkpoint the WAL, close sockets and the
    /// database (no lock is held while suspended).
    pub fn suspend(&self) -> Result<(), MinimaError> {
        self.stop(5_000)
    }

    /// After `suspend`: open and run again.
    pub fn resume(&self) -> Result<(), MinimaError> {
        self.start()
    }

    /// One background sync within `budget_ms`: connect, catch up, announce pending
    /// transactions, pulse if allowed, persist, disconnect.
    pub fn sync_once(&self, budget_ms: u64) -> Result<SyncReport, MinimaError> {
        let r = self.running()?.sync_once(Duration::from_millis(budget_ms))?;
        Ok(SyncReport {
            height_before: r.height_before,
            height_after: r.height_after,
            caught_up: r.caught_up,
            pulsed: r.pulsed,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            cpu_s: r.cpu_s,
            duration_ms: r.duration_ms,
            cancelled: r.cancelled,
        })
    }

    /// Stop a running `sync_once` early (iOS expiration handler).
    pub fn cancel(&self) {
        if let Ok(n) = self.running() {
            n.cancel();
        }
    }

    /// Report the power state; the energy policy re-plans at once.
    pub fn set_power_state(
        &self,
        charging: bool,
        battery_pct: u8,
        network: NetworkKind,
        foreground: bool,
    ) -> Result<(), MinimaError> {
        let st =
            PowerState { charging, battery_pct: battery_pct.min(100), network: network.into(), foreground };
        Ok(self.running()?.set_power_state(st)?)
    }

    /// The network changed (Wi-Fi ↔ cellular): rebind the socket, connections migrate.
    pub fn network_changed(&self) -> Result<(), MinimaError> {
        Ok(self.running()?.network_changed()?)
    }

    /// A snapshot.
    pub fn status(&self) -> Result<NodeStatus, MinimaError> {
        let s = self.running()?.status()?;
        Ok(NodeStatus {
            network: s.network,
            height: s.height,
            tip: s.tip,
            peers: s.peers as u32,
            mempool: s.mempool as u32,
            storage_bytes: s.storage_bytes,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            online: s.online,
            pulse_every_s: s.pulse_every_s,
            mmr_total: s.mmr_total,
            listen: s.listen,
        })
    }

    /// The wallet's balance.
    pub fn balance(&self) -> Result<WalletBalance, MinimaError> {
        let b = self.running()?.wallet_balance()?;
        Ok(WalletBalance { confirmed: b.confirmed, unconfirmed: b.unconfirmed, sendable: b.sendable })
    }

    /// A receiving address (the first unused one, or with `fresh` a new key's).
    pub fn new_address(&self, fresh: bool) -> Result<String, MinimaError> {
        Ok(self.running()?.wallet_address(fresh)?)
    }

    /// Pay `amount` base units to `to`, burning `burn`.
    pub fn send(&self, to: String, amount: u64, burn: u64) -> Result<Payment, MinimaError> {
        let r = self.running()?.wallet_send(&to, amount, burn)?;
        Ok(Payment { txid: r.txid, bytes: r.bytes as u64, sign_ms: r.sign_ms, mine_ms: r.mine_ms })
    }

    /// The wallet's history, newest first.
    pub fn history(&self) -> Result<Vec<HistoryItem>, MinimaError> {
        Ok(self
            .running()?
            .wallet_history()?
            .into_iter()
            .map(|h| HistoryItem {
                txid: h.txid,
                received: h.received,
                sent: h.sent,
                burn: h.burn,
                block: h.block,
            })
            .collect())
    }

    /// Connected peers.
    pub fn peers(&self) -> Result<Vec<PeerInfo>, MinimaError> {
        Ok(self
            .running()?
            .peers()
            .into_iter()
            .map(|(a, id, _, full)| PeerInfo { address: a.to_string(), node_id: id.to_hex(), full_mmr: full })
            .collect())
    }

    /// Dial a peer (`ip:port`).
    pub fn add_peer(&self, address: String) -> Result<(), MinimaError> {
        Ok(self.running()?.add_peer(parse_addr(&address)?)?)
    }

    /// The energy ledger and the plan.
    pub fn energy_report(&self) -> Result<EnergyReport, MinimaError> {
        let r = self.running()?.energy_report()?;
        Ok(EnergyReport {
            hours: r
                .hours
                .iter()
                .map(|h| EnergyHour {
                    hour_ms: h.hour_ms,
                    cpu_s: h.cpu_s,
                    miner_cpu_s: h.miner_cpu_s,
                    hashes: h.hashes,
                    bytes_wifi: h.bytes_in_wifi + h.bytes_out_wifi,
                    bytes_cellular: h.bytes_in_cellular + h.bytes_out_cellular,
                    wakeups: h.wakeups,
                    mah: h.mah,
                })
                .collect(),
            total_mah: r.total_mah,
            pulse_every_s: r.plan.pulse_every.map(|d| d.as_secs()),
            hold_connections: r.plan.hold_connections,
            sync_every_s: r.plan.sync_every.map(|d| d.as_secs()),
        })
    }

    /// Events to `listener` until the returned subscription is cancelled.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) -> Arc<Subscription> {
        let cancelled = Arc::new(AtomicBool::new(false));
        self.listeners.lock().unwrap_or_else(|e| e.into_inner()).push((cancelled.clone(), listener));
        Arc::new(Subscription { cancelled })
    }

    /// Create the wallet from a new seed; answers its 24 words (show them to the user once).
    /// With a passphrase the node keeps the seed sealed; without, the host must keep the
    /// words and pass them as `seed_phrase` at each start.
    pub fn create_wallet(&self, passphrase: Option<String>) -> Result<String, MinimaError> {
        let passphrase = passphrase.map(Zeroizing::new);
        let seed = Seed::generate().map_err(|e| MinimaError::Wallet { detail: e.to_string() })?;
        let words = minima_core::crypto::seed_to_phrase(&seed.0);
        self.running()?.create_wallet(seed, passphrase.as_deref().map(|p| p.as_bytes()))?;
        Ok(words)
    }

    /// Look for the wallet's coins again on a full-MMR peer (after a restore made before the
    /// node had synced, or after sleeping longer than the tree).
    pub fn rescan(&self) -> Result<RestoreReport, MinimaError> {
        let r = self.running()?.wallet_rescan()?;
        Ok(RestoreReport {
            keys_scanned: r.keys_scanned,
            coins_found: r.coins_found as u64,
            confirmed: r.confirmed,
        })
    }

    /// Restore a wallet from its 24 words and find its coins on a full-MMR peer.
    pub fn restore_wallet(
        &self,
        words: String,
        passphrase: Option<String>,
    ) -> Result<RestoreReport, MinimaError> {
        let (words, passphrase) = (Zeroizing::new(words), passphrase.map(Zeroizing::new));
        let seed = seed_of(&words)?;
        let node = self.running()?;
        node.create_wallet(seed, passphrase.as_deref().map(|p| p.as_bytes()))?;
        let r = node.wallet_rescan()?;
        Ok(RestoreReport {
            keys_scanned: r.keys_scanned,
            coins_found: r.coins_found as u64,
            confirmed: r.confirmed,
        })
    }
}

static LOGGING: std::sync::OnceLock<()> = std::sync::OnceLock::new();

struct CallbackLayer(Arc<dyn LogListener>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CallbackLayer {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Msg(String);
        impl tracing::field::Visit for Msg {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                } else {
                    self.0.push_str(&format!(" {}={v:?}", f.name()));
                }
            }
        }
        let mut m = Msg(String::new());
        e.record(&mut m);
        let meta = e.metadata();
        self.0.on_log(meta.level().to_string(), meta.target().to_string(), m.0);
    }
}

/// Set up logging once per process (later calls do nothing): events at `level` and above
/// (`error`, `warn`, `info`, `debug`, `trace`) go to `listener` if given; on Android they
/// also reach logcat, on Apple platforms the unified log. Answers whether this call set it up.
#[uniffi::export]
pub fn init_logging(level: String, listener: Option<Arc<dyn LogListener>>) -> bool {
    let mut first = false;
    LOGGING.get_or_init(|| {
        first = true;
        use tracing_subscriber::layer::SubscriberExt;
        let filter = tracing_subscriber::EnvFilter::try_new(&level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let registry = tracing_subscriber::registry().with(filter).with(listener.map(CallbackLayer));
        let _ = tracing::subscriber::set_global_default(registry);
        platform_log();
    });
    first
}

#[cfg(target_os = "android")]
fn platform_log() {
    android_logger::init_once(
        android_logger::Config::default().with_max_level(log::LevelFilter::Info).with_tag("minima"),
    );
}

#[cfg(any(target_os = "ios", target_os = "macos"))]
fn platform_log() {
    let _ = oslog::OsLogger::new("org.minima.node").level_filter(log::LevelFilter::Info).init();
}

#[cfg(not(any(target_os = "android", target_os = "ios", target_os = "macos")))]
fn platform_log() {}

/// A fresh 24-word seed phrase (the host may keep it and pass it as `seed_phrase`, in a
/// [`Secret`]).
#[uniffi::export]
pub fn generate_seed_phrase() -> Result<String, MinimaError> {
    let s = Seed::generate().map_err(|e| MinimaError::Wallet { detail: e.to_string() })?;
    Ok(minima_core::crypto::seed_to_phrase(&s.0))
}

/// Parse an amount of coins (`10`, `0.5`) into base units.
#[uniffi::export]
pub fn parse_coins(amount: String) -> Result<u64, MinimaError> {
    minima_core::wallet::parse_coins(&amount)
        .map_err(|e| MinimaError::InvalidAmount { detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_config_never_prints_its_secrets() {
        let words = generate_seed_phrase().unwrap();
        let c = NodeConfig {
            data_dir: "/tmp/minima-x".into(),
            network: "devnet".into(),
            new_devnet_genesis: true,
            devnet_genesis_file: None,
            listen: None,
            peers: vec![],
            full_mmr: false,
            phone: true,
            pulses_opt_in: false,
            devnet_duty: None,
            seed_phrase: Some(Secret::new(words.clone())),
            passphrase: Some(Secret::new("correct horse battery".into())),
            claim_genesis: false,
        };
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(shown.contains("Secret(…)"), "{shown}");
            assert!(!shown.contains(&words) && !shown.contains("correct horse"), "{shown}");
        }
        // The words still reach the node.
        assert!(matches!(build_config(&c).unwrap().wallet, Some(WalletSecret::Seed(_))));
    }
}
