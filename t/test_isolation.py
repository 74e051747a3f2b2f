"""Workspace isolation through the real stack: a token of workspace A can
never subscribe to, publish to, read the history of, list or learn of a
channel of workspace B, whatever the channel string, on the WebSocket
and on the HTTP API."""

import http.client
import urllib.parse

import pytest

import chan
import wh
from chan import Client, assert_channel_messages, run


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("isolation")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon)


class Tenants:
    """Workspaces A and B; B holds channels A must never reach."""

    def __init__(self, ngx):
        self.a = chan.unique("a")
        self.b = chan.unique("b")
        self.api_a = wh.Api(ngx.port, chan.service_token(self.a))
        self.api_b = wh.Api(ngx.port, chan.service_token(self.b))
        # A never names this one: it must never show up on A's side
        self.secret = "secret/" + chan.unique("only-b")
        self.b_channels = ["x", "dash/temp", self.secret, "a/b", "a"]
        for name in self.b_channels:
            chan.publish_ok(self.api_b, name, {"ws": "B", "name": name})

    def b_state(self):
        """B's channels ($presence moves whenever B's clients come and
        go: left out)."""
        return sorted((i["channel"], i["last_id"], i["epoch"])
                      for i in self.api_b.all_channels()
                      if not i["channel"].startswith("$"))

    def close(self):
        self.api_a.close()
        self.api_b.close()


@pytest.fixture(scope="module")
def tenants(ngx):
    t = Tenants(ngx)
    yield t
    t.close()


def test_same_channel_name_in_two_workspaces(ngx):
    a, b = chan.unique("dash-a"), chan.unique("dash-b")
    api_a = wh.Api(ngx.port, chan.service_token(a))
    api_b = wh.Api(ngx.port, chan.service_token(b))
    w0, w1 = sorted(ngx.workers())

    async def scenario():
        # both workspaces on both workers
        dash = {(ws, w): await chan.open_on(ngx, chan.token("d", ws), w)
                for ws in (a, b) for w in (w0, w1)}
        epochs = {}
        for (ws, _), client in dash.items():
            r = await client.subscribe("dash/temp")
            assert (r["id"], r["recovered"]) == (0, True), r
            assert epochs.setdefault(ws, r["epoch"]) == r["epoch"]
        for k in range(3):
            chan.publish_ok(api_a, "dash/temp", {"ws": "A", "k": k})
        for k in range(2):
            chan.publish_ok(api_b, "dash/temp", {"ws": "B", "k": k})
        author = await Client.open(ngx.rport, chan.token(
            "author", a, publish=["dash/#"]))
        r = await author.call({"type": "publish", "channel": "dash/temp",
                               "data": {"ws": "A", "k": 3}})
        assert (r["type"], r["id"]) == ("published", 4), r

        for (ws, _), client in dash.items():
            n = 4 if ws == a else 2
            got = await client.messages(n)
            assert_channel_messages(got, "dash/temp", range(1, n + 1),
                                    epochs[ws])
            assert [m["data"] for m in got] == [
                {"ws": "A" if ws == a else "B", "k": k} for k in range(n)]
            assert await client.barrier() == []
            await client.close()
        await author.close()

    try:
        run(scenario())
    finally:
        api_a.close()
        api_b.close()


# name -> the error code a subscribe (and a WebSocket publish) gets
HOSTILE = [
    ("../B/x", "bad_channel"),
    ("../../x", "bad_channel"),
    ("%2e%2e/x", "bad_channel"),
    ("./x", "bad_channel"),
    ("a/../x", "bad_channel"),
    ("+", "bad_channel"),
    ("#", "bad_channel"),
    ("a/+", "bad_channel"),
    ("a/#", "bad_channel"),
    ("\u0000", "bad_channel"),
    ("x\u0000", "bad_channel"),
    ("B\u0000x", "bad_channel"),
    ("a" * 201, "bad_channel"),
    ("a/" * 100 + "b", "bad_channel"),
    ("", "bad_channel"),
    ("/x", "bad_channel"),
    ("x/", "bad_channel"),
    ("a//b", "bad_channel"),
    ("x y", "bad_channel"),
    ("caf\u00e9", "bad_channel"),
    ("$foo", "bad_channel"),
    ("$presence/x", "bad_channel"),
    ("$presence", "forbidden"),
    ("$stats", "forbidden"),
    ("$commands", "forbidden"),
]


