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
#   "judge": issue 9's target in one comparison. Six servers measured in RUNS rounds, each round in a rotated order,
#   so the A/A control and the fair ratio come from the same minutes: two without the layer (the controls), one
#   behind ApiKeyLayer applied with `Router::layer` (as in "fair"), one with the layer around the whole router
#   (`outer`), and two references, the hand-written minimal pipeline (`minimal`: the required parts only, applied
#   with `Router::layer`) and a layer that does nothing (`noop`: axum's cost of wrapping a route in a layer). Per
#   round: A/A = none2 / none1, and each other server over the geometric mean of the two controls. The target (layer
#   req/s >= 0.95 of without) is judged only when the median A/A reads 0.98-1.02; otherwise the run says so.
#
# Prints requests/s, p50 and p99 per run, the median of each side, the B/A ratio of the medians and the median of
# the B/A ratios of neighbouring runs (drift between pairs cancels out).
#
# Usage: benches/load.sh [aa|fair|example|judge|all]      (default: all; `all` does not include `judge`)
# Env:   RUNS=5 DURATION=5 CONNS=16 PORT=38080 SERVER_CPU=0 LOADGEN_CPU=1 RUST_LOG=warn
#        JUDGE_SERVERS="layer outer minimal noop" (the servers `judge` measures besides its two controls)
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

cpu_ticks() { # pid -> user + system CPU time of the process so far, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

judge() { # name=pid=url ...: the first two are the identical controls, the one named `layer` is judged
    local names=() pids=() urls=() header="Authorization: Bearer $KEY" n rest
    for arg in "$@"; do
        names+=("${arg%%=*}")
        rest=${arg#*=}
        pids+=("${rest%%=*}")
        urls+=("${rest#*=}")
    done
    n=${#names[@]}
    local f=() hz
    hz=$(getconf CLK_TCK)
    for _ in "${names[@]}"; do f+=("$(mktemp)"); done
    echo
    echo "== judge: $GEN, $CONNS connections, 1 thread, ${DURATION}s x $n servers x $RUNS rounds, rotated order;" \
        "server on CPU $SERVER_CPU, $GEN on CPU $LOADGEN_CPU"
    echo "   GET /whoami on every server, the same valid key sent to all; servers: ${names[*]}"
    echo "   cpu us/req: the server process's user + system CPU time over the run (/proc/PID/stat) per request served"
    for s in $(seq 0 $((n - 1))); do DURATION=1 one_run "${urls[$s]}" "$header" >/dev/null; done
    printf '   %-5s %-8s %12s %10s %10s %12s\n' round server "req/s" "p50 us" "p99 us" "cpu us/req"
    for i in $(seq 1 "$RUNS"); do
        for k in $(seq 0 $((n - 1))); do
            local s=$(((i + k) % n)) r t0 t1 cpu
            t0=$(cpu_ticks "${pids[$s]}")
            r=$(one_run "${urls[$s]}" "$header")
            t1=$(cpu_ticks "${pids[$s]}")
            cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v rps="${r%% *}" -v secs="$DURATION" \
                'BEGIN {print d / hz / (rps * secs) * 1e6}')
            echo "$r $cpu" >>"${f[$s]}"
            # shellcheck disable=SC2086
            printf '   %-5s %-8s %12.0f %10.1f %10.1f %12.2f\n' "$i" "${names[$s]}" $r "$cpu"
        done
    done
    # Per round: each server's req/s over the geometric mean of the two controls of the same round, and its CPU time
    # per request over theirs; the medians over rounds. The A/A control is the second control over the first.
    local aa aa_cpu verdict=""
    aa=$(paste -d' ' "${f[0]}" "${f[1]}" | awk '{print $5 / $1}' | median)
    aa_cpu=$(paste -d' ' "${f[0]}" "${f[1]}" | awk '{print $8 / $4}' | median)
    printf '   A/A control (%s / %s, median of rounds): req/s %.3f, cpu per request %.3f\n' \
        "${names[1]}" "${names[0]}" "$aa" "$aa_cpu"
    for s in $(seq 2 $((n - 1))); do
        local ratio extra cpu_ratio cpu_extra
        ratio=$(paste -d' ' "${f[0]}" "${f[1]}" "${f[$s]}" | awk '{print $9 / sqrt($1 * $5)}' | median)
        extra=$(paste -d' ' "${f[0]}" "${f[1]}" "${f[$s]}" | awk '{print 1e9 / $9 - 1e9 / sqrt($1 * $5)}' | median)
        cpu_ratio=$(paste -d' ' "${f[0]}" "${f[1]}" "${f[$s]}" | awk '{print $12 / sqrt($4 * $8)}' | median)
        cpu_extra=$(paste -d' ' "${f[0]}" "${f[1]}" "${f[$s]}" | awk '{print ($12 - sqrt($4 * $8)) * 1000}' | median)
        printf '   %-8s over the controls (medians of rounds): req/s %.3f (%.0f ns per request),' \
            "${names[$s]}" "$ratio" "$extra"
        printf ' cpu per request %.3f (%+.0f ns)\n' "$cpu_ratio" "$cpu_extra"
        [ "${names[$s]}" = layer ] && verdict=$ratio
    done
    awk -v aa="$aa" -v fair="$verdict" 'BEGIN {
        if (fair == "") exit
        if (aa >= 0.98 && aa <= 1.02)
            printf "   issue 9 target: layer req/s >= 0.95 of without, A/A control in 0.98-1.02: %s\n",
                (fair >= 0.95) ? "PASS" : "FAIL"
        else
            printf "   issue 9 target: not judged (the A/A control reads outside 0.98-1.02)\n"
    }'
    rm -f "${f[@]}"
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

if [ "$WHICH" = judge ]; then
    # The two controls, the layer (`Router::layer`, as the fair comparison), the layer around the whole router, and
    # two references: the minimal pipeline (the floor of any implementation) and a layer that does nothing (axum's
    # cost of wrapping a route in any layer).
    JUDGED=(none1:none none2:none)
    for mode in ${JUDGE_SERVERS:-layer outer minimal noop}; do JUDGED+=("$mode:$mode"); done
    ARGS=()
    KEY=
    for j in "${!JUDGED[@]}"; do
        name=${JUDGED[$j]%%:*}
        mode=${JUDGED[$j]#*:}
        port=$((PORT + 6 + j))
        # The first server makes the key; the others import it, so every server accepts the same request.
        SERVE_KEY=$KEY start_server "$port" "$BENCH_EXE" --serve "127.0.0.1:$port" "$mode"
        if [ -z "$KEY" ]; then
            KEY=$(awk '/^KEY / {print $2}' "$SERVER_LOG")
            [ -n "$KEY" ] || { echo "server $name printed no key" >&2; exit 1; }
        fi
        ARGS+=("$name=${PIDS[-1]}=http://127.0.0.1:$port/whoami")
    done
    judge "${ARGS[@]}"
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
