//! Changes a store applies: [`KeyUpdate`] (a partial update of a record) and [`Usage`] (counts to add, per key and
//! hour); and what a store reports back of them, [`HourlyUsage`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::key::{KeyId, KeyRecord, RateLimit, Scopes};

/// A partial update: `None` leaves a field as it is.
///
/// ```
/// use tower_api_key::{KeyUpdate, Scopes};
/// let u = KeyUpdate { scopes: Some(Scopes::new(["read"])?), ..KeyUpdate::default() };
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<SystemTime>>,
    /// New metadata (replaces the whole map).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
}

impl KeyUpdate {
    /// Applies the update to `record`: the reference semantics of [`crate::KeyStore::update`], for stores that
    /// read, change and write a record under a lock or in a transaction. On a rotated key, a new expiry can only
    /// bring the end of its grace period closer.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// KeyUpdate { name: Some("new".into()), ..KeyUpdate::default() }.apply(&mut r);
    /// assert_eq!(r.name, "new");
    /// ```
    pub fn apply(&self, record: &mut KeyRecord) {
        if let Some(v) = &self.name {
            record.name.clone_from(v);
        }
        if let Some(v) = &self.scopes {
            record.scopes = v.clone();
        }
        if let Some(v) = self.expires_at {
            // A rotated key's grace period can be cut short, never stretched.
            record.expires_at = match (record.rotated_to, record.expires_at, v) {
                (Some(_), Some(end), Some(new)) => Some(end.min(new)),
                (Some(_), Some(end), None) => Some(end),
                _ => v,
            };
        }
        if let Some(v) = &self.metadata {
            record.metadata.clone_from(v);
        }
        if let Some(v) = self.enabled {
            record.enabled = v;
        }
        if let Some(v) = self.rate_limit {
            record.rate_limit = v;
        }
    }
}

/// How many hours of per-hour usage a store keeps at least: 168, seven days.
///
/// [`crate::KeyStore::record_usage`] keeps every hour bucket that starts fewer than `USAGE_HOURS_KEPT` hours
/// before the newest hour written; older buckets may be pruned. A window of `USAGE_HOURS_KEPT` hours ending with
/// the current hour ([`HourlyUsage::first_hour`]) is therefore always complete.
///
/// ```
/// assert_eq!(tower_api_key::USAGE_HOURS_KEPT, 7 * 24);
/// ```
pub const USAGE_HOURS_KEPT: u32 = 168;

/// Seconds in one usage hour.
const HOUR: Duration = Duration::from_secs(3600);

/// Usage of one key within one UTC clock hour, over one flush period, as recorded by [`crate::UsageTracker`] and
/// written by [`crate::KeyStore::record_usage`]. A flush that spans an hour boundary carries two entries for a
/// key used on both sides of it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_api_key::{KeyId, Usage};
///
/// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_123);
/// let u = Usage::new(KeyId::random(), 3, at);
/// assert_eq!(u.hour, UNIX_EPOCH + Duration::from_secs(1_699_999_200)); // the hour that holds `at`
/// let by_hand = Usage { id: u.id, hour: Usage::hour_of(at), count: 3, last_used: at };
/// assert_eq!(u, by_hand);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The key.
    pub id: KeyId,
    /// The start of the UTC clock hour the requests fell in ([`Usage::hour_of`]). Stores round it down to its
    /// hour, so any time within the hour names it.
    pub hour: SystemTime,
    /// Successful requests within that hour since the last flush.
    pub count: u64,
    /// Time of the latest of them.
    pub last_used: SystemTime,
}

impl Usage {
    /// `count` uses of `id`, the latest at `at`, all within the hour that holds `at`.
    ///
    /// ```
    /// let at = std::time::SystemTime::now();
    /// let u = tower_api_key::Usage::new(tower_api_key::KeyId::random(), 1, at);
    /// assert_eq!((u.hour, u.last_used), (tower_api_key::Usage::hour_of(at), at));
    /// ```
    #[must_use]
    pub fn new(id: KeyId, count: u64, at: SystemTime) -> Self {
        Self { id, hour: Self::hour_of(at), count, last_used: at }
    }

    /// The start of the UTC clock hour that holds `t`: `t` rounded down to a whole multiple of 3600 s since the
    /// Unix epoch (UTC has no leap seconds in `SystemTime`, so these are the wall clock's hours).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_api_key::Usage;
    /// let t = UNIX_EPOCH + Duration::new(7_199, 999_999_999);
    /// assert_eq!(Usage::hour_of(t), UNIX_EPOCH + Duration::from_secs(3600));
    /// assert_eq!(Usage::hour_of(UNIX_EPOCH - Duration::from_secs(1)), UNIX_EPOCH - Duration::from_secs(3600));
    /// ```
    #[must_use]
    pub fn hour_of(t: SystemTime) -> SystemTime {
        let hour = HOUR.as_secs();
        match t.duration_since(UNIX_EPOCH) {
            Ok(after) => UNIX_EPOCH + Duration::from_secs(after.as_secs() / hour * hour),
            Err(before) => {
                // Before 1970: round away from the epoch, to the start of the hour.
                let d = before.duration();
                let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() != 0));
                UNIX_EPOCH.checked_sub(Duration::from_secs(secs.div_ceil(hour).saturating_mul(hour))).unwrap_or(t)
            }
        }
    }
}

