//! The `minima` command: run a node, and talk to a running one over its local socket.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use minima_core::crypto::sha3;
use minima_core::node::{stored_genesis, Config, Event, Mining, Node};
use minima_core::{rpc, Params};
use serde_json::{json, Value};

mod devnet;

#[derive(Parser)]
#[command(name = "minima", version, about = "A Complete Minima-design node")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node until Ctrl-C or `minima stop`.
    Node {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Network: main, test or devnet.
        #[arg(long, default_value = "main")]
        params: String,
        /// Make a new devnet genesis (reused if the data dir already has one).
        #[arg(long)]
        genesis: bool,
        /// Keep the whole coin set (servers).
        #[arg(long)]
        full_mmr: bool,
        /// Mining duty cycle on devnet, (0, 1].
        #[arg(long, default_value_t = 0.5)]
        duty: f64,
        /// Do not mine.
        #[arg(long)]
        no_mine: bool,
        /// Cap the database at this many pages (simulates a full disk).
        #[arg(long, hide = true)]
        max_db_pages: Option<u64>,
        /// UDP address to accept QUIC peers on (e.g. 0.0.0.0:9001).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// A peer to dial (repeatable).
        #[arg(long)]
        peer: Vec<SocketAddr>,
    },
    /// Start N devnet nodes on loopback (node 0 makes the genesis; the others peer with it).
    Devnet {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Stop after this many seconds and report (without it: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        /// One JSON line at the end.
        #[arg(long)]
        json: bool,
        /// Mining duty cycle of each node.
        #[arg(long, default_value_t = 0.2)]
        duty: f64,
        /// Parent folder of the nodes' data dirs (default: a temporary folder, removed after).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Show a running node's status.
    Status {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running node.
    Stop {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Miner nonces per second against raw SHA3-256 permutations, one thread.
    Mine {
        /// One JSON line.
        #[arg(long)]
        json: bool,
        /// Seconds per measurement round.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Node { data, params, genesis, full_mmr, duty, no_mine, max_db_pages, listen, peer } => run_node(
            &data,
            &params,
            genesis,
            full_mmr,
            if no_mine { None } else { Some(duty) },
            max_db_pages,
            listen,
            peer,
        ),
        Cmd::Devnet { nodes, seconds, json, duty, data } => devnet::run(nodes, seconds, json, duty, data),
        Cmd::Status { data, json } => status(&data, json),
        Cmd::Stop { data } => rpc::call(&data, "stop", Value::Null).map(|_| ()).map_err(|e| e.to_string()),
        Cmd::Bench { what: BenchCmd::Mine { json, seconds } } => {
            bench_mine(json, seconds);
            Ok(())
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn params_for(data: &Path, name: &str, genesis: bool) -> Result<Params, String> {
    let mut p =
        Params::by_name(name).ok_or_else(|| format!("unknown network '{name}' (main, test or devnet)"))?;
    if let Some((net, time, prng)) = stored_genesis(data) {
        if net != p.name {
            return Err(format!("data dir {} belongs to network '{net}', not '{}'", data.display(), p.name));
        }
        p.genesis.time_ms = time;
        p.genesis.prng = prng;
    } else if p.name == "devnet" {
        if !genesis {
            return Err("no devnet genesis in this data dir: pass --genesis to make one, or copy the \
                        .genesis file of the network's first node into the data dir"
                .into());
        }
        p.genesis.time_ms = now_ms();
        p.genesis.prng = sha3(&[&now_ms().to_be_bytes()[..], &std::process::id().to_be_bytes()].concat()).0;
    }
    p.check().map_err(|e| e.to_string())?;
    Ok(p)
}

enum Msg {
    Stop,
    Event(Event),
}

#[allow(clippy::too_many_arguments)]
fn run_node(
    data: &Path,
    network: &str,
    genesis: bool,
    full_mmr: bool,
    duty: Option<f64>,
    max_db_pages: Option<u64>,
    listen: Option<SocketAddr>,
    peers: Vec<SocketAddr>,
) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(d) = duty {
        if !(d > 0.0 && d <= 1.0) {
            return Err(format!("--duty must be in (0, 1], got {d}"));
        }
    }
    let params = params_for(data, network, genesis)?;
    let mut cfg = Config::new(data, params);
    cfg.full_mmr = full_mmr;
    cfg.max_db_pages = max_db_pages;
    if listen.is_some() || !peers.is_empty() {
        cfg.net = Some(minima_core::net::peer::NetConfig { listen, peers, ..Default::default() });
    }
    cfg.mining = match (cfg.mining, duty) {
        (Mining::Continuous { .. }, Some(duty)) => Mining::Continuous { duty },
        _ => Mining::Off,
    };
    let node = Arc::new(Node::start(cfg).map_err(|e| e.to_string())?);
    let (tx, rx) = mpsc::channel::<Msg>();
    let stop_tx = tx.clone();
    let mut server = rpc::Server::start(node.clone(), data, move || {
        let _ = stop_tx.send(Msg::Stop);
    })
    .map_err(|e| e.to_string())?;
    // Ctrl-C and SIGTERM.
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        });
        let _ = sig_tx.send(Msg::Stop);
    });
    let mut events = node.subscribe();
    let ev_tx = tx;
    std::thread::spawn(move || {
        while let Ok(e) = events.blocking_recv() {
            if ev_tx.send(Msg::Event(e)).is_err() {
                break;
            }
        }
    });
    let tty = std::io::stdout().is_terminal();
    let s = node.status().map_err(|e| e.to_string())?;
    eprintln!(
        "node started: network {} height {} tip {} data {}",
        s.network,
        s.height,
        s.tip.get(..16).unwrap_or(&s.tip),
        data.display()
    );
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let mut fatal = None;
    loop {
        let msg = if tty {
            rx.recv_timeout(Duration::from_secs(1))
        } else {
            rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        };
        match msg {
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(Msg::Event(Event::NewTip { .. })) | Err(mpsc::RecvTimeoutError::Timeout) => {
                if tty {
                    if let Ok(s) = node.status() {
                        print!(
                            "\rheight {:>8}  tip {}  peers {}  {:>8.2} MH/s   ",
                            s.height,
                            s.tip.get(..16).unwrap_or(&s.tip),
                            s.peers,
                            s.hash_rate / 1e6
                        );
                        let _ = std::io::stdout().flush();
                    }
                } else if last_line.elapsed() >= Duration::from_millis(500) {
                    if let Ok(s) = node.status() {
                        println!(
                            "height {} tip {} peers {} hash_rate {:.0}",
                            s.height, s.tip, s.peers, s.hash_rate
                        );
                        last_line = Instant::now();
                    }
                }
            }
            Ok(Msg::Event(Event::Reorg { disconnected, connected })) => {
                if !tty {
                    println!("reorg: -{disconnected} +{connected}");
                }
            }
            Ok(Msg::Event(Event::Fatal { reason })) => {
                fatal = Some(reason);
                break;
            }
            Ok(Msg::Event(_)) => {}
        }
    }
    if tty {
        println!();
    }
    server.shutdown();
    node.stop(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    if let Some(reason) = fatal {
        return Err(format!("node stopped: {reason}"));
    }
    eprintln!("node stopped");
    Ok(())
}

fn status(data: &Path, as_json: bool) -> Result<(), String> {
    let v = rpc::call(data, "status", Value::Null).map_err(|e| e.to_string())?;
    if as_json {
        println!("{v}");
    } else {
        let g = |k: &str| v.get(k).map(|x| x.to_string().trim_matches('"').to_string()).unwrap_or_default();
        println!("network   {}", g("network"));
        println!("height    {}", g("height"));
        println!("tip       {}", g("tip"));
        println!("weight    {}", g("weight"));
        println!("peers     {}", g("peers"));
        println!("mempool   {}", g("mempool"));
        println!("cascade   {}", g("cascade"));
        println!("storage   {} bytes", g("storage_bytes"));
        println!("hash rate {} /s", g("hash_rate"));
    }
    Ok(())
}

fn bench_mine(as_json: bool, seconds: f64) {
    let mut p = Params::devnet();
    p.genesis.time_ms = 1;
    let (g, _) = minima_core::chain::genesis(&p).expect("devnet genesis");
    let header = g.header;
    // Calibrate, then alternate rounds of each and keep the best (the machine is shared).
    let data = [7u8; 100];
    let raw_round = |n: u64| {
        let start = Instant::now();
        let mut acc = 0u8;
        let mut d = data;
        for i in 0..n {
            d[..8].copy_from_slice(&i.to_be_bytes());
            acc ^= sha3(&d).0[0];
        }
        std::hint::black_box(acc);
        n as f64 / start.elapsed().as_secs_f64()
    };
    let probe = raw_round(100_000);
    let n = ((probe * seconds) as u64).max(10_000);
    let (mut miner, mut raw) = (0f64, 0f64);
    for _ in 0..3 {
        raw = raw.max(raw_round(n));
        miner = miner.max(minima_core::miner::bench_hashes(&header, n));
    }
    let ratio = miner / raw;
    if as_json {
        println!(
            "{}",
            json!({"miner_hps": miner.round(), "raw_permutations_ps": raw.round(), "ratio": (ratio * 1000.0).round() / 1000.0})
        );
    } else {
        println!("miner {:.0} nonces/s, raw SHA3-256 {:.0} hashes/s, ratio {:.3}", miner, raw, ratio);
    }
}
