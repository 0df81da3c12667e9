//! Key lifecycle: issue (shown once), import, list, update, revoke, rotate with grace, usage.
//!
//! [`KeyManager`] is the management side of a store. Stores implement five primitive operations
//! ([`insert`](KeyManager::insert), [`get`](KeyManager::get), [`list`](KeyManager::list),
//! [`update`](KeyManager::update), [`record_usage`](KeyManager::record_usage)); issuing, importing, revoking and
//! rotating are provided on top of them.
//!
//! ```
//! use std::time::Duration;
//! use tower_api_key::{KeyManager, KeyStatus, MemoryStore, NewKey};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let issued = store.issue(NewKey::user("alice").name("laptop").scopes(["read"])?).await?;
//! println!("give this to alice, once: {}", issued.key.expose_secret());
//!
//! let rotated = store.rotate(&issued.record.id, Duration::from_secs(3600)).await?;
//! assert_eq!(rotated.record.owner, "alice");
//! store.revoke(&rotated.record.id).await?;
//! let record = store.get(&rotated.record.id).await?.unwrap();
//! assert_eq!(record.status_at(store.now()), KeyStatus::Revoked);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::ConfigError;
use crate::events::AuthEvent;
use crate::format::{KeyFormat, KeyId, KeyKind};
use crate::record::{KeyRecord, KeyStatus, RateLimit, Scopes};
use crate::secret::{ApiKey, KeyDigest};
use crate::store::{KeyStore, StoreError};

/// What to issue: kind, owner and the optional fields of a new key.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::NewKey;
/// let spec = NewKey::system("billing")
///     .name("nightly export")
///     .scopes(["invoices:read"])?
///     .expires_in(Duration::from_secs(86_400))
///     .metadata("ticket", "OPS-12");
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NewKey {
    pub(crate) kind: KeyKind,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) scopes: Scopes,
    pub(crate) expires: Option<Expiry>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    At(SystemTime),
    In(Duration),
}

impl NewKey {
    /// A user-level key acting for `user_id`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice");
    /// ```
    pub fn user(user_id: impl Into<String>) -> Self {
        Self::new(KeyKind::User, user_id)
    }

    /// A system-level key for the service `service`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::system("billing");
    /// ```
    pub fn system(service: impl Into<String>) -> Self {
        Self::new(KeyKind::System, service)
    }

    /// A key of `kind` for `owner`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::new(tower_api_key::KeyKind::User, "bob");
    /// ```
    pub fn new(kind: KeyKind, owner: impl Into<String>) -> Self {
        Self {
            kind,
            owner: owner.into(),
            name: String::new(),
            scopes: Scopes::default(),
            expires: None,
            rate_limit: None,
            metadata: BTreeMap::new(),
        }
    }

    /// A name for listings.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice").name("laptop");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Granted scopes.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an invalid scope.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice").scopes(["read", "write"])?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn scopes<I, T>(mut self, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.scopes = Scopes::new(scopes)?;
        Ok(self)
    }

    /// Expires at a fixed time.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").expires_at(std::time::SystemTime::now());
    /// ```
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(Expiry::At(at));
        self
    }

    /// Expires this long after issuance (by the store's clock).
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").expires_in(std::time::Duration::from_secs(60));
    /// ```
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires = Some(Expiry::In(ttl));
        self
    }

    /// A per-key rate limit.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").rate_limit(tower_api_key::RateLimit::per_second(5).unwrap());
    /// ```
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// One metadata entry.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").metadata("team", "core");
    /// ```
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub(crate) fn into_record(self, id: KeyId, digest: KeyDigest, now: SystemTime) -> KeyRecord {
        let mut r = KeyRecord::new(id, digest, self.kind, self.owner).with_created_at(now);
        r.name = self.name;
        r.scopes = self.scopes;
        r.expires_at = self.expires.map(|e| match e {
            Expiry::At(at) => at,
            Expiry::In(ttl) => now + ttl,
        });
        r.rate_limit = self.rate_limit;
        r.metadata = self.metadata;
        r
    }
}

/// A key just issued: the full key, shown this once, and its stored record.
///
/// Not `Clone`; its `Debug` redacts the key.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tower_api_key::{KeyManager, MemoryStore, NewKey};
/// let issued = MemoryStore::new().issue(NewKey::user("alice")).await.unwrap();
/// assert!(!format!("{issued:?}").contains(issued.key.expose_secret()));
/// # });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The full key: give it to its owner and drop it.
    pub key: ApiKey,
    /// What the store keeps.
    pub record: KeyRecord,
}

