#!/usr/bin/env bash
# Chaos run: three demo instances (axum, tower, actix) on one Redis (or one Redis Cluster) and
# one database, mixed traffic, and Redis frozen (SIGSTOP/SIGCONT), killed and restarted underneath.
#
#   ./scripts/chaos.sh                     # 90 s on a fresh PostgreSQL database, one redis-server
#   CHAOS_SECONDS=120 ./scripts/chaos.sh
#   CHAOS_DATABASE=sqlite ./scripts/chaos.sh   # one SQLite file shared by the three processes
#   CHAOS_REDIS=cluster ./scripts/chaos.sh     # a Redis Cluster (3 masters, 3 replicas) instead
#
# Builds the demo and the client (examples/chaos.rs) in release. The client starts its own Redis
# on free loopback ports and the three instances, all with the same DATABASE_URL and secrets:
# - CHAOS_REDIS=single (default): one redis-server (MIZAN_REDIS_URL); it is frozen for 5 s at
#   20 % of the run, killed and restarted empty 3 s later at 50 %, frozen for 3 s at 75 %;
# - CHAOS_REDIS=cluster: six cluster-enabled redis-servers, three masters with one replica each
#   (the fixture tests/support/redis_cluster.rs; node timeout 1 s), every instance with every
#   node as a seed in MIZAN_REDIS_CLUSTER, starting at a different master; at 20 % a master is
#   frozen for 4 s (its replica is promoted meanwhile; it comes back as a replica), at 45 %
#   another master is killed and its replica takes over while traffic runs, at 75 % the killed
#   node is started again and rejoins as a replica.
# The client runs the traffic while the faults happen; checks every read against the writes that
# had returned before it started (stale reads: 0 expected) and every logout across instances;
# and reports requests, non-2xx answers by status, stale reads, peak RSS per instance, each fault
# step (on a cluster, with the roles it left), each instance's bus reconnects, and how long after
# Redis answered again each instance re-applied the purges it lost. Exits non-zero on a stale
# read, a 5xx or a revocation failure. The PostgreSQL database (on CHAOS_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres) is created for the run and dropped after it. The
# report is also written to $CARGO_TARGET_DIR/chaos/report.txt. Not part of scripts/test.sh: it
# takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${CHAOS_SECONDS:-90}
database=${CHAOS_DATABASE:-postgres}
redis=${CHAOS_REDIS:-single}
admin=${CHAOS_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/chaos"
out=$(cd "$target/chaos" && pwd)

case $redis in
single | cluster) ;;
*)
    echo "CHAOS_REDIS must be single or cluster" >&2
    exit 2
    ;;
esac

# redis-server, and redis-cli (which forms the cluster): Debian's redis-server brings both.
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
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
    CHAOS_REDIS="$redis" DATABASE_URL="$url" "$target/release/examples/chaos" | tee "$out/report.txt"
