#!/usr/bin/env bash
# The Debian package, without a second release build: packaging/deb/build.sh over the
# debug binaries the tests already built, unpacked into a temporary root (dpkg -x), its
# files and links checked, then the unit's ExecStart command line run from that root
# against a temporary data dir (loopback, port 0), asked something through a Kafka-named
# link, and stopped with SIGTERM (exit 0, clean-shutdown marker written).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }
fail() { echo "deb.sh: $*" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}/debug"
cargo build --quiet -p sluice-broker -p sluice-tools -p sluice-perf
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT

deb=$(bash packaging/deb/build.sh "$target" "$work/out" none)
log "built $(basename "$deb")"
# Read the whole answer first: under pipefail, grep -q closing the pipe early can make
# dpkg-deb die of SIGPIPE and fail the pipeline although the line is there.
info=$(dpkg-deb --info "$deb")
grep -q '^ Package: sluice$' <<<"$info" || fail "control names no package sluice"
root="$work/root"
dpkg -x "$deb" "$root"
dpkg-deb -e "$deb" "$work/control"

for file in usr/bin/sluiced usr/bin/sluice usr/bin/sluice-perf; do
    [ -x "$root/$file" ] && [ ! -L "$root/$file" ] || fail "$file missing or not an executable file"
done
for name in kafka-topics kafka-console-producer kafka-console-consumer kafka-consumer-groups \
    kafka-configs kafka-delete-records kafka-dump-log kafka-get-offsets kafka-storage \
    kafka-metadata-quorum kafka-leader-election kafka-log-dirs kafka-reassign-partitions; do
    for link in "$name" "$name.sh"; do
        [ "$(readlink "$root/usr/bin/$link")" = sluice ] || fail "usr/bin/$link is not a link to sluice"
    done
done
for name in kafka-producer-perf-test kafka-consumer-perf-test; do
    for link in "$name" "$name.sh"; do
        [ "$(readlink "$root/usr/bin/$link")" = sluice-perf ] || fail "usr/bin/$link is not a link to sluice-perf"
    done
done
unit="$root/lib/systemd/system/sluiced.service"
[ -f "$unit" ] || fail "no systemd unit"
[ -f "$root/etc/sluice/server.properties" ] || fail "no /etc/sluice/server.properties"
grep -qx /etc/sluice/server.properties "$work/control/conffiles" || fail "server.properties is not a conffile"
[ -d "$root/var/lib/sluice" ] || fail "no /var/lib/sluice"
doc=$(sed -n 's|^Documentation=file://||p' "$unit")
[ -f "$root$doc" ] || fail "the unit's Documentation= ($doc) is not installed"
grep -q -- '--shell /usr/sbin/nologin' "$work/control/postinst" || fail "postinst: no system user without a login shell"
for script in postinst prerm postrm; do
    sh -n "$work/control/$script" || fail "$script: syntax"
done
log "files, links, conffile, unit, maintainer scripts: as expected"

# The unit's command line, every absolute path in it taken from the unpacked root.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r -a command <<<"$exec_start"
for i in "${!command[@]}"; do
    case "${command[$i]}" in /*) command[$i]="$root${command[$i]}" ;; esac
done
[ -x "${command[0]}" ] || fail "ExecStart's binary ${command[0]} is not installed"
broker_log="$work/sluiced.log"
"${command[@]}" --override "log.dirs=$work/data" --override listeners=PLAINTEXT://127.0.0.1:0 \
    --override metrics.listener=127.0.0.1:0 2>"$broker_log" &
pid=$!
for _ in $(seq 1 600); do
    grep -q 'ready:' "$broker_log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$broker_log" >&2; fail "sluiced exited at start"; }
    sleep 0.1
done
port=$(sed -n 's/.*listening on PLAINTEXT:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$broker_log" | head -n1)
[ -n "$port" ] || { cat "$broker_log" >&2; fail "sluiced did not say where it listens"; }
grep -q 'unknown config key' "$broker_log" && { cat "$broker_log" >&2; fail "the shipped config has a key sluiced does not know"; }
bootstrap="127.0.0.1:$port"
"$root/usr/bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --topic deb-check >/dev/null
listed=$("$root/usr/bin/kafka-topics" --bootstrap-server "$bootstrap" --list --exclude-internal)
[ "$listed" = deb-check ] || fail "kafka-topics --list printed '$listed'"
# Kafka's quick-start perf-test lines, unchanged.
"$root/usr/bin/kafka-producer-perf-test.sh" --topic deb-perf --num-records 100 --record-size 10 \
    --throughput -1 --producer-props "bootstrap.servers=$bootstrap" >"$work/perf.out" \
    || fail "kafka-producer-perf-test.sh failed"
grep -q '^100 records sent' "$work/perf.out" || { cat "$work/perf.out" >&2; fail "kafka-producer-perf-test.sh printed no summary"; }
"$root/usr/bin/kafka-consumer-perf-test" --bootstrap-server "$bootstrap" --topic deb-perf \
    --messages 100 >"$work/perf.out" || fail "kafka-consumer-perf-test failed"
log "the unit's ExecStart answers on $bootstrap through the Kafka-named links"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || { cat "$broker_log" >&2; fail "sluiced exited with $status after SIGTERM"; }
[ -e "$work/data/.kafka_cleanshutdown" ] || fail "no clean-shutdown marker after SIGTERM"
log "SIGTERM: exit 0, clean shutdown; Debian package checks passed"
