//! Usage tracking off the request path: per-key request counts and last-used times, batched in memory and
//! flushed to the store periodically and on shutdown. Never one store write per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::key::{KeyId, RandomKeyHasher};
use crate::store::{KeyStore, Usage};

/// Default bound on distinct keys held between flushes.
pub const DEFAULT_MAX_PENDING_KEYS: usize = 100_000;

struct Inner {
    pending: Mutex<HashMap<KeyId, (u64, SystemTime), RandomKeyHasher>>,
    max_keys: usize,
    dropped: AtomicU64,
    sink: Arc<dyn KeyStore>,
    stop: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Batches key usage and flushes it to a [`KeyStore`] ([`KeyStore::record_usage`]) every `interval` and on [`UsageTracker::shutdown`].
///
/// Recording is a short lock and a map update; memory is bounded by the number of distinct keys between flushes
/// ([`DEFAULT_MAX_PENDING_KEYS`]; uses of further keys are counted in [`UsageTracker::dropped`] and skipped).
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

    /// Like [`UsageTracker::spawn`], holding at most `max_keys` distinct keys between flushes.
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

    /// Counts one successful use of `id` at `at`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let t = tower_api_key::UsageTracker::spawn(tower_api_key::MemoryStore::new(), std::time::Duration::from_secs(5));
    /// t.record(&tower_api_key::KeyId::random(), std::time::SystemTime::now());
    /// assert_eq!(t.pending(), 1);
    /// # t.shutdown().await; }
    /// ```
    pub fn record(&self, id: &KeyId, at: SystemTime) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = pending.get_mut(id) {
            entry.0 += 1;
            entry.1 = entry.1.max(at);
        } else if pending.len() < self.inner.max_keys {
            pending.insert(*id, (1, at));
        } else {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Distinct keys waiting for the next flush.
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
                .map(|(id, (count, last_used))| Usage { id, count, last_used })
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
