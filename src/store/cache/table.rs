//! The cache's table: moka decides what stays, a read-mostly front answers hits.
//!
//! * **moka is the policy.** It bounds the size, admits and evicts by TinyLFU, and ends each entry at its own
//!   time (found records and unknown keys live for different times).
//! * **The front answers hits.** A moka `get` costs 170 to 270 ns on this project's machine (it pins an epoch,
//!   reads the clock, and records the read in a channel whose fill runs housekeeping on the caller's thread):
//!   four to six times a whole `MemoryStore` lookup. Every request with a valid key is a hit, so hits read a
//!   sharded map instead (dashmap: one read lock of one shard, one probe, one clock read for the deadline). The
//!   clock is quanta's (the CPU's time-stamp counter, about 12 ns here, where `std::time::Instant::now` takes
//!   about 31: a third of the memory store's whole lookup).
//! * **moka still sees the reads it ranks by**: one front hit in [`READ_SAMPLE`], drawn at random, is also
//!   read through moka, and so is every miss that goes to the store. Its frequency sketch counts hot keys at that
//!   rate, which keeps their order.
//!
//! Invariants:
//! * The front holds only what moka holds, or has just let go: each entry carries a stamp, and moka's eviction
//!   listener removes the front entry with the same stamp, whatever the cause (size, refused admission, expiry,
//!   replacement, invalidation). A newer entry for the same key has another stamp and stays.
//! * A front entry past its deadline is never returned, whether moka's housekeeping has run or not.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

use dashmap::DashMap;
use moka::Expiry;
use moka::notification::RemovalCause;

use crate::key::{KeyDigest, KeyId, KeyRecord};
use crate::store::contract::Lookup;
use crate::store::filter::{HashKeys, hash_input};

/// How a cache entry is found: by public id or by digest, as the layer asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheKey {
    Id(KeyId),
    Digest(KeyDigest),
}

impl Hash for CacheKey {
    /// One `write_u128` of the id's 12 bytes (or the digest's first 16): one multiply in foldhash's fast hash
    /// ([`HashKeys`]). Ids and digests hardly ever share a hash, and equality still tells them apart.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(hash_input(self.lookup()));
    }
}

impl CacheKey {
    /// The lookup this key stands for.
    #[inline]
    fn lookup(&self) -> Lookup<'_> {
        match self {
            Self::Id(id) => Lookup::Id(id),
            Self::Digest(d) => Lookup::Digest(d),
        }
    }
}

impl From<Lookup<'_>> for CacheKey {
    fn from(by: Lookup<'_>) -> Self {
        match by {
            Lookup::Id(id) => Self::Id(*id),
            Lookup::Digest(d) => Self::Digest(*d),
        }
    }
}

/// What the cache answers for a key: the record, or "no such key" (a negative entry).
pub(crate) type Entry = Option<Arc<KeyRecord>>;

/// One front hit in this many, on average, is also read through moka, so that its frequency sketch and access
/// order see hot keys. A power of two.
const READ_SAMPLE: u32 = 16;

/// Whether moka also sees this front hit: drawn at random (fastrand's thread-local generator, about 1 ns), so
/// that no pattern of requests (a client cycling through 16 keys, say) can hide a key from the sketch.
#[inline]
fn sampled() -> bool {
    fastrand::u32(..) & (READ_SAMPLE - 1) == 0
}

/// What moka keeps of an entry: which front entry it stands for, and whether it is a found record (for its
/// lifetime).
#[derive(Debug, Clone, Copy)]
struct Slot {
    stamp: u64,
    found: bool,
}

/// What the front keeps: the answer, until when it holds, and the stamp of its moka slot.
#[derive(Debug)]
struct Front {
    entry: Entry,
    until: quanta::Instant,
    stamp: u64,
}

/// Per-entry lifetimes: found records and unknown keys live for different times.
#[derive(Clone, Copy)]
struct Lifetimes {
    positive: Duration,
    negative: Duration,
}

