#!/usr/bin/env bash
# Client matrix: the same round trip (create topic, produce keyed records with acks=all,
# consume them back, list topics) with kafka-python, confluent-kafka (a recent librdkafka)
# and Debian's kcat (librdkafka 2.0.2) against a fresh `sluiced`. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

install_clients() {
    python3 -c 'import kafka, confluent_kafka' 2>/dev/null || {
        log "installing kafka-python and confluent-kafka"
        python3 -m pip install --quiet --disable-pip-version-check kafka-python confluent-kafka
    }
    command -v kcat >/dev/null || {
        log "installing kcat"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq kcat >/dev/null
    }
}

install_clients
cargo build --quiet -p sluice-broker --bin sluiced
data=$(mktemp -d)
broker_log="$data/sluiced.log"
"${CARGO_TARGET_DIR:-target}/debug/sluiced" --override listeners=PLAINTEXT://127.0.0.1:0 --override "log.dirs=$data/logs" 2>"$broker_log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
    grep -q 'ready:' "$broker_log" && break
    sleep 0.1
done
port=$(sed -n 's/.*listening on PLAINTEXT:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$broker_log" | head -n1)
[ -n "$port" ] || { cat "$broker_log"; echo "sluiced did not start" >&2; exit 1; }
bootstrap="127.0.0.1:$port"
log "sluiced on $bootstrap"

python3 tests/clients/roundtrip.py kafka-python "$bootstrap" py-topic
python3 tests/clients/roundtrip.py confluent-kafka "$bootstrap" ck-topic
python3 tests/clients/groups.py "$bootstrap" py-group-topic
python3 tests/clients/broker_configs.py "$bootstrap"

log "kcat with $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -n1)"
seq 1 1000 | awk '{print "key-" $1 ":value-" $1}' >"$data/in.txt"
kcat -b "$bootstrap" -P -t kcat-topic -K: -X acks=all -X topic.metadata.refresh.interval.ms=100 <"$data/in.txt"
kcat -b "$bootstrap" -C -t kcat-topic -K: -o beginning -e -q -f '%k:%s\n' >"$data/out.txt"
diff <(sort "$data/in.txt") <(sort "$data/out.txt") || { echo "kcat round trip differs" >&2; exit 1; }
kcat -b "$bootstrap" -L -J >"$data/meta.json"
for t in py-topic ck-topic kcat-topic; do
    grep -q "\"topic\":\"$t\"" "$data/meta.json" || { cat "$data/meta.json"; echo "kcat -L misses $t" >&2; exit 1; }
done
log "kcat: 1000 records round trip, -L lists every topic"

kill -TERM $pid
wait $pid
log "sluiced stopped with status $?: client matrix passed"
