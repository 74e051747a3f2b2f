#!/usr/bin/env bash
# Install what `make bench` needs besides the build dependencies
# (scripts/deps.sh): the anchors Wirehub is measured against.
#   libnginx-mod-nchan   Nchan on Debian's own nginx
#   node-ws              the `ws` package for the hand-written Node.js server
#   mosquitto            its WebSocket listener, and the broker for MQTT ingest
# Idempotent: installs only what is missing; apt-get update only then.
set -euo pipefail

PKGS=(libnginx-mod-nchan node-ws nodejs mosquitto)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

echo "bench deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Installing an nginx module package may (re)start Debian's stock nginx
# service; that service is not ours to run, so policy-rc.d keeps it down.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || status=$?
if [ -n "$created_policy" ]; then
    $SUDO rm -f "$policy"
fi
exit $status
