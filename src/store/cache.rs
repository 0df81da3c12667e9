//! [`CachedStore`]: a bounded cache (moka) in front of any [`KeyStore`] (feature `cache`).
//!
//! * **Bounded.** At most [`CacheConfig::max_entries`] entries (default 100 000).
//! * **Positive and negative entries.** A found record is kept for [`CacheConfig::positive_ttl`] (default 30 s);
//!   an unknown id or digest for the much shorter [`CacheConfig::negative_ttl`] (default 1 s), so a flood of
//!   bad keys does not reach the store, yet a key issued on another instance works within that time at worst.
//! * **No stampede.** Concurrent misses on one key share one store lookup.
//! * **Hits answer at once** through [`KeyStore::lookup_now`]: no future, no allocation. An entry is the shared
//!   record itself (`Arc<KeyRecord>`): everything verification reads is one pointer away.
//! * **Hits cost about a memory-store lookup.** moka decides what stays (size, admission, lifetimes), and a
//!   read-mostly front (a sharded map of the same entries, each with its deadline) answers hits, since a moka
//!   `get` costs four to six times a whole memory-store lookup. One hit in 16, drawn at random, is also read
//!   through moka, so its admission still ranks keys by how often they are used. A hit measures about 37 ns over
//!   `MemoryStore::lookup_now` (`cargo bench --bench stores`, BENCHMARKS.md).
//! * **Changes evict.** Insert, update, revoke and rotate through the cache drop the affected entries at once
//!   (a revocation also drops every key rotated from the revoked one), and a lookup that was in flight while an
//!   entry was dropped does not put its now stale answer back. With an [`InvalidationBus`] the change is
//!   published, and every other instance drops the same entries ([`Invalidator`]).
//! * **Only lookups are cached.** `get`, `list`, `record_usage` and `hourly_usage` go to the store every time.
//!
//! **While the backing store is down**, entries already cached keep answering until their TTL ends: a known key
//! keeps working for at most `positive_ttl`, a revoked or disabled key stays rejected (its record says so), and an
//! unknown key is rejected while its negative entry lasts. Nothing that is not cached is let through: a miss while
//! the store fails answers 503 (fail closed), and failures are never cached.
//!
//! **Staleness bound.** Without a bus, a change made elsewhere (another instance, a SQL console) is seen once the
//! entry's TTL ends: `positive_ttl` for a revocation, `negative_ttl` for a new key. With a bus, it is seen when
//! the message arrives (milliseconds on loopback); while the bus is disconnected, the TTLs are the bound again,
//! and on reconnection the whole cache is dropped, since messages may have been lost meanwhile. On the instance
//! that makes a change, and on one that receives it, the eviction holds once it has returned: a lookup that read
//! the store before the change may still answer the old record to its own caller, but it never leaves that record
//! in the cache, not even for a moment.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use tower_api_key::{ApiKeyLayer, CacheConfig, CachedStore, KeyManager, MemoryStore, NewKey};
//!
//! let remote = MemoryStore::new(); // stands for a PostgresStore or a RedisStore
//! let cached = CachedStore::new(remote, CacheConfig::new().positive_ttl(Duration::from_secs(10)));
//! let keys = KeyManager::new(cached.clone()); // changes through the cache evict at once
//! let issued = keys.issue(NewKey::user("alice")).await?;
//! let layer = ApiKeyLayer::new(cached);
//! # Ok::<(), tower_api_key::StoreError>(()) }).unwrap();
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::bus::Subscription;
use super::change::{HourlyUsage, KeyUpdate, Usage};
use super::contract::{KeyStore, Lookup, LookupResult, StoreError};
use super::filter::{Answer, FilterState, HashKeys};
use super::invalidate::{Invalidation, InvalidationBus};
use super::list::{ListQuery, Page};
use crate::key::{KeyId, KeyRecord};

mod table;

pub(crate) use table::CacheKey;
use table::{Entry, Table};

/// The longest entry lifetime: one year. Longer ones (up to `Duration::MAX`) would overflow the entry deadlines.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest filter refresh period: each rebuild lists the whole store.
const MIN_FILTER_REFRESH: Duration = Duration::from_secs(1);

