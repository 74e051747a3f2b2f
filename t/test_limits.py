"""The module's limits through the real stack (nginx with 2 workers,
wirehubd): wirehub_message_rate (the error frame, the drop, the 1008
close), wirehub_max_subscriptions, wirehub_max_connections_per_workspace
across both workers and a reload, nginx's own limit_req and limit_conn
in front of a WebSocket location, and the counters of each in /metrics.

Rates are small and mostly per minute (1r/m burst=5: after the burst
nothing comes back within the test), so what passes and what is dropped
does not depend on the machine's speed; where time matters (the refill,
the 10 s rule) the test reasons with bounds, not sleeps."""

import asyncio
import json
import re
import time

import pytest

import chan
import wh
from chan import Client, run

SERVER = """
location /rate/ { wirehub_websocket; wirehub_message_rate 1r/m burst=5; }
location /rate10/ { wirehub_websocket; wirehub_message_rate 1r/m burst=10; }
location /refill/ { wirehub_websocket; wirehub_message_rate 10r/s burst=2; }
location /norate/ { wirehub_websocket; wirehub_message_rate off; }
location /subs/ { wirehub_websocket; wirehub_max_subscriptions 3; }
location /quota/ {
    wirehub_websocket;
    wirehub_max_connections_per_workspace 3;
    error_page 429 = @limited;
}
location /hsrate/ {
    limit_req zone=handshakes burst=2 nodelay;
    limit_req_status 429;
    error_page 429 = @limited;
    wirehub_websocket;
}
location /peraddr/ {
    limit_conn peraddr 2;
    limit_conn_status 429;
    error_page 429 = @limited;
    wirehub_websocket;
}
location @limited {
    default_type application/json;
    return 429 '{"error":{"code":"rate_limited","message":"slow down"}}';
}
location = /metrics { wirehub_metrics; }
"""

HTTP = """
limit_req_zone $binary_remote_addr zone=handshakes:1m rate=1r/m;
limit_conn_zone $binary_remote_addr zone=peraddr:1m;
"""

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? ([0-9.e+]+)$')


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("limits")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, http=HTTP, server=SERVER)


def scrape(ngx):
    """{(family, labels): value} of the module's own metrics."""
    out = {}
    for line in wh.metrics_text(ngx.port).splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1).startswith("wirehub_"):
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


class Metrics:
    """The change of each counter since it was made."""

    def __init__(self, ngx):
        self.ngx = ngx
        self.before = scrape(ngx)

    def delta(self, name, labels=""):
        now = scrape(self.ngx)
        return now[(name, labels)] - self.before[(name, labels)]


def limited(limit):
    return '{limit="%s"}' % limit


def assert_rate_limited(msg, ref):
    """The exact error frame of a dropped message."""
    want = {"type", "code", "message", "timestamp"} | (
        {"ref"} if ref is not None else set())
    assert set(msg) == want, msg
    assert (msg["type"], msg["code"]) == ("error", "rate_limited"), msg
    assert msg.get("ref") == ref, msg
    assert isinstance(msg["message"], str) and msg["message"], msg
    assert wh.ISO_RE.match(msg["timestamp"]), msg


def frames(*objs):
    """Several client messages in one write, so that they are read and
    dispatched together."""
    return b"".join(wh.encode_frame(wh.OP_TEXT, json.dumps(o))
                    for o in objs)


async def until_closed(client, timeout=15.0):
    """Every message until the server closes; returns (messages, code)."""
    got = []
    while True:
        try:
            got.append(await client.recv(timeout))
        except wh.ConnectionClosed:
            return got, client.closed


# ------------------------------------------------------------ message rate


