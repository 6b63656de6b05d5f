#!/usr/bin/env bash
# shellcheck disable=SC2016 # the backticks in printf formats are markdown
# HTTP load harness: what Mizan costs on top of its web framework, and how it stands against
# other Rust RPC stacks serving the same call, measured with wrk.
#
#   ./scripts/bench-http.sh
#
# Builds examples/bench_server.rs and the demo in release, and the peers (benches/peers: jsonrpsee,
# async-graphql on axum; a crate outside the workspace, with its own lock file and target dir).
# Then for each config and each connection count (32, 256) it starts the server on a free
# loopback port, checks that it answers the call correctly, warms it up, loads it with wrk (fixed
# parameters below), reads its peak RSS (VmHWM) and the CPU time it used per request (from
# /proc/<pid>/stat) and stops it by PID.
# The ctx-redis config gets its own redis-server on a free loopback port (never 6379), stopped
# afterwards. Finally the demo's peak RSS under load is read from /proc.
# Prints one markdown table; logs and wrk outputs go to <target dir>/bench-http/.
#
# Not part of the test suite (scripts/test.sh does not call it): its numbers describe a machine.
# On a machine with two or more CPUs the server (and redis-server) run on CPU 1 and wrk on CPU 0
# (taskset), so that the load generator and the server do not steal each other's core;
# BENCH_PIN=0 turns that off. BENCH_CONNECTIONS="32" (say) runs fewer connection counts,
# BENCH_CONFIGS="mizan-axum async-graphql" fewer configs.
set -euo pipefail
cd "$(dirname "$0")/.."
# The configs' requests (request_of), REFERENCE, the tools, pinning, the build and the process
# helpers (free_port, stop_pid, wait_ready) are shared with bench-instructions.sh.
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

# ---- Fixed parameters ----
read -r -a CONNECTIONS <<<"${BENCH_CONNECTIONS:-32 256}"
WRK_DURATION=10s
WARMUP_DURATION=2s
DEMO_CTX_PATH='/api/mizan/ctx/user/?user_id=1'
# Grouped by the server stack underneath: the hand-written handler, Mizan, then the peer on it.
ALL_CONFIGS=(baseline-tower mizan-tower jsonrpsee baseline-axum mizan-axum async-graphql
    baseline-actix mizan-actix ctx-miss ctx-memory ctx-redis)
read -r -a CONFIGS <<<"${BENCH_CONFIGS:-${ALL_CONFIGS[*]}}"

out=$target_dir/bench-http
mkdir -p "$out"

# ---- Tools ----
install_missing wrk wrk
install_missing redis-server redis-server
install_missing redis-cli redis-tools
install_missing curl curl
install_missing python3 python3
pin_cpus "server (and redis-server)" wrk
build_servers demo

# ---- Processes ----
REDIS_PID=
REDIS_DIR=
REDIS_URL=
cleanup() {
    stop_pid "$SERVER_PID"
    stop_pid "$REDIS_PID"
    [ -z "$REDIS_DIR" ] || rm -rf "$REDIS_DIR"
}
trap cleanup EXIT

start_redis() {
    local port
    port=$(free_port)
    REDIS_DIR=$(mktemp -d)
    "${SERVER_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$REDIS_DIR" --daemonize no >"$out/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
            REDIS_URL="redis://127.0.0.1:$port/"
            return 0
        fi
        sleep 0.1
    done
    echo "redis-server did not start; its log:" >&2
    cat "$out/redis.log" >&2
    return 1
}
stop_redis() {
    stop_pid "$REDIS_PID"
    REDIS_PID=
    [ -z "$REDIS_DIR" ] || rm -rf "$REDIS_DIR"
    REDIS_DIR=
    REDIS_URL=
}

vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# The CPU time the process (all its threads) has used, user and system, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
vm_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start_server CONFIG PORT: starts it in the background (SERVER_PID), pinned; its log in $out.
start_server() {
    local config=$1 port=$2
    server_command "$config" "$port"
    # Only ctx-redis sees a Redis URL (ours); nothing ever reaches a Redis this script did not start.
    env -u MIZAN_REDIS_URL ${REDIS_URL:+MIZAN_REDIS_URL="$REDIS_URL"} \
        "${SERVER_PIN[@]}" "${SERVER_COMMAND[@]}" >"$out/$config.log" 2>&1 &
    SERVER_PID=$!
}

# ---- wrk ----
# One Lua script per request body (long brackets: the bodies are sent byte for byte).
lua_of() { # CONFIG: prints the path of its wrk script, or nothing for a GET
    [ -n "$REQ_BODY" ] || return 0
    local file="$out/request-$1.lua"
    cat >"$file" <<EOF
wrk.method = "POST"
wrk.body = [[$REQ_BODY]]
wrk.headers["Content-Type"] = "application/json"
EOF
    echo "$file"
}

# wrk_run OUTFILE CONNECTIONS DURATION URL [lua]: one run, refused if any response was not 2xx.
wrk_run() {
    local file=$1 connections=$2 duration=$3 url=$4 lua=${5:-}
    local script=()
    [ -z "$lua" ] || script=(-s "$lua")
    "${CLIENT_PIN[@]}" wrk -t1 -c"$connections" -d"$duration" --latency "${script[@]}" "$url" >"$file"
    if grep -q 'Non-2xx' "$file"; then
        echo "wrk saw non-2xx responses from $url:" >&2
        cat "$file" >&2
        return 1
    fi
}

# Latency as wrk prints it (812.00us, 1.20ms, 1.01s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}
rps_of() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
requests_of() { awk '/ requests in / {print $1}' "$1"; }
pct_of() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
socket_errors_of() { grep -h 'Socket errors' "$1" | sed 's/^ *//' || true; }

# ---- The configs, each at each connection count, on a fresh server ----
# Other work on the machine moves every figure here: the load average is part of the report.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS P50 P99 HWM ERRORS CPU
for config in "${CONFIGS[@]}"; do
    request_of "$config"
    lua=$(lua_of "$config")
    for connections in "${CONNECTIONS[@]}"; do
        key="$config/$connections"
        if [ "$config" = ctx-redis ]; then start_redis; fi
        port=$(free_port)
        url="http://127.0.0.1:$port"
        step "$config on $url, $connections connections"
        start_server "$config" "$port"
        # Ready once it answers correctly, within 15 s, each request within 2 s.
        if ! wait_ready "$url$REQ_PATH" 15 2; then
            echo "$config: the server's log:" >&2
            cat "$out/$config.log" >&2
            exit 1
        fi
        wrk_run /dev/null "$connections" "$WARMUP_DURATION" "$url$REQ_PATH" "$lua"
        ticks_before=$(cpu_ticks "$SERVER_PID")
        wrk_run "$out/$config-c$connections.wrk" "$connections" "$WRK_DURATION" "$url$REQ_PATH" "$lua"
        ticks=$(($(cpu_ticks "$SERVER_PID") - ticks_before))
        HWM[$key]=$(vm_hwm_kib "$SERVER_PID")
        stop_pid "$SERVER_PID"
        SERVER_PID=
        if [ "$config" = ctx-redis ]; then stop_redis; fi
        file="$out/$config-c$connections.wrk"
        RPS[$key]=$(rps_of "$file")
        P50[$key]=$(to_ms "$(pct_of "$file" 50%)")
        P99[$key]=$(to_ms "$(pct_of "$file" 99%)")
        ERRORS[$key]=$(socket_errors_of "$file")
        CPU[$key]=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$(requests_of "$file")" \
            'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
        printf '%s: %s req/s, p50 %s ms, p99 %s ms, %s µs of server CPU per request %s\n' "$key" \
            "${RPS[$key]}" "${P50[$key]}" "${P99[$key]}" "${CPU[$key]}" \
            "${ERRORS[$key]:+(${ERRORS[$key]})}" >&2
    done
