"""Upstream sources (DESIGN.md "Upstream sources"): wirehubd holds an
outbound WebSocket per source and publishes what arrives into channels.

Real upstreams: t/upstream_ws.py (python3-websockets) in its own process,
plain and TLS (a CA and a certificate made with openssl in the test's
temp directory), killed and restarted by the tests.  wirehubd is the
real build, seen through its link (test_daemon.Link) as an nginx worker
would, and through nginx for the seed flow with a dashboard WebSocket.
"""

import json
import os
import subprocess
import sys
import time

import pytest

import chan
import wh
from test_daemon import MESSAGE, WIREHUBD, Daemon, check_config

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM = os.path.join(HERE, "upstream_ws.py")
WS = "acme"


class Upstream:
    """t/upstream_ws.py on 127.0.0.1:port; start() again keeps the port
    and appends to the same log."""

    def __init__(self, tmp, mode="gateway", port=None, name="up", **opts):
        self.port = port or wh.free_port()
        self.log = str(tmp / ("%s.log" % name))
        self.args = [sys.executable, UPSTREAM, str(self.port), self.log,
                     "--mode", mode]
        for key, value in opts.items():
            self.args += ["--" + key, str(value)]
        self.proc = None

    def start(self):
        before = self.lines("ready")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL)
        wait_for(lambda: len(self.lines("ready")) > len(before), 10,
                 "the upstream to listen")
        return self

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def lines(self, key):
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                obj = json.loads(line)
                if key in obj:
                    out.append(obj[key] if key != "open" else obj)
        return out


@pytest.fixture
def upstreams():
    started = []

    def make(*a, **kw):
        u = Upstream(*a, **kw)
        started.append(u)
        return u

    yield make
    for u in started:
        u.kill()


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def source_line(sid, port, channel="devices/{event}", extra="",
                scheme="ws", host="127.0.0.1", path=None):
    return ("source %s url=%s://%s:%d%s workspace=%s channel=%s "
            "reconnect_min=100ms reconnect_max=1600ms %s;\n"
            % (sid, scheme, host, port, path or "/ws/" + sid, WS, channel,
               extra))


def sources(link, sid=None):
    status, body = link.request(WS, "GET", "/sources" +
                                ("/" + sid if sid else ""))
    assert status == 200, body
    return body if sid else {s["id"]: s for s in body["items"]}


def wait_state(link, sid, state, timeout=10):
    return wait_for(lambda: sources(link, sid)["state"] == state
                    and sources(link, sid), timeout,
                    "source %s to be %s" % (sid, state))


def next_message(link, timeout=10):
    return json.loads(link.expect(MESSAGE, timeout)["body"])


def history(link, channel):
    status, body = link.request(WS, "GET", "/channels/%s/messages"
                                % channel, query="limit=1000")
    assert status == 200, body
    return body["items"]