def test_hostile_channel_strings_over_websocket(ngx, tenants):
    before = tenants.b_state()

    async def scenario():
        spy = await Client.open(ngx.rport, chan.token(
            "spy", tenants.a, publish=["#"]))
        b_watch = await Client.open(ngx.rport, chan.token("w", tenants.b))
        for name in tenants.b_channels:
            await b_watch.subscribe(name)
        for name, code in HOSTILE:
            if "\u0000" in name:
                # jansson refuses \u0000: the message is not parsed at all
                for msg in ({"type": "subscribe", "channels": [name]},
                            {"type": "publish", "channel": name,
                             "data": {"ws": "A"}}):
                    await spy.send(msg)
                    r = await spy.recv()
                    assert (r["type"], r["code"]) == (
                        "error", "bad_request"), (name, r)
                continue
            r = await spy.call({"type": "subscribe", "channels": [name]})
            assert (r["type"], r["code"]) == ("error", code), (name, r)
            if code == "forbidden":
                assert r["channel"] == name, r
            r = await spy.call({"type": "publish", "channel": name,
                                "data": {"ws": "A"}})
            assert (r["type"], r["code"]) == ("error", code), (name, r)
        # B's names are A's own names: fresh channels of A, nothing of B
        # (all but the secret one, which A must never hold)
        for name in ["x", "dash/temp", "a/b", "a", "b/" + tenants.b,
                     tenants.b]:
            r = await spy.subscribe(name)
            assert (r["id"], r["recovered"]) == (0, True), (name, r)
        assert await spy.barrier() == []
        # the longest valid name is A's too
        longest = "a" * 200
        assert (await spy.subscribe(longest))["id"] == 0
        r = await spy.call({"type": "publish", "channel": longest,
                            "data": 1})
        assert (r["type"], r["id"]) == ("published", 1), r
        assert_channel_messages(await spy.messages(1), longest, [1])
        # a publish by A on B's names lands in A
        r = await spy.call({"type": "publish", "channel": "x", "data": 2})
        assert (r["type"], r["id"]) == ("published", 1), r
        assert_channel_messages(await spy.messages(1), "x", [1])
        assert await b_watch.barrier() == []
        await spy.close()
        await b_watch.close()

    run(scenario())
    assert tenants.b_state() == before


def api_path(name, suffix="/messages"):
    return "/api/channels/%s%s" % (urllib.parse.quote(name, safe="/"),
                                   suffix)


# path after /api/channels/ -> (POST status, GET status, A's channel the
# path means once nginx has normalized it, if any)
API_HOSTILE = [
    ("../B/x", 404, 404, None),
    ("../../x", 404, 404, None),
    ("%252e%252e/x", 400, 400, None),
    ("%2e%2e/x", 404, 404, None),
    ("..%2fB%2fx", 404, 404, None),
    ("%2e%2e%2fB%2fx", 404, 404, None),
    ("%2B", 400, 400, None),
    ("%23", 400, 400, None),
    ("a/%2B", 400, 400, None),
    ("a/%23", 400, 400, None),
    ("%00", 400, 400, None),
    ("x%00", 400, 400, None),
    ("a" * 201, 400, 400, None),
    ("a/" * 100 + "b", 400, 400, None),
    ("", 404, 404, None),
    ("x%20y", 400, 400, None),
    ("caf%C3%A9", 400, 400, None),
    ("%24foo", 400, 400, None),
    ("$presence/x", 400, 400, None),
    # service tokens read system channels, nobody writes them
    ("$presence", 403, 200, None),
    ("$stats", 403, 200, None),
    ("%24commands", 403, 200, None),
    # nginx merges slashes and dot segments before the module sees them
    ("./x", 202, 200, "x"),
    ("a/../x", 202, 200, "x"),
    ("/x", 202, 200, "x"),
    ("x/", 202, 200, "x"),
    ("a//b", 202, 200, "a/b"),
]


