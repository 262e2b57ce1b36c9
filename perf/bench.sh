#!/usr/bin/env bash
# perf/bench.sh: Sluice beside a peer broker (tansu, in-memory storage) and the machine's
# limits, measured in one run on one machine; prints a table of figures, ratios and the
# targets of issue 3 §4, issue 9 §6 (W6, W7: a 3-node cluster on this host) and issue 11 §4
# (W8: losing the controller role; W7's consumer side). See
# BENCHMARKS.md for what each line means.
#
#   bash perf/bench.sh              # the full run (lengths below; about 10-20 minutes)
#   QUICK=1 bash perf/bench.sh      # short everything: for testing the script only
#
# Settings (environment):
#   TREE              source tree to build from (default: this script's repository)
#   CARGO_TARGET_DIR  where to build (default: $TREE/target)
#   SLUICED, SLUICE_PERF  prebuilt binaries; set both to skip the build (SLUICE, the
#                     CLI the cluster parts format nodes and create topics with, defaults
#                     to the sluice beside SLUICED)
#   TANSU             the peer (default ~/.cargo/bin/tansu; missing = peer skipped)
#   DATA_DIR          data directories and dd files: on the disk under test
#                     (default ${TMPDIR:-/tmp}/sluice-bench)
#   RESULTS           raw outputs and summary (default $DATA_DIR/results-<time>)
#   PORT              first of 4 TCP ports used on 127.0.0.1 (default 19092); the
#                     cluster's nodes use PORT+10.. (client, controller: 2 ports per node id)
#   BATCH_SIZE LINGER_MS  producer batch.size / linger.ms of W1 and W2 (16384 / 5,
#                     Kafka's producer defaults)
#   W1_MB             MiB produced in W1 (default: the larger of 4096 and 1.25x the
#                     kernel's dirty-page limit, so the run outlasts write-back throttling)
#   W2_MB             MiB produced in W2 (256): with fsync before ack no dirty pages build
#                     up, so there is no write-back throttling to outlast
#   W3_MB             MiB consumed in W3 (2048)
#   W3_REPEAT         W3 runs per fetch.transfer.method (sendfile, splice) after the first (3)
#   W4_SECONDS        length of each W4 run at 5,000 records/s (60)
#   W5_TOPICS W5_PARTITIONS  W5's topics x partitions (100 x 100)
#   W6_MB             MiB produced in W6, once to one broker (acks=1), once to the cluster
#                     (RF=3, acks=all, min.insync.replicas=2) (1024)
#   W7_RUNS W7_TERM_RUNS  W7's SIGKILL and SIGTERM runs per setting (10, 5)
#   W7_SETTINGS       "default nogossip short": Kafka's timeouts with gossip (the default),
#                     the same with sluice.gossip.enable=false (heartbeats alone), then
#                     broker.session.timeout.ms=3000 broker.heartbeat.interval.ms=500 (the CI
#                     test's)
#   W7_DURATION W7_FAULT_AFTER W7_RATE  each verify run's length, when it strikes, and its
#                     records/s (20s, 5s, 2000)
#   W8_RUNS W8_BASE_RUNS W8_REMOVE_RUNS  W8's SIGKILLs of the active controller per layout,
#                     no-fault runs per layout before them, and quorum-leader removals (5, 2, 3)
#   W8_BROKERS        broker-only nodes beside the 3 controller-only ones in W8 (a) (3)
#   W8_CASES          which of W8's cases to run ("split combined remove": (a), (c), (b))
#   CLUSTER_PROPS     extra server.properties lines for every cluster node (space separated)
#   LOOPBACK_SECONDS  (10)   PROFILE=0 skips the strace syscall counts
#   RUN_TIMEOUT_S     longest single client run before it is stopped (1800)
#   KEEP_DATA=1       keep the data directories afterwards
#   PARTS             which parts to run (default "limits sluice fsync peer w5 cluster
#                     failover"; "controller", W8, only when named); the table shows n/a
#                     for parts not run. W7 alone, e.g. to
#                     re-run it after a change to failover: PARTS=failover
#                     W7_SETTINGS=default bash perf/bench.sh
set -euo pipefail

QUICK=${QUICK:-0}
TREE=${TREE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TREE/target}
TANSU=${TANSU:-$HOME/.cargo/bin/tansu}
DATA_DIR=${DATA_DIR:-${TMPDIR:-/tmp}/sluice-bench}
RESULTS=${RESULTS:-$DATA_DIR/results-$(date +%Y%m%d-%H%M%S)}
PORT=${PORT:-19092}
RECORD_SIZE=1024
BATCH_SIZE=${BATCH_SIZE:-16384}
LINGER_MS=${LINGER_MS:-5}
PROFILE=${PROFILE:-1}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-1800}
KEEP_DATA=${KEEP_DATA:-0}
W4_RATE=5000
W3_REPEAT=${W3_REPEAT:-3}
MIB=1048576
if [[ $QUICK == 1 ]]; then
    W1_MB=${W1_MB:-256} W2_MB=${W2_MB:-32} W3_MB=${W3_MB:-128} W4_SECONDS=${W4_SECONDS:-4}
    W5_TOPICS=${W5_TOPICS:-10} W5_PARTITIONS=${W5_PARTITIONS:-100} LOOPBACK_SECONDS=${LOOPBACK_SECONDS:-2}
    DD_MB=${DD_MB:-64}
    W6_MB=${W6_MB:-64} W7_RUNS=${W7_RUNS:-2} W7_TERM_RUNS=${W7_TERM_RUNS:-1} W7_DURATION=${W7_DURATION:-14s}
else
    W2_MB=${W2_MB:-256} W3_MB=${W3_MB:-2048} W4_SECONDS=${W4_SECONDS:-60}
    W5_TOPICS=${W5_TOPICS:-100} W5_PARTITIONS=${W5_PARTITIONS:-100} LOOPBACK_SECONDS=${LOOPBACK_SECONDS:-10}
    DD_MB=${DD_MB:-1024}
    W6_MB=${W6_MB:-1024} W7_RUNS=${W7_RUNS:-10} W7_TERM_RUNS=${W7_TERM_RUNS:-5} W7_DURATION=${W7_DURATION:-20s}
fi
W6_IDLE_S=${W6_IDLE_S:-5}
W7_SETTINGS=${W7_SETTINGS:-default nogossip short}
W7_FAULT_AFTER=${W7_FAULT_AFTER:-5s}
W7_RATE=${W7_RATE:-2000}
W7_SHORT_PROPS=(broker.session.timeout.ms=3000 broker.heartbeat.interval.ms=500)
W8_RUNS=${W8_RUNS:-$((QUICK == 1 ? 1 : 5))}
W8_BASE_RUNS=${W8_BASE_RUNS:-$((QUICK == 1 ? 1 : 2))}
W8_REMOVE_RUNS=${W8_REMOVE_RUNS:-$((QUICK == 1 ? 1 : 3))}
W8_BROKERS=${W8_BROKERS:-3}
W8_CASES=${W8_CASES:-split combined remove}
read -r -a CLUSTER_PROPS <<<"${CLUSTER_PROPS:-}"
CLUSTER_PORT=$((PORT + 10))
declare -a NODE_PIDS NODE_LOGS
# w7_props SETTING: the timeouts a W7 setting runs with.
w7_props() {
    case $1 in
        short) echo "${W7_SHORT_PROPS[*]}" ;;
        nogossip) echo "sluice.gossip.enable=false (heartbeats alone, Kafka's timeouts)" ;;
        *) echo "Kafka's defaults (session 9000 ms, heartbeat 2000 ms), gossip on" ;;
    esac
}
SINK_PORT=$PORT SLUICE_PORT=$((PORT + 1)) PEER_PORT=$((PORT + 2))
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- helpers

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
# calc EXPR: awk arithmetic, printed with about 3-4 significant digits.
calc() {
    awk "BEGIN { v = $1; a = v < 0 ? -v : v
        if (a >= 1000 || v == int(v)) printf \"%.0f\", v; else if (a >= 10) printf \"%.1f\", v; else printf \"%.3g\", v }"
}
# json FILE KEY: a number from sluice-perf's one-line JSON ("n/a" when absent).
json() {
    local v
    v=$(sed -n "s/.*\"$2\": \(-\{0,1\}[0-9.e+]*\).*/\1/p" "$1" 2>/dev/null | tail -1)
    if [[ -z $v ]]; then echo n/a; else calc "$v"; fi
}
# ratio A B: A/B, or n/a.
ratio() { if [[ $1 == n/a || $2 == n/a || $2 == 0 ]]; then echo n/a; else calc "$1 / $2"; fi; }
# verdict OK-EXPR: "met" / "MISSED" / "n/a" (expression over numbers, n/a anywhere = n/a).
verdict() {
    if [[ $1 == *n/a* ]]; then echo n/a; return; fi
    if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi
}
# binding CEILING LOOPBACK CEILING_MIN LOOPBACK_MIN RATIO_TO_CEILING RATIO_TO_LOOPBACK: the
# target against whichever limit binds: the client's ceiling when it is below loopback.
binding() {
    if [[ $1 != n/a && $2 != n/a ]] && awk "BEGIN { exit !($1 < $2) }"; then
        echo "client limits: >= $3 of client: $(verdict "$5 >= $3")"
    else
        echo "loopback limits: >= $4 of loopback: $(verdict "$6 >= $4")"
    fi
}
# cpu_seconds PID: user + system CPU seconds of the process (all its threads, io_uring
# workers included).
cpu_seconds() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$CLK_TCK" '{ printf "%.3f", ($12 + $13) / t }'; }

