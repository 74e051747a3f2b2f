#!/usr/bin/env bash
# What `make deb` and `make test-deb` need beyond the build dependencies
# of `make` (which scripts/deps.sh installs): Debian's packaging tools,
# debootstrap and systemd-nspawn for the test machine.  Idempotent.
set -euo pipefail

exec "$(dirname "$0")/../scripts/apt-missing.sh" "deb deps" \
    dpkg-dev debhelper fakeroot adduser nginx-dev systemd \
    debootstrap systemd-container
