//! `minima devnet`: N devnet nodes on loopback, each its own `minima node` process (so CPU and
//! memory are measured per node). Node i listens on 127.i.0.1 (its own /16 group, so the
//! address book's group diversity lets every node reach every other); node 0 makes the
//! genesis, the others start from node 0 and find each other through its address book.
//! (Loopback has only 127.0.0.1 outside Linux: there every node shares it.)

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minima_core::rpc;
use serde_json::{json, Value};

struct Proc {
    dir: PathBuf,
    child: Child,
    /// Stopped on purpose (`--stop-node0-after`): left out of the convergence check.
    stopped: bool,
    /// Its connected peers when it was stopped.
    peers_at_stop: Value,
}

/// Node i's listen address: 127.i.0.1 on Linux, 127.0.0.1 elsewhere.
fn listen_addr(i: usize) -> String {
    if cfg!(target_os = "linux") {
        format!("127.{i}.0.1:0")
    } else {
        "127.0.0.1:0".into()
    }
}

/// Stop a node and wait for its process to exit (killed after 15 s).
fn stop(p: &mut Proc) {
    let _ = rpc::call(&p.dir, "stop", Value::Null);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = p.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.child.kill();
    let _ = p.child.wait();
}

fn spawn(dir: &Path, args: &[String]) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the minima binary: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The log sits beside the data dir (a data dir holds only the node's own files).
    let log_path = dir.with_extension("log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    Command::new(exe)
        .arg("node")
        .arg("--data")
        .arg(dir)
        .args(["--params", "devnet"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start a node: {e}"))
}

fn status(dir: &Path) -> Option<Value> {
    rpc::call(dir, "status", Value::Null).ok()
}

fn wait_status(dir: &Path, timeout: Duration) -> Result<Value, String> {
    let t = Instant::now();
    loop {
        if let Some(v) = status(dir) {
            return Ok(v);
        }
        if t.elapsed() > timeout {
            return Err(format!(
                "node in {} did not start (see its .log beside the data dir)",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (cpu seconds, resident bytes) of a process, from /proc (0 where unavailable).
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = match (
        f.get(11).and_then(|x| x.parse::<f64>().ok()),
        f.get(12).and_then(|x| x.parse::<f64>().ok()),
    ) {
        (Some(u), Some(s)) => (u + s) / tck,
        _ => 0.0,
    };
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok()))
        .map(|k| k * 1024)
        .unwrap_or(0);
    (cpu, rss)
}

fn table(procs: &[Proc]) {
    print!("\x1b[2J\x1b[H");
    println!("{:>4} {:>8}  {:<18} {:>5}", "node", "height", "tip", "peers");
    for (i, p) in procs.iter().enumerate() {
        match status(&p.dir) {
            Some(s) => println!(
                "{:>4} {:>8}  {:<18} {:>5}",
                i,
                s["height"],
                s["tip"].as_str().and_then(|t| t.get(..16)).unwrap_or("?"),
                s["peers"]
            ),
            None => println!("{i:>4} (not answering)"),
        }
    }
    let _ = std::io::stdout().flush();
}

/// Run the devnet command.
pub fn run(
    n: usize,
    seconds: Option<u64>,
    as_json: bool,
    duty: f64,
    data: Option<PathBuf>,
    stop_node0_after: Option<u64>,
) -> Result<(), String> {
    if n == 0 || n > 64 {
        return Err("--nodes must be 1..=64".into());
    }
    if stop_node0_after.is_some() && n < 2 {
        return Err("--stop-node0-after needs at least 2 nodes".into());
    }
    let (root, temp) = match data {
        Some(d) => (d, false),
        None => (std::env::temp_dir().join(format!("minima-devnet-{}", std::process::id())), true),
    };
    let duty_s = duty.to_string();
    let mut procs: Vec<Proc> = vec![];
    let result = (|| -> Result<bool, String> {
        let d0 = root.join("node0");
        let c0 = spawn(
            &d0,
            &["--genesis".into(), "--listen".into(), listen_addr(0), "--duty".into(), duty_s.clone()],
        )?;
        procs.push(Proc { dir: d0.clone(), child: c0, stopped: false, peers_at_stop: Value::Null });
        let s0 = wait_status(&d0, Duration::from_secs(30))?;
        let addr = s0["listen"].as_str().ok_or("node 0 has no listen address")?.to_string();
        for i in 1..n {
            let d = root.join(format!("node{i}"));
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            std::fs::copy(d0.join(".genesis"), d.join(".genesis")).map_err(|e| e.to_string())?;
            let c = spawn(
                &d,
                &[
                    "--listen".into(),
                    listen_addr(i),
                    "--peer".into(),
                    addr.clone(),
                    "--duty".into(),
                    duty_s.clone(),
                ],
            )?;
            procs.push(Proc { dir: d, child: c, stopped: false, peers_at_stop: Value::Null });
        }
        for p in &procs {
            wait_status(&p.dir, Duration::from_secs(30))?;
        }
        let tty = std::io::stdout().is_terminal() && !as_json;
        let start = Instant::now();
        loop {
            if let Some(s) = seconds {
                if start.elapsed() >= Duration::from_secs(s) {
                    break;
                }
            }
            if stop_node0_after.is_some_and(|s| start.elapsed() >= Duration::from_secs(s))
                && !procs[0].stopped
            {
                procs[0].peers_at_stop =
                    status(&procs[0].dir).map(|s| s["peers"].clone()).unwrap_or_default();
                stop(&mut procs[0]);
                procs[0].stopped = true;
            }
            if procs.iter_mut().any(|p| !p.stopped && matches!(p.child.try_wait(), Ok(Some(_)))) {
                return Err("a node exited (see its .log beside the data dir)".into());
            }
            if tty {
                table(&procs);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        // Stop mining, let the network go quiet, then compare the running nodes' tips.
        let live: Vec<&Proc> = procs.iter().filter(|p| !p.stopped).collect();
        for p in &live {
            let _ = rpc::call(&p.dir, "mining", json!({"on": false}));
        }
        let quiet = Instant::now();
        let mut converged = false;
        let mut nudged = false;
        while quiet.elapsed() < Duration::from_secs(30) {
            if !nudged && quiet.elapsed() > Duration::from_secs(5) {
                // Equal-weight tips stay split (a tie keeps each node's own branch): one more
                // block from the first running node settles it.
                nudged = true;
                let height = |p: &Proc| status(&p.dir).and_then(|s| s["height"].as_u64()).unwrap_or(0);
                let top = live.iter().map(|p| height(p)).max().unwrap_or(0);
                let _ = rpc::call(&live[0].dir, "mining", json!({"on": true}));
                let t = Instant::now();
                while height(live[0]) <= top && t.elapsed() < Duration::from_secs(20) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = rpc::call(&live[0].dir, "mining", json!({"on": false}));
            }
            let tips: Vec<Option<Value>> =
                live.iter().map(|p| status(&p.dir).map(|s| s["tip"].clone())).collect();
            if tips.iter().all(|t| t.is_some() && *t == tips[0]) {
                converged = true;
                std::thread::sleep(Duration::from_secs(1));
                let again: Vec<Option<Value>> =
                    live.iter().map(|p| status(&p.dir).map(|s| s["tip"].clone())).collect();
                if again == tips {
                    break;
                }
                converged = false;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let nodes: Vec<Value> = procs
            .iter()
            .map(|p| {
                if p.stopped {
                    return json!({"stopped": true, "peers_at_stop": p.peers_at_stop});
                }
                let s = status(&p.dir).unwrap_or(Value::Null);
                let (cpu, rss) = usage(p.child.id());
                json!({"height": s["height"], "tip": s["tip"], "peers": s["peers"], "cpu_s": (cpu * 100.0).round() / 100.0, "rss_bytes": rss})
            })
            .collect();
        if as_json {
            println!("{}", json!({"nodes": nodes, "converged": converged}));
        } else {
            for (i, v) in nodes.iter().enumerate() {
                if v["stopped"] == true {
                    println!("node {i}: stopped (it had {} peers)", v["peers_at_stop"]);
                    continue;
                }
                println!(
                    "node {i}: height {} tip {} peers {} cpu {} s rss {} bytes",
                    v["height"], v["tip"], v["peers"], v["cpu_s"], v["rss_bytes"]
                );
            }
            println!("converged: {converged}");
        }
        Ok(converged)
    })();
    for p in &procs {
        if !p.stopped {
            let _ = rpc::call(&p.dir, "stop", Value::Null);
        }
    }
    for p in procs.iter_mut().filter(|p| !p.stopped) {
        stop(p);
    }
    if temp {
        let _ = std::fs::remove_dir_all(&root);
    }
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err("the nodes did not converge on one tip".into()),
        Err(e) => Err(e),
    }
}