# The load client's own CPU seconds (user + system), when GNU time is installed.
timed() {
    local out=$1
    shift
    if [[ -x /usr/bin/time ]]; then
        timeout "$RUN_TIMEOUT_S" /usr/bin/time -f %U+%S -o "$out" "$@"
    else
        timeout "$RUN_TIMEOUT_S" "$@"
    fi
}
client_cpu() { [[ -s $RESULTS/$1.cpu ]] && calc "$(tail -1 "$RESULTS/$1.cpu")" || echo n/a; }

PIDS=()
# still_ours PID: PID is still a child of this script (a reaped pid may be reused by
# another user's process, which must never be signalled).
still_ours() { [[ $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) == "$$" ]]; }
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do still_ours "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ $KEEP_DATA != 1 ]]; then
        rm -rf "$DATA_DIR"/sluice-* "$DATA_DIR"/dd.* 2>/dev/null || true
    fi
}
trap cleanup EXIT

# wait_for_line FILE PATTERN PID TIMEOUT_S: until FILE has PATTERN (or PID dies).
wait_for_line() {
    local deadline=$((SECONDS + $4))
    until grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || die "process $3 exited before '$2' (see $1)"
        ((SECONDS < deadline)) || die "no '$2' in $1 after $4 s"
        sleep 0.01
    done
}
wait_for_port() {
    local deadline=$((SECONDS + $3))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || die "process $2 exited before listening on $1"
        ((SECONDS < deadline)) || die "nothing listens on $1 after $3 s"
        sleep 0.05
    done
}
# stop PID: SIGTERM and wait.
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# start_sluiced NAME DIR [--override k=v...]: sets BROKER_PID; logs to $RESULTS/NAME.log.
start_sluiced() {
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    "$SLUICED" --override "listeners=PLAINTEXT://127.0.0.1:$SLUICE_PORT" \
        --override "log.dirs=$dir" "$@" >>"$RESULTS/$name.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    wait_for_line "$RESULTS/$name.log" 'ready:' "$BROKER_PID" 600
}

# produce NAME PORT TOPIC RECORDS PROPS...: sluice-perf produce, JSON to $RESULTS/NAME.json.
produce() {
    local name=$1 port=$2 topic=$3 records=$4
    shift 4
    timed "$RESULTS/$name.cpu" "$SLUICE_PERF" produce --bootstrap-server "127.0.0.1:$port" --topic "$topic" \
        --num-records "$records" --record-size "$RECORD_SIZE" --throughput "${THROUGHPUT:--1}" \
        --producer-props "$@" --json >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" ||
        { say "$name failed: $(tail -3 "$RESULTS/$name.err")"; echo '{}' >"$RESULTS/$name.json"; }
}
consume() {
    local name=$1 port=$2 topic=$3 records=$4
    timed "$RESULTS/$name.cpu" "$SLUICE_PERF" consume --bootstrap-server "127.0.0.1:$port" --topic "$topic" \
        --messages "$records" --json >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" ||
        { say "$name failed: $(tail -3 "$RESULTS/$name.err")"; echo '{}' >"$RESULTS/$name.json"; }
}
# dd_rate NAME ARGS...: MiB/s of a dd write into DATA_DIR.
dd_rate() {
    local name=$1
    shift
    dd if=/dev/zero of="$DATA_DIR/dd.$name" "$@" 2>"$RESULTS/dd-$name.txt"
    rm -f "$DATA_DIR/dd.$name"
    sed -n 's/^\([0-9]*\) bytes.* copied, \([0-9.e]*\) s,.*/\1 \2/p' "$RESULTS/dd-$name.txt" |
        awk -v m="$MIB" '{ printf "%.1f", $1 / $2 / m }'
}

# page_cache_write: buffered writes of W1's size into a new file, no sync: the kernel's own
# cost of taking W1's bytes into the page cache (past the dirty limit, so write-back
# throttling included). Sets PAGE_CACHE_MBS and PAGE_CACHE_CPU (CPU seconds per GiB).
page_cache_write() {
    say "page cache: buffered writes of $W1_MB MiB into a new file (bs=16k, no sync), as W1 does"
    PAGE_CACHE_MBS=n/a PAGE_CACHE_CPU=n/a
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f %U+%S -o "$RESULTS/dd-page-cache.cpu" \
            dd if=/dev/zero of="$DATA_DIR/dd.page-cache" bs=16k count=$((W1_MB * 64)) 2>"$RESULTS/dd-page-cache.txt"
        PAGE_CACHE_CPU=$(calc "($(tail -1 "$RESULTS/dd-page-cache.cpu")) / ($W1_MB / 1024)")
    else
        dd if=/dev/zero of="$DATA_DIR/dd.page-cache" bs=16k count=$((W1_MB * 64)) 2>"$RESULTS/dd-page-cache.txt"
    fi
    rm -f "$DATA_DIR/dd.page-cache"
    PAGE_CACHE_MBS=$(sed -n 's/^\([0-9]*\) bytes.* copied, \([0-9.e]*\) s,.*/\1 \2/p' "$RESULTS/dd-page-cache.txt" |
        awk -v m="$MIB" '{ printf "%.1f", $1 / $2 / m }')
    sync
}

# ---------------------------------------------------------------- setup

build() {
    if [[ -n ${SLUICED:-} && -n ${SLUICE_PERF:-} ]]; then
        SLUICE=${SLUICE:-$(dirname "$SLUICED")/sluice}
        return
    fi
    say "building sluiced, sluice and sluice-perf (release) from $TREE"
    (cd "$TREE" && cargo build --release -q -p sluice-broker -p sluice-perf -p sluice-tools) || die "build failed"
    SLUICED=$CARGO_TARGET_DIR/release/sluiced
    SLUICE_PERF=$CARGO_TARGET_DIR/release/sluice-perf
    SLUICE=$CARGO_TARGET_DIR/release/sluice
}

machine() {
    local fs
    fs=$(df -T "$DATA_DIR" | awk 'NR == 2 { print $2 " on " $1 }')
    {
        echo "date:       $(date -u +'%Y-%m-%d %H:%M UTC')"
        echo "tree:       $TREE at $(git -C "$TREE" rev-parse --short HEAD 2>/dev/null)$(git -C "$TREE" diff --quiet 2>/dev/null || echo ' (+ local changes)')"
        echo "binaries:   $SLUICED, $SLUICE_PERF"
        echo "cpu:        $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
        echo "memory:     $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "kernel:     $(uname -r)"
        echo "data dir:   $DATA_DIR ($fs)"
        echo "dirty:      vm.dirty_ratio=$(cat /proc/sys/vm/dirty_ratio) vm.dirty_background_ratio=$(cat /proc/sys/vm/dirty_background_ratio) vm.dirty_bytes=$(cat /proc/sys/vm/dirty_bytes)"
        echo "nofile:     $(ulimit -Sn) soft / $(ulimit -Hn) hard"
        echo "uptime:     $(uptime)"
    } | tee "$RESULTS/machine.txt"
}

# W1's length: 1.25x the dirty-page limit (what write-back throttling starts at), at least
# 4 GiB.
default_w1_mb() {
    local dirty_mb
    dirty_mb=$(awk -v ratio="$(cat /proc/sys/vm/dirty_ratio)" -v bytes="$(cat /proc/sys/vm/dirty_bytes)" \
        '/MemAvailable/ { if (bytes > 0) print int(bytes / 1048576); else print int($2 / 1024 * ratio / 100) }' /proc/meminfo)
    awk -v d="$dirty_mb" 'BEGIN { m = int(d * 1.25); print (m > 4096 ? m : 4096) }'
}

# ---------------------------------------------------------------- measurements

