#!/usr/bin/env bash
# perf/w1_ab.sh: W1 (sluice-perf produce, acks=1, linger.ms=5, batch.size=16384, 1 KiB
# records) against two or more sluiced binaries, alternating, each run on a fresh broker
# and data dir: the side-by-side "before / after" of one change (BENCHMARKS.md).
# Prints MB/s, the broker's CPU-s per GiB produced (utime + stime of all its threads from
# /proc/PID/stat around the run) and the MiB stored.
#
#   SLUICE_PERF=target/release/sluice-perf bash perf/w1_ab.sh /tmp/sluiced-before /tmp/sluiced-after
#
# Settings: RECORDS (2097152), ROUNDS (3; the order of the binaries is reversed every other
# round, since the second run of a pair tends to be the cheaper one), PORT (19192), DATA_DIR
# (${TMPDIR:-/tmp}/sluice-w1-ab).
set -euo pipefail
SLUICE_PERF=${SLUICE_PERF:?set SLUICE_PERF to a sluice-perf binary}
RECORDS=${RECORDS:-2097152}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19192}
DATA_DIR=${DATA_DIR:-${TMPDIR:-/tmp}/sluice-w1-ab}
(($# >= 1)) || { echo "usage: SLUICE_PERF=... $0 SLUICED..." >&2; exit 2; }
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
run() {
    local bin=$1 dir=$DATA_DIR/run
    rm -rf "$dir"
    mkdir -p "$dir"
    "$bin" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$dir" \
        >"$DATA_DIR/broker.log" 2>&1 &
    local pid=$!
    for _ in $(seq 600); do grep -q 'ready:' "$DATA_DIR/broker.log" && break; sleep 0.1; done
    local before after stored
    before=$(cpu_s "$pid")
    "$SLUICE_PERF" produce --bootstrap-server "127.0.0.1:$PORT" --topic w1 \
        --num-records "$RECORDS" --record-size 1024 --throughput -1 \
        --producer-props acks=1 linger.ms=5 batch.size=16384 --json \
        >"$DATA_DIR/run.json" 2>"$DATA_DIR/run.err"
    after=$(cpu_s "$pid")
    stored=$(du -sm "$dir" | cut -f1)
    kill -TERM "$pid"
    wait "$pid" || true
    rm -rf "$dir"
    awk -v a="$after" -v b="$before" -v r="$RECORDS" -v s="$stored" -v bin="$bin" \
        -v mbs="$(grep -o '"mb_per_sec": [0-9.]*' "$DATA_DIR/run.json" | cut -d' ' -f2)" \
        'BEGIN { printf "%s: %s MB/s, broker %.2f CPU-s per GiB, %d MiB stored\n", bin, mbs, (a - b) / (r * 1024 / 1073741824), s }'
}
for round in $(seq "$ROUNDS"); do
    bins=("$@")
    if ((round % 2 == 0)); then
        mapfile -t bins < <(printf '%s\n' "$@" | tac)
    fi
    echo "round $round, load $(cut -d' ' -f1 /proc/loadavg)"
    for bin in "${bins[@]}"; do run "$bin"; done
done
