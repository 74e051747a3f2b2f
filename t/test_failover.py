"""Failure semantics through the real stack: kill -9 and restart of
wirehubd with clients connected and publishers running, an nginx reload,
a garbage link peer, and wirehubd's refusal of bad configs."""

import asyncio
import json
import os
import socket
import struct
import subprocess
import time

import pytest

import chan
import wh
from chan import Client, assert_channel_messages, run


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("failover", history="length=100000 ttl=24h")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    # a WebSocket publisher goes as fast as it is answered through a
    # restart: hundreds a second, past the default wirehub_message_rate
    return chan.start_nginx(nginx_factory, daemon,
                            http="wirehub_message_rate 1000r/s burst=1000;")


@pytest.fixture
def running(daemon, ngx):
    """Every test starts and ends with wirehubd up and linked."""
    if not daemon.alive():
        before = chan.link_up_counts(ngx)
        daemon.start()
        chan.wait_relinked(ngx, before)
    yield daemon
    if not daemon.alive():
        before = chan.link_up_counts(ngx)
        daemon.start()
        chan.wait_relinked(ngx, before)


def assert_unavailable(resp):
    assert resp.status == 503, resp
    assert resp.header("retry-after"), resp
    assert resp.error_code() == "unavailable", resp


async def spread_clients(ngx, workspace, channel, n):
    """n subscribers of channel, half on each worker."""
    pids = sorted(ngx.workers())
    clients = []
    for i in range(n):
        c = await chan.open_on(ngx, chan.token("c%d" % i, workspace),
                               pids[i % 2])
        r = await c.subscribe(channel)
        assert r["recovered"] is True, r
        clients.append(c)
    return clients


def test_kill9_keeps_connections_and_refuses_new_work(ngx, running):
    daemon = running
    workspace = chan.unique("kill")
    channel = "live/feed"
    api = wh.Api(ngx.port, chan.service_token(workspace))
    tok = chan.token("newcomer", workspace)

    async def scenario():
        clients = await spread_clients(ngx, workspace, channel, 10)
        author = await Client.open(ngx.rport, chan.token(
            "author", workspace, publish=["live/#"]))
        for _ in range(3):
            chan.publish_ok(api, channel, {"phase": "before"})
        epoch = api.history(channel).json()["items"][0]["epoch"]
        for c in clients:
            assert_channel_messages(await c.messages(3), channel, [1, 2, 3])

        before = chan.link_up_counts(ngx)
        daemon.kill9()
        chan.wait_health(ngx, 503)
        status, retry, body = chan.healthz(ngx.rport)
        assert (status, retry) == (503, "2"), (status, retry, body)
        assert json.loads(body)["link"] == "down", body

        # new handshakes: 503 with Retry-After
        for _ in range(4):
            resp, sock, _ = wh.http_raw(ngx.rport,
                                        wh.upgrade_request(token=tok))
            sock.close()
            assert resp.status == 503, resp
            assert resp.header("retry-after") == "2", resp
        # the API: 503 for everything that needs state
        assert_unavailable(api.publish(channel, {"phase": "down"}))
        assert_unavailable(api.history(channel))
        assert_unavailable(api.channels())
        assert_unavailable(api.request("GET", "/api/stats"))

        # open connections stay up: pings answered, new work refused
        for c in clients:
            r = await c.call({"type": "ping"})
            assert r["type"] == "pong", r
            pong = await c.ping()
            await asyncio.wait_for(pong, 2)
        c = clients[0]
        r = await c.call({"type": "subscribe", "channels": ["other"]})
        assert (r["type"], r["code"], r["channel"]) == (
            "error", "unavailable", "other"), r
        r = await author.call({"type": "publish", "channel": channel,
                               "data": 1})
        assert (r["type"], r["code"], r["channel"]) == (
            "error", "unavailable", channel), r

        daemon.start()
        chan.wait_relinked(ngx, before)
        chan.wait_health(ngx, 200)
        for k in range(2):
            assert chan.publish_ok(api, channel, {"phase": "after"}) == (
                4 + k, epoch)
        for c in clients:
            got = await c.messages(2)
            assert_channel_messages(got, channel, [4, 5], epoch)
            assert await c.barrier() == []
        # every session was resumed upstream
        stats = api.request("GET", "/api/stats").json()
        assert stats["connections"] == 11, stats
        r = await author.call({"type": "publish", "channel": channel,
                               "data": 1})
        assert (r["type"], r["id"]) == ("published", 6), r
        for c in clients:
            assert_channel_messages(await c.messages(1), channel, [6])
        await author.close()
        newcomer = await Client.open(ngx.rport, tok)
        r = await newcomer.subscribe(channel, since={"id": 3,
                                                     "epoch": epoch})
        assert (r["id"], r["recovered"]) == (6, True), r
        assert_channel_messages(await newcomer.messages(3), channel,
                                [4, 5, 6])
        for c in clients + [newcomer]:
            await c.close()

    try:
        run(scenario())
    finally:
        api.close()


