//! Per-key rate limits shared by every instance: the [`SharedRateLimiter`] trait, asked once per request after
//! the key is verified. [`crate::RedisRateLimiter`] (feature `redis`) is one: an atomic GCRA in one Lua script.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::key::{KeyId, RateLimit};
use crate::reject::RateLimitInfo;
use crate::store::StoreError;

/// A per-key rate limiter whose state all instances share, so that a key's limit holds across them.
///
/// The layer calls it after verifying a key that has a limit (its own, or the layer's default), with the
/// store timeout as a bound. `Ok(Ok(()))` lets the request through, `Ok(Err(info))` answers 429 with
/// `Retry-After`, and `Err` (the limiter could not answer) answers 503: rate limits fail closed, like the store.
///
/// ```
/// use tower_api_key::{async_trait, KeyId, RateLimit, RateLimitInfo, SharedRateLimiter, StoreError};
///
/// /// Lets everything through (a stand-in for a real shared limiter).
/// #[derive(Debug)]
/// struct Unlimited;
///
/// #[async_trait]
/// impl SharedRateLimiter for Unlimited {
///     async fn check(&self, _: &KeyId, _: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError> {
///         Ok(Ok(()))
///     }
/// }
/// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).shared_rate_limit(Unlimited, None);
/// ```
#[async_trait]
pub trait SharedRateLimiter: Debug + Send + Sync + 'static {
    /// Counts one request of `id` against `limit`: `Ok(Err(info))` when it is over.
    ///
    /// # Errors
    /// [`StoreError`] when the shared state could not be reached (the layer answers 503).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # #[derive(Debug)] struct Unlimited;
    /// # #[async_trait] impl SharedRateLimiter for Unlimited {
    /// #     async fn check(&self, _: &KeyId, _: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError> { Ok(Ok(())) } }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let verdict = Unlimited.check(&KeyId::random(), RateLimit::per_second(5).unwrap()).await.unwrap();
    /// assert!(verdict.is_ok());
    /// # });
    /// ```
    async fn check(&self, id: &KeyId, limit: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError>;
}

#[async_trait]
impl<T: SharedRateLimiter + ?Sized> SharedRateLimiter for Arc<T> {
    async fn check(&self, id: &KeyId, limit: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError> {
        (**self).check(id, limit).await
    }
}

/// The layer's shared limiter and its default limit for keys without one.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) limiter: Arc<dyn SharedRateLimiter>,
    pub(crate) default: Option<RateLimit>,
}
