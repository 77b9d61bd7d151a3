//! The node's clock: the system's, or one a simulator sets. Everything the chain actor
//! decides by time (a block's future limit, template times, the anchoring hour, wallet
//! reservations and history, the energy ledger, the protocol engine's moments) reads it here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::net::proto::time::Time;

/// A clock.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock (and, for the protocol engine, the driver's monotonic clock).
    #[default]
    System,
    /// Milliseconds since the Unix epoch, set by its owner (a simulator); the engine's moment
    /// is the same count from the epoch.
    Set(Arc<AtomicU64>),
}

impl Clock {
    /// A clock its owner sets, starting at `ms` (since the Unix epoch), and its handle.
    pub fn set_at(ms: u64) -> (Clock, Arc<AtomicU64>) {
        let h = Arc::new(AtomicU64::new(ms));
        (Clock::Set(h.clone()), h)
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => {
                SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
            }
            Clock::Set(ms) => ms.load(Ordering::Relaxed),
        }
    }

    /// The protocol engine's moment.
    pub fn moment(&self) -> Time {
        match self {
            Clock::System => crate::net::peer::now(),
            Clock::Set(ms) => Time::from_origin(Duration::from_millis(ms.load(Ordering::Relaxed))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_reads_what_its_owner_set() {
        let (c, h) = Clock::set_at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        h.store(61_000, Ordering::Relaxed);
        assert_eq!(c.now_ms(), 61_000);
        assert_eq!(c.moment().since_origin(), Duration::from_secs(61));
        assert!(Clock::System.now_ms() > 1_700_000_000_000);
    }
}
