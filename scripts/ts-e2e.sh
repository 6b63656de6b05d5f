#!/usr/bin/env bash
# The generated TypeScript client end to end: export it from the demo with its React, Vue and
# Svelte bindings, type-check it and the tests with `tsc --strict`, unit-test the store, the
# bindings and the socket transport against a fake fetch and a fake WebSocket, then drive the
# running demo through the client with node's test runner, over HTTP (e2e.test.ts) and over the
# socket with live pushes (live.test.ts). (The React hooks in a browser: scripts/browser-e2e.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

rm -rf target/ts-client
cargo run --quiet --example demo -- export-ts target/ts-client --react --vue --svelte
npm_ci tests/ts
(cd tests/ts && npx tsc -p tsconfig.json)
(cd tests/ts && node --test dist/tests/ts/store.test.js dist/tests/ts/react.test.js dist/tests/ts/vue.test.js \
    dist/tests/ts/svelte.test.js dist/tests/ts/socket.test.js)

# live.test.ts needs a global WebSocket: Node 22 has one, Node 20 behind a flag.
websocket_flag=$(node -e 'process.stdout.write(typeof WebSocket === "function" ? "" : "--experimental-websocket")')
start_demo
# One after the other: both change the demo's data (node --test runs files in parallel).
(cd tests/ts && MIZAN_E2E_URL="$DEMO_URL" node --test dist/tests/ts/e2e.test.js)
(cd tests/ts && MIZAN_E2E_URL="$DEMO_URL" node $websocket_flag --test dist/tests/ts/live.test.js)
