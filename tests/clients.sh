#!/usr/bin/env bash
# Client matrix: the same round trip (create topic, produce keyed records with acks=all,
# consume them back, list topics) with kafka-python, confluent-kafka (a recent librdkafka)
# and Debian's kcat (librdkafka 2.0.2) against a fresh `sluiced`; then kafka-python and kcat
# against a 3-node cluster (scripts/dev-cluster.sh, on free ports, stopped by its pids) with
# topics of 3 replicas. Installs what it needs.
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
cargo build --quiet -p sluice-broker --bin sluiced -p sluice-tools --bin sluice
data=$(mktemp -d)
broker_log="$data/sluiced.log"
"${CARGO_TARGET_DIR:-target}/debug/sluiced" --override listeners=PLAINTEXT://127.0.0.1:0 --override "log.dirs=$data/logs" 2>"$broker_log" &
pid=$!
cluster() { # dev-cluster.sh on this build's debug binaries, under $data/cluster
    CLUSTER_DIR="$data/cluster" BASE_PORT="$base" PROFILE=debug NO_BUILD=1 \
        CARGO_TARGET_DIR="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)" bash scripts/dev-cluster.sh "$@"
}
cleanup() {
    kill -9 $pid 2>/dev/null || true
    if [ -n "${base:-}" ]; then
        cluster stop >/dev/null 2>&1 || for f in "$data"/cluster/node-*/pid; do
            [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
        done
    fi
    rm -rf "$data"
}
trap cleanup EXIT
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
log "sluiced stopped with status $?"

# A base port P with P, P+1, P+100, P+101, P+200, P+201 free for TCP and UDP (gossip):
# dev-cluster.sh's layout for 3 nodes.
base=$(python3 - <<'PY'
import random, socket
def free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True
for _ in range(200):
    p = random.randrange(20000, 60000)
    if all(free(p + d) for d in (0, 1, 100, 101, 200, 201)):
        print(p)
        break
PY
)
[ -n "$base" ] || { echo "no free ports for a cluster" >&2; exit 1; }
cluster 3 >"$data/cluster.out" || { cat "$data/cluster.out"; tail -n 30 "$data"/cluster/node-*/sluiced.log; exit 1; }
servers="127.0.0.1:$base,127.0.0.1:$((base + 100)),127.0.0.1:$((base + 200))"
log "3-node cluster on $servers"
for _ in $(seq 1 300); do # every broker registered (CreateTopics with 3 replicas needs them)
    kcat -b "$servers" -L -J 2>/dev/null | python3 -c 'import json,sys; sys.exit(len(json.load(sys.stdin)["brokers"]) != 3)' && break
    sleep 0.2
done
python3 tests/clients/roundtrip.py kafka-python "$servers" py-cluster-topic 3
"${CARGO_TARGET_DIR:-target}/debug/sluice" topics --bootstrap-server "$servers" --create \
    --topic kcat-cluster-topic --partitions 3 --replication-factor 3 >/dev/null
kcat -b "$servers" -P -t kcat-cluster-topic -K: -X acks=all -X topic.metadata.refresh.interval.ms=100 <"$data/in.txt"
kcat -b "$servers" -C -t kcat-cluster-topic -K: -o beginning -e -q -f '%k:%s\n' >"$data/cluster-out.txt"
diff <(sort "$data/in.txt") <(sort "$data/cluster-out.txt") || { echo "kcat cluster round trip differs" >&2; exit 1; }
kcat -b "$servers" -L -J >"$data/cluster-meta.json"
python3 - "$data/cluster-meta.json" <<'PY'
import json, sys
meta = json.load(open(sys.argv[1]))
assert sorted(b["id"] for b in meta["brokers"]) == [1, 2, 3], meta["brokers"]
for name in ("py-cluster-topic", "kcat-cluster-topic"):
    topic = next(t for t in meta["topics"] if t["topic"] == name)
    for p in topic["partitions"]:
        assert len(p["replicas"]) == 3 and len(p["isrs"]) == 3, (name, p)
PY
log "kcat: 1000 records round trip on the cluster; -L shows 3 brokers and full ISRs"
cluster stop >/dev/null
log "cluster stopped: client matrix passed"
