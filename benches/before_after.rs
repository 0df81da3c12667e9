//! The per-request rows of `benches/layer.rs` that every version of the crate since c48f2b5 can build
//! (`MemoryStore::new`, `store.add(NewKey::user(..))`, `ApiKeyLayer::new(store)`), so that one program can be
//! compiled against two versions and run against each in the same session: `benches/before_after.sh` builds the
//! older version in a git worktree, and alternates the two binaries. Each run measures its own baseline (the
//! inner service without a layer); compare overheads, never absolute times. Run alone with
//! `cargo bench --bench before_after`.
//!
//! Each case is measured twice: under criterion (its estimate, sized by `BENCH_WARMUP_MS`, `BENCH_MEASURE_MS`,
//! `BENCH_SAMPLES`), then interleaved (`BENCH_ROUNDS` rounds, default 100, of `BENCH_BURST` requests per case,
//! default 2 000, in random order; the 10th percentile over rounds). The last lines, `ROW <case> <criterion ns>
//! <criterion overhead> <p10 ns> <p10 overhead>`, are what the script reads.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

/// The driving harness alone (nothing of this crate's API in it).
#[path = "common/harness.rs"]
mod harness;

use std::time::SystemTime;

use harness::{Template, bearer, env_u64, estimate, inner, request_case};
use http::StatusCode;
use tower::Layer;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

const BASELINE: &str = "before_after/baseline_no_layer";

fn main() {
    let store = MemoryStore::new();
    let valid = store.add(NewKey::user("alice")).unwrap();
    for i in 1..1000 {
        store.add(NewKey::user(format!("user{i}"))).unwrap();
    }
    let key = valid.key.expose_secret().to_owned();
    // A well-formed key of another store: unknown here.
    let unknown = MemoryStore::new().add(NewKey::user("nobody")).unwrap().key.expose_secret().to_owned();
    // The same key with its last checksum character changed: fails the CRC32.
    let mut bad = key.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let malformed = String::from_utf8(bad).unwrap();
    let (valid, unknown, malformed) = (bearer(&key), bearer(&unknown), bearer(&malformed));

    let t = Template::new();
    let layer = || ApiKeyLayer::new(store.clone()).layer(inner());
    let (ok, unauth) = (StatusCode::OK, StatusCode::UNAUTHORIZED);
    let g = "before_after";
    let mut cases = vec![
        request_case(g, "baseline_no_layer", inner(), || t.build(Some(&valid)), ok),
        request_case(g, "valid", layer(), || t.build(Some(&valid)), ok),
        request_case(g, "unknown", layer(), || t.build(Some(&unknown)), unauth),
        request_case(g, "malformed", layer(), || t.build(Some(&malformed)), unauth),
        request_case(g, "missing", layer(), || t.build(None), unauth),
    ];

    let started = SystemTime::now();
    let mut c = harness::criterion();
    harness::run_criterion(&mut c, &mut cases);
    c.final_summary();
    let rounds = usize::try_from(env_u64("BENCH_ROUNDS", 100)).unwrap_or(100).max(10);
    let inter = harness::interleaved(&mut cases, rounds, env_u64("BENCH_BURST", 2_000).max(1));

    let crit_base = estimate(BASELINE, started).unwrap_or(f64::NAN);
    let p10_base = inter[BASELINE].1;
    for case in &cases {
        let id = case.id();
        let crit = estimate(&id, started).unwrap_or(f64::NAN);
        let p10 = inter[&id].1;
        println!("ROW {} {crit:.1} {:.1} {p10:.1} {:.1}", case.name, crit - crit_base, p10 - p10_base);
    }
}
