//! The node engine end to end: the `minima` binary on a devnet, restarts, SIGKILL crash safety,
//! reorgs through the actor, flat storage, clear errors for bad situations, and the miner bench.

mod common;
use common::wait_until;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minima_core::chain::AddOutcome;
use minima_core::fixture::ChainBuilder;
use minima_core::node::{Config, Mining, Node, NodeError};
use minima_core::store::Store;
use minima_core::{rpc, Params};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_minima");

fn spawn_node(dir: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["node", "--data"])
        .arg(dir)
        .args(["--params", "devnet", "--genesis"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minima node")
}

fn status(dir: &Path) -> Option<Value> {
    let out = Command::new(BIN).args(["status", "--json", "--data"]).arg(dir).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn height(v: &Value) -> u64 {
    v["height"].as_u64().unwrap()
}

fn stop_and_wait(dir: &Path, mut child: Child) {
    let out = Command::new(BIN).args(["stop", "--data"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "stop: {}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "node exit status {st}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "node did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn devnet_node_mines_reports_stops_and_restarts_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let child = spawn_node(&d, &[]);
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            last = status(&d);
            last.as_ref().is_some_and(|v| height(v) >= 10)
        }),
        "devnet node did not reach height 10 in 60 s: {last:?}"
    );
    let v = last.unwrap();
    for key in ["height", "tip", "weight", "peers"] {
        assert!(v.get(key).is_some(), "status lacks {key}: {v}");
    }
    stop_and_wait(&d, child);
    // The stored state after a clean stop…
    let before = {
        let child = spawn_node(&d, &["--no-mine"]);
        let mut s = None;
        assert!(wait_until(Duration::from_secs(30), || {
            s = status(&d);
            s.is_some()
        }));
        stop_and_wait(&d, child);
        s.unwrap()
    };
    // …is what a second restart sees: same height and tip.
    let child = spawn_node(&d, &["--no-mine"]);
    let mut after = None;
    assert!(wait_until(Duration::from_secs(30), || {
        after = status(&d);
        after.is_some()
    }));
    let after = after.unwrap();
    assert!(height(&before) >= 10);
    assert_eq!(height(&after), height(&before));
    assert_eq!(after["tip"], before["tip"]);
    // Human output too.
    let out = Command::new(BIN).args(["status", "--data"]).arg(&d).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("height"));
    stop_and_wait(&d, child);
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let mut seed: u64 = 0x5eed;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut committed = 0u64;
    for round in 0..50 {
        let mut child = spawn_node(&d, &["--duty", "1.0"]);
        // Wait until it answers (it re-validated the stored chain), then let it mine a while.
        assert!(wait_until(Duration::from_secs(30), || status(&d).is_some()), "round {round}: no answer");
        let s = status(&d).unwrap();
        assert!(height(&s) >= committed, "round {round}: height {} < committed {committed}", height(&s));
        committed = height(&s);
        std::thread::sleep(Duration::from_millis(50 + rand(600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The database opens and passes PRAGMA integrity_check.
        let (_, gen) = {
            let g = minima_core::node::stored_genesis(&d).unwrap();
            let (net, time, prng) = (g.network, g.time_ms, g.prng);
            assert_eq!(net, "devnet");
            let mut p = Params::devnet();
            p.genesis.time_ms = time;
            p.genesis.prng = prng;
            let g = minima_core::chain::genesis(&p).unwrap().0.id();
            (p, g)
        };
        let store = Store::open(&d, "devnet", &gen).unwrap();
        store.integrity_check().unwrap();
        drop(store);
    }
    // A last start re-validates the whole stored tree in-process and continues from it.
    let g = minima_core::node::stored_genesis(&d).unwrap();
    let (time, prng) = (g.time_ms, g.prng);
    let mut p = Params::devnet();
    p.genesis.time_ms = time;
    p.genesis.prng = prng;
    let mut cfg = Config::new(&d, p);
    cfg.mining = Mining::Off;
    let node = Node::start(cfg).unwrap();
    let s = node.status().unwrap();
    assert!(s.height >= committed && committed > 20, "height {} committed {committed}", s.height);
    node.stop(Duration::from_secs(5)).unwrap();
}

fn fixture_node(dir: &Path, b: &ChainBuilder, full_mmr: bool) -> Node {
    let mut cfg = Config::new(dir, b.params.clone());
    cfg.mining = Mining::Off;
    cfg.full_mmr = full_mmr;
    cfg.hot_blocks = 2;
    Node::start(cfg).unwrap()
}

#[test]
fn reorg_through_the_actor_rolls_mmr_and_mempool_back_and_forward() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let mut base = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 100);
    base.mine(15);
    let node = fixture_node(&d, &base, true);
    for (t, w) in base.blocks() {
        node.submit_block(t.clone(), w.clone(), vec![]).unwrap();
    }
    // A pending transaction with its coin proof.
    let tx = base.make_tx().unwrap();
    let coin = tx.body.transaction.inputs[0].coin_id;
    let proof = base.coin_proof(&coin).unwrap();
    node.submit_txpow(tx.clone(), vec![proof.clone()]).unwrap();
    assert_eq!(node.status().unwrap().mempool, 1);
    // Re-wrapping the same transaction gains nothing.
    let mut rewrapped = tx.clone();
    rewrapped.body.prng[0] ^= 1;
    ChainBuilder::reseal(&mut rewrapped, true);
    assert!(node.submit_txpow(rewrapped, vec![proof.clone()]).is_err());
    // Branch A includes it; branch B (heavier) does not.
    let mut a = base.clone().with_salt(1);
    let mut b = base.clone().with_salt(2);
    a.mine_block(true, vec![tx.clone()]);
    a.mine(1);
    b.mine(4);
    for (t, w) in &a.blocks()[15..] {
        node.submit_block(t.clone(), w.clone(), vec![tx.clone()]).unwrap();
    }
    let s = node.status().unwrap();
    assert_eq!(s.tip, a.head().to_hex());
    assert_eq!(s.mempool, 0, "included transaction left the mempool");
    let mut events = node.subscribe();
    let mut outcome = None;
    for (t, w) in &b.blocks()[15..] {
        outcome = Some(node.submit_block(t.clone(), w.clone(), vec![]).unwrap());
    }
    assert!(matches!(outcome, Some(AddOutcome::Added { .. })));
    let s = node.status().unwrap();
    assert_eq!(s.tip, b.head().to_hex(), "heavier branch wins");
    assert_eq!(s.mempool, 1, "the losing branch's transaction is back in the mempool");
    let mut saw_reorg = false;
    while let Ok(e) = events.try_recv() {
        if let minima_core::node::Event::Reorg { disconnected, .. } = e {
            assert_eq!(disconnected, 2);
            saw_reorg = true;
        }
    }
    assert!(saw_reorg);
    // It confirms on the winning branch: B mines a block listing it (proof refreshed on B).
    let proof_b = b.coin_proof(&coin).unwrap();
    b.mine_block(false, vec![tx.clone()]);
    let (t, w) = b.blocks().last().unwrap().clone();
    node.submit_block(t, w, vec![]).unwrap();
    let s = node.status().unwrap();
    assert_eq!(s.tip, b.head().to_hex());
    assert_eq!(s.mempool, 0);
    let _ = proof_b;
    node.stop(Duration::from_secs(5)).unwrap();
    // The result survives a restart (the full MMR is reloaded and checked against the tip).
    let node = fixture_node(&d, &base, true);
    let s = node.status().unwrap();
    assert_eq!(s.tip, b.head().to_hex());
    assert_eq!(s.mempool, 0);
    assert!(s.full_mmr);
    node.stop(Duration::from_secs(5)).unwrap();
    // And the reorg state restarts too when the mempool is non-empty: roll back to A's view.
}

/// A restart replays the stored tree and ends on the stored tip: of two tied branches, the
/// one that was current, whatever order the replay adds them in. A stored tip that is not
/// the best block of the stored tree (written under another fork choice) is refused with a
/// clear error, never silently swapped for another one (its wallet, mempool and full MMR
/// follow the stored tip).
#[test]
fn a_restart_ends_on_the_stored_tip_or_refuses_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let mut base = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 100);
    base.tx_per_block = false;
    base.mine(15);
    let mut x = base.clone().with_salt(1);
    x.mine(2);
    let mut y = base.clone().with_salt(2);
    y.mine(2);
    // The replay adds blocks by (number, id), so the branch with the lower head leads it at
    // the top: make the other one current.
    let (current, other) = if x.head() > y.head() { (&x, &y) } else { (&y, &x) };
    let node = fixture_node(&d, &base, true);
    common::submit_blocks(&node, current, current.blocks());
    common::submit_blocks(&node, other, &other.blocks()[15..]);
    assert_eq!(node.status().unwrap().tip, current.head().to_hex());
    node.stop(Duration::from_secs(5)).unwrap();
    let node = fixture_node(&d, &base, true);
    assert_eq!(node.status().unwrap().tip, current.head().to_hex(), "the tie resolves as it did");
    node.stop(Duration::from_secs(5)).unwrap();
    // Point the stored tip at a lighter block of the tree.
    let db = rusqlite::Connection::open(d.join(minima_core::store::DB_FILE)).unwrap();
    db.execute("UPDATE meta SET value = ?1 WHERE key = 'tip'", [&base.head().0[..]]).unwrap();
    drop(db);
    let mut cfg = Config::new(&d, base.params.clone());
    cfg.mining = Mining::Off;
    cfg.full_mmr = true;
    match Node::start(cfg) {
        Err(e) => assert!(e.to_string().contains("is not the best block of the stored tree"), "{e}"),
        Ok(n) => panic!("started on {}", n.status().unwrap().tip),
    }
}

