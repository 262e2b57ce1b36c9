#!/usr/bin/env bash
# Builds the Debian package of Sluice from already built binaries:
#   bash packaging/deb/build.sh BIN_DIR OUT_DIR [dpkg-deb compression: xz|gzip|zstd|none]
# e.g. `cargo build --release && bash packaging/deb/build.sh target/release target/debian`.
# BIN_DIR holds sluiced, sluice and sluice-perf (they are stripped into the package).
#
# The package: /usr/bin/{sluiced,sluice,sluice-perf}; Kafka's command names as links to
# them (kafka-topics, kafka-topics.sh, …: the binaries dispatch on the name they are
# called by); /lib/systemd/system/sluiced.service; /etc/sluice/server.properties (a
# conffile); /usr/share/doc/sluice/README.md (the unit's Documentation=); /var/lib/sluice;
# the `sluice` system user (no login shell) made by postinst.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=${1:?usage: build.sh BIN_DIR OUT_DIR [COMPRESSION]}
out_dir=${2:?usage: build.sh BIN_DIR OUT_DIR [COMPRESSION]}
compression=${3:-xz}

# Kafka's command name -> the binary it runs (sluice's own dispatch tables:
# tools/src/kafka_names.rs, perf/src/main.rs).
sluice_names="kafka-topics kafka-console-producer kafka-console-consumer kafka-consumer-groups
kafka-configs kafka-delete-records kafka-dump-log kafka-get-offsets kafka-storage
kafka-metadata-quorum kafka-leader-election kafka-log-dirs kafka-reassign-partitions"
perf_names="kafka-producer-perf-test kafka-consumer-perf-test"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/etc/sluice" "$stage/usr/share/doc/sluice" "$stage/var/lib/sluice"
for binary in sluiced sluice sluice-perf; do
    [ -x "$bin_dir/$binary" ] || { echo "build.sh: $bin_dir/$binary not found (build it first)" >&2; exit 1; }
    install -m 755 "$bin_dir/$binary" "$stage/usr/bin/$binary"
    strip --strip-debug "$stage/usr/bin/$binary"
done
for name in $sluice_names; do
    ln -s sluice "$stage/usr/bin/$name"
    ln -s sluice "$stage/usr/bin/$name.sh"
done
for name in $perf_names; do
    ln -s sluice-perf "$stage/usr/bin/$name"
    ln -s sluice-perf "$stage/usr/bin/$name.sh"
done
install -m 644 "$repo/packaging/sluiced.service" "$stage/lib/systemd/system/sluiced.service"
install -m 644 "$repo/packaging/server.properties" "$stage/etc/sluice/server.properties"
install -m 644 "$repo/README.md" "$stage/usr/share/doc/sluice/README.md"
for script in postinst prerm postrm; do
    install -m 755 "$here/$script" "$stage/DEBIAN/$script"
done
echo /etc/sluice/server.properties >"$stage/DEBIAN/conffiles"
size_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: sluice
Version: $version
Architecture: $arch
Maintainer: Sluice developers <sluice@localhost>
Installed-Size: $size_kib
Depends: libc6, adduser
Section: net
Priority: optional
Description: Kafka-protocol broker (sluiced) with Kafka's command-line tools
 sluiced speaks Kafka's wire protocol, so existing Kafka clients connect to it
 unchanged; it runs under systemd (Type=notify). The sluice and sluice-perf
 tools are also installed under Kafka's command names (kafka-topics.sh,
 kafka-console-consumer.sh, kafka-producer-perf-test.sh, ...).
CONTROL
mkdir -p "$out_dir"
deb="$out_dir/sluice_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
echo "$deb"
