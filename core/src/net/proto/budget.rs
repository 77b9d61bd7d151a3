//! What one peer may ask of us, socket-free (time is an input): a token bucket of
//! [`REQUESTS_PER_S`] requests and [`ANSWER_BYTES_PER_S`] bytes of answers. A new identity
//! starts with a small bucket that grows to the full one over [`RAMP`] connected, and a peer
//! whose address group has misbehaved refills slower — a rate limit, never a ban.

use std::time::Duration;

use super::Time;

/// Requests a second a peer may make.
pub const REQUESTS_PER_S: f64 = 20.0;
/// Bytes of answers a second a peer may draw.
pub const ANSWER_BYTES_PER_S: f64 = 4.0 * 1024.0 * 1024.0;
/// Burst a peer may spend at once, in seconds of its rate.
pub const BURST_S: f64 = 2.0;
/// A new identity's bucket, as a fraction of the full one.
pub const NEW_PEER_SHARE: f64 = 0.1;
/// Time connected after which an identity has the full bucket.
pub const RAMP: Duration = Duration::from_secs(600);
/// Longest a request may wait for the bucket; past it the request is dropped.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// One peer's budget.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    since: Time,
    at: Time,
    requests: f64,
    bytes: f64,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Serve it now.
    Now,
    /// Serve it after this wait (the bucket refills meanwhile).
    After(Duration),
    /// Drop it: the peer is far over its budget.
    Drop,
}

impl RequestBudget {
    /// The budget of a peer connected at `now` (a new identity: a small bucket).
    pub fn new(now: Time) -> RequestBudget {
        let mut b = RequestBudget { since: now, at: now, requests: 0.0, bytes: 0.0 };
        let (r, by) = b.capacity(now);
        b.requests = r;
        b.bytes = by;
        b
    }

    /// The bucket's size now: it grows from [`NEW_PEER_SHARE`] to full over [`RAMP`].
    fn capacity(&self, now: Time) -> (f64, f64) {
        let t = now.saturating_duration_since(self.since).as_secs_f64() / RAMP.as_secs_f64();
        let share = NEW_PEER_SHARE + (1.0 - NEW_PEER_SHARE) * t.min(1.0);
        (REQUESTS_PER_S * BURST_S * share, ANSWER_BYTES_PER_S * BURST_S * share)
    }

    /// Refill at the peer's rate times `factor` (1 normally; below 1 for a group that has
    /// misbehaved) up to the bucket's size.
    fn refill(&mut self, now: Time, factor: f64) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now.max(self.at);
        let (cr, cb) = self.capacity(now);
        self.requests = (self.requests + dt * REQUESTS_PER_S * factor).min(cr);
        self.bytes = (self.bytes + dt * ANSWER_BYTES_PER_S * factor).min(cb);
    }

    /// A request arrives at `now`: take one request token (and require no byte debt).
    pub fn admit(&mut self, now: Time, factor: f64) -> Admit {
        let factor = factor.clamp(0.01, 1.0);
        self.refill(now, factor);
        self.requests -= 1.0;
        let short_r = (-self.requests).max(0.0) / (REQUESTS_PER_S * factor);
        let short_b = (-self.bytes).max(0.0) / (ANSWER_BYTES_PER_S * factor);
        let wait = short_r.max(short_b);
        if wait <= 0.0 {
            Admit::Now
        } else if wait <= MAX_WAIT.as_secs_f64() {
            Admit::After(Duration::from_secs_f64(wait))
        } else {
            // Not served: give the token back.
            self.requests += 1.0;
            Admit::Drop
        }
    }

    /// An answer of `n` bytes went out: charge it (a debt delays the next requests).
    pub fn charge(&mut self, n: usize) {
        self.bytes -= n as f64;
    }
}

/// The refill factor of a peer whose group has a misbehaviour score `group_score`: 1 below
/// the throttle, halved for each further [`super::score::GROUP_THROTTLE`].
pub fn group_factor(group_score: u32) -> f64 {
    let t = super::score::GROUP_THROTTLE;
    if group_score < t {
        1.0
    } else {
        0.5f64.powi(((group_score / t).min(30)) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_identity_has_a_small_bucket_that_grows_with_time_connected() {
        let t0 = Time::ZERO;
        let mut b = RequestBudget::new(t0);
        // 10 % of 2 s × 20/s = 4 requests at once, then the rate.
        let now: Vec<Admit> = (0..4).map(|_| b.admit(t0, 1.0)).collect();
        assert!(now.iter().all(|a| *a == Admit::Now), "{now:?}");
        assert!(matches!(b.admit(t0, 1.0), Admit::After(_)));
        // After the ramp, a full burst of 40.
        let t1 = t0 + RAMP + Duration::from_secs(10);
        let mut b = RequestBudget::new(t0);
        b.admit(t1, 1.0);
        let n = (0..100).take_while(|_| b.admit(t1, 1.0) == Admit::Now).count();
        assert!((38..=40).contains(&n), "{n}");
    }

    #[test]
    fn a_flood_is_delayed_then_dropped_and_answers_are_charged() {
        let t0 = Time::ZERO;
        let mut b = RequestBudget::new(t0);
        let mut dropped = 0;
        for _ in 0..1_000 {
            if b.admit(t0, 1.0) == Admit::Drop {
                dropped += 1;
            }
        }
        // At most MAX_WAIT × 20/s + the bucket are ever admitted at one instant.
        assert!(dropped >= 1_000 - (4 + 100 + 1), "{dropped}");
        // Big answers: 4 MiB/s; a 40 MiB debt holds the next request ~10 s: dropped.
        let mut b = RequestBudget::new(t0);
        b.charge(40 << 20);
        assert_eq!(b.admit(t0, 1.0), Admit::Drop);
        assert!(matches!(b.admit(t0 + Duration::from_secs(8), 1.0), Admit::After(_)));
        assert_eq!(b.admit(t0 + Duration::from_secs(12), 1.0), Admit::Now);
    }

    #[test]
    fn a_misbehaving_group_refills_slower() {
        assert_eq!(group_factor(0), 1.0);
        assert_eq!(group_factor(super::super::score::GROUP_THROTTLE), 0.5);
        let t0 = Time::ZERO;
        let mut fast = RequestBudget::new(t0);
        let mut slow = RequestBudget::new(t0);
        let count = |b: &mut RequestBudget, t: Time, f: f64| {
            (0..100).take_while(|_| b.admit(t, f) == Admit::Now).count()
        };
        // Both spend their first bucket, then refill for 0.1 s: 2 requests at the full rate,
        // none at a tenth of it.
        assert_eq!(count(&mut fast, t0, 1.0), 4);
        assert_eq!(count(&mut slow, t0, 0.1), 4);
        let t1 = t0 + Duration::from_millis(200);
        assert!(count(&mut slow, t1, 0.1) < count(&mut fast, t1, 1.0));
    }
}
