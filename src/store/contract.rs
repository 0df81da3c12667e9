//! The storage contract: [`KeyStore`], how the layer asks ([`Lookup`]), and what can go wrong ([`StoreError`]).

use std::error::Error as StdError;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::change::{HourlyUsage, KeyUpdate, Usage};
use super::list::{ListQuery, Page};
use crate::key::{KeyDigest, KeyId, KeyRecord};

/// How the layer asks for a record.
///
/// ```
/// use tower_api_key::{KeyDigest, Lookup};
/// let d = KeyDigest::of(b"opaque");
/// assert!(matches!(Lookup::Digest(&d), Lookup::Digest(_)));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// By public id: a key of the crate's format. The record's `digest` is SHA-256 of the secret part.
    Id(&'a KeyId),
    /// By SHA-256 of the whole key: an opaque key issued by another system.
    Digest(&'a KeyDigest),
}

/// The result of a lookup: the shared record, or `None` when no key matches.
pub type LookupResult = Result<Option<Arc<KeyRecord>>, StoreError>;

/// Storage for key records: what the layer reads on every request and what [`crate::KeyManager`] changes.
///
/// A store provides primitives; the policy (key format, clock, events, input bounds) lives in
/// [`crate::KeyManager`], once for every store. Each primitive below says what it must do **atomically**: as one
/// step that no other call observes half done and that leaves nothing behind when it fails. SQL does each in one
/// statement or one transaction, Redis in one `MULTI` or Lua script, an in-memory map under one lock.
/// The `conformance` module (feature `test-util`) checks every contract.
///
/// Only [`KeyStore::lookup`] is required. A read-only store (keys provisioned elsewhere) implements it alone; the
/// management primitives then answer [`StoreError::Unsupported`]. The [module docs](crate::store) build a store
/// that can issue, rotate and revoke keys.
///
/// ```
/// use std::sync::Arc;
/// use tower_api_key::{KeyStore, MemoryStore};
/// let shared: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
/// let layer = tower_api_key::ApiKeyLayer::new(shared);
/// ```
#[async_trait]
pub trait KeyStore: Debug + Send + Sync + 'static {
    /// Finds the record for `by`, on the request path. `Ok(None)` when there is none; `Err` only when the store
    /// itself failed.
    ///
    /// * [`Lookup::Id`]: the record with this public id, if it is of the crate's format (its `prefix` is set).
    /// * [`Lookup::Digest`]: the opaque record (no `prefix`) whose `digest` is this one.
    ///
    /// # Errors
    /// [`StoreError`] when the backend could not answer. The layer answers 503 and lets nothing through.
    ///
    /// ```
    /// use tower_api_key::{KeyDigest, KeyStore, Lookup, MemoryStore, NewKey};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.import("legacy-key", NewKey::user("alice")).unwrap();
    /// let found = store.lookup(Lookup::Digest(&KeyDigest::of(b"legacy-key"))).await.unwrap();
    /// assert_eq!(found.unwrap().owner, "alice");
    /// # });
    /// ```
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult;

    /// Answers at once when the store can do so without waiting; `None` (the default) means "call
    /// [`KeyStore::lookup`]". The in-memory store and cache hits use this to avoid allocating a future.
    ///
    /// ```
    /// use tower_api_key::{KeyId, KeyStore, Lookup, MemoryStore};
    /// let store = MemoryStore::new();
    /// let answer = store.lookup_now(Lookup::Id(&KeyId::random()));
    /// assert!(matches!(answer, Some(Ok(None)))); // answered at once: no such key
    /// ```
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        let _ = by;
        None
    }

    /// The record with this id, of any status and format.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.add(NewKey::user("alice"))?;
    /// assert_eq!(store.get(&issued.record.id).await?.unwrap().owner, "alice");
    /// assert!(store.get(&KeyId::random()).await?.is_none());
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("get"))
    }

    /// Stores a new record. **Atomic**: either the record is stored and found by [`KeyStore::lookup`] and
    /// [`KeyStore::get`], or nothing changed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if a record with this id exists, or if the record is opaque (no `prefix`) and an
    /// opaque record with the same digest exists. [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// store.insert(&record).await?;
    /// assert!(matches!(store.insert(&record).await, Err(StoreError::Conflict(_))));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let _ = record;
        Err(StoreError::Unsupported("insert"))
    }

    /// One page of the records that pass `query`'s filters (status as of `now`), ordered by id in **byte order**,
    /// starting after `query.after`, at most [`ListQuery::page_size`] of them. `next` is the last returned id when
    /// more records may follow, `None` at the end.
    ///
    /// Work and memory must be bounded by the page, not by the number of stored keys: a store may end a page
    /// early (fewer items, `next` set) after examining a bounded number of records.
    ///
    /// SQL stores: order by a byte-wise collation (`COLLATE "C"` in PostgreSQL, a binary collation in MySQL). A
    /// locale collation such as `en_US` sorts `a` before `B`, unlike byte order, and a cursor then skips or repeats
    /// keys.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.add(NewKey::user("alice"))?;
    /// let page = store.list(&ListQuery::new().owner("alice"), std::time::SystemTime::now()).await?;
    /// assert_eq!(page.items.len(), 1);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        let _ = (query, now);
        Err(StoreError::Unsupported("list"))
    }

    /// Applies `update` to the record with this id and returns the new record. **Atomic** (one read-modify-write;
    /// [`KeyUpdate::apply`] gives the semantics, including that a rotated key's grace period can only be shortened).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.add(NewKey::user("alice"))?;
    /// let update = KeyUpdate { enabled: Some(false), ..KeyUpdate::default() };
    /// assert!(!store.update(&issued.record.id, &update).await?.enabled);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let _ = (id, update);
        Err(StoreError::Unsupported("update"))
    }

    /// Revokes the key with this id at `at`, and every key rotated from it (following `rotated_to`), so that a
    /// revoked key never leaves a working successor, whatever order a concurrent rotation and this revocation
    /// take. A key already revoked keeps its earlier time. Returns the record of `id`. **Atomic** over the whole
    /// chain.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.add(NewKey::user("alice"))?;
    /// let now = std::time::SystemTime::now();
    /// assert_eq!(store.revoke(&issued.record.id, now).await?.status_at(now), KeyStatus::Revoked);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let _ = (id, at);
        Err(StoreError::Unsupported("revoke"))
    }

    /// Replaces the key `id` by `successor`. **Atomic**: checks that `id` exists, is not revoked and was not
    /// rotated before; stores `successor` (as [`KeyStore::insert`]); sets the old record's `rotated_to` to the
    /// successor's id and its `expires_at` to the earlier of its own and `grace_end`. Returns the old record as
    /// changed. Of several concurrent rotations of one key exactly one succeeds; a failed rotation stores nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`] for a revoked or already rotated key,
    /// or a successor whose id (or opaque digest) is taken; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let old = store.add(NewKey::user("alice"))?;
    /// let now = std::time::SystemTime::now();
    /// let new = KeyFormat::new().issue(NewKey::user("alice"), now);
    /// let old_now = store.rotate(&old.record.id, &new.record, now).await?;
    /// assert_eq!(old_now.rotated_to, Some(new.record.id));
    /// let again = KeyFormat::new().issue(NewKey::user("alice"), now);
    /// assert!(matches!(store.rotate(&old.record.id, &again.record, now).await, Err(StoreError::Conflict(_))));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let _ = (id, successor, grace_end);
        Err(StoreError::Unsupported("rotate"))
    }

    /// Adds usage counts (saturating) to each key's total (`usage_count`) and to its count for the entry's hour
    /// (read back with [`KeyStore::hourly_usage`]), and moves each key's last-used time forward to the latest
    /// seen. Unknown ids are skipped. A batch may name one key several times (several hours, or the same hour
    /// twice: the counts add up). Called in batches by [`crate::UsageTracker`]: a store should write a batch in one
    /// statement or round trip.
    ///
    /// Hour buckets are kept at least [`crate::USAGE_HOURS_KEPT`] hours before the newest hour written; a store
    /// may prune older ones as it writes. Counts of revoked and expired keys are kept like any other.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails; [`StoreError::Unsupported`] by default.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.add(NewKey::user("alice"))?;
    /// let now = std::time::SystemTime::now();
    /// store.record_usage(&[Usage::new(issued.record.id, 2, now)]).await?;
    /// assert_eq!(store.get(&issued.record.id).await?.unwrap().usage_count, 2);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        let _ = usage;
        Err(StoreError::Unsupported("record_usage"))
    }

    /// The key's counts per UTC hour, as [`KeyStore::record_usage`] added them: one entry per hour that has a
    /// count, from the hour that holds `since` ([`crate::Usage::hour_of`]) on, oldest first. An unknown id, or a
    /// key never used, has none (`Ok` and empty). Hours older than [`crate::USAGE_HOURS_KEPT`] may be gone; the
    /// answer is bounded by what the store keeps, not by how old `since` is.
    ///
    /// To show a window with the hours without requests, use [`HourlyUsage::first_hour`] for `since` and
    /// [`HourlyUsage::fill`] on the answer.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails; [`StoreError::Unsupported`] by default (a store without usage
    /// counts per hour).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let store = MemoryStore::new();
    /// let id = store.add(NewKey::user("alice"))?.record.id;
    /// let now = std::time::SystemTime::now();
    /// let an_hour_ago = now - Duration::from_secs(3600);
    /// store.record_usage(&[Usage::new(id, 2, an_hour_ago), Usage::new(id, 3, now)]).await?;
    /// let hours = store.hourly_usage(&id, an_hour_ago).await?;
    /// assert_eq!(hours, [
    ///     HourlyUsage { hour: Usage::hour_of(an_hour_ago), count: 2 },
    ///     HourlyUsage { hour: Usage::hour_of(now), count: 3 },
    /// ]);
    /// assert_eq!(store.hourly_usage(&id, now).await?.len(), 1);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        let _ = (id, since);
        Err(StoreError::Unsupported("hourly_usage"))
    }
}

