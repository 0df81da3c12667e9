#!/usr/bin/env bash
# Instruction profile of the layer under callgrind: which functions the layer's `call` spends its instructions in.
#
#   scripts/profile.sh [CASE]        CASE: a case filter of benches/interleaved.rs (default valid/api_key_layer)
#
# Runs the interleaved bench binary for a few rounds under `valgrind --tool=callgrind`, counting only
# inside `ApiKeyAuth::call`, and prints the functions by inclusive instruction count. Instruction counts do not
# move with machine load, so two builds can be compared exactly. Valgrind does not emulate SHA-NI: SHA-256 runs
# sha2's portable code here and its share is far larger than in the timed benches; read the other rows relative
# to each other.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }

case_filter=${1:-valid/api_key_layer}
exe=$(cargo bench --bench interleaved --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/interleaved-[^"]*"' | sed 's/"executable":"//; s/"$//' | tail -n 1)
[ -x "$exe" ] || { echo "could not build benches/interleaved.rs" >&2; exit 1; }
out=target/callgrind.layer.out
BENCH_FILTER="$case_filter" BENCH_ROUNDS=3 \
    valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*ApiKeyAuth*call*' "$exe" --bench \
    >/dev/null 2>&1
callgrind_annotate --inclusive=yes "$out" 2>/dev/null >"$out.txt"
grep -E '^ *[0-9,]+ \(' "$out.txt" | grep -v -E 'lang_start|libc_start|:main |below main|ld-linux|backtrace|layer::' | head -40 || true
# Per call: every case of the default filter hashes exactly once per request (one SHA-256 block), so the calls of
# `KeyDigest::of` count the requests, and what is left outside it is the layer's own work.
callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null | awk '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
    /\* +\/.*\/src\/key\/secret.rs:tower_api_key::key::secret::KeyDigest::of$/ { gsub(",", "", $1); sha = $1 }
    /^ *[0-9,]+ \([0-9.]+%\) +> +\/.*\/src\/key\/secret.rs:tower_api_key::key::secret::KeyDigest::of \(/ {
        n = $0; sub(/.*\(/, "", n); sub(/x\).*/, "", n); gsub(",", "", n); calls += n }
    END { if (calls > 0) printf "per request: %d instructions, %d outside SHA-256 (%d requests)\n", total / calls, (total - sha) / calls, calls }'
echo "(full data: $out; callgrind_annotate --auto=yes $out for line-level counts)"
