//! [`MemoryStore`]: the embedded default store. Nothing to install; holds digests only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::change::{HourlyUsage, KeyUpdate, USAGE_HOURS_KEPT, Usage};
use super::contract::{KeyStore, Lookup, LookupResult, StoreError};
use super::list::{ListQuery, Page};
use crate::key::{KeyDigest, KeyId, KeyRecord, RandomKeyHasher};

/// How many records one listing examines at most before it ends its page early (work bounded by the page).
const LIST_SCAN_BUDGET: usize = 10_000;

/// How far before a key's newest hour its hourly counts are kept.
const KEPT: Duration = Duration::from_secs(3600 * USAGE_HOURS_KEPT as u64);

#[derive(Default)]
struct Maps {
    by_id: HashMap<KeyId, Arc<KeyRecord>, RandomKeyHasher>,
    /// Opaque keys only: digest of the whole key → id.
    by_digest: HashMap<KeyDigest, KeyId, RandomKeyHasher>,
    /// Every id, in byte order: listings read only the page they return.
    order: BTreeSet<KeyId>,
    /// Counts per key and start of the hour, apart from the records the request path reads. At most
    /// `USAGE_HOURS_KEPT + 1` hours per key: those from the key's newest hour back [`USAGE_HOURS_KEPT`] hours.
    hourly: HashMap<KeyId, BTreeMap<SystemTime, u64>, RandomKeyHasher>,
}

impl Maps {
    fn can_insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        if self.by_id.contains_key(&record.id) {
            return Err(StoreError::Conflict("a key with this id exists"));
        }
        if !record.is_formatted() && self.by_digest.contains_key(&record.digest) {
            return Err(StoreError::Conflict("this key is already stored"));
        }
        Ok(())
    }

    fn insert(&mut self, record: KeyRecord) {
        if !record.is_formatted() {
            self.by_digest.insert(record.digest, record.id);
        }
        self.order.insert(record.id);
        self.by_id.insert(record.id, Arc::new(record));
    }

    /// Adds `count` to the key's hour, and forgets its hours older than [`USAGE_HOURS_KEPT`] before its newest.
    fn add_hourly(&mut self, id: KeyId, hour: SystemTime, count: u64) {
        let hours = self.hourly.entry(id).or_default();
        let slot = hours.entry(Usage::hour_of(hour)).or_default();
        *slot = slot.saturating_add(count);
        let Some((&newest, _)) = hours.last_key_value() else { return };
        if let Some(oldest_kept) = newest.checked_sub(KEPT) {
            while hours.first_key_value().is_some_and(|(&h, _)| h < oldest_kept) {
                hours.pop_first();
            }
        }
    }

    /// Replaces the record with this id by `f` applied to a copy; lookups keep seeing the old one until the swap.
    fn change(&mut self, id: &KeyId, f: impl FnOnce(&mut KeyRecord)) -> Result<KeyRecord, StoreError> {
        let slot = self.by_id.get_mut(id).ok_or(StoreError::NotFound(*id))?;
        let mut record = KeyRecord::clone(slot);
        f(&mut record);
        *slot = Arc::new(record.clone());
        Ok(record)
    }
}

