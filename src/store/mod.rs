//! The [`KeyStore`] trait: where the layer looks keys up, and the stores that implement it.
//!
//! # Implementing a custom store
//!
//! A store answers one question: "which record has this public id?" (keys of the crate's format) or "which record
//! has this SHA-256 digest?" (opaque keys). It never sees the plaintext key; the layer verifies the digest in
//! constant time after the lookup. Here is a complete store over a map loaded at start-up:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use tower_api_key::{async_trait, KeyDigest, KeyId, KeyKind, KeyRecord, KeyStore, Lookup, StoreError};
//!
//! #[derive(Debug, Default)]
//! struct MyStore {
//!     by_digest: HashMap<KeyDigest, Arc<KeyRecord>>,
//! }
//!
//! #[async_trait]
//! impl KeyStore for MyStore {
//!     async fn lookup(&self, by: Lookup<'_>) -> Result<Option<Arc<KeyRecord>>, StoreError> {
//!         Ok(match by {
//!             Lookup::Digest(digest) => self.by_digest.get(digest).cloned(),
//!             // This store only holds opaque keys; keys of the crate's format are looked up by id.
//!             Lookup::Id(_) => None,
//!         })
//!     }
//! }
//!
//! let mut store = MyStore::default();
//! let digest = KeyDigest::of(b"key-from-the-old-system");
//! store.by_digest.insert(digest, Arc::new(KeyRecord::new(KeyId::random(), digest, KeyKind::User, "alice")));
//! let layer = tower_api_key::ApiKeyLayer::new(store);
//! ```
//!
//! A database-backed store maps its driver's errors into [`StoreError::Backend`], keeping the source. The layer
//! turns any store error, or a lookup slower than [`crate::ApiKeyLayer::store_timeout`], into a 503 (fail closed)
//! and logs the error; the client never sees it.
//!
//! A store that can answer without waiting (an in-memory map, a cache hit) may also implement
//! [`KeyStore::lookup_now`], which lets the layer skip the boxed future on its hot path.

use std::error::Error as StdError;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::format::KeyId;
use crate::record::KeyRecord;
use crate::secret::KeyDigest;

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod file;
pub mod memory;

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

/// Where the layer looks keys up. Object safe: the layer holds an `Arc<dyn KeyStore>`.
///
/// See the [module documentation](self) for a complete custom store.
///
/// ```
/// use std::sync::Arc;
/// use tower_api_key::{KeyStore, MemoryStore};
/// let shared: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
/// let layer = tower_api_key::ApiKeyLayer::new(shared);
/// ```
#[async_trait]
pub trait KeyStore: Debug + Send + Sync + 'static {
    /// Finds the record for `by`. `Ok(None)` when there is none; `Err` only when the store itself failed.
    ///
    /// # Errors
    /// [`StoreError`] when the backend could not answer. The layer answers 503 and lets nothing through.
    ///
    /// ```
    /// use tower_api_key::{KeyDigest, KeyStore, Lookup, MemoryStore, NewKey};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.add_opaque("legacy-key", NewKey::user("alice")).unwrap();
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
}

#[async_trait]
impl<T: KeyStore + ?Sized> KeyStore for Arc<T> {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        (**self).lookup(by).await
    }
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        (**self).lookup_now(by)
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
