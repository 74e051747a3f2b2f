"""wirehubd's quotas per workspace (DESIGN.md "Limits and quotas"),
through nginx: one test per limit with its exact answer over HTTP and
WebSocket, the Retry-After of the publish rate, the usage in GET
/api/stats, a workspace's own limits over the defaults, and the other
workspaces that notice nothing; then the usage across ttl expiry and a
restart, and MQTT ingest refused at the publish rate."""

import json
import time

import pytest

import chan
import wh
from cmd_helpers import wait_for

# the workspaces with limits of their own
RATE_WS = chan.unique("rate")
BIG_WS = chan.unique("big")
MANY_WS = chan.unique("many")

QUOTAS = ("quota workspace=* channels=3 history_bytes=3k clients=2 "
          "queued_commands=2 publish_rate=1000/s;\n"
          "quota workspace=%s publish_rate=1/s;\n"
          "quota workspace=%s channels=20 history_bytes=unlimited;\n"
          "quota workspace=%s clients=1000;\n"
          % (RATE_WS, BIG_WS, MANY_WS))

# 1007 bytes of message text: three fit in history_bytes=3k, four do not
BIG_DATA = "x" * 900


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("quota", history="length=3 ttl=24h", extra=QUOTAS)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, tag="quota",
                            server="location = /metrics "
                                   "{ wirehub_metrics; }\n")


def api_for(ngx, ws):
    return wh.Api(ngx.port, chan.service_token(ws), retry=True)


def quota(api):
    resp = api.request("GET", "/api/stats")
    assert resp.status == 200, resp
    return resp.json()["quota"]


def assert_refused(resp, code="quota_exceeded"):
    assert resp.status == 429, resp
    assert resp.header("content-type") == "application/json", resp
    doc = resp.json()
    assert list(doc) == ["error"] and doc["error"]["code"] == code, doc
    assert doc["error"]["message"], doc
    if code == "quota_exceeded":
        assert resp.header("retry-after") is None, resp
    return doc["error"]["message"]


def ws_publish(ngx, ws, channel, data, ref="q1"):
    """A WebSocket publish with a service token; its reply."""
    with wh.RawWebSocket.open(ngx.port, chan.service_token(ws)) as sock:
        sock.send_json({"type": "publish", "channel": channel, "data": data,
                        "ref": ref})
        reply = sock.recv()
    assert reply.get("ref") == ref, reply
    return reply


def assert_ws_refused(reply, channel, code="quota_exceeded"):
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert reply["channel"] == channel, reply
    assert reply["message"], reply


def text_bytes(items):
    """The bytes of history texts, as wirehubd stores them."""
    return sum(len(json.dumps(m, separators=(",", ":"), ensure_ascii=False))
               for m in items)


def history(api, channel):
    resp = api.history(channel)
    assert resp.status == 200, resp
    return resp.json()["items"]


# ---------------------------------------------------------------- limits


def test_channels(ngx):
    ws = chan.unique("ch")
    api = api_for(ngx, ws)
    for ch in ("c1", "c2", "c3"):
        assert api.publish(ch, {"n": 1}).status == 202
    msg = assert_refused(api.publish("c4", {"n": 1}))
    assert "channels" in msg and "(3)" in msg, msg
    # an existing channel takes more messages
    assert api.publish("c1", {"n": 2}).status == 202

    assert_ws_refused(ws_publish(ngx, ws, "c5", {"n": 1}), "c5")

    # a subscription to a new channel stands, but the channel is not
    # stored, and nothing can be published into it
    with wh.RawWebSocket.open(ngx.port, chan.service_token(ws)) as sock:
        sock.send_json({"type": "subscribe", "channels": ["c6"],
                        "ref": "s"})
        sub = sock.recv_type("subscribed")
        assert sub["channel"] == "c6" and sub["id"] == 0, sub
        assert sub["epoch"] == "", sub
        assert_refused(api.publish("c6", {"n": 1}))
        assert sock.quiet(0.3) == []

    resp = api.channels()
    # $presence, wirehubd's own, counts for nothing
    assert [i["channel"] for i in resp.json()["items"]] == \
        ["$presence", "c1", "c2", "c3"]
    assert quota(api)["channels"] == {"used": 3, "limit": 3, "refused": 4}

    # another workspace creates channels as it likes
    other = api_for(ngx, chan.unique("ch-b"))
    for ch in ("c4", "c5", "c6"):
        assert other.publish(ch, {"n": 1}).status == 202
    assert quota(other)["channels"] == {"used": 3, "limit": 3, "refused": 0}


