//! The energy policy and the energy ledger.
//!
//! The policy is a pure function: from the power state the host reports (charging, battery %,
//! network type, foreground) and the user's budget (CPU seconds per hour for pulses, bytes per
//! hour on cellular) it decides the pulse schedule (SPEC §8), the peer count, keep-alive and
//! idle timeouts, whether to hold connections, and how often a background host should run
//! `sync_once`. The ledger accounts what the node spent — CPU (process and miner), hashes,
//! bytes in/out per network type, timer wake-ups — per hour, with an optional mAh estimate from
//! a [`DeviceProfile`].

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

/// The network the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkType {
    /// Wi-Fi or wired (unmetered).
    Wifi,
    /// Cellular (metered).
    Cellular,
    /// No network.
    None,
}

/// What the host reports about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PowerState {
    /// On external power.
    pub charging: bool,
    /// Battery level, 0–100.
    pub battery_pct: u8,
    /// Network type.
    pub network: NetworkType,
    /// The app is in the foreground (or a foreground service runs the node).
    pub foreground: bool,
}

impl PowerState {
    /// A desktop or server: on power, wired, always "foreground".
    pub const PLUGGED: PowerState =
        PowerState { charging: true, battery_pct: 100, network: NetworkType::Wifi, foreground: true };
}

/// What kind of device runs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// Desktop or server: pulses by default, holds connections.
    Server,
    /// Phone: pulses only if the user opts in; in the background holds no connection.
    Phone,
}

/// The user's budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Budget {
    /// CPU seconds per hour the pulses may use.
    pub pulse_cpu_s_per_hour: f64,
    /// Bytes per hour the node may move on cellular.
    pub cellular_bytes_per_hour: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { pulse_cpu_s_per_hour: 36.0, cellular_bytes_per_hour: 2 << 20 }
    }
}

/// Energy settings of a node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnergyConfig {
    /// Device class.
    pub class: DeviceClass,
    /// The user turned pulses on (phones; servers always pulse).
    pub pulses_opt_in: bool,
    /// The budget.
    pub budget: Budget,
    /// No pulses below this battery level unless charging.
    pub battery_floor_pct: u8,
}

impl EnergyConfig {
    /// A desktop or server node: pulses every 50 s.
    pub fn server() -> EnergyConfig {
        EnergyConfig {
            class: DeviceClass::Server,
            pulses_opt_in: true,
            budget: Budget::default(),
            battery_floor_pct: 20,
        }
    }

    /// A phone: pulses off unless the user opts in.
    pub fn phone() -> EnergyConfig {
        EnergyConfig { class: DeviceClass::Phone, pulses_opt_in: false, ..EnergyConfig::server() }
    }
}

/// What the node has spent in the current hour (the budget's measure).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Miner CPU seconds this hour.
    pub pulse_cpu_s: f64,
    /// Bytes moved on cellular this hour.
    pub cellular_bytes: u64,
}

/// The policy's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Pulse every this long (`None`: no pulses).
    pub pulse_every: Option<Duration>,
    /// Hold peer connections now (`false`: close them; background hosts call `sync_once`).
    pub hold_connections: bool,
    /// Outbound peers to keep while connected.
    pub peer_target: usize,
    /// QUIC keep-alive interval.
    pub keep_alive: Duration,
    /// QUIC idle timeout.
    pub idle_timeout: Duration,
    /// Ask peers for transaction announcements.
    pub want_txs: bool,
    /// How often a background host should call `sync_once` (`None`: do not; the node is
    /// either connected or has nothing it may spend).
    pub sync_every: Option<Duration>,
}

/// Pulse interval on power (and on servers).
pub const PULSE_CHARGING: Duration = Duration::from_secs(50);
/// Pulse interval on battery.
pub const PULSE_BATTERY: Duration = Duration::from_secs(500);

