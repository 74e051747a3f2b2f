#!/usr/bin/env bash
# Runs inside the fresh Debian machine that packaging/test-deb.sh boots
# (systemd is PID 1, nginx installed and running, no network but
# loopback; apt has every dependency in its cache). With the packages
# of two versions in /srv/debs/v1 and /srv/debs/v2:
#   install v1: units, files, the nginx ABI, both units running, nginx
#     loading the module, a WebSocket subscriber getting a published
#     message, `wirehubctl stats` answering;
#   upgrade to v2 over it: the history and an edit of the conffile
#     kept, wirehubd restarted and nginx reloaded onto the new module;
#   remove, then purge: what stays and what goes, as wirehubd(8) says.
set -euo pipefail

V1=/srv/debs/v1
V2=/srv/debs/v2
PKGS=(libnginx-mod-http-wirehub wirehubd)
SO=/usr/lib/nginx/modules/ngx_http_wirehub_module.so
AVAILABLE=/usr/share/nginx/modules-available/mod-http-wirehub.conf
ENABLED=/etc/nginx/modules-enabled/50-mod-http-wirehub.conf
UNIT=/lib/systemd/system/wirehubd.service
WANTS=/etc/systemd/system/multi-user.target.wants/wirehubd.service
SOCKET=/lib/systemd/system/wirehubd.socket
SOCKET_WANTS=/etc/systemd/system/sockets.target.wants/wirehubd.socket
SOCK=/run/wirehub/wirehubd.sock
CONF=/etc/wirehub/wirehubd.conf
CTL=/usr/bin/wirehubctl
SITE=/etc/nginx/conf.d/wirehub-test.conf
SECRET=/etc/nginx/wirehub-test.secret
URL=http://127.0.0.1:8999
MANPAGES=(/usr/share/man/man8/wirehubd.8.gz
          /usr/share/man/man5/wirehubd.conf.5.gz
          /usr/share/man/man1/wirehubctl.1.gz)
COPYRIGHTS=(/usr/share/doc/wirehubd/copyright
            /usr/share/doc/libnginx-mod-http-wirehub/copyright)

export DEBIAN_FRONTEND=noninteractive
tmp=$(mktemp -d)
. /srv/checks.sh

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q 'install ok installed'
}

has_config_files() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'config-files'
}

purged() {
    ! is_installed "$1" && ! has_config_files "$1"
}

version_of() {
    dpkg-query -W -f='${Version}' "$1"
}

deb_version() {
    dpkg-deb -f "$(ls "$1"/"$2"_*.deb)" Version
}

active() {
    test "$(systemctl is-active "$1")" = active
}

main_pid() {
    systemctl show -p MainPID --value wirehubd.service
}

nginx_workers() {
    pgrep -d, -f '^nginx: worker process' || true
}

nginx_state() {
    find /etc/nginx -path "$SITE" -prune -o -path "$SECRET" -prune \
        -o -printf '%p %l %s %m\n' | sort
}