/// The settings of a [`CachedStore`]. Builders by value.
///
/// ```
/// use std::time::Duration;
/// let config = tower_api_key::CacheConfig::new()
///     .max_entries(1_000_000)
///     .positive_ttl(Duration::from_secs(60))
///     .negative_ttl(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct CacheConfig {
    max_entries: u64,
    positive_ttl: Duration,
    negative_ttl: Duration,
    id_filter: bool,
    filter_capacity: usize,
    filter_refresh: Duration,
    filter_without_bus: bool,
    name: Option<&'static str>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheConfig {
    /// 100 000 entries, found records for 30 s, unknown keys for 1 s; the id filter on, sized for 1 million ids
    /// at first, rebuilt every 5 minutes, trusted only with a connected subscription.
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new();
    /// ```
    pub fn new() -> Self {
        Self {
            max_entries: 100_000,
            positive_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(1),
            id_filter: true,
            filter_capacity: 1_000_000,
            filter_refresh: Duration::from_secs(300),
            filter_without_bus: false,
            name: None,
        }
    }

    /// Whether to keep an id filter (on by default): a Bloom filter of the ids (and opaque keys' digests) in the
    /// store, which answers "no such key" for almost every unknown id without a store call. See the
    /// [`CachedStore`] docs for when it is trusted. `false` turns it off: every miss asks the store.
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().id_filter(false);
    /// ```
    pub fn id_filter(mut self, on: bool) -> Self {
        self.id_filter = on;
        self
    }

    /// How many ids the filter is sized for at least (default 1 million: 1.2 MB). It grows by itself (a rebuild
    /// at twice the count) when the store holds more; 10 million ids take 12 MB. At most
    /// [`crate::IdFilter::MAX_CAPACITY`] (268 million ids, 330 MB): larger capacities are taken as that.
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().filter_capacity(10_000_000);
    /// ```
    pub fn filter_capacity(mut self, ids: usize) -> Self {
        self.filter_capacity = ids;
        self
    }

    /// How often the filter is rebuilt from the store (default 5 minutes), besides on every reconnection of the
    /// subscription: the bound for a key stored without a message on the bus (written to the store directly, or
    /// whose message was lost). At least 1 second (shorter periods are taken as 1 s: each rebuild lists the whole
    /// store).
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().filter_refresh(std::time::Duration::from_secs(60));
    /// ```
    pub fn filter_refresh(mut self, every: Duration) -> Self {
        self.filter_refresh = every.max(MIN_FILTER_REFRESH);
        self
    }

    /// Trust the filter without a subscription (default `false`). Only for a store that nothing but this cache
    /// writes to (one instance): a key stored elsewhere would be refused until the next rebuild
    /// ([`CacheConfig::filter_refresh`]).
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().filter_without_bus(true);
    /// ```
    pub fn filter_without_bus(mut self, trust: bool) -> Self {
        self.filter_without_bus = trust;
        self
    }

    /// The store's name in the metrics (`store` label, feature `metrics`). Default: the store type's name
    /// (`PostgresStore`).
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().name("postgres");
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// The most entries kept (found and unknown keys together); the least recently useful go first.
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().max_entries(10_000);
    /// ```
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// How long a found record is kept: the bound on how stale a revocation can be seen without a bus. At most
    /// one year (longer lifetimes, up to `Duration::MAX`, are taken as one year).
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().positive_ttl(std::time::Duration::from_secs(5));
    /// ```
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl.min(MAX_TTL);
        self
    }

    /// How long an unknown id or digest is remembered: the bound on how long a key issued elsewhere can be
    /// refused without a bus. At most one year (longer lifetimes are taken as one year).
    ///
    /// ```
    /// let config = tower_api_key::CacheConfig::new().negative_ttl(std::time::Duration::from_millis(200));
    /// ```
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl.min(MAX_TTL);
        self
    }
}

pub(crate) struct Shared {
    /// The id filter, if on.
    filter: Option<Arc<FilterState>>,
    /// Keyed by ids that clients choose (unknown ones get negative entries): moka for the policy, a read-mostly
    /// front for hits ([`Table`]), both with foldhash seeded from the OS ([`HashKeys`], about 1 ns for a key where
    /// std's SipHash `RandomState` takes about 20).
    entries: Table,
    /// One store lookup per key at a time: later misses wait for the first one's answer.
    in_flight: moka::sync::Cache<CacheKey, Arc<OnceCell<Entry>>, HashKeys>,
    /// Bumped by every eviction: a lookup that saw it change while it waited does not cache its answer.
    epoch: AtomicU64,
}

impl Shared {
    /// Caches `entry`, a store's answer read after `epoch` was seen, unless an eviction has run since. The check
    /// and the insert are one step against evictions ([`Table::insert_if`]): an eviction that has returned never
    /// leaves an older answer behind it, not even for a moment.
    fn fill(&self, key: CacheKey, entry: Entry, epoch: u64) {
        let _ = self.entries.insert_if(key, entry, || self.epoch.load(Ordering::SeqCst) == epoch);
    }

    pub(crate) fn evict(&self, target: &Target) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match target {
            Target::Key(inv) => {
                // Into the filter first: once the negative entry is gone, the filter must let the key through.
                if let Some(filter) = &self.filter {
                    filter.add(inv);
                }
                self.entries.invalidate(&CacheKey::Id(inv.id));
                self.in_flight.invalidate(&CacheKey::Id(inv.id));
                if let Some(d) = inv.digest {
                    self.entries.invalidate(&CacheKey::Digest(d));
                    self.in_flight.invalidate(&CacheKey::Digest(d));
                }
            }
            Target::All => {
                if let Some(filter) = &self.filter {
                    filter.resync();
                }
                self.entries.invalidate_all();
                self.in_flight.invalidate_all();
            }
        }
    }
}

