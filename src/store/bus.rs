//! The subscriber side shared by the buses: a background task that keeps a subscription alive, reconnects by
//! itself, and tells whether it is connected now.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// A running subscription to an invalidation bus. Dropping it stops the subscriber.
///
/// ```no_run
/// # #[cfg(all(feature = "redis", feature = "cache"))]
/// # async fn demo() -> Result<(), tower_api_key::StoreError> {
/// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, RedisBus};
/// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
/// let subscription = RedisBus::subscribe("redis://127.0.0.1:6379", "tower_api_key", cached.invalidator())?;
/// assert!(!subscription.is_connected() || subscription.reconnections() >= 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscription {
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    connected: AtomicBool,
    connections: AtomicU64,
}

#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))] // used by the buses only
impl State {
    /// The subscription is (again) in place. The caller has dropped its cache's entries first
    /// ([`crate::Invalidator::evict_all`]), since messages may have been lost meanwhile.
    pub(crate) fn up(&self) {
        self.connected.store(true, Ordering::SeqCst);
        self.connections.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn down(&self) {
        self.connected.store(false, Ordering::SeqCst);
    }
}

#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))] // used by the buses only
impl Subscription {
    /// Runs `session` again and again: each run connects, calls [`State::up`], forwards messages and returns when
    /// the connection is lost. Between runs it waits from 50 ms up to 2 s.
    pub(crate) fn spawn<F, Fut>(mut session: F) -> Self
    where
        F: FnMut(Arc<State>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let state = Arc::new(State::default());
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            let mut wait = Duration::from_millis(50);
            loop {
                let result = session(task_state.clone()).await;
                let was_up = task_state.connected.swap(false, Ordering::SeqCst);
                if was_up {
                    wait = Duration::from_millis(50);
                }
                if let Err(error) = result {
                    tracing::warn!(
                        error,
                        "cache invalidation channel lost; entries fall back to their TTL until it is back"
                    );
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        });
        Self { state, task }
    }

    /// Whether the subscription is in place now. While it is not, cached entries fall back to their TTL.
    ///
    /// ```no_run
    /// # fn demo(s: &tower_api_key::Subscription) {
    /// if !s.is_connected() { /* changes made elsewhere are seen within the cache TTLs only */ }
    /// # }
    /// ```
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.state.connected.load(Ordering::SeqCst)
    }

    /// How many times the subscription was established (1 after the first connection; more after each
    /// reconnection).
    ///
    /// ```no_run
    /// # fn demo(s: &tower_api_key::Subscription) {
    /// let reconnections = s.reconnections().saturating_sub(1);
    /// # }
    /// ```
    #[must_use]
    pub fn reconnections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}
