#!/usr/bin/env bash
# The React bindings in a real browser: builds the example web app (examples/web, its hooks
# generated from the demo by `export-ts --react`), starts the demo, and drives the app in Debian's
# Chromium through playwright-core (tests/ts/browser.test.ts): rendering, exactly the affected
# components refetching after a call, typed errors, no console errors; then two tabs of the app
# over the socket (`?transport=ws`), where a change made in one tab (or by another client over
# HTTP) shows in the other without a reload. Then the demo's
# server-rendered profile page (tests/ts/pages.test.ts): hydration from its props island, the
# escaping of that island on a second demo with SSR off, a cookie login and the CSRF-protected
# view form.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo.sh

# Debian's Chromium, never a browser download.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

npm_ci examples/web
# A development build: React's StrictMode then mounts every component twice (the store must still
# send one request per instance), and React reports its warnings as console errors.
(cd examples/web && NODE_ENV=development npm run --silent build)

rm -rf target/ts-client
cargo run --quiet --example demo -- export-ts target/ts-client --react --vue --svelte
npm_ci tests/ts
(cd tests/ts && npx tsc -p tsconfig.json)

start_demo
ssr_url=$DEMO_URL
MIZAN_SSR=off start_demo
fallback_url=$DEMO_URL
(cd tests/ts && MIZAN_E2E_URL="$ssr_url" MIZAN_E2E_FALLBACK_URL="$fallback_url" WEB_DIST=../../examples/web/dist \
    node --test dist/tests/ts/browser.test.js dist/tests/ts/pages.test.js)
