#!/usr/bin/env bash
# `make test-deb`: install the two packages from DIR with dpkg on this
# machine, check that the stock nginx loads the module through
# /etc/nginx/modules-enabled and that wirehubd accepts its installed
# config, that the units pass systemd-analyze verify and wirehubctl and
# the man pages are in place, then remove and purge both and check that
# nothing is left.
# It refuses to run where the packages or the user already exist, and
# leaves the machine's nginx as it found it (no service is started: a
# policy-rc.d denies it while the packages are installed).
#   packaging/test-deb.sh build/deb
set -euo pipefail

dir=${1:?usage: test-deb.sh DIR-WITH-DEBS}
PKGS=(libnginx-mod-http-wirehub wirehubd)
SO=/usr/lib/nginx/modules/ngx_http_wirehub_module.so
AVAILABLE=/usr/share/nginx/modules-available/mod-http-wirehub.conf
ENABLED=/etc/nginx/modules-enabled/50-mod-http-wirehub.conf
UNIT=/lib/systemd/system/wirehubd.service
WANTS=/etc/systemd/system/multi-user.target.wants/wirehubd.service
SOCKET=/lib/systemd/system/wirehubd.socket
SOCKET_WANTS=/etc/systemd/system/sockets.target.wants/wirehubd.socket
CTL=/usr/bin/wirehubctl
MANPAGES=(/usr/share/man/man8/wirehubd.8.gz
          /usr/share/man/man5/wirehubd.conf.5.gz
          /usr/share/man/man1/wirehubctl.1.gz)
POLICY=/usr/sbin/policy-rc.d

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

checks=0
failures=0
tmp=$(mktemp -d /tmp/wirehub-test-deb.XXXXXX)
created_policy=
installed=

ok() {
    checks=$((checks + 1))
    echo "ok: $*"
}

fail() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    echo "FAIL: $*"
}

check() {
    local what=$1
    shift
    if "$@" > "$tmp/out" 2>&1; then
        ok "$what"
    else
        fail "$what"
        sed 's/^/    /' "$tmp/out"
    fi
}

check_not() {
    local what=$1
    shift
    if "$@" > "$tmp/out" 2>&1; then
        fail "$what"
        sed 's/^/    /' "$tmp/out"
    else
        ok "$what"
    fi
}

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

nginx_state() {
    # what must be the same after the test: nginx's config tree and
    # whether its master runs
    find /etc/nginx -printf '%p %l %s %m\n' | sort
    if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null
    then
        echo "nginx running"
    fi
}

