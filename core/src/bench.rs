//! `minima bench`: the figures of `docs/performance.md` in one JSON line.
//!
//! Memory, disk, idle CPU and wake-ups are measured on a main-params-sized state built by the
//! fixture (a full 2,048-block tree whose blocks carry transactions, a cascade below it, an
//! MMR of more than 100,000 leaves), run by a `minima node` child process in background mode;
//! its CPU and context switches are read from outside — `/proc` over a quiet window for the
//! hourly rates, `wait4` rusage for the whole run. The initial sync's peak memory is a fresh
//! `minima node` child's, syncing that state from another child (`sync_peak_rss_bytes`). Sync
//! figures come from a fresh in-process node syncing from a `minima node` child serving that
//! state; catch-up after 8 h (576 blocks)
//! and after 15 min (18 blocks) are `sync_once` runs against children serving the state grown
//! by those blocks, so the CPU counted is the syncing node's alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minima_core::crypto::{script_address, Hash, Keypair};
use minima_core::energy::{EnergyConfig, NetworkType, PowerState};
use minima_core::fixture::ChainBuilder;
use minima_core::net::peer::NetConfig;
use minima_core::node::{Config, Mining, Node};
use minima_core::types::{Output, Transaction, Witness};
use minima_core::{rpc, Params};
use serde_json::{json, Map, Value};

