//! Per-request cost of `ApiKeyLayer` in process under criterion: the valid path next to the same service without
//! a layer and next to the peers a user would otherwise reach for (tower-http's bearer check, a hand-written
//! `HashMap` middleware, axum's `from_fn`), and every rejection path. Run with `cargo bench --bench layer`; see
//! BENCHMARKS.md for what each row means.
//!
//! Every variant is driven the same way (`benches/common/harness.rs`): `poll_ready`, `call` on a freshly built
//! `http::Request` (built outside the timed region, in chunks of 32), one poll of the returned future with a no-op
//! waker, and the response dropped (timed, as a server drops it after writing it). The memory store answers
//! synchronously (`lookup_now`), so the layer's future is ready on the first poll.
//!
//! Knobs: `BENCH_WARMUP_MS`, `BENCH_MEASURE_MS`, `BENCH_SAMPLES` (criterion's sizes), `BENCH_FILTER=valid/,reject/`
//! (substrings of `group/name`), or criterion's own filter after `--`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

mod common;

use std::time::SystemTime;

fn main() {
    let started = SystemTime::now();
    let fx = common::Fixture::new(1000);
    let mut cases = common::valid_cases(&fx);
    cases.extend(common::reject_cases(&fx));
    cases.extend(common::axum_cases(&fx));
    common::filter_cases(&mut cases, &["valid/baseline_no_layer"]);
    let mut c = common::criterion();
    common::run_criterion(&mut c, &mut cases);
    c.final_summary();
    common::print_overheads(&cases, started, common::baseline_of);
}