cleanup() {
    if [ -n "$installed" ]; then
        $SUDO dpkg --purge "${PKGS[@]}" > /dev/null 2>&1 || true
    fi
    if [ -n "$created_policy" ]; then
        $SUDO rm -f "$POLICY"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------ preconditions

debs=()
for p in "${PKGS[@]}"; do
    f=$(ls "$dir"/"${p}"_*.deb 2>/dev/null | head -1)
    if [ -z "$f" ]; then
        echo "test-deb: no ${p}_*.deb in $dir (run make deb)" >&2
        exit 1
    fi
    debs+=("$f")
    if is_installed "$p" || has_config_files "$p"; then
        echo "test-deb: $p is already on this machine; not touching it" >&2
        exit 1
    fi
done

if getent passwd wirehub > /dev/null || getent group wirehub > /dev/null
then
    echo "test-deb: a wirehub user or group exists already" >&2
    exit 1
fi

nginx_state > "$tmp/nginx-before"

if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" > /dev/null
    $SUDO chmod 755 "$POLICY"
    created_policy=1
fi

# a config that loads what modules-enabled names, and uses the module
cat > "$tmp/jwt.secret" <<EOF
test-deb-secret-not-used-for-anything
EOF
cat > "$tmp/nginx.conf" <<EOF
include /etc/nginx/modules-enabled/*.conf;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
    access_log $tmp/access.log;
    wirehub_daemon unix:/run/wirehub/wirehubd.sock;
    wirehub_jwt_key HS256 file=$tmp/jwt.secret;
    server {
        listen 127.0.0.1:8999;
        location /ws/  { wirehub_websocket; }
        location /api/ { wirehub_api; }
    }
}
EOF

nginx_t() {
    $SUDO /usr/sbin/nginx -t -c "$tmp/nginx.conf"
}

# ------------------------------------------------------------ install

echo "== dpkg -i ${debs[*]}"
installed=1
if ! $SUDO dpkg -i "${debs[@]}"; then
    fail "dpkg -i"
    exit 1
fi

for p in "${PKGS[@]}"; do
    check "$p installed" is_installed "$p"
done
check "module in $SO" test -f "$SO"
check "$AVAILABLE has the load_module line" \
    grep -qx 'load_module modules/ngx_http_wirehub_module.so;' "$AVAILABLE"
check "enabled: $ENABLED -> $AVAILABLE" \
    test "$(readlink "$ENABLED")" = "$AVAILABLE"
check "the stock nginx loads the module (nginx -t)" nginx_t
check "wirehubd in /usr/sbin" test -x /usr/sbin/wirehubd
check "default config passes wirehubd -t" \
    /usr/sbin/wirehubd -t -c /etc/wirehub/wirehubd.conf
check "/etc/wirehub/wirehubd.conf is a conffile" \
    grep -qx /etc/wirehub/wirehubd.conf \
    /var/lib/dpkg/info/wirehubd.conffiles
check "systemd unit $UNIT" test -f "$UNIT"
check "unit runs as wirehub" grep -qx 'User=wirehub' "$UNIT"
check "unit enabled ($WANTS)" test -L "$WANTS"
check "socket unit $SOCKET" test -f "$SOCKET"
check "socket unit enabled ($SOCKET_WANTS)" test -L "$SOCKET_WANTS"
check "unit runs as group wirehub, not nginx's" grep -qx 'Group=wirehub' \
    "$UNIT"
check "socket belongs to nginx's group" grep -qx 'SocketGroup=www-data' \
    "$SOCKET"
check "systemd-analyze verify on the installed units" \
    systemd-analyze verify "$SOCKET" "$UNIT"
check "wirehubctl runs" "$CTL" --version
for page in "${MANPAGES[@]}"; do
    check "man page $page" test -f "$page"
done
check "system user wirehub" \
    test "$(getent passwd wirehub | cut -d: -f3)" -lt 1000
check "/var/lib/wirehub belongs to wirehub" \
    test "$(stat -c %U:%a /var/lib/wirehub)" = wirehub:750
check "www-data group exists for the socket" getent group www-data

# ------------------------------------------------------------ remove

echo "== dpkg -r ${PKGS[*]}"
$SUDO dpkg -r "${PKGS[@]}"
check_not "module gone after remove" test -e "$SO"
check_not "nginx -t fails without the module (the check above can fail)" \
    nginx_t
check "remove keeps the conffile" test -f /etc/wirehub/wirehubd.conf
check "remove keeps the user" getent passwd wirehub

# ------------------------------------------------------------ purge

echo "== dpkg --purge ${PKGS[*]}"
$SUDO dpkg --purge "${PKGS[@]}"
installed=

for p in "${PKGS[@]}"; do
    check "$p purged (not even config files left)" purged "$p"
done
for f in "$SO" "$AVAILABLE" "$ENABLED" "$ENABLED.removed" \
         /usr/sbin/wirehubd /etc/wirehub "$UNIT" "$WANTS" \
         "$SOCKET" "$SOCKET_WANTS" "$CTL" "${MANPAGES[@]}" \
         /var/lib/wirehub /var/log/wirehub /usr/share/doc/wirehub
do
    check_not "no $f after purge" test -e "$f" -o -L "$f"
done
check_not "no wirehub user after purge" getent passwd wirehub
check_not "no wirehub group after purge" getent group wirehub

nginx_state > "$tmp/nginx-after"
check "nginx config and state as before" \
    diff "$tmp/nginx-before" "$tmp/nginx-after"

echo "test-deb: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