/// Filters and paging for [`KeyManager::list`].
///
/// ```
/// use tower_api_key::{KeyKind, KeyStatus, ListQuery};
/// let q = ListQuery::new().owner("alice").kind(KeyKind::User).status(KeyStatus::Active).limit(50);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ListQuery {
    /// Only keys of this owner.
    pub owner: Option<String>,
    /// Only keys of this kind.
    pub kind: Option<KeyKind>,
    /// Only keys in this status (at the store's current time).
    pub status: Option<KeyStatus>,
    /// Only keys whose id sorts after this one (the cursor from [`Page::next`]).
    pub after: Option<KeyId>,
    /// Page size; 0 means the default (100). Capped at 1000.
    pub limit: usize,
}

impl ListQuery {
    /// Everything, first page.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
    /// Filter by owner.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().owner("alice");
    /// ```
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    /// Filter by kind.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().kind(tower_api_key::KeyKind::System);
    /// ```
    pub fn kind(mut self, kind: KeyKind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// Filter by status.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().status(tower_api_key::KeyStatus::Revoked);
    /// ```
    pub fn status(mut self, status: KeyStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Continue after this id.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().after(tower_api_key::KeyId::random());
    /// ```
    pub fn after(mut self, id: KeyId) -> Self {
        self.after = Some(id);
        self
    }
    /// Page size.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().limit(10);
    /// ```
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// The effective page size.
    ///
    /// ```
    /// assert_eq!(tower_api_key::ListQuery::new().page_size(), 100);
    /// ```
    #[must_use]
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 100,
            n => n.min(1000),
        }
    }

    /// Whether `record` passes the filters (not the cursor).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// assert!(ListQuery::new().owner("alice").matches(&r, std::time::SystemTime::now()));
    /// ```
    #[must_use]
    pub fn matches(&self, record: &KeyRecord, now: SystemTime) -> bool {
        self.owner.as_ref().is_none_or(|o| *o == record.owner)
            && self.kind.is_none_or(|k| k == record.kind)
            && self.status.is_none_or(|s| s == record.status_at(now))
    }
}

/// One page of a listing, ordered by id.
///
/// ```
/// let page = tower_api_key::Page { items: vec![], next: None };
/// assert!(page.items.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Page {
    /// The records (never a key).
    pub items: Vec<KeyRecord>,
    /// Cursor for the next page, if there is one.
    pub next: Option<KeyId>,
}

/// A partial update: `None` leaves a field as it is.
///
/// ```
/// use tower_api_key::{KeyUpdate, Scopes};
/// let u = KeyUpdate { scopes: Some(Scopes::new(["read"])?), ..KeyUpdate::default() };
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<SystemTime>>,
    /// New metadata (replaces the whole map).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
    /// Revocation time. Once set it cannot be cleared.
    pub revoked_at: Option<SystemTime>,
    /// Successor after rotation.
    pub rotated_to: Option<KeyId>,
}

impl KeyUpdate {
    /// Applies the update to `record`.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// KeyUpdate { name: Some("new".into()), ..KeyUpdate::default() }.apply(&mut r);
    /// assert_eq!(r.name, "new");
    /// ```
    pub fn apply(&self, record: &mut KeyRecord) {
        if let Some(v) = &self.name {
            record.name.clone_from(v);
        }
        if let Some(v) = &self.scopes {
            record.scopes = v.clone();
        }
        if let Some(v) = self.expires_at {
            record.expires_at = v;
        }
        if let Some(v) = &self.metadata {
            record.metadata.clone_from(v);
        }
        if let Some(v) = self.enabled {
            record.enabled = v;
        }
        if let Some(v) = self.rate_limit {
            record.rate_limit = v;
        }
        if let Some(v) = self.revoked_at {
            record.revoked_at.get_or_insert(v);
        }
        if let Some(v) = self.rotated_to {
            record.rotated_to = Some(v);
        }
    }
}

/// Usage of one key over one flush period, as recorded by [`crate::UsageTracker`].
///
/// ```
/// let u = tower_api_key::Usage { id: tower_api_key::KeyId::random(), count: 3, last_used: std::time::SystemTime::now() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The key.
    pub id: KeyId,
    /// Successful requests since the last flush.
    pub count: u64,
    /// Time of the latest of them.
    pub last_used: SystemTime,
}

