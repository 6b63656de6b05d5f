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

step "tests (unit, doc, compile-fail, HTTP conformance over loopback)"
cargo test --workspace --all-features
