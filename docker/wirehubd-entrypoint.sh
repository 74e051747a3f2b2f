#!/bin/sh
# wirehubd's container entry point: the configuration from the
# environment (or a mounted file), checked with `wirehubd -t`, then
# wirehubd itself as PID 1 (exec), so that SIGTERM reaches it.
#
#   WIREHUBD_CONFIG=/path     use this file as it is (mount it read-only);
#                             the variables below are then ignored
#   WIREHUBD_BIN              the daemon [/usr/sbin/wirehubd]
#   WIREHUBD_<DIRECTIVE>=...  any directive of wirehubd.conf(5), by name:
#                             the value is its arguments; ";" separates
#                             repeated lines (quota, ingest). Unset or
#                             empty: the directive's default below, or
#                             none. Examples:
#     WIREHUBD_HISTORY="length=5000 ttl=7d"
#     WIREHUBD_MQTT="host=mqtt port=1883 client_id=wirehubd-1"
#     WIREHUBD_INGEST="sensors/+/data workspace=demo channel=sensors/{1}
#                      type=sensor_reading key={1} rate=1/s"
#     WIREHUBD_QUOTA="workspace=* channels=10000; workspace=acme channels=50"
#     WIREHUBD_LOG="stderr info format=json"
#
# Defaults in a container: the link socket in the volume shared with
# nginx, for nginx's user (www-data) only, the store in the data volume,
# the log on stderr.
#
# With the argument -t: print the configuration, check it, and exit.
set -eu

wirehubd=${WIREHUBD_BIN:-/usr/sbin/wirehubd}
conf=${WIREHUBD_CONFIG:-}

if [ -z "$conf" ]; then
    conf=${TMPDIR:-/tmp}/wirehubd.conf
    umask 077
    : > "$conf"
    emitted=" "

    # one directive: "name" "args; args; ..."
    # (line breaks in a value are spaces: one directive may span lines)
    emit() {
        printf '%s' "$2" | tr '\t\n' '  ' | tr ';' '\n' \
        | while IFS= read -r line || [ -n "$line" ]; do
            line=$(printf '%s' "$line" | tr -s ' ' | sed 's/^ //; s/ $//')
            if [ -n "$line" ]; then
                printf '%s %s;\n' "$1" "$line" >> "$conf"
            fi
        done
    }

    # the environment first, in a stable order
    for var in $(env | sed -n 's/^\(WIREHUBD_[A-Z_]*\)=.*/\1/p' | sort); do
        case $var in WIREHUBD_CONFIG|WIREHUBD_BIN) continue;; esac
        eval "value=\${$var}"
        [ -n "$value" ] || continue
        name=$(printf '%s' "${var#WIREHUBD_}" | tr 'A-Z' 'a-z')
        emit "$name" "$value"
        emitted="$emitted$name "
    done

    default() {
        case $emitted in *" $1 "*) ;; *) emit "$1" "$2";; esac
    }
    default listen "unix:/run/wirehub/wirehubd.sock mode=0660 group=www-data"
    default storage "/var/lib/wirehub map_size=1g"
    default log "stderr info"
fi

if [ "${1:-}" = -t ]; then
    cat "$conf"
    exec "$wirehubd" -t -c "$conf"
fi

"$wirehubd" -t -c "$conf"
exec "$wirehubd" -c "$conf"
