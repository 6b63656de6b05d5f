#!/usr/bin/env bash
# Runs every check and test of the workspace. CI (.ci/run) calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

step "mizan-core depends on no async runtime"
if cargo tree -p mizan-core -e normal --prefix none | grep -E '^(tokio|async-std|actix-rt|smol) '; then
    echo "mizan-core must stay runtime-free" >&2
    exit 1
fi
echo "ok: no tokio, async-std, actix-rt or smol in mizan-core's dependencies"

step "redis-server and python3 (the Redis tests start their own server on a free loopback port)"
if ! command -v redis-server >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi
redis-server --version
command -v python3 >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv; }

step "node and npm (the SSR workers, the TypeScript client test)"
if ! command -v npm >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
node --version

step "the SSR worker's npm dependencies, from its lockfile"
(cd mizan-ssr/worker && npm ci --no-audit --no-fund)

step "tests (unit, doc, compile-fail, HTTP conformance over loopback, cache backends, SSR faults)"
cargo test --workspace --all-features

step "token interop: PyJWT against the running demo"
./scripts/interop.sh

step "the generated TypeScript client: tsc --strict, then node against the running demo"
./scripts/ts-e2e.sh

step "the React bindings in Chromium: the example web app against the running demo"
./scripts/browser-e2e.sh
