//! The node's side of the energy policy: the power state the host reports, the plan it
//! yields (pulses, connections, peer count, timeouts), the ledger, and `sync_once` — the short
//! connect–catch-up–stamp–pulse–persist–disconnect run a background host schedules.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use super::{Actor, Cmd, Config, Node, NodeError};
use crate::energy::{plan, EnergyConfig, HourRow, Ledger, Plan, PowerState, Sample};
use crate::net::transport::Timing;

/// What a `sync_once` run did and spent.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// Tip height before and after.
    pub height_before: u64,
    /// Tip height after.
    pub height_after: u64,
    /// Peers connected at the end of the catch-up.
    pub peers: usize,
    /// Whether our chain reached the heaviest weight a peer claimed.
    pub caught_up: bool,
    /// Pending transactions announced to peers.
    pub announced: usize,
    /// Whether a pulse ran (the plan allowed one).
    pub pulsed: bool,
    /// UDP bytes received during the run.
    pub bytes_in: u64,
    /// UDP bytes sent during the run.
    pub bytes_out: u64,
    /// Process CPU seconds during the run (every thread of the process).
    pub cpu_s: f64,
    /// Wall time (ms).
    pub duration_ms: u64,
    /// Stopped early by `cancel()` (or the budget ran out).
    pub cancelled: bool,
}

/// The ledger and the current plan.
#[derive(Debug, Clone, Serialize)]
pub struct EnergyReport {
    /// The power state last reported.
    pub power: PowerState,
    /// The plan in force.
    pub plan: Plan,
    /// Energy settings.
    pub config: EnergyConfig,
    /// Hours, oldest first.
    pub hours: Vec<HourRow>,
    /// Estimated charge over those hours (mAh).
    pub total_mah: f64,
}

pub(super) enum EnergyCmd {
    Power(PowerState),
    Report(oneshot::Sender<EnergyReport>),
    /// Start or end a `sync_once` session (connections held while it runs).
    Session(bool, oneshot::Sender<()>),
    /// Announce every pending transaction to the peers now connected; answers how many.
    Announce(oneshot::Sender<usize>),
    /// Start a pulse if the plan allows; answers the miner's hash count it ends at.
    PulseNow(oneshot::Sender<Option<u64>>),
    /// Hashes the miner has tried.
    Hashes(oneshot::Sender<u64>),
    /// Checkpoint the WAL.
    Persist(oneshot::Sender<()>),
}

/// Energy state the actor keeps.
pub(super) struct EnergyState {
    config: EnergyConfig,
    power: PowerState,
    pub(super) plan: Plan,
    ledger: Ledger,
    pub(super) next_pulse: Option<tokio::time::Instant>,
    pub(super) pulse_end: Option<u64>,
    pub(super) wakeups: u64,
    syncing: bool,
    /// The host has reported a power state.
    reported: bool,
}

impl EnergyState {
    pub(super) fn new(cfg: &Config, now_ms: u64) -> EnergyState {
        let ledger = Ledger::new(cfg.device);
        let plan = plan(&cfg.energy, &cfg.power, &ledger.spent(now_ms));
        EnergyState {
            config: cfg.energy,
            power: cfg.power,
            plan,
            ledger,
            next_pulse: None,
            pulse_end: None,
            wakeups: 0,
            syncing: false,
            reported: false,
        }
    }
}

