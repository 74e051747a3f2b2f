#!/usr/bin/env bash
# `make autobahn AUTOBAHN=/path/to/autobahn-testsuite`: the Autobahn|Testsuite
# fuzzing client against wirehub_echo on a freshly started nginx, then a
# summary per case group; exits 1 unless every case is OK or INFORMATIONAL.
# Fetches nothing: AUTOBAHN is a checkout of a Python 3 port of the
# testsuite (its autobahntestsuite/ package is run with Debian's
# python3-autobahn, python3-twisted and python3-jinja2).  The client times
# closing handshakes to 1 s: run it on an otherwise idle machine.
#   CASES='1.* 2.*'   the cases to run (default: groups 1-7, 9, 10, 12, 13)
#   PORT=9001         where nginx listens (loopback)
#   OUT=build/autobahn  prefix, logs and the reports
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
suite=${AUTOBAHN:?set AUTOBAHN=/path/to/autobahn-testsuite}
suite=$(cd "$suite" && pwd)
pkg=$suite/autobahntestsuite
port=${PORT:-9001}
out=${OUT:-$top/build/autobahn}
cases=${CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 12.* 13.*}
module=$top/build/ngx_http_wirehub_module.so

if [ ! -f "$pkg/autobahntestsuite/wstest.py" ]; then
    echo "autobahn: no autobahntestsuite/autobahntestsuite/wstest.py" \
         "under $suite" >&2
    exit 2
fi
for m in autobahn twisted jinja2; do
    if ! $python -c "import $m" 2>/dev/null; then
        echo "autobahn: $python cannot import $m (apt-get install" \
             "python3-autobahn python3-twisted python3-jinja2)" >&2
        exit 2
    fi
done

rm -rf "$out"
mkdir -p "$out/logs" "$out/tmp" "$out/reports"

user=
if [ "$(id -u)" -eq 0 ]; then
    user="user root root;"
fi

# group 9 sends messages of 16 MiB and expects them echoed whole
cat > "$out/nginx.conf" <<CONF
load_module $module;
daemon off;
master_process on;
worker_processes 2;
pid $out/logs/nginx.pid;
error_log $out/logs/error.log info;
$user
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $out/tmp/body;
    proxy_temp_path $out/tmp/proxy;
    fastcgi_temp_path $out/tmp/fastcgi;
    uwsgi_temp_path $out/tmp/uwsgi;
    scgi_temp_path $out/tmp/scgi;
    wirehub_daemon off;
    wirehub_max_message_size 16m;
    wirehub_send_limit 64m;
    server {
        listen 127.0.0.1:$port;
        location / { wirehub_echo; }
    }
}
CONF

nginx_bin=${NGINX:-/usr/sbin/nginx}
"$nginx_bin" -p "$out" -c "$out/nginx.conf" &
nginx_pid=$!
stop() {
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    sleep 0.1
done

$python - "$out" "$port" $cases > "$out/spec.json" <<'PY'
import json, sys
out, port, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
json.dump({"outdir": out + "/reports",
           "servers": [{"agent": "wirehub",
                        "url": "ws://127.0.0.1:%s/echo" % port}],
           "cases": cases, "exclude-cases": [],
           "exclude-agent-cases": {}}, sys.stdout)
PY

# The port writes some close reasons into its per-case reports as bytes,
# which json.dumps() refuses; the exception escapes the reactor, which then
# never stops.  Such values are written as text instead.
(cd "$out" && PYTHONPATH=$pkg $python - "$out/spec.json" \
    > "$out/wstest.log" 2>&1 <<'PY'
import json, sys

dumps = json.dumps


def text(o):
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "replace")
    return repr(o)


def dumps_text(obj, **kw):
    kw.setdefault("default", text)
    return dumps(obj, **kw)


json.dumps = dumps_text

from autobahntestsuite import wstest

sys.argv = ["wstest", "-m", "fuzzingclient", "-s", sys.argv[1]]
wstest.run()
PY
) || {
    tail -20 "$out/wstest.log" >&2
    exit 1
}

if [ ! -s "$out/reports/index.json" ]; then
    tail -20 "$out/wstest.log" >&2
    exit 1
fi

$python - "$out/reports/index.json" <<'PY'
import collections, json, sys
index = json.load(open(sys.argv[1]))
kinds = ["OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED",
         "OTHER"]
groups = collections.OrderedDict()
bad = []
for agent, results in index.items():
    for case in sorted(results,
                       key=lambda c: [int(p) for p in c.split(".")]):
        r = results[case]
        group = groups.setdefault(case.split(".")[0],
                                  collections.Counter())
        # a case counts by its worse verdict: the messages or the close
        verdict = r["behavior"]
        if verdict == "OK" and r["behaviorClose"] not in ("OK",
                                                         "INFORMATIONAL"):
            verdict = r["behaviorClose"]
        # a close verdict such as UNCLEAN or WRONG CODE
        group[verdict if verdict in kinds else "OTHER"] += 1
        if verdict not in ("OK", "INFORMATIONAL"):
            bad.append("%s %s (close %s)" % (case, r["behavior"],
                                             r["behaviorClose"]))
print("%-6s" % "group" + "".join("%15s" % k for k in kinds))
for g, c in groups.items():
    print("%-6s" % g + "".join("%15d" % c[k] for k in kinds))
for line in bad:
    print("  " + line)
sys.exit(1 if bad else 0)
PY