/// The management side of a store. See the [module docs](self).
///
/// A store implements the five primitives; `issue`, `import_*`, `revoke` and `rotate` come with it.
///
/// ```
/// use tower_api_key::{KeyManager, MemoryStore, NewKey};
///
/// async fn provision(store: &impl KeyManager) -> Result<String, tower_api_key::StoreError> {
///     let issued = store.issue(NewKey::user("alice").name("cli")).await?;
///     Ok(issued.key.expose_secret().to_owned()) // hand it to alice, once
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let key = provision(&MemoryStore::new()).await.unwrap();
/// assert!(key.starts_with("tak_user_"));
/// # });
/// ```
#[async_trait]
pub trait KeyManager: KeyStore {
    /// The key format used to issue keys.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// assert_eq!(store.key_format().prefix(KeyKind::User), "tak_user");
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    fn key_format(&self) -> &KeyFormat;

    /// The store's current time (its [`crate::Clock`]).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// assert!(store.now() <= std::time::SystemTime::now());
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Receives lifecycle events (issued, revoked, rotated). The default drops them.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let id = KeyId::random();
    /// store.emit(&AuthEvent::Revoked { key_id: &id }); // no sink configured: dropped
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    fn emit(&self, event: &AuthEvent<'_>) {
        let _ = event;
    }

    /// Stores a new record.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if its id, or (opaque keys) its digest, is already stored.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// store.insert(record.clone()).await?;
    /// assert!(store.insert(record).await.is_err());
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError>;

    /// The record with this id.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.issue(NewKey::user("alice")).await?;
    /// assert_eq!(store.get(&issued.record.id).await?.unwrap().owner, "alice");
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// One page of records, ordered by id.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.issue(NewKey::user("alice")).await?;
    /// let page = store.list(&ListQuery::new().owner("alice").limit(10)).await?;
    /// assert_eq!(page.items.len(), 1);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Applies `update` and returns the new record. Takes effect on the next request.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.issue(NewKey::user("alice")).await?;
    /// let update = KeyUpdate { scopes: Some(Scopes::new(["read"]).unwrap()), ..KeyUpdate::default() };
    /// assert!(store.update(&issued.record.id, &update).await?.scopes.allows("read"));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError>;

    /// Adds usage counts and last-used times.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.issue(NewKey::user("alice")).await?;
    /// let now = std::time::SystemTime::now();
    /// store.record_usage(&[Usage { id: issued.record.id, count: 2, last_used: now }]).await?;
    /// assert_eq!(store.get(&issued.record.id).await?.unwrap().usage_count, 2);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError>;