def test_over_the_rate_a_message_is_answered_and_dropped(ngx):
    workspace = chan.unique("rate")
    channel = "chat/room"
    metrics = Metrics(ngx)

    async def scenario():
        viewer = await Client.open(ngx.rport, chan.token("viewer", workspace))
        sub = await viewer.subscribe(channel)
        author = await Client.open(ngx.rport, chan.token(
            "author", workspace, publish=["chat/#"]), path="/rate/")

        # 8 publishes at once: the burst (5) is stored, the rest dropped
        author.transport.write(frames(*[
            {"type": "publish", "channel": channel, "data": {"k": k},
             "ref": "p%d" % k} for k in range(8)]))
        replies = {}
        for _ in range(8):
            r = await author.recv()
            replies[r["ref"]] = r
        assert sorted(replies) == ["p%d" % k for k in range(8)]
        for k in range(5):
            r = replies["p%d" % k]
            assert (r["type"], r["id"]) == ("published", k + 1), r
        for k in range(5, 8):
            assert_rate_limited(replies["p%d" % k], "p%d" % k)

        # whatever the message, even one that is not JSON: no ref then
        author.transport.write(wh.encode_frame(wh.OP_BINARY, b"\x00\x01"))
        assert_rate_limited(await author.recv(), None)
        author.transport.write(wh.encode_frame(wh.OP_TEXT, "{not json"))
        assert_rate_limited(await author.recv(), None)
        await author.send({"type": "ping", "ref": "x" * 65})
        assert_rate_limited(await author.recv(), None)
        await author.send({"type": "ping", "ref": "late"})
        assert_rate_limited(await author.recv(), "late")

        # WebSocket pings are not messages: still answered
        await asyncio.wait_for(await author.ping(), 5)

        # the subscriber got the 5 stored ones, in order, and nothing else
        api = wh.Api(ngx.port, chan.service_token(workspace))
        end_id, _ = chan.publish_ok(api, channel, "end", "end")
        api.close()
        assert end_id == 6
        msgs = await viewer.messages(6)
        assert [m["id"] for m in msgs] == [1, 2, 3, 4, 5, 6]
        assert [m["data"] for m in msgs] == [{"k": k} for k in range(5)] \
            + ["end"]
        assert all(m["epoch"] == sub["epoch"] for m in msgs)
        assert await viewer.barrier() == []
        assert author.closed is None
        await author.close()
        await viewer.close()

    run(scenario())
    assert metrics.delta("wirehub_limited_total",
                         limited("message_rate")) == 7
    assert metrics.delta("wirehub_rate_limit_closes_total") == 0


def test_three_bursts_dropped_close_1008(ngx):
    workspace = chan.unique("rate")
    metrics = Metrics(ngx)

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("c", workspace),
                              path="/rate/")
        refs = ["r%d" % i for i in range(30)]
        c.transport.write(frames(*[{"type": "ping", "ref": r}
                                   for r in refs]))
        got, code = await until_closed(c)
        assert [m["type"] for m in got[:5]] == ["pong"] * 5
        assert [m["ref"] for m in got[:5]] == refs[:5]
        # 15 dropped in a row (3 x burst): the 15th closes, unanswered
        assert len(got) == 5 + 14, got
        for m, ref in zip(got[5:], refs[5:]):
            assert_rate_limited(m, ref)
        assert code == 1008
        assert c.close_reason == "message rate exceeded"
        # the server counts the close before it closes TCP
        await asyncio.wait_for(c.lost, 5)

    run(scenario())
    assert metrics.delta("wirehub_limited_total",
                         limited("message_rate")) == 15
    assert metrics.delta("wirehub_rate_limit_closes_total") == 1
    assert metrics.delta("wirehub_closes_total",
                         '{reason="protocol"}') == 1


def test_ten_seconds_over_the_rate_close_1008(ngx):
    """Two messages a second against 1r/m burst=10: 30 drops in a row
    would take 15 s, so it is the 10 s rule that closes."""
    workspace = chan.unique("rate")

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("c", workspace),
                              path="/rate10/")
        c.transport.write(frames(*[{"type": "ping", "ref": "b%d" % i}
                                   for i in range(10)]))
        for i in range(10):
            assert (await c.recv())["ref"] == "b%d" % i

        first = time.monotonic()
        refs = []
        while c.closed is None and len(refs) < 30:
            # on a schedule, so that a slow turn does not stretch it
            await asyncio.sleep(max(0.0, first + len(refs) * 0.5
                                    - time.monotonic()))
            if c.closed is None:
                refs.append("o%d" % len(refs))
                await c.send({"type": "ping", "ref": refs[-1]})
        got, code = await until_closed(c)
        closed = time.monotonic()

        assert code == 1008 and c.close_reason == "message rate exceeded"
        # the first drop is no earlier than its send, the close no later
        # than its arrival: 10 s apart, and the close soon after 10 s
        assert 9.99 <= closed - first <= 13.0, closed - first
        # every message before the one that closed was answered in order
        for m, ref in zip(got, refs):
            assert_rate_limited(m, ref)
        assert 15 <= len(got) < 30, len(got)

    run(scenario())


