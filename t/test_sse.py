"""wirehub_sse: Server-Sent Events through the real stack (nginx with 2
workers, wirehubd), read by a raw HTTP client (t/sse.py): the same token
checks, ACLs and limits as the WebSocket endpoint, refused before any
stream byte; connection_status first; one event per channel message with
the stream's cursor; pings as comments; exp and the send limit end the
stream; Last-Event-ID resumes every channel without gap or duplicate."""

import base64
import os
import time

import pytest

import chan
import sse
import wh
from test_web import WEB_TESTS, run_browser, web_deps  # noqa: F401

PING_S = 1

SERVER = """
location /sse/ {
    wirehub_sse;
    wirehub_ping_interval %ds;
    wirehub_max_subscriptions 3;
}
location /sse-small/ {
    wirehub_sse;
    wirehub_send_limit 64k;
}
location = /metrics { wirehub_metrics; }
""" % PING_S


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("sse", history="length=1000 ttl=24h")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    # a listener with a small send buffer, so that "the client does not
    # read" is felt by nginx at once rather than after megabytes
    small = wh.free_port()
    n = chan.start_nginx(nginx_factory, daemon, server=SERVER +
                         "listen 127.0.0.1:%d sndbuf=8k;\n" % small)
    n.small = small
    assert wh.wait_port(small, n.proc)
    return n


class Workspace:
    def __init__(self, ngx):
        self.name = chan.unique("sse")
        self.ngx = ngx
        self.api = wh.Api(ngx.port, chan.service_token(self.name))

    def token(self, sub="viewer", **claims):
        return chan.token(sub, self.name, **claims)

    def publish(self, channel, n, mtype="reading", start=0):
        return [chan.publish_ok(self.api, channel, {"k": start + i},
                                mtype)[0] for i in range(n)]

    def stream(self, channels, path="/sse/", port=None, **kw):
        kw.setdefault("token", self.token())
        return sse.Stream(port or self.ngx.rport, "%s?channels=%s"
                          % (path, ",".join(channels)), **kw)


def opened(ws, channels, **kw):
    """A stream past connection_status and one subscribed per channel."""
    s = ws.stream(channels, **kw)
    assert s.status == 200, (s.status, s.headers)
    status = s.expect("connection_status")["data"]
    subs = {}
    for _ in channels:
        ev = s.expect("subscribed")
        subs[ev["data"]["channel"]] = ev["data"]
    return s, status, subs


def test_stream_events_and_cursor(ngx):
    ws = Workspace(ngx)
    s, status, subs = opened(ws, ["room/a", "room/b"])
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers["transfer-encoding"] == "chunked"
    assert s.headers["cache-control"] == "no-cache"
    data = status["data"]
    assert status["type"] == "connection_status"
    assert data["status"] == "connected" and data["workspace"] == ws.name
    assert data["client_id"] == "viewer"
    assert set(subs) == {"room/a", "room/b"}
    assert all(v["recovered"] for v in subs.values())

    ida = ws.publish("room/a", 2, mtype="sensor_reading")
    idb = ws.publish("room/b", 1, mtype="alert")
    got = [s.expect("sensor_reading"), s.expect("sensor_reading"),
           s.expect("alert")]
    assert [e["data"]["id"] for e in got] == ida + idb
    assert [e["data"]["channel"] for e in got] == ["room/a", "room/a",
                                                   "room/b"]
    assert got[0]["data"]["data"] == {"k": 0}
    assert got[0]["data"]["type"] == "sensor_reading"
    epoch = got[0]["data"]["epoch"]
    # the cursor names every channel of the stream where it then was
    assert sse.cursor(got[0]["id"]) == {0: (epoch, ida[0]),
                                        1: (subs["room/b"]["epoch"], 0)}
    assert sse.cursor(got[2]["id"]) == {0: (epoch, ida[1]),
                                        1: (got[2]["data"]["epoch"], idb[0])}
    s.close()


def test_bearer_and_pings_within_the_interval(ngx):
    ws = Workspace(ngx)
    s = ws.stream(["p/1"], bearer=True)
    assert s.status == 200
    s.expect("connection_status")
    s.expect("subscribed")
    t0 = time.monotonic()
    for _ in range(2):
        ev = s.next(timeout=PING_S * 3)
        assert ev["comments"] == ["ping"] and ev["data"] is None, ev
    # two pings, one per interval (the timer may fire a little late)
    assert time.monotonic() - t0 <= PING_S * 2 + 1.5
    s.close()