def check_stream(reports, pubs, last):
    """Every subscriber got ids 1..last once, in order; every acked id
    with the data that got the 202; nothing else but retried payloads."""
    acked = {}
    attempted = set()
    for p in pubs:
        for mid, _, data in p.acked:
            assert mid not in acked, mid
            acked[mid] = data
            attempted.add((data["p"], data["k"]))
    for r in reports:
        assert (r["n"], r["first"], r["last"], r["gaps"], r["dups"]) == (
            last, 1, last, 0, 0), {k: r[k] for k in r if k != "pairs"}
        assert r["others"] == [], r["others"]
        got = dict((mid, data) for mid, data in r["pairs"])
        for mid, data in acked.items():
            assert got.get(mid) == data, (r["port"], mid)
        for mid, data in got.items():
            if mid not in acked:
                # stored, but its 202 was lost in the crash; the
                # publisher retried the same (p, k)
                assert (data["p"], data["k"]) in attempted, (mid, data)
    return acked


def test_publish_stream_through_kill9_and_restart(ngx, running):
    daemon = running
    workspace = chan.unique("stream")
    channel = "stream/main"
    svc = chan.service_token(workspace)
    tokens = [chan.token("s%d" % i, workspace) for i in range(20)]
    fleet = chan.Fleet(ngx.rport, tokens, channel, procs=2, keep=True)
    pubs = []
    try:
        conns = fleet.wait_ready()
        owners = chan.workers_of(ngx, [c["port"] for c in conns])
        assert set(owners.values()) == set(ngx.workers()), owners
        pubs = [chan.Publisher(ngx.port, svc, channel, "p%d" % i,
                               pause=0.002) for i in range(2)]
        for p in pubs:
            p.start()
        time.sleep(0.4)
        for stop in (daemon.kill9, daemon.terminate, daemon.kill9):
            count = sum(len(p.acked) for p in pubs)
            before = chan.link_up_counts(ngx)
            rc = stop()
            assert rc in (None, 0), rc
            time.sleep(0.3)
            daemon.start()
            chan.wait_relinked(ngx, before)
            time.sleep(0.4)
            assert sum(len(p.acked) for p in pubs) > count, \
                "publishing did not resume"
        for p in pubs:
            p.stop()
        for p in pubs:
            p.join_checked()
        assert all(p.refused for p in pubs), "no publish saw the outage"
        epochs = set(a[1] for p in pubs for a in p.acked)
        assert len(epochs) == 1, epochs
        last = max(a[0] for p in pubs for a in p.acked)
        reports = fleet.finish(last)
    finally:
        for p in pubs:
            p.stop()
        fleet.kill()
    assert len(reports) == 20
    acked = check_stream(reports, pubs, last)

    # the history agrees with what the subscribers got
    api = wh.Api(ngx.port, svc)
    items, since = [], 0
    while True:
        doc = api.history(channel, "since=%d&limit=1000" % since).json()
        items += doc["items"]
        if doc["next"] is None:
            break
        since = int(doc["next"])
    api.close()
    assert [m["id"] for m in items] == list(range(1, last + 1))
    for m in items:
        if m["id"] in acked:
            assert m["data"] == acked[m["id"]], m
    chan.record_metric("kill9_stream", {
        "acked": len(acked), "stored": last,
        "refused": sum(sum(p.refused.values()) for p in pubs)})


