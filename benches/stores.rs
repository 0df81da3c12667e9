//! The stores' own costs, each beside its baseline in the same run, interleaved: every round runs every case of a
//! section for one burst, in a fresh random order, so load from other processes hits every case alike; the
//! median (and 10th percentile) of the rounds is printed, with each case's difference from its baseline.
//!
//! Run with `cargo bench --bench stores --features cache` (add `postgres,redis` and set `DATABASE_URL` /
//! `REDIS_URL` for the miss section). Sections (`BENCH_STORES`, comma-separated, default all):
//!
//! * `lookup`: in process, one hot key of 1000: `MemoryStore::lookup_now` against `CachedStore<MemoryStore>`
//!   hit, and moka's `sync::Cache::get` alone (the floor: std `RandomState`, and an unkeyed multiply hash that
//!   shows what moka costs without its hash); a filtered unknown id for scale.
//! * `layer`: the whole valid path through `ApiKeyLayer` over the memory store and over the cached store, one hot
//!   key and traffic spread over every key of the store (1000 and 1 million keys, `BENCH_STORES_SIZES`), beside
//!   the same requests without the layer.
//! * `spread`: one lookup alone, hot against spread over every key (same sizes): the memory store, the cached
//!   store, and the floor (a std `HashMap` of the same records, one `get` and the `Arc` cloned), each reading
//!   the record fields verification reads.
//! * `filter`: `IdFilter::may_contain` for unknown ids with 1000 and 10 million ids (`BENCH_STORES_FILTER_IDS`),
//!   beside a no-op, and the floor at the large size (one read of a random word of an array as large as the
//!   filter); memory and false-positive rate at the large size.
//! * `miss` (features `postgres` / `redis`): a cache miss through `CachedStore` over `PostgresStore` and over
//!   `RedisStore` (the entry evicted before every lookup) against a direct lookup of the same key.
//!
//! Knobs: `BENCH_ROUNDS` (default 31), `BENCH_BURST` (iterations per burst, default 20 000; the miss section uses
//! `BENCH_MISS_BURST`, default 200). `BENCH_MODE=criterion` runs the in-process sections under criterion instead.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

mod common;

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{Case, Template, bearer, call_case, env_u64, inner, request_case, shuffle};
use http::{HeaderValue, StatusCode};
use tower::Layer;
use tower_api_key::{
    ApiKeyLayer, CacheConfig, CachedStore, IdFilter, KeyId, KeyRecord, KeyStore, Lookup, MemoryStore, NewKey,
};

const HOUR: Duration = Duration::from_secs(3600);

fn wanted(section: &str) -> bool {
    std::env::var("BENCH_STORES").map_or(true, |v| v.split(',').any(|s| s.trim() == section))
}

fn criterion_mode() -> bool {
    std::env::var("BENCH_MODE").is_ok_and(|m| m == "criterion")
}

/// Runs a section's cases interleaved (or under criterion) and prints each case against its baseline.
fn run(title: &str, cases: &mut [Case<'_>], burst: u64, baseline: impl Fn(&str) -> Option<String>) {
    println!();
    println!("== {title}");
    if criterion_mode() {
        let started = SystemTime::now();
        let mut c = common::criterion();
        common::run_criterion(&mut c, cases);
        common::print_overheads(cases, started, baseline);
        return;
    }
    let rounds = usize::try_from(env_u64("BENCH_ROUNDS", 31)).unwrap_or(31);
    let started = Instant::now();
    let results = common::interleaved(cases, rounds, burst);
    println!(
        "   {rounds} interleaved rounds of {burst} iterations per case ({:.1} s); ns per iteration",
        started.elapsed().as_secs_f64()
    );
    println!("   {:<44} {:>10} {:>10} {:>12}  baseline", "case", "median", "p10", "difference");
    for case in cases.iter() {
        let id = case.id();
        let (median, p10) = results[&id];
        match baseline(&id).filter(|b| *b != id).and_then(|b| Some((results.get(&b)?.0, b))) {
            Some((base, b)) => {
                println!("   {id:<44} {median:>10.1} {p10:>10.1} {:>+12.1}  {b}", median - base);
            }
            None => println!("   {id:<44} {median:>10.1} {p10:>10.1}"),
        }
    }
}

/// An unkeyed multiply hash (not flood-resistant): only to show what moka costs without its hasher.
#[derive(Clone, Default)]
struct Unkeyed;

struct UnkeyedHasher(u64);

impl BuildHasher for Unkeyed {
    type Hasher = UnkeyedHasher;
    fn build_hasher(&self) -> UnkeyedHasher {
        UnkeyedHasher(0)
    }
}

impl Hasher for UnkeyedHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// The same per-entry lifetimes as `CachedStore` (an `Expiry`, not a plain TTL), an hour long.
struct Lifetime;

impl moka::Expiry<KeyId, Option<Arc<KeyRecord>>> for Lifetime {
    fn expire_after_create(&self, _: &KeyId, _: &Option<Arc<KeyRecord>>, _: Instant) -> Option<Duration> {
        Some(HOUR)
    }
}

fn moka_with<S: BuildHasher + Clone + Send + Sync + 'static>(
    hasher: S,
    id: KeyId,
    record: &Arc<KeyRecord>,
) -> moka::sync::Cache<KeyId, Option<Arc<KeyRecord>>, S> {
    let cache = moka::sync::Cache::builder().max_capacity(100_000).expire_after(Lifetime).build_with_hasher(hasher);
    cache.insert(id, Some(record.clone()));
    cache
}

