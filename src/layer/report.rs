//! What the layer writes to the logs: a line per rejection at debug, and at info at most one summary per period
//! with the counts per reason, so that a flood of bad requests cannot fill a disk. Store failures are logged at
//! error at most once per period, with the count of those left out.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::key::KeyId;
use crate::reject::RejectReason;

/// How often the summary line (and a store-failure line) may be written, by default.
pub const DEFAULT_LOG_PERIOD: Duration = Duration::from_secs(60);

/// Every reason, in the order of the summary's counts.
const REASONS: [RejectReason; RejectReason::ALL.len()] = RejectReason::ALL;

/// The counter of `reason`: `REASONS` lists the reasons in declaration order, so this is its discriminant.
fn index(reason: RejectReason) -> usize {
    (reason as usize).min(REASONS.len() - 1)
}

/// The clock is read (to see whether a summary is due) once every this many events, not on every rejection.
const CHECK_EVERY: u64 = 64;

/// Counts since the last summary, and when the next one is due.
#[derive(Debug)]
pub(crate) struct Report {
    period: Duration,
    started: Instant,
    counts: [AtomicU64; REASONS.len()],
    /// Every event, to read the clock only once every [`CHECK_EVERY`].
    events: AtomicU64,
    deprecated: AtomicU64,
    store_errors_left_out: AtomicU64,
    /// Milliseconds since `started` when the next summary is due.
    next_summary: AtomicU64,
    /// Milliseconds since `started` when a store failure may be logged again.
    next_store_error: AtomicU64,
    /// Serializes the writing of a summary (never held by a request that does not write one).
    writing: Mutex<()>,
}

impl Report {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            started: Instant::now(),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            events: AtomicU64::new(0),
            deprecated: AtomicU64::new(0),
            store_errors_left_out: AtomicU64::new(0),
            next_summary: AtomicU64::new(millis(period)),
            next_store_error: AtomicU64::new(0),
            writing: Mutex::new(()),
        }
    }

    fn now(&self) -> u64 {
        millis(self.started.elapsed())
    }

    /// A request authenticated with the deprecated `X-API-Key` header.
    pub(crate) fn deprecated_header(&self) {
        tracing::debug!("API key sent in the deprecated X-API-Key header (RFC 6648)");
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_deprecated_header_total", "header" => "x-api-key").increment(1);
        if !tracing::enabled!(tracing::Level::INFO) {
            return; // nobody reads the summary: no counting on the request path
        }
        self.deprecated.fetch_add(1, Ordering::Relaxed);
        self.maybe_summarize();
    }

    /// A request was rejected.
    pub(crate) fn rejected(&self, reason: RejectReason, key_id: Option<&KeyId>) {
        tracing::debug!(reason = reason.as_str(), key_id = key_id.map(tracing::field::display), "api key rejected");
        if !tracing::enabled!(tracing::Level::INFO) {
            return; // nobody reads the summary: no counting on the request path
        }
        self.counts[index(reason)].fetch_add(1, Ordering::Relaxed);
        self.maybe_summarize();
    }

    /// The store failed: an error line, at most one per period.
    pub(crate) fn store_failed(&self, error: &(dyn std::error::Error + 'static)) {
        let now = self.now();
        let due = self.next_store_error.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_store_error
                .compare_exchange(due, now + millis(self.period), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let left_out = self.store_errors_left_out.swap(0, Ordering::Relaxed);
            tracing::error!(error = error, left_out, "API key store failed; failing closed");
        } else {
            self.store_errors_left_out.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn maybe_summarize(&self) {
        if !self.events.fetch_add(1, Ordering::Relaxed).is_multiple_of(CHECK_EVERY) {
            return;
        }
        let now = self.now();
        let due = self.next_summary.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        if self
            .next_summary
            .compare_exchange(due, now + millis(self.period), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another request writes this one
        }
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.summarize();
    }

    /// Writes the counts since the last summary (nothing when there were none) and starts counting afresh.
    pub(crate) fn summarize(&self) -> Option<String> {
        let mut parts = Vec::new();
        let mut total = 0;
        for (reason, count) in REASONS.iter().zip(&self.counts) {
            let n = count.swap(0, Ordering::Relaxed);
            if n > 0 {
                total += n;
                parts.push(format!("{}={n}", reason.as_str()));
            }
        }
        let deprecated = self.deprecated.swap(0, Ordering::Relaxed);
        if total == 0 && deprecated == 0 {
            return None;
        }
        let counts = parts.join(" ");
        tracing::info!(
            rejected = total,
            counts = counts.as_str(),
            x_api_key_uses = deprecated,
            period_seconds = self.period.as_secs(),
            "api key rejections since the last summary"
        );
        Some(counts)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        for (i, reason) in REASONS.iter().enumerate() {
            assert_eq!(index(*reason), i, "{reason}");
        }
    }

    #[test]
    fn without_an_info_subscriber_nothing_is_counted() {
        let report = Report::new(Duration::from_secs(3600));
        report.rejected(RejectReason::Unknown, None);
        let _info = tracing::subscriber::set_default(
            tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish(),
        );
        assert_eq!(report.summarize(), None);
    }

    #[test]
    fn counts_are_summed_per_reason_and_reset() {
        let _info = tracing::subscriber::set_default(
            tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish(),
        );
        let report = Report::new(Duration::from_secs(3600));
        for _ in 0..3 {
            report.rejected(RejectReason::Unknown, None);
        }
        report.rejected(RejectReason::Malformed, None);
        assert_eq!(report.summarize().as_deref(), Some("malformed=1 unknown=3"));
        assert_eq!(report.summarize(), None, "nothing since");
    }
}
