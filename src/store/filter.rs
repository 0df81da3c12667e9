//! The id filter of a [`crate::CachedStore`] (feature `cache`): a Bloom filter ([`fastbloom`]) of the public ids
//! (and, for opaque keys, the digests) that exist, so that a flood of well-formed keys with random ids is answered
//! "certainly absent" in process, without a store call and without filling the negative cache.
//!
//! **Sizing.** [`IdFilter::with_capacity`] sizes the bit array for a 0.9 % false-positive rate at that many ids
//! (a margin under the 1 % promised): about 9.8 bits (1.2 bytes) per id and 7 hash probes; at 10 million ids,
//! 12.3 MB and under 1 % measured (see `benches/filter.rs` and `benches/stores.rs`). A false positive ("maybe" for
//! an unknown id) only costs the store lookup that would have happened without a filter. Beyond its capacity the rate rises; the cache rebuilds a larger filter when its
//! count of ids passes the capacity.
//!
//! **Hashing.** Ids and digests are hashed with [`foldhash`] (its quality hash for the filter's probes, its fast
//! hash for the cache's tables), seeded from the operating system's random source: 64 bits shared by the process
//! and 64 more for each filter and each table, so an attacker cannot mint ids that are known to pass a filter or to
//! collide in a table. One hash of an id is two or three multiplies, about 1 ns, where SipHash took about 20. Like
//! any foldhash (and unlike SipHash) it is not a cryptographic PRF: it resists an attacker who cannot see hash
//! values, which is all a filter or a cache table shows (whether a lookup reached the store).
//!
//! **Adding is always safe, removing never happens.** An id is added when the cache builds the filter from the
//! store, when a key is inserted or changed through the cache, and when an [`crate::Invalidation`] arrives from
//! another instance. Ids are never removed (a revoked key stays in the store, so it stays in the filter).

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use fastbloom::AtomicBloomFilter;
use foldhash::SharedSeed;
use tokio::sync::Notify;

use super::contract::{KeyStore, Lookup, StoreError};
use super::invalidate::Invalidation;
use super::list::{ListQuery, MAX_PAGE};
use crate::key::KeyRecord;

/// The false-positive rate a filter is sized for, at its capacity: 0.9 %, so that the measured rate stays under
/// the 1 % promised (at 0.01 it measured 1.008 % with this hash at 10 million ids, 2 million trials).
const FALSE_POSITIVE_RATE: f64 = 0.009;

/// What the hash of a lookup reads, as one `u128` (little-endian): the id's 12 bytes, zero-extended, or the
/// digest's first 16 (128 bits of SHA-256, as unique as the whole for hashing). The filter's probes and the cache's
/// key hash both read this.
#[inline]
pub(crate) fn hash_input(by: Lookup<'_>) -> u128 {
    let mut bytes = [0u8; 16];
    match by {
        Lookup::Id(id) => bytes[..12].copy_from_slice(&id.0),
        Lookup::Digest(d) => bytes.copy_from_slice(&d.as_bytes()[..16]),
    }
    u128::from_le_bytes(bytes)
}

/// 64 bits from the operating system's random source; if it fails, from std's randomly keyed SipHash (itself
/// seeded from the OS, and different for every `RandomState`).
fn os_random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| std::collections::hash_map::RandomState::new().hash_one(0u8))
}

/// The process's shared foldhash seed, drawn once from the OS (foldhash's own global seed comes from addresses and
/// the time).
fn shared_seed() -> &'static SharedSeed {
    static SEED: OnceLock<SharedSeed> = OnceLock::new();
    SEED.get_or_init(|| SharedSeed::from_u64(os_random_u64()))
}

/// The [`BuildHasher`] of the cache's tables, whose keys clients choose: foldhash's fast hash, seeded from the
/// OS's random source (a shared 64-bit seed for the process and 64 bits for each table). See the module docs for
/// what it resists. Each `HashKeys::random()` draws a fresh per-table seed.
#[derive(Clone)]
pub(crate) struct HashKeys(foldhash::fast::SeedableRandomState);