/// A [`KeyStore`] that caches another one. Clones share the cache. See the [module docs](crate::store) and the
/// type's own docs below.
///
/// See the crate's `store` module docs for the policies: bounded size, positive and negative TTLs, one lookup in
/// flight per key, eviction on change, behaviour while the backing store is down, and the staleness bound.
///
/// ```
/// use tower_api_key::{CachedStore, CacheConfig, KeyStore, Lookup, MemoryStore, NewKey};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let remote = MemoryStore::new();
/// let issued = remote.add(NewKey::user("alice")).unwrap();
/// let cached = CachedStore::new(remote, CacheConfig::new());
/// let id = issued.record.id;
/// assert!(cached.lookup_now(Lookup::Id(&id)).is_none()); // a miss: the layer waits for `lookup`
/// assert!(cached.lookup(Lookup::Id(&id)).await.unwrap().is_some());
/// assert!(cached.lookup_now(Lookup::Id(&id)).is_some()); // now a hit, answered at once
/// # });
/// ```
///
/// # The id filter
///
/// With [`CacheConfig::id_filter`] (on by default), the cache keeps an [`crate::IdFilter`] of the ids (and opaque
/// keys' digests) in the store, and a miss whose id the filter has certainly never seen answers `Ok(None)` at once
/// (through [`KeyStore::lookup_now`]): no store call, and no negative entry (a flood of random ids does not push
/// real entries out). Unknown ids never repeat, so the negative cache alone cannot stop such a flood; the filter
/// does, for all but about 1 % of them.
///
/// * **Built** from the store in pages ([`KeyStore::list`], 1000 records a page) by a background task started with
///   the cache (or at its first lookup when created outside a Tokio runtime). Requests are never blocked by it.
/// * **Kept current** by the invalidation channel: every [`Invalidation`] that arrives, and every change made
///   through this cache (the cache publishes inserts too), adds its id. Ids that arrive during a rebuild go into
///   both the old and the new filter, so none is lost at the swap. Rebuilt every
///   [`CacheConfig::filter_refresh`] (5 minutes by default).
/// * **Trusted only** when a subscription is attached ([`CachedStore::with_subscription`]) and connected, and a
///   full build has completed since it last (re)connected ([`Invalidator::evict_all`] asks for that rebuild).
///   Otherwise every miss goes to the store, behind the negative cache, as without a filter. A real key is never
///   turned away by a stale filter while the channel is up; a key written to the store without a message (a SQL
///   console, a store used without this cache) is refused until the next rebuild.
/// * **Without a bus**, the filter is not trusted (it cannot see keys made elsewhere), unless
///   [`CacheConfig::filter_without_bus`] says that nothing but this cache writes to the store.
/// * **Opaque keys** are filtered by digest in the same filter (the record's digest is what the lookup asks for).
/// * **Cost**: about 1.2 bytes per id (12.3 MB at 10 million ids), sized for a 0.9 % false-positive rate (under
///   the 1 % promised); a check costs one seeded hash of the id ([`foldhash`], seeded from the OS per filter) and
///   one to seven memory probes (see `benches/filter.rs`, `benches/stores.rs` and BENCHMARKS.md).
///
/// # Metrics (feature `metrics`)
///
/// * `tower_api_key_store_lookups_total{store, result}`: lookups that reached the store behind the cache, by
///   result (`found`, `absent`, `error`); `store` is [`CacheConfig::name`].
/// * `tower_api_key_filter_total{answer}`: the filter's answers on cache misses: `absent` (answered without the
///   store), `maybe` (sent to the store), `untrusted` (sent to the store: not built yet, or channel down).
pub struct CachedStore<S> {
    inner: Arc<S>,
    shared: Arc<Shared>,
    bus: Option<Arc<dyn InvalidationBus>>,
    config: CacheConfig,
    name: &'static str,
    link: Arc<Link>,
}

impl<S> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            bus: self.bus.clone(),
            config: self.config,
            name: self.name,
            link: self.link.clone(),
        }
    }
}

/// What the clones of one cache share but its invalidators must not hold (no cycle through the subscription's
/// task): the attached subscription and the filter builder task, both stopped when the last clone goes.
#[derive(Debug, Default)]
struct Link {
    subscription: OnceLock<Subscription>,
    builder_started: AtomicBool,
    builder: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(task) = self.builder.get() {
            task.abort();
        }
    }
}

/// The last path segment of a type's name, generics aside: `alloc::sync::Arc<a::b::MemoryStore>` gives
/// `MemoryStore`.
fn short_type_name(full: &'static str) -> &'static str {
    let trimmed = full.trim_end_matches('>');
    let tail = trimmed.rsplit(['<', ' ']).next().unwrap_or(trimmed);
    tail.rsplit("::").next().unwrap_or(tail)
}

#[cfg(feature = "metrics")]
fn count_store_lookup(store: &'static str, result: &LookupResult) {
    let result = match result {
        Ok(Some(_)) => "found",
        Ok(None) => "absent",
        Err(_) => "error",
    };
    metrics::counter!("tower_api_key_store_lookups_total", "store" => store, "result" => result).increment(1);
}

#[cfg(feature = "metrics")]
fn count_filter(answer: Answer) {
    metrics::counter!("tower_api_key_filter_total", "answer" => answer.as_str()).increment(1);
}

#[cfg(not(feature = "metrics"))]
fn count_store_lookup(_: &'static str, _: &LookupResult) {}

#[cfg(not(feature = "metrics"))]
fn count_filter(_: Answer) {}

impl<S: fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("entries", &self.shared.entries.entry_count())
            .field("bus", &self.bus)
            .field("filter", &self.shared.filter)
            .field("subscription", &self.link.subscription.get())
            .finish()
    }
}

