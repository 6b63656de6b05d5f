#!/usr/bin/env bash
# Token interop with an independent implementation: PyJWT against the running demo.
# Installs PyJWT in a virtualenv under target/, starts the demo on a free loopback port with
# explicit secrets, runs tests/interop/pyjwt_peer.py, and stops the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import jwt' 2>/dev/null || "$venv/bin/pip" install --quiet 'PyJWT>=2.8,<3'

cargo build --quiet --example demo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export JWT_PRIVATE_KEY="interop-jwt-secret-$(date +%s%N)-0123456789"
export MIZAN_CACHE_SECRET="interop-cache-secret-$(date +%s%N)-0123456789"
export MIZAN_MWT_SECRET="interop-mwt-secret-$(date +%s%N)-0123456789"
log=target/interop-demo.log
MIZAN_ADDR="127.0.0.1:$port" ./target/debug/examples/demo >"$log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/mizan/session/', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

"$venv/bin/python" tests/interop/pyjwt_peer.py "http://127.0.0.1:$port"