impl fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKeys(..)")
    }
}

impl HashKeys {
    /// A fresh per-table seed.
    pub(crate) fn random() -> Self {
        Self(foldhash::fast::SeedableRandomState::with_seed(os_random_u64(), shared_seed()))
    }
}

impl BuildHasher for HashKeys {
    type Hasher = foldhash::fast::FoldHasher<'static>;
    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// The hashes a filter probes with: foldhash's quality hash (one more multiply than the fast one, so that every
/// bit of the 64 is mixed: fastbloom derives all its probes from them), one seed for ids and another for digests,
/// so the two are hashed apart.
struct ProbeHash {
    ids: foldhash::quality::SeedableRandomState,
    digests: foldhash::quality::SeedableRandomState,
}

impl ProbeHash {
    fn random() -> Self {
        let seeded = || foldhash::quality::SeedableRandomState::with_seed(os_random_u64(), shared_seed());
        Self { ids: seeded(), digests: seeded() }
    }

    #[inline]
    fn of(&self, by: Lookup<'_>) -> u64 {
        let state = match by {
            Lookup::Id(_) => &self.ids,
            Lookup::Digest(_) => &self.digests,
        };
        state.hash_one(hash_input(by))
    }
}

/// A Bloom filter of the keys that exist: public ids, and the digests of opaque keys. No false negatives: what was
/// inserted is always "maybe present"; an id never inserted is "certainly absent" but for about 1 % of them at
/// capacity. Inserting and checking take `&self` (atomic bits): many threads at once, no lock.
///
/// [`crate::CachedStore`] keeps one up to date by itself ([`crate::CacheConfig::id_filter`]); this type is public so
/// that its cost, memory and accuracy can be measured, and for stores of your own.
///
/// ```
/// use tower_api_key::{IdFilter, KeyDigest, KeyId, Lookup};
/// let filter = IdFilter::with_capacity(1_000);
/// let (id, digest) = (KeyId::random(), KeyDigest::of(b"legacy-key"));
/// filter.insert(Lookup::Id(&id));
/// filter.insert(Lookup::Digest(&digest));
/// assert!(filter.may_contain(Lookup::Id(&id)) && filter.may_contain(Lookup::Digest(&digest)));
/// assert!(filter.memory_bytes() < 2_000); // about 1.2 bytes per id
/// ```
pub struct IdFilter {
    bloom: AtomicBloomFilter,
    hash: ProbeHash,
    capacity: usize,
}

impl fmt::Debug for IdFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdFilter")
            .field("capacity", &self.capacity)
            .field("memory_bytes", &self.memory_bytes())
            .field("hashes", &self.bloom.num_hashes())
            .finish()
    }
}

impl IdFilter {
    /// The most ids a filter is sized for: 2<sup>28</sup> (268 million), 330 MB of bits. Beyond it the
    /// false-positive rate rises (those ids go to the store, as without a filter); there is never a false negative.
    ///
    /// ```
    /// use tower_api_key::IdFilter;
    /// assert_eq!(IdFilter::MAX_CAPACITY, 1 << 28);
    /// ```
    pub const MAX_CAPACITY: usize = 1 << 28;

    /// An empty filter sized for `ids` members at a 0.9 % false-positive rate (under the 1 % promised; about 1.2
    /// bytes per id). At most [`IdFilter::MAX_CAPACITY`] ids: larger capacities are taken as that.
    ///
    /// ```
    /// let filter = tower_api_key::IdFilter::with_capacity(10_000_000);
    /// assert!(filter.memory_bytes() <= 16_000_000);
    /// ```
    #[must_use]
    pub fn with_capacity(ids: usize) -> Self {
        let capacity = ids.clamp(1, Self::MAX_CAPACITY);
        Self {
            bloom: AtomicBloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(capacity),
            hash: ProbeHash::random(),
            capacity,
        }
    }