def test_websocket_publishers_through_restart(ngx, running):
    """`published` means stored: every id a WebSocket publisher got is
    delivered once, in order, across kill -9."""
    daemon = running
    workspace = chan.unique("wspub")
    channel = "chat/main"

    async def publisher(stop, acked, errors):
        c = await Client.open(ngx.rport, chan.token(
            "author", workspace, publish=["chat/#"]))
        k = 0
        while not stop.is_set():
            r = await c.call({"type": "publish", "channel": channel,
                              "data": {"k": k}})
            if r["type"] == "published":
                acked.append((r["id"], k))
            else:
                assert (r["type"], r["code"]) == ("error", "unavailable"), r
                errors.append(r)
                await asyncio.sleep(0.05)
            k += 1
            await asyncio.sleep(0.003)
        await c.close()

    async def scenario():
        clients = await spread_clients(ngx, workspace, channel, 6)
        stop, acked, errors = asyncio.Event(), [], []
        task = asyncio.ensure_future(publisher(stop, acked, errors))
        await asyncio.sleep(0.3)
        before = chan.link_up_counts(ngx)
        daemon.kill9()
        await asyncio.sleep(0.3)
        daemon.start()
        await asyncio.get_running_loop().run_in_executor(
            None, chan.wait_relinked, ngx, before)
        await asyncio.sleep(0.3)
        stop.set()
        await task
        assert errors, "no publish saw the outage"
        last = max(mid for mid, _ in acked)
        assert [mid for mid, _ in acked] == sorted(
            mid for mid, _ in acked)
        for c in clients:
            got = await c.messages(last, timeout=20)
            assert [m["id"] for m in got] == list(range(1, last + 1))
            by_id = {m["id"]: m["data"] for m in got}
            for mid, k in acked:
                assert by_id[mid] == {"k": k}, (mid, by_id[mid])
            assert await c.barrier() == []
            await c.close()

    run(scenario())


def test_nginx_reload_keeps_wirehubd(ngx, running):
    daemon = running
    pid = daemon.pid
    workspace = chan.unique("reload")
    api = wh.Api(ngx.port, chan.service_token(workspace))

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("r", workspace))
        s = await c.subscribe("news")
        chan.publish_ok(api, "news", {"n": 1})
        assert_channel_messages(await c.messages(1), "news", [1])
        old = set(ngx.workers())
        api.close()  # its keep-alive connection goes with the old worker
        ngx.reload()
        # the old worker closes its WebSockets with 1001
        with pytest.raises(Exception) as closed:
            await c.recv(10)
        assert getattr(closed.value, "code", None) == 1001, closed.value
        deadline = time.monotonic() + 10
        while set(ngx.workers()) & old or len(ngx.workers()) < 2:
            assert time.monotonic() < deadline, "old workers linger"
            await asyncio.sleep(0.05)
        ngx.wait_link_up()
        chan.wait_health(ngx, 200)
        assert daemon.alive() and daemon.pid == pid
        chan.publish_ok(api, "news", {"n": 2})
        c = await Client.open(ngx.rport, chan.token("r", workspace))
        r = await c.subscribe("news", since={"id": 1, "epoch": s["epoch"]})
        assert (r["id"], r["recovered"]) == (2, True), r
        assert_channel_messages(await c.messages(1), "news", [2])
        await c.close()
        deadline = time.monotonic() + 5
        while api.request("GET", "/api/stats").json()["links"] != 2:
            assert time.monotonic() < deadline, "old links not closed"
            await asyncio.sleep(0.05)

    try:
        run(scenario())
    finally:
        api.close()


def link_frame(mtype, payload=b""):
    body = bytes([mtype]) + payload
    return struct.pack(">I", len(body)) + body


def link_str(s):
    s = s.encode()
    return struct.pack(">H", len(s)) + s


HELLO_V1 = link_frame(0x01,
                      struct.pack(">HI", wh.LINK_VERSION, os.getpid())
                      + link_str("pytest/garbage"))

