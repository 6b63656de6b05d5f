#!/usr/bin/env bash
# The generated TypeScript client end to end: export it from the demo with its Vue and Svelte
# bindings, type-check it and the tests with `tsc --strict`, unit-test the store and the bindings
# against a fake fetch, then drive the running demo through the client with node's test runner.
# (The React bindings are type-checked and driven in Chromium by scripts/browser-e2e.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

rm -rf target/ts-client
cargo run --quiet --example demo -- export-ts target/ts-client --vue --svelte
(cd tests/ts && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npx tsc -p tsconfig.json)
(cd tests/ts && node --test dist/tests/ts/store.test.js dist/tests/ts/vue.test.js dist/tests/ts/svelte.test.js)

start_demo
(cd tests/ts && MIZAN_E2E_URL="$DEMO_URL" node --test dist/tests/ts/e2e.test.js)
