# shellcheck shell=bash disable=SC2034 # what it sets is read by the scripts that source it
# What the benchmark scripts (bench-http.sh, bench-instructions.sh) share: the configs' requests,
# tools, pinning, the build of the servers, and the processes they start. Sourced, never run:
#
#   # shellcheck source=scripts/bench-lib.sh
#   . "$(dirname "$0")/bench-lib.sh"
#
# Expects `set -euo pipefail` and the working directory at the repository root.

# ---- What each config is asked ----
# The same echo call in each protocol.
ECHO_BODY='{"fn":"echo","args":{"message":"hi"}}'
JSONRPC_BODY='{"jsonrpc":"2.0","id":1,"method":"echo","params":{"message":"hi"}}'
GRAPHQL_BODY='{"query":"{ echo(message: \"hi\") }"}'
CTX_PATH='/api/mizan/ctx/profile/?user_id=5'
CALL_PATH='/api/mizan/call/'
JSONRPC_PATH='/'
GRAPHQL_PATH='/graphql'
# Each Mizan or peer config's hand-written reference on the same server stack. jsonrpsee runs its
# own hyper server, so its reference is the hand-written hyper (tower) handler.
declare -A REFERENCE=(
    [mizan-tower]=baseline-tower [jsonrpsee]=baseline-tower
    [mizan-axum]=baseline-axum [async-graphql]=baseline-axum
    [mizan-actix]=baseline-actix
)

# request_of CONFIG: its request (REQ_METHOD, REQ_PATH, REQ_BODY; empty body for a GET) and a
# fragment of the correct answer (REQ_EXPECT).
request_of() {
    case $1 in
    ctx-*) REQ_METHOD=GET REQ_PATH=$CTX_PATH REQ_BODY='' REQ_EXPECT='"profile_name"' ;;
    jsonrpsee) REQ_METHOD=POST REQ_PATH=$JSONRPC_PATH REQ_BODY=$JSONRPC_BODY REQ_EXPECT='"result":"hi"' ;;
    async-graphql) REQ_METHOD=POST REQ_PATH=$GRAPHQL_PATH REQ_BODY=$GRAPHQL_BODY REQ_EXPECT='{"data":{"echo":"hi"}}' ;;
    *) REQ_METHOD=POST REQ_PATH=$CALL_PATH REQ_BODY=$ECHO_BODY REQ_EXPECT='"result":"hi"' ;;
    esac
}

# ---- Tools, pinning, the build ----
target_dir=${CARGO_TARGET_DIR:-target}
step() { printf '\n==> %s\n' "$*" >&2; }

# install_missing COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is not on PATH.
install_missing() {
    if ! command -v "$1" >/dev/null; then
        step "installing $2"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
}

# pin_cpus SERVER_LABEL CLIENT_LABEL: on a machine with two or more CPUs the server runs on CPU 1
# and the load (client) on CPU 0, so that they do not steal each other's core; BENCH_PIN=0 turns
# it off. Sets SERVER_PIN and CLIENT_PIN (command prefixes, maybe empty) and `pinning` (for the
# report).
pin_cpus() {
    if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        SERVER_PIN=(taskset -c 1)
        CLIENT_PIN=(taskset -c 0)
        pinning="$1 on CPU 1, $2 on CPU 0 (taskset)"
    else
        SERVER_PIN=()
        CLIENT_PIN=()
        pinning="none"
    fi
}

# build_servers [EXAMPLE...]: builds examples/bench_server.rs and the named examples (release),
# and the peers (benches/peers: a crate outside the workspace, with its own lock file and target
# dir). Sets BENCH_BIN and PEER_BIN.
build_servers() {
    local examples=(--example bench_server) example
    for example in "$@"; do examples+=(--example "$example"); done
    step "building bench_server${*:+ and $*} (release)"
    cargo build --release --quiet "${examples[@]}"
    step "building the peers (benches/peers, release; its own target dir $target_dir/peers)"
    nice -n 10 cargo build --release --quiet --locked --manifest-path benches/peers/Cargo.toml \
        --target-dir "$target_dir/peers"
    BENCH_BIN=$target_dir/release/examples/bench_server
    PEER_BIN=$target_dir/peers/release/peer_server
}

# server_command CONFIG PORT: sets SERVER_COMMAND to the command serving CONFIG on PORT
# (the peers' binary for jsonrpsee and async-graphql, bench_server for the others).
server_command() {
    SERVER_COMMAND=("$BENCH_BIN" "$1" "127.0.0.1:$2")
    case $1 in jsonrpsee | async-graphql) SERVER_COMMAND=("$PEER_BIN" "$1" "127.0.0.1:$2") ;; esac
}

# ---- Processes ----
SERVER_PID=

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL if it has not exited after SECONDS (default 5).
stop_pid() {
    local pid=$1 seconds=${2:-5}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 $((seconds * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# free_port: a loopback port nobody listens on right now (never 6379: that one may be someone's
# Redis).
free_port() {
    local port
    while :; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        [ "$port" != 6379 ] && break
    done
    echo "$port"
}

# wait_ready URL SECONDS REQUEST_SECONDS: polls until the server (SERVER_PID) answers the
# config's request ($REQ_*) at URL correctly, for at most about SECONDS, each request given
# REQUEST_SECONDS to answer. Fails at once when the server exits or answers wrongly.
wait_ready() {
    local url=$1 seconds=$2 request_seconds=$3 answer
    local args=(-sS --max-time "$request_seconds" -X "$REQ_METHOD")
    [ -z "$REQ_BODY" ] || args+=(-H 'content-type: application/json' --data-binary "$REQ_BODY")
    for _ in $(seq 1 $((seconds * 10))); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited" >&2; return 1; }
        if answer=$(curl "${args[@]}" -f "$url" 2>/dev/null); then
            [[ $answer == *"$REQ_EXPECT"* ]] && return 0
            echo "wrong answer from $url: $answer (expected it to contain $REQ_EXPECT)" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "no answer from $REQ_METHOD $url" >&2
    return 1
}
