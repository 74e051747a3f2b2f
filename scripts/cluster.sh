#!/usr/bin/env bash
# `make cluster`: the three-node cluster example of conf/cluster/ on
# loopback, from the build tree: a Redis primary, two replicas and three
# Sentinels; three nodes (wirehubd with `engine redis` + nginx with the
# module); a front nginx.  Everything runs in the background, its files
# under CLUSTER_PREFIX; `make cluster-stop` stops it.
#
#   cluster.sh start      render, start, wait until every node reaches
#                         Redis, print the URLs and a token
#   cluster.sh stop       stop what `start` started (by the pids it
#                         wrote), nothing else
#   cluster.sh --render   only write the secret and the configurations
#
#   CLUSTER_PREFIX=build/cluster  where the files go
#   CLUSTER_PORT=8090     the front; the nodes listen on the next three
#   REDIS_PORT=6390       the primary; the replicas on the next two
#   SENTINEL_PORT=26390   the first Sentinel; the others on the next two
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${CLUSTER_PREFIX:-$top/build/cluster}
front=${CLUSTER_PORT:-8090}
redis=${REDIS_PORT:-6390}
sentinel=${SENTINEL_PORT:-26390}
python=/usr/bin/python3
pidfile=$prefix/pids
nodes=(n1 n2 n3)

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

# ------------------------------------------------------------- render

render_all() {
    local i f group=

    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)

    for d in front n1 n2 n3 redis0 redis1 redis2 sentinel0 sentinel1 \
             sentinel2; do
        mkdir -p "$prefix/$d"
    done

    for n in "${nodes[@]}"; do
        mkdir -p "$prefix/$n/data" "$prefix/$n/tmp"
    done
    mkdir -p "$prefix/front/tmp"

    # one secret for every node: a token is valid on any of them
    if [ ! -s "$prefix/jwt.secret" ]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
            > "$prefix/jwt.secret"
        chmod 600 "$prefix/jwt.secret"
    fi

    # a root master runs its workers as nobody:nogroup: they must reach
    # the daemon's socket
    if [ "$(id -u)" -eq 0 ]; then
        group="group=nogroup"
    fi

    for f in "$top"/conf/cluster/*.conf; do
        # Sentinel and Redis rewrite their files: a running cluster's
        # are left alone
        case $(basename "$f") in
            redis*|sentinel*)
                [ -e "$prefix/pids" ] && continue ;;
        esac
        sed -e "s|@PREFIX@|$prefix|g" \
            -e "s|@MODULE@|$top/build/ngx_http_wirehub_module.so|g" \
            -e "s|@LISTEN_GROUP@|$group|g" \
            -e "s|@FRONT@|$front|g" \
            -e "s|@NODE1@|$((front + 1))|g" \
            -e "s|@NODE2@|$((front + 2))|g" \
            -e "s|@NODE3@|$((front + 3))|g" \
            -e "s|@REDIS0@|$redis|g" \
            -e "s|@REDIS1@|$((redis + 1))|g" \
            -e "s|@REDIS2@|$((redis + 2))|g" \
            -e "s|@SENTINEL0@|$sentinel|g" \
            -e "s|@SENTINEL1@|$((sentinel + 1))|g" \
            -e "s|@SENTINEL2@|$((sentinel + 2))|g" \
            "$f" > "$prefix/$(basename "$f")"
    done
}

# ------------------------------------------------------------- start

# spawn NAME BINARY ARGS...: in its own session (a closed terminal does
# not HUP it), output to NAME.out; its pid goes to the pid file
spawn() {
    local name=$1
    shift
    setsid "$@" < /dev/null >> "$prefix/$name.out" 2>&1 &
    echo "$name $! $1" >> "$pidfile"
}

wait_tcp() {
    local port=$1 what=$2 i
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$what did not listen on 127.0.0.1:$port (see $prefix)"
}

wait_socket() {
    local path=$1 what=$2 i
    for i in $(seq 100); do
        [ -S "$path" ] && return 0
        sleep 0.1
    done
    die "$what did not listen on $path (see $prefix)"
}

mint_token() {
    "$python" - "$prefix/jwt.secret" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read().strip()
print(jwt.encode({"sub": "demo-client", "workspace": "demo",
                  "role": "service", "iat": int(time.time()),
                  "exp": int(time.time()) + 7 * 86400},
                 secret, algorithm="HS256"))
PY
}

# until the node's /api/stats says its engine reaches the Redis primary
wait_engine_up() {
    local port=$1 token=$2
    "$python" - "$port" "$token" <<'PY' \
        || die "the node on 127.0.0.1:$1 did not reach Redis (see $prefix)"
import json, sys, time, urllib.request
url = "http://127.0.0.1:%s/api/stats" % sys.argv[1]
req = urllib.request.Request(url, headers={
    "Authorization": "Bearer " + sys.argv[2]})
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            if json.load(r)["engine"].get("up"):
                sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

start() {
    local i n token

    if [ -s "$pidfile" ] && alive_any; then
        die "already running ($pidfile); make cluster-stop first"
    fi
    rm -f "$pidfile"
    render_all

    for i in 0 1 2; do
        spawn "redis$i" /usr/bin/redis-server "$prefix/redis$i.conf"
        wait_tcp $((redis + i)) "redis$i"
    done

    for i in 0 1 2; do
        spawn "sentinel$i" /usr/bin/redis-sentinel \
            "$prefix/sentinel$i.conf"
        wait_tcp $((sentinel + i)) "sentinel$i"
    done

    for i in 0 1 2; do
        n=${nodes[$i]}
        spawn "wirehubd-$n" "$top/build/wirehubd" \
            -c "$prefix/wirehubd-$n.conf"
        wait_socket "$prefix/$n/wirehubd.sock" "wirehubd $n"
        spawn "nginx-$n" /usr/sbin/nginx -p "$prefix/$n" \
            -c "$prefix/nginx-$n.conf" -e "$prefix/$n/error.log" \
            -g 'daemon off;'
        wait_tcp $((front + 1 + i)) "nginx $n"
    done

    spawn nginx-front /usr/sbin/nginx -p "$prefix/front" \
        -c "$prefix/nginx-front.conf" -e "$prefix/front/error.log" \
        -g 'daemon off;'
    wait_tcp "$front" "the front nginx"

    token=$(mint_token)
    echo "$token" > "$prefix/token"

    for i in 1 2 3; do
        wait_engine_up $((front + i)) "$token"
    done

    cat <<MSG

A Wirehub cluster is running on loopback (files and logs in $prefix):

  front (balances the nodes)   http://127.0.0.1:$front
  node n1                      http://127.0.0.1:$((front + 1))   (/metrics)
  node n2                      http://127.0.0.1:$((front + 2))   (/metrics)
  node n3                      http://127.0.0.1:$((front + 3))   (/metrics)
  Redis primary, replicas      127.0.0.1:$redis, :$((redis + 1)), :$((redis + 2))
  Sentinels (master wirehub)   127.0.0.1:$sentinel, :$((sentinel + 1)), :$((sentinel + 2))

A token (workspace "demo", client "demo-client", role service, 7 days;
also in $prefix/token):

  $token

Subscribe through the front:

  $python -m websockets "ws://127.0.0.1:$front/ws/?token=\$(cat $prefix/token)"
  {"type":"subscribe","channels":["room/1"]}

Publish through another node (n2), see it arrive:

  curl -H "Authorization: Bearer \$(cat $prefix/token)" \\
       -H 'Content-Type: application/json' -d '{"type":"note","data":{"hi":1}}' \\
       http://127.0.0.1:$((front + 2))/api/channels/room/1/messages

Each node's engine: curl -H "Authorization: Bearer ..." http://127.0.0.1:$((front + 1))/api/stats
A failover: kill the primary (see $prefix/pids); publishes answer 503
for the 2-3 s the Sentinels take, then go on.
Stop it all: make cluster-stop
MSG
}

# ------------------------------------------------------------- stop

# is pid still the process we started (pid numbers are reused)?
ours() {
    local pid=$1 bin=$2 exe
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    # a binary rebuilt since it started shows as deleted
    exe=${exe% (deleted)}
    # redis-sentinel is a link to redis-check-rdb/redis-server
    case $bin in
        */redis-sentinel|*/redis-server)
            case $exe in */redis-*) return 0 ;; esac ;;
    esac
    [ "$exe" = "$(readlink -f "$bin")" ]
}

