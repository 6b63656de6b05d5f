#!/usr/bin/env bash
# HTTP load harness: what Mizan costs on top of its web framework, measured with wrk.
#
#   ./scripts/bench-http.sh
#
# Builds examples/bench_server.rs and the demo in release, then for each config of bench_server
# starts it on a free loopback port, warms it up, loads it with wrk (fixed parameters below),
# and stops it. The ctx-redis config gets its own redis-server on a free loopback port (never
# 6379), stopped afterwards. Finally the demo's peak RSS under load is read from /proc.
# Prints a markdown table; logs and wrk outputs go to target/bench-http/.
#
# Not part of the test suite (scripts/test.sh does not call it): its numbers describe a machine.
# On a machine with two or more CPUs the server (and redis-server) run on CPU 1 and wrk on CPU 0
# (taskset), so that the load generator and the server do not steal each other's core;
# BENCH_PIN=0 turns that off.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- Fixed parameters ----
WRK_ARGS=(-t1 -c32 -d10s --latency)
WARMUP_ARGS=(-t1 -c32 -d2s)
ECHO_BODY='{"fn":"echo","args":{"message":"hi"}}'
CTX_PATH='/api/mizan/ctx/profile/?user_id=5'
CALL_PATH='/api/mizan/call/'
DEMO_CTX_PATH='/api/mizan/ctx/user/?user_id=1'
# Baselines first, then the Mizan config of the same framework.
CONFIGS=(baseline-tower mizan-tower baseline-axum mizan-axum baseline-actix mizan-actix
    ctx-miss ctx-memory ctx-redis)

out=target/bench-http
mkdir -p "$out"
step() { printf '\n==> %s\n' "$*" >&2; }

# ---- Tools ----
install_missing() { # command package
    if ! command -v "$1" >/dev/null; then
        step "installing $2"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
}
install_missing wrk wrk
install_missing redis-server redis-server
install_missing redis-cli redis-tools
install_missing curl curl
install_missing python3 python3

if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 1)
    WRK_PIN=(taskset -c 0)
    pinning="server (and redis-server) on CPU 1, wrk on CPU 0 (taskset)"
else
    SERVER_PIN=()
    WRK_PIN=()
    pinning="none"
fi

step "building bench_server and the demo (release)"
cargo build --release --quiet --example bench_server --example demo
bin=target/release/examples

# ---- Processes ----
SERVER_PID=
REDIS_PID=
REDIS_DIR=
REDIS_URL=
stop_pid() { # pid: SIGTERM, then SIGKILL after 5 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$SERVER_PID"
    stop_pid "$REDIS_PID"
    [ -z "$REDIS_DIR" ] || rm -rf "$REDIS_DIR"
}
trap cleanup EXIT

free_port() {
    local port
    while :; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        [ "$port" != 6379 ] && break
    done
    echo "$port"
}

# Waits until `curl ARGS...` succeeds (10 s at most).
wait_until() {
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null --max-time 1 "$@" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "no answer from: curl $*" >&2
    return 1
}

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

vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
vm_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---- wrk ----
post_lua="$out/post-echo.lua"
cat >"$post_lua" <<EOF
wrk.method = "POST"
wrk.body = '$ECHO_BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

