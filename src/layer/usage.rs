//! Usage tracking off the request path: request counts per key and UTC hour, and last-used times, batched in
//! memory and flushed to the store periodically and on shutdown. Never one store write per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::key::{KeyId, RandomKeyHasher};
use crate::store::{KeyStore, Usage};

/// Default bound on the entries held between flushes: one per key and UTC hour in which it was used.
pub const DEFAULT_MAX_PENDING_KEYS: usize = 100_000;

/// Uses of one key within one hour since the last flush: the count and the latest time.
type Pending = HashMap<(KeyId, SystemTime), (u64, SystemTime), RandomKeyHasher>;

struct Inner {
    /// By key and start of the hour ([`Usage::hour_of`]).
    pending: Mutex<Pending>,
    max_keys: usize,
    dropped: AtomicU64,
    sink: Arc<dyn KeyStore>,
    stop: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Batches key usage and flushes it to a [`KeyStore`] ([`KeyStore::record_usage`]) every `interval` and on [`UsageTracker::shutdown`].
///
/// Uses are counted per key and UTC clock hour ([`Usage::hour_of`]): a key used on both sides of an hour
/// boundary between two flushes gives two [`Usage`] entries, so the store's per-hour counts
/// ([`KeyStore::hourly_usage`]) land in the hour each request was made in.
///
/// Recording is a short lock and a map update. Memory is bounded by the entries held between flushes, one per key
/// and hour: at most [`DEFAULT_MAX_PENDING_KEYS`] (or the capacity given to
/// [`UsageTracker::spawn_with_capacity`]), about 64 bytes each. A flush interval under an hour gives at most two
/// entries per key. Uses that would need a further entry are counted in [`UsageTracker::dropped`] and skipped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_api_key::{KeyStore, MemoryStore, NewKey, UsageTracker};
///
/// let store = MemoryStore::new();
/// let issued = store.add(NewKey::user("alice"))?;
/// let tracker = UsageTracker::spawn(store.clone(), Duration::from_secs(30));
/// tracker.record(&issued.record.id, std::time::SystemTime::now());
/// tracker.shutdown().await; // flushes
/// assert_eq!(store.get(&issued.record.id).await?.unwrap().usage_count, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UsageTracker {
    inner: Arc<Inner>,
}

