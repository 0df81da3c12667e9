//! The valid path against stores of 1 thousand to 1 million keys, under criterion: the same key every time
//! ("hot": its record stays in cache) and each key of the store in turn, in random order ("spread": lookups miss
//! the cache, as traffic from many clients would), with a baseline that builds the same spread requests without
//! the layer. Run with `cargo bench --bench scaling`.
//!
//! Knobs: `BENCH_SCALING_SIZES` (comma-separated key counts, default `1000,100000,1000000`), and criterion's sizes
//! as in `benches/layer.rs`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

mod common;

use std::time::SystemTime;

use common::{Case, Template, bearer, inner, request_case, shuffle};
use http::{HeaderValue, StatusCode};
use tower::Layer;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

/// A store of `n` crate-format keys and their `Authorization` values, in random order.
struct Scale {
    n: usize,
    store: MemoryStore,
    keys: Vec<HeaderValue>,
}

impl Scale {
    fn new(n: usize) -> Self {
        let store = MemoryStore::new();
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            keys.push(bearer(store.add(NewKey::user(format!("user{i}"))).unwrap().key.expose_secret()));
        }
        shuffle(&mut keys, 0x5eed ^ n as u64);
        Self { n, store, keys }
    }
}

fn cases<'a>(t: &'a Template, scales: &'a [Scale]) -> Vec<Case<'a>> {
    let ok = StatusCode::OK;
    let mut v = vec![request_case("scaling", "baseline_no_layer", inner(), || t.build(Some(&scales[0].keys[0])), ok)];
    for s in scales {
        let svc = ApiKeyLayer::new(s.store.clone()).layer(inner());
        v.push(request_case("scaling", &format!("hot_{}", s.n), svc.clone(), || t.build(Some(&s.keys[0])), ok));
        let mut next = 0usize;
        let keys = &s.keys;
        let spread = move || {
            next = (next + 1) % keys.len();
            // Copy the key bytes, as hyper does when it parses a request: they are hot in cache, the store is not.
            t.build(Some(&HeaderValue::from_bytes(keys[next].as_bytes()).unwrap()))
        };
        v.push(request_case("scaling", &format!("spread_{}", s.n), svc, spread, ok));
        v.push(request_case("scaling", &format!("baseline_spread_{}", s.n), inner(), spread, ok));
    }
    v
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SCALING_SIZES")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_SCALING_SIZES: comma-separated numbers"))
        .collect();
    let scales: Vec<Scale> = sizes.into_iter().map(Scale::new).collect();
    let template = Template::new();
    let started = SystemTime::now();
    let mut cases = cases(&template, &scales);
    common::filter_cases(&mut cases, &["scaling/baseline_no_layer"]);
    let mut c = common::criterion();
    common::run_criterion(&mut c, &mut cases);
    c.final_summary();
    common::print_overheads(&cases, started, |id| {
        if let Some(n) = id.strip_prefix("scaling/spread_") {
            Some(format!("scaling/baseline_spread_{n}"))
        } else if id.starts_with("scaling/hot_") {
            Some("scaling/baseline_no_layer".to_owned())
        } else {
            None
        }
    });
}