limits() {
    say "loopback bandwidth (${LOOPBACK_SECONDS} s)"
    "$SLUICE_PERF" loopback --seconds "$LOOPBACK_SECONDS" --json >"$RESULTS/loopback.json"
    LOOPBACK=$(json "$RESULTS/loopback.json" mb_per_sec)
    LOOPBACK_SENDER_CPU=$(json "$RESULTS/loopback.json" sender_cpu_s_per_gib)
    IPERF=n/a
    if command -v iperf3 >/dev/null; then
        iperf3 -s -1 -p "$PEER_PORT" >"$RESULTS/iperf3-server.txt" 2>&1 &
        PIDS+=("$!")
        sleep 0.5
        iperf3 -c 127.0.0.1 -p "$PEER_PORT" -t "$LOOPBACK_SECONDS" >"$RESULTS/iperf3.txt" 2>&1 &&
            IPERF=$(awk '/receiver/ { v = $7; u = $8 } END {
                m = (u ~ /^G/) ? 1e9 : (u ~ /^M/) ? 1e6 : 1e3; printf "%.0f", v * m / 8 / 1048576 }' "$RESULTS/iperf3.txt")
    fi
    say "disk: fsynced sequential writes of $DD_MB MiB (bs=1M) and $((DD_MB / 4)) MiB (bs=64k), oflag=dsync"
    DISK_SYNC_1M=$(dd_rate sync-1m bs=1M count="$DD_MB" oflag=dsync)
    DISK_SYNC_64K=$(dd_rate sync-64k bs=64k count=$((DD_MB * 4)) oflag=dsync)
    say "disk: sequential write of $DD_MB MiB, one fdatasync at the end"
    DISK_SEQ=$(dd_rate seq bs=1M count="$DD_MB" conv=fdatasync)
    say "disk: 2000 fsynced 1 KiB writes (the latency of one durable small write)"
    dd_rate sync-1k bs=1k count=2000 oflag=dsync >/dev/null
    DISK_SYNC_1K_MS=$(sed -n 's/.* copied, \([0-9.e]*\) s,.*/\1/p' "$RESULTS/dd-sync-1k.txt" |
        awk '{ printf "%.3f", $1 * 1000 / 2000 }')

    page_cache_write

    say "client ceiling: sluice-perf against the sink"
    "$SLUICE_PERF" sink --port "$SINK_PORT" >"$RESULTS/sink.log" 2>&1 &
    local sink=$!
    PIDS+=("$sink")
    wait_for_port "$SINK_PORT" "$sink" 30
    local before after
    before=$(cpu_seconds "$sink")
    produce ceiling-produce "$SINK_PORT" w1 "$W1_RECORDS" "${W1_PROPS[@]}"
    after=$(cpu_seconds "$sink")
    SINK_PRODUCE_CPU=$(calc "$after - $before")
    CEILING_PRODUCE=$(json "$RESULTS/ceiling-produce.json" mb_per_sec)
    before=$(cpu_seconds "$sink")
    consume ceiling-consume "$SINK_PORT" w1 "$W3_RECORDS"
    after=$(cpu_seconds "$sink")
    SINK_CONSUME_CPU=$(calc "$after - $before")
    CEILING_CONSUME=$(json "$RESULTS/ceiling-consume.json" mb_per_sec)
    # W4's floor: the same paced producer against the sink measures the client and the
    # machine's scheduling, with no broker work at all.
    say "W4 against the sink ($W4_SECONDS s): the latency floor of this client on this machine"
    THROUGHPUT=$W4_RATE produce ceiling-w4 "$SINK_PORT" w4 $((W4_RATE * W4_SECONDS)) "${W4_PROPS[@]}"
    stop "$sink"
}

# strace_run NAME PID CMD...: counts the syscalls of PID while CMD runs.
strace_run() {
    local name=$1 pid=$2
    shift 2
    strace -c -f -p "$pid" -o "$RESULTS/$name.strace" 2>"$RESULTS/$name.strace.log" &
    local tracer=$!
    sleep 1
    "$@"
    kill -INT "$tracer" 2>/dev/null || true
    wait "$tracer" 2>/dev/null || true
}
# syscall_total FILE: calls in an strace -c summary; syscall_top FILE PER: the three most
# frequent, per PER units.
syscall_total() { awk '$NF == "total" { print $4 }' "$1" 2>/dev/null || echo n/a; }
syscall_top() {
    awk -v per="$2" '$1 ~ /^[0-9.]+$/ && $NF != "total" && per > 0 { printf "%s %.2f\n", $NF, $4 / per }' "$1" 2>/dev/null |
        sort -k2 -rn | head -3 | paste -sd, - | sed 's/,/, /g'
}

