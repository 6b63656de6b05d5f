#!/usr/bin/env bash
# The generated TypeScript client end to end: export it from the demo, type-check it and the
# test with `tsc --strict`, then drive the running demo through it with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

rm -rf target/ts-client
cargo run --quiet --example demo -- export-ts target/ts-client
(cd tests/ts && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npx tsc -p tsconfig.json)

start_demo
(cd tests/ts && MIZAN_E2E_URL="$DEMO_URL" node --test dist/tests/ts/e2e.test.js)