def test_history_bytes(ngx):
    ws = chan.unique("hb")
    api = api_for(ngx, ws)
    for k in range(3):
        assert api.publish("a", BIG_DATA).status == 202
    used = text_bytes(history(api, "a"))
    assert used == 3 * 1007
    assert quota(api)["history_bytes"] == {"used": used, "limit": 3072,
                                           "refused": 0}

    # at the length bound a publish replaces the oldest message: the
    # history does not grow, so it passes; a new channel's would
    assert api.publish("a", BIG_DATA).status == 202
    msg = assert_refused(api.publish("b", BIG_DATA))
    assert "history_bytes" in msg and "(3072)" in msg, msg
    assert_refused(api.publish("b", "small"))
    assert_ws_refused(ws_publish(ngx, ws, "b", "small"), "b")

    items = history(api, "a")
    assert [m["id"] for m in items] == [2, 3, 4]
    assert quota(api)["history_bytes"] == {"used": text_bytes(items),
                                           "limit": 3072, "refused": 3}
    # a refused publish made no channel
    assert quota(api)["channels"]["used"] == 1

    other = api_for(ngx, chan.unique("hb-b"))
    for k in range(3):
        assert other.publish("b", BIG_DATA).status == 202


def test_clients(ngx):
    ws = chan.unique("cl")
    api = api_for(ngx, ws)
    for cid in ("c1", "c2"):
        status, doc = api.call("POST", "/api/clients",
                               {"id": cid, "name": cid, "client_type": "t"})
        assert status == 201, doc
    resp = api.request("POST", "/api/clients",
                       {"id": "c3", "name": "c3", "client_type": "t"})
    msg = assert_refused(resp)
    assert "clients" in msg and "(2)" in msg, msg
    assert api.call("GET", "/api/clients/c3")[0] == 404

    # a client connecting with a valid token is let in, but not
    # registered past the quota; the log says so
    token = chan.token("dev-9", ws)
    with wh.RawWebSocket.open(ngx.port, token) as sock:
        assert sock.status["data"]["client_id"] == "dev-9"
        wait_for(lambda: quota(api)["clients"]["refused"] == 2,
                 what="the implicit registration refused")
    assert api.call("GET", "/api/clients/dev-9")[0] == 404
    assert quota(api)["clients"] == {"used": 2, "limit": 2, "refused": 2}

    # a delete frees a place
    assert api.call("DELETE", "/api/clients/c1")[0] == 200
    status, doc = api.call("POST", "/api/clients",
                           {"id": "c3", "name": "c3", "client_type": "t"})
    assert status == 201, doc
    assert quota(api)["clients"]["used"] == 2

    other = api_for(ngx, chan.unique("cl-b"))
    for cid in ("c1", "c2"):
        status, doc = other.call("POST", "/api/clients",
                                 {"id": cid, "name": cid,
                                  "client_type": "t"})
        assert status == 201, doc


