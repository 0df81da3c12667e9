//! [`PostgresBus`]: cache invalidation over PostgreSQL `LISTEN/NOTIFY` (features `cache` and `postgres`).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::bus::{State, Subscription};
use super::cache::Invalidator;
use super::contract::StoreError;
use super::invalidate::{Invalidation, InvalidationBus};

/// Publishes key changes with `NOTIFY <namespace>_invalidate`, and subscribes caches with `LISTEN`.
///
/// One statement per change set (`pg_notify` over an array). The listener holds one connection of its own and
/// reconnects by itself; it sends itself a heartbeat every 5 s and starts over after 15 s of silence (a
/// connection that drops packets without closing); on each (re)connection it drops the whole cache, since
/// notifications sent while it was away are lost.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), tower_api_key::StoreError> {
/// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, PostgresBus};
/// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new())
///     .with_bus(PostgresBus::new(pool.clone(), "tower_api_key"));
/// let subscription = PostgresBus::subscribe(pool, "tower_api_key", cached.invalidator()); // keep it alive
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBus {
    pool: PgPool,
    channel: Arc<str>,
}

/// How often the subscriber sends itself a heartbeat, and how long it waits for any notification.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
const SILENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn channel(namespace: &str) -> String {
    format!("{namespace}_invalidate")
}

impl PostgresBus {
    /// A publisher over `pool` for the channel of `namespace`.
    ///
    /// ```no_run
    /// # fn demo(pool: sqlx::PgPool) {
    /// let bus = tower_api_key::PostgresBus::new(pool, "tower_api_key");
    /// # }
    /// ```
    #[must_use]
    pub fn new(pool: PgPool, namespace: &str) -> Self {
        Self { pool, channel: channel(namespace).into() }
    }

    /// Subscribes `invalidator` to the channel of `namespace`, with a listener connection from `pool`, in a
    /// background task on the current Tokio runtime that reconnects by itself. Keep the [`Subscription`].
    ///
    /// ```no_run
    /// # fn demo(pool: sqlx::PgPool) {
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, PostgresBus};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// let subscription = PostgresBus::subscribe(pool, "tower_api_key", cached.invalidator());
    /// # }
    /// ```
    pub fn subscribe(pool: PgPool, namespace: &str, invalidator: Invalidator) -> Subscription {
        let channel = channel(namespace);
        Subscription::spawn(move |state: Arc<State>| {
            let (pool, channel, invalidator) = (pool.clone(), channel.clone(), invalidator.clone());
            async move {
                let mut listener = PgListener::connect_with(&pool).await.map_err(|e| e.to_string())?;
                listener.listen(&channel).await.map_err(|e| e.to_string())?;
                invalidator.evict_all();
                state.up();
                // A connection that drops packets without closing would look alive forever: a heartbeat
                // notification every 5 s must come back within 15 s, or the listener starts over.
                let heartbeat = {
                    let (pool, channel) = (pool.clone(), channel.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(HEARTBEAT).await;
                            let _ = sqlx::query("SELECT pg_notify($1, '')").bind(&channel).execute(&pool).await;
                        }
                    })
                };
                let _stop_heartbeat = AbortOnDrop(heartbeat);
                loop {
                    let next = match tokio::time::timeout(SILENCE, listener.try_recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            state.down();
                            return Err("no notification, not even a heartbeat, for 15 s".to_owned());
                        }
                    };
                    match next {
                        Ok(Some(notification)) => invalidator.deliver(notification.payload()),
                        // The connection was lost (and is re-established on the next call): start over.
                        Ok(None) => {
                            state.down();
                            return Err("the listener connection was lost".to_owned());
                        }
                        Err(e) => {
                            state.down();
                            return Err(e.to_string());
                        }
                    }
                }
            }
        })
    }
}

#[async_trait]
impl InvalidationBus for PostgresBus {
    async fn publish(&self, changed: &[Invalidation]) -> Result<(), StoreError> {
        let messages: Vec<String> = changed.iter().map(Invalidation::encode).collect();
        sqlx::query("SELECT pg_notify($1, m) FROM UNNEST($2::text[]) AS m")
            .bind(&*self.channel)
            .bind(&messages)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }
}