impl Lifetimes {
    fn of(&self, found: bool) -> Duration {
        if found { self.positive } else { self.negative }
    }
}

impl Expiry<CacheKey, Slot> for Lifetimes {
    fn expire_after_create(&self, _: &CacheKey, slot: &Slot, _: std::time::Instant) -> Option<Duration> {
        Some(self.of(slot.found))
    }

    fn expire_after_update(
        &self,
        key: &CacheKey,
        slot: &Slot,
        at: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, slot, at)
    }
}

type FrontMap = DashMap<CacheKey, Front, HashKeys>;

/// Drops the front entry of `key` if it is the one with `stamp` (a newer one stays).
fn remove_stamped(front: &FrontMap, key: &CacheKey, stamp: u64) {
    front.remove_if(key, |_, f| f.stamp == stamp);
}

/// The cache's entries: a moka cache for the policy, a dashmap front for hits. See the module docs.
pub(crate) struct Table {
    front: Arc<FrontMap>,
    policy: moka::sync::Cache<CacheKey, Slot, HashKeys>,
    stamps: AtomicU64,
    lifetimes: Lifetimes,
}

impl Table {
    /// At most `max_entries` entries; found records for `positive`, unknown keys for `negative`.
    pub(crate) fn new(max_entries: u64, positive: Duration, negative: Duration) -> Self {
        let front: Arc<FrontMap> = Arc::new(DashMap::with_hasher(HashKeys::random()));
        let listener_front = Arc::downgrade(&front);
        let lifetimes = Lifetimes { positive, negative };
        let policy = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(lifetimes)
            .eviction_listener(move |key: Arc<CacheKey>, slot: Slot, _: RemovalCause| {
                if let Some(front) = listener_front.upgrade() {
                    remove_stamped(&front, &key, slot.stamp);
                }
            })
            .build_with_hasher(HashKeys::random());
        Self { front, policy, stamps: AtomicU64::new(0), lifetimes }
    }

    /// The front's answer for `key`, if it has one that still holds: the request path of every cached key.
    #[inline]
    pub(crate) fn hit(&self, key: &CacheKey) -> Option<Entry> {
        let entry = {
            let front = self.front.get(key)?;
            if quanta::Instant::now() >= front.until {
                return None;
            }
            front.entry.clone()
        };
        if sampled() {
            let _ = self.policy.get(key);
        }
        Some(entry)
    }

    /// A miss in the front that goes to the store: read through moka too, so that its sketch counts the key
    /// (admission ranks a new key by how often it was asked for).
    pub(crate) fn record_miss(&self, key: &CacheKey) {
        let _ = self.policy.get(key);
    }

    /// Keeps `entry` for `key` for its lifetime, replacing any older one; returns its stamp.
    #[cfg(test)]
    pub(crate) fn insert(&self, key: CacheKey, entry: Entry) -> u64 {
        self.insert_if(key, entry, || true).unwrap_or_default()
    }

    /// Keeps `entry` for `key` for its lifetime, replacing any older one, if `current()` holds when asked while the
    /// front's shard of `key` is locked; returns its stamp, or `None` if it did not. An [`Table::invalidate`] of
    /// `key` takes the same lock, so when the caller bumps a counter before invalidating and `current` reads that
    /// counter, an answer read before an invalidation can never be left in the front after it: either `current`
    /// saw the bump, or the invalidation comes after the insert and drops it.
    pub(crate) fn insert_if(&self, key: CacheKey, entry: Entry, current: impl FnOnce() -> bool) -> Option<u64> {
        let stamp = self.stamps.fetch_add(1, Ordering::Relaxed);
        let found = entry.is_some();
        let until = quanta::Instant::now() + self.lifetimes.of(found);
        // The front first: moka's listener, which may run as soon as moka has the slot (a refused admission),
        // must find the front entry to remove. The shard's lock is released before moka is called: its listener
        // takes it too.
        {
            let slot = self.front.entry(key);
            if !current() {
                return None;
            }
            slot.insert(Front { entry, until, stamp });
        }
        self.policy.insert(key, Slot { stamp, found });
        Some(stamp)
    }