def test_the_bucket_refills_at_the_rate_up_to_the_burst(ngx):
    workspace = chan.unique("rate")

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("c", workspace),
                              path="/refill/")
        for round in range(3):
            refs = ["%d-%d" % (round, i) for i in range(3)]
            c.transport.write(frames(*[{"type": "ping", "ref": r}
                                       for r in refs]))
            got = [await c.recv() for _ in refs]
            assert [m["type"] for m in got] == ["pong", "pong", "error"]
            assert [m["ref"] for m in got] == refs
            assert_rate_limited(got[2], refs[2])
            # 10r/s: 300 ms refill 3 messages, the bucket holds 2
            await asyncio.sleep(0.3)
        assert await c.barrier() == []
        await c.close()

    run(scenario())


def test_default_rate_and_off(ngx):
    """The default, 50r/s burst=100, lets 100 messages at once through
    and drops the 101st; "off" lets any number through."""
    workspace = chan.unique("rate")

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("c", workspace))
        c.transport.write(frames(*[{"type": "ping", "ref": "d%d" % i}
                                   for i in range(101)]))
        got = [await c.recv() for _ in range(101)]
        assert [m["type"] for m in got] == ["pong"] * 100 + ["error"]
        assert_rate_limited(got[100], "d100")
        await c.close()

        c = await Client.open(ngx.rport, chan.token("c", workspace),
                              path="/norate/")
        c.transport.write(frames(*[{"type": "ping", "ref": "f%d" % i}
                                   for i in range(1000)]))
        got = [await c.recv() for _ in range(1000)]
        assert [m["type"] for m in got] == ["pong"] * 1000
        await c.close()

    run(scenario())


# ------------------------------------------------------------ subscriptions


def test_subscriptions_past_the_cap_are_refused_one_by_one(ngx):
    workspace = chan.unique("subs")
    names = ["s/%d" % i for i in range(5)]
    metrics = Metrics(ngx)

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("c", workspace),
                              path="/subs/")
        await c.send({"type": "subscribe", "channels": names, "ref": "s"})
        replies = {}
        for _ in names:
            r = await c.recv()
            assert r["ref"] == "s", r
            replies[r["channel"]] = r
        assert sorted(replies) == names
        for name in names[:3]:
            assert replies[name]["type"] == "subscribed", replies[name]
        for name in names[3:]:
            r = replies[name]
            assert set(r) == {"type", "code", "message", "channel", "ref",
                              "timestamp"}, r
            assert (r["type"], r["code"]) == ("error", "quota_exceeded"), r

        # a channel already held is not a new one
        r = await c.call({"type": "subscribe", "channels": [names[0]]})
        assert r["type"] == "subscribed", r

        # the refused channels deliver nothing
        api = wh.Api(ngx.port, chan.service_token(workspace))
        chan.publish_ok(api, names[4], "no")
        chan.publish_ok(api, names[2], "yes")
        msg = await c.recv()
        assert (msg["channel"], msg["data"]) == (names[2], "yes"), msg

        # one given back makes room for one
        r = await c.call({"type": "unsubscribe", "channels": [names[1]]})
        assert r["channels"] == [names[1]], r
        r = await c.call({"type": "subscribe", "channels": [names[4]]})
        assert r["type"] == "subscribed", r
        r = await c.call({"type": "subscribe", "channels": [names[3]]})
        assert (r["type"], r["code"], r["channel"]) == \
            ("error", "quota_exceeded", names[3]), r
        api.close()
        await c.close()

    run(scenario())
    assert metrics.delta("wirehub_limited_total",
                         limited("max_subscriptions")) == 3


# ------------------------------------------------------ workspace quota