sluice_default() {
    say "Sluice, default durability: W1 ($W1_MB MiB, acks=1, batch.size=$BATCH_SIZE, linger.ms=$LINGER_MS)"
    start_sluiced sluiced-default "$DATA_DIR/sluice-default"
    local before after
    before=$(cpu_seconds "$BROKER_PID")
    produce w1-sluice "$SLUICE_PORT" w1 "$W1_RECORDS" "${W1_PROPS[@]}"
    after=$(cpu_seconds "$BROKER_PID")
    W1=$(json "$RESULTS/w1-sluice.json" mb_per_sec)
    W1_CPU=$(calc "($after - $before) / ($W1_RECORDS * $RECORD_SIZE / 1073741824)")

    # W1 leaves gigabytes of dirty pages: write them back first, so that W3 and W4 do not
    # measure the kernel's write-back of W1 (W4's first seconds did: a 352 ms maximum).
    say "sync: writing back W1's dirty pages"
    sync
    say "W3: consume $W3_MB MiB of W1's records from the page cache"
    # Read twice: the second read moves the pages to the kernel's active list, where a
    # topic's hot tail lives (a first fetch would otherwise pay for the promotion).
    cat "$DATA_DIR"/sluice-default/w1-0/*.log "$DATA_DIR"/sluice-default/w1-0/*.log >/dev/null
    before=$(cpu_seconds "$BROKER_PID")
    consume w3-sluice "$SLUICE_PORT" w1 "$W3_RECORDS"
    after=$(cpu_seconds "$BROKER_PID")
    W3=$(json "$RESULTS/w3-sluice.json" mb_per_sec)
    W3_CPU=$(calc "($after - $before) / ($W3_MB / 1024)")

    say "W4: latency at $W4_RATE records/s for $W4_SECONDS s, acks=all, linger.ms=0"
    THROUGHPUT=$W4_RATE produce w4-sluice "$SLUICE_PORT" w4 $((W4_RATE * W4_SECONDS)) "${W4_PROPS[@]}"

    if [[ $PROFILE == 1 ]] && command -v strace >/dev/null; then
        say "profile: syscalls of sluiced during a short W1 and W3 (strace -c -f)"
        strace_run strace-w1 "$BROKER_PID" produce strace-w1 "$SLUICE_PORT" w1-strace 100000 "${W1_PROPS[@]}"
        strace_run strace-w3 "$BROKER_PID" consume strace-w3 "$SLUICE_PORT" w1 204800
        local batches
        batches=$(json "$RESULTS/strace-w1.json" batches)
        W1_SYSCALLS_PER_BATCH=$(ratio "$(syscall_total "$RESULTS/strace-w1.strace")" "$batches")
        W1_SYSCALLS_TOP=$(syscall_top "$RESULTS/strace-w1.strace" "$batches")
        W3_SYSCALLS_PER_MIB=$(ratio "$(syscall_total "$RESULTS/strace-w3.strace")" 200)
        W3_SYSCALLS_TOP=$(syscall_top "$RESULTS/strace-w3.strace" 200)
    fi
    stop "$BROKER_PID"
    w3_methods
    w4_one_shard
}

# w4_one_shard: W4 against a one-shard broker, where the connection and the partition always
# share a shard (with 2 shards, half the connections hop to the partition's shard and back).
w4_one_shard() {
    say "W4 with num.shards=1 (no cross-shard hop)"
    start_sluiced sluiced-one-shard "$DATA_DIR/sluice-one-shard" --override num.shards=1
    THROUGHPUT=$W4_RATE produce w4-sluice-one-shard "$SLUICE_PORT" w4 $((W4_RATE * W4_SECONDS)) "${W4_PROPS[@]}"
    stop "$BROKER_PID"
}

# w3_methods: W3 again on W1's data, alternating fetch.transfer.method=sendfile and splice
# (a broker restarted for each), W3_REPEAT times each: sets W3_SPLICE / W3_SENDFILE (lists
# of "MB/s@CPU-s per GiB").
w3_methods() {
    W3_SPLICE="" W3_SENDFILE=""
    local i method before after mbs cpu
    for ((i = 1; i <= W3_REPEAT; i++)); do
        for method in sendfile splice; do
            say "W3 ($method, run $i of $W3_REPEAT)"
            start_sluiced "sluiced-w3-$method" "$DATA_DIR/sluice-default" --override "fetch.transfer.method=$method"
            cat "$DATA_DIR"/sluice-default/w1-0/*.log >/dev/null
            before=$(cpu_seconds "$BROKER_PID")
            consume "w3-$method-$i" "$SLUICE_PORT" w1 "$W3_RECORDS"
            after=$(cpu_seconds "$BROKER_PID")
            stop "$BROKER_PID"
            mbs=$(json "$RESULTS/w3-$method-$i.json" mb_per_sec)
            cpu=$(calc "($after - $before) / ($W3_MB / 1024)")
            if [[ $method == splice ]]; then W3_SPLICE+=" $mbs@$cpu"; else W3_SENDFILE+=" $mbs@$cpu"; fi
        done
    done
}

sluice_fsync() {
    say "Sluice, fsync before ack: W2 ($W2_MB MiB, same flags as W1)"
    start_sluiced sluiced-fsync "$DATA_DIR/sluice-fsync" --override log.flush.interval.messages=1
    local before after
    before=$(cpu_seconds "$BROKER_PID")
    produce w2-sluice "$SLUICE_PORT" w2 "$W2_RECORDS" "${W1_PROPS[@]}"
    after=$(cpu_seconds "$BROKER_PID")
    W2=$(json "$RESULTS/w2-sluice.json" mb_per_sec)
    W2_CPU=$(calc "($after - $before) / ($W2_RECORDS * $RECORD_SIZE / 1073741824)")
    # What bounds W2: one producer has at most 5 requests of batch.size in flight, so a
    # group commit covers at most 5 x 16 KiB. The same run with 256 KiB batches shows it.
    say "W2 with batch.size=262144 (group size, not the disk, bounds W2)"
    produce w2-sluice-256k "$SLUICE_PORT" w2 "$W2_RECORDS" acks=1 "linger.ms=$LINGER_MS" batch.size=262144
    W2_256K=$(json "$RESULTS/w2-sluice-256k.json" mb_per_sec)
    say "W4 with fsync before ack"
    THROUGHPUT=$W4_RATE produce w4-sluice-fsync "$SLUICE_PORT" w4 $((W4_RATE * W4_SECONDS)) "${W4_PROPS[@]}"
    stop "$BROKER_PID"
}

peer() {
    PEER_W1=n/a PEER_W1_CPU=n/a PEER_W3=n/a PEER_W3_CPU=n/a PEER_VERSION="not installed"
    if [[ ! -x $TANSU ]]; then
        say "peer: $TANSU not found (cargo install tansu --features dynostore); skipping the peer"
        return
    fi
    PEER_VERSION=$("$TANSU" --version 2>/dev/null | head -1 || echo tansu)
    say "peer: $PEER_VERSION, memory storage: W1 and W3"
    "$TANSU" broker --storage-engine memory://tansu/ \
        --listener-url "tcp://127.0.0.1:$PEER_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$PEER_PORT" >"$RESULTS/tansu.log" 2>&1 &
    local pid=$! before after
    PIDS+=("$pid")
    wait_for_port "$PEER_PORT" "$pid" 60
    before=$(cpu_seconds "$pid")
    produce w1-peer "$PEER_PORT" w1 "$W1_RECORDS" "${W1_PROPS[@]}"
    after=$(cpu_seconds "$pid")
    PEER_W1=$(json "$RESULTS/w1-peer.json" mb_per_sec)
    PEER_W1_CPU=$(calc "($after - $before) / ($W1_RECORDS * $RECORD_SIZE / 1073741824)")
    before=$(cpu_seconds "$pid")
    consume w3-peer "$PEER_PORT" w1 "$W3_RECORDS"
    after=$(cpu_seconds "$pid")
    PEER_W3=$(json "$RESULTS/w3-peer.json" mb_per_sec)
    [[ $PEER_W3 == n/a ]] || PEER_W3_CPU=$(calc "($after - $before) / ($W3_MB / 1024)")
    stop "$pid"
}

w5() {
    local partitions=$((W5_TOPICS * W5_PARTITIONS)) dir=$DATA_DIR/sluice-w5
    say "W5: $W5_TOPICS topics x $W5_PARTITIONS partitions, one record each, then restart"
    start_sluiced sluiced-w5 "$dir"
    "$SLUICE_PERF" populate --bootstrap-server "127.0.0.1:$SLUICE_PORT" --topics "$W5_TOPICS" \
        --partitions "$W5_PARTITIONS" --topic-prefix w5- --json >"$RESULTS/w5-populate.json"
    local start=$EPOCHREALTIME
    stop "$BROKER_PID"
    W5_STOP_S=$(calc "$EPOCHREALTIME - $start")
    W5_STOP_HOW=$(grep -q 'stopped cleanly' "$RESULTS/sluiced-w5.log" && echo "cleanly" || echo "NOT cleanly: restart recovers every log")
    start=$EPOCHREALTIME
    start_sluiced sluiced-w5-restart "$dir"
    W5_READY_S=$(calc "$EPOCHREALTIME - $start")
    W5_RSS_KIB=$(awk '/VmRSS/ { print $2 }' "/proc/$BROKER_PID/status")
    W5_FDS=$(find "/proc/$BROKER_PID/fd" -mindepth 1 | wc -l)
    W5_FD_LIMIT=$(awk '/Max open files/ { print $4 }' "/proc/$BROKER_PID/limits")
    W5_RSS_PER_PARTITION=$(calc "$W5_RSS_KIB / $partitions")
    W5_PARTITIONS_TOTAL=$partitions
    stop "$BROKER_PID"
}

# ---------------------------------------------------------------- cluster (issue 9 §6)

# node_port ID OFFSET: node ID's client port (OFFSET 0) or controller port (OFFSET 1).
node_port() { echo $((CLUSTER_PORT + 2 * ($1 - 1) + $2)); }

# start_cluster NAME [KEY=VALUE...]: 3 combined broker+controller nodes formatted with
# `sluice storage format`, each under $DATA_DIR/sluice-NAME/node-ID; the extra keys go into
# every node's server.properties. With CLUSTER_LAYOUT=split: 3 controller-only nodes (1-3,
# the metadata quorum, no client listener) and W8_BROKERS broker-only nodes (4..), as
# perf/tests/cluster_roles.rs runs them. Sets NODE_PIDS[ID], CLUSTER_IDS and
# CLUSTER_BOOTSTRAP (the nodes with a broker role).
start_cluster() {
    local name=$1 id voters="" cluster_id
    shift
    CLUSTER_NAME=$name CLUSTER_BOOTSTRAP="" NODE_STARTS=0 CLUSTER_IDS="1 2 3"
    [[ ${CLUSTER_LAYOUT:-combined} != split ]] || CLUSTER_IDS="1 2 3 $(seq -s ' ' 4 $((3 + W8_BROKERS)))"
    cluster_id=$("$SLUICE" storage random-uuid)
    for id in 1 2 3; do voters+="${voters:+,}$id@127.0.0.1:$(node_port "$id" 1)"; done
    for id in $CLUSTER_IDS; do
        local dir=$DATA_DIR/sluice-$name/node-$id roles listeners
        roles=$(node_roles "$id")
        listeners="PLAINTEXT://127.0.0.1:$(node_port "$id" 0),CONTROLLER://127.0.0.1:$(node_port "$id" 1)"
        [[ $roles == controller ]] && listeners="CONTROLLER://127.0.0.1:$(node_port "$id" 1)"
        [[ $roles == broker ]] && listeners="PLAINTEXT://127.0.0.1:$(node_port "$id" 0)"
        mkdir -p "$dir/data"
        {
            echo "process.roles=$roles"
            echo "node.id=$id"
            echo "controller.quorum.voters=$voters"
            echo "listeners=$listeners"
            [[ $roles == controller ]] || echo "advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$id" 0)"
            echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            echo "controller.listener.names=CONTROLLER"
            echo "inter.broker.listener.name=PLAINTEXT"
            echo "log.dirs=$dir/data"
            echo "min.insync.replicas=2"
            printf '%s\n' "$@"
        } >"$dir/server.properties"
        "$SLUICE" storage format -t "$cluster_id" -c "$dir/server.properties" >>"$RESULTS/$name-format.log" 2>&1 ||
            die "formatting node $id failed (see $RESULTS/$name-format.log)"
        [[ $roles == controller ]] || CLUSTER_BOOTSTRAP+="${CLUSTER_BOOTSTRAP:+,}127.0.0.1:$(node_port "$id" 0)"
    done
    for id in $CLUSTER_IDS; do start_node "$id" nowait; done
    for id in $CLUSTER_IDS; do wait_for_line "$(node_log "$id")" 'ready:' "${NODE_PIDS[$id]}" 120; done
}
# node_roles ID: process.roles of node ID in the current layout.
node_roles() {
    if [[ ${CLUSTER_LAYOUT:-combined} != split ]]; then
        echo broker,controller
    elif (($1 <= 3)); then
        echo controller
    else
        echo broker
    fi
}
node_log() { echo "$RESULTS/$CLUSTER_NAME-node-$1-${NODE_LOGS[$1]}.log"; }
# start_node ID [nowait]: starts (or restarts, on the same dirs and ports) node ID, each
# start logging to a file of its own.
start_node() {
    NODE_STARTS=$((NODE_STARTS + 1))
    NODE_LOGS[$1]=$NODE_STARTS
    "$SLUICED" "$DATA_DIR/sluice-$CLUSTER_NAME/node-$1/server.properties" >"$(node_log "$1")" 2>&1 &
    NODE_PIDS[$1]=$!
    PIDS+=("$!")
    [[ ${2:-} == nowait ]] || wait_for_line "$(node_log "$1")" 'ready:' "${NODE_PIDS[$1]}" 120
}
stop_cluster() {
    local id
    for id in $CLUSTER_IDS; do still_ours "${NODE_PIDS[$id]}" && kill -TERM "${NODE_PIDS[$id]}" 2>/dev/null || true; done
    for id in $CLUSTER_IDS; do wait "${NODE_PIDS[$id]}" 2>/dev/null || true; done
}
# broker_pids: NODE=PID of every node of the cluster (the ones verify may strike).
broker_pids() {
    local id out=""
    for id in $CLUSTER_IDS; do out+="${out:+,}$id=${NODE_PIDS[$id]}"; done
    echo "$out"
}
# create_topic TOPIC PARTITIONS: RF=3, retried while a restarted node registers again
# (INVALID_REPLICATION_FACTOR until 3 brokers are unfenced).
create_topic() {
    local i
    for ((i = 0; i < 120; i++)); do
        "$SLUICE" topics --bootstrap-server "$CLUSTER_BOOTSTRAP" --create --topic "$1" --partitions "$2" \
            --replication-factor 3 >>"$RESULTS/$CLUSTER_NAME-topics.log" 2>&1 && return
        sleep 0.5
    done
    die "could not create $1 (see $RESULTS/$CLUSTER_NAME-topics.log)"
}
# leader_of TOPIC PARTITION: node id from `sluice topics --describe`.
leader_of() {
    "$SLUICE" topics --bootstrap-server "$CLUSTER_BOOTSTRAP" --describe --topic "$1" 2>/dev/null |
        sed -n "s/.*Partition: $2\tLeader: \([0-9]*\).*/\1/p" | head -1
}