/// A reorg onto a branch of easier blocks can raise the tip by many more blocks than one
/// pruning step (`cascade_step`). The tree is pruned back within its limit at once: the old
/// branch's next block is refused (it forks below the root), and a restart finds the stored
/// tree, cascade and tip unchanged. With one step per block the tree stayed over its limit,
/// every later block pruned one more step (one of the old branch could be dropped by the
/// pruning its own arrival caused: "added block missing"), and a restart came back with
/// another cascade.
#[test]
fn a_tip_raised_by_many_steps_prunes_at_once_and_restarts_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let mut base = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 200);
    base.tx_per_block = false;
    base.mine(10);
    // Heavy: blocks eight times faster than planned, so their targets harden.
    let mut heavy = base.clone().with_salt(1);
    heavy.params.block_time_ms /= 8;
    heavy.mine(41);
    // Work on each branch above the fork: the easy one ends heavier than the whole heavy one.
    let work = |b: &ChainBuilder, end: usize| -> u128 {
        b.blocks()[10..end]
            .iter()
            .map(|(t, _)| minima_core::chain::pow::work_of(&t.header.block_target))
            .sum()
    };
    let heavy_work = work(&heavy, heavy.blocks().len());
    let mut easy = base.clone().with_salt(2);
    while work(&easy, easy.blocks().len()) <= heavy_work {
        easy.mine(1);
    }
    let (h, e) = (heavy.chain.tip().number(), easy.chain.tip().number());
    let step = base.params.cascade_step;
    assert!(e > h + 2 * step, "the easy branch overtakes {} blocks higher: {h} → {e}", e - h);
    let node = fixture_node(&d, &base, true);
    common::submit_blocks(&node, &base, base.blocks());
    let (last, earlier) = heavy.blocks()[10..].split_last().unwrap();
    common::submit_blocks(&node, &heavy, earlier);
    common::submit_blocks(&node, &easy, &easy.blocks()[10..]);
    let s = node.status().unwrap();
    assert_eq!(s.tip, easy.head().to_hex(), "the easy branch took over");
    assert!(s.height >= h + 2 * step);
    // The old branch's next block forks below the root now: refused for that, nothing else.
    match node.submit_block(last.0.clone(), last.1.clone(), vec![]) {
        Err(NodeError::Invalid(_)) => {}
        other => panic!("{other:?}"),
    }
    let before = node.status().unwrap();
    node.stop(Duration::from_secs(5)).unwrap();
    let node = fixture_node(&d, &base, true);
    let after = node.status().unwrap();
    assert_eq!((after.tip, after.height, after.cascade), (before.tip, before.height, before.cascade));
    node.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn storage_stays_flat_over_twenty_thousand_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let mut b = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 20_000);
    let p = b.params.clone();
    let genesis = minima_core::chain::genesis(&p).unwrap().0.id();
    let mut node = fixture_node(&d, &b, false);
    let mut sizes = vec![];
    for target in [5_000u64, 20_000] {
        while b.chain.tip().number() < target {
            b.mine_block(true, vec![]);
            for (t, w) in b.take_blocks() {
                assert_eq!(t.body.transaction.inputs.len(), 1, "a transaction in every block");
                assert!(matches!(node.submit_block(t, w, vec![]).unwrap(), AddOutcome::Added { .. }));
            }
        }
        assert_eq!(node.status().unwrap().height, target);
        node.stop(Duration::from_secs(10)).unwrap();
        let bytes = minima_core::store::dir_bytes(&d);
        let store = Store::open(&d, "devnet", &genesis).unwrap();
        let cascade = store.cascade_count().unwrap();
        eprintln!(
            "payload bytes (blocks, txpows, cascade, mempool, mmr): {:?}",
            store.payload_bytes().unwrap()
        );
        assert!(cascade as usize <= p.cascade_per_level * p.cascade_levels as usize);
        assert!(store.block_count().unwrap() <= p.tree_depth + p.cascade_step + 1);
        drop(store);
        eprintln!("after {target} blocks: data dir {bytes} bytes, cascade {cascade} headers");
        sizes.push(bytes as f64);
        node = fixture_node(&d, &b, false);
    }
    node.stop(Duration::from_secs(5)).unwrap();
    // Four times the blocks: the tree keeps the same number of blocks and the cascade stays
    // within levels × per-level. Both still grow logarithmically (SPEC §6 adds cascade levels
    // as the chain lengthens; MMR paths grow with log2 of the coin count), which the stored
    // form keeps small: the cascade is one deflated blob, and tree blocks keep only TxPoW and
    // witness (peaks and deltas are recomputed by the re-validation at start).
    assert!(sizes[1] <= sizes[0] * 1.10, "data dir grew from {} to {} bytes", sizes[0], sizes[1]);
}

