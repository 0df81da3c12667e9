//! The parts the valid path cannot avoid, each measured alone under criterion: SHA-256 of the secret
//! (`KeyDigest::of`, with sha2's generic API and a whole 52-byte key beside it), one constant-time digest
//! compare, the format check (length, base62, CRC32), one memory-store lookup, and one `Arc` inserted into empty
//! `http::Extensions` (what any middleware that injects pays); and, for comparison, a clock read and one header
//! lookup. Run with `cargo bench --bench floor`.
//!
//! The target adds up the five required parts (SHA-256 of the secret, compare, format check, lookup,
//! insert); `cargo bench --bench interleaved` measures them in the same run as the valid path and checks it.
//! Knobs as in `benches/layer.rs`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

mod common;

use std::time::SystemTime;

fn main() {
    let started = SystemTime::now();
    let fx = common::Fixture::new(1000);
    let mut cases = common::floor_cases(&fx);
    common::filter_cases(&mut cases, &[]);
    let mut c = common::criterion();
    common::run_criterion(&mut c, &mut cases);
    c.final_summary();
    common::print_overheads(&cases, started, |_| None);
    let parts: Option<Vec<f64>> = common::REQUIRED_PARTS.iter().map(|id| common::estimate(id, started)).collect();
    if let Some(parts) = parts {
        println!(
            "  sum of the required parts ({}) = {:.1} ns",
            common::REQUIRED_PARTS.join(" + "),
            parts.iter().sum::<f64>()
        );
    }
}
