//! The id filter of `CachedStore` (feature `cache`): what one check costs per request, beside a no-op baseline
//! in the same run, and its memory and false-positive rate at 10 million ids (measured and printed).
//! Run with `cargo bench --bench filter --features cache`.
//!
//! * `noop`: the baseline: a lookup handed to `black_box`, answered `false`.
//! * `id_filter/absent_10M`: `IdFilter::may_contain` for an unknown id, 10 million ids in the filter (12 MB: the
//!   probes miss the CPU caches, as in a server whose filter is cold).
//! * `id_filter/absent_1k`: the same with 1000 ids (the filter in cache).
//! * `cached_store/lookup_now_absent`: the whole in-process answer of a `CachedStore` with a trusted filter to an
//!   unknown id (cache miss + trust check + filter), which is what a flood request costs the cache.
//! * `cached_store/lookup_now_hit`: a cache hit, for scale.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tower_api_key::{CacheConfig, CachedStore, IdFilter, KeyId, KeyStore, Lookup, MemoryStore, NewKey};

const TEN_MILLION: usize = 10_000_000;
/// Unknown ids checked per round (precomputed: the RNG is not what is measured).
const PROBES: usize = 1 << 16;

fn unknown_ids(n: usize) -> Vec<KeyId> {
    (0..n).map(|_| KeyId::random()).collect()
}

fn filled(n: usize) -> IdFilter {
    let filter = IdFilter::with_capacity(n);
    for _ in 0..n {
        filter.insert(Lookup::Id(&KeyId::random()));
    }
    filter
}

/// Memory and false-positive rate at 10 million ids, printed once.
fn report_ten_million(filter: &IdFilter) {
    let trials = 2_000_000;
    let started = Instant::now();
    let false_pos = (0..trials).filter(|_| filter.may_contain(Lookup::Id(&KeyId::random()))).count();
    println!(
        "id filter at {TEN_MILLION} ids: {} bytes ({:.2} MB, {:.2} bits/id), false positives {false_pos}/{trials} \
         = {:.3} % (checked in {:?})",
        filter.memory_bytes(),
        filter.memory_bytes() as f64 / 1e6,
        filter.memory_bytes() as f64 * 8.0 / TEN_MILLION as f64,
        false_pos as f64 * 100.0 / trials as f64,
        started.elapsed()
    );
}

fn bench(c: &mut Criterion) {
    let started = Instant::now();
    let big = filled(TEN_MILLION);
    println!("filled a filter with {TEN_MILLION} ids in {:?}", started.elapsed());
    report_ten_million(&big);
    let small = filled(1000);
    let probes = unknown_ids(PROBES);

    let mut group = c.benchmark_group("filter_check");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let mut i = 0usize;
    group.bench_function("noop", |b| {
        b.iter(|| {
            i = (i + 1) & (PROBES - 1);
            black_box(Lookup::Id(black_box(&probes[i])));
            false
        })
    });
    let mut i = 0usize;
    group.bench_function("id_filter/absent_10M", |b| {
        b.iter(|| {
            i = (i + 1) & (PROBES - 1);
            big.may_contain(Lookup::Id(&probes[i]))
        })
    });
    let mut i = 0usize;
    group.bench_function("id_filter/absent_1k", |b| {
        b.iter(|| {
            i = (i + 1) & (PROBES - 1);
            small.may_contain(Lookup::Id(&probes[i]))
        })
    });

    // A cache over 1000 keys whose filter is trusted (one instance: nothing else writes to the store).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = runtime.enter();
    let store = MemoryStore::new();
    let known = store.add(NewKey::user("known")).unwrap().record.id;
    for n in 0..999 {
        store.add(NewKey::user(format!("u{n}"))).unwrap();
    }
    let cached = CachedStore::new(store, CacheConfig::new().filter_without_bus(true).filter_capacity(1000));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cached.filter_trusted() {
        assert!(Instant::now() < deadline, "the filter was not built");
        std::thread::sleep(Duration::from_millis(5));
    }
    runtime.block_on(cached.lookup(Lookup::Id(&known))).unwrap().unwrap();
    let mut i = 0usize;
    group.bench_function("cached_store/lookup_now_absent", |b| {
        b.iter(|| {
            i = (i + 1) & (PROBES - 1);
            cached.lookup_now(Lookup::Id(&probes[i]))
        })
    });
    group
        .bench_function("cached_store/lookup_now_hit", |b| b.iter(|| cached.lookup_now(Lookup::Id(black_box(&known)))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