# wrk_run OUTFILE URL [lua]: one measured run, refused if any response was not 2xx.
wrk_run() {
    local file=$1 url=$2 lua=${3:-}
    local script=()
    [ -z "$lua" ] || script=(-s "$lua")
    "${WRK_PIN[@]}" wrk "${WRK_ARGS[@]}" "${script[@]}" "$url" >"$file"
    if grep -q 'Non-2xx' "$file"; then
        echo "wrk saw non-2xx responses from $url:" >&2
        cat "$file" >&2
        return 1
    fi
}
wrk_warmup() { # URL [lua]
    local script=()
    [ -z "${2:-}" ] || script=(-s "$2")
    "${WRK_PIN[@]}" wrk "${WARMUP_ARGS[@]}" "${script[@]}" "$1" >/dev/null
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
pct_of() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
socket_errors_of() { grep -h 'Socket errors' "$1" | sed 's/^ *//' || true; }

# ---- The configs ----
declare -A RPS P50 P99 HWM
for config in "${CONFIGS[@]}"; do
    if [ "$config" = ctx-redis ]; then start_redis; fi
    port=$(free_port)
    url="http://127.0.0.1:$port"
    step "$config on $url"
    # Only ctx-redis sees a Redis URL (ours); nothing ever reaches a Redis this script did not start.
    env -u MIZAN_REDIS_URL ${REDIS_URL:+MIZAN_REDIS_URL="$REDIS_URL"} \
        "${SERVER_PIN[@]}" "$bin/bench_server" "$config" "127.0.0.1:$port" >"$out/$config.log" 2>&1 &
    SERVER_PID=$!
    case $config in
    ctx-*)
        target="$url$CTX_PATH"
        wait_until "$target"
        wrk_warmup "$target"
        wrk_run "$out/$config.wrk" "$target"
        ;;
    *)
        target="$url$CALL_PATH"
        wait_until -X POST -H 'content-type: application/json' -d "$ECHO_BODY" "$target"
        wrk_warmup "$target" "$post_lua"
        wrk_run "$out/$config.wrk" "$target" "$post_lua"
        ;;
    esac
    HWM[$config]=$(vm_hwm_kib "$SERVER_PID")
    stop_pid "$SERVER_PID"
    SERVER_PID=
    if [ "$config" = ctx-redis ]; then
        stop_pid "$REDIS_PID"
        REDIS_PID=
        rm -rf "$REDIS_DIR"
        REDIS_DIR=
        REDIS_URL=
    fi
    RPS[$config]=$(rps_of "$out/$config.wrk")
    P50[$config]=$(to_ms "$(pct_of "$out/$config.wrk" 50%)")
    P99[$config]=$(to_ms "$(pct_of "$out/$config.wrk" 99%)")
    errors=$(socket_errors_of "$out/$config.wrk")
    printf '%s: %s req/s, p50 %s ms, p99 %s ms %s\n' "$config" "${RPS[$config]}" \
        "${P50[$config]}" "${P99[$config]}" "${errors:+($errors)}" >&2
done

# ---- The demo's peak RSS under load ----
step "the demo under load (peak RSS)"
port=$(free_port)
url="http://127.0.0.1:$port"
env -u MIZAN_REDIS_URL MIZAN_ADDR="127.0.0.1:$port" "${SERVER_PIN[@]}" "$bin/demo" >"$out/demo.log" 2>&1 &
SERVER_PID=$!
wait_until "$url$DEMO_CTX_PATH"
demo_idle_rss=$(vm_rss_kib "$SERVER_PID")
wrk_run "$out/demo-ctx.wrk" "$url$DEMO_CTX_PATH"
wrk_run "$out/demo-echo.wrk" "$url$CALL_PATH" "$post_lua"
demo_hwm=$(vm_hwm_kib "$SERVER_PID")
demo_rss=$(vm_rss_kib "$SERVER_PID")
stop_pid "$SERVER_PID"
SERVER_PID=

# ---- Report ----
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
    echo "wrk ${WRK_ARGS[*]}, after a warm-up of wrk ${WARMUP_ARGS[*]}; echo: POST $CALL_PATH $ECHO_BODY;"
    echo "ctx: GET $CTX_PATH; pinning: $pinning"
    echo
    echo "| config | req/s | p50 (ms) | p99 (ms) | × baseline | peak RSS (MiB) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for config in "${CONFIGS[@]}"; do
        ratio=""
        case $config in
        mizan-*)
            base=${RPS[baseline-${config#mizan-}]}
            ratio=$(awk -v a="${RPS[$config]}" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
            ;;
        esac
        printf '| `%s` | %.0f | %s | %s | %s | %s |\n' "$config" "${RPS[$config]}" \
            "${P50[$config]}" "${P99[$config]}" "$ratio" "$(mib "${HWM[$config]}")"
    done
    echo
    echo "Demo (axum adapter, memory cache, its middleware), 10 s on each:"
    printf -- '- `GET %s`: %.0f req/s, p99 %s ms\n' "$DEMO_CTX_PATH" "$(rps_of "$out/demo-ctx.wrk")" \
        "$(to_ms "$(pct_of "$out/demo-ctx.wrk" 99%)")"
    printf -- '- `POST %s` echo: %.0f req/s, p99 %s ms\n' "$CALL_PATH" "$(rps_of "$out/demo-echo.wrk")" \
        "$(to_ms "$(pct_of "$out/demo-echo.wrk" 99%)")"
    echo "- RSS: $(mib "$demo_idle_rss") MiB idle after start, $(mib "$demo_rss") MiB after the load;" \
        "peak (VmHWM) $(mib "$demo_hwm") MiB"
} | tee "$out/results.md"
