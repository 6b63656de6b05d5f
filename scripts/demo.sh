# Sourced by the peer scripts: `start_demo` builds the demo, starts it on a free loopback port
# with fresh distinct secrets, waits until it answers, and sets DEMO_URL; every demo started is
# stopped when the calling script exits (start several with different settings, e.g.
# `MIZAN_SSR=off start_demo`).

start_demo() {
    cargo build --quiet --example demo
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export JWT_PRIVATE_KEY="peer-jwt-secret-$(date +%s%N)-0123456789"
    export MIZAN_CACHE_SECRET="peer-cache-secret-$(date +%s%N)-0123456789"
    export MIZAN_MWT_SECRET="peer-mwt-secret-$(date +%s%N)-0123456789"
    mkdir -p target
    MIZAN_ADDR="127.0.0.1:$port" "${CARGO_TARGET_DIR:-target}/debug/examples/demo" >"target/demo-$port.log" 2>&1 &
    DEMO_PID=$!
    DEMO_PIDS="${DEMO_PIDS:-} $DEMO_PID"
    trap 'kill $DEMO_PIDS 2>/dev/null; wait $DEMO_PIDS 2>/dev/null || true' EXIT
    DEMO_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$DEMO_URL/api/mizan/session/', timeout=1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "the demo did not start; its log:" >&2
    cat "target/demo-$port.log" >&2
    return 1
}

# `npm ci` in directory $1 unless its node_modules already matches its package-lock.json (npm
# writes node_modules/.package-lock.json last, so a newer lockfile means a changed one).
npm_ci() {
    if [ ! "$1/node_modules/.package-lock.json" -nt "$1/package-lock.json" ]; then
        (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
