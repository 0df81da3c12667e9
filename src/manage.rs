//! [`KeyManager`]: key management, once for every store.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::events::{AuthEvent, AuthEventSink};
use crate::key::{
    ApiKey, Classified, IssuedKey, KeyDigest, KeyFormat, KeyId, KeyRecord, NewKey, check_metadata, check_name,
    check_scopes, max_expiry,
};
use crate::store::{KeyStore, KeyUpdate, ListQuery, MemoryStore, Page, StoreError};

struct Policy {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn AuthEventSink>>,
}

/// Key management: [`KeyManager`] owns the policy (key format, clock, events, input bounds) and implements issue,
/// import, list, update, revoke and rotate once, for every [`KeyStore`].
///
/// The split follows tower-sessions' `SessionStore` and `Session`: a store provides storage primitives, each atomic
/// ([`KeyStore`] says what each must guarantee); the manager decides what to store. A PostgreSQL, Redis or custom
/// store gets the whole lifecycle by implementing the primitives.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::{ApiKeyLayer, KeyManager, KeyStatus, MemoryStore, NewKey};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let keys = KeyManager::new(store.clone());
/// let issued = keys.issue(NewKey::user("alice").name("laptop").scopes(["read"])?).await?;
/// // Give `issued.key.expose_secret()` to alice, once.
///
/// let rotated = keys.rotate(&issued.record.id, Duration::from_secs(3600)).await?;
/// assert_eq!(rotated.record.owner, "alice");
/// keys.revoke(&rotated.record.id).await?;
/// let record = keys.get(&rotated.record.id).await?.unwrap();
/// assert_eq!(record.status_at(keys.now()), KeyStatus::Revoked);
///
/// let layer = ApiKeyLayer::new(store); // the layer reads the same store
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
///
/// Issues, imports, lists, updates, revokes and rotates keys in any [`KeyStore`]. Clones share the same policy.
///
/// Builder methods take `self` by value. Every input is checked before the store is called ([`NewKey::validate`]),
/// and every state change is one atomic store primitive, so a failure leaves nothing half done.
///
/// ```
/// use tower_api_key::{KeyFormat, KeyManager, MemoryStore, NewKey, StoreError};
///
/// async fn provision(keys: &KeyManager) -> Result<String, StoreError> {
///     let issued = keys.issue(NewKey::user("alice").name("cli")).await?;
///     Ok(issued.key.expose_secret().to_owned()) // hand it to alice, once
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let keys = KeyManager::new(MemoryStore::new()).key_format(KeyFormat::new().user_prefix("acme")?);
/// assert!(provision(&keys).await?.starts_with("acme_"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct KeyManager {
    policy: Arc<Policy>,
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("store", &self.policy.store)
            .field("format", &self.policy.format)
            .field("clock", &self.policy.clock)
            .finish_non_exhaustive()
    }
}

fn invalid(e: ConfigError) -> StoreError {
    match e {
        ConfigError::OutOfRange(what) => StoreError::Invalid(what),
        ConfigError::InvalidScope(_) => StoreError::Invalid("invalid scope"),
        _ => StoreError::Invalid("invalid input"),
    }
}

impl KeyManager {
    /// A manager over `store` with the default [`KeyFormat`], the system clock and no event sink.
    ///
    /// ```
    /// let keys = tower_api_key::KeyManager::new(tower_api_key::MemoryStore::new());
    /// ```
    pub fn new(store: impl KeyStore) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A manager over an already shared store.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let store: Arc<dyn tower_api_key::KeyStore> = Arc::new(tower_api_key::MemoryStore::new());
    /// let keys = tower_api_key::KeyManager::from_shared(store);
    /// ```
    pub fn from_shared(store: Arc<dyn KeyStore>) -> Self {
        Self {
            policy: Arc::new(Policy { store, format: KeyFormat::new(), clock: Arc::new(SystemClock), events: None }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Policy)) -> Self {
        match Arc::get_mut(&mut self.policy) {
            Some(policy) => f(policy),
            None => {
                let p = &self.policy;
                let mut policy = Policy {
                    store: p.store.clone(),
                    format: p.format.clone(),
                    clock: p.clock.clone(),
                    events: p.events.clone(),
                };
                f(&mut policy);
                self.policy = Arc::new(policy);
            }
        }
        self
    }

    /// Issues keys of `format` (match it on the layer with [`crate::ApiKeyLayer::key_format`]).
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new().user_prefix("acme")?;
    /// let keys = tower_api_key::KeyManager::new(tower_api_key::MemoryStore::new()).key_format(f);
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn key_format(self, format: KeyFormat) -> Self {
        self.edit(|p| p.format = format)
    }

    /// Uses `clock` for creation, expiry, revocation and rotation times.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let keys = KeyManager::new(MemoryStore::new()).clock(SystemClock);
    /// ```
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.edit(|p| p.clock = clock)
    }