impl<S: KeyStore> CachedStore<S> {
    /// A cache in front of `inner`.
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// ```
    pub fn new(inner: S, config: CacheConfig) -> Self {
        let entries = Table::new(config.max_entries, config.positive_ttl, config.negative_ttl);
        let in_flight = moka::sync::Cache::builder()
            .max_capacity(config.max_entries.max(1))
            .time_to_live(Duration::from_secs(600))
            .build_with_hasher(HashKeys::random());
        let filter = config.id_filter.then(|| Arc::new(FilterState::new()));
        let cache = Self {
            inner: Arc::new(inner),
            shared: Arc::new(Shared { filter, entries, in_flight, epoch: AtomicU64::new(0) }),
            bus: None,
            config,
            name: config.name.unwrap_or_else(|| short_type_name(std::any::type_name::<S>())),
            link: Arc::new(Link::default()),
        };
        cache.start_filter_builder();
        cache
    }

    /// Starts the filter's builder task once, if there is a filter and a Tokio runtime to run it on.
    #[inline]
    fn start_filter_builder(&self) {
        if self.link.builder_started.load(Ordering::Relaxed) {
            return;
        }
        let Some(filter) = &self.shared.filter else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.link.builder_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let task = runtime.spawn(super::filter::run(
            filter.clone(),
            self.inner.clone(),
            self.config.filter_capacity,
            self.config.filter_refresh,
        ));
        let _ = self.link.builder.set(task.abort_handle());
    }

    /// Whether changes made elsewhere reach this cache now: an attached subscription that is connected, or the
    /// promise that nothing else writes ([`CacheConfig::filter_without_bus`]).
    #[inline]
    fn channel_up(&self) -> bool {
        match self.link.subscription.get() {
            Some(subscription) => subscription.is_connected(),
            None => self.config.filter_without_bus,
        }
    }

    /// The filter's answer for a miss, `None` without a filter.
    #[inline]
    fn filter_answer(&self, by: Lookup<'_>) -> Option<Answer> {
        let filter = self.shared.filter.as_ref()?;
        self.start_filter_builder();
        Some(filter.check(by, self.channel_up()))
    }

    /// Keeps `subscription` (this cache's own, from a bus's `subscribe` with [`CachedStore::invalidator`]) alive
    /// for as long as the cache, and trusts the id filter only while it is connected. Every clone shares it;
    /// attach one subscription only (a second one is dropped at once).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::StoreError> {
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore, RedisBus};
    /// let url = "redis://127.0.0.1:6379";
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// let subscription = RedisBus::subscribe(url, "tower_api_key", cached.invalidator())?;
    /// let cached = cached.with_bus(RedisBus::connect(url, "tower_api_key").await?).with_subscription(subscription);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_subscription(self, subscription: Subscription) -> Self {
        let _ = self.link.subscription.set(subscription);
        self
    }

    /// Whether the id filter answers now: on, built since the last resync, and the channel up. `false` means
    /// every miss goes to the store.
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// assert!(!cached.filter_trusted()); // no subscription attached, and not built yet
    /// ```
    #[must_use]
    pub fn filter_trusted(&self) -> bool {
        self.shared.filter.as_ref().is_some_and(|f| f.is_trusted()) && self.channel_up()
    }

    /// The memory of the id filter in use, in bytes (0 without a filter).
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new().id_filter(false));
    /// assert_eq!(cached.filter_memory_bytes(), 0);
    /// ```
    #[must_use]
    pub fn filter_memory_bytes(&self) -> usize {
        self.shared.filter.as_ref().map_or(0, |f| f.memory_bytes())
    }

    /// Publishes every change made through this cache on `bus`, so that other instances drop their entries.
    /// Subscribe this instance to the same bus with [`CachedStore::invalidator`].
    ///
    /// ```
    /// use tower_api_key::{async_trait, CacheConfig, CachedStore, Invalidation, InvalidationBus, MemoryStore, StoreError};
    /// #[derive(Debug)]
    /// struct Nowhere;
    /// #[async_trait]
    /// impl InvalidationBus for Nowhere {
    ///     async fn publish(&self, _: &[Invalidation]) -> Result<(), StoreError> { Ok(()) }
    /// }
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new()).with_bus(Nowhere);
    /// ```
    #[must_use]
    pub fn with_bus(mut self, bus: impl InvalidationBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self
    }

    /// The handle a bus subscriber uses to drop this cache's entries when another instance changes a key.
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, Invalidation, KeyId, MemoryStore};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// let invalidator = cached.invalidator();
    /// invalidator.evict(&Invalidation { id: KeyId::random(), digest: None });
    /// invalidator.evict_all(); // after a reconnection: messages may have been lost
    /// ```
    #[must_use]
    pub fn invalidator(&self) -> Invalidator {
        Invalidator::new(self.shared.clone())
    }

    /// The store behind the cache.
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
    /// let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    /// assert!(cached.get_ref().is_empty());
    /// ```
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// How many entries the cache holds now (found and unknown keys; approximate while it is busy).
    ///
    /// ```
    /// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
    /// assert_eq!(CachedStore::new(MemoryStore::new(), CacheConfig::new()).entry_count(), 0);
    /// ```
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.shared.entries.entry_count()
    }

    /// Drops the entries of `changed` here and tells the other instances.
    async fn changed(&self, changed: Vec<Invalidation>) {
        for inv in &changed {
            self.shared.evict(&Target::Key(*inv));
        }
        if let Some(bus) = &self.bus
            && let Err(error) = bus.publish(&changed).await
        {
            // The change is made; other instances see it when their entries' TTL ends.
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "could not publish a key change to other instances"
            );
        }
    }

    /// The record's own entries and those of every key rotated from it (a revocation takes them all).
    async fn chain(&self, first: &KeyRecord) -> Vec<Invalidation> {
        let mut out = vec![Invalidation::of(first)];
        let mut next = first.rotated_to;
        while let Some(id) = next
            && out.len() < 64
        {
            match self.inner.get(&id).await {
                Ok(Some(r)) => {
                    next = r.rotated_to;
                    out.push(Invalidation::of(&r));
                }
                _ => {
                    out.push(Invalidation { id, digest: None });
                    next = None;
                }
            }
        }
        out
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for CachedStore<S> {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        let key = CacheKey::from(by);
        if let Some(hit) = self.shared.entries.hit(&key) {
            return Ok(hit);
        }
        if let Some(answer) = self.filter_answer(by) {
            count_filter(answer);
            if answer == Answer::Absent {
                return Ok(None);
            }
        }
        self.shared.entries.record_miss(&key);
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        let cell = self.shared.in_flight.get_with(key, || Arc::new(OnceCell::new()));
        let answer = cell
            .get_or_try_init(|| async {
                let answer = self.inner.lookup(by).await;
                count_store_lookup(self.name, &answer);
                answer
            })
            .await
            .cloned();
        self.shared.in_flight.invalidate(&key);
        if let Ok(entry) = &answer {
            self.shared.fill(key, entry.clone(), epoch);
        }
        answer
    }

    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        if let Some(hit) = self.shared.entries.hit(&CacheKey::from(by)) {
            return Some(Ok(hit));
        }
        // Certainly absent: answered here, without a future. Other answers are counted by `lookup`, which the
        // layer calls next.
        if self.filter_answer(by) == Some(Answer::Absent) {
            count_filter(Answer::Absent);
            return Some(Ok(None));
        }
        None
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }

    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await?;
        // A negative entry for the new id or digest must not outlive the key's creation.
        self.changed(vec![Invalidation::of(record)]).await;
        Ok(())
    }

    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        self.inner.list(query, now).await
    }

    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let record = self.inner.update(id, update).await?;
        self.changed(vec![Invalidation::of(&record)]).await;
        Ok(record)
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let record = self.inner.revoke(id, at).await?;
        let chain = self.chain(&record).await;
        self.changed(chain).await;
        Ok(record)
    }

    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let old = self.inner.rotate(id, successor, grace_end).await?;
        self.changed(vec![Invalidation::of(&old), Invalidation::of(successor)]).await;
        Ok(old)
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        self.inner.record_usage(usage).await
    }

    /// Not cached: read from the store every time.
    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        self.inner.hourly_usage(id, since).await
    }
}

