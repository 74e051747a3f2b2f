#!/usr/bin/env bash
# What `make deb` needs beyond the build dependencies of `make` (which
# scripts/deps.sh installs): Debian's packaging tools.  Idempotent.
set -euo pipefail

PKGS=(dpkg-dev debhelper fakeroot adduser nginx-dev)

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

echo "deb deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
