#!/usr/bin/env bash
# End-to-end load test over loopback with a real load generator (wrk, or oha when wrk is absent).
#
# Two comparisons, each as RUNS interleaved pairs of DURATION-second runs, server pinned to CPU $SERVER_CPU and
# the load generator to CPU $LOADGEN_CPU:
#
#   1. "fair": the same axum route (`GET /whoami`, 2-byte body) served by the serve bench binary
#      (`benches/serve.rs --serve`), once with no layer and once behind ApiKeyLayer (memory store, 1 000 keys,
#      valid crate-format key in `Authorization: Bearer`). Only the layer differs.
#   2. "example": the example server (`examples/server.rs`): `GET /health` (outside the layer, no key) against
#      `GET /whoami` with DEMO_USER_KEY (a 40-byte opaque key) - the layer *plus* the example's from_fn
#      middleware, usage tracker, Principal extractor and JSON handler. An upper bound on the layer's cost.
#
#   0. "A/A": two identical servers without the layer, measured the same way: the noise floor of the machine.
#
# Prints requests/s, p50 and p99 per run, the median of each side, the B/A ratio of the medians and the median of
# the B/A ratios of neighbouring runs (drift between pairs cancels out).
#
# Usage: benches/load.sh [aa|fair|example|all]      (default: all)
# Env:   RUNS=5 DURATION=5 CONNS=16 PORT=38080 SERVER_CPU=0 LOADGEN_CPU=1 RUST_LOG=warn
set -euo pipefail

cd "$(dirname "$0")/.."

WHICH=${1:-all}
RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
PORT=${PORT:-38080}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
# A fixed 40-byte opaque key (not of the crate's format): registered by both servers.
DEMO_USER_KEY=${DEMO_USER_KEY:-demo-load-0123456789abcdef0123456789abcd}
# The example logs one line per request at info level; the load test measures the server, not the terminal.
export RUST_LOG=${RUST_LOG:-warn}
export DEMO_USER_KEY

if [ "${#DEMO_USER_KEY}" -ne 40 ]; then
    echo "DEMO_USER_KEY must be 40 bytes (is ${#DEMO_USER_KEY})" >&2
    exit 2
fi

# --- load generator -------------------------------------------------------------------------------------------
if command -v wrk >/dev/null 2>&1; then
    GEN=wrk
elif command -v oha >/dev/null 2>&1; then
    GEN=oha
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt-get install -y wrk)" >&2
    (apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }) >&2
    GEN=wrk
else
    echo "need a load generator: apt-get install -y wrk   or   cargo install oha --locked" >&2
    exit 2
fi
command -v taskset >/dev/null 2>&1 || { echo "need taskset (util-linux)" >&2; exit 2; }

# --- build ------------------------------------------------------------------------------------------------------
exe_of() { # cargo --message-format=json output on stdin -> path of the executable named $1
    grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//' | grep "/$1" | tail -n 1
}
echo "building (release) ..." >&2
BENCH_EXE=$(cargo bench --bench serve --no-run --message-format=json 2>/dev/null | exe_of "serve-")
SERVER_EXE=$(cargo build --release --example server --message-format=json 2>/dev/null | exe_of "server") || true
[ -x "$BENCH_EXE" ] || { echo "could not build benches/serve.rs" >&2; exit 1; }

PIDS=()
LOGS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "${LOGS[@]}"
}
trap cleanup EXIT

wait_port() { # host port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on $1:$2 did not start" >&2
    exit 1
}

# --- one run: prints "rps p50_us p99_us" -----------------------------------------------------------------------
to_us() { # wrk latency like 123.45us / 1.23ms / 1.02s -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
    }'
}

