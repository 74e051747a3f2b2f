#!/usr/bin/env bash
# `make run`: wirehubd + nginx with the Wirehub module on loopback, in the
# foreground, from files under build/run/.  Ctrl-C stops everything.
#   LISTEN=127.0.0.1:8080  where nginx listens
#   MQTT_PORT=1883         where the demo's mosquitto listens (loopback)
#   RUN_PREFIX=build/run   where the files go
# `run.sh --render` only writes the secret and the two configurations and
# exits: t/test_client_tokens.py starts what `make run` would, from them.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${RUN_PREFIX:-$top/build/run}
listen=${LISTEN:-127.0.0.1:8080}
mqtt_port=${MQTT_PORT:-1883}
python=/usr/bin/python3

mkdir -p "$prefix/tmp" "$prefix/data"

# a development secret, made once and kept: tokens survive restarts
if [ ! -s "$prefix/jwt.secret" ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$prefix/jwt.secret"
    chmod 600 "$prefix/jwt.secret"
fi

# a root master runs its workers as nobody:nogroup: they must reach the
# daemon's socket
listen_group=
if [ "$(id -u)" -eq 0 ]; then
    listen_group="group=nogroup"
fi

render() {
    sed -e "s|@MODULE@|$top/build/ngx_http_wirehub_module.so|g" \
        -e "s|@LISTEN_GROUP@|$listen_group|g" \
        -e "s|@MQTT_PORT@|$mqtt_port|g" \
        -e "s|@PREFIX@|$prefix|g" \
        -e "s|@LISTEN@|$listen|g" \
        -e "s|@WEB@|$top/web|g" "$1" > "$2"
}

render "$top/conf/nginx.conf" "$prefix/nginx.conf"
render "$top/conf/wirehubd-run.conf" "$prefix/wirehubd.conf"

if [ "${1:-}" = "--render" ]; then
    exit 0
fi

pids=()
stop() {
    trap - INT TERM EXIT
    # nginx stops gracefully on QUIT, wirehubd and mosquitto on TERM
    kill -QUIT "${pids[-1]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

cat > "$prefix/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $prefix/mosquitto/
CONF
mkdir -p "$prefix/mosquitto"
if [ "$(id -u)" -eq 0 ]; then
    echo "user root" >> "$prefix/mosquitto.conf"
fi

/usr/sbin/mosquitto -c "$prefix/mosquitto.conf" > "$prefix/mosquitto.log" 2>&1 &
pids+=($!)

"$top/build/wirehubd" -c "$prefix/wirehubd.conf" &
pids+=($!)

for _ in $(seq 50); do
    [ -S "$prefix/wirehubd.sock" ] && break
    sleep 0.1
done

/usr/sbin/nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
    -g 'daemon off;' &
pids+=($!)

token=$("$python" - "$prefix/jwt.secret" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read().strip()
print(jwt.encode({"sub": "demo-client", "workspace": "demo",
                  "role": "service", "iat": int(time.time()),
                  "exp": int(time.time()) + 7 * 86400},
                 secret, algorithm="HS256"))
PY
)

cat <<MSG

Wirehub is running on http://$listen (logs in $prefix)

Dashboard: http://$listen/#token=$token

A test token (workspace "demo", client "demo-client", role service,
7 days):

  $token

Connect with any WebSocket client, for example:

  $python -m websockets "ws://$listen/ws/?token=$token"

Sensor readings over MQTT (mosquitto on 127.0.0.1:$mqtt_port):

  mosquitto_pub -p $mqtt_port -t sensors/V1/data -m '{"moisture":45.2}'

Echo endpoint (no token): ws://$listen/echo
Ctrl-C stops nginx, wirehubd and mosquitto.
MSG

wait -n "${pids[@]}"
