#!/bin/bash
# nginx's container entry point (user www-data, read-only root): writes
# nginx.conf from the environment into /tmp, checks it (nginx -t), then
# runs nginx in the foreground as PID 1. wirehubd is the other service;
# nginx reaches it over the shared /run/wirehub and relinks by itself
# whenever wirehubd restarts.
#
# Environment (defaults in brackets):
#   WIREHUB_NGINX_CONF            use this nginx.conf as it is (mounted);
#                                 the variables below are then ignored
#   WIREHUB_PORT [8080]           the port nginx listens on
#   WIREHUB_JWT_KEY_FILE [/run/secrets/wirehub_jwt]   key or HMAC secret
#   WIREHUB_JWT_SECRET            the HMAC secret itself, when no key file
#                                 is mounted (written to a 0600 file)
#   WIREHUB_JWT_ALG [HS256]       algorithm of that key
#   WIREHUB_JWT_ISSUER, WIREHUB_JWT_AUDIENCE   checked when set
#   WIREHUB_ALLOWED_ORIGINS       space separated; any origin when unset
#   WIREHUB_WORKERS [auto]        nginx worker processes
#   WIREHUB_DASHBOARD [on]        the demo dashboard at /
#   WIREHUB_METRICS [off]         /metrics (Prometheus) on this port
#   WIREHUB_HTTP                  more directives for nginx's http block
#   WIREHUB_SERVER                more directives for the server block
set -euo pipefail

dir=/tmp/nginx
sock=/run/wirehub/wirehubd.sock
web=/usr/share/wirehub/web

die() {
    echo "wirehub-nginx: $*" >&2
    exit 1
}

jwt_key_file() {
    local file=${WIREHUB_JWT_KEY_FILE:-/run/secrets/wirehub_jwt}

    if [ -r "$file" ]; then
        echo "$file"
    elif [ -n "${WIREHUB_JWT_SECRET:-}" ]; then
        (umask 077 && printf '%s' "$WIREHUB_JWT_SECRET" > "$dir/jwt.secret")
        echo "$dir/jwt.secret"
    else
        die "no JWT key: mount one at $file or set WIREHUB_JWT_SECRET"
    fi
}

write_conf() {
    local key=$1 http="" server=""

    if [ -n "${WIREHUB_JWT_ISSUER:-}" ]; then
        http+="    wirehub_jwt_issuer $WIREHUB_JWT_ISSUER;"$'\n'
    fi
    if [ -n "${WIREHUB_JWT_AUDIENCE:-}" ]; then
        http+="    wirehub_jwt_audience $WIREHUB_JWT_AUDIENCE;"$'\n'
    fi
    if [ -n "${WIREHUB_ALLOWED_ORIGINS:-}" ]; then
        http+="    wirehub_allowed_origins $WIREHUB_ALLOWED_ORIGINS;"$'\n'
    fi
    http+="${WIREHUB_HTTP:-}"
    if [ "${WIREHUB_DASHBOARD:-on}" = on ]; then
        server+="        location / { root $web/dashboard; }"$'\n'
    fi
    if [ "${WIREHUB_METRICS:-off}" = on ]; then
        server+="        location = /metrics { wirehub_metrics; }"$'\n'
    fi
    server+="${WIREHUB_SERVER:-}"

    # not root: no `user`; every path nginx writes is under /tmp
    cat > "$dir/nginx.conf" <<CONF
include /etc/nginx/modules-enabled/*.conf;

worker_processes ${WIREHUB_WORKERS:-auto};
pid $dir/nginx.pid;
error_log stderr notice;

events {
    worker_connections 8192;
}

http {
    include /etc/nginx/mime.types;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    # the request line with tokens masked
    log_format wirehub '\$remote_addr [\$time_local] "\$wirehub_request" '
                       '\$status \$body_bytes_sent '
                       'ws=\$wirehub_workspace client=\$wirehub_client_id';
    access_log /dev/stdout wirehub;

    wirehub_daemon unix:$sock;
    wirehub_jwt_key ${WIREHUB_JWT_ALG:-HS256} file=$key;
${http}
    server {
        listen ${WIREHUB_PORT:-8080};

        location /ws/       { wirehub_websocket; }
        location /api/      { wirehub_api; }
        location = /healthz { wirehub_api; }
${server}
    }
}
CONF
}

conf=${WIREHUB_NGINX_CONF:-}
if [ -z "$conf" ]; then
    mkdir -p "$dir"
    write_conf "$(jwt_key_file)"
    conf=$dir/nginx.conf
fi

/usr/sbin/nginx -e stderr -t -q -c "$conf"
exec /usr/sbin/nginx -e stderr -c "$conf" -g 'daemon off;'
