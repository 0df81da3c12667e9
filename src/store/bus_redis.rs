//! [`RedisBus`]: cache invalidation over Redis pub/sub (features `cache` and `redis`).

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use super::bus::{State, Subscription};
use super::cache::Invalidator;
use super::contract::StoreError;
use super::invalidate::{Invalidation, InvalidationBus};

/// Publishes key changes on the Redis channel `<namespace>:invalidate`, and subscribes caches to it.
///
/// Works whichever store holds the keys (PostgreSQL, Redis, your own): the bus only carries "drop these
/// entries". On Redis Cluster, publish and subscribe through any node: the cluster forwards classic pub/sub
/// messages to every node. The subscriber pings Redis every 5 s (a connection that drops packets without closing
/// is noticed within 7 s) and reconnects by itself; on each (re)connection it drops the whole cache, since
/// messages may have been lost meanwhile.
///
/// ```no_run
/// # async fn demo() -> Result<(), tower_api_key::StoreError> {
/// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, RedisBus};
/// let url = "redis://127.0.0.1:6379";
/// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new())
///     .with_bus(RedisBus::connect(url, "tower_api_key").await?);
/// let subscription = RedisBus::subscribe(url, "tower_api_key", cached.invalidator())?; // keep it alive
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBus {
    conn: ConnectionManager,
    channel: Arc<str>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("channel", &self.channel).finish_non_exhaustive()
    }
}

/// How often an idle subscription checks that its connection still answers, and how long it waits.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn channel(namespace: &str) -> String {
    format!("{namespace}:invalidate")
}

impl RedisBus {
    /// A publisher on `url` (it reconnects by itself) for the channel of `namespace`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when Redis cannot be reached at first.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::StoreError> {
    /// let bus = tower_api_key::RedisBus::connect("redis://127.0.0.1:6379", "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let conn = client.get_connection_manager().await.map_err(StoreError::backend)?;
        Ok(Self { conn, channel: channel(namespace).into() })
    }

    /// Subscribes `invalidator` (from [`crate::CachedStore::invalidator`]) to the channel of `namespace`, in a
    /// background task on the current Tokio runtime that reconnects by itself. Keep the [`Subscription`]: dropping
    /// it stops the task.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a URL that is not a Redis URL. An unreachable server is not an error: the task
    /// keeps trying, and [`Subscription::is_connected`] says when it is in.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::StoreError> {
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, RedisBus};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// let subscription = RedisBus::subscribe("redis://127.0.0.1:6379", "tower_api_key", cached.invalidator())?;
    /// # Ok(()) }
    /// ```
    pub fn subscribe(url: &str, namespace: &str, invalidator: Invalidator) -> Result<Subscription, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let channel = channel(namespace);
        Ok(Subscription::spawn(move |state: Arc<State>| {
            let (client, channel, invalidator) = (client.clone(), channel.clone(), invalidator.clone());
            async move {
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub.subscribe(&channel).await.map_err(|e| e.to_string())?;
                invalidator.evict_all();
                state.up();
                let (mut sink, mut messages) = pubsub.split();
                // A connection that drops packets without closing would look alive forever: ping it.
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                heartbeat.tick().await;
                let result = loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => {
                                if let Ok(text) = msg.get_payload::<String>() {
                                    invalidator.deliver(&text);
                                }
                            }
                            None => break Err("the subscription ended".to_owned()),
                        },
                        _ = heartbeat.tick() => {
                            // On a subscribed connection Redis answers PING with `["pong", ""]`, not `PONG`:
                            // any answer will do, as long as one comes.
                            match tokio::time::timeout(HEARTBEAT_TIMEOUT, sink.ping::<redis::Value>()).await {
                                Ok(Ok(_)) => {}
                                Ok(Err(e)) => break Err(e.to_string()),
                                Err(_) => break Err("no answer to a heartbeat".to_owned()),
                            }
                        }
                    }
                };
                state.down();
                result
            }
        }))
    }
}

#[async_trait]
impl InvalidationBus for RedisBus {
    async fn publish(&self, changed: &[Invalidation]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for c in changed {
            pipe.cmd("PUBLISH").arg(&*self.channel).arg(c.encode()).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(StoreError::backend)
    }
}