one_run() { # url [header]
    local url=$1 header=${2:-}
    local args=()
    [ -n "$header" ] && args=(-H "$header")
    if [ "$GEN" = wrk ]; then
        local out
        out=$(taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "$url")
        local rps p50 p99 non2xx
        rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
        p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
        p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
        non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
        if [ -n "$non2xx" ]; then
            echo "unexpected non-2xx responses ($non2xx) from $url" >&2
            exit 1
        fi
        echo "$rps $p50 $p99"
    else
        local out
        out=$(taskset -c "$LOADGEN_CPU" oha --no-tui -c "$CONNS" -z "${DURATION}s" --output-format json "${args[@]}" "$url")
        python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
codes = d.get("statusCodeDistribution", {})
bad = {k: v for k, v in codes.items() if not k.startswith("2")}
if bad:
    sys.exit(f"unexpected status codes {bad}")
p = d["latencyPercentiles"]
print(d["summary"]["requestsPerSec"], p["p50"] * 1e6, p["p99"] * 1e6)
PY
    fi
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

compare() { # title labelA urlA headerA labelB urlB headerB
    local title=$1 la=$2 ua=$3 ha=$4 lb=$5 ub=$6 hb=$7
    local fa fb
    fa=$(mktemp)
    fb=$(mktemp)
    echo
    echo "== $title: $GEN, $CONNS connections, 1 thread, ${DURATION}s x $RUNS interleaved runs; server on CPU $SERVER_CPU, $GEN on CPU $LOADGEN_CPU"
    echo "   A = $la"
    echo "   B = $lb"
    # warm-up (not recorded)
    DURATION=1 one_run "$ua" "$ha" >/dev/null
    DURATION=1 one_run "$ub" "$hb" >/dev/null
    printf '   %-4s %-2s %12s %10s %10s\n' run "" "req/s" "p50 us" "p99 us"
    for i in $(seq 1 "$RUNS"); do
        # alternate which side goes first, so drift hits both alike
        local order="A B"
        [ $((i % 2)) -eq 0 ] && order="B A"
        for side in $order; do
            local r
            if [ "$side" = A ]; then r=$(one_run "$ua" "$ha"); echo "$r" >>"$fa"; else r=$(one_run "$ub" "$hb"); echo "$r" >>"$fb"; fi
            # shellcheck disable=SC2086
            printf '   %-4s %-2s %12.0f %10.1f %10.1f\n' "$i" "$side" $r
        done
    done
    # Ratio of each pair of neighbouring runs (B_i / A_i): drift slower than one pair cancels out.
    local pair_rps pair_p99
    pair_rps=$(paste -d' ' "$fa" "$fb" | awk '{print $4 / $1}' | median)
    pair_p99=$(paste -d' ' "$fa" "$fb" | awk '{print $6 / $3}' | median)
    local ra rb pa pb qa qb
    ra=$(cut -d' ' -f1 "$fa" | median); rb=$(cut -d' ' -f1 "$fb" | median)
    pa=$(cut -d' ' -f2 "$fa" | median); pb=$(cut -d' ' -f2 "$fb" | median)
    qa=$(cut -d' ' -f3 "$fa" | median); qb=$(cut -d' ' -f3 "$fb" | median)
    local spread_a spread_b
    spread_a=$(cut -d' ' -f1 "$fa" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}')
    spread_b=$(cut -d' ' -f1 "$fb" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}')
    awk -v ra="$ra" -v rb="$rb" -v pa="$pa" -v pb="$pb" -v qa="$qa" -v qb="$qb" -v sa="$spread_a" -v sb="$spread_b" \
        -v prps="$pair_rps" -v pp99="$pair_p99" 'BEGIN {
        printf "   median A: %10.0f req/s  p50 %8.1f us  p99 %8.1f us   (req/s range %s)\n", ra, pa, qa, sa
        printf "   median B: %10.0f req/s  p50 %8.1f us  p99 %8.1f us   (req/s range %s)\n", rb, pb, qb, sb
        # Issue 9: req/s with the layer >= 0.95 of without, judged only when the A/A control reads 0.98-1.02.
        printf "   B/A of medians: req/s %.3f (target >= 0.95: %s), p50 %.3f, p99 %.3f (target <= 1.10: %s)\n",
            rb / ra, (rb / ra >= 0.95) ? "PASS" : "FAIL", pb / pa, qb / qa, (qb / qa <= 1.10) ? "PASS" : "FAIL"
        printf "   B/A median of run pairs: req/s %.3f, p99 %.3f\n", prps, pp99
        printf "   per-request cost of B over A at saturation: %.0f ns\n", (1e9 / rb - 1e9 / ra)
    }'
    rm -f "$fa" "$fb"
}

start_server() { # port cmd... ; sets SERVER_LOG to the file holding the server's output
    local port=$1
    shift
    SERVER_LOG=$(mktemp)
    LOGS+=("$SERVER_LOG")
    ADDR="127.0.0.1:$port" taskset -c "$SERVER_CPU" "$@" >"$SERVER_LOG" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 "$port"
}

echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$WHICH" = all ] || [ "$WHICH" = aa ]; then
    # Noise floor: two identical servers without the layer. Any ratio away from 1.000 here is the machine.
    PA=$((PORT + 4))
    PB=$((PORT + 5))
    start_server "$PA" "$BENCH_EXE" --serve "127.0.0.1:$PA" none
    start_server "$PB" "$BENCH_EXE" --serve "127.0.0.1:$PB" none
    compare "A/A control: two identical servers, no layer (noise floor)" \
        "GET /whoami, no layer, server 1" "http://127.0.0.1:$PA/whoami" "Authorization: Bearer x" \
        "GET /whoami, no layer, server 2" "http://127.0.0.1:$PB/whoami" "Authorization: Bearer x"
fi

if [ "$WHICH" = all ] || [ "$WHICH" = fair ]; then
    PA=$((PORT + 1))
    PB=$((PORT + 2))
    start_server "$PA" "$BENCH_EXE" --serve "127.0.0.1:$PA" none
    start_server "$PB" "$BENCH_EXE" --serve "127.0.0.1:$PB" layer
    KEY=$(awk '/^KEY / {print $2}' "$SERVER_LOG")
    [ -n "$KEY" ] || { echo "layer server printed no key" >&2; exit 1; }
    compare "fair: same route, no layer vs ApiKeyLayer" \
        "GET /whoami, no layer (key header sent, ignored)" "http://127.0.0.1:$PA/whoami" "Authorization: Bearer $KEY" \
        "GET /whoami behind ApiKeyLayer, valid 52-byte key" "http://127.0.0.1:$PB/whoami" "Authorization: Bearer $KEY"
fi

if [ "$WHICH" = all ] || [ "$WHICH" = example ]; then
    if [ -x "${SERVER_EXE:-}" ]; then
        PE=$((PORT + 3))
        start_server "$PE" "$SERVER_EXE"
        compare "example server: /health vs /whoami" \
            "GET /health (outside the layer, no key)" "http://127.0.0.1:$PE/health" "" \
            "GET /whoami, 40-byte opaque DEMO_USER_KEY (layer + from_fn + usage + JSON)" \
            "http://127.0.0.1:$PE/whoami" "Authorization: Bearer $DEMO_USER_KEY"
    else
        echo "example server did not build (cargo build --release --example server); skipped" >&2
    fi
fi