    /// Sends lifecycle events (issued, revoked, rotated) to `sink`.
    ///
    /// ```
    /// let keys = tower_api_key::KeyManager::new(tower_api_key::MemoryStore::new())
    ///     .events(|e: &tower_api_key::AuthEvent<'_>| tracing::info!(event = e.name(), "key lifecycle"));
    /// ```
    pub fn events(self, sink: impl AuthEventSink) -> Self {
        let sink: Arc<dyn AuthEventSink> = Arc::new(sink);
        self.edit(|p| p.events = Some(sink))
    }

    /// The store this manager changes.
    ///
    /// ```
    /// let keys = tower_api_key::KeyManager::new(tower_api_key::MemoryStore::new());
    /// let store = keys.store().clone();
    /// ```
    #[must_use]
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.policy.store
    }

    /// The format of the keys this manager issues.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let keys = KeyManager::new(MemoryStore::new());
    /// assert_eq!(keys.format().prefix(KeyKind::User), "tak_user");
    /// ```
    #[must_use]
    pub fn format(&self) -> &KeyFormat {
        &self.policy.format
    }

    /// The manager's current time (its [`Clock`]).
    ///
    /// ```
    /// let keys = tower_api_key::KeyManager::new(tower_api_key::MemoryStore::new());
    /// assert!(keys.now() <= std::time::SystemTime::now());
    /// ```
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.policy.clock.now()
    }

    fn emit(&self, event: &AuthEvent<'_>) {
        if let Some(sink) = &self.policy.events {
            sink.on_event(event);
        }
    }

    /// Mints a key of the manager's format and stores its record; the full key is in the result, and nowhere else.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a spec out of bounds ([`NewKey::validate`]); otherwise as
    /// [`KeyStore::insert`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let issued = keys.issue(NewKey::system("billing").scopes(["invoices:read"])?).await?;
    /// assert!(issued.key.expose_secret().starts_with("tak_sys_"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn issue(&self, spec: NewKey) -> Result<IssuedKey, StoreError> {
        let now = self.now();
        spec.validate(now).map_err(invalid)?;
        let issued = self.policy.format.issue(spec, now);
        self.policy.store.insert(&issued.record).await?;
        self.emit(&AuthEvent::Issued { key_id: &issued.record.id, kind: issued.record.kind });
        Ok(issued)
    }

    /// Stores an existing key, keeping only its digest. A key of the manager's [`KeyFormat`] is stored under its
    /// public id with its prefix, so it authenticates as if this manager had issued it; any other string is an
    /// opaque key, stored under a new random id by the SHA-256 digest of the whole key.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a spec out of bounds, a key that starts with one of the format's prefixes but is
    /// malformed, or one whose prefix names the other kind; otherwise as [`KeyStore::insert`] (a key already
    /// stored is a [`StoreError::Conflict`]).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let record = keys.import_key(NewKey::user("alice"), &ApiKey::new("old-key".into())).await?;
    /// assert_eq!(record.digest, KeyDigest::of(b"old-key"));
    /// assert!(record.prefix.is_none()); // opaque: looked up by digest
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn import_key(&self, spec: NewKey, key: &ApiKey) -> Result<KeyRecord, StoreError> {
        let now = self.now();
        spec.validate(now).map_err(invalid)?;
        let format = &self.policy.format;
        let record = match format.classify(key.expose_secret().as_bytes()) {
            Classified::Ours(parsed) => {
                if parsed.kind() != spec.kind() {
                    return Err(StoreError::Invalid("the key's prefix names the other key kind"));
                }
                let prefix = format.prefix(parsed.kind()).to_owned();
                spec.into_record(*parsed.id(), parsed.secret_digest(), now).with_prefix(prefix)
            }
            Classified::Malformed => return Err(StoreError::Invalid("the key has a known prefix but is malformed")),
            Classified::Foreign => spec.into_record(KeyId::random(), key.digest(), now),
        };
        self.store_imported(record).await
    }

    /// Imports an opaque key issued elsewhere by its SHA-256 digest (migration without re-issuing keys).
    ///
    /// # Errors
    /// As [`KeyManager::import_key`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// // The old system kept SHA-256 hex digests of its keys.
    /// let digest = KeyDigest::from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
    /// let record = keys.import_digest(NewKey::user("alice"), digest).await?;
    /// assert!(record.prefix.is_none());
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn import_digest(&self, spec: NewKey, digest: KeyDigest) -> Result<KeyRecord, StoreError> {
        let now = self.now();
        spec.validate(now).map_err(invalid)?;
        self.store_imported(spec.into_record(KeyId::random(), digest, now)).await
    }

    async fn store_imported(&self, record: KeyRecord) -> Result<KeyRecord, StoreError> {
        self.policy.store.insert(&record).await?;
        self.emit(&AuthEvent::Issued { key_id: &record.id, kind: record.kind });
        Ok(record)
    }

    /// The record with this id.
    ///
    /// # Errors
    /// As [`KeyStore::get`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let issued = keys.issue(NewKey::user("alice")).await?;
    /// assert_eq!(keys.get(&issued.record.id).await?.unwrap().owner, "alice");
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.policy.store.get(id).await
    }

    /// One page of records, ordered by id, with statuses as of the manager's clock.
    ///
    /// # Errors
    /// As [`KeyStore::list`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// keys.issue(NewKey::user("alice")).await?;
    /// let page = keys.list(&ListQuery::new().owner("alice").limit(10)).await?;
    /// assert_eq!(page.items.len(), 1);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.policy.store.list(query, self.now()).await
    }

    /// Changes a key's name, scopes, expiry, metadata, enabled flag or rate limit, in one atomic store step;
    /// effective on the next request. Bounds are checked first, as for [`KeyManager::issue`].
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a value out of bounds; [`StoreError::NotFound`] for an unknown id.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let issued = keys.issue(NewKey::user("alice")).await?;
    /// let update = KeyUpdate { scopes: Some(Scopes::new(["read"]).unwrap()), ..KeyUpdate::default() };
    /// assert!(keys.update(&issued.record.id, &update).await?.scopes.allows("read"));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        if let Some(name) = &update.name {
            check_name(name).map_err(invalid)?;
        }
        if let Some(scopes) = &update.scopes {
            check_scopes(scopes).map_err(invalid)?;
        }
        if let Some(metadata) = &update.metadata {
            check_metadata(metadata).map_err(invalid)?;
        }
        if let Some(Some(at)) = update.expires_at
            && at > max_expiry()
        {
            return Err(StoreError::Invalid("expiry must be no later than 9999-12-31T23:59:59Z"));
        }
        let record = self.policy.store.update(id, update).await?;
        self.emit(&AuthEvent::Updated { key_id: id });
        Ok(record)
    }

    /// Revokes a key for good, effective on the next request, and with it every key rotated from it: a revoked
    /// key never leaves a working successor (as OAuth 2.1 revokes a whole refresh-token family). To retire the old
    /// key of a rotation early and keep its successor, bring its expiry forward with [`KeyManager::update`]
    /// instead.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let issued = keys.issue(NewKey::user("alice")).await?;
    /// let record = keys.revoke(&issued.record.id).await?;
    /// assert_eq!(record.status_at(keys.now()), KeyStatus::Revoked);
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn revoke(&self, id: &KeyId) -> Result<KeyRecord, StoreError> {
        let record = self.policy.store.revoke(id, self.now()).await?;
        self.emit(&AuthEvent::Revoked { key_id: id });
        Ok(record)
    }

    /// Issues a successor with the same kind, owner, name, scopes, limit and metadata (and, if the old key expires,
    /// the same lifetime counted from now). The old key keeps working until the earlier of `now + grace` and its
    /// own expiry; a zero `grace` ends it at once. One atomic store step ([`KeyStore::rotate`]): of concurrent
    /// rotations of one key exactly one succeeds, and a failed one stores nothing.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a grace period past year 9999; [`StoreError::NotFound`] for an unknown id;
    /// [`StoreError::Conflict`] for a revoked or already rotated key.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let keys = KeyManager::new(MemoryStore::new());
    /// let old = keys.issue(NewKey::user("alice")).await?;
    /// let new = keys.rotate(&old.record.id, std::time::Duration::from_secs(3600)).await?;
    /// assert_eq!(new.record.owner, "alice");
    /// assert_eq!(keys.get(&old.record.id).await?.unwrap().rotated_to, Some(new.record.id));
    /// assert!(matches!(keys.rotate(&old.record.id, std::time::Duration::ZERO).await, Err(StoreError::Conflict(_))));
    /// # Ok::<(), StoreError>(()) }).unwrap();
    /// ```
    pub async fn rotate(&self, id: &KeyId, grace: Duration) -> Result<IssuedKey, StoreError> {
        let now = self.now();
        let grace_end = now
            .checked_add(grace)
            .filter(|end| *end <= max_expiry())
            .ok_or(StoreError::Invalid("grace period must end no later than 9999-12-31T23:59:59Z"))?;
        let old = self.policy.store.get(id).await?.ok_or(StoreError::NotFound(*id))?;
        // Checked here for a clear answer before minting; the store checks again atomically.
        if old.revoked_at.is_some() {
            return Err(StoreError::Conflict("a revoked key cannot be rotated"));
        }
        if old.rotated_to.is_some() {
            return Err(StoreError::Conflict("this key was already rotated"));
        }
        let successor = self.policy.format.issue(NewKey::successor_of(&old), now);
        self.policy.store.rotate(id, &successor.record, grace_end).await?;
        self.emit(&AuthEvent::Issued { key_id: &successor.record.id, kind: successor.record.kind });
        self.emit(&AuthEvent::Rotated { old: id, new: &successor.record.id });
        Ok(successor)
    }
}

