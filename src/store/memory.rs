//! [`MemoryStore`]: the embedded default store. Nothing to install; holds digests only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::events::{AuthEvent, AuthEventSink};
use crate::format::{Classified, KeyFormat, KeyId};
use crate::manage::{IssuedKey, KeyManager, KeyUpdate, ListQuery, NewKey, Page, Usage};
use crate::record::KeyRecord;
use crate::secret::{KeyDigest, RandomKeyHasher};
use crate::store::{KeyStore, Lookup, LookupResult, StoreError};

#[derive(Default)]
struct Maps {
    by_id: HashMap<KeyId, Arc<KeyRecord>, RandomKeyHasher>,
    /// Opaque keys only: digest of the whole key → id.
    by_digest: HashMap<KeyDigest, KeyId, RandomKeyHasher>,
}

struct Inner {
    maps: RwLock<Maps>,
    format: KeyFormat,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn AuthEventSink>>,
}

/// An in-memory [`KeyStore`] and [`KeyManager`]. Clones share the same keys.
///
/// Lookups take a read lock on a hash map keyed by id (or by digest, for opaque keys) and never wait for each
/// other; changes copy the record and swap it in, so a revocation is seen by the next request.
///
/// ```
/// use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};
///
/// let store = MemoryStore::new();
/// let issued = store.add(NewKey::user("alice").scopes(["read"])?)?;       // a fresh key, shown once
/// store.add_opaque("key-from-the-old-system", NewKey::system("billing"))?; // an existing key, by digest
/// let layer = ApiKeyLayer::new(store.clone());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.len())
            .field("format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with the default key format and the system clock.
    ///
    /// ```
    /// assert!(tower_api_key::MemoryStore::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                maps: RwLock::new(Maps::default()),
                format: KeyFormat::new(),
                clock: Arc::new(SystemClock),
                events: None,
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let old = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            maps: RwLock::new(Maps { by_id: shared.read().by_id.clone(), by_digest: shared.read().by_digest.clone() }),
            format: shared.format.clone(),
            clock: shared.clock.clone(),
            events: shared.events.clone(),
        });
        let mut inner = old;
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// Uses `format` for keys this store issues (match it on the layer with [`crate::ApiKeyLayer::key_format`]).
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new().user_prefix("acme")?;
    /// let store = tower_api_key::MemoryStore::new().with_format(f);
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_format(self, format: KeyFormat) -> Self {
        self.rebuild(|i| i.format = format)
    }

    /// Uses `clock` for creation, expiry, revocation and rotation times.
    ///
    /// ```
    /// let clock = tower_api_key::ManualClock::new(std::time::SystemTime::now());
    /// let store = tower_api_key::MemoryStore::new().with_clock(clock);
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.rebuild(|i| i.clock = Arc::new(clock))
    }

    /// Sends lifecycle events (issued, revoked, rotated) to `sink`.
    ///
    /// ```
    /// let store = tower_api_key::MemoryStore::new().with_events(|e: &tower_api_key::AuthEvent<'_>| {
    ///     tracing::info!(event = e.name(), "key lifecycle");
    /// });
    /// ```
    #[must_use]
    pub fn with_events(self, sink: impl AuthEventSink) -> Self {
        self.rebuild(|i| i.events = Some(Arc::new(sink)))
    }

    /// Number of stored keys (of every status).
    ///
    /// ```
    /// let store = tower_api_key::MemoryStore::new();
    /// store.add(tower_api_key::NewKey::user("a")).unwrap();
    /// assert_eq!(store.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.read().by_id.len()
    }

    /// Whether the store holds no key.
    ///
    /// ```
    /// assert!(tower_api_key::MemoryStore::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Mints a key of the crate's format for `spec` and stores its record (synchronous [`KeyManager::issue`]).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] in the (astronomically unlikely) case of an id collision.
    ///
    /// ```
    /// use tower_api_key::{MemoryStore, NewKey};
    /// let issued = MemoryStore::new().add(NewKey::system("billing"))?;
    /// assert!(issued.key.expose_secret().starts_with("tak_sys_"));
    /// # Ok::<(), tower_api_key::StoreError>(())
    /// ```
    pub fn add(&self, spec: NewKey) -> Result<IssuedKey, StoreError> {
        let generated = self.inner.format.generate(spec.kind);
        let prefix = self.inner.format.prefix(spec.kind).to_owned();
        let record = spec.into_record(generated.id, generated.digest, self.now()).with_prefix(prefix);
        self.put(record.clone())?;
        self.emit(&AuthEvent::Issued { key_id: &record.id, kind: record.kind });
        Ok(IssuedKey { key: generated.key, record })
    }

    /// Stores an existing key for `spec`, keeping only its digest. A key of this store's [`KeyFormat`] is stored
    /// under its public id (its prefix must name `spec`'s kind); any other string is an opaque key, stored by the
    /// SHA-256 digest of the whole key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the same key is already stored; [`StoreError::Invalid`] if the key starts with
    /// one of the format's prefixes but is malformed, or its prefix names the other kind.
    ///
    /// ```
    /// use tower_api_key::{MemoryStore, NewKey};
    /// let store = MemoryStore::new();
    /// let record = store.add_opaque("legacy-key-123", NewKey::user("alice"))?;
    /// assert!(store.add_opaque("legacy-key-123", NewKey::user("bob")).is_err());
    /// # Ok::<(), tower_api_key::StoreError>(())
    /// ```
    pub fn add_opaque(&self, key: &str, spec: NewKey) -> Result<KeyRecord, StoreError> {
        let record = match self.inner.format.classify(key.as_bytes()) {
            Classified::Ours(parsed) => {
                if parsed.kind() != spec.kind {
                    return Err(StoreError::Invalid("the key's prefix names the other key kind"));
                }
                let prefix = self.inner.format.prefix(parsed.kind()).to_owned();
                spec.into_record(*parsed.id(), parsed.secret_digest(), self.now()).with_prefix(prefix)
            }
            Classified::Malformed => return Err(StoreError::Invalid("the key has a known prefix but is malformed")),
            Classified::Foreign => spec.into_record(KeyId::random(), KeyDigest::of(key.as_bytes()), self.now()),
        };
        self.put(record.clone())?;
        self.emit(&AuthEvent::Issued { key_id: &record.id, kind: record.kind });
        Ok(record)
    }

    /// Stores a record as it is (for imports and tests).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if its id, or its digest (opaque keys), is already stored.
    ///
    /// ```
    /// use tower_api_key::*;
    /// let store = MemoryStore::new();
    /// store.put(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice"))?;
    /// # Ok::<(), StoreError>(())
    /// ```
    pub fn put(&self, record: KeyRecord) -> Result<(), StoreError> {
        let mut maps = self.inner.write();
        if maps.by_id.contains_key(&record.id) {
            return Err(StoreError::Conflict("a key with this id exists"));
        }
        if !record.is_formatted() {
            if maps.by_digest.contains_key(&record.digest) {
                return Err(StoreError::Conflict("this key is already stored"));
            }
            maps.by_digest.insert(record.digest, record.id);
        }
        maps.by_id.insert(record.id, Arc::new(record));
        Ok(())
    }

    fn find(&self, by: Lookup<'_>) -> Option<Arc<KeyRecord>> {
        let maps = self.inner.read();
        match by {
            Lookup::Id(id) => maps.by_id.get(id).filter(|r| r.is_formatted()).cloned(),
            Lookup::Digest(d) => maps.by_digest.get(d).and_then(|id| maps.by_id.get(id)).cloned(),
        }
    }
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        Ok(self.find(by))
    }

    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        Some(Ok(self.find(by)))
    }
}

