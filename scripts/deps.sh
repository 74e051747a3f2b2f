#!/usr/bin/env bash
# Install the Debian packages Wirehub needs to build, run and test, then
# what the browser tests need.  Idempotent: only what is missing.
# prometheus is there for promtool: t/test_metrics.py lints a scrape and
# checks the alert rules of conf/monitoring/ with it (its service is kept
# down, as every package's, by apt-missing.sh).
# systemd brings systemd-analyze and systemd-socket-activate, which
# t/test_units.py runs on the units and on wirehubd's socket activation;
# groff-base and man-db format the man pages in t/test_manpages.py;
# python3-yaml parses docker/compose.yaml in t/test_docker_files.py.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

"$top/scripts/apt-missing.sh" deps \
    nginx nginx-dev libpcre2-dev libpcre3-dev libssl-dev zlib1g-dev \
    liblmdb-dev lmdb-utils libjansson-dev libjwt-dev \
    libmosquitto-dev mosquitto mosquitto-clients \
    libhiredis-dev redis-server redis-sentinel \
    libcmocka-dev pkg-config gcc make clang libclang-rt-14-dev \
    python3 python3-pytest python3-websockets python3-paho-mqtt \
    python3-venv python3-pip python3-setuptools \
    python3-jwt python3-cryptography python3-jsonschema python3-yaml \
    openssl ca-certificates \
    prometheus \
    node-typescript systemd groff-base man-db

# chromium and playwright-core for the browser tests
exec "$top/t/web/deps.sh"
