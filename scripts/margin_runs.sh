#!/usr/bin/env bash
# Issue 9's valid-path target, judged over many runs instead of one: runs `benches/interleaved.rs` RUNS times (each
# a separate process, so each gets its own memory layout) and prints, per run, the required parts' sum, the layer's
# overhead and the margin against "parts + 60 ns", for a fresh request and for one already carrying an extension
# (as axum's requests do), and the hand-written minimal pipeline's overhead over the parts. Ends with the medians
# and how many runs passed.
#
# Usage: scripts/margin_runs.sh [RUNS]        (default 15)
# Env:   BENCH_ROUNDS (default 300), BENCH_FILTER (default: every case, as `cargo bench --bench interleaved`)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-15}
export BENCH_ROUNDS=${BENCH_ROUNDS:-300}
exe=$(cargo bench --bench interleaved --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/interleaved-[^"]*"' | sed 's/"executable":"//; s/"$//' | tail -n 1)
[ -x "$exe" ] || { echo "could not build benches/interleaved.rs" >&2; exit 1; }
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
    "L1d $(lscpu 2>/dev/null | awk -F': *' '/^L1d/ {print $2}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$RUNS runs of $exe --bench (BENCH_ROUNDS=$BENCH_ROUNDS${BENCH_FILTER:+, BENCH_FILTER=$BENCH_FILTER})"
printf '%4s %8s %10s %8s %14s %16s\n' run parts overhead margin "margin w/ ext" "minimal - parts"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for i in $(seq 1 "$RUNS"); do
    out=$("$exe" --bench 2>/dev/null)
    parts=$(grep -oE '^valid path overhead [0-9.-]+ ns <= parts [0-9.-]+' <<<"$out" | awk '{print $NF}')
    over=$(grep -oE '^valid path overhead [0-9.-]+' <<<"$out" | awk '{print $NF}')
    margin=$(grep -oE '^valid path overhead .*\(margin [0-9.-]+' <<<"$out" | awk '{print $NF}')
    ext=$(grep -oE 'carrying an extension.*margin [0-9.-]+' <<<"$out" | awk '{print $NF}')
    minimal=$(grep -oE 'parts \+ [0-9.-]+; the layer' <<<"$out" | awk '{print $3}' | tr -d ';')
    [ -n "$margin" ] || { echo "run $i printed no margin" >&2; exit 1; }
    printf '%4d %8.1f %10.1f %8.1f %14.1f %16.1f\n' "$i" "$parts" "$over" "$margin" "${ext:-nan}" "${minimal:-nan}"
    echo "$margin ${ext:-nan} ${minimal:-nan}" >>"$rows"
done
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
m=$(cut -d' ' -f1 "$rows" | median)
e=$(cut -d' ' -f2 "$rows" | median)
n=$(cut -d' ' -f3 "$rows" | median)
pass=$(awk '$1 >= 0' "$rows" | wc -l)
pass_e=$(awk '$2 >= 0' "$rows" | wc -l)
echo "median margin $m ns (passed in $pass of $RUNS runs); with an extension already in the request: $e ns" \
    "(passed in $pass_e of $RUNS); minimal pipeline: parts + $n ns"
