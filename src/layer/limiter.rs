//! Per-key rate limiting in process: GCRA (the `governor` crate) keyed by key id.
//!
//! Each distinct [`RateLimit`] gets one keyed governor limiter; a key's state lives in the limiter of its quota.
//! Idle keys are dropped (`retain_recent`) every few thousand checks, so memory stays bounded however many keys
//! are seen.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::key::{KeyId, RateLimit};
use crate::reject::RateLimitInfo;

/// How many checks between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

type Limiter = DefaultKeyedRateLimiter<KeyId>;

#[derive(Clone)]
pub(crate) struct KeyRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    default: Option<RateLimit>,
    limiters: RwLock<HashMap<RateLimit, Arc<Limiter>>>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl fmt::Debug for KeyRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRateLimiter").field("default", &self.inner.default).finish_non_exhaustive()
    }
}

fn quota(limit: RateLimit) -> Option<Quota> {
    let burst = std::num::NonZeroU32::new(limit.requests())?;
    Quota::with_period(limit.period() / limit.requests()).map(|q| q.allow_burst(burst))
}

impl KeyRateLimiter {
    pub(crate) fn new(default: Option<RateLimit>) -> Self {
        Self {
            inner: Arc::new(Inner {
                default,
                limiters: RwLock::new(HashMap::new()),
                checks: AtomicU64::new(0),
                clock: DefaultClock::default(),
            }),
        }
    }

    fn limiter(&self, limit: RateLimit) -> Option<Arc<Limiter>> {
        if let Some(l) = self.inner.limiters.read().unwrap_or_else(PoisonError::into_inner).get(&limit) {
            return Some(l.clone());
        }
        let q = quota(limit)?;
        let mut map = self.inner.limiters.write().unwrap_or_else(PoisonError::into_inner);
        Some(map.entry(limit).or_insert_with(|| Arc::new(Limiter::keyed(q))).clone())
    }

    /// `Err` with the wait when `id` is over its limit.
    pub(crate) fn check(&self, id: &KeyId, own: Option<RateLimit>) -> Result<(), RateLimitInfo> {
        let Some(limit) = own.or(self.inner.default) else { return Ok(()) };
        let Some(limiter) = self.limiter(limit) else { return Ok(()) };
        if self.inner.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        limiter.check_key(id).map_err(|not_until| RateLimitInfo {
            retry_after: not_until.wait_time_from(self.inner.clock.now()).max(Duration::from_millis(1)),
            limit: limit.requests(),
            window: limit.period(),
        })
    }

    pub(crate) fn sweep(&self) {
        let limiters: Vec<Arc<Limiter>> =
            self.inner.limiters.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for l in limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    #[cfg(test)]
    pub(crate) fn tracked_keys(&self) -> usize {
        self.inner.limiters.read().unwrap_or_else(PoisonError::into_inner).values().map(|l| l.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_reject_then_other_keys_unaffected() {
        let rl = KeyRateLimiter::new(RateLimit::new(3, Duration::from_secs(60)));
        let a = KeyId::random();
        for _ in 0..3 {
            assert!(rl.check(&a, None).is_ok());
        }
        let info = rl.check(&a, None).unwrap_err();
        assert!(info.retry_after > Duration::from_secs(1), "{info:?}");
        assert_eq!(info.limit, 3);
        assert!(rl.check(&KeyId::random(), None).is_ok());
    }

    #[test]
    fn own_limit_wins_over_default() {
        let rl = KeyRateLimiter::new(RateLimit::new(100, Duration::from_secs(1)));
        let a = KeyId::random();
        let own = RateLimit::new(1, Duration::from_secs(60));
        assert!(rl.check(&a, own).is_ok());
        assert!(rl.check(&a, own).is_err());
    }

    #[test]
    fn no_limit_means_unlimited() {
        let rl = KeyRateLimiter::new(None);
        let a = KeyId::random();
        for _ in 0..1000 {
            assert!(rl.check(&a, None).is_ok());
        }
    }

    /// The widest limits the type allows stay inside the limiter's arithmetic (a period of `Duration::MAX` used to
    /// overflow governor's nanoseconds on the first request; `RateLimit::new` now refuses it).
    #[test]
    fn the_widest_limits_do_not_overflow() {
        let a = KeyId::random();
        let wide = RateLimit::new(u32::MAX, RateLimit::MAX_PERIOD);
        let rl = KeyRateLimiter::new(wide);
        for _ in 0..100 {
            assert!(rl.check(&a, None).is_ok());
        }
        let once = RateLimit::new(1, RateLimit::MAX_PERIOD);
        assert!(rl.check(&a, once).is_ok());
        let info = rl.check(&a, once).unwrap_err();
        assert!(info.retry_after > RateLimit::MAX_PERIOD - Duration::from_secs(60), "{info:?}");
    }

    #[test]
    fn idle_keys_are_swept() {
        // A tiny period: every key's state is "recent" for only a few microseconds.
        let rl = KeyRateLimiter::new(RateLimit::new(1, Duration::from_micros(10)));
        for _ in 0..10_000 {
            let _ = rl.check(&KeyId::random(), None);
        }
        std::thread::sleep(Duration::from_millis(5));
        rl.sweep();
        assert!(rl.tracked_keys() < 100, "{} keys still tracked", rl.tracked_keys());
    }
}
