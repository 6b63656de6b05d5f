#!/usr/bin/env bash
# Soak test: the demo on its own Redis under mixed traffic for a bounded time.
#
#   ./scripts/soak.sh            # 120 s; SOAK_SECONDS=600 for longer
#
# Starts a redis-server on a free loopback port and the demo (release build) on it, logs in
# once for a bearer token, then loads the demo with wrk and scripts/soak.lua: context reads,
# pages (server-rendered when Node is present), overwriting mutations, uploads (a guarded one
# too) and bad requests, at random. Reports the answers by class (5xx must be 0), RSS after
# warm-up and at the end, and p50/p99. Exits non-zero on any 5xx or on RSS growth beyond
# SOAK_MAX_GROWTH_MIB (default 64). Not part of scripts/test.sh: it takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TOTAL=${SOAK_SECONDS:-120}
MAX_GROWTH_MIB=${SOAK_MAX_GROWTH_MIB:-64}
CONNECTIONS=${SOAK_CONNECTIONS:-32}
out=target/soak
mkdir -p "$out"

for tool in wrk redis-server curl python3; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    fi
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

cargo build --release --quiet --example demo

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 &
redis_pid=$!
demo_port=$(free_port)
MIZAN_REDIS_URL="redis://127.0.0.1:$redis_port" MIZAN_ADDR="127.0.0.1:$demo_port" \
    ./target/release/examples/demo >"$out/demo.log" 2>&1 &
demo_pid=$!
trap 'kill $demo_pid $redis_pid 2>/dev/null; wait $demo_pid $redis_pid 2>/dev/null || true' EXIT
url="http://127.0.0.1:$demo_port"
for _ in $(seq 1 300); do
    curl -sf "$url/api/mizan/session/" >/dev/null && break
    sleep 0.1
done

token=$(curl -sf -X POST "$url/api/mizan/call/" -H 'content-type: application/json' \
    -d '{"fn":"login","args":{"username":"bob","password":"bob"}}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["access"])')
export SOAK_TOKEN=$token

# Warm-up (caches, SSR workers, allocator), then the measured run. The token lives 300 s: the
# guarded upload then answers 401, which the run counts as a 4xx, as it should.
wrk -t2 -c"$CONNECTIONS" -d10s -s scripts/soak.lua "$url" >"$out/warmup.txt"
rss_start=$(rss_mib $demo_pid)
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_TOTAL}s" --latency -s scripts/soak.lua "$url" | tee "$out/wrk.txt"
rss_end=$(rss_mib $demo_pid)
kill -0 $demo_pid  # still serving

line=$(grep '^SOAK requests' "$out/wrk.txt")
server_errors=$(sed -E 's/.* 5xx=([0-9]+).*/\1/' <<<"$line")
growth=$(python3 -c "print(round($rss_end - $rss_start, 1))")
echo
echo "soak: ${SECONDS_TOTAL} s, $CONNECTIONS connections"
echo "  $line"
grep '^SOAK p50' "$out/wrk.txt" | sed 's/^/  /'
echo "  RSS after warm-up ${rss_start} MiB, at the end ${rss_end} MiB (growth ${growth} MiB, bound ${MAX_GROWTH_MIB} MiB)"
status=0
[ "$server_errors" = 0 ] || { echo "FAIL: $server_errors answers were 5xx (see $out/demo.log)"; status=1; }
python3 -c "import sys; sys.exit(0 if $growth <= $MAX_GROWTH_MIB else 1)" ||
    { echo "FAIL: RSS grew by more than ${MAX_GROWTH_MIB} MiB"; status=1; }
exit $status