alive_any() {
    local name pid bin
    while read -r name pid bin; do
        ours "$pid" "$bin" && return 0
    done < "$pidfile"
    return 1
}

stop() {
    local name pid bin left i lines=()

    [ -s "$pidfile" ] || { echo "cluster.sh: nothing to stop"; return 0; }
    mapfile -t lines < "$pidfile"

    # the front first, the Redis primary last: the reverse of start
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r name pid bin <<< "${lines[$i]}"
        ours "$pid" "$bin" || continue
        case $name in
            nginx-*) kill -QUIT "$pid" 2>/dev/null || true ;;
            *)       kill -TERM "$pid" 2>/dev/null || true ;;
        esac
        # one at a time: wirehubd leaves Redis before Redis goes
        for _ in $(seq 100); do
            ours "$pid" "$bin" || break
            sleep 0.1
        done
    done

    left=
    for line in "${lines[@]}"; do
        read -r name pid bin <<< "$line"
        if ours "$pid" "$bin"; then
            kill -KILL "$pid" 2>/dev/null || true
            left="$left $name($pid)"
        fi
    done

    rm -f "$pidfile"
    if [ -n "$left" ]; then
        echo "cluster.sh: killed after 10 s:$left" >&2
    fi
    echo "cluster.sh: stopped (files kept in $prefix)"
}

case "${1:-start}" in
    start)    start ;;
    stop)     stop ;;
    --render) render_all ;;
    *)        die "usage: cluster.sh [start|stop|--render]" ;;
esac