/// What a cache must drop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Key(Invalidation),
    All,
}

/// A handle on one [`crate::CachedStore`]'s entries, for the subscriber of a bus. Clones share the cache.
///
/// ```
/// use tower_api_key::{CacheConfig, CachedStore, MemoryStore};
/// let invalidator = CachedStore::new(MemoryStore::new(), CacheConfig::new()).invalidator();
/// invalidator.evict_all();
/// ```
#[derive(Clone)]
pub struct Invalidator {
    shared: Arc<Shared>,
}

impl fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invalidator").finish_non_exhaustive()
    }
}

impl Invalidator {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Drops the entries of one key.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let invalidator = CachedStore::new(MemoryStore::new(), CacheConfig::new()).invalidator();
    /// invalidator.evict(&Invalidation { id: KeyId::random(), digest: None });
    /// ```
    pub fn evict(&self, changed: &Invalidation) {
        self.shared.evict(&Target::Key(*changed));
    }

    /// Drops every entry: what a subscriber does when it (re)connects, since messages may have been lost.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// CachedStore::new(MemoryStore::new(), CacheConfig::new()).invalidator().evict_all();
    /// ```
    pub fn evict_all(&self) {
        self.shared.evict(&Target::All);
    }

    /// Applies one bus message's text; messages that are not ours are ignored.
    #[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))] // used by the buses only
    pub(crate) fn deliver(&self, text: &str) {
        if let Some(inv) = Invalidation::decode(text) {
            self.evict(&inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyFormat, KeyKind, NewKey};
    use crate::store::MemoryStore;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Counts the lookups that reach it, and can be told to fail or to wait.
    #[derive(Debug, Default)]
    struct Counting {
        inner: MemoryStore,
        lookups: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
        delay: std::sync::Mutex<Duration>,
    }

    #[async_trait]
    impl KeyStore for Counting {
        async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            // Read first, answer later: what a slow network does to a lookup.
            let answer = self.inner.lookup(by).await;
            let delay = *self.delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::backend(std::io::Error::other("down")));
            }
            answer
        }
        async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
            self.inner.get(id).await
        }
        async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
            self.inner.insert(record).await
        }
        async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
            self.inner.list(query, now).await
        }
        async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
            self.inner.update(id, update).await
        }
        async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
            self.inner.revoke(id, at).await
        }
        async fn rotate(&self, id: &KeyId, s: &KeyRecord, g: SystemTime) -> Result<KeyRecord, StoreError> {
            self.inner.rotate(id, s, g).await
        }
        async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
            self.inner.record_usage(usage).await
        }
        async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
            self.inner.hourly_usage(id, since).await
        }
    }

    fn cached(config: CacheConfig) -> CachedStore<Counting> {
        CachedStore::new(Counting::default(), config)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_the_store_contract() {
        crate::conformance::run(|| async { cached(CacheConfig::new()) }).await;
    }

    #[tokio::test]
    async fn hits_answer_at_once_and_misses_reach_the_store_once() {
        let c = cached(CacheConfig::new());
        let issued = c.get_ref().inner.add(NewKey::user("a")).unwrap();
        let by = Lookup::Id(&issued.record.id);
        assert!(c.lookup_now(by).is_none());
        for _ in 0..10 {
            assert!(c.lookup(by).await.unwrap().is_some());
        }
        assert!(c.lookup_now(by).unwrap().unwrap().is_some());
        assert_eq!(c.get_ref().lookups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_share_one_lookup() {
        let c = cached(CacheConfig::new());
        *c.get_ref().delay.lock().unwrap() = Duration::from_millis(100);
        let id = KeyId::random();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let c = c.clone();
            tasks.spawn(async move { c.lookup(Lookup::Id(&id)).await.unwrap().is_none() });
        }
        assert!(tasks.join_all().await.into_iter().all(|absent| absent));
        assert_eq!(c.get_ref().lookups.load(Ordering::SeqCst), 1, "no stampede");
    }

    #[tokio::test]
    async fn unknown_keys_are_remembered_for_the_negative_ttl_only() {
        let c = cached(CacheConfig::new().negative_ttl(Duration::from_millis(100)));
        let spec = KeyFormat::new().issue(NewKey::user("late"), SystemTime::now());
        let by = Lookup::Id(&spec.record.id);
        assert!(c.lookup(by).await.unwrap().is_none());
        // Stored behind the cache's back (another instance): refused while the negative entry lasts...
        c.get_ref().inner.put(spec.record.clone()).unwrap();
        assert!(c.lookup(by).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(150)).await;
        // ...then found.
        assert!(c.lookup(by).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn changes_through_the_cache_evict_at_once() {
        let c = cached(CacheConfig::new());
        let keys = crate::KeyManager::new(c.clone());
        let old = keys.issue(NewKey::user("a")).await.unwrap();
        let by = Lookup::Id(&old.record.id);
        assert!(c.lookup(by).await.unwrap().unwrap().revoked_at.is_none());
        let new = keys.rotate(&old.record.id, Duration::from_secs(60)).await.unwrap();
        assert!(c.lookup(by).await.unwrap().unwrap().rotated_to.is_some(), "rotation evicted the old entry");
        let by_new = Lookup::Id(&new.record.id);
        assert!(c.lookup(by_new).await.unwrap().is_some());
        keys.revoke(&old.record.id).await.unwrap();
        assert!(c.lookup_now(by).is_none() && c.lookup_now(by_new).is_none(), "the chain was evicted");
        assert!(c.lookup(by_new).await.unwrap().unwrap().revoked_at.is_some());
        // Opaque keys: by digest.
        let opaque = keys.import_key(NewKey::user("b"), &crate::ApiKey::new("legacy".into())).await.unwrap();
        let by_digest = Lookup::Digest(&opaque.digest);
        assert!(c.lookup(by_digest).await.unwrap().unwrap().enabled);
        keys.update(&opaque.id, &KeyUpdate { enabled: Some(false), ..KeyUpdate::default() }).await.unwrap();
        assert!(!c.lookup(by_digest).await.unwrap().unwrap().enabled);
        let _ = KeyKind::User;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_revocation_is_never_undone_by_lookups_running_around_it() {
        let c = cached(CacheConfig::new());
        // Every store lookup takes a moment, so some are always in flight while a key is revoked.
        *c.get_ref().delay.lock().unwrap() = Duration::from_millis(1);
        for round in 0..20 {
            let issued = c.get_ref().inner.add(NewKey::user(format!("u{round}"))).unwrap();
            let id = issued.record.id;
            let stop = Arc::new(AtomicBool::new(false));
            let mut lookers = tokio::task::JoinSet::new();
            for _ in 0..3 {
                let (c, stop) = (c.clone(), stop.clone());
                lookers.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = c.lookup(Lookup::Id(&id)).await;
                        tokio::task::yield_now().await;
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            c.revoke(&id, SystemTime::now()).await.unwrap();
            // Lookups that started before the revocation may still answer the old record, but none may cache it.
            for _ in 0..200 {
                let record = c.lookup(Lookup::Id(&id)).await.unwrap().unwrap();
                assert!(record.revoked_at.is_some(), "round {round}: the revocation was undone by a stale entry");
                if let Some(Ok(Some(now))) = c.lookup_now(Lookup::Id(&id)) {
                    assert!(now.revoked_at.is_some(), "round {round}: a stale hit");
                }
            }
            stop.store(true, Ordering::Relaxed);
            lookers.join_all().await;
        }
    }

    /// The fill protocol alone, under threads: fillers read the epoch, then the store's version of a record, and
    /// fill; the evictor changes the version, evicts, and then must never find an older version in the front.
    /// With the epoch checked before the insert instead of under the front's lock, an answer read before an
    /// eviction was left in the front for a moment after it returned, and this failed within a few thousand
    /// rounds.
    #[test]
    fn an_eviction_that_has_returned_leaves_no_older_answer_behind() {
        let c = cached(CacheConfig::new());
        let id = KeyId::random();
        let key = CacheKey::Id(id);
        let version = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let fillers: Vec<_> = (0..3)
            .map(|_| {
                let (shared, version, stop) = (c.shared.clone(), version.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let epoch = shared.epoch.load(Ordering::SeqCst);
                        let mut record = KeyRecord::new(id, crate::KeyDigest::of(b"k"), KeyKind::User, "u");
                        record.usage_count = version.load(Ordering::SeqCst);
                        shared.fill(key, Some(Arc::new(record)), epoch);
                    }
                })
            })
            .collect();
        let mut stale = None;
        for round in 0..100_000 {
            let now = version.fetch_add(1, Ordering::SeqCst) + 1;
            c.shared.evict(&Target::Key(Invalidation { id, digest: None }));
            if let Some(Some(record)) = c.shared.entries.hit(&key)
                && record.usage_count < now
            {
                stale = Some((round, record.usage_count, now));
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for filler in fillers {
            filler.join().unwrap();
        }
        assert_eq!(stale, None, "(round, version found, version after the eviction)");
    }

    #[tokio::test]
    async fn while_the_store_is_down_cached_keys_answer_and_misses_fail_closed() {
        let c = cached(CacheConfig::new());
        let known = c.get_ref().inner.add(NewKey::user("a")).unwrap();
        let revoked = c.get_ref().inner.add(NewKey::user("b")).unwrap();
        c.get_ref().inner.revoke(&revoked.record.id, SystemTime::now()).await.unwrap();
        c.lookup(Lookup::Id(&known.record.id)).await.unwrap();
        c.lookup(Lookup::Id(&revoked.record.id)).await.unwrap();
        c.get_ref().failing.store(true, Ordering::SeqCst);
        assert!(c.lookup(Lookup::Id(&known.record.id)).await.unwrap().is_some());
        assert!(c.lookup(Lookup::Id(&revoked.record.id)).await.unwrap().unwrap().revoked_at.is_some());
        assert!(c.lookup(Lookup::Id(&KeyId::random())).await.is_err(), "a miss fails closed");
        let id = KeyId::random();
        assert!(c.lookup(Lookup::Id(&id)).await.is_err());
        assert!(c.lookup_now(Lookup::Id(&id)).is_none(), "failures are not cached");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_in_flight_during_an_eviction_does_not_cache_its_stale_answer() {
        let c = cached(CacheConfig::new());
        let issued = c.get_ref().inner.add(NewKey::user("a")).unwrap();
        *c.get_ref().delay.lock().unwrap() = Duration::from_millis(200);
        let id = issued.record.id;
        let slow = {
            let c = c.clone();
            tokio::spawn(async move { c.lookup(Lookup::Id(&id)).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Revoked meanwhile, through the cache: the in-flight answer (not revoked) must not be cached.
        crate::KeyManager::new(c.clone()).revoke(&id).await.unwrap();
        let _stale = slow.await.unwrap();
        *c.get_ref().delay.lock().unwrap() = Duration::ZERO;
        assert!(c.lookup(Lookup::Id(&id)).await.unwrap().unwrap().revoked_at.is_some());
    }

    /// A subscription that connects at once and drops its connection whenever `drop_now` is notified.
    fn fake_subscription(invalidator: Invalidator, drop_now: Arc<tokio::sync::Notify>) -> Subscription {
        Subscription::spawn(move |state| {
            let (invalidator, drop_now) = (invalidator.clone(), drop_now.clone());
            async move {
                invalidator.evict_all();
                state.up();
                drop_now.notified().await;
                state.down();
                Err("dropped by the test".to_owned())
            }
        })
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_id_filter_stops_unknown_ids_and_lets_every_real_key_through() {
        let c = cached(CacheConfig::new().filter_capacity(10_000));
        let store = &c.get_ref().inner;
        let known = store.add(NewKey::user("a")).unwrap();
        let opaque = store.import("legacy-key", NewKey::user("b")).unwrap();
        // No subscription: not trusted, every miss reaches the store.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!c.filter_trusted());
        assert!(c.lookup_now(Lookup::Id(&KeyId::random())).is_none());
        let drop_now = Arc::new(tokio::sync::Notify::new());
        let c = c.clone().with_subscription(fake_subscription(c.invalidator(), drop_now.clone()));
        until("the filter is trusted", || c.filter_trusted()).await;
        assert!(c.filter_memory_bytes() >= 10_000);

        // A flood of well-formed unknown ids: answered at once, the store sees about 1 %.
        let before = c.get_ref().lookups.load(Ordering::SeqCst);
        let mut at_once = 0;
        for _ in 0..2_000 {
            let id = KeyFormat::new().issue(NewKey::user("x"), SystemTime::now()).record.id;
            if c.lookup_now(Lookup::Id(&id)).is_some() {
                at_once += 1;
            }
            assert!(c.lookup(Lookup::Id(&id)).await.unwrap().is_none());
        }
        let reached = c.get_ref().lookups.load(Ordering::SeqCst) - before;
        assert!(reached <= 60 && at_once >= 1_940, "{reached} of 2000 reached the store, {at_once} answered at once");
        assert_eq!(c.entry_count(), 0, "filtered ids take no cache entry");
        // Real keys pass, by id and by digest.
        assert!(c.lookup(Lookup::Id(&known.record.id)).await.unwrap().is_some());
        assert!(c.lookup(Lookup::Digest(&opaque.digest)).await.unwrap().is_some());

        // Issued through this cache: in the filter at once.
        let keys = crate::KeyManager::new(c.clone());
        let mine = keys.issue(NewKey::user("c")).await.unwrap();
        assert!(c.lookup(Lookup::Id(&mine.record.id)).await.unwrap().is_some());
        // Issued on another instance: works as soon as its message arrives.
        let elsewhere = KeyFormat::new().issue(NewKey::user("d"), SystemTime::now()).record;
        store.put(elsewhere.clone()).unwrap();
        c.invalidator().evict(&Invalidation::of(&elsewhere));
        assert!(c.lookup(Lookup::Id(&elsewhere.id)).await.unwrap().is_some());

        // The channel drops: not trusted, misses reach the store again.
        drop_now.notify_one();
        until("the filter is distrusted", || !c.filter_trusted()).await;
        let lost = KeyFormat::new().issue(NewKey::user("e"), SystemTime::now()).record;
        store.put(lost.clone()).unwrap(); // its message is lost with the connection
        let before = c.get_ref().lookups.load(Ordering::SeqCst);
        if !c.filter_trusted() {
            assert!(c.lookup_now(Lookup::Id(&KeyId::random())).is_none(), "untrusted: no answer from the filter");
            assert!(c.lookup(Lookup::Id(&lost.id)).await.unwrap().is_some(), "found in the store while down");
            assert!(c.get_ref().lookups.load(Ordering::SeqCst) > before);
        }
        // Back, with a rebuild: the key whose message was lost is in the filter.
        until("the filter is trusted again", || c.filter_trusted()).await;
        c.invalidator().evict(&Invalidation { id: lost.id, digest: None }); // its cache entry only
        let filter = c.shared.filter.as_ref().unwrap();
        assert_eq!(filter.check(Lookup::Id(&lost.id), true), Answer::Maybe);
        assert!(c.lookup(Lookup::Id(&lost.id)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_filter_can_be_turned_off_and_trusted_without_a_bus() {
        let off = cached(CacheConfig::new().id_filter(false).filter_without_bus(true));
        assert!(!off.filter_trusted() && off.filter_memory_bytes() == 0);
        assert!(off.lookup_now(Lookup::Id(&KeyId::random())).is_none());
        let local = cached(CacheConfig::new().filter_without_bus(true).filter_capacity(100));
        until("the filter is built", || local.filter_trusted()).await;
        assert!(local.lookup_now(Lookup::Id(&KeyId::random())).is_some());
        let keys = crate::KeyManager::new(local.clone());
        let issued = keys.issue(NewKey::user("a")).await.unwrap();
        assert!(local.lookup(Lookup::Id(&issued.record.id)).await.unwrap().is_some());
    }

    /// Extreme settings are taken within bounds: no overflow in an entry's deadline, no rebuild loop without
    /// pause, and every answer still right. `Duration::MAX` lifetimes panicked on the first lookup before.
    #[tokio::test]
    async fn extreme_settings_never_panic_and_answer_right() {
        let config = CacheConfig::new()
            .positive_ttl(Duration::MAX)
            .negative_ttl(Duration::MAX)
            .filter_refresh(Duration::ZERO)
            .filter_without_bus(true);
        assert_eq!(config.positive_ttl, MAX_TTL);
        assert_eq!(config.negative_ttl, MAX_TTL);
        assert_eq!(config.filter_refresh, MIN_FILTER_REFRESH);
        let store = MemoryStore::new();
        let issued = store.add(NewKey::user("a")).unwrap();
        let cache = CachedStore::new(store, config);
        let id = issued.record.id;
        assert!(cache.lookup(Lookup::Id(&id)).await.unwrap().is_some());
        assert!(matches!(cache.lookup_now(Lookup::Id(&id)), Some(Ok(Some(_)))), "a hit");
        let unknown = KeyId::random();
        assert!(cache.lookup(Lookup::Id(&unknown)).await.unwrap().is_none());
        assert!(matches!(cache.lookup_now(Lookup::Id(&unknown)), Some(Ok(None))), "a negative hit");
        let short = CacheConfig::new().positive_ttl(Duration::ZERO).negative_ttl(Duration::ZERO).max_entries(0);
        let cache = CachedStore::new(MemoryStore::new(), short);
        let issued = crate::KeyManager::new(cache.clone()).issue(NewKey::user("b")).await.unwrap();
        assert!(cache.lookup(Lookup::Id(&issued.record.id)).await.unwrap().is_some());
    }

    #[test]
    fn store_names_are_short() {
        assert_eq!(short_type_name(std::any::type_name::<MemoryStore>()), "MemoryStore");
        assert_eq!(short_type_name(std::any::type_name::<Arc<MemoryStore>>()), "MemoryStore");
        assert_eq!(short_type_name(std::any::type_name::<Arc<dyn KeyStore>>()), "KeyStore");
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}