impl Node {
    fn energy_call<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> EnergyCmd) -> Result<T, NodeError> {
        self.call(|r| Cmd::Energy(f(r)))
    }

    /// The host reports the device's power state: the energy policy re-plans pulses,
    /// connections, peer count and timeouts at once.
    pub fn set_power_state(&self, state: PowerState) -> Result<(), NodeError> {
        self.tx.blocking_send(Cmd::Energy(EnergyCmd::Power(state))).map_err(|_| NodeError::Stopped)
    }

    /// The ledger (per hour: CPU, miner CPU, hashes, bytes per network type, wake-ups, mAh)
    /// and the plan in force.
    pub fn energy_report(&self) -> Result<EnergyReport, NodeError> {
        self.energy_call(EnergyCmd::Report)
    }

    /// Stop a running [`Node::sync_once`] early (an iOS expiration handler calls this).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// One background sync within `budget`: connect, catch up, announce pending transactions
    /// (their stamps were mined when they were made), pulse if the plan allows, persist, and
    /// disconnect again unless the plan holds connections. Blocks the caller until done.
    pub fn sync_once(&self, budget: Duration) -> Result<SyncReport, NodeError> {
        let Some(net) = self.net.clone() else { return Err(NodeError::Net("networking is off".into())) };
        self.cancel.store(false, Ordering::SeqCst);
        let t0 = Instant::now();
        let deadline = t0 + budget;
        let cpu0 = crate::energy::process_cpu_s();
        let (in0, out0) = net.bytes();
        let before = self.status()?;
        self.energy_call(|r| EnergyCmd::Session(true, r))?;
        let stopped = || self.cancel.load(Ordering::SeqCst) || Instant::now() >= deadline;
        // Poll only while the run lasts (a few dozen checks); never between runs.
        let tick = || std::thread::sleep(Duration::from_millis(50));
        while net.peer_count() == 0 && !stopped() {
            tick();
        }
        let announced = if net.peer_count() > 0 { self.energy_call(EnergyCmd::Announce)? } else { 0 };
        // Caught up: our weight reaches the best claim and the tip has been still a moment.
        let mut last = (self.status()?.tip, Instant::now());
        let mut caught_up = false;
        while !stopped() && net.peer_count() > 0 {
            let s = self.status()?;
            let ours: u128 = s.weight.parse().unwrap_or(0);
            if s.tip != last.0 {
                last = (s.tip, Instant::now());
            }
            if ours >= net.best_claim() && last.1.elapsed() >= Duration::from_millis(300) {
                caught_up = true;
                break;
            }
            tick();
        }
        let mut pulsed = false;
        if !stopped() {
            if let Some(end) = self.energy_call(EnergyCmd::PulseNow)? {
                pulsed = true;
                while !stopped() && self.energy_call(EnergyCmd::Hashes)? < end {
                    tick();
                }
            }
        }
        self.energy_call(EnergyCmd::Persist)?;
        let peers = net.peer_count();
        self.energy_call(|r| EnergyCmd::Session(false, r))?;
        let after = self.status()?;
        let (in1, out1) = net.bytes();
        Ok(SyncReport {
            height_before: before.height,
            height_after: after.height,
            peers,
            caught_up,
            announced,
            pulsed,
            bytes_in: in1.saturating_sub(in0),
            bytes_out: out1.saturating_sub(out0),
            cpu_s: crate::energy::process_cpu_s() - cpu0,
            duration_ms: t0.elapsed().as_millis() as u64,
            cancelled: self.cancel.load(Ordering::SeqCst) || Instant::now() >= deadline,
        })
    }
}

impl Actor {
    /// Start the miner thread if there is none (pulses start it on first use).
    pub(super) fn ensure_miner(&mut self) {
        if self.miner.is_some() {
            return;
        }
        let Some(tx) = self.self_tx.clone() else { return };
        self.miner = Some(std::sync::Arc::new(crate::miner::Miner::start(move |f| {
            let _ = tx.blocking_send(Cmd::Mined(f));
        })));
    }

    fn sample(&mut self) {
        let (bytes_in, bytes_out) = self.net.as_ref().map(|n| n.bytes()).unwrap_or((0, 0));
        let s = Sample {
            cpu_s: crate::energy::process_cpu_s(),
            miner_cpu_s: self.miner.as_ref().map(|m| m.cpu_s()).unwrap_or(0.0),
            hashes: self.miner.as_ref().map(|m| m.hashes()).unwrap_or(0),
            bytes_in,
            bytes_out,
            wakeups: self.energy.wakeups,
        };
        let network = self.energy.power.network;
        self.energy.ledger.record(self.clock.now_ms(), s, network);
    }