/// An in-memory [`KeyStore`]. Clones share the same keys.
///
/// Lookups take a read lock on a hash map keyed by id (or by digest, for opaque keys) and never wait for each
/// other; changes copy the record and swap it in under the write lock, so every state change is atomic and a
/// revocation is seen by the next request. Manage keys with [`crate::KeyManager`], or with the synchronous
/// shortcuts [`MemoryStore::add`] and [`MemoryStore::import`], which call it.
///
/// ```
/// use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};
///
/// let store = MemoryStore::new();
/// let issued = store.add(NewKey::user("alice").scopes(["read"])?)?;        // a fresh key, shown once
/// store.import("key-from-the-old-system", NewKey::system("billing"))?;     // an existing key, by digest
/// let layer = ApiKeyLayer::new(store.clone());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    maps: Arc<RwLock<Maps>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").field("keys", &self.len()).finish()
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// assert!(tower_api_key::MemoryStore::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
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
        self.read().by_id.len()
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

    /// Stores a record as it is: [`KeyStore::insert`] without a runtime, for setup code and tests. To mint or
    /// import keys, use [`MemoryStore::add`], [`MemoryStore::import`] or [`crate::KeyManager`].
    ///
    /// # Errors
    /// As [`KeyStore::insert`]: [`StoreError::Conflict`] for a taken id or opaque digest.
    ///
    /// ```
    /// use tower_api_key::*;
    /// let store = MemoryStore::new();
    /// let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// store.put(record.clone())?;
    /// assert!(store.put(record).is_err());
    /// # Ok::<(), StoreError>(())
    /// ```
    pub fn put(&self, record: KeyRecord) -> Result<(), StoreError> {
        let mut maps = self.write();
        maps.can_insert(&record)?;
        maps.insert(record);
        Ok(())
    }

    fn find(&self, by: Lookup<'_>) -> Option<Arc<KeyRecord>> {
        let maps = self.read();
        match by {
            Lookup::Id(id) => maps.by_id.get(id).filter(|r| r.is_formatted()).cloned(),
            Lookup::Digest(d) => maps.by_digest.get(d).and_then(|id| maps.by_id.get(id)).cloned(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
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

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.read().by_id.get(id).map(|r| KeyRecord::clone(r)))
    }

    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.put(record.clone())
    }

    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        let size = query.page_size();
        let maps = self.read();
        let start = query.after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut items = Vec::new();
        let mut last_seen = None;
        for (examined, id) in maps.order.range((start, Bound::Unbounded)).enumerate() {
            if examined == LIST_SCAN_BUDGET {
                // Bounded work: end the page here; the caller continues from the last id examined.
                return Ok(Page { items, next: last_seen });
            }
            last_seen = Some(*id);
            let Some(record) = maps.by_id.get(id) else { continue };
            if !query.matches(record, now) {
                continue;
            }
            if items.len() == size {
                let next = items.last().map(|r: &KeyRecord| r.id);
                return Ok(Page { items, next });
            }
            items.push(KeyRecord::clone(record));
        }
        Ok(Page { items, next: None })
    }

    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        self.write().change(id, |r| update.apply(r))
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let mut maps = self.write();
        let record = maps.change(id, |r| {
            r.revoked_at.get_or_insert(at);
        })?;
        // The whole rotation chain, under the same lock; a chain never repeats an id, so it ends.
        let mut next = record.rotated_to;
        let mut steps = 0;
        while let Some(successor) = next
            && steps < maps.by_id.len()
        {
            steps += 1;
            next = maps
                .change(&successor, |r| {
                    r.revoked_at.get_or_insert(at);
                })
                .ok()
                .and_then(|r| r.rotated_to);
        }
        Ok(record)
    }

    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let mut maps = self.write();
        let old = maps.by_id.get(id).ok_or(StoreError::NotFound(*id))?;
        if old.revoked_at.is_some() {
            return Err(StoreError::Conflict("a revoked key cannot be rotated"));
        }
        if old.rotated_to.is_some() {
            return Err(StoreError::Conflict("this key was already rotated"));
        }
        maps.can_insert(successor)?;
        maps.insert(successor.clone());
        maps.change(id, |r| {
            r.rotated_to = Some(successor.id);
            r.expires_at = Some(r.expires_at.map_or(grace_end, |own| own.min(grace_end)));
        })
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        let mut maps = self.write();
        for u in usage {
            // Unknown ids (a key deleted since) are skipped.
            let known = maps.change(&u.id, |r| {
                r.usage_count = r.usage_count.saturating_add(u.count);
                r.last_used_at = Some(r.last_used_at.map_or(u.last_used, |t| t.max(u.last_used)));
            });
            if known.is_ok() {
                maps.add_hourly(u.id, u.hour, u.count);
            }
        }
        Ok(())
    }

    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        let maps = self.read();
        let Some(hours) = maps.hourly.get(id) else { return Ok(Vec::new()) };
        Ok(hours.range(Usage::hour_of(since)..).map(|(&hour, &count)| HourlyUsage { hour, count }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyKind;

    #[test]
    fn lookups_by_id_only_find_formatted_keys_and_by_digest_only_opaque_ones() {
        let store = MemoryStore::new();
        let formatted =
            KeyRecord::new(KeyId::random(), KeyDigest::of(b"s"), KeyKind::User, "a").with_prefix("tak_user");
        let opaque = KeyRecord::new(KeyId::random(), KeyDigest::of(b"legacy"), KeyKind::User, "b");
        store.put(formatted.clone()).unwrap();
        store.put(opaque.clone()).unwrap();
        assert!(store.find(Lookup::Id(&formatted.id)).is_some());
        assert!(store.find(Lookup::Digest(&formatted.digest)).is_none());
        assert!(store.find(Lookup::Digest(&KeyDigest::of(b"legacy"))).is_some());
        assert!(store.find(Lookup::Id(&opaque.id)).is_none());
    }

    #[test]
    fn a_listing_ends_early_after_its_scan_budget_and_resumes() {
        let store = MemoryStore::new();
        for i in 0..LIST_SCAN_BUDGET + 5 {
            let owner = if i == LIST_SCAN_BUDGET + 2 { "needle" } else { "hay" };
            store.put(KeyRecord::new(KeyId::random(), KeyDigest::of(&i.to_le_bytes()), KeyKind::User, owner)).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let now = SystemTime::now();
        let mut q = ListQuery::new().owner("needle");
        let (mut found, mut pages) = (Vec::new(), 0);
        loop {
            let page = rt.block_on(store.list(&q, now)).unwrap();
            pages += 1;
            found.extend(page.items);
            match page.next {
                Some(next) => q = q.after(next),
                None => break,
            }
        }
        assert_eq!(found.len(), 1);
        assert_eq!(pages, 2, "one page per scan budget");
    }

    #[tokio::test]
    async fn hourly_counts_are_bounded_per_key_and_outlive_a_revocation() {
        let store = MemoryStore::new();
        let issued = store.add(crate::key::NewKey::user("a")).unwrap();
        let id = issued.record.id;
        let hour = |h: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(h * 3600);
        // 400 hours, one flush each, and one flush with two hours.
        for h in 0..400 {
            store.record_usage(&[Usage::new(id, 1, hour(h))]).await.unwrap();
        }
        store.record_usage(&[Usage::new(id, 2, hour(400)), Usage::new(id, u64::MAX, hour(399))]).await.unwrap();
        let kept = store.hourly_usage(&id, SystemTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(kept.len(), USAGE_HOURS_KEPT as usize + 1, "from the newest hour back USAGE_HOURS_KEPT hours");
        assert_eq!(kept.first().map(|h| h.hour), Some(hour(400 - u64::from(USAGE_HOURS_KEPT))));
        assert_eq!(
            &kept[kept.len() - 2..],
            [HourlyUsage { hour: hour(399), count: u64::MAX }, HourlyUsage { hour: hour(400), count: 2 }]
        );
        let got = store.get(&id).await.unwrap().unwrap();
        assert_eq!(got.usage_count, u64::MAX);
        // A revoked key keeps its counts; unknown keys have none, and record nothing.
        store.revoke(&id, hour(401)).await.unwrap();
        assert_eq!(store.hourly_usage(&id, hour(400)).await.unwrap().len(), 1);
        let unknown = KeyId::random();
        store.record_usage(&[Usage::new(unknown, 1, hour(1))]).await.unwrap();
        assert!(store.hourly_usage(&unknown, SystemTime::UNIX_EPOCH).await.unwrap().is_empty());
        assert!(!store.read().hourly.contains_key(&unknown));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_the_store_contract() {
        crate::conformance::run(|| async { MemoryStore::new() }).await;
    }
}