def make_ca(tmp):
    """A throwaway CA and a certificate for localhost and 127.0.0.1."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "1", "-subj", "/CN=wirehub test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj",
         "/CN=localhost")
    (tmp / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
         "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "1",
         "-extfile", "ext.cnf")
    return tmp / "ca.pem", tmp / "srv.pem", tmp / "srv.key"


# ------------------------------------------------------------ mapping


def test_events_arrive_on_mapped_channels_in_order(tmp_path, upstreams):
    up = upstreams(tmp_path, count=50, subprotocol="gw").start()
    (tmp_path / "basic").write_text("ZGV2OnNlY3JldA==\n")
    d = Daemon(tmp_path, extra=source_line(
        "dev1", up.port, channel="devices/dev1/{event}",
        extra='type=wa.{event} header="Authorization: Basic @%s" '
              'header="X-Device: dev1" subprotocol=gw'
              % (tmp_path / "basic"))).start()
    try:
        w = d.link()
        wait_state(w, "dev1", "connected")
        wait_for(lambda: len(history(w, "devices/dev1/message.ack")) == 50,
                 10, "50 acks")
        msgs = history(w, "devices/dev1/message")
        assert [m["data"]["seq"] for m in msgs] == list(range(50))
        assert [m["id"] for m in msgs] == list(range(1, 51))
        assert {m["type"] for m in msgs} == {"wa.message"}
        assert msgs[0]["data"] == {"event": "message", "device": "dev1",
                                   "seq": 0, "text": "hi 0"}
        connected = history(w, "devices/dev1/connected")
        assert len(connected) == 1 and connected[0]["type"] == "wa.connected"

        # the header from a file and the subprotocol reached upstream
        opened = up.lines("open")[0]
        assert opened["open"] == "/ws/dev1"
        assert opened["headers"]["authorization"] == \
            "Basic ZGV2OnNlY3JldA=="
        assert opened["headers"]["x-device"] == "dev1"
        assert opened["subprotocol"] == "gw"

        # the API shows header names, never their values
        src = sources(w, "dev1")
        assert src["headers"] == ["Authorization", "X-Device"]
        assert "ZGV2" not in json.dumps(src)
        assert src["origin"] == "config" and src["messages_in"] == 101
        assert src["published"] == 101 and src["last_message_at"]
        assert "ZGV2OnNlY3JldA" not in d.logtext()
    finally:
        d.stop()


def test_tls_with_cafile_sni_and_verification(tmp_path, upstreams):
    ca, cert, key = make_ca(tmp_path)
    up = upstreams(tmp_path, count=5, cert=cert, key=key).start()
    d = Daemon(tmp_path, extra=(
        source_line("byname", up.port, scheme="wss", host="localhost",
                    channel="tls/byname/{event}", extra="cafile=%s" % ca)
        + source_line("byip", up.port, scheme="wss",
                      channel="tls/byip/{event}", extra="cafile=%s" % ca)
        # the system store does not know the test CA
        + source_line("untrusted", up.port, scheme="wss", host="localhost",
                      channel="tls/untrusted/{event}")
        + source_line("plain", up.port, channel="tls/plain/{event}")))
    d.start()
    try:
        w = d.link()
        for sid in ("byname", "byip"):
            wait_for(lambda: len(history(w, "tls/%s/message.ack" % sid))
                     == 5, 10, "%s over TLS" % sid)
            assert [m["data"]["seq"] for m in
                    history(w, "tls/%s/message" % sid)] == list(range(5))
        bad = wait_for(lambda: sources(w, "untrusted")["last_error"]
                       and sources(w, "untrusted"), 10, "a TLS failure")
        assert bad["state"] in ("backoff", "connecting")
        assert "certificate verify failed" in bad["last_error"]
        plain = wait_for(lambda: sources(w, "plain")["last_error"]
                         and sources(w, "plain"), 10, "a plain failure")
        assert "connected" != plain["state"]
        assert history(w, "tls/untrusted/message") == []
    finally:
        d.stop()


# ------------------------------------------------------------ backoff


def test_reconnects_with_growing_jittered_delays(tmp_path, upstreams):
    up = upstreams(tmp_path, count=1).start()
    d = Daemon(tmp_path, extra=source_line("dev1", up.port)).start()
    try:
        w = d.link()
        wait_state(w, "dev1", "connected")
        first = history(w, "$sources")
        assert [(m["type"], m["data"]) for m in first] == [
            ("source_connected", {"id": "dev1", "attempts": 0})]
        w.subscribe(WS, "$sources")

        up.kill()
        events, times = [], []
        while len(events) < 8:
            ev = next_message(w)
            assert ev["type"] == "source_disconnected", ev
            events.append(ev["data"])
            times.append(time.monotonic())
        up.start()
        # attempts may still fail while it starts
        while True:
            ev = next_message(w, timeout=5)
            if ev["type"] == "source_connected":
                break
            events.append(ev["data"])
            times.append(time.monotonic())
        assert ev["data"]["attempts"] == len(events)

        assert events[0]["was_connected"] is True
        assert "without a close frame" in events[0]["reason"]
        assert all(not e["was_connected"] for e in events[1:])
        assert all("refused" in e["reason"] for e in events[1:])
        delays = [e["next_retry_ms"] for e in events]
        for k, (e, delay) in enumerate(zip(events, delays)):
            assert e["attempts"] == k + 1
            # full jitter between reconnect_min and min * 2^(k+1), capped
            assert 100 <= delay <= min(1600, 100 * 2 ** (k + 1)), delays
        # the range grows: a later delay goes past the first attempt's
        # bound (200 ms); all four later ones below it, drawn from
        # 100..1600, would be a 1 in 50,000 chance (comparing sums of
        # jittered samples failed about once in a hundred runs)
        assert max(delays[4:]) > 200, delays
        assert len(set(delays)) > 4, delays               # jittered
        # and they are kept: a refused connect takes about no time
        for k in range(1, len(times)):
            gap = (times[k] - times[k - 1]) * 1000
            assert gap >= delays[k - 1] - 60, (k, gap, delays)
            assert gap <= delays[k - 1] + 500, (k, gap, delays)

        src = sources(w, "dev1")
        assert src["reconnects"] == 1 and src["state"] == "connected"
    finally:
        d.stop()


# --------------------------------------------------------------- API


def post(link, body, role=1, ws=WS):
    return link.request(ws, "POST", "/sources", body=json.dumps(body),
                        role=role)


def test_api_source_survives_restart(tmp_path, upstreams):
    up = upstreams(tmp_path, count=3, interval=0.05).start()
    d = Daemon(tmp_path, extra=source_line("conf1", up.port)).start()
    try:
        w = d.link()
        body = {"id": "dev9", "url": "ws://127.0.0.1:%d/ws/dev9" % up.port,
                "channel": "api/dev9/{event}", "type": "{event}",
                "headers": {"Authorization": "Bearer s3cr3t-value"},
                "reconnect_min_ms": 100, "reconnect_max_ms": 1000,
                "ping_ms": 1000}
        status, src = post(w, body)
        assert status == 201, src
        assert src["id"] == "dev9" and src["origin"] == "api"
        assert src["headers"] == ["Authorization"]
        assert "s3cr3t" not in json.dumps(src)
        assert src["state"] in ("connecting", "connected")
        wait_for(lambda: len(history(w, "api/dev9/message.ack")) == 3)

        # the same id again, a client token, invalid definitions
        assert post(w, body)[0] == 409
        assert post(w, body, role=0)[0] == 403
        for bad in ({"id": "x"}, {"id": "a b", "url": "ws://h/",
                                  "channel": "c"},
                    dict(body, id="u", url="http://127.0.0.1/"),
                    dict(body, id="c", channel="$presence"),
                    dict(body, id="e", channel="a/{nope}"),
                    dict(body, id="h", headers={"Bad Name": "x"}),
                    dict(body, id="v", headers={"X": "a\r\nInjected: 1"}),
                    dict(body, id="r", reconnect_min_ms=5000,
                         reconnect_max_ms=100),
                    dict(body, id="k", unknown=1),
                    # the broker is every workspace's: not a tenant's
                    dict(body, id="m", mqtt="any/topic")):
            status, err = post(w, bad)
            assert status == 400, (bad, err)
            assert err["error"]["code"] == "bad_request"
        status, err = w.request(WS, "DELETE", "/sources/conf1")
        assert status == 409 and err["error"]["code"] == "conflict"
        assert w.request(WS, "GET", "/sources/nope")[0] == 404
        assert set(sources(w)) == {"conf1", "dev9"}
        # another workspace sees none of them
        status, other = w.request("other", "GET", "/sources")
        assert status == 200 and other["items"] == []

        d.stop()
        d.start()
        w = d.link()
        assert set(sources(w)) == {"conf1", "dev9"}
        src = wait_state(w, "dev9", "connected")
        assert src["origin"] == "api" and src["ping_ms"] == 1000
        wait_for(lambda: len(history(w, "api/dev9/message.ack")) == 6, 10,
                 "the second connection's acks")
        # the stored header went out again
        opened = [o for o in up.lines("open") if o["open"] == "/ws/dev9"]
        assert len(opened) == 2
        assert all(o["headers"]["authorization"] == "Bearer s3cr3t-value"
                   for o in opened)
        assert "s3cr3t" not in d.logtext()

        status, res = w.request(WS, "DELETE", "/sources/dev9")
        assert status == 200 and res == {"id": "dev9", "deleted": True}
        d.stop()
        d.start()
        w = d.link()
        assert set(sources(w)) == {"conf1"}
    finally:
        d.stop()


def test_stats_and_metrics(tmp_path, upstreams):
    up = upstreams(tmp_path, mode="nonjson").start()
    d = Daemon(tmp_path, extra=source_line("dev1", up.port) + source_line(
        "down", wh.free_port())).start()
    try:
        w = d.link()
        wait_for(lambda: sources(w, "dev1")["published"] == 1)
        src = sources(w, "dev1")
        assert src["refused"]["non_json"] == 1
        assert src["refused"]["not_object"] == 1
        assert src["refused"]["bad_event"] == 2
        status, stats = w.request(WS, "GET", "/stats")
        assert stats["sources"]["configured"] == 2
        assert stats["sources"]["connected"] == 1
        assert stats["sources"]["messages_in"] == 5
        assert stats["sources"]["refused"] == 4
        status, text = w.metrics()
        assert status == 200
        assert 'wirehubd_sources{state="connected"} 1' in text
        assert 'wirehubd_source_messages_received_total 5' in text
        assert ('wirehubd_source_messages_refused_total{reason="bad_event"}'
                ' 2') in text
        assert "wirehubd_source_connect_failures_total" in text
        # refusals are logged once per kind
        log = d.logtext()
        assert log.count("message refused (bad_event") == 1
    finally:
        d.stop()


def test_publish_rate_holds_back_and_loses_nothing(tmp_path, upstreams):
    """Past the workspace's publish_rate a source stops reading (TCP
    holds the upstream back) instead of dropping what it read."""
    up = upstreams(tmp_path, count=300).start()
    d = Daemon(tmp_path, extra="quota workspace=%s publish_rate=200/s;\n"
               % WS + source_line("dev1", up.port)).start()
    try:
        w = d.link()
        t0 = time.monotonic()
        wait_for(lambda: sources(w, "dev1")["published"] == 601, 15,
                 "all 601 published")
        # 601 messages at 200/s (a second's burst first) take a while
        assert time.monotonic() - t0 >= 1.5
        src = sources(w, "dev1")
        assert src["refused"]["storage"] == 0 and src["throttled"] >= 1
        assert [m["data"]["seq"] for m in history(w, "devices/message")] \
            == list(range(300))
        assert [m["data"]["seq"] for m in
                history(w, "devices/message.ack")] == list(range(300))
    finally:
        d.stop()


def test_mqtt_publish_per_source(tmp_path, upstreams):
    """mqtt=TOPIC: each message also goes to the broker, as it came."""
    from test_mqtt import Broker, Device, mqtt_conf
    broker = Broker(tmp_path).start()
    try:
        sub = Device(broker)
        sub.subscribe("gw/#")
        up = upstreams(tmp_path, count=5).start()
        d = Daemon(tmp_path, extra=mqtt_conf(broker) + source_line(
            "dev1", up.port, extra="mqtt=gw/dev1/{event}")).start()
        try:
            w = d.link()
            wait_for(lambda: len(sub.received) == 11, 10, "11 on MQTT")
            sent = up.lines("sent")
            assert [(t, json.loads(p)) for t, p in sub.received] == [
                ("gw/dev1/" + m["event"], m) for m in sent]
            assert sources(w, "dev1")["refused"]["mqtt"] == 0
        finally:
            d.stop()
            sub.close()
    finally:
        broker.stop()


# ----------------------------------------------------- bad upstreams


def test_bad_upstreams_never_stall_the_daemon(tmp_path, upstreams):
    ups = {mode: upstreams(tmp_path, mode=mode, name=mode).start()
           for mode in ("garbage", "huge", "flood", "nonjson", "hang")}
    refused_port = wh.free_port()
    extra = "".join(source_line(mode, u.port, extra=(
        "max_message=64k rate=500/s handshake_timeout=500ms"))
        for mode, u in ups.items())
    extra += source_line("refused", refused_port)
    d = Daemon(tmp_path, extra=extra).start()
    try:
        w = d.link()
        pub = d.link()
        # while they all misbehave another client's publish is answered
        # fast, again and again
        slowest = 0.0
        deadline = time.monotonic() + 3
        n = 0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            assert pub.publish(WS, "other/ch", {"n": n})["status"] == 0
            slowest = max(slowest, time.monotonic() - t0)
            n += 1
            time.sleep(0.01)
        assert slowest < 0.25, slowest

        # on a loaded box the 2 MiB message may still be on its way
        wait_for(lambda: "closed with 1009"
                 in (sources(w)["huge"]["last_error"] or ""), 10,
                 "the huge message refused")
        s = sources(w)
        assert "no connection within 500 ms" in s["hang"]["last_error"]
        assert "Connection refused" in s["refused"]["last_error"]
        assert s["huge"]["refused"]["oversize"] >= 1
        assert "message too big" in s["huge"]["last_error"]
        assert "closed with 1009" in s["huge"]["last_error"]
        assert s["garbage"]["published"] >= 3
        assert s["garbage"]["last_error"]
        assert s["nonjson"]["published"] == 1
        # the flood is read at its rate and TCP holds the rest back
        assert s["flood"]["state"] == "connected"
        assert s["flood"]["throttled"] >= 1
        assert s["flood"]["messages_in"] <= 500 * 5 + 1000
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0


# --------------------------------------------------------- config


@pytest.mark.parametrize("line, what", [
    ("source a workspace=acme channel=c;", "\"url\" and \"channel\""),
    ("source a url=http://x/ workspace=acme channel=c;", "ws:// or wss://"),
    ("source a url=ws://x/ channel=c;", "needs workspace="),
    ("source a url=ws://x/ workspace=acme channel=c ping=x;",
     "invalid source argument \"ping=x\""),
    ("source a url=ws://x/ workspace=acme channel=c foo=1;",
     "unknown source argument"),
    ("source a url=ws://x/ workspace=acme channel=c mqtt=t/{event};",
     "mqtt= needs an \"mqtt\" directive"),
    ("source a url=ws://x/ workspace=acme channel=c cafile=/nonexistent;",
     None),
])
def test_config_errors(tmp_path, line, what):
    status, text, _ = check_config(tmp_path, line + "\n")
    if what is None:
        # a cafile is loaded at start: the daemon refuses to run
        d = Daemon(tmp_path, extra=line.replace("ws://", "wss://") + "\n")
        r = subprocess.run([WIREHUBD, "-c", str(d.conf)], timeout=10,
                           capture_output=True, text=True)
        assert r.returncode != 0
        assert "cannot load /nonexistent" in d.logtext() + r.stderr
        return
    assert status != 0 and what in text, text


# ------------------------------------------------------- seed flow


def test_seed_flow_dashboard(tmp_path, upstreams, nginx_factory, keys):
    """Three devices of a gateway stub; a dashboard sees connected,
    messages and acks live, the stub restarts, the dashboard sees
    source_disconnected then source_connected; nothing the stub sent
    while connected is lost."""
    up = upstreams(tmp_path, count=20, interval=0.02).start()
    devices = ("dev1", "dev2", "dev3")
    extra = "".join(source_line(dev, up.port, channel="wa/%s/{event}" % dev)
                    for dev in devices)
    daemon = chan.Daemon("sources", extra=extra)
    daemon.start()
    try:
        ngx = chan.start_nginx(nginx_factory, daemon, tag="sources")
        channels = ["$sources"] + ["wa/%s/%s" % (dev, ev) for dev in devices
                                   for ev in ("connected", "message",
                                              "message.ack")]
        dash = wh.RawWebSocket.open(ngx.port, chan.service_token())
        dash.send_json({"type": "subscribe", "channels": channels})
        subscribed = [dash.recv_type("subscribed") for _ in channels]
        assert {s["channel"] for s in subscribed} == set(channels)

        # the first connection's events may predate the subscription:
        # they are in history; the restart's are live
        seen = {}

        def wait_live(n_pairs):
            while any(len(seen.get((dev, "message.ack"), [])) < n_pairs
                      for dev in devices):
                msg = dash.recv(10)
                assert msg is not None, "dashboard closed"
                if msg["channel"] == "$sources":
                    seen.setdefault("$sources", []).append(msg)
                    continue
                key = (msg["data"]["device"], msg["data"]["event"])
                seen.setdefault(key, []).append(msg["data"].get("seq"))

        api = wh.Api(ngx.port, chan.service_token())
        wait_for(lambda: all(
            len(api.history("wa/%s/message.ack" % dev).json()["items"])
            == 20 for dev in devices), 15, "the first 20 acks")

        # what the first connection sent live, before the restart
        for msg in dash.quiet(0.5):
            assert msg["type"] != "error", msg
        up.kill()
        up.start()
        wait_live(20)
        for dev in devices:
            mine = [m for m in seen["$sources"] if m["data"]["id"] == dev]
            types = [m["type"] for m in mine]
            # lost, maybe attempts that failed while the stub started,
            # then back
            assert types[-1] == "source_connected", types
            assert set(types[:-1]) == {"source_disconnected"}, types
            assert mine[0]["data"]["was_connected"] is True
            assert mine[-1]["data"]["attempts"] == len(mine) - 1
            assert seen[(dev, "connected")] == [None]
            assert seen[(dev, "message")] == list(range(20))
            assert seen[(dev, "message.ack")] == list(range(20))

        # nothing the stub sent is missing from the channels, in order
        # (it notes a send once the send returned: after we saw it)
        sent = wait_for(lambda: len(up.lines("sent")) == 2 * 3 * 41
                        and up.lines("sent"), 5, "the stub's notes")
        for dev in devices:
            for ev in ("connected", "message", "message.ack"):
                want = [m.get("seq") for m in sent
                        if m["device"] == dev and m["event"] == ev]
                got = [m["data"].get("seq") for m in api.history(
                    "wa/%s/%s" % (dev, ev), "limit=1000").json()["items"]]
                assert got == want, (dev, ev)
        dash.close()
        api.close()
    finally:
        daemon.stop()
