#!/usr/bin/env bash
# Wirehub container entry point and supervisor: writes wirehubd.conf and
# nginx.conf from the environment, starts wirehubd, then nginx, and
# watches both.  A wirehubd that dies is started again (WebSockets stay
# open meanwhile and nginx resumes every channel, as on any host); if it
# keeps dying, or nginx exits, the container exits with that status so
# the orchestrator restarts it.  SIGTERM/SIGINT stop nginx gracefully
# (clients get 1001 and reconnect) and then wirehubd.
#
# Environment (defaults in brackets):
#   WIREHUB_PORT [8080]              port nginx listens on
#   WIREHUB_JWT_KEY_FILE [/run/secrets/wirehub_jwt]   key or HMAC secret
#   WIREHUB_JWT_SECRET               the HMAC secret itself, written to a
#                                    private file when no key file exists
#   WIREHUB_JWT_ALG [HS256]          algorithm of that key
#   WIREHUB_JWT_ISSUER, WIREHUB_JWT_AUDIENCE     checked when set
#   WIREHUB_ALLOWED_ORIGINS          space separated; any origin when unset
#   WIREHUB_WORKERS [auto]           nginx worker processes
#   WIREHUB_DASHBOARD [on]           serve the demo dashboard at /
#   WIREHUB_HISTORY [length=1000 ttl=24h]   per-channel history
#   WIREHUB_MAP_SIZE [1g]            initial LMDB map size
#   WIREHUB_LOG_LEVEL [info]         wirehubd: debug|info|warn|error
#   MQTT_HOST, MQTT_PORT [1883], MQTT_CLIENT_ID [wirehubd-HOSTNAME]
#                                    the broker; no MQTT when MQTT_HOST is
#                                    unset
#   WIREHUB_INGEST                   ingest rules separated by ";", e.g.
#     "sensors/+/data workspace=demo channel=sensors/{1}
#      type=sensor_reading key={1} rate=1/s"
set -euo pipefail

conf_dir=/etc/wirehub
sock=/run/wirehub/wirehubd.sock
web=/usr/share/wirehub/web

die() {
    echo "wirehub: $*" >&2
    exit 1
}

jwt_key_file() {
    local file=${WIREHUB_JWT_KEY_FILE:-/run/secrets/wirehub_jwt}

    if [ -r "$file" ]; then
        echo "$file"
    elif [ -n "${WIREHUB_JWT_SECRET:-}" ]; then
        (umask 077 && printf '%s' "$WIREHUB_JWT_SECRET" \
            > "$conf_dir/jwt.secret")
        echo "$conf_dir/jwt.secret"
    else
        die "no JWT key: mount one at $file or set WIREHUB_JWT_SECRET"
    fi
}

write_wirehubd_conf() {
    local rule

    {
        echo "listen unix:$sock mode=0660;"
        echo "storage /var/lib/wirehub map_size=${WIREHUB_MAP_SIZE:-1g};"
        echo "history ${WIREHUB_HISTORY:-length=1000 ttl=24h};"
        echo "stats interval=5s;"
        echo "log stderr ${WIREHUB_LOG_LEVEL:-info};"
        if [ -n "${MQTT_HOST:-}" ]; then
            echo "mqtt host=$MQTT_HOST port=${MQTT_PORT:-1883}" \
                 "client_id=${MQTT_CLIENT_ID:-wirehubd-$(hostname)}" \
                 "keepalive=30;"
        fi
        # one line for read, whatever line breaks the value had
        IFS=';' read -ra rules \
            <<< "$(printf '%s' "${WIREHUB_INGEST:-}" | tr -s '\n\t ' ' ')"
        for rule in "${rules[@]}"; do
            rule=$(echo "$rule" | sed 's/^ *//; s/ *$//')
            if [ -n "$rule" ]; then
                echo "ingest $rule;"
            fi
        done
    } > "$conf_dir/wirehubd.conf"
}