#[test]
fn bad_situations_give_one_clear_error_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let child = spawn_node(&d, &["--duty", "0.2"]);
    assert!(wait_until(Duration::from_secs(30), || status(&d).is_some_and(|v| height(&v) >= 3)));
    // Malformed requests get JSON-RPC errors; the node keeps running.
    for bad in
        ["this is not json\n", "{\"jsonrpc\":\"2.0\",\"id\":1}\n", "{\"method\":\"no_such\",\"id\":2}\n"]
    {
        let mut s = UnixStream::connect(rpc::socket_path(&d)).unwrap();
        s.write_all(bad.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["error"]["code"].as_i64().unwrap() < 0, "{bad} → {v}");
    }
    // An oversized request is cut off.
    let mut s = UnixStream::connect(rpc::socket_path(&d)).unwrap();
    let _ = s.write_all(&vec![b'x'; rpc::MAX_REQUEST + 1024]);
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    assert!(line.contains("too large") || line.is_empty());
    assert!(status(&d).is_some(), "node still answers");
    // A second node on the same data dir.
    let out = Command::new(BIN)
        .args(["node", "--params", "devnet", "--genesis", "--data"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    // A socket other users could reach: the client refuses it.
    let sock = rpc::socket_path(&d);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new(BIN).args(["status", "--data"]).arg(&d).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other users"));
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let h = height(&status(&d).unwrap());
    stop_and_wait(&d, child);
    // A data dir that is not ours.
    let foreign = dir.path().join("photos");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("holiday.jpg"), b"not a node").unwrap();
    let out = Command::new(BIN)
        .args(["node", "--params", "devnet", "--genesis", "--data"])
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a minima data dir"));
    assert_eq!(std::fs::read(foreign.join("holiday.jpg")).unwrap(), b"not a node");
    // Another network's data dir.
    let out = Command::new(BIN).args(["node", "--params", "test", "--data"]).arg(&d).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to network 'devnet'"));
    // No node running.
    let out = Command::new(BIN).args(["status", "--data"]).arg(&d).output().unwrap();
    assert!(!out.status.success());
    // A full disk: the node stops with one clear error and a non-zero exit; what was committed
    // before stays.
    let pages = {
        let (_, gen) = {
            let g = minima_core::node::stored_genesis(&d).unwrap();
            let (time, prng) = (g.time_ms, g.prng);
            let mut p = Params::devnet();
            p.genesis.time_ms = time;
            p.genesis.prng = prng;
            (p.clone(), minima_core::chain::genesis(&p).unwrap().0.id())
        };
        let s = Store::open(&d, "devnet", &gen).unwrap();
        s.checkpoint().unwrap();
        (std::fs::metadata(s.path()).unwrap().len() / 4096) + 2
    };
    let mut child = spawn_node(&d, &["--duty", "1.0", "--max-db-pages", &pages.to_string()]);
    let start = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "node did not stop on a full disk");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!st.success());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("disk is full"), "{err}");
    let child = spawn_node(&d, &["--no-mine"]);
    assert!(wait_until(Duration::from_secs(30), || status(&d).is_some()));
    assert!(height(&status(&d).unwrap()) >= h, "committed blocks survive");
    stop_and_wait(&d, child);
}

