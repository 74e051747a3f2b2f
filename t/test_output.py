"""The output path through the real stack (nginx with the module, wirehubd):
the 101 response and connection_status leave in one write (one read gets
both); a burst of messages to one subscriber arrives whole and in order;
messages published during a large fan-out (written in slices, frames
queued meanwhile leaving together) reach every subscriber, in order,
nothing lost (issue 18: corked fan-out, the handshake in one write).
"""

import json
import socket

import pytest

import chan
import wh
from chan import Client, run


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("output")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    # the bursts below publish far past the default wirehub_message_rate
    return chan.start_nginx(nginx_factory, daemon,
                            http="wirehub_message_rate 100000r/s "
                                 "burst=100000;")


def one_read_after_handshake(port, token):
    """The bytes of the first recv() after the upgrade request (the test
    waits until the socket is readable, then reads once)."""
    sock = socket.create_connection(("127.0.0.1", port), 5)
    try:
        key = wh.ws_key()
        sock.sendall(wh.upgrade_request(token=token, key=key))
        sock.settimeout(5)
        data = sock.recv(65536)
    finally:
        sock.close()
    return key, data


def assert_greeted_in_one_read(port, workspace):
    for i in range(5):
        key, data = one_read_after_handshake(
            port, chan.token("hs-%d" % i, workspace))
        assert b"\r\n\r\n" in data, data
        head, rest = data.split(b"\r\n\r\n", 1)
        status, _, headers = wh.parse_head(head + b"\r\n\r\n")
        assert status == 101, data
        assert headers["sec-websocket-accept"] == wh.ws_accept(key), headers
        got = wh.parse_frame(rest)
        assert got is not None, "connection_status did not come with the " \
            "101: %r" % rest
        frame, end = got
        assert frame.opcode == wh.OP_TEXT and frame.fin, frame
        msg = json.loads(frame.payload)
        assert msg["type"] == "connection_status", msg
        assert msg["data"]["status"] == "connected", msg
        assert msg["data"]["client_id"] == "hs-%d" % i, msg
        assert msg["data"]["workspace"] == workspace, msg
        assert end == len(rest), rest


def test_101_and_connection_status_arrive_in_one_read(ngx):
    """With wirehubd the 101 waits for its SESSION_ACCEPT."""
    assert_greeted_in_one_read(ngx.port, chan.unique("hs"))


def test_without_daemon_101_and_status_arrive_in_one_read(nginx_factory,
                                                          keys):
    """wirehub_daemon off: connection_status is queued at once."""
    ngx = nginx_factory(http="wirehub_daemon off;\n" + wh.jwt_directives(),
                        server="location /ws/ { wirehub_websocket; }",
                        daemon=False, tag="nolink")
    assert_greeted_in_one_read(ngx.port, wh.WORKSPACE)


async def publish_burst(port, token, channel, count, size=16):
    """count WebSocket publishes sent back to back, then their replies;
    returns [(id, data)] in the order the server assigned ids."""
    pub = await Client.open(port, token)
    sent = {}
    for k in range(count):
        ref = "b%d" % k
        data = {"k": k, "pad": "x" * size}
        sent[ref] = data
        await pub.send({"type": "publish", "channel": channel,
                        "data": data, "ref": ref})
    acked = []
    while len(acked) < count:
        r = await pub.recv(30)
        assert r["type"] == "published", r
        acked.append((r["id"], sent[r["ref"]]))
    await pub.close()
    acked.sort(key=lambda a: a[0])
    assert [a[0] for a in acked] == list(range(acked[0][0],
                                               acked[0][0] + count))
    return acked


def test_burst_to_one_subscriber_arrives_whole_and_in_order(ngx):
    """Published faster than one write per message: the subscriber gets
    every message once, in id order, with the data it was published
    with."""
    workspace = chan.unique("burst")
    channel = "burst/one"
    count = 2000

    async def scenario():
        sub = await Client.open(ngx.port, chan.token("sub", workspace))
        await sub.subscribe(channel)
        acked = await publish_burst(ngx.port, chan.token(
            "pub", workspace, publish=[channel]), channel, count)
        msgs = await sub.messages(count, timeout=30)
        assert [(m["channel"], m["id"], m["data"]) for m in msgs] == \
            [(channel, mid, data) for mid, data in acked]
        assert await sub.barrier() == []
        await sub.close()

    run(scenario())


def test_publish_during_large_fanout_reaches_everyone_in_order(ngx):
    """2,000 subscribers over both workers (a fan-out is written in
    slices, the link read in between), 40 messages published back to
    back: each subscriber has all 40, in order, with their data."""
    workspace = chan.unique("big")
    channel = "big/fan"
    subs = 2000
    count = 40
    tokens = [chan.token("b-%d" % i, workspace) for i in range(subs)]
    fleet = chan.Fleet(ngx.rport, tokens, channel, procs=4, keep=True)
    try:
        assert len(fleet.wait_ready(120)) == subs
        acked = run(publish_burst(ngx.port, chan.token(
            "pub", workspace, publish=[channel]), channel, count, 400))
        reports = fleet.finish(acked[-1][0], 120)
    finally:
        fleet.kill()
    want = chan.digest(acked)
    assert len(reports) == subs
    for r in reports:
        assert (r["n"], r["first"], r["last"], r["gaps"], r["dups"],
                r["others"]) == (count, acked[0][0], acked[-1][0], 0, 0,
                                 []), r
        assert r["digest"] == want, r


def test_logs_clean(ngx, daemon):
    ngx.assert_clean_log()
