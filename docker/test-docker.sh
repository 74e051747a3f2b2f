#!/usr/bin/env bash
# `make test-docker`: builds the two images of docker/compose.yaml with
# podman and runs the stack with podman-compose, then checks it: both
# healthchecks, non-root users, read-only root file systems, the shared
# socket, a WebSocket subscriber getting a message published over the
# API, wirehubctl stats, a wirehubd directive set from the environment
# (WIREHUBD_HISTORY) in force, and the signing key from the mounted
# secret. Needs root.
#
# No registry but Debian's is reachable here, so docker.io's Debian image
# cannot be pulled: the base image is the debootstrap tarball of
# packaging/rootfs.sh imported into podman (localhost/wirehub-base).
# This machine's kernel has cgroups v1 with a v2 hierarchy beside it
# ("hybrid"), which crun refuses, and a hard RLIMIT_NOFILE of 20000:
# CONTAINERS_CONF points podman at runc and at ulimits it may set.
#   docker/test-docker.sh build/images/bookworm.tar
set -euo pipefail

rootfs=$(realpath "${1:?usage: test-docker.sh ROOTFS.tar}")
top=$(cd "$(dirname "$0")/.." && pwd)
work=$top/build/test-docker
project=wirehubtest
base=localhost/wirehub-base:bookworm
start=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    echo "test-docker: needs root (podman)" >&2
    exit 1
fi
"$top/scripts/apt-missing.sh" "docker test deps" \
    podman buildah runc podman-compose python3-yaml

mkdir -p "$work"
nofile=$(ulimit -Hn)
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$work/containers.conf

tmp=$work
EVENTUALLY_S=30
. "$top/packaging/checks.sh"

compose() {
    (cd "$top/docker" && podman-compose -p "$project" -f compose.yaml "$@")
}

made_secret=

cleanup() {
    compose down -v > "$work/down.log" 2>&1 || true
    if [ -n "$made_secret" ]; then
        rm -f "$top/docker/jwt.secret"
    fi
}
trap cleanup EXIT

if ! podman image exists "$base"; then
    echo "== podman import $rootfs $base"
    podman import -q "$rootfs" "$base" > /dev/null
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret=$work/jwt.secret
head -c 32 /dev/urandom | base64 > "$secret"
# compose.yaml reads ./jwt.secret next to it: a copy for the test only
if [ -e "$top/docker/jwt.secret" ]; then
    echo "test-docker: docker/jwt.secret exists; not touching it" >&2
    exit 1
fi
made_secret=1
cp "$secret" "$top/docker/jwt.secret"

export WIREHUB_BASE_IMAGE=$base
export WIREHUB_PUBLISH_PORT=$port
export WIREHUBD_HISTORY="length=5 ttl=1h"

# TEST_DOCKER_BUILD=0 runs the images built last time
if [ "${TEST_DOCKER_BUILD:-1}" != 0 ]; then
    echo "== podman-compose build"
    t0=$SECONDS
    compose build > "$work/build.log" 2>&1 \
        || { tail -40 "$work/build.log"; exit 1; }
    echo "== built in $((SECONDS - t0)) s"
fi

echo "== podman-compose up -d (port $port)"
compose up -d > "$work/up.log" 2>&1 || { tail -40 "$work/up.log"; exit 1; }

wh=${project}_wirehubd_1
ngx=${project}_nginx_1
URL=http://127.0.0.1:$port
CTL=$top/tools/wirehubctl

healthz() {
    python3 -c "import urllib.request,sys
sys.exit(0 if urllib.request.urlopen('$URL/healthz', timeout=2).status == 200 else 1)"
}

check "wirehubd container healthy" eventually podman healthcheck run "$wh"
check "nginx answers /healthz 200 (link up)" eventually healthz
check "nginx container healthy" eventually podman healthcheck run "$ngx"
check "wirehubd runs as wirehub (uid 999), not root" \
    test "$(podman exec "$wh" id -u)" = 999
check "nginx runs as www-data (uid 33), not root" \
    test "$(podman exec "$ngx" id -u)" = 33