    /// Re-plan from the power state and the hour's spending, and apply the plan. The peer
    /// count, transaction announcements and timeouts follow the plan once the host has
    /// reported a power state (until then the network config's own values stand).
    pub(super) fn apply_plan(&mut self) {
        self.sample();
        let e = &mut self.energy;
        let old = e.plan.pulse_every;
        e.plan = plan(&e.config, &e.power, &e.ledger.spent(self.clock.now_ms()));
        let p = e.plan;
        if let Some(net) = self.net.clone() {
            let online = p.hold_connections || e.syncing;
            let reported = e.reported;
            net.set_online(online);
            // In order, from here: the engine runs in this actor.
            self.run_engine(crate::net::proto::engine::Input::Online(online));
            if reported {
                net.set_timing(Timing { keep_alive: p.keep_alive, idle_timeout: p.idle_timeout });
                let policy =
                    crate::net::proto::engine::Input::Policy { target: p.peer_target, want_txs: p.want_txs };
                self.run_engine(policy);
            }
        }
        let e = &mut self.energy;
        if !self.pulses {
            return;
        }
        match p.pulse_every {
            None => {
                e.next_pulse = None;
                e.pulse_end = None;
                if let Some(m) = &self.miner {
                    m.set_job(None);
                }
            }
            Some(every) if old != Some(every) || e.next_pulse.is_none() => {
                e.next_pulse = Some(tokio::time::Instant::now() + every);
            }
            Some(_) => {}
        }
    }

    /// A pulse timer fired: mine `pulse_work` hashes on the tip's template, schedule the next.
    pub(super) fn pulse_due(&mut self) {
        self.energy.wakeups += 1;
        self.energy.next_pulse = None;
        // The hour may have changed, or the budget run out.
        self.apply_plan();
        if self.energy.plan.pulse_every.is_none() {
            return;
        }
        self.start_pulse();
        if let Some(every) = self.energy.plan.pulse_every {
            self.energy.next_pulse = Some(tokio::time::Instant::now() + every);
        }
    }

    fn start_pulse(&mut self) -> Option<u64> {
        self.ensure_miner();
        let m = self.miner.clone()?;
        let end = m.hashes() + self.params.pulse_work;
        self.energy.pulse_end = Some(end);
        self.refresh_template();
        Some(end)
    }

    pub(super) fn on_energy(&mut self, c: EnergyCmd) {
        match c {
            EnergyCmd::Power(state) => {
                self.energy.power = state;
                self.energy.reported = true;
                self.apply_plan();
            }
            EnergyCmd::Report(reply) => {
                self.sample();
                let hours = self.energy.ledger.rows();
                let total_mah = hours.iter().map(|h| h.mah).sum();
                let e = &self.energy;
                let _ = reply.send(EnergyReport {
                    power: e.power,
                    plan: e.plan,
                    config: e.config,
                    hours,
                    total_mah,
                });
            }
            EnergyCmd::Session(on, reply) => {
                if on {
                    self.energy.wakeups += 1;
                }
                self.energy.syncing = on;
                self.apply_plan();
                let _ = reply.send(());
            }
            EnergyCmd::Announce(reply) => {
                let mut n = 0;
                if self.announces.is_some() {
                    let ids: Vec<_> = self.mempool.entries().map(|e| e.id).collect();
                    n = ids.len();
                    for id in ids {
                        self.announce(id, false);
                    }
                }
                let _ = reply.send(n);
            }
            EnergyCmd::PulseNow(reply) => {
                let allowed = self.pulses && self.energy.plan.pulse_every.is_some();
                let _ = reply.send(if allowed { self.start_pulse() } else { None });
            }
            EnergyCmd::Hashes(reply) => {
                let _ = reply.send(self.miner.as_ref().map(|m| m.hashes()).unwrap_or(0));
            }
            EnergyCmd::Persist(reply) => {
                if let Err(e) = self.store.checkpoint() {
                    tracing::warn!("checkpoint: {e}");
                }
                let _ = reply.send(());
            }
        }
    }
}