#[test]
fn bench_mine_reports_the_ratio() {
    let out = Command::new(BIN).args(["bench", "mine", "--json", "--seconds", "0.3"]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (m, r, ratio) = (
        v["miner_hps"].as_f64().unwrap(),
        v["raw_permutations_ps"].as_f64().unwrap(),
        v["ratio"].as_f64().unwrap(),
    );
    eprintln!("bench mine: {v}");
    assert!(m > 0.0 && r > 0.0 && ratio > 0.0);
    assert!((ratio - m / r).abs() < 0.01);
}

/// A panic inside the chain actor (a bug no input should reach) is never a silently dead
/// node: the host gets `Event::Fatal`, every later call answers `Stopped`, `stop` releases the
/// data dir, and the node starts again on it with nothing lost.
#[test]
fn a_panic_in_the_chain_actor_is_a_fatal_event_and_a_clean_stop() {
    use minima_core::node::{Event, NodeError};
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 100);
    b.mine(5);
    let node = fixture_node(dir.path(), &b, false);
    for (t, w) in b.blocks() {
        node.submit_block(t.clone(), w.clone(), vec![]).unwrap();
    }
    let tip = node.status().unwrap().tip;
    assert_eq!(tip, b.head().to_hex());
    let mut events = node.subscribe();
    node.inject_actor_panic().unwrap();
    let mut fatal = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            while let Ok(e) = events.try_recv() {
                if let Event::Fatal { reason } = e {
                    fatal = Some(reason);
                }
            }
            fatal.is_some()
        }),
        "a fatal event is raised"
    );
    assert!(fatal.unwrap().contains("panicked"));
    assert!(matches!(node.status(), Err(NodeError::Stopped)));
    node.stop(Duration::from_secs(5)).unwrap();
    drop(node);
    let node = fixture_node(dir.path(), &ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 100), false);
    assert_eq!(node.status().unwrap().tip, tip, "nothing committed was lost");
    node.stop(Duration::from_secs(5)).unwrap();
}
