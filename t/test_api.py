"""The channel HTTP API through nginx and wirehubd: publish, history
with since/limit paging and its length and ttl bounds, channel lists,
stats, /healthz, errors."""

import asyncio
import json
import time

import pytest

import chan
import wh
from chan import Client, assert_channel_messages, run

LENGTH = 200
TTL = 2.0


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("api", history="length=%d ttl=24h" % LENGTH)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ttl_daemon():
    d = chan.Daemon("api-ttl", history="length=1000 ttl=%gs" % TTL)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, tag="api")


@pytest.fixture(scope="module")
def ngx_ttl(ttl_daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, ttl_daemon, tag="api-ttl")


@pytest.fixture
def api(ngx):
    a = wh.Api(ngx.port, chan.service_token(chan.unique("api")))
    yield a
    a.close()


def workspace_of(api):
    return api.request("GET", "/api/stats").json()["workspace"]


def history(api, channel, query=""):
    resp = api.history(channel, query)
    assert resp.status == 200, resp
    assert resp.header("content-type") == "application/json", resp
    doc = resp.json()
    assert list(doc) == ["items", "next"], doc
    return [m["id"] for m in doc["items"]], doc["next"], doc["items"]


def publish_n(api, channel, n):
    return [chan.publish_ok(api, channel, {"n": i})[0] for i in range(n)]


def test_publish_202_then_history(api):
    ids, epochs = [], set()
    for k in range(3):
        data = {"k": k, "b": 1, "a": [1.5, "\u00e9"]}
        resp = api.publish("sensors/V1", data, "sensor_reading")
        assert resp.status == 202, resp
        assert resp.header("content-type") == "application/json", resp
        doc = resp.json()
        ids.append(doc["id"])
        epochs.add(doc["epoch"])
    assert ids == [1, 2, 3]
    assert len(epochs) == 1
    epoch = epochs.pop()
    got, nxt, items = history(api, "sensors/V1")
    assert (got, nxt) == ([1, 2, 3], None)
    assert_channel_messages(items, "sensors/V1", [1, 2, 3], epoch,
                            "sensor_reading")
    for k, item in enumerate(items):
        # the publisher's data, keys in its order
        assert list(item["data"]) == ["k", "b", "a"], item
        assert item["data"] == {"k": k, "b": 1, "a": [1.5, "\u00e9"]}


def test_history_since_and_limit_paging(api):
    assert publish_n(api, "page", 15) == list(range(1, 16))
    pages, since = [], 0
    while True:
        got, nxt, _ = history(api, "page", "since=%d&limit=4" % since)
        pages.append(got)
        if nxt is None:
            break
        assert nxt == str(got[-1])
        since = int(nxt)
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12],
                     [13, 14, 15]]
    assert history(api, "page", "cursor=12&limit=2")[:2] == ([13, 14], "14")
    assert history(api, "page", "limit=15")[:2] == (list(range(1, 16)), None)
    assert history(api, "page", "since=15")[:2] == ([], None)
    assert history(api, "page", "since=99")[:2] == ([], None)
    assert history(api, "page", "since=14&limit=1000")[:2] == ([15], None)


def test_history_length_bound_and_default_limit(api):
    total = LENGTH + 30
    assert publish_n(api, "long", total) == list(range(1, total + 1))
    first = total - LENGTH + 1
    got, nxt, _ = history(api, "long")
    assert got == list(range(first, first + 100))
    assert nxt == str(first + 99)
    got, nxt, _ = history(api, "long", "limit=1000")
    assert (got, nxt) == (list(range(first, total + 1)), None)
    got, nxt, _ = history(api, "long", "since=5&limit=3")
    assert (got, nxt) == ([first, first + 1, first + 2], str(first + 2))
    listed = {i["channel"]: i for i in api.all_channels()}
    assert listed["long"]["last_id"] == total


def test_history_ttl_bound(ngx_ttl):
    api = wh.Api(ngx_ttl.port, chan.service_token(chan.unique("ttl")))
    try:
        assert publish_n(api, "brief", 3) == [1, 2, 3]
        assert history(api, "brief")[:2] == ([1, 2, 3], None)
        time.sleep(TTL + 0.5)
        assert history(api, "brief")[:2] == ([], None)
        listed = {i["channel"]: i for i in api.all_channels()}
        assert listed["brief"]["last_id"] == 3
        epoch = listed["brief"]["epoch"]
        assert chan.publish_ok(api, "brief", {"n": 3}) == (4, epoch)
        assert history(api, "brief")[:2] == ([4], None)

        async def scenario():
            tok = chan.token("late", workspace_of(api))
            c = await Client.open(ngx_ttl.rport, tok)
            r = await c.subscribe("brief", since={"id": 2, "epoch": epoch})
            assert (r["id"], r["recovered"]) == (4, False), r
            assert await c.barrier() == []
            await c.close()
            c = await Client.open(ngx_ttl.rport, tok)
            r = await c.subscribe("brief", since={"id": 3, "epoch": epoch})
            assert (r["id"], r["recovered"]) == (4, True), r
            assert_channel_messages(await c.messages(1), "brief", [4])
            await c.close()

        run(scenario())
    finally:
        api.close()