# w6: the same producer against a single broker (acks=1) and a 3-node cluster (RF=3,
# acks=all, min.insync.replicas=2), one partition each, in this run; the CPU seconds of the
# partition's leader and of both followers.
w6() {
    local records=$((W6_MB * MIB / RECORD_SIZE)) gib id before after
    local props=("linger.ms=$LINGER_MS" "batch.size=$BATCH_SIZE")
    say "W6: single broker, acks=1, $W6_MB MiB"
    start_sluiced sluiced-w6-single "$DATA_DIR/sluice-w6-single"
    produce w6-single "$SLUICE_PORT" w6 "$records" acks=1 "${props[@]}"
    stop "$BROKER_PID"
    [[ $KEEP_DATA == 1 ]] || rm -rf "$DATA_DIR/sluice-w6-single"
    say "W6: 3 brokers, RF=3, acks=all, min.insync.replicas=2, $W6_MB MiB"
    start_cluster w6 "${CLUSTER_PROPS[@]}"
    create_topic w6 1
    W6_LEADER=$(leader_of w6 0)
    [[ -n $W6_LEADER ]] || die "no leader for w6-0"
    declare -A cpu_before
    sleep "$W6_IDLE_S"
    for id in 1 2 3; do cpu_before[$id]=$(cpu_seconds "${NODE_PIDS[$id]}"); done
    W6_IDLE_START=$EPOCHREALTIME
    sleep "$W6_IDLE_S"
    W6_IDLE=""
    for id in 1 2 3; do
        W6_IDLE+="${W6_IDLE:+ }$(calc "($(cpu_seconds "${NODE_PIDS[$id]}") - ${cpu_before[$id]}) / ($EPOCHREALTIME - $W6_IDLE_START)")"
        cpu_before[$id]=$(cpu_seconds "${NODE_PIDS[$id]}")
    done
    local follower=1 tracer=""
    while [[ $follower == "$W6_LEADER" ]]; do follower=$((follower + 1)); done
    if [[ $PROFILE == 1 ]] && command -v perf >/dev/null; then
        perf record -F 499 -g -p "${NODE_PIDS[$follower]}" -o "$RESULTS/w6-follower.perf" \
            >"$RESULTS/w6-follower.perf.log" 2>&1 &
        tracer=$!
    fi
    produce w6-cluster "$(node_port 1 0)" w6 "$records" acks=all "${props[@]}"
    if [[ -n $tracer ]]; then
        kill -INT "$tracer" 2>/dev/null || true
        wait "$tracer" 2>/dev/null || true
        # Where a follower's CPU goes (its fetch loop, its append): W6_PROFILE in the table.
        perf report -i "$RESULTS/w6-follower.perf" --stdio --no-children -g none --sort comm,symbol \
            --percent-limit 1.5 >"$RESULTS/w6-follower-profile.txt" 2>/dev/null || true
        perf report -i "$RESULTS/w6-follower.perf" --stdio --children -g none --sort symbol \
            --percent-limit 3 >"$RESULTS/w6-follower-children.txt" 2>/dev/null || true
        W6_PROFILE="node $follower: $RESULTS/w6-follower-profile.txt"
    fi
    gib=$(calc "$records * $RECORD_SIZE / 1073741824")
    W6_FOLLOWER_CPU=""
    for id in 1 2 3; do
        after=$(cpu_seconds "${NODE_PIDS[$id]}")
        local per_gib
        per_gib=$(calc "($after - ${cpu_before[$id]}) / $gib")
        if [[ $id == "$W6_LEADER" ]]; then W6_LEADER_CPU=$per_gib; else W6_FOLLOWER_CPU+="${W6_FOLLOWER_CPU:+ / }$per_gib"; fi
    done
    stop_cluster
    [[ $KEEP_DATA == 1 ]] || rm -rf "$DATA_DIR/sluice-w6"
}

# w7_run SETTING SIGNAL RUN: one verify run that strikes the leader of partition 0, then
# restarts the struck node.
w7_run() {
    local setting=$1 signal=$2 run=$3 topic="w7-$2-$3" out
    out="$RESULTS/w7-$setting-$signal-$run.json"
    create_topic "$topic" 3
    timeout "$RUN_TIMEOUT_S" "$SLUICE_PERF" verify --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "$topic" \
        --acks all --idempotent --producers 2 --throughput "$W7_RATE" --record-size "$RECORD_SIZE" \
        --duration "$W7_DURATION" --fault "$signal" --fault-after "$W7_FAULT_AFTER" \
        --broker-pids "$(broker_pids)" --consumer-group "$topic" --json >"$out" 2>"${out%.json}.err" ||
        say "w7 $setting $signal $run: $(tail -1 "${out%.json}.err")"
    restart_struck "$out"
}

# restart_struck JSON: restarts the node a verify run struck (fault_node in its JSON).
restart_struck() {
    local node
    node=$(json "$1" fault_node)
    if [[ $node == n/a ]]; then
        say "$(basename "$1" .json): no strike recorded"
        return
    fi
    wait "${NODE_PIDS[$node]}" 2>/dev/null || true
    start_node "$node"
}

# w7: W7_RUNS SIGKILLs and W7_TERM_RUNS SIGTERMs of a leader under idempotent acks=all
# load, once per setting (Kafka's defaults, then the shortened timeouts of the CI test).
w7() {
    local setting run signal
    for setting in $W7_SETTINGS; do
        local extra=("${CLUSTER_PROPS[@]}")
        [[ $setting == short ]] && extra+=("${W7_SHORT_PROPS[@]}")
        [[ $setting == nogossip ]] && extra+=(sluice.gossip.enable=false)
        say "W7 ($setting): $W7_RUNS x SIGKILL, $W7_TERM_RUNS x SIGTERM of a leader under acks=all"
        start_cluster "w7-$setting" "${extra[@]}"
        for signal in kill term; do
            local runs=$W7_RUNS
            [[ $signal == term ]] && runs=$W7_TERM_RUNS
            for ((run = 1; run <= runs; run++)); do w7_run "$setting" "$signal" "$run"; done
        done
        stop_cluster
        [[ $KEEP_DATA == 1 ]] || rm -rf "$DATA_DIR/sluice-w7-$setting"
    done
}

# w7_stat SETTING SIGNAL KEY median|max|count: KEY over that setting's runs.
w7_stat() { runs_stat "w7-$1-$2-*.json" "$3" "$4"; }
# w7_figures SETTING SIGNAL KEY: "median / max ms (n of N runs)".
w7_figures() { runs_figures "w7-$1-$2-*.json" "$3"; }
# w7_lost SETTING: lost + duplicated over every run of SETTING.
w7_lost() { runs_lost "w7-$1-*.json"; }

# ---------------------------------------------------------------- W8: the controller role