@pytest.mark.parametrize("case", ["bad_token", "acl", "channel", "twice",
                                  "too_many", "no_channels"])
def test_refused_before_any_stream_byte(ngx, case):
    ws = Workspace(ngx)
    channels = ["room/a"]
    kw = {}
    if case == "bad_token":
        kw["token"] = ws.token()[:-4] + "AAAA"
        want = (401, None)
    elif case == "acl":
        kw["token"] = ws.token(channels=["public/*"])
        channels = ["public/x", "secret/y"]
        want = (403, "forbidden")
    elif case == "channel":
        channels = ["bad%20channel"]
        want = (400, "bad_channel")
    elif case == "twice":
        channels = ["a", "a"]
        want = (400, "bad_channel")
    elif case == "too_many":
        channels = ["a", "b", "c", "d"]
        want = (429, "quota_exceeded")
    else:
        channels = []
        want = (400, "bad_request")
    s = ws.stream(channels, **kw)
    assert s.status == want[0], (s.status, s.headers)
    assert s.headers["content-type"] == "application/json"
    body = s.error_body()
    if want[1]:
        assert body["error"]["code"] == want[1], body
    s.close()


def test_malformed_last_event_id(ngx):
    ws = Workspace(ngx)
    for bad in ["!!!", b64("not a cursor"), "A" * 5000, b64("0:ep"),
                b64("0:ep:1,0:ep:2"),         # an index named twice
                b64("0:ep:01"), b64("64:ep:1"), b64("0:e.p:1"),
                b64("0:%s:1" % ("e" * 17))]:
        s = ws.stream(["a"], last_event_id=bad)
        assert s.status == 400, (bad, s.status)
        assert s.error_body()["error"]["code"] == "bad_cursor"
        s.close()


def b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_cursor_of_another_list_is_ignored(ngx):
    ws = Workspace(ngx)
    s = ws.stream(["a"], last_event_id=b64("0:ep:1,5:ep:2"))
    assert s.status == 200
    s.expect("connection_status")
    ev = s.expect("subscribed")
    # epoch "ep" is not the channel's: said, not hidden
    assert ev["data"]["recovered"] is False
    s.close()


def test_expiry_ends_the_stream(ngx):
    ws = Workspace(ngx)
    # exp 1 s ahead, plus the 5 s leeway of the test configuration
    tok = wh.mint("HS256", wh.claims(sub="short", workspace=ws.name, ttl=1))
    s = ws.stream(["e/1"], path="/sse-small/", token=tok)
    assert s.status == 200
    s.expect("connection_status")
    t0 = time.monotonic()
    while True:
        ev = s.next(timeout=15)
        if ev is None:
            break
        last = ev
    assert last["comments"] == ["close 4401 token expired"], last
    assert 3 <= time.monotonic() - t0 <= 10
    s.close()


def test_resume_across_two_channels(ngx):
    ws = Workspace(ngx)
    s, _, subs = opened(ws, ["r/a", "r/b"])
    ws.publish("r/a", 2)
    ws.publish("r/b", 1)
    for _ in range(3):
        s.expect("reading")
    cursor = s.last_id
    s.close()

    # published while the client was away, alternating channels
    missed = []
    for i in range(5):
        missed.append(("r/a", ws.publish("r/a", 1, start=10 + i)[0]))
        missed.append(("r/b", ws.publish("r/b", 1, start=20 + i)[0]))

    s = ws.stream(["r/a", "r/b"], last_event_id=cursor)
    assert s.status == 200
    s.expect("connection_status")
    got = []
    recovered = {}
    while len(got) < len(missed):
        ev = s.next_event()
        if ev["event"] == "subscribed":
            recovered[ev["data"]["channel"]] = ev["data"]["recovered"]
            continue
        got.append((ev["data"]["channel"], ev["data"]["id"]))
    assert recovered == {"r/a": True, "r/b": True}
    # each channel in order, no gap, no duplicate
    for name in ("r/a", "r/b"):
        assert [i for c, i in got if c == name] == \
            [i for c, i in missed if c == name]
    # then live, and nothing replayed twice
    live = ws.publish("r/b", 1, start=99)
    ev = s.expect("reading")
    assert (ev["data"]["channel"], ev["data"]["id"]) == ("r/b", live[0])
    final = sse.cursor(ev["id"])
    assert final[0][1] == missed[-2][1] and final[1][1] == live[0]
    s.close()