@pytest.mark.parametrize("query", [
    "limit=0", "limit=abc", "limit=-1", "since=-1",
    "since=abc", "since=1.5", "since=99999999999999999999999",
    "cursor=x",
])
def test_history_bad_queries(api, query):
    resp = api.history("page", query)
    assert resp.status == 400, (query, resp)
    assert resp.error_code() == "bad_request", resp


def test_history_limit_1000_accepted_more_clamped(api):
    publish_n(api, "few", 3)
    for query in ("limit=1000", "limit=1001", "limit=", ""):
        assert history(api, "few", query)[:2] == ([1, 2, 3], None), query


PUBLISH_ERRORS = [
    (b"{", 400, "bad_request"),
    (b"", 400, "bad_request"),
    (b"[1]", 400, "bad_request"),
    (b'{"type":"t"}', 400, "bad_request"),
    (b'{"type":"t","data":1,"data":2}', 400, "bad_request"),
    (b'{"type":"t","data":{"a":1,"a":2}}', 400, "bad_request"),
    (b'{"type":"t","data":123456789012345678901234567890}', 400,
     "bad_request"),
    (b'{"type":"t","data":1e999}', 400, "bad_request"),
    (('{"type":"%s","data":1}' % ("t" * 129)).encode(), 400, "bad_request"),
    (b'{"type":"a\\u0001b","data":1}', 400, "bad_request"),
    (b'{"type":7,"data":1}', 400, "bad_request"),
    (b'{"type":null,"data":1}', 400, "bad_request"),
    # names twice where the scan must hand over to jansson: spelled with
    # an escape, inside an array, deeper than it looks
    (b'{"type":"a","typ\\u0065":"b","data":1}', 400, "bad_request"),
    (b'{"data":1,"d\\u0061ta":2}', 400, "bad_request"),
    (b'{"type":"t","data":[{"a":1,"a":2}]}', 400, "bad_request"),
    (b'{"type":"t","data":' + b'{"a":' * 8 + b'{"x":1,"x":2}' + b'}' * 8
     + b'}', 400, "bad_request"),
    (('{"type":"t","data":"%s"}' % ("x" * (1 << 20))).encode(), 413,
     "too_large"),
]


@pytest.mark.parametrize("body,status,code", PUBLISH_ERRORS,
                         ids=[repr(c[0][:40]) for c in PUBLISH_ERRORS])
def test_publish_errors(api, body, status, code):
    chan.publish_ok(api, "err", {"n": 0})
    resp = api.request("POST", "/api/channels/err/messages", raw=body,
                       headers={"Content-Type": "application/json"})
    assert resp.status == status, resp
    assert resp.header("content-type") == "application/json", resp
    assert resp.error_code() == code, resp
    assert history(api, "err")[:2] == ([1], None)


# bodies wirehubd takes, whether its scan reads them where they lie or
# jansson does (an escape in a name or in the type, an object in an
# array): (raw body, the type stored, the data's bytes as stored)
PUBLISH_BODIES = [
    (b'{"type":"t","data":{"a":1}}', "t", b'{"a":1}'),
    (b' { "data" : 0.10 , "type" : "t" } ', "t", b"0.10"),
    (b'{"type":"t","data":null}', "t", b"null"),
    (b'{"type":"","data":1}', "message", b"1"),
    (b'{"data":"x"}', "message", b'"x"'),
    (b'{"type":"t","data":"a\\u0000b"}', "t", b'"a\\u0000b"'),
    (b'{"type":"t","data":"\xc3\xa9"}', "t", b'"\xc3\xa9"'),
    (b'{"type":"t","data":{"a":{"b":{"c":[1]}}},"more":{"a":1}}', "t",
     b'{"a":{"b":{"c":[1]}}}'),
    (b'{"type":"t","data":[{"a":1},{"a":2}]}', "t", b'[{"a":1},{"a":2}]'),
    (b'{"type":"caf\\u00e9","data":1}', "caf\u00e9", b"1"),
    (b'{"typ\\u0065":"t","data":2}', "t", b"2"),
    (b'{"type":"t","d\\u0061ta":{ "k" : 0.10 }}', "t", b'{ "k" : 0.10 }'),
    (b'{"type":"t","data":{"k":"{\\"}"}}', "t", b'{"k":"{\\"}"}'),
]


def test_publish_bodies_stored_as_written(api):
    """Each body is answered 202 and its message stored with the type and
    the data bytes the client wrote, also where the "data" name is
    escaped, whichever path read it."""
    for k, (raw, want_type, want_data) in enumerate(PUBLISH_BODIES):
        resp = api.request("POST", "/api/channels/bodies/messages",
                           raw=raw,
                           headers={"Content-Type": "application/json"})
        assert resp.status == 202, (raw, resp)
        assert resp.json()["id"] == k + 1, (raw, resp)
    resp = api.history("bodies")
    assert resp.status == 200, resp
    items = resp.json()["items"]
    assert [m["id"] for m in items] == list(range(1, len(PUBLISH_BODIES)
                                                + 1))
    for m, (raw, want_type, want_data) in zip(items, PUBLISH_BODIES):
        assert m["type"] == want_type, (raw, m)
        assert m["data"] == json.loads(want_data), (raw, m)
    # the bytes as stored: each message's "data" member in the raw page
    for raw, want_type, want_data in PUBLISH_BODIES:
        assert b'"data":' + want_data + b',"timestamp"' in resp.body, raw


