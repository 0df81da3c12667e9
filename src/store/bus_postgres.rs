//! [`PostgresBus`]: cache invalidation over PostgreSQL `LISTEN/NOTIFY` (features `cache` and `postgres`).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::bus::{State, Subscription, deliver};
use super::cache::Invalidator;
use super::contract::StoreError;
use super::invalidate::{Invalidation, InvalidationBus};

/// Publishes key changes with `NOTIFY <namespace>_invalidate`, and subscribes caches with `LISTEN`.
///
/// One statement per change set (`pg_notify` over an array). The listener holds one connection of its own and
/// reconnects by itself; on each (re)connection it drops the whole cache, since notifications sent while it was
/// away are lost.
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
                state.up(&invalidator);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => deliver(&invalidator, notification.payload()),
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
