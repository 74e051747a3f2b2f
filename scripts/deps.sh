#!/usr/bin/env bash
# Install the Debian packages Wirehub needs to build, run and test.
# Idempotent: installs only what is missing; apt-get update only then.
set -euo pipefail

PKGS=(
    nginx nginx-dev libpcre2-dev libpcre3-dev libssl-dev zlib1g-dev
    liblmdb-dev lmdb-utils libjansson-dev libjwt-dev
    libmosquitto-dev mosquitto mosquitto-clients
    libcmocka-dev pkg-config gcc make clang libclang-rt-14-dev
    python3 python3-pytest python3-websockets python3-paho-mqtt
    python3-jwt python3-cryptography
    openssl ca-certificates
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

top=$(cd "$(dirname "$0")/.." && pwd)

if [ ${#missing[@]} -eq 0 ]; then
    exec "$top/t/web/deps.sh"
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's nginx package starts the service on install where it can; the
# stock service is not ours to run, so policy-rc.d keeps it from starting.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ -n "$created_policy" ]; then
    $SUDO rm -f "$policy"
fi

# chromium and playwright-core for the browser tests
exec "$top/t/web/deps.sh"