@pytest.mark.parametrize("method,path,status,code", [
    ("POST", "/api/channels/$presence/messages", 403, "forbidden"),
    ("POST", "/api/channels/$nope/messages", 400, "bad_channel"),
    ("GET", "/api/nothing", 404, "not_found"),
    ("GET", "/api/channels/x", 404, "not_found"),
    ("PUT", "/api/channels/x/messages", 404, "not_found"),
    ("DELETE", "/api/channels", 404, "not_found"),
    ("POST", "/api/stats", 404, "not_found"),
])
def test_api_errors(api, method, path, status, code):
    body = {"type": "t", "data": 1} if method in ("POST", "PUT") else None
    resp = api.request(method, path, body)
    assert resp.status == status, resp
    assert resp.error_code() == code, resp


def test_channel_list_and_subscribers(ngx, api):
    names = sorted("list/%d" % i for i in range(7))
    for name in names:
        chan.publish_ok(api, name, {"n": 0})
    chan.publish_ok(api, names[2], {"n": 1})

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("v", workspace_of(api)))
        await c.subscribe(names[2])
        deadline = time.monotonic() + 5
        while True:
            listed = [i for i in api.all_channels()
                      if not i["channel"].startswith("$")]
            counts = {i["channel"]: i["subscribers"] for i in listed}
            if counts[names[2]] == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await c.close()
        return listed

    listed = run(scenario())
    assert [i["channel"] for i in listed] == names
    for item in listed:
        assert list(item) == ["channel", "last_id", "epoch", "subscribers"]
        assert item["last_id"] == (2 if item["channel"] == names[2] else 1)
        assert item["subscribers"] == (1 if item["channel"] == names[2]
                                       else 0), item


def test_channel_list_paging(api):
    """A workspace without WebSocket clients (no $presence)."""
    names = sorted("page/%d" % i for i in range(7))
    for name in names:
        chan.publish_ok(api, name, {"n": 0})
    pages, cursor = [], None
    while True:
        resp = api.channels("limit=3" + ("&cursor=" + cursor
                                         if cursor else ""))
        assert resp.status == 200, resp
        doc = resp.json()
        pages.append([i["channel"] for i in doc["items"]])
        cursor = doc["next"]
        if cursor is None:
            break
        assert cursor == pages[-1][-1]
    assert pages == [names[0:3], names[3:6], names[6:7]]
    resp = api.channels("cursor=../x")
    assert resp.status == 400 and resp.error_code() == "bad_request", resp


def test_stats(api):
    resp = api.request("GET", "/api/stats")
    assert resp.status == 200, resp
    doc = resp.json()
    for key in ("connections", "by_client_type", "channels",
                "subscribed_channels", "subscriptions", "workspace",
                "links", "daemon"):
        assert key in doc, (key, doc)
    assert doc["links"] == 2, doc
    assert len(doc["daemon"]["instance"]) == 16, doc
    int(doc["daemon"]["instance"], 16)
    assert wh.ISO_RE.match(doc["daemon"]["started"]), doc
    assert doc["channels"] == 0, doc


def test_token_in_query_and_no_token(ngx, api):
    publish_n(api, "q", 3)
    open_api = wh.Api(ngx.port, None)
    resp = open_api.request("GET", "/api/channels/q/messages?token=%s"
                            "&limit=2" % api.token)
    assert resp.status == 200, resp
    assert [m["id"] for m in resp.json()["items"]] == [1, 2]
    resp = open_api.request("GET", "/api/channels/q/messages")
    assert resp.status == 401, resp
    assert resp.header("www-authenticate") == "Bearer", resp
    assert resp.error_code()
    open_api.close()


def test_healthz(ngx):
    status, retry, body = chan.healthz(ngx.port)
    assert (status, retry) == (200, None)
    assert json.loads(body) == {"status": "ok", "link": "up"}


def test_healthz_is_only_the_health_path(api):
    """Only the location's own /healthz is the health check: a client
    named "healthz" is an API object like any other (token required)."""
    resp = wh.Api(api.port, None).request("GET", "/api/clients/healthz")
    assert resp.status == 401, resp
    resp = api.request("GET", "/api/clients/healthz")
    assert resp.status == 404, resp
    assert resp.json()["error"]["code"] == "not_found", resp
    resp = api.request("POST", "/api/clients",
                       {"id": "healthz", "name": "h", "client_type": "gw"})
    assert resp.status == 201, resp
    resp = api.request("GET", "/api/clients/healthz")
    assert (resp.status, resp.json()["id"]) == (200, "healthz"), resp


def test_logs_clean(ngx, ngx_ttl, daemon, ttl_daemon):
    for n in (ngx, ngx_ttl):
        n.assert_clean_log()
    assert daemon.alive() and ttl_daemon.alive()
