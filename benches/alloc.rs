//! Heap allocations per request on every path, and heap bytes per stored key. Counted by `stats_alloc`'s
//! instrumented system allocator installed as this bench's `#[global_allocator]`: the requests are built before
//! the counting region opens, so each row is what the service (and the response it returns) allocates, nothing
//! of the harness. Run with `cargo bench --bench alloc`.
//!
//! Knobs: `BENCH_ALLOC_ITERS` (requests per row, default 10 000), `BENCH_ALLOC_STORE_SIZES` (key counts for the
//! memory-per-key rows, default `1000,100000,1000000`; each size is built in a child process of its own so the
//! RSS growth is not hidden by memory an earlier size freed).

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub
)]

mod common;

use std::alloc::System;
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;

use common::{Fixture, Req, bare, build_with_extension, drive, env_u64, hashmap_auth, inner, tower_http_bearer};
use http::{Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service};
use tower_api_key::{MemoryStore, NewKey};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations, reallocations and bytes requested, per iteration.
#[derive(Debug, Clone, Copy)]
struct PerIter {
    allocs: f64,
    reallocs: f64,
    bytes: f64,
}

/// Counts what `run` allocates over the prepared inputs, per input.
fn count<T>(inputs: Vec<T>, mut run: impl FnMut(T)) -> PerIter {
    let n = inputs.len() as f64;
    let region = Region::new(GLOBAL);
    for input in inputs {
        run(input);
    }
    let s = region.change();
    PerIter {
        allocs: s.allocations as f64 / n,
        reallocs: s.reallocations as f64 / n,
        bytes: s.bytes_allocated as f64 / n,
    }
}

/// One warm-up call (first-use initialisation), then `iters` requests from `make`, built before counting.
fn per_request<S, B, RB>(iters: usize, mut svc: S, mut make: impl FnMut() -> Request<B>) -> PerIter
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    drop(drive(&mut svc, make()));
    let reqs: Vec<Request<B>> = (0..iters).map(|_| make()).collect();
    count(reqs, |req| drop(black_box(drive(&mut svc, req))))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--mem") {
        mem_child(&args[pos + 1], args[pos + 2].parse().unwrap());
        return;
    }
    let iters = usize::try_from(env_u64("BENCH_ALLOC_ITERS", 10_000)).unwrap_or(10_000).max(1);
    let fx = Fixture::new(1000);
    let t = &fx.template;
    let valid = || t.build(Some(&fx.valid));
    let unknown = || t.build(Some(&fx.unknown));
    let layer = || fx.layer().layer(inner());

    let build = count((0..iters).collect(), |_| drop(black_box(t.build(Some(&fx.valid)))));
    let insert = {
        let p = Arc::new(common::User { id: "alice".into(), scopes: vec![] });
        let reqs: Vec<Req> = (0..iters).map(|_| valid()).collect();
        count(reqs, |mut req| {
            req.extensions_mut().insert(p.clone());
            drop(black_box(req));
        })
    };
    let rows: Vec<(&str, &str, PerIter)> = vec![
        ("build_request (not subtracted)", "building and dropping one request, for scale", build),
        ("extension_insert", "one Arc into the request's empty extensions (any injecting middleware)", insert),
        ("baseline_no_layer", "the inner service alone", per_request(iters, inner(), valid)),
        ("layer_valid", "layer + inner, valid 52-byte key", per_request(iters, layer(), valid)),
        ("layer_valid_opaque40", "layer + inner, valid 40-byte opaque key", {
            per_request(iters, layer(), || t.build(Some(&fx.opaque)))
        }),
        ("layer_valid_req_with_extension", "the same, request already carrying one extension (as in axum)", {
            per_request(iters, layer(), || build_with_extension(t, Some(&fx.valid)))
        }),
        ("layer_missing", "no credential (401)", per_request(iters, layer(), || t.build(None))),
        ("layer_malformed", "bad checksum (401)", per_request(iters, layer(), || t.build(Some(&fx.malformed)))),
        ("layer_unknown", "unknown key (401)", per_request(iters, layer(), unknown)),
        ("layer_revoked", "revoked key (401)", per_request(iters, layer(), || t.build(Some(&fx.revoked)))),
        ("layer_unknown_bare_response", "unknown key, status-only 401", {
            per_request(iters, bare(&fx).layer(inner()), unknown)
        }),
        ("tower_http_bearer", "tower-http bearer + inner, valid", {
            per_request(iters, tower_http_bearer(&fx.key).layer(inner()), valid)
        }),
        ("tower_http_bearer_wrong", "tower-http bearer, wrong token (401)", {
            per_request(iters, tower_http_bearer(&fx.key).layer(inner()), unknown)
        }),
        ("hashmap_from_fn_style_boxed", "hand-written HashMap middleware, boxed future", {
            per_request(iters, hashmap_auth(inner(), &fx.users, true), valid)
        }),
        ("hashmap_unboxed", "hand-written HashMap middleware, no box", {
            per_request(iters, hashmap_auth(inner(), &fx.users, false), valid)
        }),
    ];
    println!("Heap allocations per request (stats_alloc global allocator, {iters} requests per row built beforehand)");
    println!("  {:<32} {:>8} {:>9} {:>10}", "case", "allocs", "reallocs", "bytes");
    for (case, what, c) in &rows {
        println!("  {case:<32} {:>8.2} {:>9.2} {:>10.1}   {what}", c.allocs, c.reallocs, c.bytes);
    }

    let sizes: Vec<usize> = std::env::var("BENCH_ALLOC_STORE_SIZES")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    if sizes.is_empty() {
        return;
    }
    println!();
    println!("Memory per stored key, memory store (heap = live bytes requested; RSS = growth of the process)");
    for kind in ["ours", "opaque"] {
        let Some((empty_heap, _)) = mem_run(kind, 0) else { continue };
        for &n in &sizes {
            let Some((heap, rss)) = mem_run(kind, n) else { continue };
            println!(
                "  {kind:<6} keys={n:<8} heap/key={:>6.0} B   rss/key={:>6.0} B",
                (heap - empty_heap) / n as f64,
                rss / n as f64
            );
        }
    }
}

/// Runs this binary as `--mem <kind> <n>` and reads its `MEM <heap> <rss>` line.
fn mem_run(kind: &str, n: usize) -> Option<(f64, f64)> {
    let out = Command::new(std::env::current_exe().ok()?).args(["--mem", kind, &n.to_string()]).output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("MEM "))?;
    let mut it = line.split_whitespace().map(|v| v.parse::<f64>());
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Child: `n` keys of `kind` ("ours" or "opaque") into a fresh store; prints the live heap bytes and RSS growth.
fn mem_child(kind: &str, n: usize) {
    let rss = rss_bytes();
    let region = Region::new(GLOBAL);
    let store = MemoryStore::new();
    for i in 0..n {
        match kind {
            "ours" => drop(store.add(NewKey::user(format!("user{i}"))).unwrap()),
            _ => drop(store.import(&format!("legacy-{i:034}"), NewKey::user(format!("user{i}"))).unwrap()),
        }
    }
    let s = region.change();
    let live = s.bytes_allocated as f64 - s.bytes_deallocated as f64;
    println!("MEM {live} {}", rss_bytes().saturating_sub(rss));
    assert_eq!(store.len(), n);
}
