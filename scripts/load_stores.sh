#!/usr/bin/env bash
# End to end: the example server with its keys in PostgreSQL (KEY_STORE=postgres: a CachedStore over
# PostgresStore, warm) against the same server with its keys in memory (KEY_STORE=memory), on GET /whoami with the
# same 40-byte opaque DEMO_USER_KEY. Target: postgres req/s >= 0.95 x memory req/s.
#
# Both servers run at once (each pinned to CPU $SERVER_CPU; only the one under load is busy), wrk pinned to CPU
# $LOADGEN_CPU; RUNS interleaved pairs of DURATION-second runs, alternating which side goes first. Prints req/s,
# p50 and p99 per run, the medians, the B/A ratio of the medians and the median of the per-pair ratios.
#
# Usage: scripts/load_stores.sh
# Env:   RUNS=5 DURATION=10 CONNS=16 PORT=38180 SERVER_CPU=0 LOADGEN_CPU=1
#        DATABASE_URL=postgres://postgres@127.0.0.1:5432/test KEY_NAMESPACE=load_stores SKIP_BUILD=
# Build: cargo build --release --example server --features postgres,redis,cache   (done here unless SKIP_BUILD=1)
set -euo pipefail

cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
PORT=${PORT:-38180}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export KEY_NAMESPACE=${KEY_NAMESPACE:-load_stores}
export DEMO_USER_KEY=${DEMO_USER_KEY:-demo-load-0123456789abcdef0123456789abcd}
export RUST_LOG=${RUST_LOG:-warn}
# Limits per process, and the PostgreSQL LISTEN/NOTIFY bus: nothing but PostgreSQL behind the cached side.
unset REDIS_URL

command -v wrk >/dev/null 2>&1 || { echo "need wrk: apt-get install -y wrk" >&2; exit 2; }
command -v taskset >/dev/null 2>&1 || { echo "need taskset (util-linux)" >&2; exit 2; }

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "building: cargo build --release --example server --features postgres,redis,cache" >&2
    cargo build --release --example server --features postgres,redis,cache >&2
fi
SERVER_EXE=target/release/examples/server
[ -x "$SERVER_EXE" ] || { echo "no $SERVER_EXE" >&2; exit 1; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() { # port
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

start() { # port store log
    ADDR="127.0.0.1:$1" KEY_STORE=$2 taskset -c "$SERVER_CPU" "$SERVER_EXE" >"$3" 2>&1 &
    PIDS+=($!)
    wait_port "$1"
}

to_us() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

one_run() { # port duration -> "rps p50_us p99_us"
    local out
    out=$(taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNS" -d"$2s" --latency \
        -H "Authorization: Bearer $DEMO_USER_KEY" "http://127.0.0.1:$1/whoami")
    if grep -q Non-2xx <<<"$out"; then
        echo "non-2xx responses from port $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")") \
$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

PA=$PORT
PB=$((PORT + 1))
LOG_A=$(mktemp)
LOG_B=$(mktemp)
start "$PA" memory "$LOG_A"
start "$PB" postgres "$LOG_B"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS, ${DURATION}s x $RUNS pairs"
echo "   A = KEY_STORE=memory   (port $PA)"
echo "   B = KEY_STORE=postgres (port $PB; CachedStore over PostgresStore, namespace $KEY_NAMESPACE)"
# Warm-up: fills B's cache (the first request is a miss, one query) and both servers' allocators.
one_run "$PA" 2 >/dev/null
one_run "$PB" 2 >/dev/null

FA=$(mktemp)
FB=$(mktemp)
printf '   %-4s %-2s %12s %10s %10s\n' run "" "req/s" "p50 us" "p99 us"
for i in $(seq 1 "$RUNS"); do
    order="A B"
    [ $((i % 2)) -eq 0 ] && order="B A"
    for side in $order; do
        if [ "$side" = A ]; then r=$(one_run "$PA" "$DURATION"); echo "$r" >>"$FA"; else
            r=$(one_run "$PB" "$DURATION"); echo "$r" >>"$FB"; fi
        # shellcheck disable=SC2086
        printf '   %-4s %-2s %12.0f %10.1f %10.1f\n' "$i" "$side" $r
    done
done
ra=$(cut -d' ' -f1 "$FA" | median)
rb=$(cut -d' ' -f1 "$FB" | median)
pair=$(paste -d' ' "$FA" "$FB" | awk '{print $4 / $1}' | median)
qa=$(cut -d' ' -f3 "$FA" | median)
qb=$(cut -d' ' -f3 "$FB" | median)
awk -v ra="$ra" -v rb="$rb" -v pair="$pair" -v qa="$qa" -v qb="$qb" 'BEGIN {
    printf "   median A (memory):   %10.0f req/s  p99 %8.1f us\n", ra, qa
    printf "   median B (postgres): %10.0f req/s  p99 %8.1f us\n", rb, qb
    printf "   B/A of medians: %.3f; median of pair ratios: %.3f (target >= 0.95: %s)\n", rb / ra, pair,
        (pair >= 0.95) ? "MET" : "NOT MET"
    printf "   per-request cost of B over A at saturation: %.0f ns\n", 1e9 / rb - 1e9 / ra
}'
rm -f "$FA" "$FB" "$LOG_A" "$LOG_B"
