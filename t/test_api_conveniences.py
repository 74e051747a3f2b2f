"""API conveniences (issue 16, item 5) through the real stack: CORS for
the origins of wirehub_allowed_origins (preflight answered without a
token, others get no CORS header), history newest first and the last N
(?last=, ?before=, ?order=desc), and the Idempotency-Key header for
publishes (a repeat on the same channel answers the first message, also
when the repeats race) and commands."""

import threading

import pytest

import chan
import wh

ORIGIN = "https://dash.example.com"

SERVER = """
location /api/ { wirehub_api; wirehub_allowed_origins %s; }
location = /healthz { wirehub_api; wirehub_allowed_origins %s; }
location /plain/ { wirehub_api; }
""" % (ORIGIN, ORIGIN)


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("conveniences")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    # chan.SERVER's own /api/ would shadow ours: a server of our own
    http = "wirehub_daemon unix:%s;\n%s" % (daemon.socket,
                                            wh.jwt_directives())
    ngx = nginx_factory(http=http, server=SERVER, daemon=False)
    ngx.wait_link_up()
    return ngx


@pytest.fixture
def api(ngx):
    a = wh.Api(ngx.port, chan.service_token(chan.unique("cv")))
    yield a
    a.close()


def preflight(ngx, origin, path="/api/channels/x/messages"):
    a = wh.Api(ngx.port, None)
    try:
        return a.request("OPTIONS", path, headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
    finally:
        a.close()


def test_preflight_allowed_origin(ngx):
    resp = preflight(ngx, ORIGIN)
    assert resp.status == 204, resp
    assert resp.body == b""
    assert resp.header("access-control-allow-origin") == ORIGIN
    assert resp.header("access-control-allow-methods") == \
        "GET, POST, PATCH, DELETE"
    assert resp.header("access-control-allow-headers") == \
        "Authorization, Content-Type, X-Workspace-ID, Idempotency-Key"
    assert resp.header("access-control-max-age") == "600"
    assert resp.header("vary") == "Origin"
    assert resp.header("access-control-allow-credentials") is None


def test_preflight_other_origin(ngx):
    resp = preflight(ngx, "https://evil.example.com")
    assert resp.status == 403, resp
    assert resp.error_code() == "forbidden_origin"
    assert not [h for h in resp.headers if h.startswith("access-control-")]


def test_preflight_without_configured_origins(ngx):
    resp = preflight(ngx, ORIGIN, path="/plain/channels/x/messages")
    assert resp.status == 403, resp
    assert not [h for h in resp.headers if h.startswith("access-control-")]


def test_actual_requests(ngx, api):
    ch = "c/" + chan.unique("x")
    resp = api.request("POST", "/api/channels/%s/messages" % ch,
                       {"data": 1}, headers={"Origin": ORIGIN})
    assert resp.status == 202, resp
    assert resp.header("access-control-allow-origin") == ORIGIN
    assert resp.header("access-control-expose-headers") == \
        "Retry-After, ETag"
    # an error too: the page must be able to read it
    anon = wh.Api(ngx.port, None)
    try:
        resp = anon.request("GET", "/api/channels", headers={
            "Origin": ORIGIN})
        assert resp.status == 401, resp
        assert resp.header("access-control-allow-origin") == ORIGIN
        resp = anon.request("GET", "/healthz", headers={"Origin": ORIGIN})
        assert resp.status == 200
        assert resp.header("access-control-allow-origin") == ORIGIN
        resp = anon.request("GET", "/healthz", headers={
            "Origin": "https://evil.example.com"})
        assert resp.status == 200
        assert resp.header("access-control-allow-origin") is None
        assert resp.header("vary") == "Origin"
    finally:
        anon.close()
    resp = api.request("GET", "/api/channels")
    assert resp.header("access-control-allow-origin") is None


def ids(resp):
    assert resp.status == 200, resp
    return [m["id"] for m in resp.json()["items"]], resp.json()["next"]


def test_history_last_and_newest_first(api):
    ch = "h/" + chan.unique("x")
    for k in range(5):
        assert api.publish(ch, {"k": k}).status == 202
    assert ids(api.history(ch, "last=2")) == ([4, 5], "4")
    assert ids(api.history(ch, "last=2&order=desc")) == ([5, 4], "4")
    assert ids(api.history(ch, "last=2&before=4")) == ([2, 3], "2")
    assert ids(api.history(ch, "last=2&before=2")) == ([1], None)
    assert ids(api.history(ch, "last=10")) == ([1, 2, 3, 4, 5], None)
    assert ids(api.history(ch, "order=desc")) == ([5, 4, 3, 2, 1], None)
    assert ids(api.history(ch, "order=desc&limit=3")) == ([5, 4, 3], "3")
    assert ids(api.history(ch, "order=asc&since=3")) == ([4, 5], None)
    # the messages themselves, in full, newest first
    items = api.history(ch, "last=2&order=desc").json()["items"]
    assert [m["data"] for m in items] == [{"k": 4}, {"k": 3}]
    assert ids(api.history("h/none-" + chan.unique("x"), "last=3")) == \
        ([], None)
    for bad in ("last=0", "last=1001", "last=x", "before=0", "order=up",
                "last=2&since=1", "order=desc&cursor=2"):
        resp = api.history(ch, bad)
        assert resp.status == 400, (bad, resp)
        assert resp.error_code() == "bad_request"


def test_publish_idempotency_key(api):
    ch = "i/" + chan.unique("x")
    key = {"Idempotency-Key": "order-" + chan.unique("k")}
    first = api.request("POST", "/api/channels/%s/messages" % ch,
                        {"type": "order", "data": {"n": 1}}, headers=key)
    assert first.status == 202, first
    again = api.request("POST", "/api/channels/%s/messages" % ch,
                        {"type": "order", "data": {"n": 1}}, headers=key)
    assert again.status == 200, again
    assert again.json() == first.json()
    # the key is per channel
    other = api.request("POST", "/api/channels/%s/b/messages" % ch,
                        {"data": 1}, headers=key)
    assert other.status == 202, other
    # without a key, every publish is a message
    assert api.publish(ch, 2).status == 202
    assert ids(api.history(ch))[0] == [1, 2]
    for bad in ("", "x" * 129, "a b"):
        resp = api.request("POST", "/api/channels/%s/messages" % ch,
                           {"data": 1}, headers={"Idempotency-Key": bad})
        assert resp.status == 400, (bad, resp)


def test_racing_repeats_store_one_message(ngx):
    """Twenty connections send the same key at once: one message, every
    answer its id (200/202) or 409 while the first is not answered."""
    tok = chan.service_token(chan.unique("cv"))
    ch = "r/" + chan.unique("x")
    key = {"Idempotency-Key": chan.unique("k")}
    clients = [wh.Api(ngx.port, tok) for _ in range(20)]
    for c in clients:
        c.request("GET", "/api/channels?limit=1")   # connected
    answers, start = [], threading.Barrier(len(clients))

    def send(c):
        start.wait()
        answers.append(c.request("POST", "/api/channels/%s/messages" % ch,
                                 {"data": "once"}, headers=key))
    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    statuses = sorted(r.status for r in answers)
    assert len(statuses) == 20 and statuses.count(202) == 1, statuses
    assert set(statuses) <= {200, 202, 409}, statuses
    first = [r for r in answers if r.status == 202][0].json()
    assert all(r.json() == first for r in answers if r.status == 200)
    assert [r.error_code() for r in answers if r.status == 409] == \
        ["conflict"] * statuses.count(409)
    api = wh.Api(ngx.port, tok)
    try:
        assert ids(api.history(ch))[0] == [first["id"]]
    finally:
        api.close()


def test_command_idempotency_key_header(api):
    assert api.request("POST", "/api/clients", {
        "id": "pc-9", "name": "Desk 9", "client_type": "desktop"}).status \
        == 201
    path = "/api/clients/pc-9/commands"
    key = {"Idempotency-Key": "deploy-42"}
    first = api.request("POST", path, {"command": "deploy"}, headers=key)
    assert first.status == 202, first
    again = api.request("POST", path, {"command": "deploy"}, headers=key)
    assert again.status == 200, again
    assert again.json()["command_id"] == first.json()["command_id"]
    # the body's key is the same thing: it must agree
    same = api.request("POST", path, {"command": "deploy",
                                      "idempotency_key": "deploy-42"})
    assert same.json()["command_id"] == first.json()["command_id"]
    clash = api.request("POST", path, {"command": "deploy",
                                       "idempotency_key": "other"},
                        headers=key)
    assert clash.status == 400, clash
