"""The output path through the real stack (nginx with the module, wirehubd):
the 101 response and connection_status leave in one write (one read gets
both); a burst of messages to one subscriber arrives whole and in order;
messages published during a large fan-out (written in slices, frames
queued meanwhile leaving together) reach every subscriber, in order,
nothing lost; a publisher that waits for each answer of the HTTP API is
paced by the fan-out instead of outrunning it (issue 18: corked fan-out,
the handshake in one write).
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
                                 "burst=100000;",
                            server="location = /metrics "
                                   "{ wirehub_metrics; }")


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


def assert_everyone_got(reports, subs, acked):
    """Each of the fleet's subs subscribers has every acked message, in
    order, once, with its data."""
    want = chan.digest(acked)
    assert len(reports) == subs
    for r in reports:
        assert (r["n"], r["first"], r["last"], r["gaps"], r["dups"],
                r["others"]) == (len(acked), acked[0][0], acked[-1][0], 0, 0,
                                 []), r
        assert r["digest"] == want, r


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
    assert_everyone_got(reports, subs, acked)


def paced_total(port):
    return wh.metric_value(port, "wirehub_publishes_paced_total")


def test_api_publisher_is_paced_by_the_fanout(ngx):
    """2,000 subscribers over both workers, and a publisher that sends
    each publish through the HTTP API once the last one is answered: an
    answer waits until its worker wrote the messages it queued before
    this one, so the publisher goes at the pace of the fan-out
    (wirehub_publishes_paced_total counts the answers that waited: a
    fan-out of 1,000 sessions a worker takes some milliseconds, a publish
    well under one, so most of them wait).  Every subscriber has every
    message, in order, with its data."""
    workspace = chan.unique("paced")
    channel = "paced/fan"
    subs = 2000
    count = 30
    tokens = [chan.token("p-%d" % i, workspace) for i in range(subs)]
    before = paced_total(ngx.port)
    fleet = chan.Fleet(ngx.rport, tokens, channel, procs=4, keep=True)
    try:
        assert len(fleet.wait_ready(120)) == subs
        api = wh.Api(ngx.port, chan.service_token(workspace), timeout=30)
        acked = []
        try:
            for k in range(count):
                data = {"k": k, "pad": "x" * 400}
                mid, _ = chan.publish_ok(api, channel, data)
                acked.append((mid, data))
        finally:
            api.close()
        reports = fleet.finish(acked[-1][0], 120)
    finally:
        fleet.kill()
    paced = paced_total(ngx.port) - before
    assert count // 3 <= paced < count, paced
    assert [a[0] for a in acked] == list(range(acked[0][0],
                                               acked[0][0] + count))
    assert_everyone_got(reports, subs, acked)


def test_answers_do_not_wait_for_a_subscriber_that_stopped_reading(ngx):
    """A subscriber that reads nothing fills its socket and leaves the
    worker's write queue (it waits for the socket, not the queue): the
    answers to publishes on its channel keep coming.  The other one,
    which reads only once they are all answered, gets every message."""
    workspace = chan.unique("stuck")
    channel = "stuck/fan"
    count = 200
    data = {"pad": "y" * 60000}     # 12 MB: more than both socket buffers

    async def scenario():
        stuck = await Client.open(ngx.port, chan.token("stuck", workspace))
        await stuck.subscribe(channel)
        stuck.transport.pause_reading()
        reader = await Client.open(ngx.port, chan.token("reader",
                                                        workspace))
        await reader.subscribe(channel)
        api = wh.Api(ngx.port, chan.service_token(workspace), timeout=10)
        ids = []
        try:
            for _ in range(count):
                # the loop is blocked meanwhile: both sockets fill
                ids.append(chan.publish_ok(api, channel, data)[0])
        finally:
            api.close()
        got = await reader.messages(count, timeout=30)
        assert [m["id"] for m in got] == ids
        assert all(m["data"] == data for m in got)
        await reader.close()
        stuck.transport.abort()

    run(scenario())


def test_logs_clean(ngx, daemon):
    ngx.assert_clean_log()