/// Decide (pure): see the module docs.
pub fn plan(cfg: &EnergyConfig, state: &PowerState, spent: &Spent) -> Plan {
    let offline = state.network == NetworkType::None;
    let cellular = state.network == NetworkType::Cellular;
    let budget_spent = spent.pulse_cpu_s >= cfg.budget.pulse_cpu_s_per_hour;
    let bytes_spent = cellular && spent.cellular_bytes >= cfg.budget.cellular_bytes_per_hour;
    let low = !state.charging && state.battery_pct < cfg.battery_floor_pct;
    let pulses_on = match cfg.class {
        DeviceClass::Server => true,
        DeviceClass::Phone => cfg.pulses_opt_in,
    };
    let pulse_every = if !pulses_on || offline || budget_spent || low || bytes_spent {
        None
    } else if state.charging || cfg.class == DeviceClass::Server {
        Some(PULSE_CHARGING)
    } else {
        Some(PULSE_BATTERY)
    };
    match cfg.class {
        DeviceClass::Server => Plan {
            pulse_every,
            hold_connections: !offline,
            peer_target: 8,
            keep_alive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            want_txs: true,
            sync_every: None,
        },
        DeviceClass::Phone => {
            let hold = state.foreground && !offline;
            Plan {
                pulse_every,
                hold_connections: hold,
                peer_target: if state.foreground { 3 } else { 2 },
                // Fewer radio wake-ups when the connection is only kept for the user.
                keep_alive: if state.charging { Duration::from_secs(10) } else { Duration::from_secs(25) },
                idle_timeout: Duration::from_secs(60),
                want_txs: !cellular || state.foreground,
                sync_every: if hold || offline || bytes_spent {
                    None
                } else if state.charging || !cellular {
                    Some(Duration::from_secs(15 * 60))
                } else {
                    Some(Duration::from_secs(30 * 60))
                },
            }
        }
    }
}

/// One hour of the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HourRow {
    /// Start of the hour (ms since the epoch, a multiple of 3,600,000).
    pub hour_ms: u64,
    /// Process CPU seconds (user + system, every thread).
    pub cpu_s: f64,
    /// Miner thread CPU seconds.
    pub miner_cpu_s: f64,
    /// Nonces tried.
    pub hashes: u64,
    /// Bytes received on Wi-Fi / cellular.
    pub bytes_in_wifi: u64,
    /// Bytes sent on Wi-Fi.
    pub bytes_out_wifi: u64,
    /// Bytes received on cellular.
    pub bytes_in_cellular: u64,
    /// Bytes sent on cellular.
    pub bytes_out_cellular: u64,
    /// Timer wake-ups the node scheduled (pulses, sync runs, peer discovery).
    pub wakeups: u64,
    /// Estimated charge used (mAh), from the device profile.
    pub mah: f64,
}

/// Energy costs of a device, for the mAh estimate. The defaults are a mid-range phone's
/// (documented in `docs/performance.md`): one big core at 1.5 W, Wi-Fi at 5 nJ per byte plus
/// 10 mJ per wake-up, LTE at 50 nJ per byte plus 1 J per wake-up (the radio's tail), a 3.85 V cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeviceProfile {
    /// Watts per fully busy core.
    pub cpu_watts: f64,
    /// Joules per byte on Wi-Fi.
    pub wifi_j_per_byte: f64,
    /// Joules per byte on cellular.
    pub cellular_j_per_byte: f64,
    /// Joules per wake-up (radio and CPU leaving sleep).
    pub wakeup_j: f64,
    /// Cell voltage.
    pub volts: f64,
}

impl Default for DeviceProfile {
    fn default() -> Self {
        DeviceProfile {
            cpu_watts: 1.5,
            wifi_j_per_byte: 5e-9,
            cellular_j_per_byte: 50e-9,
            wakeup_j: 0.01,
            volts: 3.85,
        }
    }
}

impl DeviceProfile {
    fn mah(&self, r: &HourRow) -> f64 {
        let j = r.cpu_s * self.cpu_watts
            + (r.bytes_in_wifi + r.bytes_out_wifi) as f64 * self.wifi_j_per_byte
            + (r.bytes_in_cellular + r.bytes_out_cellular) as f64 * self.cellular_j_per_byte
            + r.wakeups as f64 * self.wakeup_j;
        // mAh = J / V / 3.6
        j / self.volts / 3.6
    }
}

