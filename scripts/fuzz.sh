#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/fuzz_targets/) for SECONDS each (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: extract, parse (default: both)
#
# Works on stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags (sanitizer, coverage).
# Needs `cargo install cargo-fuzz --locked`. New inputs go to fuzz/target/corpus-work/<target> (ignored by git);
# the checked-in seeds in fuzz/corpus/<target> are only read. Crashes land in fuzz/artifacts/<target>/: reproduce
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> <file>`, then add the (minimised, `cargo fuzz tmin`) input to
# fuzz/corpus/<target>/ so that `cargo test --test fuzz_corpus` keeps it as a regression test.
set -euo pipefail

secs="${1:-60}"
[ "$#" -gt 0 ] && shift
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(extract parse)
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz > /dev/null; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1

failed=()
for target in "${targets[@]}"; do
    work="target/corpus-work/$target"
    mkdir -p "$work"
    echo "== fuzzing $target for ${secs}s (seeds: corpus/$target, new inputs: $work)"
    if ! cargo fuzz run -O "$target" "$work" "corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${secs}s without a failure"