    /// Drops the front entry `insert` returned `stamp` for, if it is still there (a newer one stays). moka's slot
    /// stays until its policy ends it; without a front entry it answers nothing.
    #[cfg(test)]
    pub(crate) fn remove_stamped(&self, key: &CacheKey, stamp: u64) {
        remove_stamped(&self.front, key, stamp);
    }

    /// Drops the entry of `key`.
    pub(crate) fn invalidate(&self, key: &CacheKey) {
        self.front.remove(key);
        self.policy.invalidate(key);
    }

    /// Drops every entry.
    pub(crate) fn invalidate_all(&self) {
        self.front.clear();
        self.policy.invalidate_all();
    }

    /// How many entries moka holds (approximate while it is busy).
    pub(crate) fn entry_count(&self) -> u64 {
        self.policy.entry_count()
    }

    /// How many entries the front holds.
    #[cfg(test)]
    pub(crate) fn front_len(&self) -> usize {
        self.front.len()
    }

    /// Runs moka's pending housekeeping now (evictions and their listener calls).
    #[cfg(test)]
    pub(crate) fn run_pending_tasks(&self) {
        self.policy.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Entry {
        Some(Arc::new(KeyRecord::new(KeyId::random(), KeyDigest::from_bytes([7; 32]), crate::KeyKind::User, "alice")))
    }

    #[test]
    fn the_front_never_outgrows_the_policy() {
        let table = Table::new(100, Duration::from_secs(60), Duration::from_secs(1));
        for round in 0..20 {
            for _ in 0..100 {
                let key = CacheKey::Id(KeyId::random());
                table.insert(key, record());
                // Some keys are asked for again, so admission has something to rank.
                if round % 2 == 0 {
                    table.record_miss(&key);
                }
            }
            table.run_pending_tasks();
            assert!(table.entry_count() <= 100, "moka holds {}", table.entry_count());
            assert!(
                table.front_len() as u64 <= table.entry_count(),
                "front {} > policy {}",
                table.front_len(),
                table.entry_count()
            );
        }
    }

    #[test]
    fn a_flood_of_new_keys_keeps_the_front_bounded_without_help() {
        // No explicit housekeeping: moka runs it from its own write path, and the listener trims the front.
        let table = Table::new(1000, Duration::from_secs(60), Duration::from_secs(60));
        let mut largest = 0;
        for i in 0..50_000 {
            table.insert(CacheKey::Id(KeyId::random()), None);
            if i % 1000 == 0 {
                largest = largest.max(table.front_len());
            }
        }
        largest = largest.max(table.front_len());
        assert!(largest <= 2000, "the front grew to {largest} entries for a cache of 1000");
    }

    #[test]
    fn threads_hitting_inserting_and_evicting_one_small_set_of_keys_agree_at_the_end() {
        // The listener takes front locks from inside moka's housekeeping, which runs on whichever thread inserts
        // or reads: no thread may hold a front lock while it calls moka.
        let table = Arc::new(Table::new(64, Duration::from_secs(60), Duration::from_secs(60)));
        let keys: Arc<Vec<CacheKey>> = Arc::new((0..128).map(|_| CacheKey::Id(KeyId::random())).collect());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (table, keys) = (table.clone(), keys.clone());
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        let key = &keys[(i * 7 + t * 13) % keys.len()];
                        match i % 5 {
                            0 => {
                                table.insert(*key, record());
                            }
                            1 => table.invalidate(key),
                            2 => table.record_miss(key),
                            _ => {
                                let _ = table.hit(key);
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        table.run_pending_tasks();
        assert!(table.entry_count() <= 64);
        assert!(table.front_len() as u64 <= table.entry_count(), "every front entry has its moka slot");
        table.invalidate_all();
        table.run_pending_tasks();
        assert_eq!(table.front_len(), 0);
    }

    #[test]
    fn an_entry_past_its_lifetime_is_not_a_hit_even_before_housekeeping() {
        let (positive, negative) = (Duration::from_millis(400), Duration::from_millis(20));
        let table = Table::new(100, positive, negative);
        let found = CacheKey::Id(KeyId::random());
        let unknown = CacheKey::Id(KeyId::random());
        let before = Instant::now();
        table.insert(found, record());
        table.insert(unknown, None);
        let after = Instant::now();
        // Alive within its lifetime: asserted only when this thread was not held up past it (a loaded machine).
        let alive_if_in_time = |key: &CacheKey, lifetime: Duration| {
            let answer = table.hit(key);
            if before.elapsed() < lifetime {
                assert!(answer.is_some(), "an entry within its lifetime is a hit");
            }
        };
        alive_if_in_time(&found, positive);
        alive_if_in_time(&unknown, negative);
        // Past its lifetime (a few ms of margin between quanta's clock and std's): never a hit.
        let margin = Duration::from_millis(5);
        std::thread::sleep((after + negative + margin).saturating_duration_since(Instant::now()));
        assert!(table.hit(&unknown).is_none(), "a negative entry ends at the negative lifetime");
        alive_if_in_time(&found, positive);
        std::thread::sleep((after + positive + margin).saturating_duration_since(Instant::now()));
        assert!(table.hit(&found).is_none(), "a found record ends at the positive lifetime");
        // moka's timer wheel ends entries on ticks of about a second; then its listener empties the front.
        let deadline = Instant::now() + Duration::from_secs(5);
        while table.front_len() > 0 {
            assert!(Instant::now() < deadline, "moka's expiry left {} front entries", table.front_len());
            std::thread::sleep(Duration::from_millis(50));
            table.run_pending_tasks();
        }
    }

    #[test]
    fn a_replaced_or_stamped_removal_keeps_the_newer_entry() {
        let table = Table::new(100, Duration::from_secs(60), Duration::from_secs(1));
        let key = CacheKey::Id(KeyId::random());
        let old = table.insert(key, None);
        let new = table.insert(key, record());
        table.run_pending_tasks(); // the listener sees the old slot replaced
        table.remove_stamped(&key, old);
        assert!(table.hit(&key).is_some_and(|e| e.is_some()), "the newer entry stays");
        table.remove_stamped(&key, new);
        assert!(table.hit(&key).is_none());
        table.insert(key, record());
        table.invalidate(&key);
        table.run_pending_tasks();
        assert!(table.hit(&key).is_none());
        table.insert(key, record());
        table.invalidate_all();
        assert!(table.hit(&key).is_none());
    }

    #[test]
    fn hot_keys_survive_a_stream_of_one_time_keys() {
        // Reads answered by the front still reach moka's sketch (one in READ_SAMPLE), so a key read often is
        // ranked above keys asked for once, and admission keeps it.
        let table = Table::new(50, Duration::from_secs(60), Duration::from_secs(60));
        let hot: Vec<CacheKey> = (0..10).map(|_| CacheKey::Id(KeyId::random())).collect();
        for key in &hot {
            table.record_miss(key);
            table.insert(*key, record());
        }
        for _ in 0..50 {
            for _ in 0..(READ_SAMPLE * 4) {
                for key in &hot {
                    assert!(table.hit(key).is_some());
                }
            }
            for _ in 0..20 {
                let cold = CacheKey::Id(KeyId::random());
                table.record_miss(&cold);
                table.insert(cold, record());
            }
            table.run_pending_tasks();
        }
        let kept = hot.iter().filter(|k| table.hit(k).is_some()).count();
        assert_eq!(kept, hot.len(), "every hot key is still cached");
    }
}