/// Cumulative counters read from the process and the node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Process CPU seconds.
    pub cpu_s: f64,
    /// Miner CPU seconds.
    pub miner_cpu_s: f64,
    /// Nonces.
    pub hashes: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Scheduled wake-ups.
    pub wakeups: u64,
}

/// The ledger: the last 48 hours.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    rows: VecDeque<HourRow>,
    last: Option<Sample>,
    profile: DeviceProfile,
}

/// Hours the ledger keeps.
pub const LEDGER_HOURS: usize = 48;

impl Ledger {
    /// A ledger using `profile` for the mAh estimate.
    pub fn new(profile: DeviceProfile) -> Ledger {
        Ledger { rows: VecDeque::new(), last: None, profile }
    }

    /// Account the counters' growth since the last sample to the hour of `now_ms`, bytes to
    /// `network` (the network the device was on since the last sample).
    pub fn record(&mut self, now_ms: u64, s: Sample, network: NetworkType) {
        let prev = self.last.replace(s).unwrap_or(s);
        let hour = now_ms - now_ms % 3_600_000;
        if self.rows.back().is_none_or(|r| r.hour_ms != hour) {
            self.rows.push_back(HourRow { hour_ms: hour, ..Default::default() });
            while self.rows.len() > LEDGER_HOURS {
                self.rows.pop_front();
            }
        }
        let profile = self.profile;
        let Some(r) = self.rows.back_mut() else { return };
        r.cpu_s += (s.cpu_s - prev.cpu_s).max(0.0);
        r.miner_cpu_s += (s.miner_cpu_s - prev.miner_cpu_s).max(0.0);
        r.hashes += s.hashes.saturating_sub(prev.hashes);
        r.wakeups += s.wakeups.saturating_sub(prev.wakeups);
        let (i, o) = (s.bytes_in.saturating_sub(prev.bytes_in), s.bytes_out.saturating_sub(prev.bytes_out));
        match network {
            NetworkType::Cellular => {
                r.bytes_in_cellular += i;
                r.bytes_out_cellular += o;
            }
            _ => {
                r.bytes_in_wifi += i;
                r.bytes_out_wifi += o;
            }
        }
        r.mah = profile.mah(r);
    }

    /// The hours, oldest first.
    pub fn rows(&self) -> Vec<HourRow> {
        self.rows.iter().copied().collect()
    }

    /// What the current hour (of `now_ms`) has spent, for the budget.
    pub fn spent(&self, now_ms: u64) -> Spent {
        let hour = now_ms - now_ms % 3_600_000;
        match self.rows.back() {
            Some(r) if r.hour_ms == hour => Spent {
                pulse_cpu_s: r.miner_cpu_s,
                cellular_bytes: r.bytes_in_cellular + r.bytes_out_cellular,
            },
            _ => Spent::default(),
        }
    }
}