# w8_verify NAME [VERIFY FLAG...]: one verify run under W7's load (idempotent acks=all, a
# group consumer reading meanwhile) on a new topic of 3 partitions RF=3; JSON to
# $RESULTS/w8-NAME.json.
w8_verify() {
    local name=$1 out=$RESULTS/w8-$1.json
    shift
    timeout "$RUN_TIMEOUT_S" "$SLUICE_PERF" verify --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "w8-$name" \
        --acks all --idempotent --producers 2 --throughput "$W7_RATE" --record-size "$RECORD_SIZE" \
        --duration "$W7_DURATION" --consumer-group "w8-$name" "$@" --json >"$out" 2>"${out%.json}.err" ||
        say "w8 $name: $(tail -1 "${out%.json}.err")"
}

# w8_kill_controller CASE RUN: verify SIGKILLs the active controller (DescribeQuorum's
# leader) W7_FAULT_AFTER into the run; then the struck node is restarted.
w8_kill_controller() {
    local name=$1-kill-$2
    create_topic "w8-$name" 3
    w8_verify "$name" --fault kill --fault-target controller --fault-after "$W7_FAULT_AFTER" \
        --broker-pids "$(broker_pids)"
    restart_struck "$RESULTS/w8-$name.json"
}

# quorum_leader: LeaderId of `sluice metadata-quorum describe --status` (empty: none).
quorum_leader() {
    "$SLUICE" metadata-quorum --bootstrap-server "$CLUSTER_BOOTSTRAP" describe --status 2>/dev/null |
        sed -n 's/^LeaderId:[[:space:]]*\(-\{0,1\}[0-9]*\).*/\1/p' | head -1 || true
}

# w8_remove_leader RUN: on a fresh combined cluster, a verify run with no fault while the
# script removes the metadata quorum's leader from the voters W7_FAULT_AFTER into it
# (RemoveRaftVoter: `sluice metadata-quorum remove-controller`), which forces a new quorum
# leader while the removed node's broker role keeps running. Writes
# $RESULTS/w8-remove-RUN.txt: when, how long the command took, the leaders before and after.
w8_remove_leader() {
    local run=$1 name=remove-$1 launched leader dir_id t0 t1 changed="" now i pid
    start_cluster "w8-$name" "${CLUSTER_PROPS[@]}"
    create_topic "w8-$name" 3
    launched=$EPOCHREALTIME
    w8_verify "$name" &
    pid=$!
    case $W7_FAULT_AFTER in
        *ms) sleep "$(calc "${W7_FAULT_AFTER%ms} / 1000")" ;;
        *) sleep "${W7_FAULT_AFTER%s}" ;;
    esac
    leader=$(quorum_leader)
    dir_id=$(sed -n 's/^directory.id=//p' "$DATA_DIR/sluice-w8-$name/node-$leader/data/meta.properties" 2>/dev/null)
    t0=$EPOCHREALTIME
    "$SLUICE" metadata-quorum --bootstrap-server "$CLUSTER_BOOTSTRAP" remove-controller \
        --controller-id "$leader" --controller-directory-id "$dir_id" >"$RESULTS/w8-$name.command.log" 2>&1 ||
        say "w8 $name: remove-controller failed: $(tail -1 "$RESULTS/w8-$name.command.log")"
    t1=$EPOCHREALTIME
    for ((i = 0; i < 100; i++)); do
        now=$(quorum_leader)
        if [[ -n $now && $now != -1 && $now != "$leader" ]]; then
            changed=$(calc "($EPOCHREALTIME - $t0) * 1000")
            break
        fi
        sleep 0.1
    done
    wait "$pid" || true
    {
        echo "removed_leader=$leader directory_id=$dir_id"
        echo "remove_at_ms=$(calc "($t0 - $launched) * 1000") (from launching verify)"
        echo "remove_command_ms=$(calc "($t1 - $t0) * 1000")"
        echo "new_leader=${now:-none} new_leader_seen_ms=${changed:-never} (polled every 0.1 s)"
        echo "removed node still running: $(still_ours "${NODE_PIDS[$leader]}" && echo yes || echo no)"
    } >"$RESULTS/w8-$name.txt"
    stop_cluster
    [[ $KEEP_DATA == 1 ]] || rm -rf "$DATA_DIR/sluice-w8-$name"
}

# w8: "losing only the controller role does not pause produce or fetch" (issue 11 §4): (a)
# 3 controller-only + W8_BROKERS broker-only nodes, SIGKILL of the active controller; (c)
# 3 combined nodes, SIGKILL of the active controller (which also holds replicas); (b) 3
# combined nodes, the quorum leader removed from the voters (no process stopped). Each
# layout first runs W8_BASE_RUNS runs with no fault: the gaps a run has anyway.
w8() {
    local run
    [[ " $W8_CASES " != *" split "* ]] ||
        w8_kills split "(a): 3 controller-only + $W8_BROKERS broker-only nodes"
    [[ " $W8_CASES " != *" combined "* ]] || w8_kills combined "(c): 3 combined nodes"
    [[ " $W8_CASES " == *" remove "* ]] || return 0
    say "W8 (b): 3 combined nodes, $W8_REMOVE_RUNS x the quorum leader removed from the voters"
    for ((run = 1; run <= W8_REMOVE_RUNS; run++)); do w8_remove_leader "$run"; done
}
# w8_kills LAYOUT TITLE: on a cluster of LAYOUT (split or combined), W8_BASE_RUNS runs with
# no fault, then W8_RUNS with a SIGKILL of the active controller.
w8_kills() {
    local layout=$1 run
    say "W8 $2, $W8_RUNS x SIGKILL of the active controller"
    CLUSTER_LAYOUT=$layout start_cluster "w8-$layout" "${CLUSTER_PROPS[@]}"
    for ((run = 1; run <= W8_BASE_RUNS; run++)); do
        create_topic "w8-$layout-base-$run" 3
        w8_verify "$layout-base-$run"
    done
    for ((run = 1; run <= W8_RUNS; run++)); do w8_kill_controller "$layout" "$run"; done
    stop_cluster
    [[ $KEEP_DATA == 1 ]] || rm -rf "$DATA_DIR/sluice-w8-$layout"
}

# runs_stat GLOB KEY median|max|count: KEY over the JSON files $RESULTS/GLOB.
runs_stat() {
    local f
    for f in "$RESULTS"/$1; do
        [[ -e $f ]] && echo "$(json "$f" "$2")"
    done | grep -v 'n/a' | sort -n | awk -v want="$3" '{ v[++n] = $1 } END {
        if (want == "count") { print n + 0; exit }
        if (n == 0) { print "n/a"; exit }
        m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "%.0f", (want == "max") ? v[n] : m }'
}
# runs_figures GLOB KEY: "median / max ms (n of N)".
runs_figures() {
    local runs
    runs=$(compgen -G "$RESULTS/$1" | wc -l)
    echo "$(runs_stat "$1" "$2" median) / $(runs_stat "$1" "$2" max) ms ($(runs_stat "$1" "$2" count) of $runs)"
}
# no_pause GLOB BASE_GLOB KEY: the goal "no pause": the runs' longest KEY within twice the
# longest of the no-fault runs'.
no_pause() {
    local base
    base=$(runs_stat "$2" "$3" max)
    echo "no pause (<= 2 x no-fault max $base ms): $(verdict "$(runs_stat "$1" "$3" max) <= 2 * $base")"
}
# runs_lost GLOB: lost / duplicated over the runs.
runs_lost() {
    local f lost=0 dup=0 v
    for f in "$RESULTS"/$1; do
        [[ -e $f ]] || continue
        v=$(json "$f" lost); [[ $v == n/a ]] || lost=$((lost + v))
        v=$(json "$f" duplicated); [[ $v == n/a ]] || dup=$((dup + v))
    done
    echo "$lost / $dup"
}
# w8_removals: "leader changed in A, B, C ms" over the (b) runs.
w8_removals() {
    local f out=""
    for f in "$RESULTS"/w8-remove-*.txt; do
        [[ -e $f ]] || continue
        out+="${out:+, }$(sed -n 's/.*new_leader_seen_ms=\([^ ]*\).*/\1/p' "$f")"
    done
    echo "new quorum leader seen after ${out:-n/a} ms"
}

