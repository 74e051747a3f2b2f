#!/usr/bin/env bash
# `make test-deb`: a fresh Debian machine, booted, installs the packages.
# The machine is the debootstrap tarball ROOTFS (packaging/rootfs.sh)
# unpacked into build/test-deb/machine, given systemd and nginx with apt
# (and the packages' dependencies in apt's cache), then booted with
# `systemd-nspawn -b` on a private network (loopback only: its nginx and
# wirehubd cannot meet anything of this host's). The checks run inside,
# packaging/test-deb-machine.sh: install V1, run, upgrade to V2, remove,
# purge. The machine is powered off and deleted afterwards; nothing on
# this host is installed or changed. Needs root.
#   packaging/test-deb.sh build/deb build/deb-next build/images/bookworm.tar
set -euo pipefail

v1=$(realpath "${1:?usage: test-deb.sh V1-DIR V2-DIR ROOTFS.tar}")
v2=$(realpath "${2:?usage: test-deb.sh V1-DIR V2-DIR ROOTFS.tar}")
rootfs=$(realpath "${3:?usage: test-deb.sh V1-DIR V2-DIR ROOTFS.tar}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(realpath "$here/..")/build/test-deb
machine=$work/machine
start=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    echo "test-deb: needs root (debootstrap, systemd-nspawn)" >&2
    exit 1
fi
"$here/../scripts/apt-missing.sh" "test-deb deps" systemd-container

nspawn_pid=

cleanup() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # SIGTERM: nspawn asks the machine's systemd to power off
        kill -TERM "$nspawn_pid"
        for _ in $(seq 100); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "$machine"
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$machine/srv/debs/v1" "$machine/srv/debs/v2"
tar -C "$machine" -xf "$rootfs"
for p in libnginx-mod-http-wirehub wirehubd; do
    cp "$v1/${p}_"*.deb "$machine/srv/debs/v1/"
    cp "$v2/${p}_"*.deb "$machine/srv/debs/v2/"
done
install -m 0755 "$here/test-deb-machine.sh" "$machine/srv/test-deb-machine.sh"
install -m 0644 "$here/checks.sh" "$machine/srv/checks.sh"

nspawn=(systemd-nspawn -q --register=no --keep-unit -D "$machine")

# what a Debian server has before our packages: systemd, nginx running;
# the packages' own dependencies only downloaded, for apt to install
echo "== machine: apt-get install systemd nginx; download the dependencies"
"${nspawn[@]}" --pipe /bin/sh -ec '
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q systemd systemd-sysv dbus nginx procps
    apt-get install -y -q --download-only /srv/debs/v1/*.deb
    echo wirehub-test > /etc/hostname
' > "$work/prepare.log" 2>&1 || { tail -30 "$work/prepare.log"; exit 1; }

echo "== machine: boot (systemd-nspawn -b --private-network)"
"${nspawn[@]}" -b --private-network > "$work/console.log" 2>&1 &
nspawn_pid=$!

init=
for _ in $(seq 100); do
    init=$(ps --ppid "$nspawn_pid" -o pid= | tr -d ' ' | head -1)
    [ -n "$init" ] && break
    sleep 0.1
done
[ -n "$init" ] || { cat "$work/console.log"; exit 1; }

inside() {
    nsenter -t "$init" -m -u -i -n -p -C -- "$@"
}

state=
for _ in $(seq 300); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) break;; esac
    sleep 0.1
done
echo "== machine: $state after $((SECONDS - start)) s"
if [ "$state" = degraded ]; then
    inside systemctl --failed --no-pager || true
fi

status=0
# TEST_DEB_TRACE=1: every command of the machine's script on stderr
inside env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    bash ${TEST_DEB_TRACE:+-x} /srv/test-deb-machine.sh || status=$?
if [ "$status" -ne 0 ]; then
    echo "== wirehubd's journal in the machine"
    inside journalctl -u wirehubd -u wirehubd.socket --no-pager \
        | tail -30 || true
fi
echo "test-deb: $((SECONDS - start)) s (machine prepared, booted, tested)"
exit "$status"
