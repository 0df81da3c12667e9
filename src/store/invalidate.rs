//! Invalidation across instances (feature `cache`): when a key changes on one instance, every other instance drops
//! its cached entries for that key.
//!
//! A [`crate::CachedStore`] publishes each change on an [`InvalidationBus`]; each instance subscribes to the same
//! bus and hands what arrives to its [`crate::Invalidator`]. The crate ships two buses: Redis pub/sub
//! (`RedisBus`, features `cache` and `redis`) and PostgreSQL `LISTEN/NOTIFY` (`PostgresBus`, features `cache` and
//! `postgres`). A message names a key by its public id and, for opaque keys, its digest (a SHA-256 of the key,
//! which is what the store holds too); never the key.

use std::fmt;

use async_trait::async_trait;

use super::contract::StoreError;
use crate::key::{KeyDigest, KeyId, KeyRecord};

/// A key whose cached entries every instance must drop: by id, and by digest for an opaque key.
///
/// ```
/// use tower_api_key::{Invalidation, KeyDigest, KeyId};
/// let inv = Invalidation { id: KeyId::random(), digest: Some(KeyDigest::of(b"legacy")) };
/// assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidation {
    /// The key's public id.
    pub id: KeyId,
    /// The digest an opaque key is looked up by; `None` for keys of the crate's format.
    pub digest: Option<KeyDigest>,
}

impl Invalidation {
    /// The entries of `record`.
    ///
    /// ```
    /// use tower_api_key::{Invalidation, KeyDigest, KeyId, KeyKind, KeyRecord};
    /// let opaque = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a");
    /// assert_eq!(Invalidation::of(&opaque).digest, Some(opaque.digest));
    /// ```
    #[must_use]
    pub fn of(record: &KeyRecord) -> Self {
        Self { id: record.id, digest: (!record.is_formatted()).then_some(record.digest) }
    }

    /// The message text: the id, then a space and the digest in hex for an opaque key.
    ///
    /// ```
    /// use tower_api_key::{Invalidation, KeyId};
    /// let id: KeyId = "AbCdEf012345".parse().unwrap();
    /// assert_eq!(Invalidation { id, digest: None }.encode(), "AbCdEf012345");
    /// ```
    #[must_use]
    pub fn encode(&self) -> String {
        match &self.digest {
            Some(d) => format!("{} {}", self.id, d.to_hex()),
            None => self.id.to_string(),
        }
    }

    /// Reads a message; `None` for anything else (a message from another program is ignored).
    ///
    /// ```
    /// assert!(tower_api_key::Invalidation::decode("not a key id").is_none());
    /// ```
    #[must_use]
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let id = parts.next()?.parse().ok()?;
        let digest = match parts.next() {
            Some(hex) => Some(KeyDigest::from_hex(hex).ok()?),
            None => None,
        };
        parts.next().is_none().then_some(Self { id, digest })
    }
}

/// Where a [`crate::CachedStore`] announces its changes to the other instances.
///
/// ```
/// use tower_api_key::{async_trait, Invalidation, InvalidationBus, StoreError};
///
/// /// Logs the changes instead of sending them anywhere.
/// #[derive(Debug)]
/// struct LogBus;
///
/// #[async_trait]
/// impl InvalidationBus for LogBus {
///     async fn publish(&self, changed: &[Invalidation]) -> Result<(), StoreError> {
///         for c in changed {
///             tracing::info!(key_id = %c.id, "key changed");
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait InvalidationBus: fmt::Debug + Send + Sync + 'static {
    /// Tells every instance that these keys changed. A failure is logged by the cache, and the other instances
    /// see the change when their entries' TTL ends.
    ///
    /// # Errors
    /// [`StoreError`] when the bus could not be reached.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # #[derive(Debug)] struct Nowhere;
    /// # #[async_trait] impl InvalidationBus for Nowhere {
    /// #     async fn publish(&self, _: &[Invalidation]) -> Result<(), StoreError> { Ok(()) } }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// Nowhere.publish(&[Invalidation { id: KeyId::random(), digest: None }]).await.unwrap();
    /// # });
    /// ```
    async fn publish(&self, changed: &[Invalidation]) -> Result<(), StoreError>;
}