# w8_report: W8's rows, then the consumer's side of W7.
w8_report() {
    local case base
    for case in split combined; do
        base="w8-$case-base-*.json"
        [[ $case == split ]] && row "W8 (a) 3 controller-only + $W8_BROKERS broker-only" "" "" ""
        [[ $case == combined ]] && row "W8 (c) 3 combined nodes" "" "" ""
        row "  no fault: longest gap, produce" "$(runs_figures "$base" unavailable_max_ms)" "1 partition: $(runs_figures "$base" partition_unavailable_max_ms)" ""
        row "  no fault: longest gap, consume" "$(runs_figures "$base" consume_gap_max_ms)" "1 partition: $(runs_figures "$base" consume_partition_gap_max_ms)" ""
        row "  SIGKILL controller: longest gap, produce" "$(runs_figures "w8-$case-kill-*.json" unavailable_max_ms)" "1 partition: $(runs_figures "w8-$case-kill-*.json" partition_unavailable_max_ms)" "$(no_pause "w8-$case-kill-*.json" "$base" partition_unavailable_max_ms)"
        row "  SIGKILL controller: longest gap, consume" "$(runs_figures "w8-$case-kill-*.json" consume_gap_max_ms)" "1 partition: $(runs_figures "w8-$case-kill-*.json" consume_partition_gap_max_ms)" "$(no_pause "w8-$case-kill-*.json" "$base" consume_partition_gap_max_ms)"
        row "  SIGKILL controller: fault to next read" "$(runs_figures "w8-$case-kill-*.json" consume_after_fault_ms)" "its partitions, read from a new leader: $(runs_figures "w8-$case-kill-*.json" consume_failover_ms)" ""
        row "  SIGKILL controller: to new leader's ack" "$(runs_figures "w8-$case-kill-*.json" failover_ms)" "only runs where it led partitions" ""
        row "  lost / duplicated, all runs" "$(runs_lost "w8-$case-*.json")" "" ""
    done
    base="w8-combined-base-*.json"
    row "W8 (b) quorum leader removed, 3 combined" "" "$(w8_removals)" ""
    row "  longest gap, produce" "$(runs_figures "w8-remove-*.json" unavailable_max_ms)" "1 partition: $(runs_figures "w8-remove-*.json" partition_unavailable_max_ms)" "$(no_pause "w8-remove-*.json" "$base" partition_unavailable_max_ms)"
    row "  longest gap, consume" "$(runs_figures "w8-remove-*.json" consume_gap_max_ms)" "1 partition: $(runs_figures "w8-remove-*.json" consume_partition_gap_max_ms)" "$(no_pause "w8-remove-*.json" "$base" consume_partition_gap_max_ms)"
    row "  lost / duplicated, all runs" "$(runs_lost "w8-remove-*.json")" "" ""
}
# w7_consume_report: the group consumer's side of each W7 setting.
w7_consume_report() {
    local setting signal
    for setting in $W7_SETTINGS; do
        for signal in kill term; do
            row "W7 $setting: SIG${signal^^}, fault to next read" "$(w7_figures "$setting" "$signal" consume_after_fault_ms)" "struck leader's partitions read again: $(w7_figures "$setting" "$signal" consume_failover_ms)" ""
            row "W7 $setting: SIG${signal^^}, longest read gap" "$(w7_figures "$setting" "$signal" consume_gap_max_ms)" "1 partition: $(w7_figures "$setting" "$signal" consume_partition_gap_max_ms)" ""
        done
    done
}

# ---------------------------------------------------------------- report

row() { printf '%-44s %14s  %-40s %s\n' "$@"; }

