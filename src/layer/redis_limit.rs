//! [`RedisRateLimiter`]: per-key rate limits shared by every instance, on Redis (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::shared_limit::SharedRateLimiter;
use crate::key::{KeyId, RateLimit};
use crate::reject::RateLimitInfo;
use crate::store::StoreError;

/// A GCRA per key in one Lua script (one round trip, atomic, with the Redis server's clock), so a key's limit
/// holds across all instances: `N` requests per window let `N` through in total, not `N` per instance.
///
/// State: one small string per limited key, `<namespace>:rl:{<id>}` (the hash tag spreads keys over a cluster's
/// slots), expiring as soon as the key is back to a full burst. Hand it to
/// [`crate::ApiKeyLayer::shared_rate_limit`].
///
/// ```no_run
/// # async fn demo() -> Result<(), tower_api_key::StoreError> {
/// use tower_api_key::{ApiKeyLayer, MemoryStore, RateLimit, RedisRateLimiter};
/// let limiter = RedisRateLimiter::connect("redis://127.0.0.1:6379", "tower_api_key").await?;
/// let layer = ApiKeyLayer::new(MemoryStore::new()).shared_rate_limit(limiter, RateLimit::per_second(50));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: Conn,
    prefix: Arc<str>,
    script: Arc<redis::Script>,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.conn {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisRateLimiter").field("prefix", &self.prefix).field("server", &kind).finish()
    }
}

impl RedisRateLimiter {
    fn with(conn: Conn, namespace: &str) -> Self {
        Self {
            conn,
            prefix: format!("{namespace}:rl:").into(),
            script: Arc::new(redis::Script::new(include_str!("redis_limit.lua"))),
        }
    }

    /// A limiter on the Redis server at `url` (the connection reconnects by itself).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when Redis cannot be reached at first.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::StoreError> {
    /// let limiter = tower_api_key::RedisRateLimiter::connect("redis://127.0.0.1:6379", "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let conn = client.get_connection_manager().await.map_err(StoreError::backend)?;
        Ok(Self::with(Conn::Single(conn), namespace))
    }

    /// A limiter on a Redis Cluster reached through any of `urls`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the cluster cannot be reached at first.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::StoreError> {
    /// let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"];
    /// let limiter = tower_api_key::RedisRateLimiter::connect_cluster(&nodes, "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_cluster(urls: &[&str], namespace: &str) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClient::new(urls.to_vec()).map_err(StoreError::backend)?;
        let conn = client.get_async_connection().await.map_err(StoreError::backend)?;
        Ok(Self::with(Conn::Cluster(conn), namespace))
    }
}

#[async_trait]
impl SharedRateLimiter for RedisRateLimiter {
    async fn check(&self, id: &KeyId, limit: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError> {
        let interval = (limit.period().as_micros() / u128::from(limit.requests())).max(1);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        let mut invocation = self.script.key(format!("{}{{{}}}", self.prefix, id));
        invocation.arg(interval).arg(limit.requests());
        let (allowed, wait_us): (i64, i64) = match &self.conn {
            Conn::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }
        .map_err(StoreError::backend)?;
        if allowed == 1 {
            return Ok(Ok(()));
        }
        let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)).max(Duration::from_millis(1));
        Ok(Err(RateLimitInfo { retry_after: wait, limit: limit.requests(), window: limit.period() }))
    }
}
