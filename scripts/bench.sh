#!/usr/bin/env bash
# Reproduces every figure of docs/BENCHMARKS.md: the core micro benchmarks, the origin cache
# (memory and a real Redis), SSR through the worker pool, the HTTP load harness (Mizan, the
# hand-written baselines and the peers jsonrpsee and async-graphql) and the instruction counts per
# request under callgrind. Benchmarks are never part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

printf '\n==> core micro benchmarks (criterion)\n'
cargo bench -p mizan-core --bench core

printf '\n==> origin cache: memory and Redis (criterion)\n'
command -v redis-server >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; }
cargo bench --bench redis_cache

printf '\n==> near cache (L1) and Redis Cluster: fetch hits, bare GET, bus latency (criterion)\n'
cargo bench --bench near_cache

printf '\n==> SSR: renders through the worker pool, the direct baseline, the page shell (criterion)\n'
command -v npm >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; }
cargo bench -p mizan-ssr --bench ssr

printf '\n==> HTTP load (wrk)\n'
./scripts/bench-http.sh

printf '\n==> instructions per request (callgrind)\n'
./scripts/bench-instructions.sh
