"""Flow control on the link between nginx and wirehubd (DESIGN.md
"Limits and quotas"): a replay goes in pages paced by the subscriber's
reading and counted against its send limit, live messages held behind a
replay count too, and neither side drops the link because of one
session: the culprit alone is closed with 1013.

The stack is real: nginx with 2 workers, wirehubd with a long history.
Sockets are given small buffers so that "the client does not read" is
felt by nginx at once rather than after megabytes of kernel buffering."""

import asyncio
import os
import signal
import socket
import time

import pytest

import chan
import wh
from chan import Client, run

LIMIT = 64 * 1024           # wirehub_send_limit of the test server
HISTORY = 1500
BODY = "x" * 1000           # ~1.1 KiB per message as clients get it


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("flow", history="length=%d ttl=24h" % HISTORY)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    small = wh.free_port()
    n = chan.start_nginx(nginx_factory, daemon,
                         server="listen 127.0.0.1:%d sndbuf=8k;\n"
                                "wirehub_send_limit %d;\n" % (small, LIMIT))
    n.small = small
    assert wh.wait_port(small, n.proc)
    return n


@pytest.fixture(scope="module")
def history(ngx):
    """A channel of its own workspace holding HISTORY messages."""
    ws = chan.unique("flow")
    api = wh.Api(ngx.port, chan.service_token(ws))
    epoch = None
    for k in range(HISTORY):
        mid, epoch = chan.publish_ok(api, "big", {"k": k, "pad": BODY})
        assert mid == k + 1
    yield ws, epoch, api
    api.close()


