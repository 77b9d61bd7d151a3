//! The energy policy at work over real QUIC: a background phone node holds no connection,
//! `sync_once` connects, catches up, announces a pending payment, pulses when allowed and
//! disconnects; `cancel` stops a run; the foreground reconnects; the ledger accounts it all.

mod common;
use common::{net_config, wait_until};

use std::time::Duration;

use minima_core::energy::{EnergyConfig, NetworkType, PowerState};
use minima_core::fixture::ChainBuilder;
use minima_core::node::{Mining, Node, WalletSecret};
use minima_core::wallet::Seed;
use minima_core::Params;

use common::now_ms as now;

fn background(charging: bool) -> PowerState {
    PowerState { charging, battery_pct: 80, network: NetworkType::Wifi, foreground: false }
}

#[test]
fn a_background_phone_node_connects_only_during_sync_once() {
    let _serial = common::serial();
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut fx = ChainBuilder::new(Params::devnet(), now(), 60);
    fx.mine(40);
    let p = fx.params.clone();
    let blocks = fx.take_blocks();
    // A server with the chain.
    let server =
        Node::start(net_config(&dir.path().join("s"), &p, Some([127, 0, 80, 1]), vec![], Mining::Off, true))
            .unwrap();
    common::submit_blocks(&server, &fx, &blocks);
    // A phone in the background, pulses opted in, with a wallet.
    let mut cfg =
        net_config(&dir.path().join("p"), &p, None, vec![server.net_addr().unwrap()], Mining::Pulses, false);
    cfg.energy = EnergyConfig { pulses_opt_in: true, ..EnergyConfig::phone() };
    cfg.power = background(false);
    cfg.wallet = Some(WalletSecret::Seed(Seed([5; 32])));
    let phone = Node::start(cfg).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let s = phone.status().unwrap();
    assert!(!s.online && s.peers == 0 && s.height == 0, "no connection in the background: {s:?}");
    assert_eq!(s.pulse_every_s, Some(500), "battery: a pulse every 500 s");
    // One run: connect, catch up, disconnect.
    let r = phone.sync_once(Duration::from_secs(30)).unwrap();
    assert!(r.caught_up && !r.cancelled, "{r:?}");
    // 40 blocks caught up; devnet's minimum-work pulse then finds blocks of its own.
    assert!(r.height_before == 0 && r.height_after >= 40, "{r:?}");
    assert!(r.bytes_in > 0 && r.bytes_out > 0 && r.cpu_s > 0.0, "{r:?}");
    assert!(r.pulsed, "the plan allows a pulse: {r:?}");
    assert!(wait_until(Duration::from_secs(5), || phone.status().unwrap().peers == 0), "disconnected");
    assert!(!phone.status().unwrap().online);
    eprintln!("REPORT sync_once (40 devnet blocks, pulse included): {r:?}");
    // Cancel: a run against a server that is gone returns at once when cancelled.
    server.stop(Duration::from_secs(5)).unwrap();
    drop(server);
    let canceller = {
        let t = std::time::Instant::now();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                phone.cancel();
            });
            let r = phone.sync_once(Duration::from_secs(60)).unwrap();
            assert!(r.cancelled && r.peers == 0, "{r:?}");
        });
        t.elapsed()
    };
    assert!(canceller < Duration::from_secs(10), "cancel stopped the run ({canceller:?})");
    // Under the battery floor the plan has no pulses; charging brings them back every 50 s.
    phone.set_power_state(PowerState { battery_pct: 10, ..background(false) }).unwrap();
    assert!(wait_until(Duration::from_secs(5), || phone.status().unwrap().pulse_every_s.is_none()));
    phone.set_power_state(background(true)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || phone.status().unwrap().pulse_every_s == Some(50)));
    // The ledger saw CPU, hashes, bytes and the scheduled wake-ups.
    let e = phone.energy_report().unwrap();
    let cpu: f64 = e.hours.iter().map(|h| h.cpu_s).sum();
    let hashes: u64 = e.hours.iter().map(|h| h.hashes).sum();
    let bytes: u64 = e.hours.iter().map(|h| h.bytes_in_wifi + h.bytes_out_wifi).sum();
    let wakeups: u64 = e.hours.iter().map(|h| h.wakeups).sum();
    assert!(cpu > 0.0 && hashes >= p.pulse_work && bytes > 0 && wakeups >= 2 && e.total_mah > 0.0, "{e:?}");
    phone.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn the_foreground_holds_connections_and_the_background_drops_them() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut fx = ChainBuilder::new(Params::devnet(), now(), 30);
    fx.mine(10);
    let p = fx.params.clone();
    let blocks = fx.take_blocks();
    let server =
        Node::start(net_config(&dir.path().join("s"), &p, Some([127, 0, 81, 1]), vec![], Mining::Off, false))
            .unwrap();
    common::submit_blocks(&server, &fx, &blocks);
    let mut cfg =
        net_config(&dir.path().join("p"), &p, None, vec![server.net_addr().unwrap()], Mining::Pulses, false);
    cfg.energy = EnergyConfig::phone();
    cfg.power = background(true);
    let phone = Node::start(cfg).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(phone.status().unwrap().peers, 0);
    // Pulses are off on phones unless the user opts in, even charging.
    assert_eq!(phone.status().unwrap().pulse_every_s, None);
    phone.set_power_state(PowerState { foreground: true, ..background(true) }).unwrap();
    assert!(wait_until(Duration::from_secs(20), || phone.status().unwrap().height == 10), "foreground syncs");
    assert!(phone.status().unwrap().online);
    phone.set_power_state(background(true)).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || phone.status().unwrap().peers == 0),
        "background drops peers"
    );
    // No network at all: nothing held, nothing planned.
    phone
        .set_power_state(PowerState { network: NetworkType::None, foreground: true, ..background(true) })
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !phone.status().unwrap().online));
    for n in [&phone, &server] {
        n.stop(Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn minima_bench_reports_every_figure() {
    let _serial = common::serial();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(["bench", "--json", "--quick"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "miner_ratio",
        "sig_verify_per_s",
        "tx_validate_per_s",
        "sync_bytes_per_block",
        "sync_seconds",
        "catchup_bytes_8h",
        "idle_cpu_s_per_hour",
        "wakeups_per_hour",
        "rss_bytes",
        "data_dir_bytes",
        "syncOnce_cpu_s",
        "syncOnce_bytes",
        "peak_rss_bytes",
        "catchup_cpu_s_8h",
        "sync_peak_rss_bytes",
    ] {
        assert!(v[k].is_number(), "{k} missing: {v}");
    }
    // The smoke run's state: main params, transactions in every block.
    assert!(v["state_mmr_leaves"].as_u64().unwrap() > 10_000, "{v}");
    assert!(v["catchup_bytes_8h"].as_u64().unwrap() > 0 && v["syncOnce_bytes"].as_u64().unwrap() > 0);
}