#[async_trait]
impl<T: KeyStore + ?Sized> KeyStore for Arc<T> {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        (**self).lookup(by).await
    }
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        (**self).lookup_now(by)
    }
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        (**self).get(id).await
    }
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        (**self).insert(record).await
    }
    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        (**self).list(query, now).await
    }
    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        (**self).update(id, update).await
    }
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        (**self).revoke(id, at).await
    }
    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        (**self).rotate(id, successor, grace_end).await
    }
    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        (**self).record_usage(usage).await
    }
    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        (**self).hourly_usage(id, since).await
    }
}

/// Boxed error from a store's backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A store could not do what was asked. Its text never contains key material; the layer logs it and answers 503.
///
/// ```
/// use tower_api_key::StoreError;
/// let err = StoreError::backend(std::io::Error::other("connection refused"));
/// assert_eq!(err.to_string(), "key store backend failed");
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (database, network, file) failed; the source says why.
    #[error("key store backend failed")]
    Backend(#[source] BoxError),
    /// The lookup did not finish within the layer's store timeout.
    #[error("key store did not answer within {0:?}")]
    Timeout(Duration),
    /// No key has this id (management operations).
    #[error("no key with id {0}")]
    NotFound(KeyId),
    /// The operation conflicts with the key's state or with another key (the message names it).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A record or update is invalid (the message names the field).
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// This store does not provide the primitive (a read-only store); the message names it.
    #[error("the key store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps a backend error, keeping it as the source.
    ///
    /// ```
    /// let e = tower_api_key::StoreError::backend(std::io::Error::other("down"));
    /// assert!(matches!(e, tower_api_key::StoreError::Backend(_)));
    /// ```
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}
