#!/usr/bin/env bash
# Install what `make bench` needs besides the build dependencies
# (scripts/deps.sh): the anchors Wirehub is measured against.
#   libnginx-mod-nchan   Nchan on Debian's own nginx
#   node-ws              the `ws` package for the hand-written Node.js server
#   mosquitto            its WebSocket listener, and the broker for MQTT ingest
#   linux-perf           the profile of where Wirehub's time goes, each run
set -euo pipefail

exec "$(dirname "$0")/../scripts/apt-missing.sh" "bench deps" \
    libnginx-mod-nchan node-ws nodejs mosquitto linux-perf