done

# ---- The demo's peak RSS under load (32 connections) ----
step "the demo under load (peak RSS)"
port=$(free_port)
url="http://127.0.0.1:$port"
env -u MIZAN_REDIS_URL MIZAN_ADDR="127.0.0.1:$port" "${SERVER_PIN[@]}" "$target_dir/release/examples/demo" \
    >"$out/demo.log" 2>&1 &
SERVER_PID=$!
REQ_METHOD=GET REQ_BODY='' REQ_EXPECT='{'
wait_ready "$url$DEMO_CTX_PATH" 15 2
demo_idle_rss=$(vm_rss_kib "$SERVER_PID")
wrk_run "$out/demo-ctx.wrk" 32 "$WRK_DURATION" "$url$DEMO_CTX_PATH"
request_of mizan-axum
wrk_run "$out/demo-echo.wrk" 32 "$WRK_DURATION" "$url$CALL_PATH" "$(lua_of demo)"
demo_hwm=$(vm_hwm_kib "$SERVER_PID")
demo_rss=$(vm_rss_kib "$SERVER_PID")
stop_pid "$SERVER_PID"
SERVER_PID=

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- Report ----
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
    echo "wrk -t1 -c<connections> -d$WRK_DURATION --latency after a warm-up of the same for $WARMUP_DURATION,"
    echo "on a fresh server for each row; pinning: $pinning;"
    echo "server CPU: the user and system time the server process used during the measured run,"
    echo "over the requests wrk completed (from /proc/<pid>/stat);"
    echo "load average (1, 5, 15 min) $load_before before, $load_after after."
    echo "echo: POST $CALL_PATH $ECHO_BODY (Mizan, hand-written);"
    echo "POST $JSONRPC_PATH $JSONRPC_BODY (jsonrpsee);"
    echo "POST $GRAPHQL_PATH $GRAPHQL_BODY (async-graphql); ctx: GET $CTX_PATH"
    echo
    echo "| config | conns | req/s | p50 (ms) | p99 (ms) | × hand-written | server CPU (µs/req) | peak RSS (MiB) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for config in "${CONFIGS[@]}"; do
        for connections in "${CONNECTIONS[@]}"; do
            key="$config/$connections"
            ratio=""
            reference=${REFERENCE[$config]:-}
            if [ -n "$reference" ] && [ -n "${RPS[$reference/$connections]:-}" ]; then
                ratio=$(awk -v a="${RPS[$key]}" -v b="${RPS[$reference/$connections]}" \
                    'BEGIN { printf "%.2f", a / b }')
            fi
            printf '| `%s` | %s | %.0f | %s | %s | %s | %s | %s |\n' "$config" "$connections" \
                "${RPS[$key]}" "${P50[$key]}" "${P99[$key]}" "$ratio" "${CPU[$key]}" \
                "$(mib "${HWM[$key]}")"
        done
    done
    for key in "${!ERRORS[@]}"; do
        [ -z "${ERRORS[$key]}" ] || echo "- $key: ${ERRORS[$key]}"
    done
    echo
    echo "Demo (axum adapter, memory cache, its middleware), 32 connections, $WRK_DURATION on each:"
    printf -- '- `GET %s`: %.0f req/s, p99 %s ms\n' "$DEMO_CTX_PATH" "$(rps_of "$out/demo-ctx.wrk")" \
        "$(to_ms "$(pct_of "$out/demo-ctx.wrk" 99%)")"
    printf -- '- `POST %s` echo: %.0f req/s, p99 %s ms\n' "$CALL_PATH" "$(rps_of "$out/demo-echo.wrk")" \
        "$(to_ms "$(pct_of "$out/demo-echo.wrk" 99%)")"
    echo "- RSS: $(mib "$demo_idle_rss") MiB idle after start, $(mib "$demo_rss") MiB after the load;" \
        "peak (VmHWM) $(mib "$demo_hwm") MiB"
} | tee "$out/results.md"
