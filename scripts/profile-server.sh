#!/usr/bin/env bash
# Where a real server spends its CPU with the layer on: the serve bench binary serves `GET /whoami` behind
# ApiKeyLayer (`--serve ... layer`, pinned to CPU 0), wrk loads it from CPU 1 for DURATION seconds, and
# `perf record -e cpu-clock` samples the server. Prints the share of samples in the kernel, in the server binary,
# and in this crate's own functions (with SHA-256 and CRC32), plus the request rate, so the layer's cost per
# request in a server can be read as share x (1 s / requests per second).
#
#   scripts/profile-server.sh            Env: DURATION=5 CONNS=16 PORT=39001
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
PORT=${PORT:-39001}
for tool in perf wrk taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install linux-perf wrk util-linux)" >&2; exit 2; }
done
exe=$(cargo bench --bench serve --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/serve-[^"]*"' | sed 's/"executable":"//; s/"$//' | tail -n 1)
[ -x "$exe" ] || { echo "could not build benches/serve.rs" >&2; exit 1; }
log=$(mktemp)
data=$(mktemp)
taskset -c 0 "$exe" --serve "127.0.0.1:$PORT" layer >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log" "$data"' EXIT
for _ in $(seq 1 50); do grep -q '^LISTENING' "$log" && break; sleep 0.1; done
key=$(awk '/^KEY / {print $2}' "$log")
perf record -q -e cpu-clock -F 4000 -p "$server" -o "$data" -- sleep "$((DURATION + 1))" >/dev/null 2>&1 &
recorder=$!
sleep 0.5
rps=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$PORT/whoami" | awk '/^Requests\/sec:/ {print $2}')
wait "$recorder" || true
echo "requests/s: $rps (server on CPU 0, wrk on CPU 1, ${DURATION}s)"
perf report -i "$data" --no-children --sort dso 2>/dev/null | grep -v '^#' | grep '%' | head -4
share=$(perf report -i "$data" --no-children --sort symbol 2>/dev/null | grep -v '^#' |
    grep -E 'tower_api_key|sha2::|crc32fast' | awk '{s += $1} END {printf "%.2f", s}')
echo "this crate's functions (with sha2, crc32fast): ${share}% of server samples; the largest:"
perf report -i "$data" --no-children --sort symbol 2>/dev/null | grep -v '^#' |
    grep -E 'tower_api_key|sha2::|crc32fast' | head -8 | cut -c1-140
awk -v s="$share" -v r="$rps" 'BEGIN {
    if (r > 0) printf "= about %.0f ns per request at saturation (share x 1 s / requests)\n", s / 100 * 1e9 / r
}'