#[async_trait]
impl KeyManager for MemoryStore {
    fn key_format(&self) -> &KeyFormat {
        &self.inner.format
    }

    fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    fn emit(&self, event: &AuthEvent<'_>) {
        if let Some(sink) = &self.inner.events {
            sink.on_event(event);
        }
    }

    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.put(record)
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.inner.read().by_id.get(id).map(|r| KeyRecord::clone(r)))
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let now = self.now();
        let mut items: Vec<KeyRecord> = self
            .inner
            .read()
            .by_id
            .values()
            .filter(|r| query.after.is_none_or(|after| r.id > after) && query.matches(r, now))
            .map(|r| KeyRecord::clone(r))
            .collect();
        items.sort_by_key(|r| r.id);
        let size = query.page_size();
        let next = (items.len() > size).then(|| items[size - 1].id);
        items.truncate(size);
        Ok(Page { items, next })
    }

    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let mut maps = self.inner.write();
        let slot = maps.by_id.get_mut(id).ok_or(StoreError::NotFound(*id))?;
        let mut record = KeyRecord::clone(slot);
        update.apply(&mut record);
        *slot = Arc::new(record.clone());
        Ok(record)
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        let mut maps = self.inner.write();
        for u in usage {
            if let Some(slot) = maps.by_id.get_mut(&u.id) {
                let mut record = KeyRecord::clone(slot);
                record.usage_count = record.usage_count.saturating_add(u.count);
                record.last_used_at = Some(record.last_used_at.map_or(u.last_used, |t| t.max(u.last_used)));
                *slot = Arc::new(record);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::format::KeyKind;
    use crate::manage::KeyManager;
    use crate::record::KeyStatus;
    use std::time::Duration;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn lookups_by_id_only_find_formatted_keys_and_by_digest_only_opaque_ones() {
        let store = MemoryStore::new();
        let issued = store.add(NewKey::user("a")).unwrap();
        let opaque = store.add_opaque("legacy", NewKey::user("b")).unwrap();
        assert!(store.find(Lookup::Id(&issued.record.id)).is_some());
        assert!(store.find(Lookup::Digest(&issued.record.digest)).is_none());
        assert!(store.find(Lookup::Digest(&KeyDigest::of(b"legacy"))).is_some());
        assert!(store.find(Lookup::Id(&opaque.id)).is_none());
    }

    #[test]
    fn existing_keys_of_our_format_are_stored_by_id() {
        let store = MemoryStore::new();
        let g = store.key_format().generate(KeyKind::System);
        let r = store.add_opaque(g.key.expose_secret(), NewKey::system("svc")).unwrap();
        assert_eq!(r.id, g.id);
        assert_eq!(r.digest, g.digest);
        assert!(store.add_opaque(g.key.expose_secret(), NewKey::user("x")).is_err(), "kind mismatch");
        assert!(matches!(store.add_opaque("tak_user_garbage", NewKey::user("x")), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn list_filters_and_pages() {
        let clock = ManualClock::new(SystemTime::now());
        let store = MemoryStore::new().with_clock(clock.clone());
        for i in 0..25 {
            let spec = if i % 2 == 0 { NewKey::user(format!("u{}", i % 3)) } else { NewKey::system("svc") };
            store.add(spec).unwrap();
        }
        block(async {
            let mut seen = Vec::new();
            let mut q = ListQuery::new().limit(10);
            loop {
                let page = store.list(&q).await.unwrap();
                assert!(page.items.len() <= 10);
                seen.extend(page.items.iter().map(|r| r.id));
                match page.next {
                    Some(next) => q = q.after(next),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(seen, sorted, "ordered, no duplicates");
            assert_eq!(seen.len(), 25);
            let systems = store.list(&ListQuery::new().kind(KeyKind::System)).await.unwrap();
            assert_eq!(systems.items.len(), 12);
            let u0 = store.list(&ListQuery::new().owner("u0")).await.unwrap();
            assert!(u0.items.iter().all(|r| r.owner == "u0") && !u0.items.is_empty());
            let first = systems.items[0].id;
            store.revoke(&first).await.unwrap();
            let revoked = store.list(&ListQuery::new().status(KeyStatus::Revoked)).await.unwrap();
            assert_eq!(revoked.items.len(), 1);
            assert_eq!(revoked.items[0].id, first);
        });
    }

    #[test]
    fn rotation_keeps_the_owner_and_ends_at_the_earlier_of_grace_and_expiry() {
        let start = SystemTime::now();
        let clock = ManualClock::new(start);
        let store = MemoryStore::new().with_clock(clock.clone());
        block(async {
            let old = store
                .issue(
                    NewKey::user("alice")
                        .name("n")
                        .scopes(["r"])
                        .unwrap()
                        .metadata("t", "x")
                        .expires_in(Duration::from_secs(100)),
                )
                .await
                .unwrap();
            // Grace longer than the remaining lifetime: the old key's own expiry wins.
            let new = store.rotate(&old.record.id, Duration::from_secs(1000)).await.unwrap();
            let old_now = store.get(&old.record.id).await.unwrap().unwrap();
            assert_eq!(old_now.expires_at, Some(start + Duration::from_secs(100)));
            assert_eq!(old_now.rotated_to, Some(new.record.id));
            assert_eq!(new.record.owner, "alice");
            assert_eq!(new.record.name, "n");
            assert_eq!(new.record.scopes, old.record.scopes);
            assert_eq!(new.record.metadata, old.record.metadata);
            assert_eq!(new.record.expires_at, Some(start + Duration::from_secs(100)));
            assert!(matches!(store.rotate(&old.record.id, Duration::ZERO).await, Err(StoreError::Conflict(_))));

            // Shorter grace wins over a later expiry; a zero grace ends the key at once.
            let other = store.issue(NewKey::system("svc")).await.unwrap();
            store.rotate(&other.record.id, Duration::ZERO).await.unwrap();
            let o = store.get(&other.record.id).await.unwrap().unwrap();
            assert_eq!(o.status_at(clock.now()), KeyStatus::RotatedOut);

            let revoked = store.issue(NewKey::system("svc")).await.unwrap();
            store.revoke(&revoked.record.id).await.unwrap();
            assert!(matches!(store.rotate(&revoked.record.id, Duration::ZERO).await, Err(StoreError::Conflict(_))));
            assert!(matches!(store.rotate(&KeyId::random(), Duration::ZERO).await, Err(StoreError::NotFound(_))));
        });
    }

    #[test]
    fn imports_by_digest_and_rejects_duplicates() {
        let store = MemoryStore::new();
        block(async {
            let d = KeyDigest::of(b"from-the-old-system");
            let r = store.import_digest(NewKey::user("a"), d).await.unwrap();
            assert_eq!(store.lookup(Lookup::Digest(&d)).await.unwrap().unwrap().id, r.id);
            assert!(matches!(store.import_digest(NewKey::user("b"), d).await, Err(StoreError::Conflict(_))));
            let k = crate::ApiKey::new("another".into());
            store.import_key(NewKey::system("s"), &k).await.unwrap();
            assert!(store.lookup(Lookup::Digest(&KeyDigest::of(b"another"))).await.unwrap().is_some());
        });
    }

    #[test]
    fn concurrent_lookups_and_updates() {
        let store = MemoryStore::new();
        let ids: Vec<KeyId> = (0..64).map(|i| store.add(NewKey::user(format!("u{i}"))).unwrap().record.id).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = store.clone();
                let ids = ids.clone();
                s.spawn(move || {
                    for round in 0..2_000 {
                        let id = &ids[(round * 7 + t) % ids.len()];
                        assert!(store.find(Lookup::Id(id)).is_some());
                    }
                });
            }
            let store = store.clone();
            let ids = ids.clone();
            s.spawn(move || {
                block(async {
                    for id in &ids {
                        store
                            .update(id, &KeyUpdate { name: Some("renamed".into()), ..KeyUpdate::default() })
                            .await
                            .unwrap();
                    }
                });
            });
        });
        assert!(ids.iter().all(|id| store.find(Lookup::Id(id)).unwrap().name == "renamed"));
    }

    #[test]
    fn lifecycle_events_are_emitted() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let store = MemoryStore::new().with_events(move |e: &AuthEvent<'_>| log.lock().unwrap().push(e.name()));
        block(async {
            let k = store.issue(NewKey::user("a")).await.unwrap();
            let n = store.rotate(&k.record.id, Duration::from_secs(1)).await.unwrap();
            store.revoke(&n.record.id).await.unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), ["issued", "issued", "rotated", "revoked"]);
    }
}