def test_resume_names_a_channel_it_cannot_recover(ngx):
    ws = Workspace(ngx)
    s, _, _ = opened(ws, ["x/a"])
    ws.publish("x/a", 1)
    cursor = s.expect("reading")["id"]
    s.close()
    ws.publish("x/b", 1)
    ws.publish("x/a", 1)
    # the URL adds a channel the cursor does not name
    s = ws.stream(["x/a", "x/b"], last_event_id=cursor)
    s.expect("connection_status")
    rec = {}
    while len(rec) < 2:
        ev = s.next_event()
        if ev["event"] == "subscribed":
            rec[ev["data"]["channel"]] = ev["data"]["recovered"]
    assert rec == {"x/a": True, "x/b": False}
    s.close()


def test_slow_reader_closed_at_the_send_limit(ngx):
    ws = Workspace(ngx)
    before = slow_closes(ngx)
    s, _, _ = opened(ws, ["big/1"], path="/sse-small/", rcvbuf=4096,
                     port=ngx.small)
    blob = "x" * 1000
    for i in range(200):
        chan.publish_ok(ws.api, "big/1", {"blob": blob, "i": i})
        if i % 20 == 0 and slow_closes(ngx) > before:
            break
    assert wait_until(lambda: slow_closes(ngx) > before), "no slow close"
    # the stream ends; what it still delivers is in order, and its last
    # words, when the client read them within the 1 s nginx waits, say why
    seen = []
    while True:
        ev = s.next(timeout=10)
        if ev is None:
            break
        seen.append(ev)
    comments = [e["comments"] for e in seen if e["comments"]]
    assert comments in ([], [["close 1013 slow consumer"]]), comments
    ids = [e["data"]["data"]["i"] for e in seen if e["data"]]
    assert ids == list(range(len(ids))) and len(ids) < 200
    s.close()


def metric(ngx, name):
    for line in metrics(ngx).splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in the metrics" % name)


def slow_closes(ngx):
    return metric(ngx, 'wirehub_closes_total{reason="slow_consumer"}')


def metrics(ngx):
    api = wh.Api(ngx.port, None, timeout=5)
    try:
        resp = api.request("GET", "/metrics")
    finally:
        api.close()
    assert resp.status == 200
    return resp.body.decode()


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_metrics_count_streams(ngx):
    ws = Workspace(ngx)
    ok = 'wirehub_sse_handshakes_total{result="ok"}'
    refused = 'wirehub_sse_handshakes_total{result="unauthorized"}'
    assert wait_until(lambda: metric(ngx, "wirehub_sse_streams") == 0)
    before = (metric(ngx, ok), metric(ngx, refused))
    s, _, _ = opened(ws, ["m/1"])
    bad = ws.stream(["m/1"], token="x" + ws.token())
    assert bad.status == 401
    assert metric(ngx, "wirehub_sse_streams") == 1
    assert (metric(ngx, ok), metric(ngx, refused)) == (before[0] + 1,
                                                       before[1] + 1)
    s.close()
    assert wait_until(lambda: metric(ngx, "wirehub_sse_streams") == 0)
    # no token in the logs
    assert ws.token()[:20] not in ngx.read_error_log()


class Reload:
    """The one server action sse_browser.js asks for."""

    def __init__(self, ngx):
        self.ngx = ngx

    def run(self, action):
        assert action == "reload", action
        before = set(chan.link_up_counts(self.ngx))
        self.ngx.reload()
        # the new workers must be linked before the browser reconnects (a
        # 503 would end an EventSource for good); the old ones may still
        # be closing their streams
        assert wait_until(lambda: len(set(chan.link_up_counts(self.ngx))
                                      - before) == 2), "no relink"


@pytest.mark.browser
def test_eventsource_in_chromium_reconnects_without_loss(ngx, web_deps):
    ws = Workspace(ngx)
    env = dict(os.environ)
    env.update({
        "WH_BASE_URL": "http://127.0.0.1:%d" % ngx.port,
        "WH_TOKEN": ws.token("dash"),
        "WH_SERVICE_TOKEN": chan.service_token(ws.name),
    })
    rc, out = run_browser(env, Reload(ngx),
                          os.path.join(WEB_TESTS, "sse_browser.js"))
    assert rc == 0, "browser test failed (rc %r):\n%s" % (rc, out)
    assert "SSE reconnect ok" in out, out
