//! The comparison the figures in BENCHMARKS.md come from: every per-request case of `benches/layer.rs` and every
//! floor part of `benches/floor.rs`, run in short bursts in a fresh random order each round, so that noise from
//! other processes hits every case alike. The figure per case is the 10th percentile over rounds (the fast rounds
//! give the undisturbed cost; the median is printed beside it), and every overhead is against a baseline of the
//! same run. Ends with issue 9's valid-path target, "the valid path's overhead is at most the sum of its
//! required parts, each measured alone in this run, plus 60 ns", and the same overhead for `valid/minimal_pipeline`
//! (the required parts and one header read, hand-written: the floor of that target). Run with
//! `cargo bench --bench interleaved`.
//!
//! Knobs: `BENCH_ROUNDS` (default 200), `BENCH_BURST` (requests per case per round, default 2 000),
//! `BENCH_FILTER` (substrings of `group/name`; the baselines, the required parts, the layer's valid case and the
//! minimal pipeline always stay: a filter that matches nothing, such as `zzz`, runs just those).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

mod common;

use std::collections::HashMap;

use common::{REQUIRED_PARTS, baseline_of, env_u64};

/// The first performance budget's per-row targets (overhead over the row's baseline, in ns), withdrawn by issue 9
/// (the required parts alone cost more than that budget); still printed, marked withdrawn, so that runs compare
/// with the earlier figures of BENCHMARKS.md.
const TARGETS: &[(&str, f64)] = &[
    ("valid/api_key_layer", 120.0),
    ("valid/api_key_layer_req_with_extension", 120.0),
    ("reject/malformed_checksum", 40.0),
    ("reject/malformed_bare_response", 40.0),
    ("reject/unknown", 80.0),
    ("reject/unknown_bare_response", 80.0),
];

/// Slack over the sum of the required parts that the valid path may take (issue 9).
const FLOOR_SLACK_NS: f64 = 60.0;

fn main() {
    let fx = common::Fixture::new(1000);
    let mut cases = common::floor_cases(&fx);
    cases.extend(common::valid_cases(&fx));
    cases.extend(common::reject_cases(&fx));
    cases.extend(common::axum_cases(&fx));
    let mut keep = vec![
        "valid/baseline_no_layer",
        "valid/api_key_layer",
        "valid/baseline_req_with_extension",
        "valid/minimal_pipeline",
    ];
    keep.extend(REQUIRED_PARTS);
    keep.push("axum_body/baseline_no_layer");
    common::filter_cases(&mut cases, &keep);
    let rounds = usize::try_from(env_u64("BENCH_ROUNDS", 200)).unwrap_or(200).max(10);
    let burst = env_u64("BENCH_BURST", 2_000).max(1);
    eprintln!("interleaved: {} cases x {rounds} rounds x {burst} iterations", cases.len());
    let inter = common::interleaved(&mut cases, rounds, burst);
    summary(&cases.iter().map(common::Case::id).collect::<Vec<_>>(), &inter, rounds, burst);
}

fn summary(ids: &[String], inter: &HashMap<String, (f64, f64)>, rounds: usize, burst: u64) {
    let p10 = |id: &str| inter.get(id).map(|m| m.1);
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let sha = p10("floor/sha256_24B_secret").unwrap_or(f64::NAN);
    println!();
    println!("Interleaved run ({rounds} rounds x {burst} per case): ns per request, p10 over rounds (median);");
    println!("overhead = case - its baseline (p10s of this run); / SHA-256 = overhead / floor/sha256_24B_secret.");
    println!();
    println!(
        "| case | ns p10 (median) | baseline | overhead ns | x baseline | overhead / SHA-256 | \
         first budget (withdrawn) | verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for id in ids {
        let Some(&(median, fast)) = inter.get(id) else { continue };
        let base = baseline_of(id).filter(|b| b != id).and_then(|b| Some((p10(&b)?, b)));
        let (b, over, x, vs_sha) = match &base {
            Some((b, name)) => (
                format!("`{name}`"),
                format!("{:.0}", fast - b),
                format!("{:.2}", fast / b),
                format!("{:.2}", (fast - b) / sha),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let target = TARGETS.iter().find(|t| t.0 == id).map(|t| t.1);
        let (t, v) = match (target, &base) {
            (Some(t), Some((b, _))) => (format!("<= {t:.0} ns"), verdict(fast - b <= t).to_owned()),
            _ => (String::new(), String::new()),
        };
        println!("| `{id}` | {fast:.0} ({median:.0}) | {b} | {over} | {x} | {vs_sha} | {t} | {v} |");
    }
    println!();
    let pair = |a: &str, b: &str| Some(p10(a)? - p10(b)?);
    let parts: Option<Vec<f64>> = REQUIRED_PARTS.iter().map(|id| p10(id)).collect();
    if let (Some(parts), Some(over)) = (parts, pair("valid/api_key_layer", "valid/baseline_no_layer")) {
        let sum: f64 = parts.iter().sum();
        let shown: Vec<String> =
            REQUIRED_PARTS.iter().zip(&parts).map(|(id, ns)| format!("{} {ns:.1}", &id[6..])).collect();
        println!("required parts alone (p10): {} = {sum:.1} ns", shown.join(" + "));
        println!(
            "valid path overhead {over:.1} ns <= parts {sum:.1} + {FLOOR_SLACK_NS:.0} = {:.1} ns: {} (margin {:.1} ns)",
            sum + FLOOR_SLACK_NS,
            verdict(over <= sum + FLOOR_SLACK_NS),
            sum + FLOOR_SLACK_NS - over
        );
        if let Some(over_ext) = pair("valid/api_key_layer_req_with_extension", "valid/baseline_req_with_extension") {
            println!(
                "  (request already carrying an extension, as in axum: overhead {over_ext:.1} ns, margin {:.1} ns)",
                sum + FLOOR_SLACK_NS - over_ext
            );
        }
        if let Some(min) = pair("valid/minimal_pipeline", "valid/baseline_no_layer") {
            println!(
                "  (reference: a hand-written minimal pipeline, the required parts and one header read only: \
                 overhead {min:.1} ns = parts + {:.1}; the layer is {:.1} ns above it)",
                min - sum,
                over - min
            );
        }
    }
    if let Some(d) = pair("valid/api_key_layer", "valid/tower_http_bearer") {
        println!(
            "api_key_layer - tower_http_bearer = {d:.0} ns (withdrawn first budget: <= 100 ns: {})",
            verdict(d <= 100.0)
        );
    }
    for peer in ["valid/hashmap_from_fn_style_boxed", "valid/hashmap_unboxed"] {
        if let Some(d) = pair("valid/api_key_layer", peer) {
            println!("api_key_layer - {peer} = {d:.0} ns (withdrawn first budget: faster: {})", verdict(d < 0.0));
        }
    }
    if let Some(d) = pair("axum_body/api_key_layer", "axum_body/axum_from_fn_hashmap") {
        println!(
            "axum_body: api_key_layer - axum_from_fn_hashmap = {d:.0} ns (withdrawn first budget: faster: {})",
            verdict(d < 0.0)
        );
    }
}
