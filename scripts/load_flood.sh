#!/usr/bin/env bash
# End to end: a flood of random well-formed unknown keys against the example server with its keys in PostgreSQL
# (KEY_STORE=postgres: a CachedStore over PostgresStore), with the id filter on (A) and off (B, ID_FILTER=off).
# Each request carries a different key (RANDOM ids that pass the format check), so the negative cache never
# helps: without the filter every request is a database query.
#
# Usage: scripts/load_flood.sh
# Env:   RUNS=3 DURATION=10 CONNS=16 PORT=38280 SERVER_CPU=0 LOADGEN_CPU=1 KEYS=50000
#        DATABASE_URL=postgres://postgres@127.0.0.1:5432/test KEY_NAMESPACE=load_flood SKIP_BUILD=
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
PORT=${PORT:-38280}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
KEYS=${KEYS:-50000}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export KEY_NAMESPACE=${KEY_NAMESPACE:-load_flood}
export RUST_LOG=${RUST_LOG:-error}
unset REDIS_URL

command -v wrk >/dev/null 2>&1 || { echo "need wrk: apt-get install -y wrk" >&2; exit 2; }
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --example server --features postgres,redis,cache >&2
fi
SERVER_EXE=target/release/examples/server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Random keys of the crate's default format: tak_user_<12 base62>_<24 base62><CRC32 as 6 base62>.
python3 - "$KEYS" >"$WORK/keys.txt" <<'PY'
import random, sys, zlib
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def b62(n, width):
    out = []
    for _ in range(width):
        out.append(A[n % 62]); n //= 62
    return "".join(reversed(out))
for _ in range(int(sys.argv[1])):
    body = "tak_user_" + "".join(random.choice(A) for _ in range(12)) + "_" + "".join(random.choice(A) for _ in range(24))
    print(body + b62(zlib.crc32(body.encode()), 6))
PY
cat >"$WORK/flood.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/keys.txt") do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/whoami", { ["Authorization"] = "Bearer " .. keys[i] })
end
LUA

wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "server on port $1 did not start" >&2; exit 1; }
start() { # port filter
    ADDR="127.0.0.1:$1" KEY_STORE=postgres ID_FILTER=$2 taskset -c "$SERVER_CPU" "$SERVER_EXE" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$1"
}
queries() { psql "$DATABASE_URL" -Atqc "SELECT pg_stat_clear_snapshot(); SELECT coalesce(idx_scan,0)+coalesce(seq_scan,0) FROM pg_stat_user_tables WHERE schemaname = '$KEY_NAMESPACE' AND relname = 'api_keys'" | tail -1; }
one_run() { taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNS" -d"$2s" -s "$WORK/flood.lua" "http://127.0.0.1:$1/whoami" | awk '/^Requests\/sec:/ {print $2}'; }

PA=$PORT; PB=$((PORT + 1))
start "$PA" on
start "$PB" off
sleep 2 # the filter's first build (an empty namespace: one page)
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS, ${DURATION}s x $RUNS pairs, $KEYS random keys"
printf '   %-4s %-12s %12s %16s\n' run side "req/s" "table scans"
for i in $(seq 1 "$RUNS"); do
    order="A B"; [ $((i % 2)) -eq 0 ] && order="B A"
    for side in $order; do
        port=$PA; name="A filter on"; [ "$side" = B ] && { port=$PB; name="B filter off"; }
        before=$(queries); sleep 0.6
        rps=$(one_run "$port" "$DURATION")
        sleep 0.6; after=$(queries)
        printf '   %-4s %-12s %12.0f %16s\n' "$i" "$name" "$rps" "$((after - before))"
    done
done
