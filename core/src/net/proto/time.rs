//! Time as the protocol sees it: a moment on a monotonic clock, given as an input. The QUIC
//! driver reads its clock once per event and passes the moment in; a simulator passes its own.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A moment: the time since an origin the caller chose (a driver's first reading, or 0 in a
/// simulator). Only differences between moments of one clock mean anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Duration);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(Duration::ZERO);

    /// The moment `since` after the origin.
    pub const fn from_origin(since: Duration) -> Time {
        Time(since)
    }

    /// How long after the origin this moment is.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this moment is (zero if it is not later).
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    /// Saturating: a moment past the end of `Duration` stays there.
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Time {
    type Output = Time;

    /// Saturating: never before the origin.
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_add_and_subtract_without_overflow() {
        let t = Time::ZERO + Duration::from_secs(5);
        assert_eq!(t.saturating_duration_since(Time::ZERO), Duration::from_secs(5));
        assert_eq!(Time::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            Time::from_origin(Duration::MAX) + Duration::from_secs(1),
            Time::from_origin(Duration::MAX)
        );
        assert!(t > Time::ZERO && t.since_origin() == Duration::from_secs(5));
        assert_eq!(t - Duration::from_secs(9), Time::ZERO);
        let mut u = t;
        u += Duration::from_secs(1);
        assert_eq!(u - Duration::from_secs(6), Time::ZERO);
    }
}
