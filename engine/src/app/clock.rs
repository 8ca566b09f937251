//! The adapters' clock. The core never reads a clock (`now` is an argument);
//! the engine and the server ask the `Clock` they were given, so tests drive
//! time with a `ManualClock` instead of spawning a process and sleeping.

use crate::core::Time;
use std::sync::Mutex;

/// Where "now" comes from: China Standard Time (UTC+8), to the second.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Time;

    /// `Some(offset)` when this clock is the wall clock shifted by `offset`
    /// seconds: the timer service then asks the database for the time (plus
    /// the offset), so nodes whose clocks drift still agree on what is due.
    fn wall_offset(&self) -> Option<i64> {
        None
    }
}

/// The wall clock, optionally shifted (drills: "the server was down for
/// three days"; `GOVFLOW_CLOCK_OFFSET` seconds for `govflow serve`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock {
    pub offset_seconds: i64,
}

impl SystemClock {
    pub fn shifted(offset_seconds: i64) -> SystemClock {
        SystemClock { offset_seconds }
    }
}

/// A UTC instant as China Standard Time, to the second.
pub fn cst(utc: chrono::DateTime<chrono::Utc>) -> Time {
    let t = (utc + chrono::Duration::hours(8)).naive_utc();
    chrono::Timelike::with_nanosecond(&t, 0).unwrap_or(t)
}

impl Clock for SystemClock {
    fn now(&self) -> Time {
        cst(chrono::Utc::now() + chrono::Duration::seconds(self.offset_seconds))
    }
    fn wall_offset(&self) -> Option<i64> {
        Some(self.offset_seconds)
    }
}

/// A clock that moves only when told (tests, benchmarks, scenario runs).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Time>,
}

impl ManualClock {
    pub fn at(now: Time) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }
    pub fn set(&self, now: Time) {
        let mut g = match self.now.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = now;
    }
    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now();
        self.set(now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        match self.now.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
            .and_then(|d| d.and_hms_opt(23, 59, 0))
            .unwrap_or_default();
        let c = ManualClock::at(t);
        assert_eq!(c.now(), t);
        c.advance(chrono::Duration::minutes(2));
        assert_eq!(c.now().to_string(), "2027-01-01 00:01:00");
        assert_eq!(c.wall_offset(), None);
    }

    #[test]
    fn the_system_clock_is_china_standard_time_shifted() {
        let c = SystemClock::shifted(86_400);
        let expected = cst(chrono::Utc::now()) + chrono::Duration::days(1);
        assert!((c.now() - expected).num_seconds().abs() <= 1);
        assert_eq!(c.wall_offset(), Some(86_400));
    }
}