/// The requests of one key within one UTC clock hour, as [`crate::KeyStore::hourly_usage`] returns them.
///
/// With the `serde` feature it serializes as `{"hour": "<RFC 3339 start of the hour>", "count": n}`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_api_key::HourlyUsage;
/// let h = HourlyUsage { hour: UNIX_EPOCH + Duration::from_secs(3600), count: 12 };
/// # #[cfg(feature = "serde")]
/// assert_eq!(
///     serde_json::to_value(h).unwrap(),
///     serde_json::json!({"hour": "1970-01-01T01:00:00.000000000Z", "count": 12})
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HourlyUsage {
    /// The start of the hour ([`Usage::hour_of`]).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::key::serde_util::time::serialize"))]
    pub hour: SystemTime,
    /// Successful requests within it.
    pub count: u64,
}

impl HourlyUsage {
    /// The first of the `hours` hours that end with the hour holding `now`: the `since` to ask
    /// [`crate::KeyStore::hourly_usage`] for them. `hours` is taken as 1 to [`USAGE_HOURS_KEPT`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_api_key::HourlyUsage;
    /// let now = UNIX_EPOCH + Duration::from_secs(10 * 3600 + 59);
    /// assert_eq!(HourlyUsage::first_hour(now, 1), UNIX_EPOCH + Duration::from_secs(10 * 3600));
    /// assert_eq!(HourlyUsage::first_hour(now, 24), UNIX_EPOCH - Duration::from_secs(13 * 3600));
    /// ```
    #[must_use]
    pub fn first_hour(now: SystemTime, hours: u32) -> SystemTime {
        let back = HOUR * (hours.clamp(1, USAGE_HOURS_KEPT) - 1);
        let last = Usage::hour_of(now);
        last.checked_sub(back).unwrap_or(last)
    }

    /// Exactly `hours` entries (1 to [`USAGE_HOURS_KEPT`]), oldest first, one per hour, the last the hour holding
    /// `now`: the counts of `counts` that fall in them (summed, saturating, if an hour appears twice), zero for
    /// the hours without one. Counts outside the window are left out.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_api_key::HourlyUsage;
    /// let hour = |h: u64| UNIX_EPOCH + Duration::from_secs(h * 3600);
    /// let stored = [HourlyUsage { hour: hour(1), count: 5 }, HourlyUsage { hour: hour(3), count: 2 }];
    /// let series = HourlyUsage::fill(&stored, hour(3) + Duration::from_secs(600), 3);
    /// let counts: Vec<u64> = series.iter().map(|h| h.count).collect();
    /// assert_eq!(counts, [5, 0, 2]);
    /// assert_eq!(series[0].hour, hour(1));
    /// ```
    #[must_use]
    pub fn fill(counts: &[HourlyUsage], now: SystemTime, hours: u32) -> Vec<HourlyUsage> {
        let first = Self::first_hour(now, hours);
        let last = Usage::hour_of(now);
        let mut series = Vec::with_capacity(hours.clamp(1, USAGE_HOURS_KEPT) as usize);
        let mut next = Some(first);
        while let Some(hour) = next.filter(|h| *h <= last) {
            series.push(HourlyUsage { hour, count: 0 });
            next = hour.checked_add(HOUR);
        }
        for c in counts {
            let Ok(since_first) = Usage::hour_of(c.hour).duration_since(first) else { continue };
            let slot = usize::try_from(since_first.as_secs() / HOUR.as_secs()).unwrap_or(usize::MAX);
            if let Some(entry) = series.get_mut(slot) {
                entry.count = entry.count.saturating_add(c.count);
            }
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_down_to_their_hour() {
        let s = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        let cases = [
            (s(0), s(0)),
            (s(3599), s(0)),
            (s(3600), s(3600)),
            (UNIX_EPOCH + Duration::new(1_700_000_000, 1), s(1_699_999_200)),
            (UNIX_EPOCH - Duration::from_nanos(1), UNIX_EPOCH - Duration::from_secs(3600)),
            (UNIX_EPOCH - Duration::from_secs(3600), UNIX_EPOCH - Duration::from_secs(3600)),
            (UNIX_EPOCH - Duration::from_secs(3601), UNIX_EPOCH - Duration::from_secs(7200)),
        ];
        for (t, hour) in cases {
            assert_eq!(Usage::hour_of(t), hour, "{t:?}");
        }
    }

    #[test]
    fn a_window_is_exactly_its_hours_zero_filled_and_bounded() {
        let hour = |h: u64| UNIX_EPOCH + Duration::from_secs(h * 3600);
        let now = hour(500) + Duration::from_secs(1);
        let counts = [
            HourlyUsage { hour: hour(499), count: u64::MAX },
            HourlyUsage { hour: hour(499) + Duration::from_secs(5), count: 1 }, // same hour: saturates
            HourlyUsage { hour: hour(400), count: 7 },                          // before the window
            HourlyUsage { hour: hour(501), count: 7 },                          // after it
        ];
        let series = HourlyUsage::fill(&counts, now, 24);
        assert_eq!(series.len(), 24);
        assert_eq!((series[0].hour, series[23].hour), (hour(477), hour(500)));
        assert!(series.windows(2).all(|w| w[1].hour == w[0].hour + HOUR));
        assert_eq!((series[22].count, series[23].count), (u64::MAX, 0));
        assert_eq!(series.iter().filter(|h| h.count != 0).count(), 1);
        for (asked, len) in [(0, 1), (1, 1), (USAGE_HOURS_KEPT, 168), (u32::MAX, 168)] {
            assert_eq!(HourlyUsage::fill(&[], now, asked).len(), len, "{asked}");
        }
        // Near the start of time: no panic, still bounded.
        assert!(HourlyUsage::fill(&counts, std::time::SystemTime::UNIX_EPOCH, 24).len() <= 24);
    }
}
