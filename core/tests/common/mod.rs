//! Helpers shared by the integration tests that run nodes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use minima_core::net::peer::NetConfig;
use minima_core::node::{Config, Mining, Node};
use minima_core::Params;

/// Milliseconds since the Unix epoch, from the wall clock (fixtures dated now).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Poll `f` until it holds or `timeout` passes (generous timeouts; never a timing assertion).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Start a networked node on 127.0.0.1 (listening on a free port when `listen`).
pub fn start_net(dir: &Path, params: &Params, listen: bool, peers: Vec<SocketAddr>, mining: Mining) -> Node {
    start_with(dir, params, listen.then_some([127, 0, 0, 1]), peers, mining, false)
}

/// Start a networked node listening on `ip` (a free port) when given, else a client; with
/// the full coin set when `full_mmr`.
pub fn start_with(
    dir: &Path,
    params: &Params,
    ip: Option<[u8; 4]>,
    peers: Vec<SocketAddr>,
    mining: Mining,
    full_mmr: bool,
) -> Node {
    Node::start(net_config(dir, params, ip, peers, mining, full_mmr)).unwrap()
}

/// The config [`start_with`] uses, for tests that change more of it.
pub fn net_config(
    dir: &Path,
    params: &Params,
    ip: Option<[u8; 4]>,
    peers: Vec<SocketAddr>,
    mining: Mining,
    full_mmr: bool,
) -> Config {
    let mut cfg = Config::new(dir, params.clone());
    // Two hot blocks: nearly every block is read back from the store, so the tests cover
    // that path (the default keeps 64).
    cfg.hot_blocks = 2;
    cfg.mining = mining;
    cfg.full_mmr = full_mmr;
    cfg.net = Some(NetConfig {
        listen: ip.map(|ip| SocketAddr::from((ip, 0))),
        peers,
        backoff: Duration::from_millis(200),
        discover_interval: Duration::from_secs(1),
        initial_wait: Duration::from_secs(1),
        ..Default::default()
    });
    cfg
}

/// Multi-node tests of one binary run one at a time (hold this for the whole test): they
/// share two cores and compare tips only once the network is quiet.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Submit `blocks` to `n`, each with the TxPoWs it lists (made by `b`).
pub fn submit_blocks(
    n: &Node,
    b: &minima_core::fixture::ChainBuilder,
    blocks: &[(minima_core::types::TxPoW, minima_core::mmr::BlockWitness)],
) {
    for (t, w) in blocks {
        let l: Vec<_> = t.body.txpow_ids.iter().filter_map(|id| b.txpows().get(id).cloned()).collect();
        n.submit_block(t.clone(), w.clone(), l).unwrap();
    }
}

/// A devnet client's `Hello` at `genesis` (tip genesis, weight 0): how a scripted or raw peer
/// introduces itself.
pub fn hello_for(genesis: minima_core::crypto::Hash) -> minima_core::net::message::Hello {
    minima_core::net::message::Hello {
        version: minima_core::net::message::PROTOCOL_VERSION,
        chain_id: 2,
        genesis,
        tip: genesis,
        tip_weight: 0,
        time_ms: 0,
        listen: None,
        is_client: true,
        want_txs: true,
        serves_blocks: false,
        full_mmr: false,
    }
}

/// A transaction spending a free coin of the fixture (`RETURN TRUE` on devnet) whole to the
/// `RETURN TRUE` address; answers the coin and the mined TxPoW.
pub fn spend_free_coin(
    fx: &mut minima_core::fixture::ChainBuilder,
) -> (minima_core::types::CoinRecord, minima_core::types::TxPoW) {
    use minima_core::crypto::script_address;
    use minima_core::types::{Output, Transaction, Witness};
    let g = fx.take_free_coin().expect("a free coin");
    let sink = script_address("RETURN TRUE");
    let tx = Transaction {
        version: 1,
        inputs: vec![g.coin.clone()],
        outputs: vec![Output {
            address: sink,
            amount: g.coin.amount,
            token_id: minima_core::crypto::Hash::ZERO,
            state: vec![],
        }],
        state: vec![],
    };
    let t = fx.make_custom_tx(tx, Witness::new(vec![], vec!["RETURN TRUE".into()]));
    (g, t)
}
