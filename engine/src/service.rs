//! The running engine: a store, the deployed flows, the calendar and the
//! wall clock, plus the timer service that fires due timers.

use crate::calendar::Calendar;
use crate::core::Time;
use crate::registry::Registry;
use crate::store::{ExecError, Outcome, Request, Store};
use std::sync::Arc;
use std::time::Duration;

static CLOCK_OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Shifts the adapter clock by `seconds` (drills and tests: "the server was
/// down for three days"). The core never reads a clock; only adapters do.
pub fn set_clock_offset(seconds: i64) {
    CLOCK_OFFSET.store(seconds, std::sync::atomic::Ordering::Relaxed);
}

/// The adapter clock: now in China Standard Time (UTC+8), to the second.
pub fn now_cst() -> Time {
    let offset = CLOCK_OFFSET.load(std::sync::atomic::Ordering::Relaxed);
    let t = (chrono::Utc::now() + chrono::Duration::hours(8) + chrono::Duration::seconds(offset))
        .naive_utc();
    chrono::Timelike::with_nanosecond(&t, 0).unwrap_or(t)
}

#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    pub flows: Arc<Registry>,
    pub calendar: Arc<Calendar>,
}

impl Engine {
    pub async fn execute(&self, req: &Request) -> Result<Outcome, ExecError> {
        self.store
            .execute(req, &self.flows, &self.calendar, now_cst())
            .await
    }

    /// Fires every timer due at `now` (in batches); returns how many fired.
    pub async fn tick(&self, now: Time) -> Result<u32, ExecError> {
        let mut total = 0;
        loop {
            let n = self
                .store
                .tick(now, &self.flows, &self.calendar, 256)
                .await?;
            total += n;
            if n < 256 {
                return Ok(total);
            }
        }
    }

    /// Runs the timer service until the task is dropped: every `poll`, fire
    /// what is due. Errors are logged and retried on the next round.
    pub fn spawn_timers(&self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = engine.tick(now_cst()).await {
                    eprintln!("timer service: {e}");
                }
            }
        })
    }
}
