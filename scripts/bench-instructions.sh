#!/usr/bin/env bash
# shellcheck disable=SC2016 # the backticks in printf formats are markdown
# Deterministic cost per request: user-space instructions per call, counted by callgrind.
#
#   ./scripts/bench-instructions.sh
#
# Wall-clock load figures (scripts/bench-http.sh) move with whatever else the machine runs;
# instruction counts barely do. For each config this script starts the server under
# `valgrind --tool=callgrind` on a free loopback port, waits until it answers the call correctly,
# sends N requests one at a time on one keep-alive connection from a small Python client (not
# under valgrind), stops the server by PID (SIGTERM; callgrind writes its totals at exit) and
# reads the total instruction count Ir. It does that once with N requests and once with 2N, and
# reports (Ir(2N) - Ir(N)) / N: startup, the readiness request, connection setup, the first N
# requests (warm-up) and shutdown appear in both runs and cancel. Each run is made RUNS times and
# the smallest total kept: what varies between runs is work paced by the clock (timers, the cached
# Date header, which a slower run repeats more often) and whether a worker went to sleep between
# two requests, both of which mostly add instructions. Repeated runs of a config give per-request
# figures within about 1 % of each other, 4 % at worst; the report shows each run's figure.
#
# Configs: the hand-written handler on tower (hyper), axum and actix-web, Mizan on each, the
# peers (jsonrpsee; async-graphql on axum; benches/peers), and Mizan's context fetch without a
# cache and on the memory cache (ctx-miss, ctx-memory). ctx-redis is left out: its cost is a
# Redis round trip, which instructions do not show.
#
# The server runs on CPU 1 and the client on CPU 0 (taskset; BENCH_PIN=0 turns it off), so
# Tokio and actix-web start one worker, as in bench-http.sh. BENCH_INSTR_N (default 1000) sets N,
# BENCH_INSTR_RUNS (default 2) the number of runs of each count;
# BENCH_CONFIGS="mizan-axum jsonrpsee" (say) runs fewer configs. Two to four minutes once built.
# Callgrind outputs and logs go to <target dir>/bench-instructions/. Never part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

N=${BENCH_INSTR_N:-1000}
RUNS=${BENCH_INSTR_RUNS:-2}
ALL_CONFIGS=(baseline-tower mizan-tower jsonrpsee baseline-axum mizan-axum async-graphql
    baseline-actix mizan-actix ctx-miss ctx-memory)
read -r -a CONFIGS <<<"${BENCH_CONFIGS:-${ALL_CONFIGS[*]}}"

out=$target_dir/bench-instructions
mkdir -p "$out"
: >"$out/runs.txt"

install_missing valgrind valgrind
install_missing curl curl
install_missing python3 python3
pin_cpus server client
# shellcheck disable=SC2119 # bench_server and the peers only: no other example
build_servers
trap 'stop_pid "$SERVER_PID"' EXIT

# The client: COUNT requests, one at a time, on one keep-alive connection; fails on any answer
# that is not a 200 with the expected fragment.
CLIENT='
import http.client, sys
port, method, path, body, expect, count = sys.argv[1:7]
body = body.encode() or None
headers = {"Content-Type": "application/json"} if body else {}
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
for i in range(int(count)):
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200 or expect.encode() not in data:
        sys.exit(f"request {i}: {response.status} {data[:200]!r}")
conn.close()
'

