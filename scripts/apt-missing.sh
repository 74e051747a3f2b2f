#!/usr/bin/env bash
# apt-missing.sh LABEL PACKAGE...: installs those of the Debian packages
# that are missing, and nothing else (apt-get update only then; sudo when
# not root).  Package scripts may (re)start Debian's stock services, such
# as nginx; they are not ours to run, so policy-rc.d keeps them down.
set -euo pipefail

label=$1
shift

missing=()
for p in "$@"; do
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

echo "$label: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

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
