#!/usr/bin/env bash
# Per-request figures of two versions of the crate from one session: `benches/before_after.rs` (only the API both
# versions have) is compiled against an older commit ("before") and against the working tree or a second commit
# ("after"), each commit checked out in a git worktree outside this repository with its own target directory, and
# the two binaries are run RUNS times each, alternating which goes first. Every run measures its own baseline; the
# summary gives, per case, the median over runs of (case - baseline) for each version, by criterion's estimate and
# by the interleaved p10.
#
# Usage: benches/before_after.sh [BEFORE [AFTER]]   (BEFORE: default c48f2b5, the last commit before the
#                                                    restructuring; AFTER: default the working tree)
# Env:   RUNS=3  BEFORE_DIR=/tmp/tower-api-key-before  BEFORE_TARGET=$BEFORE_DIR-target
#        AFTER_DIR=/tmp/tower-api-key-after  AFTER_TARGET=$AFTER_DIR-target   (when AFTER is given)
#        and the bench's own knobs: BENCH_WARMUP_MS BENCH_MEASURE_MS BENCH_SAMPLES BENCH_ROUNDS BENCH_BURST
set -euo pipefail
cd "$(dirname "$0")/.."

COMMIT=${1:-c48f2b5}
AFTER=${2:-}
RUNS=${RUNS:-3}
BEFORE_DIR=${BEFORE_DIR:-/tmp/tower-api-key-before}
BEFORE_TARGET=${BEFORE_TARGET:-$BEFORE_DIR-target}
AFTER_DIR=${AFTER_DIR:-/tmp/tower-api-key-after}
AFTER_TARGET=${AFTER_TARGET:-$AFTER_DIR-target}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

exe_of() { grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//' | grep "/$1" | tail -n 1; }

# Checks `commit` out in `dir` (once), puts the program and its harness in it, builds it; prints the executable.
build_at() { # commit dir target
    local commit=$1 dir=$2 target=$3
    [ -e "$dir/.git" ] || git worktree add --detach "$dir" "$commit" >&2
    [ "$(git -C "$dir" rev-parse HEAD)" = "$(git rev-parse "$commit^{commit}")" ] ||
        { echo "$dir is not at $commit" >&2; exit 1; }
    mkdir -p "$dir/benches/common"
    cp benches/before_after.rs "$dir/benches/"
    cp benches/common/harness.rs "$dir/benches/common/"
    grep -q '^name = "before_after"' "$dir/Cargo.toml" ||
        printf '\n[[bench]]\nname = "before_after"\nharness = false\n' >>"$dir/Cargo.toml"
    (cd "$dir" && CARGO_TARGET_DIR=$target cargo bench --bench before_after --no-run --message-format=json \
        2>/dev/null | exe_of before_after-)
}

echo "building ..." >&2
BEFORE_EXE=$(build_at "$COMMIT" "$BEFORE_DIR" "$BEFORE_TARGET")
echo "before: $(git -C "$BEFORE_DIR" log -1 --format='%h %s' | cut -c1-100)" >&2
if [ -n "$AFTER" ]; then
    AFTER_EXE=$(build_at "$AFTER" "$AFTER_DIR" "$AFTER_TARGET")
    echo "after:  $(git -C "$AFTER_DIR" log -1 --format='%h %s' | cut -c1-100)" >&2
else
    AFTER_EXE=$(cargo bench --bench before_after --no-run --message-format=json 2>/dev/null | exe_of before_after-)
    echo "after:  working tree at $(git log -1 --format='%h %s' | cut -c1-100) (with any uncommitted changes)" >&2
fi
[ -x "$AFTER_EXE" ] && [ -x "$BEFORE_EXE" ] || { echo "build failed" >&2; exit 1; }

run() { # side run-number
    local exe=$AFTER_EXE
    [ "$1" = before ] && exe=$BEFORE_EXE
    CRITERION_HOME="$OUT/criterion-$1" "$exe" --bench >"$OUT/$1-$2.log" 2>&1
    grep '^ROW ' "$OUT/$1-$2.log" | sed "s/^ROW /$1 $2 /" >>"$OUT/rows"
    echo "  run $2 $1: $(grep '^ROW ' "$OUT/$1-$2.log" | awk '{printf "%s %+.0f  ", $2, $6}')" >&2
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then run before "$i"; run after "$i"; else run after "$i"; run before "$i"; fi
done

# rows: side run case crit crit_over p10 p10_over
echo
echo "ns over the same run's baseline, median over $RUNS runs per version (runs alternating); each cell: criterion / interleaved p10"
printf '%-20s %-26s %-26s %-17s %s\n' case "before ($COMMIT)" "after (${AFTER:-working tree})" "after - before" "p10: median of run-pair differences"
for case in $(awk '{print $3}' "$OUT/rows" | awk '!seen[$0]++'); do
    med() { awk -v s="$1" -v c="$case" -v f="$2" '$1 == s && $3 == c {print $f}' "$OUT/rows" | sort -g |
        awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
    bc=$(med before 5); bp=$(med before 7); ac=$(med after 5); ap=$(med after 7)
    if [ "$case" = baseline_no_layer ]; then bc=$(med before 4); bp=$(med before 6); ac=$(med after 4); ap=$(med after 6); fi
    # The same difference taken within each run pair (neighbours in time), then the median over pairs.
    f=7; [ "$case" = baseline_no_layer ] && f=6
    pairs=$(awk -v c="$case" -v f="$f" '$3 == c {v[$1, $2] = $f; n[$2] = 1} END {
        for (r in n) if ((("before", r) in v) && (("after", r) in v)) print v["after", r] - v["before", r] }' "$OUT/rows" |
        sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    awk -v c="$case" -v bc="$bc" -v bp="$bp" -v ac="$ac" -v ap="$ap" -v pp="$pairs" 'BEGIN {
        label = (c == "baseline_no_layer") ? c " (ns)" : c
        printf "%-20s %11.1f / %-12.1f %11.1f / %-12.1f %+8.1f / %+6.1f   %+6.1f\n", label, bc, bp, ac, ap, ac - bc, ap - bp, pp }'
done
echo
echo "per run (side run case criterion_ns criterion_over p10_ns p10_over):"
sort -k3,3 -k2,2n -k1,1 "$OUT/rows" | sed 's/^/  /'