# instructions CONFIG COUNT: sets IR to the server's total Ir for startup, the readiness request,
# COUNT requests and shutdown.
instructions() {
    local config=$1 count=$2 port file
    port=$(free_port)
    file="$out/$config-$count.callgrind"
    rm -f "$file"
    server_command "$config" "$port"
    env -u MIZAN_REDIS_URL "${SERVER_PIN[@]}" valgrind --tool=callgrind --callgrind-out-file="$file" \
        "${SERVER_COMMAND[@]}" >"$out/$config-$count.log" 2>&1 &
    SERVER_PID=$!
    # Ready once it answers correctly, within 60 s (valgrind starts slowly). A request sent to a
    # bound port is answered, however slowly: each may take 60 s, never timed out and retried, or
    # the two runs would not see the same number of requests.
    if ! wait_ready "http://127.0.0.1:$port$REQ_PATH" 60 60 ||
        ! "${CLIENT_PIN[@]}" python3 -c "$CLIENT" "$port" "$REQ_METHOD" "$REQ_PATH" "$REQ_BODY" \
            "$REQ_EXPECT" "$count"; then
        echo "$config: the run of $count requests failed; the server's log:" >&2
        stop_pid "$SERVER_PID"
        cat "$out/$config-$count.log" >&2
        return 1
    fi
    stop_pid "$SERVER_PID" 60
    SERVER_PID=
    IR=$(awk '/^totals:/ {print $2; exit}' "$file" 2>/dev/null || true)
    if [ -z "$IR" ]; then
        echo "$config: callgrind wrote no totals; its log:" >&2
        cat "$out/$config-$count.log" >&2
        return 1
    fi
}

declare -A PER_REQUEST IR_N IR_2N RANGE
for config in "${CONFIGS[@]}"; do
    request_of "$config"
    step "$config: $N then $((2 * N)) requests under callgrind, $RUNS runs of each"
    IR_N[$config]=
    IR_2N[$config]=
    low=
    high=
    for run in $(seq 1 "$RUNS"); do
        instructions "$config" "$N"
        ir_n=$IR
        instructions "$config" $((2 * N))
        ir_2n=$IR
        per_run=$(((ir_2n - ir_n) / N))
        echo "$config run $run: Ir($N) $ir_n, Ir($((2 * N))) $ir_2n, $per_run per request" |
            tee -a "$out/runs.txt" >&2
        if [ -z "${IR_N[$config]}" ] || [ "$ir_n" -lt "${IR_N[$config]}" ]; then IR_N[$config]=$ir_n; fi
        if [ -z "${IR_2N[$config]}" ] || [ "$ir_2n" -lt "${IR_2N[$config]}" ]; then IR_2N[$config]=$ir_2n; fi
        if [ -z "$low" ] || [ "$per_run" -lt "$low" ]; then low=$per_run; fi
        if [ -z "$high" ] || [ "$per_run" -gt "$high" ]; then high=$per_run; fi
    done
    PER_REQUEST[$config]=$(((IR_2N[$config] - IR_N[$config]) / N))
    RANGE[$config]="$low–$high"
    printf '%s: Ir(N) %s, Ir(2N) %s, %s instructions per request (runs: %s)\n' "$config" \
        "${IR_N[$config]}" "${IR_2N[$config]}" "${PER_REQUEST[$config]}" "${RANGE[$config]}" >&2
done

thousands() { awk -v n="$1" 'BEGIN { printf "%.1f k", n / 1000 }'; }
{
    echo "valgrind --tool=callgrind, user-space instructions (Ir) of the server process, all threads;"
    echo "(Ir(2N) - Ir(N)) / N with N = $N sequential requests on one keep-alive connection,"
    echo "each Ir the least of $RUNS runs (the last column: the figure of each run, N and 2N paired);"
    echo "pinning: $pinning."
    echo
    echo "| config | instructions per request | × hand-written (lower is better) | Ir(N) | Ir(2N) | runs |"
    echo "|---|---:|---:|---:|---:|---:|"
    for config in "${CONFIGS[@]}"; do
        ratio=""
        reference=${REFERENCE[$config]:-}
        if [ -n "$reference" ] && [ -n "${PER_REQUEST[$reference]:-}" ]; then
            ratio=$(awk -v a="${PER_REQUEST[$config]}" -v b="${PER_REQUEST[$reference]}" \
                'BEGIN { printf "%.2f", a / b }')
        fi
        printf '| `%s` | %s | %s | %s | %s | %s |\n' "$config" "$(thousands "${PER_REQUEST[$config]}")" \
            "$ratio" "${IR_N[$config]}" "${IR_2N[$config]}" "${RANGE[$config]}"
    done
} | tee "$out/results.md"