    /// Adds a public id or a digest.
    ///
    /// ```
    /// use tower_api_key::{IdFilter, KeyId, Lookup};
    /// let filter = IdFilter::with_capacity(10);
    /// let id = KeyId::random();
    /// filter.insert(Lookup::Id(&id));
    /// assert!(filter.may_contain(Lookup::Id(&id)));
    /// ```
    pub fn insert(&self, member: Lookup<'_>) {
        self.bloom.insert_hash(self.hash.of(member));
    }

    /// Adds what a lookup of `record` asks for: its id, and its digest for an opaque key.
    ///
    /// ```
    /// use tower_api_key::{IdFilter, KeyDigest, KeyId, KeyKind, KeyRecord, Lookup};
    /// let opaque = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// let filter = IdFilter::with_capacity(10);
    /// filter.insert_record(&opaque);
    /// assert!(filter.may_contain(Lookup::Digest(&opaque.digest)));
    /// ```
    pub fn insert_record(&self, record: &KeyRecord) {
        self.insert_change(&Invalidation::of(record));
    }

    /// Adds the id (and digest, if any) named by an invalidation message.
    fn insert_change(&self, change: &Invalidation) {
        self.insert(Lookup::Id(&change.id));
        if let Some(d) = &change.digest {
            self.insert(Lookup::Digest(d));
        }
    }

    /// `false`: certainly never inserted. `true`: inserted, or a false positive.
    ///
    /// ```
    /// use tower_api_key::{IdFilter, KeyId, Lookup};
    /// let filter = IdFilter::with_capacity(10);
    /// assert!(!filter.may_contain(Lookup::Id(&KeyId::random()))); // empty: nothing passes
    /// ```
    #[must_use]
    #[inline]
    pub fn may_contain(&self, member: Lookup<'_>) -> bool {
        self.bloom.contains_hash(self.hash.of(member))
    }

    /// How many members it was sized for.
    ///
    /// ```
    /// assert_eq!(tower_api_key::IdFilter::with_capacity(500).capacity(), 500);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The size of its bit array, in bytes (the whole of its memory but for a few words).
    ///
    /// ```
    /// let filter = tower_api_key::IdFilter::with_capacity(1_000_000);
    /// assert!(filter.memory_bytes() < 1_300_000);
    /// ```
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.bloom.num_bits() / 8
    }
}

/// What the filter said about one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Certainly no such key: answer `Ok(None)` without asking the store.
    Absent,
    /// Perhaps: ask the store.
    Maybe,
    /// The filter cannot be trusted now (not built yet, or the invalidation channel is down): ask the store.
    Untrusted,
}

impl Answer {
    #[cfg(feature = "metrics")]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Maybe => "maybe",
            Self::Untrusted => "untrusted",
        }
    }
}

struct Filters {
    /// What requests are checked against.
    current: Arc<IdFilter>,
    /// The filter a (re)build is filling: arriving ids go into it too, so none is lost at the swap.
    building: Option<Arc<IdFilter>>,
}

/// One cache's filter and whether it can be trusted. Shared by the cache, its invalidators and its builder task.
pub(crate) struct FilterState {
    filters: RwLock<Filters>,
    /// A complete build since the last resync request, and no resync request since.
    trusted: AtomicBool,
    /// Bumped by every resync request (a bus (re)connection): a build that started before does not make the
    /// filter trusted.
    resyncs: AtomicU64,
    /// Ids counted by the last build, plus every id added since (an upper bound: an id may come twice).
    members: AtomicU64,
    /// Wakes the builder for a resync (or a larger filter).
    wake: Notify,
}