# the message that `tail` prints is the one published
ws_roundtrip() {
    local channel=$1 data=$2 out=$tmp/tail.${1//\//_}.out pid i
    "$CTL" --url "$URL" --json tail "$channel" --count 1 \
        > "$out" 2> "$tmp/tail.err" &
    pid=$!
    for i in $(seq 100); do
        grep -q "subscribed to" "$tmp/tail.err" 2>/dev/null && break
        sleep 0.1
    done
    python3 - "$URL" "$channel" "$data" <<'PY'
import json, os, sys, urllib.request
url, channel, data = sys.argv[1:]
req = urllib.request.Request(
    "%s/api/channels/%s/messages" % (url, channel), method="POST",
    data=json.dumps({"type": "note", "data": {"text": data}}).encode(),
    headers={"Authorization": "Bearer " + os.environ["WIREHUB_TOKEN"],
             "Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=5).read()
PY
    timeout 10 tail --pid="$pid" -f /dev/null || { kill "$pid"; return 1; }
    wait "$pid"
    grep -q "\"text\": *\"$data\"" "$out"
}

history_has() {
    "$CTL" --url "$URL" --json tail "$1" --last 1 --count 1 \
        2> /dev/null | grep -q "\"text\": *\"$2\""
}

stats_answer() {
    "$CTL" --url "$URL" stats > "$tmp/stats" 2>&1 \
        && grep -q '^wirehubd ' "$tmp/stats" \
        && grep -q '^links ' "$tmp/stats"
}

# ------------------------------------------------------------ before

check "the machine runs systemd" test -d /run/systemd/system
check "nginx runs" active nginx.service
nginx_state > "$tmp/nginx-before"
abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' \
      | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p')
check "nginx provides an ABI ($abi)" test -n "$abi"
mod_deb=$(ls $V1/libnginx-mod-http-wirehub_*.deb)
check "the module depends on exactly that ABI" \
    grep -qE "(^|, )$abi(,|$)" <(dpkg-deb -f "$mod_deb" Depends)
check "no other nginx-abi in its Depends" \
    test "$(dpkg-deb -f "$mod_deb" Depends | grep -o 'nginx-abi-[^,]*' \
            | sort -u)" = "$abi"

# ------------------------------------------------------------ install v1

echo "== apt-get install $V1/*.deb"
apt-get install -y -q "$V1"/*.deb > "$tmp/apt1" 2>&1 \
    || { cat "$tmp/apt1"; fail "install v1"; exit 1; }

for p in "${PKGS[@]}"; do
    check "$p installed" is_installed "$p"
done
check "module in $SO" test -f "$SO"
check "$AVAILABLE has the load_module line" \
    grep -qx 'load_module modules/ngx_http_wirehub_module.so;' "$AVAILABLE"
check "enabled: $ENABLED -> $AVAILABLE" \
    test "$(readlink "$ENABLED")" = "$AVAILABLE"
check "wirehubd in /usr/sbin" test -x /usr/sbin/wirehubd
check "default config passes wirehubd -t" /usr/sbin/wirehubd -t -c "$CONF"
check "$CONF is a conffile" \
    grep -qx "$CONF" /var/lib/dpkg/info/wirehubd.conffiles
check "the default config has no MQTT and no ingest rule" \
    test -z "$(grep -E '^[[:space:]]*(mqtt|ingest|egress)\b' "$CONF")"
check "systemd unit $UNIT" test -f "$UNIT"
check "unit runs as wirehub" grep -qx 'User=wirehub' "$UNIT"
check "unit runs as group wirehub, not nginx's" grep -qx 'Group=wirehub' \
    "$UNIT"
check "unit enabled ($WANTS)" test -L "$WANTS"
check "socket unit $SOCKET" test -f "$SOCKET"
check "socket unit enabled ($SOCKET_WANTS)" test -L "$SOCKET_WANTS"
check "socket belongs to nginx's group" grep -qx 'SocketGroup=www-data' \
    "$SOCKET"
check "systemd-analyze verify on the installed units" \
    systemd-analyze verify --man=no "$SOCKET" "$UNIT"
check "wirehubctl runs" "$CTL" --version
for page in "${MANPAGES[@]}"; do
    check "man page $page" test -f "$page"
done
for f in "${COPYRIGHTS[@]}"; do
    check "machine-readable $f" \
        grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$f"
done
check "system user wirehub" \
    test "$(getent passwd wirehub | cut -d: -f3)" -lt 1000
check "/var/lib/wirehub belongs to wirehub" \
    test "$(stat -c %U:%a /var/lib/wirehub)" = wirehub:750

# ------------------------------------------------------------ run v1

check "wirehubd.socket active" eventually active wirehubd.socket
check "wirehubd.service active" eventually active wirehubd.service
check "the socket: wirehub:www-data 0660" \
    test "$(stat -c %U:%G:%a "$SOCK")" = wirehub:www-data:660
check "wirehubd runs as wirehub:wirehub" \
    test "$(ps -o user=,group= -p "$(main_pid)" | tr -s ' ')" \
         = "wirehub wirehub"
check "the store is wirehubd's alone" \
    test "$(stat -c %U:%G:%a /var/lib/wirehub)" = wirehub:wirehub:750
check "journald has wirehubd's lines with a priority, no second time" \
    eventually bash -c "journalctl -u wirehubd -o cat -p info \
        | grep -q '^storage\\|^link\\|^quota' \
        && ! journalctl -u wirehubd -o cat | grep -qE '^[0-9]{4}-[0-9]{2}-'"

head -c 32 /dev/urandom | base64 > "$SECRET"
chgrp www-data "$SECRET"
chmod 0640 "$SECRET"
cat > "$SITE" <<CONF
wirehub_daemon unix:$SOCK;
wirehub_jwt_key HS256 file=$SECRET;
server {
    listen 127.0.0.1:8999;
    location /ws/       { wirehub_websocket; }
    location /api/      { wirehub_api; }
    location = /healthz { wirehub_api; }
    location = /metrics { wirehub_metrics; }
}
CONF
check "nginx -t with the module and a wirehub site" nginx -t
systemctl reload nginx
WIREHUB_TOKEN=$("$CTL" token --key-file "$SECRET" --sub test-deb \
                --workspace debtest --role admin --ttl 1h)
export WIREHUB_TOKEN
check "/healthz: the link is up" eventually python3 -c "
import urllib.request
urllib.request.urlopen('$URL/healthz', timeout=2).read()"
check "a WebSocket subscriber gets a published message" \
    ws_roundtrip deb/one "before-upgrade"
check "wirehubctl stats answers" stats_answer
sed 's/^/    /' "$tmp/stats"

# ------------------------------------------------------------ upgrade

sed -i 's/^history length=1000 ttl=24h;/history length=777 ttl=24h;/' "$CONF"
check "the conffile edited" grep -qx 'history length=777 ttl=24h;' "$CONF"
pid_before=$(main_pid)
workers_before=$(nginx_workers)
v2=$(deb_version "$V2" wirehubd)
check "v2 ($v2) is newer than v1 ($(version_of wirehubd))" \
    dpkg --compare-versions "$v2" gt "$(version_of wirehubd)"

echo "== apt-get install $V2/*.deb (upgrade)"
apt-get install -y -q "$V2"/*.deb > "$tmp/apt2" 2>&1 \
    || { cat "$tmp/apt2"; fail "upgrade to v2"; exit 1; }

for p in "${PKGS[@]}"; do
    check "$p upgraded to $v2" test "$(version_of "$p")" = "$v2"
done
check "the conffile edit kept" grep -qx 'history length=777 ttl=24h;' \
    "$CONF"
check "no .dpkg-new/.dpkg-dist conffile left" \
    test -z "$(ls /etc/wirehub/*.dpkg-* 2>/dev/null)"
check "wirehubd.service active after the upgrade" \
    eventually active wirehubd.service
check "wirehubd restarted (a new main pid)" \
    test "$(main_pid)" != "$pid_before" -a "$(main_pid)" != 0
check "nginx reloaded onto the new module (new workers)" \
    eventually test "$(nginx_workers)" != "$workers_before"
check "nginx still runs" active nginx.service
check "history kept across the upgrade" \
    eventually history_has deb/one "before-upgrade"
check "a WebSocket after the upgrade" ws_roundtrip deb/two "after-upgrade"
check "wirehubctl stats answers after the upgrade" stats_answer

# ------------------------------------------------------------ remove

rm -f "$SITE"
systemctl reload nginx

echo "== dpkg -r ${PKGS[*]}"
dpkg -r "${PKGS[@]}" > "$tmp/remove" 2>&1 || cat "$tmp/remove"
check_not "module gone after remove" test -e "$SO"
check_not "wirehubd.service stopped" active wirehubd.service
check_not "wirehubd.socket stopped" active wirehubd.socket
check "nginx runs on without the module" eventually active nginx.service
check "remove keeps the conffile" test -f "$CONF"
check "remove keeps the store" test -d /var/lib/wirehub
check "remove keeps the user" getent passwd wirehub

# ------------------------------------------------------------ purge

echo "== dpkg --purge ${PKGS[*]}"
dpkg --purge "${PKGS[@]}" > "$tmp/purge" 2>&1 || cat "$tmp/purge"

for p in "${PKGS[@]}"; do
    check "$p purged (not even config files left)" purged "$p"
done
for f in "$SO" "$AVAILABLE" "$ENABLED" "$ENABLED.removed" \
         /usr/sbin/wirehubd /etc/wirehub "$UNIT" "$WANTS" \
         "$SOCKET" "$SOCKET_WANTS" "$CTL" "${MANPAGES[@]}" \
         /var/lib/wirehub /var/log/wirehub /usr/share/doc/wirehub \
         /usr/share/doc/wirehubd "$SOCK"
do
    check_not "no $f after purge" test -e "$f" -o -L "$f"
done
check_not "no wirehub user after purge" getent passwd wirehub
check_not "no wirehub group after purge" getent group wirehub
rm -f "$SECRET"
nginx_state > "$tmp/nginx-after"
check "nginx config as before" diff "$tmp/nginx-before" "$tmp/nginx-after"
check "nginx runs" active nginx.service

echo "test-deb (machine): $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