@pytest.mark.parametrize("raw,post_status,get_status,target", API_HOSTILE,
                         ids=[repr(c[0])[:24] for c in API_HOSTILE])
def test_hostile_channel_strings_over_the_api(ngx, tenants, raw,
                                              post_status, get_status,
                                              target):
    before = tenants.b_state()
    api = tenants.api_a
    path = "/api/channels/%s/messages" % raw
    mark = {"ws": "A", "case": chan.unique("case")}
    post = api.request("POST", path, {"type": "t", "data": mark})
    get = api.request("GET", path)
    assert (post.status, get.status) == (post_status, get_status), (
        raw, post, get)
    for resp in (post, get):
        if resp.status >= 400 and resp.header("content-type") == \
                "application/json":
            assert resp.error_code() in ("bad_request", "bad_channel",
                                         "forbidden", "not_found"), resp
    if target is not None:
        # it landed in A's own channel
        items = api.history(target, "since=%d" % (post.json()["id"] - 1))
        assert [m["data"] for m in items.json()["items"]] == [mark]
    elif get.status == 200:
        for m in get.json()["items"]:
            assert m["data"].get("ws") != "B", m
    assert tenants.b_state() == before
    names = [i["channel"] for i in api.all_channels()]
    assert tenants.secret not in names


def test_system_channel_history_is_per_workspace(ngx, tenants):
    """$presence of A never shows B's clients."""

    async def scenario():
        watcher = await Client.open(ngx.rport, chan.service_token(tenants.a))
        await watcher.subscribe("$presence")
        b_client = await Client.open(ngx.rport,
                                     chan.token("b-client", tenants.b))
        a_client = await Client.open(ngx.rport,
                                     chan.token("a-client", tenants.a))
        event = await watcher.recv()
        assert event["channel"] == "$presence", event
        assert event["data"]["client_id"] == "a-client", event
        await b_client.close()
        await a_client.close()
        await watcher.close()

    run(scenario())
    for item in tenants.api_a.history("$presence").json()["items"]:
        assert item["data"]["client_id"] != "b-client", item


def test_history_of_b_channels_from_a_reveals_nothing(ngx, tenants):
    never = "never/" + chan.unique("used")
    nothing = tenants.api_a.history(never)
    assert nothing.status == 200, nothing
    assert nothing.json() == {"items": [], "next": None}
    for name in (tenants.secret, "x", "dash/temp"):
        resp = tenants.api_a.history(name)
        assert resp.status == 200, resp
        items = resp.json()["items"]
        assert all(m["data"] != {"ws": "B", "name": name} for m in items)
    resp = tenants.api_a.history(tenants.secret)
    assert resp.body == nothing.body


def test_channel_lists_are_per_workspace(ngx, tenants):
    mine = chan.unique("mine")
    chan.publish_ok(tenants.api_a, mine, {"ws": "A"})
    listed = tenants.api_a.all_channels()
    names = [i["channel"] for i in listed]
    assert mine in names
    assert tenants.secret not in names
    b_names = [i["channel"] for i in tenants.api_b.all_channels()
               if not i["channel"].startswith("$")]
    assert sorted(b_names) == sorted(tenants.b_channels)
    # the workspace is the token's, whatever the query says
    for query in ("workspace=" + tenants.b, "ws=%s&cursor=" % tenants.b):
        resp = tenants.api_a.channels(query)
        assert resp.status == 200, resp
        assert tenants.secret not in [i["channel"]
                                      for i in resp.json()["items"]]
    for cursor in ("%00", tenants.b + "%00", "%00" + tenants.b,
                   "$presence%00x", "a" * 201):
        resp = tenants.api_a.channels("cursor=" + cursor)
        assert resp.status == 400, (cursor, resp)
        assert resp.error_code() == "bad_request", resp
    stats = tenants.api_a.request("GET", "/api/stats")
    assert stats.status == 200, stats
    assert stats.json()["workspace"] == tenants.a
    assert stats.json()["channels"] == len(listed)


