#!/usr/bin/env bash
# Server-side instructions per request, with and without the layer: the serve bench binary (benches/serve.rs, the
# "fair" pair of benches/load.sh) under `valgrind --tool=callgrind`, 1 000 warm-up requests, counters zeroed, then
# N requests over one keep-alive connection (a Python client), counters dumped. Instruction counts do not move with
# machine load, so the difference is exact where the load test's req/s is noisy. Valgrind does not emulate SHA-NI:
# SHA-256 runs sha2's portable code here (about 3 400 instructions a request), far more than on the hardware.
#
# Usage: scripts/server_instructions.sh [N]        (default 10000)
# Env:   MODES (default "none layer"; any of the modes of benches/serve.rs: none layer outer minimal noop),
#        KEEP=1 keeps the callgrind outputs
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
N=${1:-10000}
PORT=${PORT:-38219}
exe=$(cargo bench --bench serve --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/serve-[^"]*"' | sed 's/"executable":"//; s/"$//' | tail -n 1)
[ -x "$exe" ] || { echo "could not build benches/serve.rs" >&2; exit 1; }
out=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "keeping callgrind outputs in $out" >&2 || trap 'rm -rf "$out"' EXIT
cat > "$out/client.py" <<'PY'
import http.client, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", "/whoami", headers={"Authorization": "Bearer " + key})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
for mode in ${MODES:-none layer}; do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$mode" "$exe" --serve "127.0.0.1:$PORT" "$mode" \
        > "$out/$mode.log" 2>&1 &
    vp=$!
    for _ in $(seq 1 120); do grep -q LISTENING "$out/$mode.log" && break; sleep 1; done
    key=$(grep '^KEY ' "$out/$mode.log" | awk '{print $2}')
    python3 "$out/client.py" "$PORT" "$key" 1000
    callgrind_control -z "$vp" >/dev/null
    python3 "$out/client.py" "$PORT" "$key" "$N"
    callgrind_control -d "$vp" >/dev/null
    sleep 1
    kill -9 "$vp" 2>/dev/null || true
    wait "$vp" 2>/dev/null || true
    total=$(callgrind_annotate "$out/cg.$mode".* 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
    sha=$(callgrind_annotate --threshold=100 --inclusive=no --auto=no "$out/cg.$mode".* 2>/dev/null |
        awk '/sha2::sha256::compress256/ {gsub(",","",$1); s+=$1} END {print s+0}')
    echo "$mode: $((total / N)) instructions per request, of which SHA-256 (portable) $((sha / N))"
done