    /// Mints a key of the crate's format and stores its record; the full key is in the result, and nowhere else.
    ///
    /// # Errors
    /// As [`KeyManager::insert`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.issue(NewKey::system("billing").scopes(["invoices:read"]).unwrap()).await?;
    /// assert!(issued.key.expose_secret().starts_with("tak_sys_"));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn issue(&self, spec: NewKey) -> Result<IssuedKey, StoreError> {
        let generated = self.key_format().generate(spec.kind);
        let prefix = self.key_format().prefix(spec.kind).to_owned();
        let record = spec.into_record(generated.id, generated.digest, self.now()).with_prefix(prefix);
        self.insert(record.clone()).await?;
        self.emit(&AuthEvent::Issued { key_id: &record.id, kind: record.kind });
        Ok(IssuedKey { key: generated.key, record })
    }

    /// Imports an opaque key issued elsewhere by its SHA-256 digest (migration without re-issuing keys).
    ///
    /// # Errors
    /// As [`KeyManager::insert`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// // The old system kept SHA-256 hex digests of its keys.
    /// let digest = KeyDigest::from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
    /// let record = store.import_digest(NewKey::user("alice"), digest).await?;
    /// assert!(record.prefix.is_none()); // opaque: looked up by digest
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn import_digest(&self, spec: NewKey, digest: KeyDigest) -> Result<KeyRecord, StoreError> {
        let record = spec.into_record(KeyId::random(), digest, self.now());
        self.insert(record.clone()).await?;
        self.emit(&AuthEvent::Issued { key_id: &record.id, kind: record.kind });
        Ok(record)
    }

    /// Imports an opaque key by value; only its digest is stored.
    ///
    /// # Errors
    /// As [`KeyManager::insert`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let record = store.import_key(NewKey::user("alice"), &ApiKey::new("old-key".into())).await?;
    /// assert_eq!(record.digest, KeyDigest::of(b"old-key"));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn import_key(&self, spec: NewKey, key: &ApiKey) -> Result<KeyRecord, StoreError> {
        self.import_digest(spec, key.digest()).await
    }

    /// Revokes a key for good, effective on the next request.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let issued = store.issue(NewKey::user("alice")).await?;
    /// let record = store.revoke(&issued.record.id).await?;
    /// assert_eq!(record.status_at(store.now()), KeyStatus::Revoked);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn revoke(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        let update = KeyUpdate { revoked_at: Some(self.now()), ..KeyUpdate::default() };
        let record = self.update(id, &update).await?;
        self.emit(&AuthEvent::Revoked { key_id: id });
        Ok(record)
    }

    /// Issues a successor with the same kind, owner, name, scopes, limit and metadata (and, if the old key expires,
    /// the same lifetime counted from now). The old key keeps working until the earlier of `now + grace` and its
    /// own expiry. A zero `grace` ends it at once.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`] for a revoked or already rotated key.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let old = store.issue(NewKey::user("alice")).await?;
    /// let new = store.rotate(&old.record.id, std::time::Duration::from_secs(3600)).await?;
    /// assert_eq!(new.record.owner, "alice");
    /// assert_eq!(store.get(&old.record.id).await?.unwrap().rotated_to, Some(new.record.id));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    async fn rotate(&self, id: &KeyId, grace: Duration) -> Result<IssuedKey, StoreError> {
        let old = self.get(id).await?.ok_or(StoreError::NotFound(*id))?;
        let now = self.now();
        match old.status_at(now) {
            KeyStatus::Revoked => return Err(StoreError::Conflict("a revoked key cannot be rotated")),
            KeyStatus::RotatedOut => return Err(StoreError::Conflict("this key was already rotated")),
            _ if old.rotated_to.is_some() => return Err(StoreError::Conflict("this key was already rotated")),
            _ => {}
        }
        let mut spec = NewKey::new(old.kind, old.owner.clone()).name(old.name.clone());
        spec.scopes = old.scopes.clone();
        spec.rate_limit = old.rate_limit;
        spec.metadata = old.metadata.clone();
        spec.expires = old.expires_at.map(|at| Expiry::In(at.duration_since(old.created_at).unwrap_or_default()));
        let issued = self.issue(spec).await?;
        let grace_end = now + grace;
        let end = old.expires_at.map_or(grace_end, |own| own.min(grace_end));
        let update =
            KeyUpdate { expires_at: Some(Some(end)), rotated_to: Some(issued.record.id), ..KeyUpdate::default() };
        self.update(id, &update).await?;
        self.emit(&AuthEvent::Rotated { old: id, new: &issued.record.id });
        Ok(issued)
    }
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.items {
            writeln!(f, "{} {} {} {}", r.display_id(), r.kind, r.owner, r.name)?;
        }
        Ok(())
    }
}

/// What listings and the admin API show of a key: everything but the digest (and never the key).
///
/// ```
/// # use tower_api_key::*;
/// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
/// let info = KeyInfo::new(&r, std::time::SystemTime::now());
/// assert_eq!(info.status, KeyStatus::Active);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyInfo {
    /// Public id (the middle part of the key).
    pub id: KeyId,
    /// `prefix_id`, how the key starts (or the bare id for opaque keys).
    pub display_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: KeyKind,
    /// User id or service name.
    pub owner: String,
    /// Scopes.
    pub scopes: Scopes,
    /// Status now.
    pub status: KeyStatus,
    /// Issued.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::time"))]
    pub created_at: SystemTime,
    /// Expires.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::opt_time"))]
    pub expires_at: Option<SystemTime>,
    /// Revoked.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::opt_time"))]
    pub revoked_at: Option<SystemTime>,
    /// Last used.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::opt_time"))]
    pub last_used_at: Option<SystemTime>,
    /// Uses recorded.
    pub usage_count: u64,
    /// Enabled flag.
    pub enabled: bool,
    /// Rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Successor after rotation.
    pub rotated_to: Option<KeyId>,
}

impl KeyInfo {
    /// The view of `record` at `now`.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice").with_prefix("tak_user");
    /// let info = KeyInfo::new(&r, std::time::SystemTime::now());
    /// assert!(info.display_id.starts_with("tak_user_"));
    /// ```
    #[must_use]
    pub fn new(record: &KeyRecord, now: SystemTime) -> Self {
        Self {
            id: record.id,
            display_id: record.display_id(),
            name: record.name.clone(),
            kind: record.kind,
            owner: record.owner.clone(),
            scopes: record.scopes.clone(),
            status: record.status_at(now),
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            last_used_at: record.last_used_at,
            usage_count: record.usage_count,
            enabled: record.enabled,
            rate_limit: record.rate_limit,
            metadata: record.metadata.clone(),
            rotated_to: record.rotated_to,
        }
    }
}
