"""What an upstream source costs wirehubd: RSS per idle connected
source (plain and TLS) and CPU per message received and published.

    /usr/bin/python3 bench/sources_cost.py [N_SOURCES] [N_MESSAGES]

Starts build/wirehubd and t/upstream_ws.py in a temp directory, adds
N_SOURCES sources over the link's API, waits for all to connect, reads
/proc; then one source receives N_MESSAGES pairs of events.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "t"))

from test_daemon import Daemon  # noqa: E402
from test_sources import Upstream, make_ca, sources, wait_for  # noqa: E402

import wh  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cost(tmp, n, tls):
    extra = {}
    if tls:
        ca, cert, key = make_ca(tmp)
        extra = dict(cert=cert, key=key)
    up = Upstream(tmp, count=0, name="idle-%s" % tls, **extra).start()
    d = Daemon(tmp, extra="").start()
    try:
        w = d.link()
        time.sleep(0.5)
        before = rss_kib(d.proc.pid)
        for i in range(n):
            body = {"id": "s%d" % i, "channel": "c/s%d/{event}" % i,
                    "url": "%s://%s:%d/ws/s%d" % (
                        "wss" if tls else "ws",
                        "localhost" if tls else "127.0.0.1", up.port, i)}
            if tls:
                body["cafile"] = str(tmp / "ca.pem")
            status, res = w.request("acme", "POST", "/sources",
                                    body=json.dumps(body))
            assert status == 201, res
        wait_for(lambda: all(s["state"] == "connected"
                             for s in sources(w).values()), 120,
                 "all connected")
        time.sleep(1)
        after = rss_kib(d.proc.pid)
        return before, after
    finally:
        d.stop()
        up.kill()


def cpu_cost(tmp, pairs):
    up = Upstream(tmp, count=pairs, name="cpu").start()
    d = Daemon(tmp, extra="source dev1 url=ws://127.0.0.1:%d/ws/dev1 "
               "workspace=acme channel=d/{event} rate=1000000/s;\n"
               % up.port).start()
    try:
        w = d.link()
        c0 = cpu_s(d.proc.pid)
        t0 = time.monotonic()
        wait_for(lambda: sources(w, "dev1")["published"] == 2 * pairs + 1,
                 300, "all published")
        c1 = cpu_s(d.proc.pid)
        return c1 - c0, time.monotonic() - t0
    finally:
        d.stop()
        up.kill()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    msgs = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
    for tls in (False, True):
        tmp = Path(tempfile.mkdtemp(prefix="wh-srccost-"))
        before, after = idle_cost(tmp, n, tls)
        print("%s: %d idle sources: RSS %d -> %d KiB: %.1f KiB per source"
              % ("wss" if tls else "ws", n, before, after,
                 (after - before) / n))
    tmp = Path(tempfile.mkdtemp(prefix="wh-srccost-"))
    cpu, wall = cpu_cost(tmp, msgs // 2)
    print("%d messages: wirehubd CPU %.2f s (wall %.2f s): %.1f us per "
          "message" % (msgs, cpu, wall, cpu * 1e6 / msgs))


if __name__ == "__main__":
    main()
