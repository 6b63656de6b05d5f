#!/usr/bin/env bash
# Chaos run: three demo instances (axum, tower, actix) on one Redis and one database, mixed
# traffic, and Redis frozen (SIGSTOP/SIGCONT), killed and restarted underneath.
#
#   ./scripts/chaos.sh                     # 90 s on a fresh PostgreSQL database
#   CHAOS_SECONDS=120 ./scripts/chaos.sh
#   CHAOS_DATABASE=sqlite ./scripts/chaos.sh   # one SQLite file shared by the three processes
#
# Builds the demo and the client (examples/chaos.rs) in release. The client starts its own
# redis-server on a free loopback port and the three instances, all with the same
# MIZAN_REDIS_URL, DATABASE_URL and secrets; runs the traffic while the faults happen; checks
# every read against the writes that had returned before it started (stale reads: 0 expected)
# and every logout across instances; and reports requests, non-2xx answers by status, stale
# reads, peak RSS per instance and how long after Redis came back each instance re-applied the
# purges it lost. Exits non-zero on a stale read, a 5xx or a revocation failure. The PostgreSQL
# database (on CHAOS_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres) is created
# for the run and dropped after it. Not part of scripts/test.sh: it takes minutes.
#
# A Redis Cluster phase (a master killed, its replica promoted) plugs into the client's
# `timeline()` when the cluster support lands.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${CHAOS_SECONDS:-90}
database=${CHAOS_DATABASE:-postgres}
admin=${CHAOS_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/chaos"
out=$(cd "$target/chaos" && pwd)

command -v redis-server >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

cargo build --release --quiet --example demo --example chaos

case $database in
postgres)
    command -v psql >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
    }
    name="mizan_chaos_$$_$(date +%s)"
    psql "$admin" -qc "CREATE DATABASE $name"
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" || true' EXIT
    url="${admin%/*}/$name"
    ;;
sqlite)
    rm -f "$out"/chaos.db*
    url="sqlite://$out/chaos.db"
    ;;
*)
    echo "CHAOS_DATABASE must be postgres or sqlite" >&2
    exit 2
    ;;
esac

# Every instance must have the same secrets (tokens minted by one are checked by the others,
# cache keys must match): fresh random ones for this run.
secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export JWT_PRIVATE_KEY=$(secret) MIZAN_CACHE_SECRET=$(secret) MIZAN_MWT_SECRET=$(secret) \
    MIZAN_CSRF_SECRET=$(secret)

CHAOS_DEMO="$target/release/examples/demo" CHAOS_OUT="$out" CHAOS_SECONDS="$seconds" \
    DATABASE_URL="$url" "$target/release/examples/chaos" | tee "$out/report.txt"
