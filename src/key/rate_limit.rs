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
#[cfg_attr(feature = "serde", serde(try_from = "Unchecked"))]
pub struct RateLimit {
    requests: NonZeroU32,
    #[cfg_attr(feature = "serde", serde(rename = "period_seconds", with = "crate::key::serde_util::secs"))]
    period: Duration,
}

/// A rate limit as read, before [`RateLimit::new`] checks it: what serde deserializes, so that no limit out of
/// range gets in that way either.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct Unchecked {
    requests: u32,
    #[serde(rename = "period_seconds", with = "crate::key::serde_util::secs")]
    period: Duration,
}

#[cfg(feature = "serde")]
impl TryFrom<Unchecked> for RateLimit {
    type Error = &'static str;

    fn try_from(raw: Unchecked) -> Result<Self, Self::Error> {
        Self::new(raw.requests, raw.period)
            .ok_or("rate limit: requests must be at least 1 and the period more than 0 and at most 365 days")
    }
}

impl RateLimit {
    /// The longest period: 365 days, far inside the limiters' arithmetic (nanoseconds in 64 bits reach 584 years;
    /// a period of `Duration::MAX` overflowed it).
    ///
    /// ```
    /// use tower_api_key::RateLimit;
    /// assert!(RateLimit::new(1, RateLimit::MAX_PERIOD).is_some());
    /// assert!(RateLimit::new(1, RateLimit::MAX_PERIOD + std::time::Duration::from_nanos(1)).is_none());
    /// ```
    pub const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

    /// `requests` per `period`; `None` if either is zero or the period is longer than [`RateLimit::MAX_PERIOD`].
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(tower_api_key::RateLimit::new(0, Duration::from_secs(1)).is_none());
    /// assert!(tower_api_key::RateLimit::new(u32::MAX, Duration::MAX).is_none());
    /// ```
    #[must_use]
    pub fn new(requests: u32, period: Duration) -> Option<Self> {
        let requests = NonZeroU32::new(requests)?;
        (!period.is_zero() && period <= Self::MAX_PERIOD).then_some(Self { requests, period })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_past_the_maximum_and_zeros_are_refused() {
        assert!(RateLimit::new(u32::MAX, RateLimit::MAX_PERIOD).is_some());
        assert!(RateLimit::new(u32::MAX, Duration::MAX).is_none());
        assert!(RateLimit::new(1, RateLimit::MAX_PERIOD + Duration::from_nanos(1)).is_none());
        assert!(RateLimit::new(0, Duration::from_secs(1)).is_none());
        assert!(RateLimit::new(1, Duration::ZERO).is_none());
    }

    /// Deserializing goes through the same check: a stored or sent limit out of range is an error, not a limit
    /// that overflows the limiter later.
    #[cfg(feature = "serde")]
    #[test]
    fn deserializing_checks_the_range_too() {
        let ok: RateLimit = serde_json::from_str(r#"{"requests": 10, "period_seconds": 60}"#).unwrap();
        assert_eq!(ok, RateLimit::new(10, Duration::from_secs(60)).unwrap());
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"requests":10,"period_seconds":60.0}"#);
        for bad in [
            r#"{"requests": 10, "period_seconds": 1e12}"#,
            r#"{"requests": 0, "period_seconds": 60}"#,
            r#"{"requests": 10, "period_seconds": 0}"#,
        ] {
            let err = serde_json::from_str::<RateLimit>(bad).unwrap_err().to_string();
            assert!(err.contains("rate limit: requests must be at least 1"), "{bad}: {err}");
        }
    }
}