def test_queued_commands(ngx):
    ws = chan.unique("qc")
    api = api_for(ngx, ws)
    assert api.call("POST", "/api/clients",
                    {"id": "dev", "name": "d", "client_type": "t"})[0] == 201
    ids = []
    for k in range(2):
        status, doc = api.call("POST", "/api/clients/dev/commands",
                               {"command": "c%d" % k,
                                "idempotency_key": "k%d" % k})
        assert status == 202, doc
        ids.append(doc["command_id"])
    msg = assert_refused(api.request("POST", "/api/clients/dev/commands",
                                     {"command": "c2"}))
    assert "queued_commands" in msg and "(2)" in msg, msg

    # a repeat creates nothing: it is answered, not refused
    status, doc = api.call("POST", "/api/clients/dev/commands",
                           {"command": "c0", "idempotency_key": "k0"})
    assert status == 200 and doc["command_id"] == ids[0], doc
    assert quota(api)["queued_commands"] == {"used": 2, "limit": 2,
                                             "refused": 1}

    # a final command frees its place
    assert api.call("DELETE", "/api/commands/" + ids[0])[0] == 200
    assert api.call("POST", "/api/clients/dev/commands",
                    {"command": "c3"})[0] == 202
    assert quota(api)["queued_commands"]["used"] == 2

    other = api_for(ngx, chan.unique("qc-b"))
    assert other.call("POST", "/api/clients",
                      {"id": "dev", "name": "d", "client_type": "t"})[0] \
        == 201
    for k in range(2):
        assert other.call("POST", "/api/clients/dev/commands",
                          {"command": "c%d" % k})[0] == 202


def test_publish_rate(ngx):
    api = api_for(ngx, RATE_WS)
    with wh.RawWebSocket.open(ngx.port, chan.service_token(RATE_WS)) as sock:
        assert api.publish("r", {"n": 1}).status == 202
        resp = api.publish("r", {"n": 2})
        msg = assert_refused(resp, "rate_limited")
        assert "publish_rate" in msg and "1/s" in msg, msg
        assert resp.header("retry-after") == "1", resp
        sock.send_json({"type": "publish", "channel": "r", "data": 3,
                        "ref": "p"})
        reply = sock.recv()
        assert reply["ref"] == "p", reply
        assert_ws_refused(reply, "r", "rate_limited")

    st = quota(api)["publish_rate"]
    assert st == {"limit": 1, "refused": 2}, st
    assert [m["data"] for m in history(api, "r")] == [{"n": 1}]

    # the other workspaces keep their own rate
    other = api_for(ngx, chan.unique("rate-b"))
    for k in range(5):
        assert other.publish("r", {"n": k}).status == 202

    # once Retry-After has passed, the next one goes
    time.sleep(int(resp.header("retry-after")))
    assert api.publish("r", {"n": 4}).status == 202


def test_workspace_override(ngx):
    api = api_for(ngx, BIG_WS)
    for k in range(5):
        assert api.publish("c%d" % k, BIG_DATA).status == 202
    q = quota(api)
    assert q["channels"] == {"used": 5, "limit": 20, "refused": 0}
    assert q["history_bytes"]["limit"] is None
    assert q["history_bytes"]["used"] == sum(
        text_bytes(history(api, "c%d" % k)) for k in range(5))
    # the keys the line does not name stay the defaults'
    assert q["clients"]["limit"] == 2
    assert q["queued_commands"]["limit"] == 2
    assert q["publish_rate"]["limit"] == 1000


def test_usage_survives_restart(ngx, daemon):
    ws = chan.unique("rs")
    api = api_for(ngx, ws)
    for ch in ("a", "b", "c"):
        assert api.publish(ch, BIG_DATA).status == 202
    for cid in ("c1", "c2"):
        assert api.call("POST", "/api/clients",
                        {"id": cid, "name": cid, "client_type": "t"})[0] \
            == 201
    before = quota(api)

    # the usage is counted from the store at start
    before_links = chan.link_up_counts(ngx)
    assert daemon.terminate() == 0
    daemon.start()
    chan.wait_relinked(ngx, before_links)

    after = quota(api)
    for kind in ("channels", "history_bytes", "clients"):
        assert after[kind]["used"] == before[kind]["used"], (kind, after)
    assert after["channels"]["used"] == 3
    assert after["history_bytes"]["used"] == 3 * 1007
    assert after["clients"]["used"] == 2
    assert "clients" in assert_refused(api.request(
        "POST", "/api/clients", {"id": "c3", "name": "c3",
                                 "client_type": "t"}))
    assert "channels" in assert_refused(api.publish("d", "small"))
    assert "history_bytes" in assert_refused(api.publish("a", BIG_DATA))


