#!/usr/bin/env bash
# User-space instructions per request of one bench_server config, counted with callgrind.
#
#   benches/callgrind-http.sh <config> [requests] [bench_server binary]
#   benches/callgrind-http.sh mizan-actix 2000
#
# Starts `bench_server <config>` under `valgrind --tool=callgrind` on a free loopback port
# (pinned to one CPU, so tokio and actix run one worker, as in scripts/bench-http.sh), sends
# 200 warm-up requests over one keep-alive connection, zeroes the counters
# (`callgrind_control --zero`), sends N more requests one at a time on the same connection,
# dumps, and prints the instructions of the dump divided by N. The request is the echo call of
# scripts/bench-http.sh (`ctx-*` configs: the context fetch). The dump stays in
# target/callgrind/<config>.out for `callgrind_annotate`.
#
# The binary defaults to target/release/examples/bench_server; build it with line tables so
# that the annotation names functions and lines:
#
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --example bench_server
#
# Not part of the test suite: the count describes a build, not a machine, and repeats within
# about 0.1 % between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

config=${1:?usage: benches/callgrind-http.sh <config> [requests] [binary]}
requests=${2:-2000}
bin=${3:-$target_dir/release/examples/bench_server}
out=$target_dir/callgrind
mkdir -p "$out"
request_of "$config"

port=$(free_port)
rm -f "$out/$config.out"*
taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out/$config.out" \
    "$bin" "$config" "127.0.0.1:$port" >"$out/$config.log" 2>&1 &
pid=$!
trap 'stop_pid "$pid"' EXIT

python3 - "$port" "$requests" "$pid" "$REQ_METHOD" "$REQ_PATH" "$REQ_BODY" <<'EOF'
import http.client, subprocess, sys, time

port, n, pid, method, path, body = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
headers = {"Content-Type": "application/json"} if body else {}
body = body.encode() or None

deadline = time.monotonic() + 120
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("bench_server did not start")
        time.sleep(0.2)

def send(count):
    for _ in range(count):
        conn.request(method, path, body=body, headers=headers)
        reply = conn.getresponse()
        reply.read()
        if reply.status != 200:
            sys.exit(f"status {reply.status}")

send(200)
subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
send(n)
subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
EOF

# The dump written by --dump is the file with the highest part number.
file=$(ls -1 "$out/$config.out".* | sort -t. -k3 -n | tail -1)
total=$(awk '/^summary:/ {print $2}' "$file")
awk -v t="$total" -v n="$requests" -v c="$config" \
    'BEGIN { printf "%s: %d instructions for %d requests = %.1f per request\n", c, t, n, t / n }'