write_nginx_conf() {
    local key=$1 optional=""

    if [ -n "${WIREHUB_JWT_ISSUER:-}" ]; then
        optional+="    wirehub_jwt_issuer $WIREHUB_JWT_ISSUER;"$'\n'
    fi
    if [ -n "${WIREHUB_JWT_AUDIENCE:-}" ]; then
        optional+="    wirehub_jwt_audience $WIREHUB_JWT_AUDIENCE;"$'\n'
    fi
    if [ -n "${WIREHUB_ALLOWED_ORIGINS:-}" ]; then
        optional+="    wirehub_allowed_origins $WIREHUB_ALLOWED_ORIGINS;"$'\n'
    fi

    local dashboard=""
    if [ "${WIREHUB_DASHBOARD:-on}" = "on" ]; then
        dashboard="        location / { root $web/dashboard; }"
    fi

    cat > "$conf_dir/nginx.conf" <<EOF
load_module modules/ngx_http_wirehub_module.so;

user www-data;
worker_processes ${WIREHUB_WORKERS:-auto};
pid /run/nginx.pid;
error_log stderr notice;

events {
    worker_connections 8192;
}

http {
    include /etc/nginx/mime.types;
    # the request line with tokens masked
    log_format wirehub '\$remote_addr [\$time_local] "\$wirehub_request" '
                       '\$status \$body_bytes_sent '
                       'ws=\$wirehub_workspace client=\$wirehub_client_id';
    access_log /dev/stdout wirehub;

    wirehub_daemon unix:$sock;
    wirehub_jwt_key ${WIREHUB_JWT_ALG:-HS256} file=$key;
${optional}
    server {
        listen ${WIREHUB_PORT:-8080};

        location /ws/       { wirehub_websocket; }
        location /api/      { wirehub_api; }
        location = /healthz { wirehub_api; }
        location = /metrics { wirehub_metrics; }
${dashboard}
    }
}
EOF
}

# ------------------------------------------------------------ supervise

stop_one() {
    local sig=$1 pid=$2

    if [ -n "$pid" ]; then
        kill "-$sig" "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

stop_all() {
    trap - TERM INT
    # nginx first: it closes WebSockets with 1001, then wirehubd
    stop_one QUIT "${nginx_pid:-}"
    stop_one TERM "${daemon_pid:-}"
}

start_wirehubd() {
    rm -f "$sock"
    setpriv --reuid=www-data --regid=www-data --init-groups \
        /usr/sbin/wirehubd -c "$conf_dir/wirehubd.conf" &
    daemon_pid=$!

    for _ in $(seq 100); do
        [ -S "$sock" ] && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done

    return 1
}

main() {
    local key status exited restarts=()

    # root writes the configs; wirehubd (www-data) must read its own
    install -d -o www-data -g www-data -m 0750 /run/wirehub
    install -d -m 0755 "$conf_dir"
    key=$(jwt_key_file)
    write_wirehubd_conf
    write_nginx_conf "$key"

    /usr/sbin/wirehubd -t -c "$conf_dir/wirehubd.conf"
    /usr/sbin/nginx -t -q -c "$conf_dir/nginx.conf"

    trap 'stop_all; exit 0' TERM INT

    start_wirehubd || die "wirehubd did not start"

    /usr/sbin/nginx -c "$conf_dir/nginx.conf" -g 'daemon off;' &
    nginx_pid=$!

    for (( ; ; )); do
        status=0
        wait -n -p exited "$daemon_pid" "$nginx_pid" || status=$?

        if [ "${exited:-}" != "$daemon_pid" ]; then
            echo "wirehub: nginx exited ($status); stopping" >&2
            nginx_pid=
            stop_all
            exit "$status"
        fi

        # at most 5 restarts a minute: a crash loop ends the container
        restarts=("${restarts[@]}" "$SECONDS")
        if [ ${#restarts[@]} -gt 5 ]; then
            restarts=("${restarts[@]: -5}")
            if [ $((SECONDS - restarts[0])) -lt 60 ]; then
                echo "wirehub: wirehubd keeps exiting; stopping" >&2
                daemon_pid=
                stop_all
                exit "$status"
            fi
        fi

        echo "wirehub: wirehubd exited ($status); starting it again" >&2
        sleep 1
        start_wirehubd || echo "wirehub: wirehubd did not start" >&2
    done
}

main "$@"