fn block_on<F: std::future::Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

fn wait_trusted<S: KeyStore>(cached: &CachedStore<S>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cached.filter_trusted() {
        assert!(Instant::now() < deadline, "the id filter was not built");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Target 1 in process: a cache hit against the memory store's lookup, and moka's `get` alone.
fn lookup_section(rt: &tokio::runtime::Runtime, burst: u64) {
    let store = MemoryStore::new();
    let issued = store.add(NewKey::user("hot")).unwrap();
    for n in 0..999 {
        store.add(NewKey::user(format!("u{n}"))).unwrap();
    }
    let id = issued.record.id;
    let record = block_on(rt, store.lookup(Lookup::Id(&id))).unwrap().unwrap();
    let cached = CachedStore::new(
        store.clone(),
        CacheConfig::new().positive_ttl(HOUR).filter_without_bus(true).filter_capacity(1000),
    );
    wait_trusted(&cached);
    block_on(rt, cached.lookup(Lookup::Id(&id))).unwrap().unwrap();
    assert!(matches!(cached.lookup_now(Lookup::Id(&id)), Some(Ok(Some(_)))), "a hit");
    let moka_std = moka_with(std::collections::hash_map::RandomState::new(), id, &record);
    let moka_unkeyed = moka_with(Unkeyed, id, &record);
    // Without per-entry expiry and with plain LRU instead of TinyLFU: what moka's options save.
    let moka_plain: moka::sync::Cache<KeyId, Option<Arc<KeyRecord>>, Unkeyed> = moka::sync::Cache::builder()
        .max_capacity(100_000)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build_with_hasher(Unkeyed);
    moka_plain.insert(id, Some(record.clone()));
    let unknown: Vec<KeyId> = (0..4096).map(|_| KeyId::random()).collect();
    let (store, cached, unknown) = (&store, &cached, &unknown);
    let mut i = 0usize;

    let mut cases = vec![
        call_case("lookup", "noop", || {
            black_box(Lookup::Id(black_box(&id)));
        }),
        call_case("lookup", "moka_get_std_randomstate", || moka_std.get(black_box(&id))),
        call_case("lookup", "moka_get_unkeyed_hash", || moka_unkeyed.get(black_box(&id))),
        call_case("lookup", "moka_get_unkeyed_no_expiry_lru", || moka_plain.get(black_box(&id))),
        call_case("lookup", "memory_lookup_now", || store.lookup_now(Lookup::Id(black_box(&id)))),
        call_case("lookup", "cached_lookup_now_hit", || cached.lookup_now(Lookup::Id(black_box(&id)))),
        call_case("lookup", "cached_lookup_now_filtered_unknown", move || {
            i = (i + 1) & 4095;
            cached.lookup_now(Lookup::Id(&unknown[i]))
        }),
    ];
    run("lookup: in process, hot key of 1000 (target 1: cached hit <= memory + 50 ns)", &mut cases, burst, |id| {
        if id == "lookup/cached_lookup_now_hit" {
            Some("lookup/memory_lookup_now".into())
        } else {
            Some("lookup/noop".into())
        }
    });
}

/// A store of `n` crate-format keys, the cache over it warmed with every key, and the keys' headers in random
/// order.
struct Scale {
    n: usize,
    store: MemoryStore,
    cached: CachedStore<MemoryStore>,
    keys: Vec<HeaderValue>,
    /// Every key's id, in another random order.
    ids: Vec<KeyId>,
}

impl Scale {
    fn new(rt: &tokio::runtime::Runtime, n: usize) -> Self {
        let started = Instant::now();
        let store = MemoryStore::new();
        let mut keys = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let issued = store.add(NewKey::user(format!("user{i}"))).unwrap();
            ids.push(issued.record.id);
            keys.push(bearer(issued.key.expose_secret()));
        }
        let config = CacheConfig::new().max_entries(2 * n as u64).positive_ttl(HOUR).id_filter(false);
        let cached = CachedStore::new(store.clone(), config);
        for id in &ids {
            block_on(rt, cached.lookup(Lookup::Id(id))).unwrap().unwrap();
        }
        shuffle(&mut keys, 0x5eed ^ n as u64);
        shuffle(&mut ids, 0x1d5 ^ n as u64);
        println!("   {n} keys stored and cached in {:.1} s", started.elapsed().as_secs_f64());
        Self { n, store, cached, keys, ids }
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_STORES_SIZES")
        .unwrap_or_else(|_| "1000,1000000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_STORES_SIZES: comma-separated numbers"))
        .collect()
}

/// What verification reads of a record (the fields `verify` and `status_with` read), so that every case pays
/// for the same record lines.
fn read_record(record: &KeyRecord) -> u64 {
    u64::from(record.digest.as_bytes()[0])
        ^ u64::from(record.enabled)
        ^ u64::from(record.revoked_at.is_some())
        ^ u64::from(record.expires_at.is_some())
        ^ u64::from(record.rotated_to.is_some())
        ^ u64::from(record.rate_limit.is_some())
        ^ record.kind as u64
}

/// Target 2 at the lookup alone: how much more a lookup costs spread over every key than on one hot key, for
/// the memory store, the cached store, and the floor: a std `HashMap<KeyId, Arc<KeyRecord>>` of the same
/// records, one `get`, the `Arc` cloned, the same record fields read. Whatever the layer adds beyond these
/// differences does not come from the store.
fn spread_section(rt: &tokio::runtime::Runtime, burst: u64) {
    let scales: Vec<Scale> = sizes().into_iter().map(|n| Scale::new(rt, n)).collect();
    let floors: Vec<std::collections::HashMap<KeyId, Arc<KeyRecord>>> = scales
        .iter()
        .map(|s| s.ids.iter().map(|id| (*id, block_on(rt, s.store.lookup(Lookup::Id(id))).unwrap().unwrap())).collect())
        .collect();
    let mut cases = Vec::new();
    for (s, floor) in scales.iter().zip(&floors) {
        let (n, ids, store, cached) = (s.n, &s.ids, &s.store, &s.cached);
        let hot = ids[0];
        let spread = move |start: usize| {
            let mut next = start;
            move || {
                next = (next + 1) % ids.len();
                &ids[next]
            }
        };
        let found = |r: Option<Arc<KeyRecord>>| read_record(&r.unwrap());
        let now = |s: &dyn KeyStore, id: &KeyId| match s.lookup_now(Lookup::Id(id)) {
            Some(Ok(Some(r))) => read_record(&r),
            _ => panic!("not a hit"),
        };
        let mut next_id = spread(0);
        cases.push(call_case("spread", &format!("index_only_{n}"), move || *next_id()));
        cases.push(call_case("spread", &format!("floor_hot_{n}"), move || found(floor.get(black_box(&hot)).cloned())));
        let mut next_id = spread(1);
        cases.push(call_case("spread", &format!("floor_spread_{n}"), move || found(floor.get(next_id()).cloned())));
        cases.push(call_case("spread", &format!("memory_hot_{n}"), move || now(store, black_box(&hot))));
        let mut next_id = spread(2);
        cases.push(call_case("spread", &format!("memory_spread_{n}"), move || now(store, next_id())));
        cases.push(call_case("spread", &format!("cached_hot_{n}"), move || now(cached, black_box(&hot))));
        let mut next_id = spread(3);
        cases.push(call_case("spread", &format!("cached_spread_{n}"), move || now(cached, next_id())));
    }
    run(
        "spread: one lookup, hot against spread over every key (the difference is spread - hot)",
        &mut cases,
        burst,
        |id| {
            let name = id.strip_prefix("spread/")?;
            name.contains("_spread_").then(|| format!("spread/{}", name.replace("_spread_", "_hot_")))
        },
    );
}

/// Targets 1 and 2 through the layer: hot and spread, memory and cached.
fn layer_section(rt: &tokio::runtime::Runtime, burst: u64) {
    let scales: Vec<Scale> = sizes().into_iter().map(|n| Scale::new(rt, n)).collect();
    let template = Template::new();
    let t = &template;
    let ok = StatusCode::OK;
    let mut cases = vec![request_case("layer", "baseline_no_layer", inner(), || t.build(Some(&scales[0].keys[0])), ok)];
    for s in &scales {
        let keys = &s.keys;
        let spread = |start: usize| {
            let mut next = start;
            move || {
                next = (next + 1) % keys.len();
                // The key bytes copied, as hyper does when it parses a request: hot in cache, the store is not.
                t.build(Some(&HeaderValue::from_bytes(keys[next].as_bytes()).unwrap()))
            }
        };
        let memory = ApiKeyLayer::new(s.store.clone()).layer(inner());
        let cached = ApiKeyLayer::new(s.cached.clone()).layer(inner());
        let n = s.n;
        cases.push(request_case("layer", &format!("memory_hot_{n}"), memory.clone(), || t.build(Some(&keys[0])), ok));
        cases.push(request_case("layer", &format!("cached_hot_{n}"), cached.clone(), || t.build(Some(&keys[0])), ok));
        cases.push(request_case("layer", &format!("memory_spread_{n}"), memory, spread(0), ok));
        cases.push(request_case("layer", &format!("cached_spread_{n}"), cached, spread(keys.len() / 2), ok));
        cases.push(request_case("layer", &format!("baseline_spread_{n}"), inner(), spread(keys.len() / 3), ok));
    }
    run(
        "layer: valid key through ApiKeyLayer (target 1: cached hot <= memory hot + 50 ns; target 2: spread overhead \
         <= hot overhead + 300 ns)",
        &mut cases,
        burst,
        |id| {
            let name = id.strip_prefix("layer/")?;
            if name.starts_with("baseline_spread") {
                return Some("layer/baseline_no_layer".into());
            }
            let n = name.rsplit('_').next()?;
            if name.contains("_spread_") {
                Some(format!("layer/baseline_spread_{n}"))
            } else if name.contains("_hot_") {
                Some("layer/baseline_no_layer".into())
            } else {
                None
            }
        },
    );
}

fn filled(n: usize) -> IdFilter {
    let filter = IdFilter::with_capacity(n);
    for _ in 0..n {
        filter.insert(Lookup::Id(&KeyId::random()));
    }
    filter
}

/// What the filter hashed before: a tag byte and the id's 12 bytes, in one write.
fn sip_member(id: &KeyId) -> [u8; 13] {
    let mut buf = [0u8; 13];
    buf[1..].copy_from_slice(id.as_str().as_bytes());
    buf
}

/// Target 3: the id filter's check, and its memory and false positives at the large size.
fn filter_section(burst: u64) {
    let large = usize::try_from(env_u64("BENCH_STORES_FILTER_IDS", 10_000_000)).unwrap_or(10_000_000);
    let started = Instant::now();
    let big = filled(large);
    let trials = 2_000_000;
    let false_pos = (0..trials).filter(|_| big.may_contain(Lookup::Id(&KeyId::random()))).count();
    println!();
    println!(
        "   id filter at {large} ids: {} bytes ({:.2} MB, {:.2} bits/id), false positives {false_pos}/{trials} = \
         {:.3} % (built and checked in {:.1} s)",
        big.memory_bytes(),
        big.memory_bytes() as f64 / 1e6,
        big.memory_bytes() as f64 * 8.0 / large as f64,
        false_pos as f64 * 100.0 / trials as f64,
        started.elapsed().as_secs_f64()
    );
    let big_bytes = big.memory_bytes();
    let small = filled(1000);
    // The filter as it was: fastbloom's default hasher (SipHash-1-3, randomly keyed), the tag and the id in one
    // write. Same sizing, so only the hash differs.
    let sip = |n: usize| {
        let bloom = fastbloom::AtomicBloomFilter::with_false_pos(0.01).expected_items(n);
        for _ in 0..n {
            bloom.insert(&sip_member(&KeyId::random()));
        }
        bloom
    };
    let (sip_small, sip_big) = (sip(1000), sip(large));
    const PROBES: usize = 1 << 16;
    let probes: Vec<KeyId> = (0..PROBES).map(|_| KeyId::random()).collect();
    let probes = &probes;
    let (mut a, mut b, mut c) = (0usize, 0usize, 0usize);
    let mut cases = vec![
        call_case("filter", "noop", move || {
            a = (a + 1) & (PROBES - 1);
            black_box(Lookup::Id(black_box(&probes[a])));
            false
        }),
        call_case("filter", "absent_1k", move || {
            b = (b + 1) & (PROBES - 1);
            small.may_contain(Lookup::Id(&probes[b]))
        }),
        call_case("filter", &format!("absent_{large}"), move || {
            c = (c + 1) & (PROBES - 1);
            big.may_contain(Lookup::Id(&probes[c]))
        }),
    ];
    // The floor at the large size: one read of a random word of an array as large as the filter's bits (where the
    // first probe of an absent id lands), the index precomputed so that no hash is timed. Each read's index
    // depends on the previous read (the word read is 1, and 1 - 1 is added), so reads cannot overlap: one memory
    // latency per call, as for a request, whose one check has no other check to overlap with.
    let words = vec![1u64; big_bytes / 8];
    let slots: Vec<usize> = (0..PROBES).map(|_| fastrand::usize(..words.len())).collect();
    let (mut f, mut last) = (0usize, 1u64);
    cases.push(call_case("filter", &format!("floor_random_read_{}MB", big_bytes / 1_000_000), move || {
        f = (f + 1) & (PROBES - 1);
        last = words[slots[f] + usize::try_from(last - 1).unwrap_or(0)];
        last == 0
    }));
    let (mut d, mut e) = (0usize, 0usize);
    cases.push(call_case("filter", "siphash_before_absent_1k", move || {
        d = (d + 1) & (PROBES - 1);
        sip_small.contains(&sip_member(&probes[d]))
    }));
    cases.push(call_case("filter", &format!("siphash_before_absent_{large}"), move || {
        e = (e + 1) & (PROBES - 1);
        sip_big.contains(&sip_member(&probes[e]))
    }));
    run("filter: IdFilter::may_contain, unknown ids (target 3: <= 20 ns)", &mut cases, burst, |_| {
        Some("filter/noop".into())
    });
}

/// Target 4: a miss through the cache against a direct lookup, over a real server.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn miss_cases<'a, S: KeyStore + Clone>(
    rt: &'a tokio::runtime::Runtime,
    group: &'static str,
    store: S,
) -> Vec<Case<'a>> {
    use tower_api_key::{Invalidation, KeyFormat};
    let issued = KeyFormat::new().issue(NewKey::user("bench-miss"), SystemTime::now());
    let id = issued.record.id;
    block_on(rt, store.insert(&issued.record)).unwrap();
    let cached = CachedStore::new(store.clone(), CacheConfig::new().id_filter(false));
    let evict = cached.invalidator();
    let hit = cached.clone();
    block_on(rt, hit.lookup(Lookup::Id(&id))).unwrap().unwrap();
    vec![
        call_case(group, "direct_lookup", move || block_on(rt, store.lookup(Lookup::Id(&id))).unwrap().unwrap()),
        call_case(group, "cached_miss", move || {
            evict.evict(&Invalidation { id, digest: None });
            block_on(rt, cached.lookup(Lookup::Id(&id))).unwrap().unwrap()
        }),
        call_case(group, "cached_hit", move || block_on(rt, hit.lookup(Lookup::Id(&id))).unwrap().unwrap()),
    ]
}

