"""One tenant cannot hurt another (DESIGN.md "Limits and quotas"): while
workspace A floods the stack every way a tenant can (noisy.py, from
127.0.0.2: publishes over the API and WebSocket, huge replays from many
connections, a storage fill, command_result spam, clients that never
read, reconnecting as soon as it is closed), workspace
B's subscribers on the same two nginx workers lose nothing, see no link
loss, and keep their publish-to-receive latency within a bound; A gets
its errors and its connections are closed.

B's p99 with A quiet and with A flooding lands in t/artifacts/metrics.json
(noisy_b_p99_quiet_ms, noisy_b_p99_flood_ms)."""

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

import chan
import wh

PHASE = 8.0          # seconds of measurement, quiet and flooding
RATE = 40            # B's publishes per second
SUBSCRIBERS = 4      # B's, spread over both workers
# seconds; four times that against the sanitizer builds (make test-asan),
# which spend several times the CPU on every message
P99_BOUND = 1.0 * (4 if "asan" in os.environ.get("WIREHUB_MODULE", "")
                   else 1)

HERE = os.path.dirname(os.path.abspath(__file__))

# handshakes per address, as the README recommends (WebSocket upgrades
# only: the API is left to the quotas)
HANDSHAKE_LIMIT = """
map $http_upgrade $wirehub_handshake_addr {
    default "";
    ~*^websocket$ $binary_remote_addr;
}
limit_req_zone $wirehub_handshake_addr zone=handshakes:1m rate=10r/s;
"""


# the noisy tenant, with the publish rate an operator would give a tenant
# on a two-core box (the defaults stay for everyone else)
A = chan.unique("noisyA")
QUOTA = "quota workspace=%s publish_rate=300/s;\n" % A


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("noisy", history="length=5000 ttl=24h", extra=QUOTA)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    small = wh.free_port()
    n = chan.start_nginx(nginx_factory, daemon, http=HANDSHAKE_LIMIT,
                         server="listen 127.0.0.1:%d sndbuf=8k;\n"
                                "wirehub_send_limit 256k;\n"
                                "limit_req zone=handshakes burst=40 nodelay;\n"
                                "limit_req_status 429;\n" % small)
    n.small = small
    assert wh.wait_port(small, n.proc)
    return n


class Watch:
    """B: subscribers on both workers and a publisher at RATE msg/s."""

    def __init__(self, ngx, workspace):
        self.ngx = ngx
        self.workspace = workspace
        self.clients = []
        self.got = []        # per subscriber: [(id, data, received at)]

    async def open(self):
        workers = sorted(self.ngx.workers())
        for i in range(SUBSCRIBERS):
            c = await chan.open_on(self.ngx,
                                   chan.token("watch%d" % i, self.workspace),
                                   workers[i % 2])
            await c.subscribe("ticks")
            got = []

            def on_text(text, got=got):
                got.append((text, time.time()))
            c.on_text = on_text
            self.clients.append(c)
            self.got.append(got)

    async def phase(self, seconds):
        """Publishes for seconds; returns (acked, latencies in s)."""
        for got in self.got:
            del got[:]
        pub = chan.Publisher(self.ngx.port,
                             chan.service_token(self.workspace), "ticks",
                             "b", pause=1.0 / RATE)
        pub.start()
        await asyncio.sleep(seconds)
        pub.stop()
        pub.join_checked()
        assert not pub.refused, pub.refused
        want = [mid for mid, _, _ in pub.acked]
        deadline = time.monotonic() + 20
        while any(len(got) < len(want) for got in self.got):
            assert time.monotonic() < deadline, \
                [len(got) for got in self.got]
            await asyncio.sleep(0.05)
        sent = {mid: data for mid, _, data in pub.acked}
        latencies = []
        for got in self.got:
            msgs = [(wh.json.loads(text), at) for text, at in got]
            assert [m["id"] for m, _ in msgs] == want
            for m, at in msgs:
                assert m["data"] == sent[m["id"]], m
                latencies.append(at - m["data"]["ts"])
        for c in self.clients:
            assert c.closed is None
        return want, latencies

    async def close(self):
        for c in self.clients:
            await c.close()


def start_attacker(ngx, workspace, seconds):
    env = dict(os.environ, PYTHONPATH=HERE)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "noisy.py"), str(ngx.port),
         str(ngx.small), workspace, str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def dropped_links(daemon):
    """Workers' links (named at HELLO) the daemon closed."""
    return [line for line in daemon.read_log().splitlines()
            if "link: peer" in line and "closed:" in line
            and "(-," not in line]


@pytest.mark.heavy
@pytest.mark.xfail(
    wh.ENGINE == "redis", strict=False,
    reason="Redis engine: a history read fetches the whole history (here "
           "5000 x 4 KiB) and a worker's link waits for each such read, so "
           "A's replays hold B's publishes for seconds")
def test_a_flooding_tenant_does_not_hurt_its_neighbour(ngx, daemon):
    a = A
    b = chan.unique("calmB")
    links = sum(chan.link_up_counts(ngx).values())
    attacker = start_attacker(ngx, a, PHASE + 2)
    result = {}

    async def scenario():
        watch = Watch(ngx, b)
        await watch.open()
        quiet_ids, quiet = await watch.phase(PHASE)

        attacker.stdin.write("go\n")
        attacker.stdin.flush()

        def wait_attacker():
            result["out"] = attacker.stdout.readline()
        waiter = threading.Thread(target=wait_attacker)
        waiter.start()
        await asyncio.sleep(1.0)          # let the flood build up
        flood_ids, flood = await watch.phase(PHASE)
        while waiter.is_alive():
            await asyncio.sleep(0.1)
        await watch.close()
        return quiet_ids, quiet, flood_ids, flood

    try:
        quiet_ids, quiet, flood_ids, flood = chan.run(scenario(),
                                                      timeout=180)
    finally:
        if attacker.poll() is None:
            attacker.kill()
        attacker.wait(10)
    out = wh.json.loads(result["out"])

    p99_quiet = chan.percentile(quiet, 99) * 1000
    p99_flood = chan.percentile(flood, 99) * 1000
    chan.record_metric("noisy_b_messages", [len(quiet_ids), len(flood_ids)])
    chan.record_metric("noisy_b_p99_quiet_ms", round(p99_quiet, 1))
    chan.record_metric("noisy_b_p99_flood_ms", round(p99_flood, 1))
    chan.record_metric("noisy_b_p50_flood_ms",
                       round(chan.percentile(flood, 50) * 1000, 1))
    chan.record_metric("noisy_a_outcomes", out)

    # B lost nothing (checked in phase()), and its latency held
    assert len(flood_ids) >= 10, len(flood_ids)
    assert p99_flood < P99_BOUND * 1000, (p99_quiet, p99_flood)

    # no link was lost on either side
    assert sum(chan.link_up_counts(ngx).values()) == links
    assert dropped_links(daemon) == []

    # A flooded for real, and its culprits were closed
    assert out.get("api:202", 0) > 100, out
    # closed for not reading: 1013, or 1006 when the close frame itself
    # could not get through to a client that reads nothing
    assert out.get("never_reader:open", 0) == 0, out
    assert out.get("replayer:open", 0) == 0, out
    assert out.get("ws_pub:close:1008", 0) >= 1, out
