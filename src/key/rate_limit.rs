//! [`RateLimit`]: a key's request budget. A plain value; the limiter that enforces it lives with the layer.

use std::num::NonZeroU32;
use std::time::Duration;

/// A rate limit: at most `requests` per `period`, with bursts up to `requests` (GCRA).
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::RateLimit;
/// let l = RateLimit::new(100, Duration::from_secs(60)).unwrap();
/// assert_eq!(l.requests(), 100);
/// assert_eq!(l.period(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RateLimit {
    requests: NonZeroU32,
    #[cfg_attr(feature = "serde", serde(rename = "period_seconds", with = "crate::key::serde_util::secs"))]
    period: Duration,
}

impl RateLimit {
    /// `requests` per `period`; `None` if either is zero.
    ///
    /// ```
    /// assert!(tower_api_key::RateLimit::new(0, std::time::Duration::from_secs(1)).is_none());
    /// ```
    #[must_use]
    pub fn new(requests: u32, period: Duration) -> Option<Self> {
        let requests = NonZeroU32::new(requests)?;
        (!period.is_zero()).then_some(Self { requests, period })
    }

    /// `requests` per second.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(5).unwrap().requests(), 5);
    /// ```
    #[must_use]
    pub fn per_second(requests: u32) -> Option<Self> {
        Self::new(requests, Duration::from_secs(1))
    }

    /// Requests allowed per period (also the burst size).
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(3).unwrap().requests(), 3);
    /// ```
    #[must_use]
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// The period.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(3).unwrap().period().as_secs(), 1);
    /// ```
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }
}