def test_api_workspace_header_must_match(ngx, tenants):
    """A 403 ends the request: the same keep-alive connection then serves
    the next request, and nothing reaches wirehubd."""
    before = tenants.b_state()
    a_before = tenants.api_a.all_channels()
    calls = [("GET", "/api/channels", None),
             ("GET", api_path(tenants.secret), None),
             ("POST", api_path("x"), {"type": "t", "data": 1}),
             ("POST", api_path("fresh/" + tenants.b),
              {"type": "t", "data": 1}),
             ("GET", "/api/stats", None)]
    for value in (tenants.b, tenants.b.upper(), tenants.a + "x",
                  "../" + tenants.b, "", "*", tenants.a + "," + tenants.b):
        api = wh.Api(ngx.port, chan.service_token(tenants.a),
                       workspace_header=value)
        for i, (method, path, body) in enumerate(calls):
            try:
                resp = api.request(method, path, body)
            except (OSError, http.client.HTTPException) as e:
                raise AssertionError(
                    "keep-alive connection dropped after %d refused "
                    "calls (X-Workspace-ID %r): %r" % (i, value, e))
            assert resp.status == 403, (value, path, resp)
            assert resp.error_code() == "forbidden", resp
        api.close()
    assert tenants.b_state() == before
    assert tenants.api_a.all_channels() == a_before
    assert "header already sent" not in ngx.read_error_log()

    same = wh.Api(ngx.port, chan.service_token(tenants.a),
                    workspace_header=tenants.a)
    assert same.channels().status == 200
    same.close()

    # an admin may act in any workspace it names
    admin = wh.Api(ngx.port, chan.token("root", "ops", role="admin"),
                     workspace_header=tenants.b)
    names = [i["channel"] for i in admin.all_channels()
             if not i["channel"].startswith("$")]
    assert sorted(names) == sorted(tenants.b_channels)
    admin.close()
    admin = wh.Api(ngx.port, chan.token("root", "ops", role="admin"),
                     workspace_header="../" + tenants.b)
    resp = admin.channels()
    assert resp.status == 403 and resp.error_code() == "forbidden", resp
    admin.close()


def test_api_roles(ngx, tenants):
    client = wh.Api(ngx.port, chan.token("pc-1", tenants.a))
    for method, path, body in (("GET", "/api/channels", None),
                               ("POST", api_path("x"),
                                {"type": "t", "data": 1}),
                               ("GET", api_path("x"), None)):
        resp = client.request(method, path, body)
        assert resp.status == 403 and resp.error_code() == "forbidden", resp
    client.close()
    anonymous = wh.Api(ngx.port, None)
    resp = anonymous.channels()
    assert resp.status == 401, resp
    anonymous.close()


@pytest.mark.parametrize("workspace", ["../b", "a/b", "a\u0000b", "",
                                       "a" * 300, "caf\u00e9"])
def test_invalid_workspace_claims_are_refused(ngx, workspace):
    t = chan.token("x", workspace, role="service")
    resp = wh.Api(ngx.port, t).channels()
    assert resp.status == 401, resp
    raw, sock, _ = wh.http_raw(ngx.port, wh.upgrade_request(token=t))
    sock.close()
    assert raw.status == 401, raw


def test_logs_clean(ngx, daemon):
    ngx.assert_clean_log()
    assert daemon.alive()