report() {
    local w1_ratio_peer w1_ratio_loop w1_ratio_ceiling w2_ratio_1m w2_ratio_64k w3_ratio_loop w3_ratio_ceiling
    w1_ratio_peer=$(ratio "$W1" "$PEER_W1")
    w1_ratio_loop=$(ratio "$W1" "$LOOPBACK")
    w1_ratio_ceiling=$(ratio "$W1" "$CEILING_PRODUCE")
    w2_ratio_1m=$(ratio "$W2" "$DISK_SYNC_1M")
    w2_ratio_64k=$(ratio "$W2" "$DISK_SYNC_64K")
    w3_ratio_loop=$(ratio "$W3" "$LOOPBACK")
    w3_ratio_ceiling=$(ratio "$W3" "$CEILING_CONSUME")
    local w4="$RESULTS/w4-sluice.json" w4f="$RESULTS/w4-sluice-fsync.json"
    echo
    echo "Figures (MB = 2^20 bytes; records of $RECORD_SIZE bytes; broker CPU = utime+stime of its process)"
    row "measure" "figure" "reference / ratio" "target"
    row "loopback TCP, 2 processes (sluice-perf)" "$LOOPBACK MB/s" "iperf3: $IPERF MB/s" ""
    row "disk, fsynced writes bs=1M (dd oflag=dsync)" "$DISK_SYNC_1M MB/s" "" ""
    row "disk, fsynced writes bs=64k" "$DISK_SYNC_64K MB/s" "" ""
    row "disk, sequential, one fdatasync at end" "$DISK_SEQ MB/s" "" ""
    row "disk, one fsynced 1 KiB write (dsync)" "$DISK_SYNC_1K_MS ms" "mean of 2000 (dd bs=1k oflag=dsync)" ""
    row "page cache, buffered writes, W1's size" "$PAGE_CACHE_MBS MB/s" "dd CPU $PAGE_CACHE_CPU s per GiB (bs=16k, new file)" ""
    row "client ceiling, produce (sink)" "$CEILING_PRODUCE MB/s" "client CPU $(client_cpu ceiling-produce) s, sink ${SINK_PRODUCE_CPU:-n/a} s" ""
    row "client ceiling, consume (sink)" "$CEILING_CONSUME MB/s" "client CPU $(client_cpu ceiling-consume) s, sink ${SINK_CONSUME_CPU:-n/a} s" ""
    row "W1 produce, $W1_MB MiB, Sluice" "$W1 MB/s" "$w1_ratio_peer x peer" ">= 3x: $(verdict "$w1_ratio_peer >= 3")"
    row "" "" "$w1_ratio_loop of loopback, $w1_ratio_ceiling of client" "$(binding "$CEILING_PRODUCE" "$LOOPBACK" 0.8 0.5 "$w1_ratio_ceiling" "$w1_ratio_loop")"
    row "W1 client CPU, Sluice" "$(client_cpu w1-sluice) s" "against the peer: $(client_cpu w1-peer) s" ""
    row "W1 produce, peer ($PEER_VERSION)" "$PEER_W1 MB/s" "" ""
    row "W1 Sluice CPU per GiB produced" "$W1_CPU CPU-s" "peer: $PEER_W1_CPU CPU-s" ""
    row "W1 Sluice syscalls per produced batch" "${W1_SYSCALLS_PER_BATCH:-n/a}" "${W1_SYSCALLS_TOP:-}" "strace -c -f"
    row "W3 Sluice syscalls per MiB fetched" "${W3_SYSCALLS_PER_MIB:-n/a}" "${W3_SYSCALLS_TOP:-}" "strace -c -f"
    row "W2 produce, fsync before ack, $W2_MB MiB" "$W2 MB/s" "$w2_ratio_1m of dsync 1M" ">= 0.8: $(verdict "$w2_ratio_1m >= 0.8")"
    row "" "" "$w2_ratio_64k of dsync 64k" ">= 0.8: $(verdict "$w2_ratio_64k >= 0.8")"
    row "W2 Sluice CPU per GiB produced" "$W2_CPU CPU-s" "" ""
    row "W2 with batch.size=262144" "${W2_256K:-n/a} MB/s" "$(ratio "${W2_256K:-n/a}" "$DISK_SYNC_1M") of dsync 1M" "(explains W2)"
    row "W3 consume $W3_MB MiB, page cache, Sluice" "$W3 MB/s" "$w3_ratio_loop of loopback, $w3_ratio_ceiling of client" "$(binding "$CEILING_CONSUME" "$LOOPBACK" 0.8 0.8 "$w3_ratio_ceiling" "$w3_ratio_loop")"
    row "W3 client CPU" "$(client_cpu w3-sluice) s" "" ""
    row "W3 again, splice: MB/s@CPU-s per GiB" "" "${W3_SPLICE:- n/a}" "fetch.transfer.method=splice"
    row "W3 again, sendfile: MB/s@CPU-s per GiB" "" "${W3_SENDFILE:- n/a}" "fetch.transfer.method=sendfile"
    row "W3 Sluice CPU per GiB fetched" "$W3_CPU CPU-s" "loopback's sender alone: $LOOPBACK_SENDER_CPU CPU-s" "<= 0.1: $(verdict "$W3_CPU <= 0.1")"
    row "W3 consume, peer" "$PEER_W3 MB/s" "peer CPU per GiB: $PEER_W3_CPU" ""
    row "W4 default durability p50 / p99 / p99.9" "$(json "$w4" latency_p50_ms) / $(json "$w4" latency_p99_ms) / $(json "$w4" latency_p999_ms) ms" "max $(json "$w4" latency_max_ms) ms, $(json "$w4" records_per_sec) rec/s" "p99 <= 1: $(verdict "$(json "$w4" latency_p99_ms) <= 1"), p99.9 <= 5: $(verdict "$(json "$w4" latency_p999_ms) <= 5")"
    row "W4 fsync before ack p50 / p99 / p99.9" "$(json "$w4f" latency_p50_ms) / $(json "$w4f" latency_p99_ms) / $(json "$w4f" latency_p999_ms) ms" "max $(json "$w4f" latency_max_ms) ms, $(json "$w4f" records_per_sec) rec/s" "p99 <= 1: $(verdict "$(json "$w4f" latency_p99_ms) <= 1"), p99.9 <= 5: $(verdict "$(json "$w4f" latency_p999_ms) <= 5")"
    local w4c="$RESULTS/ceiling-w4.json"
    row "W4 against the sink p50 / p99 / p99.9" "$(json "$w4c" latency_p50_ms) / $(json "$w4c" latency_p99_ms) / $(json "$w4c" latency_p999_ms) ms" "max $(json "$w4c" latency_max_ms) ms (client + machine, no broker)" "(explains W4)"
    local w4s="$RESULTS/w4-sluice-one-shard.json"
    row "W4 one shard p50 / p99 / p99.9" "$(json "$w4s" latency_p50_ms) / $(json "$w4s" latency_p99_ms) / $(json "$w4s" latency_p999_ms) ms" "max $(json "$w4s" latency_max_ms) ms (num.shards=1)" "(explains W4)"
    row "W5 $W5_PARTITIONS_TOTAL partitions: start to ready" "$W5_READY_S s" "SIGTERM: stopped $W5_STOP_HOW in $W5_STOP_S s" "<= 2 s: $(verdict "$W5_READY_S <= 2")"
    row "W5 setup: CreateTopics / one record each" "$(json "$RESULTS/w5-populate.json" create_ms) / $(json "$RESULTS/w5-populate.json" produce_ms) ms" "" ""
    row "W5 RSS after ready" "$W5_RSS_KIB KiB" "$W5_RSS_PER_PARTITION KiB per partition" "<= 50: $(verdict "$W5_RSS_PER_PARTITION <= 50")"
    row "W5 open descriptors after ready" "$W5_FDS" "limit $W5_FD_LIMIT" "within: $(verdict "$W5_FDS < $W5_FD_LIMIT")"
    local w6s="$RESULTS/w6-single.json" w6c="$RESULTS/w6-cluster.json" setting
    row "W6 1 partition, RF=3, acks=all, 3 brokers" "$(json "$w6c" mb_per_sec) MB/s" "$(ratio "$(json "$w6c" mb_per_sec)" "$(json "$w6s" mb_per_sec)") of one broker's acks=1: $(json "$w6s" mb_per_sec) MB/s" ""
    row "W6 p50 / p99 / p99.9, RF=3 acks=all" "$(json "$w6c" latency_p50_ms) / $(json "$w6c" latency_p99_ms) / $(json "$w6c" latency_p999_ms) ms" "one broker acks=1: $(json "$w6s" latency_p50_ms) / $(json "$w6s" latency_p99_ms) / $(json "$w6s" latency_p999_ms) ms" "(unpaced: includes queueing)"
    row "W6 broker CPU per GiB, leader (node ${W6_LEADER:-?})" "${W6_LEADER_CPU:-n/a} CPU-s" "followers: ${W6_FOLLOWER_CPU:-n/a} CPU-s" "follower <= leader: $(verdict "$(echo "${W6_FOLLOWER_CPU:-n/a}" | awk -F' / ' '{ print ($1 > $2 ? $1 : $2) }') <= ${W6_LEADER_CPU:-n/a}")"
    row "W6 idle CPU-s per second, nodes 1 2 3" "${W6_IDLE:-n/a}" "measured for ${W6_IDLE_S} s before the run (heartbeats, fetch loops)" ""
    row "W6 follower profile (perf record)" "" "${W6_PROFILE:-n/a}" ""
    for setting in $W7_SETTINGS; do
        local goal_kill="" goal_term=""
        [[ $setting == default ]] && goal_kill="median <= 2000 ms: $(verdict "$(w7_stat default kill failover_ms median) <= 2000")"
        goal_term="max <= 200 ms: $(verdict "$(w7_stat "$setting" term partition_unavailable_max_ms max) <= 200")"
        row "W7 $setting: SIGKILL to new leader's ack" "$(w7_figures "$setting" kill failover_ms)" "median / max (runs that recovered of runs)" "$goal_kill"
        row "W7 $setting: SIGKILL, longest gap, all" "$(w7_figures "$setting" kill unavailable_max_ms)" "between any two acknowledgements" ""
        row "W7 $setting: SIGTERM, longest gap, 1 partition" "$(w7_figures "$setting" term partition_unavailable_max_ms)" "SIGTERM to new leader's ack: $(w7_figures "$setting" term failover_ms)" "$goal_term"
        row "W7 $setting: lost / duplicated, all runs" "$(w7_lost "$setting")" "$(w7_props "$setting")" ""
    done
    [[ $PARTS != *" failover "* ]] || w7_consume_report
    [[ $PARTS != *" controller "* ]] || w8_report
    echo
    echo "Run lengths: W1 $W1_MB MiB ($W1_RECORDS records), W2 $W2_MB MiB, W3 $W3_MB MiB, W4 $W4_SECONDS s x 2, loopback $LOOPBACK_SECONDS s, dd $DD_MB MiB"
    echo "W1/W2 producer: ${W1_PROPS[*]}; W4 producer: ${W4_PROPS[*]}"
    echo "W6: $W6_MB MiB, linger.ms=$LINGER_MS batch.size=$BATCH_SIZE; W7: sluice-perf verify --acks all --idempotent --producers 2 --throughput $W7_RATE --duration $W7_DURATION --fault kill|term --fault-after $W7_FAULT_AFTER, 3 partitions RF=3"
    echo "W7/W8 consumer: verify --consumer-group (one member, range assignor, Kafka's consumer defaults, auto.commit.interval.ms=1000); W8: $W8_RUNS SIGKILLs per layout, $W8_BASE_RUNS no-fault runs before them, $W8_REMOVE_RUNS quorum-leader removals, each as one W7 run"
    echo "load average before: $LOAD_BEFORE"
    echo "load average after:  $(uptime)"
    echo "raw outputs: $RESULTS"
}

main() {
    command -v dd >/dev/null || die "dd is needed"
    mkdir -p "$DATA_DIR" "$RESULTS"
    build
    [[ -x $SLUICED && -x $SLUICE_PERF ]] || die "missing binaries: $SLUICED $SLUICE_PERF"
    LOAD_BEFORE=$(uptime)
    machine
    W1_MB=${W1_MB:-$(default_w1_mb)}
    W1_RECORDS=$((W1_MB * MIB / RECORD_SIZE))
    W3_MB=$((W3_MB < W1_MB ? W3_MB : W1_MB))
    W3_RECORDS=$((W3_MB * MIB / RECORD_SIZE))
    W1_PROPS=(acks=1 "linger.ms=$LINGER_MS" "batch.size=$BATCH_SIZE")
    W4_PROPS=(acks=all linger.ms=0 "batch.size=$BATCH_SIZE")
    PARTS=" ${PARTS:-limits sluice fsync peer w5 cluster failover} "
    [[ $PARTS != *" cluster "* && $PARTS != *" failover "* && $PARTS != *" controller "* ]] || [[ -x $SLUICE ]] ||
        die "missing $SLUICE (the cluster parts format nodes with it; set SLUICE)"
    DISK_SYNC_1K_MS=n/a LOOPBACK=n/a LOOPBACK_SENDER_CPU=n/a IPERF=n/a PAGE_CACHE_MBS=n/a PAGE_CACHE_CPU=n/a DISK_SYNC_1M=n/a DISK_SYNC_64K=n/a DISK_SEQ=n/a CEILING_PRODUCE=n/a CEILING_CONSUME=n/a
    W1=n/a W1_CPU=n/a W2=n/a W2_CPU=n/a W3=n/a W3_CPU=n/a
    PEER_W1=n/a PEER_W1_CPU=n/a PEER_W3=n/a PEER_W3_CPU=n/a PEER_VERSION="not run"
    W5_READY_S=n/a W5_STOP_S=n/a W5_STOP_HOW=n/a W5_RSS_KIB=n/a W5_RSS_PER_PARTITION=n/a W5_FDS=n/a W5_FD_LIMIT=n/a
    W5_PARTITIONS_TOTAL=$((W5_TOPICS * W5_PARTITIONS))
    [[ $PARTS != *" limits "* ]] || limits
    W2_RECORDS=$((W2_MB * MIB / RECORD_SIZE))
    [[ $PARTS != *" sluice "* ]] || sluice_default
    [[ $PARTS != *" fsync "* ]] || sluice_fsync
    [[ $PARTS != *" peer "* ]] || peer
    [[ $PARTS != *" w5 "* ]] || w5
    [[ $PARTS != *" cluster "* ]] || w6
    [[ $PARTS != *" failover "* ]] || w7
    [[ $PARTS != *" controller "* ]] || w8
    report | tee "$RESULTS/summary.txt"
}

main "$@"