def test_clients_counted_once_at_restart(ngx, daemon):
    """More clients than the Redis engine fetches at once: its load runs
    once per page fetched, and counts from none each time."""
    api = api_for(ngx, MANY_WS)
    for i in range(150):
        assert api.call("POST", "/api/clients",
                        {"id": "m%03d" % i, "name": "m",
                         "client_type": "t"})[0] == 201
    assert quota(api)["clients"]["used"] == 150

    before_links = chan.link_up_counts(ngx)
    assert daemon.terminate() == 0
    daemon.start()
    chan.wait_relinked(ngx, before_links)

    assert quota(api)["clients"]["used"] == 150


# ---------------------------------------------------------------- expiry


@pytest.fixture(scope="module")
def ttl_daemon():
    d = chan.Daemon("quota-ttl", history="length=1000 ttl=2s",
                    extra="quota workspace=* history_bytes=3k;\n")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx_ttl(ttl_daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, ttl_daemon, tag="quota-ttl")


def test_history_bytes_freed_by_ttl(ngx_ttl):
    api = api_for(ngx_ttl, chan.unique("ttl"))
    for ch in ("a", "b", "c"):
        assert api.publish(ch, BIG_DATA).status == 202
    assert quota(api)["history_bytes"]["used"] == 3 * 1007
    assert_refused(api.publish("a", BIG_DATA))

    wait_for(lambda: quota(api)["history_bytes"]["used"] == 0, timeout=10,
             what="the expiry to free the history bytes")
    assert api.publish("a", BIG_DATA).status == 202
    assert quota(api)["history_bytes"]["used"] == 1007


# ---------------------------------------------------------------- MQTT


def test_mqtt_ingest_past_the_rate(tmp_path):
    from test_daemon import Daemon
    from test_mqtt import Broker, Device, mqtt_conf, wait_subscribed

    broker = Broker(tmp_path).start()
    rules = ("ingest ws/+/devices/+/telemetry workspace={1} "
             "channel=devices/{2} type=telemetry;\n"
             "quota workspace=demo publish_rate=1/s;\n")
    d = Daemon(tmp_path, extra=mqtt_conf(broker) + rules).start()
    dev = None
    try:
        link = d.link()
        wait_subscribed(link)
        dev = Device(broker)
        for k in range(6):
            dev.publish("ws/demo/devices/d1/telemetry", json.dumps({"k": k}))

        def refused():
            status, st = link.request("demo", "GET", "/stats")
            return st["quota"]["publish_rate"]["refused"] == 5 and st

        st = wait_for(refused, what="5 ingested messages refused")
        assert st["mqtt"]["messages_in"] == 6
        status, res = link.request("demo", "GET",
                                   "/channels/devices/d1/messages")
        assert [m["data"] for m in res["items"]] == [{"k": 0}]

        # refused, counted, and logged once for the workspace
        lines = [ln for ln in d.logtext().splitlines()
                 if "MQTT ingest refused" in ln]
        assert len(lines) == 1, lines
        assert 'workspace "demo"' in lines[0], lines

        # another workspace ingests at its own rate
        for k in range(3):
            dev.publish("ws/acme/devices/d1/telemetry", json.dumps({"k": k}))
        wait_for(lambda: len(link.request(
            "acme", "GET", "/channels/devices/d1/messages")[1]["items"])
            == 3, what="acme's 3 messages")
    finally:
        if dev is not None:
            dev.close()
        assert d.stop() == 0
        broker.stop()


def refused_metric(ngx, kind):
    api = wh.Api(ngx.port, None, timeout=5)
    try:
        resp = api.request("GET", "/metrics")
    finally:
        api.close()
    assert resp.status == 200, resp
    line = 'wirehubd_quota_refused_total{kind="%s"} ' % kind
    values = [int(x[len(line):]) for x in resp.body.decode().splitlines()
              if x.startswith(line)]
    assert len(values) == 1, resp.body
    return values[0]


def test_refusals_in_metrics(ngx):
    """Each refusal counts once in the scrape, under its kind."""
    before = refused_metric(ngx, "channels")
    api = api_for(ngx, chan.unique("metrics"))
    for n in range(3):
        assert api.publish("c%d" % n, {"n": n}).status == 202
    assert_refused(api.publish("c3", {"n": 3}))
    assert refused_metric(ngx, "channels") == before + 1