async def open_small(port, tok, rcvbuf=4096):
    """A client whose socket buffers hold only a few KiB."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = wh.ws_key()
    _, proto = await loop.create_connection(lambda: Client(key), sock=sock)
    proto.transport.write(wh.upgrade_request(token=tok, key=key))
    await proto.ready
    status = await proto.recv(10)
    assert status["type"] == "connection_status", status
    return proto


def link_reconnects(ngx):
    return sum(chan.link_up_counts(ngx).values())


def assert_ids(msgs, first, last):
    ids = [m["id"] for m in msgs]
    assert ids == list(range(first, last + 1)), (ids[:5], ids[-5:])
    for m in msgs:
        assert m["type"] == "reading" and m["channel"] == "big", m


def test_replay_far_larger_than_the_send_limit_arrives_whole(ngx, history):
    """1500 messages (~1.6 MiB, 25 times the send limit) replayed to a
    client that reads: all of them in order, then live, no 1013."""
    ws, epoch, api = history
    links = link_reconnects(ngx)

    async def scenario():
        c = await open_small(ngx.small, chan.token("r1", ws))
        sub = await c.subscribe("big", since={"id": 0, "epoch": epoch})
        assert sub["recovered"] is True and sub["id"] == HISTORY, sub
        assert_ids(await c.messages(HISTORY, timeout=30), 1, HISTORY)
        assert c.closed is None
        await c.close()

    run(scenario())
    assert link_reconnects(ngx) == links


def test_live_messages_wait_behind_a_paced_replay(ngx, daemon):
    """A client that stops reading in the middle of its replay: the replay
    waits for it; live messages published meanwhile are held and follow
    the replay, in order, once it reads again."""
    ws = chan.unique("flow")
    api = wh.Api(ngx.port, chan.service_token(ws))
    for k in range(300):
        _, epoch = chan.publish_ok(api, "big", {"k": k, "pad": BODY})

    async def scenario():
        c = await open_small(ngx.small, chan.token("r2", ws))
        c.transport.pause_reading()
        await c.send({"type": "subscribe", "channels": ["big"],
                      "since": {"big": {"id": 0, "epoch": epoch}},
                      "ref": "s"})
        # ~22 KiB held: with the pages queued meanwhile, within the limit
        for k in range(20):
            chan.publish_ok(api, "big", {"live": k, "pad": BODY})
        c.transport.resume_reading()
        sub = await c.recv(10)
        assert sub["type"] == "subscribed" and sub["recovered"] is True, sub
        assert sub["id"] == 300, sub
        msgs = await c.messages(320, timeout=30)
        assert_ids(msgs, 1, 320)
        assert [m["data"]["live"] for m in msgs[300:]] == list(range(20))
        await c.close()

    try:
        run(scenario())
    finally:
        api.close()


def test_replay_survives_a_wirehubd_kill(ngx, daemon):
    """wirehubd is killed (-9) with a page of a replay asked for and not
    answered: once the worker has relinked, the replay goes on from where
    it got; the client sees every message once, in order, no second
    "subscribed" with "recovered":false."""
    ws = chan.unique("flow")
    api = wh.Api(ngx.port, chan.service_token(ws), retry=True)
    for k in range(300):
        _, epoch = chan.publish_ok(api, "big", {"k": k, "pad": BODY})

    async def scenario():
        c = await open_small(ngx.small, chan.token("r3", ws))
        await c.send({"type": "subscribe", "channels": ["big"],
                      "since": {"big": {"id": 0, "epoch": epoch}},
                      "ref": "s"})
        sub = await c.recv(10)
        assert sub["type"] == "subscribed" and sub["recovered"] is True, sub
        # wirehubd stops: what the worker queued drains to the client, and
        # the next page it asks for stays unanswered
        os.kill(daemon.pid, signal.SIGSTOP)
        first = []
        while True:
            try:
                first.append(await c.recv(1.0))
            except chan.NothingReceived:
                break
        assert 0 < len(first) < 300, len(first)
        before = chan.link_up_counts(ngx)
        daemon.kill9()
        daemon.start()
        chan.wait_relinked(ngx, before)
        rest = await c.messages(300 - len(first), timeout=30)
        assert_ids(first + rest, 1, 300)
        chan.publish_ok(api, "big", {"live": 1})
        live = await c.recv(10)
        assert live["id"] == 301 and live["data"] == {"live": 1}, live
        await c.close()

    try:
        run(scenario())
    finally:
        api.close()


def test_held_live_messages_count_against_the_send_limit(ngx):
    """A client that never reads while its replay waits: live messages
    held for it pass the send limit and it alone is closed with 1013;
    a reading subscriber of the same channel gets every message."""
    ws = chan.unique("flow")
    api = wh.Api(ngx.port, chan.service_token(ws))
    for k in range(300):
        _, epoch = chan.publish_ok(api, "big", {"k": k, "pad": BODY})
    links = link_reconnects(ngx)

    async def scenario():
        reader = await Client.open(ngx.port, chan.token("reader", ws))
        await reader.subscribe("big")
        c = await open_small(ngx.small, chan.token("sleeper", ws))
        c.transport.pause_reading()
        await c.send({"type": "subscribe", "channels": ["big"],
                      "since": {"big": {"id": 0, "epoch": epoch}}})
        # 120 live messages of ~1.1 KiB: twice the send limit
        for k in range(120):
            chan.publish_ok(api, "big", {"k": 300 + k, "pad": BODY})
        got = await reader.messages(120, timeout=20)
        assert_ids(got, 301, 420)
        c.transport.resume_reading()
        codes = []
        while True:
            try:
                await c.recv(10)
            except wh.ConnectionClosed as e:
                codes.append(e.code)
                break
        assert codes == [1013]
        assert reader.closed is None
        await reader.close()

    try:
        run(scenario())
    finally:
        api.close()
    assert link_reconnects(ngx) == links


def test_many_huge_replays_never_drop_the_link(ngx, daemon, history):
    """40 connections of one workspace replay its whole history (~64 MiB
    in all) and never read: another workspace's subscriber on the same
    workers keeps getting every live message, and no link is lost."""
    ws, epoch, _ = history
    other = chan.unique("calm")
    api = wh.Api(ngx.port, chan.service_token(other))
    links = link_reconnects(ngx)

    async def scenario():
        calm = [await Client.open(ngx.rport, chan.token("calm%d" % i, other))
                for i in range(4)]
        for c in calm:
            await c.subscribe("news")
        hogs = []
        for i in range(40):
            h = await open_small(ngx.rport, chan.token("hog%d" % i, ws))
            h.transport.pause_reading()
            await h.send({"type": "subscribe", "channels": ["big"],
                          "since": {"big": {"id": 0, "epoch": epoch}}})
            hogs.append(h)
        ids = [chan.publish_ok(api, "news", {"n": n})[0] for n in range(50)]
        for c in calm:
            got = await c.messages(50, timeout=20)
            assert [m["id"] for m in got] == ids
            assert [m["data"] for m in got] == [{"n": n} for n in range(50)]
        for h in hogs:
            h.transport.abort()
        for c in calm:
            await c.close()

    try:
        run(scenario(), timeout=120)
    finally:
        api.close()
    assert link_reconnects(ngx) == links
    # workers' links (named at HELLO) were never closed by the daemon
    dropped = [line for line in daemon.read_log().splitlines()
               if "link: peer" in line and "closed:" in line
               and "(-," not in line]
    assert dropped == []


def test_a_session_hogging_a_backed_up_link_is_closed_alone(ngx, daemon):
    """wirehubd stops reading (SIGSTOP): a client that keeps publishing
    large messages piles up more than its share of the link and is closed
    with 1013; a client that sent little stays connected, and once
    wirehubd runs again its publish is answered over the same link."""
    ws = chan.unique("flow")
    links = link_reconnects(ngx)

    async def scenario():
        hog = await Client.open(ngx.port,
                                chan.token("hog", ws, publish=["#"]))
        calm = await Client.open(ngx.port,
                                  chan.token("calm", ws, publish=["#"]))
        big = "y" * 60000
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            await calm.send({"type": "publish", "channel": "c1",
                             "data": {"calm": 1}, "ref": "p1"})
            code = None
            for k in range(200):
                await hog.send({"type": "publish", "channel": "c2",
                                "data": {"pad": big}})
                await asyncio.sleep(0)
                if hog.closed is not None:
                    break
            while code is None:
                try:
                    await hog.recv(10)
                except wh.ConnectionClosed as e:
                    code = e.code
            assert code == 1013, code
            assert calm.closed is None
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        reply = await calm.recv(10)
        assert reply["type"] == "published" and reply["ref"] == "p1", reply
        await calm.close()

    run(scenario())
    assert link_reconnects(ngx) == links


def test_a_backed_up_link_drains_as_soon_as_wirehubd_reads(ngx, daemon):
    """wirehubd stops reading while a client publishes more than the
    link's socket holds, so the rest waits in the worker.  The worker
    watches the link for room only while output waits: once wirehubd
    reads again, every publish is answered, in order, well within the
    link's 5 s keepalive (whose PING would otherwise be the next write to
    push the rest).  Three rounds, each after the watch was dropped."""
    ws = chan.unique("flow")
    links = link_reconnects(ngx)
    big = "z" * 60000
    # more than a UNIX socket's send buffer holds on this machine, and
    # far below the 4 MiB at which the worker starts closing hogs
    with open("/proc/sys/net/core/wmem_default") as f:
        count = (int(f.read()) + 512 * 1024) // len(big) + 2

    async def scenario():
        c = await Client.open(ngx.port,
                              chan.token("filler", ws, publish=["#"]))
        for rnd in range(3):
            refs = ["r%d.%d" % (rnd, k) for k in range(count)]
            os.kill(daemon.pid, signal.SIGSTOP)
            try:
                for k, ref in enumerate(refs):
                    data = {"pad": big} if k < count - 1 else {"last": rnd}
                    await c.send({"type": "publish", "channel": "fill",
                                  "data": data, "ref": ref})
                # the worker answers a ping itself, after the frames
                # before it: once it has, every publish is queued
                await c.send({"type": "ping", "ref": "p%d" % rnd})
                pong = await c.recv(10)
                assert pong["type"] == "pong", pong
            finally:
                os.kill(daemon.pid, signal.SIGCONT)
            start = time.monotonic()
            got = []
            for _ in refs:
                reply = await c.recv(10)
                assert reply["type"] == "published", reply
                got.append(reply["ref"])
            assert got == refs
            assert time.monotonic() - start < 1.5, time.monotonic() - start
        await c.close()

    run(scenario())
    assert link_reconnects(ngx) == links


def test_both_links_come_up_at_start_without_a_client(daemon, nginx_factory,
                                                      keys):
    """A worker sends its HELLO from its init, outside the event loop:
    both workers' links are up well within the 5 s keepalive, though the
    harness's one connect to the port wakes at most one of them."""
    ngx = nginx_factory(
        http="wirehub_daemon unix:%s;\n%s\n" % (daemon.socket,
                                                 wh.jwt_directives()),
        server=chan.SERVER, daemon=False, tag="flow-start")
    ngx.wait_link_up(timeout=2.0)