def handshake(port, token, path):
    """(response, socket) of one handshake; the socket stays open."""
    resp, sock, _ = wh.http_raw(port, wh.upgrade_request(path=path,
                                                         token=token))
    return resp, sock


def assert_json_429(resp, code):
    assert resp.status == 429, resp
    assert resp.header("content-type") == "application/json", resp
    doc = resp.json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"code",
                                                           "message"}, doc
    assert doc["error"]["code"] == code, doc
    assert doc["error"]["message"], doc


def assert_quota_exceeded(resp):
    """The module's own answer: error_page 429 in the location does not
    replace it, as it replaces nginx's own pages (limit_req, limit_conn)"""
    assert_json_429(resp, "quota_exceeded")


def open_until_accepted(port, token, path, timeout=5.0):
    """A connection opened as soon as a slot is free: a slot is given
    back when the server has closed the socket, a moment after the
    client sees it closed.  Returns (connection, refusals meanwhile)."""
    deadline = time.monotonic() + timeout
    refused = 0
    while True:
        try:
            return wh.RawWebSocket.open(port, token, path=path), refused
        except wh.HandshakeRefused as e:
            assert e.response.status == 429, e.response
            refused += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_workspace_connections_are_counted_across_workers(ngx):
    metrics = Metrics(ngx)
    workers = set(ngx.workers())
    assert len(workers) == 2

    # 3 connections of one workspace on both workers (a fresh workspace
    # per try: reuseport puts all 3 on one worker once in 4 tries)
    for attempt in range(12):
        workspace = chan.unique("quota")
        tok = chan.token("c", workspace)
        held = [wh.RawWebSocket.open(ngx.rport, tok, path="/quota/")
                for _ in range(3)]
        owners = chan.workers_of(ngx, [w.sock.getsockname()[1]
                                       for w in held])
        if set(owners.values()) == workers:
            break
        for w in held:
            w.close()
    else:
        pytest.fail("3 connections never spread over both workers")

    # a 4th is refused, whichever worker it reaches: each holds fewer
    # than 3 of them itself
    refused_by = set()
    refusals = 0
    for _ in range(60):
        resp, sock = handshake(ngx.rport, tok, "/quota/")
        try:
            assert_quota_exceeded(resp)
            refusals += 1
            port = sock.getsockname()[1]
            refused_by.add(chan.workers_of(ngx, [port])[port])
        finally:
            sock.close()
        if refused_by == workers:
            break
    assert refused_by == workers

    # another workspace is not affected
    other = wh.RawWebSocket.open(ngx.rport, chan.token("c", chan.unique(
        "quota")), path="/quota/")
    assert other.is_open()

    # the held ones work, and closing one frees exactly one slot
    for w in held:
        assert w.is_open()
    held.pop().close()
    again, waited = open_until_accepted(ngx.rport, tok, "/quota/")
    held.append(again)
    resp, sock = handshake(ngx.rport, tok, "/quota/")
    sock.close()
    assert_quota_exceeded(resp)
    refusals += waited + 1

    assert metrics.delta("wirehub_limited_total",
                         limited("max_connections_per_workspace")) == refusals
    assert metrics.delta("wirehub_handshakes_total",
                         '{result="quota_exceeded"}') == refusals
    for w in held + [other]:
        w.close()


# --------------------------------------------------- limit_req, limit_conn


def test_limit_req_limits_handshakes_per_address(ngx):
    """limit_req rate=1r/m burst=2 nodelay: 3 handshakes at once are
    upgraded, the 4th is refused with limit_req_status (429, in JSON
    through error_page) before the module sees it."""
    tok = chan.token("c", chan.unique("hs"))
    metrics = Metrics(ngx)
    conns = [wh.RawWebSocket.open(ngx.port, tok, path="/hsrate/")
             for _ in range(3)]
    resp, sock = handshake(ngx.port, tok, "/hsrate/")
    sock.close()
    assert_json_429(resp, "rate_limited")
    assert metrics.delta("wirehub_handshakes_total", '{result="ok"}') == 3
    for c in conns:
        assert c.is_open()
        c.close()