impl fmt::Debug for UsageTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageTracker")
            .field("max_keys", &self.inner.max_keys)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl UsageTracker {
    /// Starts a tracker that flushes to `store` every `interval`, on the current Tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// # t.shutdown().await; }
    /// ```
    #[must_use]
    pub fn spawn(store: impl KeyStore, interval: Duration) -> Self {
        Self::spawn_with_capacity(store, interval, DEFAULT_MAX_PENDING_KEYS)
    }

    /// Like [`UsageTracker::spawn`], holding at most `max_keys` entries (one per key and hour) between flushes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let t = tower_api_key::UsageTracker::spawn_with_capacity(
    ///     tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5), 1_000);
    /// # t.shutdown().await; }
    /// ```
    #[must_use]
    pub fn spawn_with_capacity(store: impl KeyStore, interval: Duration, max_keys: usize) -> Self {
        let tracker = Self {
            inner: Arc::new(Inner {
                pending: Mutex::new(HashMap::default()),
                max_keys,
                dropped: AtomicU64::new(0),
                sink: Arc::new(store),
                stop: Notify::new(),
                task: Mutex::new(None),
            }),
        };
        let worker = tracker.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => worker.flush().await,
                    () = worker.inner.stop.notified() => {
                        worker.flush().await;
                        break;
                    }
                }
            }
        });
        *tracker.inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        tracker
    }

    /// Counts one successful use of `id` at `at`, in the hour that holds `at`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// t.record(&tower_api_key::KeyId::random(), std::time::SystemTime::now());
    /// assert_eq!(t.pending(), 1);
    /// # t.shutdown().await; }
    /// ```
    pub fn record(&self, id: &KeyId, at: SystemTime) {
        let slot = (*id, Usage::hour_of(at));
        let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = pending.get_mut(&slot) {
            entry.0 = entry.0.saturating_add(1);
            entry.1 = entry.1.max(at);
        } else if pending.len() < self.inner.max_keys {
            pending.insert(slot, (1, at));
        } else {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Entries waiting for the next flush: one per key and UTC hour in which it was used since the last flush
    /// (the length of the batch the next [`KeyStore::record_usage`] call gets). A key used on both sides of an
    /// hour boundary counts twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// assert_eq!(t.pending(), 0);
    /// # t.shutdown().await; }
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Uses skipped because the pending map was full, since the start.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// assert_eq!(t.dropped(), 0);
    /// # t.shutdown().await; }
    /// ```
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is pending to the store now. A failed write is logged and its batch dropped (usage is
    /// best-effort; authentication never waits on it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// t.flush().await;
    /// # t.shutdown().await; }
    /// ```
    pub async fn flush(&self) {
        let batch: Vec<Usage> = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *pending)
                .into_iter()
                .map(|((id, hour), (count, last_used))| Usage { id, hour, count, last_used })
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.inner.sink.record_usage(&batch).await {
            tracing::warn!(%error, keys = batch.len(), "could not record API key usage");
        }
    }

    /// Flushes and stops the background task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// t.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        let handle = self.inner.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            self.inner.stop.notify_one();
            let _ = handle.await;
        } else {
            self.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use async_trait::async_trait;

    use super::*;
    use crate::store::{Lookup, LookupResult, StoreError};

    /// Keeps every batch it is given.
    #[derive(Debug, Default, Clone)]
    struct Batches(Arc<Mutex<Vec<Vec<Usage>>>>);

    #[async_trait]
    impl KeyStore for Batches {
        async fn lookup(&self, _: Lookup<'_>) -> LookupResult {
            Ok(None)
        }
        async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(usage.to_vec());
            Ok(())
        }
    }

    impl Batches {
        /// The batches so far, each sorted by key and hour.
        fn taken(&self) -> Vec<Vec<Usage>> {
            let mut all = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
            for batch in &mut all {
                batch.sort_by_key(|u| (u.id, u.hour));
            }
            all
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn uses_are_bucketed_by_the_hour_they_were_made_in() {
        let sink = Batches::default();
        let tracker = UsageTracker::spawn(sink.clone(), Duration::from_secs(3600));
        let (a, b) = ("AAAAAAAAAAAA".parse().unwrap(), "BBBBBBBBBBBB".parse().unwrap());
        let h = 1_700_002_800; // 2023-11-14T23:00:00Z, a whole hour
        // (key, time): a used on both sides of the boundary, out of order (threads record in any order).
        let uses = [(a, h + 3599), (a, h + 3600), (a, h + 10), (a, h + 7199), (b, h + 3600), (a, h + 3599)];
        for (id, secs) in uses {
            tracker.record(&id, at(secs));
        }
        assert_eq!(tracker.pending(), 3, "a in two hours, b in one");
        tracker.flush().await;
        assert_eq!(tracker.pending(), 0);
        let want = vec![
            Usage { id: a, hour: at(h), count: 3, last_used: at(h + 3599) },
            Usage { id: a, hour: at(h + 3600), count: 2, last_used: at(h + 7199) },
            Usage { id: b, hour: at(h + 3600), count: 1, last_used: at(h + 3600) },
        ];
        assert_eq!(sink.taken(), [want]);
        // A flush empties the buckets: the next one starts from zero.
        tracker.record(&a, at(h + 7200));
        tracker.shutdown().await;
        assert_eq!(sink.taken(), [vec![Usage::new(a, 1, at(h + 7200))]]);
    }

    #[tokio::test]
    async fn memory_is_bounded_by_entries_per_key_and_hour() {
        let sink = Batches::default();
        let tracker = UsageTracker::spawn_with_capacity(sink.clone(), Duration::from_secs(3600), 2);
        let (a, b) = (KeyId::random(), KeyId::random());
        tracker.record(&a, at(3600));
        tracker.record(&a, at(7200)); // a second hour: a second entry
        tracker.record(&a, at(7201)); // an existing entry: counted
        tracker.record(&b, at(7200)); // full: dropped
        tracker.record(&a, at(10_800)); // a third hour: dropped too
        assert_eq!((tracker.pending(), tracker.dropped()), (2, 2));
        tracker.shutdown().await;
        let batches = sink.taken();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].iter().map(|u| u.count).sum::<u64>(), 3);
    }
}
