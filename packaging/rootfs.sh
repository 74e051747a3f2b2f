#!/usr/bin/env bash
# A minimal Debian bookworm root file system as a tarball, made once with
# debootstrap and kept: the fresh machine `make test-deb` boots with
# systemd-nspawn, and the base image `make test-docker` imports into
# podman (no registry but Debian's is reachable here, so no docker.io
# base image). Needs root.
#   packaging/rootfs.sh build/images/bookworm.tar
set -euo pipefail

out=${1:?usage: rootfs.sh OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -s "$out" ]; then
    exit 0
fi

"$(dirname "$0")/../scripts/apt-missing.sh" "rootfs deps" debootstrap

dir=$(mktemp -d "$(dirname "$out")/rootfs.XXXXXX" 2>/dev/null) || {
    mkdir -p "$(dirname "$out")"
    dir=$(mktemp -d "$(dirname "$out")/rootfs.XXXXXX")
}
trap 'rm -rf "$dir"' EXIT
# mktemp made it 0700, and the tarball keeps the mode of its "./": the
# machine's / would be closed to every user but root (wirehubd.service
# then fails with 200/CHDIR)
chmod 0755 "$dir"

echo "rootfs: debootstrap bookworm into $dir"
debootstrap --variant=minbase bookworm "$dir" "$mirror" \
    > "$dir.log" 2>&1 || { tail -20 "$dir.log"; exit 1; }
rm -f "$dir.log"

# the lists debootstrap fetched stay: apt installs without an update
tar -C "$dir" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "rootfs: $out"