GARBAGE = {
    "junk": b"\x00\x00\x00\x05\xffjunk",
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "empty-frame": b"\x00\x00\x00\x00",
    "huge-length": b"\xff\xff\xff\xff" + b"x" * 64,
    "subscribe-before-hello": link_frame(
        0x02, link_str("acme") + link_str("x") + struct.pack(">IBQ", 1, 0, 0)
        + link_str("")),
    "hello-version-99": link_frame(0x01, struct.pack(">HI", 99, 1)
                                   + link_str("x")),
    "hello-truncated": link_frame(0x01, b"\x00"),
    "hello-trailing": link_frame(0x01,
                                 struct.pack(">HI", wh.LINK_VERSION, 1)
                                 + link_str("x") + b"extra"),
    "hello-then-unknown-type": HELLO_V1 + link_frame(0x7f, b"zz"),
    "hello-then-bad-workspace": HELLO_V1 + link_frame(
        0x02, link_str("../b") + link_str("x")
        + struct.pack(">IBQ", 1, 0, 0) + link_str("")),
    "hello-longer-than-1k": link_frame(
        0x01, struct.pack(">HI", wh.LINK_VERSION, 1) + link_str("x" * 1100)),
    "16MiB-announced-first": b"\x01\x00\x00\x00\x01" + b"x" * 100,
    "random": os.urandom(65536),
}


def peer_dropped(payload, path, timeout=3.0):
    """True when wirehubd closes a peer that sent payload."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
            if not chunk:
                return True
        return False


def test_silent_link_peer_is_dropped_after_5s(running):
    daemon = running
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(daemon.socket)
        t0 = time.monotonic()
        assert s.recv(1) == b""
        waited = time.monotonic() - t0
    assert 4.5 < waited < 8.5, waited
    assert daemon.alive()


def test_garbage_link_peers_are_dropped(ngx, running):
    daemon = running
    workspace = chan.unique("garbage")
    api = wh.Api(ngx.port, chan.service_token(workspace))
    before = chan.link_up_counts(ngx)

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("g", workspace))
        await c.subscribe("feed")
        for name, payload in GARBAGE.items():
            dropped = await asyncio.get_running_loop().run_in_executor(
                None, peer_dropped, payload, daemon.socket)
            assert dropped, "wirehubd kept a peer that sent %s" % name
            assert daemon.alive(), "wirehubd died on %s" % name
        chan.publish_ok(api, "feed", {"n": 1})
        assert_channel_messages(await c.messages(1), "feed", [1])
        await c.close()

    try:
        run(scenario())
        assert chan.link_up_counts(ngx) == before, "a worker relinked"
        assert api.request("GET", "/api/stats").json()["links"] == 2
        chan.wait_health(ngx, 200)
    finally:
        api.close()


# ---------------------------------------------------------------- config


def check_config(tmp_path, text):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    res = subprocess.run([wh.WIREHUBD, "-c", str(conf), "-t"],
                         capture_output=True, text=True, timeout=10)
    return res.returncode, (res.stdout + res.stderr).strip(), str(conf)


@pytest.mark.parametrize("text,line,what", [
    ("storage /x map_size=512k;\n", 1, 'invalid map_size "512k"'),
    ("listen unix:/a;\nstorage /x map_size=0;\n", 2, "invalid map_size"),
    ("storage /x map_size=99999999999999999999g;\n", 1, "invalid map_size"),
    ("storage /x map_size=-1g;\n", 1, "invalid map_size"),
    ("storage;\n", 1, '"storage" needs a directory'),
    ("\n\nhistory length=10 ttl=-1s;\n", 3, 'invalid history ttl "-1s"'),
    ("history ttl=;\n", 1, "invalid history ttl"),
    ("history length=abc;\n", 1, "invalid history length"),
    ("history length=99999999999;\n", 1, "invalid history length"),
    ("listen unix:;\n", 1, "invalid listen address"),
    ("listen unix:/tmp/wh.sock mode=999;\n", 1, 'invalid mode "999"'),
    ("storage /x map_size=1g max_map_size=512m;\n", 1,
     "max_map_size is below map_size"),
])
def test_bad_config_is_refused_with_file_and_line(tmp_path, text, line,
                                                  what):
    rc, out, conf = check_config(tmp_path, text)
    assert rc != 0, out
    assert out.startswith("wirehubd: %s:%d: " % (conf, line)), out
    assert what in out, out


def test_logs_clean(ngx, daemon):
    ngx.assert_clean_log()
    assert daemon.alive()
