#!/usr/bin/env bash
# The generated TypeScript client end to end: export it from the demo with its React, Vue and
# Svelte bindings, type-check it and the tests with `tsc --strict`, unit-test the store and the
# bindings against a fake fetch, then drive the running demo through the client with node's test
# runner. (The React hooks in a browser: scripts/browser-e2e.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

rm -rf target/ts-client
cargo run --quiet --example demo -- export-ts target/ts-client --react --vue --svelte
npm_ci tests/ts
(cd tests/ts && npx tsc -p tsconfig.json)
(cd tests/ts && node --test dist/tests/ts/store.test.js dist/tests/ts/react.test.js dist/tests/ts/vue.test.js dist/tests/ts/svelte.test.js)

start_demo
(cd tests/ts && MIZAN_E2E_URL="$DEMO_URL" node --test dist/tests/ts/e2e.test.js)
