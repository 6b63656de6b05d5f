#!/usr/bin/env bash
# Token interop with an independent implementation: PyJWT against the running demo.
# Installs PyJWT in a virtualenv under target/, starts the demo, runs
# tests/interop/pyjwt_peer.py against it, and stops the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import jwt' 2>/dev/null || "$venv/bin/pip" install --quiet 'PyJWT>=2.8,<3'

start_demo
"$venv/bin/python" tests/interop/pyjwt_peer.py "$DEMO_URL"