/// Sizes of a run.
struct Size {
    /// Blocks of the served state (tree + cascade).
    blocks: u64,
    /// Seconds per micro-benchmark round.
    round_s: f64,
    /// Quiet window for the idle rates.
    idle_window: Duration,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn timed(round_s: f64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < round_s || n < 3 {
        f();
        n += 1;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Run every benchmark; print one JSON line (or a table).
pub fn run(as_json: bool, quick: bool, keep: Option<PathBuf>) -> Result<(), String> {
    let size = if quick {
        Size { blocks: 300, round_s: 0.2, idle_window: Duration::from_secs(4) }
    } else {
        Size { blocks: 2_700, round_s: 1.0, idle_window: Duration::from_secs(60) }
    };
    let mut out = Map::new();
    let say = |m: &str| eprintln!("bench: {m}");
    // Miner against raw Keccak permutations.
    let (miner, raw, ratio) = crate::mine_ratio(size.round_s);
    out.insert("miner_ratio".into(), json!((ratio * 1000.0).round() / 1000.0));
    out.insert("miner_hps".into(), json!(miner.round()));
    out.insert("raw_permutations_ps".into(), json!(raw.round()));
    // Signatures and a signed 1-in transaction's full mempool check.
    say("signatures and transaction validation");
    let kp = Keypair::derive(&[1; 32], 0).map_err(|e| e.to_string())?;
    let txid = Hash([3; 32]);
    let t = Instant::now();
    let sig = kp.sign_tx(2, &txid);
    out.insert("sign_ms".into(), json!(t.elapsed().as_secs_f64() * 1e3));
    out.insert(
        "sig_verify_per_s".into(),
        json!(timed(size.round_s, || {
            // Each round verifies: the verified-signature cache is emptied first.
            minima_core::crypto::forget_verified();
            assert!(minima_core::crypto::verify_tx(&kp.public, 2, &txid, &sig))
        })
        .round()),
    );
    let mut fx = ChainBuilder::new(Params::devnet(), now_ms(), 20);
    let k = fx.add_key(kp);
    fx.mine(3);
    let pay = fx.pay_to_key(k, 1_000_000).ok_or("fixture has no coin")?;
    fx.mine_block(false, vec![pay]);
    let tx = fx.make_signed_tx(k).ok_or("fixture has no signed coin")?;
    let proofs: Vec<_> =
        tx.body.transaction.inputs.iter().filter_map(|c| fx.coin_proof(&c.coin_id)).collect();
    let ok = fx.chain.check_mempool_txpow(&tx, &proofs).is_ok();
    if !ok {
        return Err("the bench transaction does not validate".into());
    }
    out.insert(
        "tx_validate_per_s".into(),
        json!(
            (timed(size.round_s, || {
                minima_core::crypto::forget_verified();
                let _ = fx.chain.check_mempool_txpow(&tx, &proofs);
            }) * 10.0)
                .round()
                / 10.0
        ),
    );
    out.insert("tx_1in_2out_bytes".into(), json!(tx.size()));

    // The main-params-sized state: S0, then grown by 576 (8 h) and 18 (15 min) blocks.
    let work = TempDir::new()?;
    let root = keep.unwrap_or_else(|| work.0.clone());
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    say(&format!("building a main-params state of {} blocks (+576 +18)", size.blocks));
    let t = Instant::now();
    let (params, dirs, leaves) = build_states(&root, size.blocks)?;
    out.insert("state_blocks".into(), json!(size.blocks));
    out.insert("state_mmr_leaves".into(), json!(leaves));
    out.insert("state_build_s".into(), json!(t.elapsed().as_secs_f64().round()));
    out.insert("data_dir_bytes".into(), json!(minima_core::store::dir_bytes(&dirs[2])));

    // A background node holding that state: memory, idle CPU and wake-ups from outside.
    say("idle background node (child process)");
    let idle = root.join("idle");
    copy_dir(&dirs[2], &idle)?;
    let m = idle_child(&idle, size.idle_window)?;
    for (k, v) in m {
        out.insert(k, v);
    }

    // A fresh node syncs S0 from a child, then catches up 576 and 18 blocks with sync_once.
    say("sync, catch-up after 8 h and after 15 min (sync_once)");
    let client_dir = root.join("client");
    let mut cfg = Config::new(&client_dir, params.clone());
    cfg.mining = Mining::Off;
    cfg.energy = EnergyConfig::phone();
    cfg.power =
        PowerState { charging: false, battery_pct: 80, network: NetworkType::Wifi, foreground: false };
    let mut server = Server::start(&dirs[0])?;
    // First a fresh `minima node` child syncs it: its memory high-water mark, from outside.
    let (peak, height) = sync_child(&dirs[0], &root.join("sync-child"), server.addr)?;
    if height < size.blocks {
        return Err(format!("the child's initial sync stopped at {height} of {}", size.blocks));
    }
    out.insert("sync_peak_rss_bytes".into(), json!(peak));
    cfg.net = Some(NetConfig {
        peers: vec![server.addr],
        initial_wait: Duration::ZERO,
        backoff: Duration::from_millis(100),
        ..Default::default()
    });
    let client = Node::start(cfg).map_err(|e| e.to_string())?;
    let r = client.sync_once(Duration::from_secs(600)).map_err(|e| e.to_string())?;
    if r.height_after < size.blocks {
        return Err(format!("initial sync stopped at {} of {}", r.height_after, size.blocks));
    }
    out.insert("sync_seconds".into(), json!((r.duration_ms as f64 / 100.0).round() / 10.0));
    out.insert("sync_bytes_per_block".into(), json!((r.bytes_in + r.bytes_out) / size.blocks.max(1)));
    out.insert("sync_cpu_s".into(), json!((r.cpu_s * 100.0).round() / 100.0));
    server.stop();
    // Keys as the issue names them: `catchup_bytes_8h` (and `_cpu_s_8h`, `_seconds_8h`), and
    // `syncOnce_bytes` (and `_cpu_s`, `_seconds`).
    let names = [("catchup", "_8h", 576u64), ("syncOnce", "", 18)];
    for (i, (key, suffix, behind)) in names.into_iter().enumerate() {
        let mut server = Server::start(&dirs[i + 1])?;
        // Same address as before is not needed: point the client at the new server.
        client.add_peer(server.addr).map_err(|e| e.to_string())?;
        let r = client.sync_once(Duration::from_secs(300)).map_err(|e| e.to_string())?;
        server.stop();
        if !r.caught_up {
            return Err(format!("{key}: not caught up: {r:?}"));
        }
        let h0 = r.height_before;
        if r.height_after < h0 + behind {
            return Err(format!("{key}: {} → {}, expected +{behind}", h0, r.height_after));
        }
        out.insert(format!("{key}_bytes{suffix}"), json!(r.bytes_in + r.bytes_out));
        out.insert(format!("{key}_cpu_s{suffix}"), json!((r.cpu_s * 1000.0).round() / 1000.0));
        out.insert(format!("{key}_seconds{suffix}"), json!((r.duration_ms as f64 / 100.0).round() / 10.0));
    }
    client.stop(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let v = Value::Object(out);
    if as_json {
        println!("{v}");
    } else if let Value::Object(m) = v {
        for (k, v) in m {
            println!("{k:<28} {v}");
        }
    }
    Ok(())
}

/// A scratch folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let p = std::env::temp_dir().join(format!("minima-bench-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// This program as a `minima node --params main` child on `dir`, quiet.
fn spawn_node(dir: &Path, args: &[&str]) -> Result<Child, String> {
    Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["node", "--params", "main"])
        .args(args)
        .arg("--data")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

/// A `minima node` child serving a data dir on a loopback port.
struct Server {
    child: Child,
    dir: PathBuf,
    addr: std::net::SocketAddr,
}

impl Server {
    fn start(dir: &Path) -> Result<Server, String> {
        let child = spawn_node(dir, &["--no-mine", "--listen", "127.0.0.1:0"])?;
        let mut s =
            Server { child, dir: dir.to_path_buf(), addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)) };
        let t = Instant::now();
        loop {
            if let Ok(v) = rpc::call(dir, "status", Value::Null) {
                if let Some(a) = v["listen"].as_str().and_then(|a| a.parse().ok()) {
                    s.addr = a;
                    return Ok(s);
                }
            }
            if t.elapsed() > Duration::from_secs(120) {
                s.stop();
                return Err(format!("server on {} did not start", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        let _ = rpc::call(&self.dir, "stop", Value::Null);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// (CPU seconds, context switches over every thread, RSS bytes, peak RSS bytes) of a process,
/// from `/proc`.
fn proc_sample(pid: u32) -> Option<(f64, u64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tick;
    let mut csw = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in s.lines() {
            if l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches") {
                csw += l.split_whitespace().nth(1).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((cpu, csw, kb("VmRSS")? * 1024, kb("VmHWM")? * 1024))
}

/// Run a background-mode node on `dir`, measure a quiet window from outside, stop it, and read
/// its `wait4` rusage.
fn idle_child(dir: &Path, window: Duration) -> Result<Vec<(String, Value)>, String> {
    let child = spawn_node(dir, &["--background"])?;
    let pid = child.id();
    let t = Instant::now();
    while rpc::call(dir, "status", Value::Null).is_err() {
        if t.elapsed() > Duration::from_secs(120) {
            return Err("idle node did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = t.elapsed();
    // Let start-up settle, then leave it alone for the window.
    std::thread::sleep(Duration::from_secs(2));
    let a = proc_sample(pid).ok_or("cannot read /proc")?;
    std::thread::sleep(window);
    let b = proc_sample(pid).ok_or("cannot read /proc")?;
    let _ = rpc::call(dir, "stop", Value::Null);
    let mut status = 0;
    // SAFETY: wait4 on our own child, with zeroed out-params it fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut ru) };
    if rc != pid as i32 {
        return Err("wait4 failed".into());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let per_hour = 3600.0 / window.as_secs_f64();
    Ok(vec![
        ("rss_bytes".into(), json!(b.2)),
        ("start_seconds".into(), json!((started.as_secs_f64() * 10.0).round() / 10.0)),
        ("idle_window_s".into(), json!(window.as_secs())),
        ("idle_cpu_s_per_hour".into(), json!(((b.0 - a.0) * per_hour * 100.0).round() / 100.0)),
        ("wakeups_per_hour".into(), json!(((b.1 - a.1) as f64 * per_hour).round())),
        ("wait4_cpu_s".into(), json!(((tv(ru.ru_utime) + tv(ru.ru_stime)) * 1000.0).round() / 1000.0)),
        ("wait4_context_switches".into(), json!(ru.ru_nvcsw + ru.ru_nivcsw)),
        // The node's own high-water mark (start-up included). Not `ru_maxrss`: Linux counts
        // in it the forked copy of this (large) bench process from before the exec.
        ("peak_rss_bytes".into(), json!(b.3)),
    ])
}

/// A fresh background-mode `minima node` child on `dir` (given the genesis of `state`) runs
/// one `sync_once` against `peer`: answers its peak RSS (`VmHWM`, start-up included) and the
/// height it reached.
fn sync_child(state: &Path, dir: &Path, peer: std::net::SocketAddr) -> Result<(u64, u64), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::copy(state.join(".genesis"), dir.join(".genesis")).map_err(|e| format!(".genesis: {e}"))?;
    let peer = peer.to_string();
    let mut child = spawn_node(dir, &["--background", "--peer", &peer])?;
    let pid = child.id();
    let t = Instant::now();
    while rpc::call(dir, "status", Value::Null).is_err() {
        if t.elapsed() > Duration::from_secs(120) || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the syncing child did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Under the RPC client's 300 s read timeout.
    let r = rpc::call(dir, "sync_once", json!({"seconds": 280}));
    let peak = proc_sample(pid).map(|s| s.3);
    let _ = rpc::call(dir, "stop", Value::Null);
    let t = Instant::now();
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = r.map_err(|e| format!("the child's sync_once: {e}"))?;
    let height = r["height_after"].as_u64().ok_or_else(|| format!("sync_once answered {r}"))?;
    Ok((peak.ok_or("cannot read the child's /proc")?, height))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(from).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == "LOCK" || n.starts_with("minima.sock") {
            continue;
        }
        std::fs::copy(e.path(), to.join(&name)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Build the states: `blocks` blocks (each with a 32-output fan-out transaction, a second
/// one every 4th block), then 576 and 18 empty blocks, the last timestamped now. Answers
/// the params and the three data dirs.
fn build_states(root: &Path, blocks: u64) -> Result<(Params, [PathBuf; 3], u64), String> {
    let total = blocks + 576 + 18;
    let mut fx = ChainBuilder::new(Params::main(), now_ms(), total);
    fx.keep_blocks = true;
    let open = script_address("RETURN TRUE");
    let params = fx.params.clone();
    let dir = root.join("state");
    let mut cfg = Config::new(&dir, params.clone());
    cfg.mining = Mining::Off;
    let node = Node::start(cfg).map_err(|e| e.to_string())?;
    let fanout = |fx: &mut ChainBuilder| -> Option<minima_core::types::TxPoW> {
        let c = fx.take_free_coin()?;
        let n = 32u64;
        let each = c.coin.amount / n;
        if each == 0 {
            return None;
        }
        let outputs = (0..n)
            .map(|i| Output {
                address: open,
                amount: if i == 0 { c.coin.amount - each * (n - 1) } else { each },
                token_id: Hash::ZERO,
                state: vec![],
            })
            .collect();
        let tx = Transaction { version: 1, inputs: vec![c.coin], outputs, state: vec![] };
        Some(fx.make_custom_tx(tx, Witness::new(vec![], vec!["RETURN TRUE".into()])))
    };
    let feed = |fx: &mut ChainBuilder, node: &Node| -> Result<(), String> {
        for (t, w) in fx.take_blocks() {
            let l: Vec<_> = t.body.txpow_ids.iter().filter_map(|id| fx.txpows().get(id).cloned()).collect();
            node.submit_block(t, w, l).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    for i in 0..blocks {
        let mut listed = vec![];
        listed.extend(fanout(&mut fx));
        if i % 4 == 0 {
            listed.extend(fanout(&mut fx));
        }
        fx.mine_block(true, listed);
        if i % 100 == 99 {
            feed(&mut fx, &node)?;
        }
    }
    feed(&mut fx, &node)?;
    let leaves = fx.mmr().leaf_count();
    let dirs: [PathBuf; 3] = [root.join("s0"), root.join("s1"), root.join("s2")];
    node.stop(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    drop(node);
    copy_dir(&dir, &dirs[0])?;
    for (i, n) in [(1usize, 576u64), (2, 18)] {
        let mut cfg = Config::new(&dir, params.clone());
        cfg.mining = Mining::Off;
        let node = Node::start(cfg).map_err(|e| e.to_string())?;
        fx.tx_per_block = false;
        fx.mine(n);
        feed(&mut fx, &node)?;
        node.stop(Duration::from_secs(30)).map_err(|e| e.to_string())?;
        drop(node);
        copy_dir(&dir, &dirs[i])?;
    }
    Ok((params, dirs, leaves))
}
