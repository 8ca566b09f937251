//! The login throttle. Every login attempt is counted *before* its password
//! is checked, so a hundred guesses sent at once are a hundred attempts, not
//! one. Attempts are limited per client address (all logins from it) and per
//! (login, address): someone guessing one account's password from their own
//! address never locks its owner out elsewhere. The counters are governor's
//! keyed GCRA limiters; keys that have fully recovered are dropped, and the
//! number of keys is capped, so memory stays bounded whatever is sent. Login
//! names longer than [`MAX_LOGIN`] never reach the throttle (`auth::login`
//! refuses them first).

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The longest login name, in characters (the same limit as creating a user).
pub(crate) const MAX_LOGIN: usize = 64;

/// The most keys either counter holds; past it, after dropping recovered
/// keys, new keys are refused until some recover (a flood from many
/// addresses slows logins rather than exhausting memory).
const MAX_KEYS: usize = 50_000;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub(crate) struct LoginThrottle<C: Clock = DefaultClock> {
    clock: C,
    /// Every attempt from an address: 20 at once, then one every 3 s.
    by_address: Keyed<IpAddr, C>,
    /// Attempts on one login from one address: 5 at once, then one every 30 s.
    by_login: Keyed<(String, IpAddr), C>,
    /// When the recovered keys were last dropped.
    pruned: std::sync::Mutex<Option<C::Instant>>,
}

/// The client an address stands for: an IPv6 address by its /64 (one
/// subscriber's network hands out many), an IPv4 address itself.
fn client(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::from(s)
        }
        v4 => v4,
    }
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl LoginThrottle<DefaultClock> {
    pub(crate) fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> LoginThrottle<C> {
    pub(crate) fn with_clock(clock: C) -> Self {
        LoginThrottle {
            by_address: RateLimiter::dashmap_with_clock(
                quota(20, Duration::from_secs(3)),
                clock.clone(),
            ),
            by_login: RateLimiter::dashmap_with_clock(
                quota(5, Duration::from_secs(30)),
                clock.clone(),
            ),
            clock,
            pruned: std::sync::Mutex::new(None),
        }
    }

    /// Counts one attempt on `login` from `addr`; `Err(seconds)` when it must
    /// wait that long first.
    pub(crate) fn attempt(&self, login: &str, addr: IpAddr) -> Result<(), u64> {
        let addr = client(addr);
        self.prune();
        if self.by_address.len() >= MAX_KEYS || self.by_login.len() >= MAX_KEYS {
            return Err(60);
        }
        let wait =
            |n: governor::NotUntil<C::Instant>| n.wait_time_from(self.clock.now()).as_secs().max(1);
        self.by_address.check_key(&addr).map_err(wait)?;
        self.by_login
            .check_key(&(login.to_string(), addr))
            .map_err(wait)
    }

    /// Counts one attempt from `addr` that names no valid login (refused
    /// unread, but still work and an audit row).
    pub(crate) fn address(&self, addr: IpAddr) -> Result<(), u64> {
        let addr = client(addr);
        self.prune();
        if self.by_address.len() >= MAX_KEYS {
            return Err(60);
        }
        self.by_address
            .check_key(&addr)
            .map_err(|n| n.wait_time_from(self.clock.now()).as_secs().max(1))
    }

    /// Drops the keys that have fully recovered, at most once a second.
    fn prune(&self) {
        let now = self.clock.now();
        let Ok(mut last) = self.pruned.lock() else {
            return;
        };
        let due =
            last.is_none_or(|l| Duration::from(now.duration_since(l)) >= Duration::from_secs(1));
        if !due {
            return;
        }
        *last = Some(now);
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_login.retain_recent();
        self.by_login.shrink_to_fit();
    }

    /// How many keys the counters hold (tests).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.by_address.len() + self.by_login.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn five_attempts_on_a_login_then_a_wait_but_not_for_its_owner_elsewhere() {
        let clock = FakeRelativeClock::default();
        let t = LoginThrottle::with_clock(clock.clone());
        for _ in 0..5 {
            assert_eq!(t.attempt("wangfang", ip(1)), Ok(()));
        }
        let wait = t.attempt("wangfang", ip(1));
        assert!(matches!(wait, Err(s) if (1..=30).contains(&s)), "{wait:?}");
        // The owner, from their own address, is not locked out.
        assert_eq!(t.attempt("wangfang", ip(2)), Ok(()));
        // After 30 s one more attempt.
        clock.advance(Duration::from_secs(30));
        assert_eq!(t.attempt("wangfang", ip(1)), Ok(()));
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let t = LoginThrottle::with_clock(FakeRelativeClock::default());
        let ok = (0..40u16)
            .filter(|i| {
                let a = IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, *i]);
                t.attempt(&format!("user{i}"), a).is_ok()
            })
            .count();
        assert_eq!(ok, 20, "one /64, one address budget");
    }

    #[test]
    fn one_address_trying_many_logins_is_slowed_down() {
        let t = LoginThrottle::with_clock(FakeRelativeClock::default());
        let ok = (0..100)
            .filter(|i| t.attempt(&format!("user{i}"), ip(1)).is_ok())
            .count();
        assert_eq!(ok, 20, "20 at once from one address");
        // The keys made are bounded by what was let through.
        assert!(t.keys() <= 21, "{}", t.keys());
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let clock = FakeRelativeClock::default();
        let t = LoginThrottle::with_clock(clock.clone());
        for i in 0..120_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            let _ = t.attempt(&format!("u{i}"), addr);
            if i % 10_000 == 0 {
                clock.advance(Duration::from_secs(200));
            }
        }
        assert!(t.keys() <= 2 * MAX_KEYS, "{}", t.keys());
    }
}
