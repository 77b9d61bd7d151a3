//! How long one catch-up from one peer may hold the catch-up lock, socket-free (time is an
//! input): a total deadline, and a minimum of progress — a peer that stops delivering blocks
//! loses the lock, so catch-up can go on from another peer.

use std::time::Duration;

use super::Time;

/// Longest a whole catch-up from one peer may take.
pub const TOTAL: Duration = Duration::from_secs(300);
/// Longest a catch-up may go without a new block (or header batch) from its peer.
pub const STALL: Duration = Duration::from_secs(20);

/// One catch-up's clock.
#[derive(Debug, Clone, Copy)]
pub struct CatchUpDeadline {
    start: Time,
    last_progress: Time,
}

impl CatchUpDeadline {
    /// A catch-up starting at `now`.
    pub fn new(now: Time) -> CatchUpDeadline {
        CatchUpDeadline { start: now, last_progress: now }
    }

    /// The peer delivered something new (headers we lacked, a block we took).
    pub fn progress(&mut self, now: Time) {
        self.last_progress = now.max(self.last_progress);
    }

    /// Time left before the catch-up must give up: the earlier of the total deadline and the
    /// stall deadline (zero once passed).
    pub fn remaining(&self, now: Time) -> Duration {
        let total = (self.start + TOTAL).saturating_duration_since(now);
        let stall = (self.last_progress + STALL).saturating_duration_since(now);
        total.min(stall)
    }

    /// Whether the catch-up is out of time.
    pub fn expired(&self, now: Time) -> bool {
        self.remaining(now).is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalling_peer_loses_the_lock_and_a_steady_one_keeps_it_until_the_total() {
        let t0 = Time::ZERO;
        let mut d = CatchUpDeadline::new(t0);
        assert_eq!(d.remaining(t0), STALL);
        assert!(d.expired(t0 + STALL), "no progress for STALL: out");
        // Steady progress keeps it alive…
        let mut t = t0;
        while t < t0 + TOTAL - Duration::from_secs(10) {
            t += Duration::from_secs(10);
            d.progress(t);
            assert!(!d.expired(t));
        }
        // …but never past the total.
        assert!(d.expired(t0 + TOTAL));
        assert!(d.remaining(t0 + TOTAL - Duration::from_secs(5)) <= Duration::from_secs(5));
    }
}