check "wirehubd is PID 1 of its container" \
    test "$(podman exec "$wh" cat /proc/1/comm)" = wirehubd
check "wirehubd's root file system is read-only" \
    test "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$wh")" = true
check "nginx's root file system is read-only" \
    test "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ngx")" = true
check "nothing writes /usr in wirehubd's container" \
    bash -c "! podman exec $wh touch /usr/x 2>/dev/null"
check "nothing writes /etc in nginx's container" \
    bash -c "! podman exec $ngx touch /etc/x 2>/dev/null"
check "the link socket, shared: wirehub:www-data 0660 in both" \
    bash -c "test \"\$(podman exec $wh stat -c %u:%g:%a /run/wirehub/wirehubd.sock)\" = 999:33:660 \
          && test \"\$(podman exec $ngx stat -c %u:%g:%a /run/wirehub/wirehubd.sock)\" = 999:33:660"
check "no capabilities (CapEff 0) in either" \
    bash -c "podman exec $wh grep -q '^CapEff:.0000000000000000' /proc/1/status \
          && podman exec $ngx grep -q '^CapEff:.0000000000000000' /proc/1/status"
check "WIREHUBD_HISTORY made it into wirehubd's config" \
    bash -c "podman exec $wh cat /tmp/wirehubd.conf | grep -qx 'history length=5 ttl=1h;'"

WIREHUB_TOKEN=$("$CTL" token --key-file "$secret" --sub test-docker \
                --workspace dockertest --role service --ttl 1h)
export WIREHUB_TOKEN

publish() {
    python3 - "$URL" "$1" "$2" <<'PY'
import json, os, sys, urllib.request
url, channel, n = sys.argv[1:]
req = urllib.request.Request(
    "%s/api/channels/%s/messages" % (url, channel), method="POST",
    data=json.dumps({"type": "note", "data": {"n": int(n)}}).encode(),
    headers={"Authorization": "Bearer " + os.environ["WIREHUB_TOKEN"],
             "Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=5).read()
PY
}

ws_roundtrip() {
    local pid i
    "$CTL" --url "$URL" --json tail docker/one --count 1 \
        > "$work/tail.out" 2> "$work/tail.err" &
    pid=$!
    for i in $(seq 100); do
        grep -q "subscribed to" "$work/tail.err" 2>/dev/null && break
        sleep 0.1
    done
    publish docker/one 42
    timeout 10 tail --pid="$pid" -f /dev/null || { kill "$pid"; return 1; }
    wait "$pid"
    grep -q '"n": *42' "$work/tail.out"
}

history_len() {
    python3 - "$URL" <<'PY'
import json, os, sys, urllib.request
req = urllib.request.Request(
    sys.argv[1] + "/api/channels/docker/many/messages?since=0&limit=100",
    headers={"Authorization": "Bearer " + os.environ["WIREHUB_TOKEN"]})
print(len(json.load(urllib.request.urlopen(req, timeout=5))["items"]))
PY
}

check "a token signed with the mounted secret is accepted; a WebSocket subscriber gets a published message" ws_roundtrip
check "wirehubctl stats answers (links 2)" \
    bash -c "'$CTL' --url '$URL' stats | grep -qE '^links +2$'"
for n in 1 2 3 4 5 6 7; do publish docker/many "$n"; done
check "history length=5 from WIREHUBD_HISTORY: 5 of 7 kept" \
    test "$(history_len)" = 5
check "the dashboard is served" \
    python3 -c "import urllib.request; assert b'System health' in urllib.request.urlopen('$URL/', timeout=2).read()"
check "/metrics has wirehubd's families" \
    python3 -c "import urllib.request; assert b'wirehubd_engine_state' in urllib.request.urlopen('$URL/metrics', timeout=2).read()"

echo "test-docker: $((checks - failures)) passed, $failures failed," \
     "$((SECONDS - start)) s"
if [ "$failures" -ne 0 ]; then
    podman logs "$wh" 2>&1 | tail -20
    podman logs "$ngx" 2>&1 | tail -20
fi
[ "$failures" -eq 0 ]