/// CPU seconds (user + system) of this process, every thread.
pub fn process_cpu_s() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Peak resident memory of this process so far, in bytes.
pub fn process_peak_rss_bytes() -> u64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0;
    }
    // Kilobytes on Linux.
    (u.ru_maxrss.max(0) as u64).saturating_mul(1024)
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// CPU seconds of the calling thread.
pub fn thread_cpu_s() -> f64 {
    // SAFETY: clock_gettime fills the zeroed struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(opt_in: bool) -> EnergyConfig {
        EnergyConfig { pulses_opt_in: opt_in, ..EnergyConfig::phone() }
    }

    fn st(charging: bool, pct: u8, network: NetworkType, foreground: bool) -> PowerState {
        PowerState { charging, battery_pct: pct, network, foreground }
    }

    #[test]
    fn servers_pulse_every_50_s_and_hold_connections() {
        let p = plan(&EnergyConfig::server(), &PowerState::PLUGGED, &Spent::default());
        assert_eq!(p.pulse_every, Some(PULSE_CHARGING));
        assert!(p.hold_connections && p.sync_every.is_none() && p.want_txs);
        assert_eq!(p.peer_target, 8);
        assert!(p.keep_alive < p.idle_timeout);
    }

    #[test]
    fn phones_pulse_only_when_opted_in_and_by_power() {
        let wifi = NetworkType::Wifi;
        let none = Spent::default();
        assert_eq!(plan(&phone(false), &st(true, 90, wifi, true), &none).pulse_every, None);
        assert_eq!(plan(&phone(true), &st(true, 90, wifi, true), &none).pulse_every, Some(PULSE_CHARGING));
        assert_eq!(plan(&phone(true), &st(false, 90, wifi, true), &none).pulse_every, Some(PULSE_BATTERY));
        // Under the floor: none, unless charging.
        assert_eq!(plan(&phone(true), &st(false, 19, wifi, true), &none).pulse_every, None);
        assert_eq!(plan(&phone(true), &st(true, 5, wifi, true), &none).pulse_every, Some(PULSE_CHARGING));
        // Budget spent: none until the next hour.
        let spent = Spent { pulse_cpu_s: 36.0, cellular_bytes: 0 };
        assert_eq!(plan(&phone(true), &st(true, 90, wifi, true), &spent).pulse_every, None);
        // No network: nothing to pulse for.
        assert_eq!(plan(&phone(true), &st(true, 90, NetworkType::None, true), &none).pulse_every, None);
    }

    #[test]
    fn phones_hold_connections_only_in_the_foreground() {
        let none = Spent::default();
        let fg = plan(&phone(false), &st(false, 50, NetworkType::Wifi, true), &none);
        assert!(fg.hold_connections && fg.sync_every.is_none());
        let bg = plan(&phone(false), &st(false, 50, NetworkType::Wifi, false), &none);
        assert!(!bg.hold_connections);
        assert_eq!(bg.sync_every, Some(Duration::from_secs(900)));
        let cell = plan(&phone(false), &st(false, 50, NetworkType::Cellular, false), &none);
        assert_eq!(cell.sync_every, Some(Duration::from_secs(1800)));
        assert!(!cell.want_txs);
        // Cellular bytes budget spent: no background sync this hour.
        let spent = Spent { pulse_cpu_s: 0.0, cellular_bytes: 3 << 20 };
        let cell = plan(&phone(false), &st(false, 50, NetworkType::Cellular, false), &spent);
        assert_eq!(cell.sync_every, None);
        let off = plan(&phone(false), &st(false, 50, NetworkType::None, true), &none);
        assert!(!off.hold_connections && off.sync_every.is_none());
    }

    #[test]
    fn the_ledger_accounts_per_hour_and_network() {
        let mut l = Ledger::new(DeviceProfile::default());
        let h = 3_600_000u64 * 500_000;
        l.record(h + 1, Sample::default(), NetworkType::Wifi);
        let s1 =
            Sample { cpu_s: 2.0, miner_cpu_s: 1.5, hashes: 1000, bytes_in: 100, bytes_out: 50, wakeups: 3 };
        l.record(h + 10, s1, NetworkType::Wifi);
        let s2 = Sample { bytes_in: 1100, bytes_out: 550, ..s1 };
        l.record(h + 20, s2, NetworkType::Cellular);
        assert_eq!(l.spent(h + 30).pulse_cpu_s, 1.5);
        assert_eq!(l.spent(h + 30).cellular_bytes, 1500);
        let s3 = Sample { cpu_s: 3.0, ..s2 };
        l.record(h + 3_600_000, s3, NetworkType::Cellular);
        let rows = l.rows();
        assert_eq!(rows.len(), 2);
        let r = rows[0];
        assert_eq!(
            (r.hashes, r.wakeups, r.bytes_in_wifi, r.bytes_in_cellular, r.bytes_out_cellular),
            (1000, 3, 100, 1000, 500)
        );
        assert!((r.cpu_s - 2.0).abs() < 1e-9 && r.mah > 0.0);
        assert!((rows[1].cpu_s - 1.0).abs() < 1e-9);
        assert_eq!(l.spent(h + 3_600_001).cellular_bytes, 0);
        assert!(process_cpu_s() > 0.0);
    }
}