/// Runs a future that is ready at once (the memory store never waits) without a runtime.
fn ready_now<T>(future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::backend(std::io::Error::other("the memory store did not answer at once"))),
    }
}

/// Synchronous shortcuts, for setting up a service or a test: thin calls into [`KeyManager`] with its defaults
/// (the default [`KeyFormat`], the system clock, no events). Use a [`KeyManager`] for anything else.
impl MemoryStore {
    /// Mints a key for `spec` and stores it: [`KeyManager::issue`], without a runtime.
    ///
    /// # Errors
    /// As [`KeyManager::issue`].
    ///
    /// ```
    /// use tower_api_key::{MemoryStore, NewKey};
    /// let issued = MemoryStore::new().add(NewKey::system("billing"))?;
    /// assert!(issued.key.expose_secret().starts_with("tak_sys_"));
    /// # Ok::<(), tower_api_key::StoreError>(())
    /// ```
    pub fn add(&self, spec: NewKey) -> Result<IssuedKey, StoreError> {
        ready_now(KeyManager::new(self.clone()).issue(spec))
    }

    /// Stores an existing key for `spec`: [`KeyManager::import_key`], without a runtime. A key of the default
    /// format is stored under its public id; any other string is an opaque key, stored by its digest.
    ///
    /// # Errors
    /// As [`KeyManager::import_key`].
    ///
    /// ```
    /// use tower_api_key::{MemoryStore, NewKey};
    /// let store = MemoryStore::new();
    /// store.import("legacy-key-123", NewKey::user("alice"))?;
    /// assert!(store.import("legacy-key-123", NewKey::user("bob")).is_err());
    /// # Ok::<(), tower_api_key::StoreError>(())
    /// ```
    pub fn import(&self, key: &str, spec: NewKey) -> Result<KeyRecord, StoreError> {
        ready_now(KeyManager::new(self.clone()).import_key(spec, &ApiKey::new(key.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyKind, KeyStatus};
    use crate::store::Lookup;

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn importing_a_key_of_our_format_stores_it_by_id_so_it_authenticates() {
        let store = MemoryStore::new();
        let minted = KeyFormat::new().issue(NewKey::system("svc"), SystemTime::now());
        let r = store.import(minted.key.expose_secret(), NewKey::system("svc")).unwrap();
        assert_eq!(r.id, minted.record.id);
        assert_eq!(r.digest, minted.record.digest);
        assert_eq!(r.prefix.as_deref(), Some("tak_sys"));
        assert!(store.lookup_now(Lookup::Id(&r.id)).unwrap().unwrap().is_some());
        let other = KeyFormat::new().issue(NewKey::system("svc"), SystemTime::now());
        assert!(store.import(other.key.expose_secret(), NewKey::user("x")).is_err(), "kind mismatch");
        assert!(matches!(store.import("tak_user_garbage", NewKey::user("x")), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn time_overflow_is_refused_before_anything_is_stored() {
        let store = MemoryStore::new();
        let keys = KeyManager::new(store.clone());
        block(async {
            let old = keys.issue(NewKey::user("alice")).await.unwrap();
            let rotated = keys.rotate(&old.record.id, Duration::from_secs(u64::MAX)).await;
            assert!(matches!(rotated, Err(StoreError::Invalid(_))), "{rotated:?}");
            let far = keys.issue(NewKey::user("a").expires_in(Duration::from_secs(u64::MAX))).await;
            assert!(matches!(far, Err(StoreError::Invalid(_))));
            let year_10000 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
            assert!(keys.issue(NewKey::user("a").expires_at(year_10000)).await.is_err());
            let update = KeyUpdate { expires_at: Some(Some(year_10000)), ..KeyUpdate::default() };
            assert!(matches!(keys.update(&old.record.id, &update).await, Err(StoreError::Invalid(_))));
        });
        assert_eq!(store.len(), 1, "nothing but the first key was stored");
        let only = block(store.get(&store_first_id(&store))).unwrap().unwrap();
        assert_eq!(only.rotated_to, None);
        assert_eq!(only.status_at(SystemTime::now()), KeyStatus::Active);
    }

    fn store_first_id(store: &MemoryStore) -> KeyId {
        block(store.list(&ListQuery::new(), SystemTime::now())).unwrap().items[0].id
    }

    #[test]
    fn rotation_keeps_the_owner_and_ends_at_the_earlier_of_grace_and_expiry() {
        let start = SystemTime::now();
        let clock = crate::clock::ManualClock::new(start);
        let keys = KeyManager::new(MemoryStore::new()).clock(clock.clone());
        block(async {
            let spec = NewKey::user("alice").name("n").scopes(["r"]).unwrap().metadata("t", "x");
            let old = keys.issue(spec.expires_in(Duration::from_secs(100))).await.unwrap();
            // Grace longer than the remaining lifetime: the old key's own expiry wins.
            let new = keys.rotate(&old.record.id, Duration::from_secs(1000)).await.unwrap();
            let old_now = keys.get(&old.record.id).await.unwrap().unwrap();
            assert_eq!(old_now.expires_at, Some(start + Duration::from_secs(100)));
            assert_eq!(old_now.rotated_to, Some(new.record.id));
            assert_eq!((new.record.owner.as_str(), new.record.name.as_str()), ("alice", "n"));
            assert_eq!(new.record.scopes, old.record.scopes);
            assert_eq!(new.record.metadata, old.record.metadata);
            assert_eq!(new.record.expires_at, Some(start + Duration::from_secs(100)));
            assert_eq!(new.record.kind, KeyKind::User);

            // Shorter grace wins over a later expiry; a zero grace ends the key at once.
            let other = keys.issue(NewKey::system("svc")).await.unwrap();
            keys.rotate(&other.record.id, Duration::ZERO).await.unwrap();
            let o = keys.get(&other.record.id).await.unwrap().unwrap();
            assert_eq!(o.status_at(clock.now()), KeyStatus::RotatedOut);
            assert!(matches!(keys.rotate(&KeyId::random(), Duration::ZERO).await, Err(StoreError::NotFound(_))));
        });
    }

    #[test]
    fn lifecycle_events_are_emitted() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let keys =
            KeyManager::new(MemoryStore::new()).events(move |e: &AuthEvent<'_>| log.lock().unwrap().push(e.name()));
        block(async {
            let k = keys.issue(NewKey::user("a")).await.unwrap();
            let n = keys.rotate(&k.record.id, Duration::from_secs(1)).await.unwrap();
            keys.update(&n.record.id, &KeyUpdate { name: Some("x".into()), ..KeyUpdate::default() }).await.unwrap();
            keys.revoke(&n.record.id).await.unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), ["issued", "issued", "rotated", "updated", "revoked"]);
    }
}