def test_limit_conn_caps_websockets_per_address(ngx):
    """limit_conn 2 holds for as long as the WebSockets are open, not just
    for their handshake, and a closed one frees its place."""
    tok = chan.token("c", chan.unique("conn"))
    conns = [wh.RawWebSocket.open(ngx.port, tok, path="/peraddr/")
             for _ in range(2)]

    resp, sock = handshake(ngx.port, tok, "/peraddr/")
    sock.close()
    assert_json_429(resp, "rate_limited")

    for c in conns:
        c.send_json({"type": "ping", "ref": "still"})
        assert c.recv_type("pong")["ref"] == "still"

    conns.pop().close()
    again, _ = open_until_accepted(ngx.port, tok, "/peraddr/")
    conns.append(again)
    resp, sock = handshake(ngx.port, tok, "/peraddr/")
    sock.close()
    assert_json_429(resp, "rate_limited")
    for c in conns:
        c.close()


# ------------------------------------------------------------------ reload


def test_workspace_counts_go_on_across_a_reload(ngx):
    """The old workers give their connections back as they close them
    (1001) after a reload; the new workers count in the same zone."""
    tok = chan.token("c", chan.unique("quota"))
    held = [wh.RawWebSocket.open(ngx.rport, tok, path="/quota/")
            for _ in range(3)]
    resp, sock = handshake(ngx.rport, tok, "/quota/")
    sock.close()
    assert_quota_exceeded(resp)

    before = chan.link_up_counts(ngx)
    ngx.reload()
    for w in held:
        assert w.wait_closed(10)[0] == 1001
        w.close_socket()
    chan.wait_relinked(ngx, before)

    held = [open_until_accepted(ngx.rport, tok, "/quota/")[0]
            for _ in range(3)]
    resp, sock = handshake(ngx.rport, tok, "/quota/")
    sock.close()
    assert_quota_exceeded(resp)
    for w in held:
        w.close()
    ngx.assert_clean_log()


# ------------------------------------------------------------ configuration


@pytest.mark.parametrize("directives, reason", [
    ("wirehub_message_rate 5r/h;", 'invalid rate "5r/h"'),
    ("wirehub_message_rate fast;", 'invalid rate "fast"'),
    ("wirehub_message_rate 2000000r/s;", 'invalid rate "2000000r/s"'),
    ("wirehub_message_rate 5r/s burst=0;", 'invalid burst "burst=0"'),
    ("wirehub_message_rate 5r/s every=2;", 'invalid parameter "every=2"'),
    ("wirehub_message_rate off burst=5;", 'takes no "burst=" when off'),
    ("wirehub_message_rate 5r/s;\nwirehub_message_rate 6r/s;",
     '"wirehub_message_rate" directive is duplicate'),
    ("wirehub_max_subscriptions many;", "invalid number"),
    ("wirehub_max_connections_per_workspace -1;", "invalid number"),
    ("wirehub_workspace_zone 16k;",
     '"wirehub_workspace_zone" of 16384 bytes is too small'),
])
def test_configuration_errors(keys, directives, reason):
    ngx = wh.Nginx("cfg", http=wh.jwt_directives() + "\n" + directives,
                   server="location /ws/ { wirehub_websocket; }")
    try:
        status, out = ngx.check_config()
    finally:
        ngx.cleanup()
    assert status != 0, out
    lines = [line for line in out.splitlines() if "[emerg]" in line]
    assert len(lines) == 1 and reason in lines[0], out


def test_configuration_accepted(keys):
    for directives in ("wirehub_message_rate 600r/m;",
                       "wirehub_message_rate 0;",
                       "wirehub_message_rate off;",
                       "wirehub_message_rate 1r/m burst=1000000;\n"
                       "wirehub_max_subscriptions 0;\n"
                       "wirehub_max_connections_per_workspace 10;\n"
                       "wirehub_workspace_zone 64k;"):
        ngx = wh.Nginx("cfg", http=wh.jwt_directives() + "\n" + directives,
                       server="location /ws/ { wirehub_websocket; }")
        try:
            status, out = ngx.check_config()
        finally:
            ngx.cleanup()
        assert status == 0, (directives, out)