impl fmt::Debug for FilterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterState")
            .field("trusted", &self.trusted.load(Ordering::Relaxed))
            .field("members", &self.members.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FilterState {
    /// Untrusted until the first build; a small placeholder filter until then.
    pub(crate) fn new() -> Self {
        Self {
            filters: RwLock::new(Filters { current: Arc::new(IdFilter::with_capacity(64)), building: None }),
            trusted: AtomicBool::new(false),
            resyncs: AtomicU64::new(0),
            members: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    /// The filter's answer for `by`; `channel_up` says whether changes made elsewhere reach this instance now.
    #[inline]
    pub(crate) fn check(&self, by: Lookup<'_>, channel_up: bool) -> Answer {
        if !channel_up || !self.trusted.load(Ordering::Acquire) {
            return Answer::Untrusted;
        }
        let filters = self.filters.read().unwrap_or_else(PoisonError::into_inner);
        if filters.current.may_contain(by) { Answer::Maybe } else { Answer::Absent }
    }

    /// Whether requests may be answered by the filter (the channel aside).
    pub(crate) fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// The memory of the filter in use, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.filters.read().unwrap_or_else(PoisonError::into_inner).current.memory_bytes()
    }

    /// A key exists (or changed): add it to the filter in use and to the one being built.
    pub(crate) fn add(&self, change: &Invalidation) {
        let filters = self.filters.read().unwrap_or_else(PoisonError::into_inner);
        filters.current.insert_change(change);
        if let Some(building) = &filters.building {
            building.insert_change(change);
        }
        self.members.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages may have been lost (a bus (re)connected): distrust the filter until a build that starts now ends.
    pub(crate) fn resync(&self) {
        {
            let _filters = self.filters.write().unwrap_or_else(PoisonError::into_inner);
            self.resyncs.fetch_add(1, Ordering::SeqCst);
            self.trusted.store(false, Ordering::Release);
        }
        self.wake.notify_one();
    }

    /// Lists the whole store in pages into a new filter, then puts it in place. Ids that arrive meanwhile go into
    /// both filters. Returns how many records it read.
    async fn build<S: KeyStore + ?Sized>(&self, store: &S, min_capacity: usize) -> Result<u64, StoreError> {
        let resyncs = self.resyncs.load(Ordering::SeqCst);
        let known = usize::try_from(self.members.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let next = Arc::new(IdFilter::with_capacity(min_capacity.max(known.saturating_mul(2))));
        self.filters.write().unwrap_or_else(PoisonError::into_inner).building = Some(next.clone());
        let mut read = 0u64;
        let mut after = None;
        loop {
            let mut query = ListQuery::new().limit(MAX_PAGE);
            query.after = after;
            let page = match store.list(&query, SystemTime::now()).await {
                Ok(page) => page,
                Err(error) => {
                    self.filters.write().unwrap_or_else(PoisonError::into_inner).building = None;
                    return Err(error);
                }
            };
            for record in &page.items {
                next.insert_record(record);
            }
            read += page.items.len() as u64;
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        let mut filters = self.filters.write().unwrap_or_else(PoisonError::into_inner);
        filters.current = next;
        filters.building = None;
        self.members.store(read, Ordering::Relaxed);
        if self.resyncs.load(Ordering::SeqCst) == resyncs {
            self.trusted.store(true, Ordering::Release);
        }
        Ok(read)
    }
}

/// The builder task of one cache: builds at once, then again on every resync request, every `refresh`, and when
/// the count of ids passes the filter's capacity. A failed build is retried (1 s, doubling to 30 s); the filter
/// stays as trusted as it was (a failed resync leaves it untrusted).
pub(crate) async fn run<S: KeyStore + ?Sized>(
    state: Arc<FilterState>,
    store: Arc<S>,
    min_capacity: usize,
    refresh: Duration,
) {
    let mut retry = Duration::from_secs(1);
    loop {
        match state.build(&*store, min_capacity).await {
            Ok(read) => {
                retry = Duration::from_secs(1);
                tracing::debug!(ids = read, "id filter built");
                let capacity = state.filters.read().unwrap_or_else(PoisonError::into_inner).current.capacity();
                if usize::try_from(read).unwrap_or(usize::MAX) > capacity {
                    continue; // a larger one at once
                }
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(refresh) => {}
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    retry_in_ms = retry.as_millis() as u64,
                    "could not build the id filter; lookups go to the store until it is built"
                );
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyDigest, KeyFormat, KeyId, NewKey};
    use crate::store::MemoryStore;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives_at_capacity() {
        let filter = IdFilter::with_capacity(20_000);
        let ids: Vec<KeyId> = (0..20_000).map(|_| KeyId::random()).collect();
        for id in &ids {
            filter.insert(Lookup::Id(id));
        }
        assert!(ids.iter().all(|id| filter.may_contain(Lookup::Id(id))));
        let false_pos = (0..100_000).filter(|_| filter.may_contain(Lookup::Id(&KeyId::random()))).count();
        assert!(false_pos < 1_500, "{false_pos} false positives in 100 000");
        // An id and a digest are told apart.
        let d = KeyDigest::of(b"x");
        filter.insert(Lookup::Digest(&d));
        assert!(filter.may_contain(Lookup::Digest(&d)));
    }

    #[test]
    fn a_capacity_past_the_maximum_is_taken_as_the_maximum_and_does_not_panic() {
        let filter = IdFilter::with_capacity(usize::MAX);
        assert_eq!(filter.capacity(), IdFilter::MAX_CAPACITY);
        assert!(filter.memory_bytes() <= 340_000_000, "{}", filter.memory_bytes());
        let id = KeyId::random();
        filter.insert(Lookup::Id(&id));
        assert!(filter.may_contain(Lookup::Id(&id)));
        assert_eq!(IdFilter::with_capacity(0).capacity(), 1);
    }

    #[test]
    fn every_filter_and_table_is_seeded_apart_and_ids_and_digests_hash_apart() {
        let id = KeyId::random();
        let (a, b) = (ProbeHash::random(), ProbeHash::random());
        assert_ne!(a.of(Lookup::Id(&id)), b.of(Lookup::Id(&id)), "two filters share a seed");
        // A digest whose first 16 bytes are the id's 12 and four zeros: the same u128 goes in, different seeds
        // hash it.
        let mut bytes = [0u8; 32];
        bytes[..12].copy_from_slice(&id.0);
        let digest = KeyDigest::from_bytes(bytes);
        assert_eq!(hash_input(Lookup::Id(&id)), hash_input(Lookup::Digest(&digest)));
        assert_ne!(a.of(Lookup::Id(&id)), a.of(Lookup::Digest(&digest)), "ids and digests share a seed");
        let (t1, t2) = (HashKeys::random(), HashKeys::random());
        assert_ne!(t1.hash_one(7u128), t2.hash_one(7u128), "two tables share a seed");
        assert_eq!(format!("{t1:?}"), "HashKeys(..)", "no seed in Debug");
    }

    #[tokio::test]
    async fn a_build_is_trusted_only_if_no_resync_came_meanwhile_and_keeps_ids_that_arrive_during_it() {
        let store = MemoryStore::new();
        let existing = store.add(NewKey::user("a")).unwrap();
        let state = FilterState::new();
        assert_eq!(state.check(Lookup::Id(&existing.record.id), true), Answer::Untrusted);
        state.build(&store, 100).await.unwrap();
        assert_eq!(state.check(Lookup::Id(&existing.record.id), true), Answer::Maybe);
        assert_eq!(state.check(Lookup::Id(&existing.record.id), false), Answer::Untrusted, "channel down");
        // An id added while a build runs is in the filter that replaces the current one.
        let late = KeyFormat::new().issue(NewKey::user("late"), SystemTime::now());
        state.filters.write().unwrap().building = Some(Arc::new(IdFilter::with_capacity(10)));
        state.add(&Invalidation::of(&late.record));
        let building = state.filters.read().unwrap().building.clone().unwrap();
        assert!(building.may_contain(Lookup::Id(&late.record.id)));
        state.resync();
        assert_eq!(state.check(Lookup::Id(&KeyId::random()), true), Answer::Untrusted);
        state.build(&store, 100).await.unwrap();
        assert_eq!(state.check(Lookup::Id(&KeyId::random()), true), Answer::Absent);
    }
}
