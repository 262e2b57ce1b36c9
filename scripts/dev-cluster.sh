#!/usr/bin/env bash
# A KRaft cluster of N sluiced nodes on 127.0.0.1 for development (issue 9's layout).
#
#   scripts/dev-cluster.sh [N]      format (first time) and start N nodes (default 3)
#   scripts/dev-cluster.sh stop     SIGTERM every node started here and wait for it
#   scripts/dev-cluster.sh status   which nodes run, and where
#
# Node i listens for clients on BASE_PORT+100*(i-1) and for the controller on the next
# port: 9092/9093, 9192/9193, 9292/9293, ... Everything lives under ./sluice-cluster/
# (CLUSTER_DIR): node-i/server.properties, node-i/data, node-i/sluiced.log, node-i/pid,
# and cluster.id (made once by `sluice storage random-uuid`; every node is formatted with it).
#
# Binaries: target/$PROFILE/{sluiced,sluice} (PROFILE=release by default; PROFILE=debug uses
# the dev build), built with cargo first unless NO_BUILD=1. CARGO_TARGET_DIR is honoured.
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-./sluice-cluster}
BASE_PORT=${BASE_PORT:-9092}
PROFILE=${PROFILE:-release}
READY_WAIT_S=${READY_WAIT_S:-60}
STOP_WAIT_S=${STOP_WAIT_S:-30}
NODES_MAX=9

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
bin="$target/$PROFILE"

die() { echo "dev-cluster: $*" >&2; exit 1; }

build() {
    [ "${NO_BUILD:-0}" = 1 ] && return
    local flag=()
    [ "$PROFILE" = release ] && flag=(--release)
    [ "$PROFILE" = debug ] || [ "$PROFILE" = release ] || die "PROFILE must be debug or release"
    (cd "$here" && cargo build "${flag[@]}" -p sluice-broker -p sluice-tools)
}

running() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

write_config() { # node_id nodes dir
    local id=$1 nodes=$2 dir=$3 voters="" j
    for j in $(seq 1 "$nodes"); do
        voters+="${voters:+,}$j@127.0.0.1:$((BASE_PORT + 100 * (j - 1) + 1))"
    done
    local client=$((BASE_PORT + 100 * (id - 1))) controller=$((BASE_PORT + 100 * (id - 1) + 1))
    cat > "$dir/server.properties" <<PROPS
# Written by scripts/dev-cluster.sh: node $id of $nodes.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$client,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$client
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$(cd "$dir" && pwd)/data
PROPS
}

start() {
    local nodes=$1
    [[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] && [ "$nodes" -le $NODES_MAX ] ||
        die "N must be 1..$NODES_MAX, not $nodes"
    build
    [ -x "$bin/sluiced" ] && [ -x "$bin/sluice" ] || die "$bin/sluiced or $bin/sluice missing"
    mkdir -p "$CLUSTER_DIR"
    [ -f "$CLUSTER_DIR/cluster.id" ] || "$bin/sluice" storage random-uuid > "$CLUSTER_DIR/cluster.id"
    local id cluster_id servers=""
    cluster_id=$(cat "$CLUSTER_DIR/cluster.id")
    for id in $(seq 1 "$nodes"); do
        local dir="$CLUSTER_DIR/node-$id"
        mkdir -p "$dir"
        running "$dir" && die "node $id already runs (pid $(cat "$dir/pid")); stop it first"
        write_config "$id" "$nodes" "$dir"
        "$bin/sluice" storage format -t "$cluster_id" -c "$dir/server.properties" --ignore-formatted
        : > "$dir/sluiced.log"
        nohup "$bin/sluiced" "$dir/server.properties" >> "$dir/sluiced.log" 2>&1 < /dev/null &
        echo $! > "$dir/pid"
        servers+="${servers:+,}127.0.0.1:$((BASE_PORT + 100 * (id - 1)))"
    done
    for id in $(seq 1 "$nodes"); do
        wait_ready "$CLUSTER_DIR/node-$id" "$id"
    done
    echo "cluster $cluster_id: $nodes nodes, bootstrap servers $servers"
    echo "logs: $CLUSTER_DIR/node-*/sluiced.log; stop with: $0 stop"
}

wait_ready() { # dir node_id
    local dir=$1 id=$2 i
    for i in $(seq 1 $((READY_WAIT_S * 10))); do
        grep -q "ready:" "$dir/sluiced.log" && { echo "node $id ready (pid $(cat "$dir/pid"))"; return; }
        running "$dir" || break
        sleep 0.1
    done
    tail -n 20 "$dir/sluiced.log" >&2
    die "node $id did not become ready (log above: $dir/sluiced.log)"
}

stop() {
    local dir stopped=0
    for dir in "$CLUSTER_DIR"/node-*; do
        [ -d "$dir" ] || continue
        if running "$dir"; then
            local pid i
            pid=$(cat "$dir/pid")
            kill -TERM "$pid"
            for i in $(seq 1 $((STOP_WAIT_S * 10))); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && die "$(basename "$dir") (pid $pid) did not stop in ${STOP_WAIT_S}s"
            echo "$(basename "$dir") stopped"
            stopped=$((stopped + 1))
        fi
        rm -f "$dir/pid"
    done
    [ "$stopped" -gt 0 ] || echo "no node was running"
}

status() {
    local dir
    for dir in "$CLUSTER_DIR"/node-*; do
        [ -d "$dir" ] || continue
        if running "$dir"; then
            echo "$(basename "$dir"): running (pid $(cat "$dir/pid")), $(grep -m1 '^listeners=' "$dir/server.properties")"
        else
            echo "$(basename "$dir"): stopped"
        fi
    done
}

case "${1:-3}" in
    stop) stop ;;
    status) status ;;
    -h|--help) sed -n '2,14p' "$0" ;;
    *) start "${1:-3}" ;;
esac