#[cfg(any(feature = "postgres", feature = "redis"))]
fn miss_section(rt: &tokio::runtime::Runtime) {
    let burst = env_u64("BENCH_MISS_BURST", 200);
    let baseline = |id: &str| Some(format!("{}/direct_lookup", id.split('/').next()?));
    #[cfg(feature = "postgres")]
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let store = block_on(rt, tower_api_key::PostgresStore::connect(&url, "bench_stores")).unwrap();
            let mut cases = miss_cases(rt, "miss_postgres", store);
            run("miss: CachedStore<PostgresStore> (target 4: one round trip)", &mut cases, burst, baseline);
        }
        Err(_) => println!("DATABASE_URL unset: PostgreSQL misses skipped"),
    }
    #[cfg(feature = "redis")]
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            let store = block_on(rt, tower_api_key::RedisStore::connect(&url, "bench_stores")).unwrap();
            let mut cases = miss_cases(rt, "miss_redis", store);
            run("miss: CachedStore<RedisStore> (target 4: one round trip)", &mut cases, burst, baseline);
        }
        Err(_) => println!("REDIS_URL unset: Redis misses skipped"),
    }
}

#[cfg(not(any(feature = "postgres", feature = "redis")))]
fn miss_section(_: &tokio::runtime::Runtime) {
    println!("built without the postgres and redis features: misses skipped");
}

fn main() {
    println!(
        "machine: {} CPUs, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = rt.enter();
    let burst = env_u64("BENCH_BURST", 20_000);
    if wanted("lookup") {
        lookup_section(&rt, burst);
    }
    if wanted("spread") {
        spread_section(&rt, burst);
    }
    if wanted("layer") {
        layer_section(&rt, burst);
    }
    if wanted("filter") {
        filter_section(burst);
    }
    if wanted("miss") {
        miss_section(&rt);
    }
}
