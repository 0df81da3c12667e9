//! Time, injectable so that expiry and grace periods are tested without sleeping.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of the current time. [`SystemClock`] in production, `ManualClock` (feature `test-util`) in tests.
///
/// ```
/// use tower_api_key::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
///
/// ```
/// use tower_api_key::{Clock, SystemClock};
/// assert!(SystemClock.now() <= std::time::SystemTime::now());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use manual::ManualClock;

#[cfg(any(test, feature = "test-util"))]
mod manual {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::Clock;

    /// A clock that moves only when told to; clones share the same time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_api_key::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(std::time::UNIX_EPOCH + Duration::from_secs(1_000));
    /// let view = clock.clone();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(view.now(), std::time::UNIX_EPOCH + Duration::from_secs(1_005));
    /// ```
    #[derive(Debug, Clone)]
    pub struct ManualClock(Arc<AtomicU64>);

    impl ManualClock {
        /// A clock standing at `start` (nanosecond precision, after the Unix epoch).
        ///
        /// ```
        /// let c = tower_api_key::ManualClock::new(std::time::UNIX_EPOCH);
        /// # use tower_api_key::Clock; assert_eq!(c.now(), std::time::UNIX_EPOCH);
        /// ```
        #[must_use]
        pub fn new(start: SystemTime) -> Self {
            Self(Arc::new(AtomicU64::new(to_nanos(start))))
        }

        /// Moves the clock forward by `by`.
        ///
        /// ```
        /// # use tower_api_key::{Clock, ManualClock}; use std::time::*;
        /// let c = ManualClock::new(UNIX_EPOCH);
        /// c.advance(Duration::from_nanos(1));
        /// assert_eq!(c.now(), UNIX_EPOCH + Duration::from_nanos(1));
        /// ```
        pub fn advance(&self, by: Duration) {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            self.0.fetch_add(by, Ordering::SeqCst);
        }

        /// Sets the clock to `at`.
        ///
        /// ```
        /// # use tower_api_key::{Clock, ManualClock}; use std::time::*;
        /// let c = ManualClock::new(UNIX_EPOCH);
        /// c.set(UNIX_EPOCH + Duration::from_secs(9));
        /// assert_eq!(c.now(), UNIX_EPOCH + Duration::from_secs(9));
        /// ```
        pub fn set(&self, at: SystemTime) {
            self.0.store(to_nanos(at), Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_nanos(self.0.load(Ordering::SeqCst))
        }
    }

    fn to_nanos(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}
