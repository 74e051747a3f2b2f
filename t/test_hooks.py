"""Backend hooks (wirehub_rpc_pass, wirehub_event_pass) against a real
application the test starts: a Python HTTP server behind an ordinary
`internal` proxy_pass location.  A Flask-SocketIO-style request_stats ->
stats_update round trip through rpc, the identity headers the application
sees (and no token anywhere, logs included), rpc_failed for a 500, a
non-JSON answer, a slow application (proxy_read_timeout) and
wirehub_rpc_timeout, wirehub_rpc_max_inflight, events delivered to the
application, and clients that leave while their calls are in flight (no
crash, every call freed: wirehub_backend_calls back to 0)."""

import base64
import json
import os
import re
import subprocess
import threading
import time
import pytest

import chan
import wh
from backend import Backend


class App(Backend):
    """The application: /hold/ waits for release, /slow/ sleeps past
    proxy_read_timeout."""

    def __init__(self):
        self.release = threading.Event()
        super().__init__(self.answer)

    def answer(self, path, headers, body):
        method = path.rsplit("/", 1)[-1]
        if path.startswith("/_wirehub/events/"):
            return 204, "text/plain", b""
        if method == "request_stats":
            # what a Flask-SocketIO handler would emit as stats_update
            params = json.loads(body)
            stats = {"workspace": headers["X-Wirehub-Workspace"],
                     "devices": 3, "window": params.get("window")}
            return 200, "application/json", json.dumps(
                {"event": "stats_update", "stats": stats}).encode()
        if method == "echo":
            return 200, "application/json", body
        if method == "fail":
            return 500, "application/json", b'{"error":"boom"}'
        if method == "notjson":
            return 200, "text/html", b"<html>oops</html>"
        if method == "slow":
            time.sleep(2.5)
            return 200, "application/json", b"{}"
        if method == "hold":
            self.release.wait(20)
            return 200, "application/json", b'{"held":true}'
        return 404, "application/json", b'{"error":"no such method"}'

    def stop(self):
        self.release.set()
        super().stop()


SERVER = """
location /hooks/ {
    wirehub_websocket;
    wirehub_rpc_pass /_wirehub/rpc;
    wirehub_event_pass /_wirehub/events;
    wirehub_rpc_max_inflight 3;
}
location /bounded/ {
    wirehub_websocket;
    wirehub_rpc_pass /_wirehub/rpc;
    wirehub_rpc_timeout 500ms;
}
location /norpc/ { wirehub_websocket; }
location /_wirehub/ {
    internal;
    proxy_pass http://127.0.0.1:%(port)d;
    proxy_read_timeout 1s;
}
location /_wirehub/rpc/hold {
    internal;
    proxy_pass http://127.0.0.1:%(port)d;
    proxy_read_timeout 30s;
}
location = /metrics { wirehub_metrics; }
"""


@pytest.fixture(scope="module")
def app():
    a = App()
    yield a
    a.stop()


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("hooks")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, app, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon,
                            server=SERVER % {"port": app.port})


def ws_open(ngx, path="/hooks/", sub=None):
    tok = chan.token(sub=sub or chan.unique("pc"))
    return wh.RawWebSocket.open(ngx.port, tok, path=path), tok


def reply_to(ws, ref, timeout=5.0):
    """The message with this ref, kept or new (others are kept)."""
    for i, msg in enumerate(ws.backlog):
        if msg.get("ref") == ref:
            return ws.backlog.pop(i)
    deadline = time.monotonic() + timeout
    while True:
        msg = ws.recv(max(0.1, deadline - time.monotonic()))
        assert msg is not None, "closed %s waiting for ref %s" % (
            ws.close_code, ref)
        if msg.get("ref") == ref:
            return msg
        ws.backlog.append(msg)


def backend_calls(ngx):
    api = wh.Api(ngx.port, None, timeout=5)
    try:
        text = api.request("GET", "/metrics").body.decode()
    finally:
        api.close()
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^(wirehub_backend_calls(?:_total\{result="\w+"\})?) (\d+)$',
        text, re.M)}


def wait_calls_zero(ngx, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = backend_calls(ngx)
        if got["wirehub_backend_calls"] == 0:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def test_request_stats_round_trip(ngx, app):
    """Flask-SocketIO's emit('request_stats') / on('stats_update') as one
    rpc: the application's JSON comes back as rpc_result's data."""
    ws, tok = ws_open(ngx)
    try:
        ws.send_json({"type": "rpc", "method": "request_stats",
                      "data": {"window": "1h"}, "ref": "7"})
        msg = reply_to(ws, "7")
        assert msg == {"type": "rpc_result", "ref": "7",
                       "data": {"event": "stats_update",
                                "stats": {"workspace": wh.WORKSPACE,
                                          "devices": 3, "window": "1h"}}}
    finally:
        ws.close()


def test_identity_headers_and_no_token(ngx, app):
    sub = chan.unique("pc")
    ws, tok = ws_open(ngx, sub=sub)
    try:
        ws.send_json({"type": "rpc", "method": "echo",
                      "data": [1, "two", None], "ref": "e1"})
        assert reply_to(ws, "e1")["data"] == [1, "two", None]
        req = app.wait_requests(
            lambda r: r["headers"].get("x-wirehub-client") == sub, 1)[0]
        assert req["path"] == "/_wirehub/rpc/echo"
        h = req["headers"]
        assert h["x-wirehub-workspace"] == wh.WORKSPACE
        assert h["x-wirehub-session"] == ws.session
        assert h["x-wirehub-role"] == "client"
        assert h["content-type"] == "application/json"
        assert json.loads(req["body"]) == [1, "two", None]
        assert "authorization" not in h
        for piece in wh.token_fragments(tok):
            assert piece not in req["raw_headers"]
            assert piece not in req["path"]
            assert piece.encode() not in req["body"]
    finally:
        ws.close()
    ngx.assert_no_secrets([tok])


def test_service_role_header(ngx, app):
    tok = chan.service_token()
    ws = wh.RawWebSocket.open(ngx.port, tok, path="/hooks/")
    try:
        ws.send_json({"type": "rpc", "method": "echo", "data": {"a": 1},
                      "ref": "s1"})
        assert reply_to(ws, "s1")["type"] == "rpc_result"
        req = app.wait_requests(
            lambda r: r["headers"].get("x-wirehub-session") == ws.session, 1)
        assert req[0]["headers"]["x-wirehub-role"] == "service"
    finally:
        ws.close()


@pytest.mark.parametrize("method,status,message", [
    ("fail", 500, "the application failed"),
    ("nosuch", 404, "the application failed"),
    ("notjson", 200, "the application's answer is not JSON"),
    ("slow", 504, "the application failed"),    # proxy_read_timeout 1s
])
def test_rpc_failed(ngx, app, method, status, message):
    ws, _ = ws_open(ngx)
    try:
        ws.send_json({"type": "rpc", "method": method, "ref": "f"})
        msg = reply_to(ws, "f", timeout=8)
        assert msg["type"] == "error" and msg["code"] == "rpc_failed", msg
        assert msg["status"] == status, msg
        assert msg["message"] == message
        # the connection goes on
        ws.send_json({"type": "rpc", "method": "echo", "data": 1,
                      "ref": "after"})
        assert reply_to(ws, "after")["data"] == 1
    finally:
        ws.close()


def test_module_timeout(ngx, app):
    """wirehub_rpc_timeout answers first; the call itself ends with the
    location's proxy timeout and is freed then."""
    ws, _ = ws_open(ngx, path="/bounded/")
    try:
        start = time.monotonic()
        ws.send_json({"type": "rpc", "method": "slow", "ref": "t"})
        msg = reply_to(ws, "t")
        took = time.monotonic() - start
        assert msg["code"] == "rpc_failed" and msg["status"] == 504, msg
        assert took < 0.95, took
        # no second answer when the proxy timeout ends the call
        assert [m for m in ws.quiet(1.5) if m.get("ref") == "t"] == []
    finally:
        ws.close()
    wait_calls_zero(ngx)


@pytest.mark.parametrize("msg,code", [
    ({"type": "rpc", "ref": "b"}, "bad_request"),
    ({"type": "rpc", "method": "", "ref": "b"}, "bad_request"),
    ({"type": "rpc", "method": "a/b", "ref": "b"}, "bad_request"),
    ({"type": "rpc", "method": "..", "ref": "b"}, "bad_request"),
    ({"type": "rpc", "method": "x" * 65, "ref": "b"}, "bad_request"),
    ({"type": "rpc", "method": 7, "ref": "b"}, "bad_request"),
])
def test_bad_method(ngx, app, msg, code):
    ws, _ = ws_open(ngx)
    try:
        ws.send_json(msg)
        got = reply_to(ws, "b")
        assert got["type"] == "error" and got["code"] == code, got
    finally:
        ws.close()


def test_method_64_bytes(ngx, app):
    ws, _ = ws_open(ngx)
    try:
        name = "A-z_0.9" + "x" * 57
        ws.send_json({"type": "rpc", "method": name, "ref": "m"})
        got = reply_to(ws, "m")
        assert got["code"] == "rpc_failed" and got["status"] == 404, got
        app.wait_requests(lambda r: r["path"] == "/_wirehub/rpc/" + name, 1)
    finally:
        ws.close()


def test_without_rpc_pass(ngx):
    ws, _ = ws_open(ngx, path="/norpc/")
    try:
        ws.send_json({"type": "rpc", "method": "echo", "ref": "n"})
        got = reply_to(ws, "n")
        assert got["type"] == "error" and got["code"] == "bad_request", got
    finally:
        ws.close()


def test_max_inflight(ngx, app):
    app.release.clear()
    ws, _ = ws_open(ngx)
    try:
        for i in range(3):
            ws.send_json({"type": "rpc", "method": "hold", "ref": "h%d" % i})
        app.wait_requests(lambda r: r["headers"].get("x-wirehub-session")
                          == ws.session, 3)
        ws.send_json({"type": "rpc", "method": "echo", "ref": "over"})
        got = reply_to(ws, "over")
        assert got["type"] == "error" and got["code"] == "rate_limited", got
        app.release.set()
        for i in range(3):
            assert reply_to(ws, "h%d" % i)["data"] == {"held": True}
        ws.send_json({"type": "rpc", "method": "echo", "data": 2,
                      "ref": "again"})
        assert reply_to(ws, "again")["data"] == 2
    finally:
        app.release.set()
        ws.close()


def test_events_to_application(ngx, app):
    """A client event goes to <event_pass>/<type> as the client sent it,
    with the identity headers; nothing comes back to the client."""
    sub = chan.unique("pc")
    ws, tok = ws_open(ngx, sub=sub)
    try:
        event = {"type": "device_discovery", "devices": ["a", "b"]}
        ws.send_json(event)
        req = app.wait_requests(
            lambda r: r["headers"].get("x-wirehub-client") == sub, 1)[0]
        assert req["path"] == "/_wirehub/events/device_discovery"
        assert json.loads(req["body"]) == event
        assert req["headers"]["x-wirehub-session"] == ws.session
        assert ws.quiet(0.3) == []
        ws.send_json({"type": "Bad Type", "ref": "bt"})
        assert reply_to(ws, "bt")["code"] == "bad_request"
    finally:
        ws.close()


def test_events_without_event_pass(ngx):
    ws, _ = ws_open(ngx, path="/norpc/")
    try:
        ws.send_json({"type": "device_discovery", "ref": "u"})
        got = reply_to(ws, "u")
        assert got["code"] == "bad_request", got
    finally:
        ws.close()


@pytest.mark.parametrize("how", ["tcp", "close_frame"])
def test_close_with_calls_in_flight(ngx, app, how):
    """The client leaves while the application holds its calls: nothing
    crashes, the answers go nowhere, and every call is freed."""
    app.release.clear()
    socks = []
    for _ in range(4):
        ws, _ = ws_open(ngx)
        for i in range(3):
            ws.send_json({"type": "rpc", "method": "hold", "ref": str(i)})
        socks.append(ws)
    sessions = set(ws.session for ws in socks)
    app.wait_requests(lambda r: r["headers"].get("x-wirehub-session")
                      in sessions, 12)
    assert backend_calls(ngx)["wirehub_backend_calls"] >= 12
    for ws in socks:
        if how == "tcp":
            ws.close_socket()
        else:
            ws.close()
    app.release.set()
    wait_calls_zero(ngx)
    # the workers are fine and serve calls
    ws, _ = ws_open(ngx)
    try:
        ws.send_json({"type": "rpc", "method": "echo", "data": 3,
                      "ref": "ok"})
        assert reply_to(ws, "ok")["data"] == 3
    finally:
        ws.close()
    ngx.assert_clean_log()


def test_reload_with_calls_in_flight(ngx, app):
    """A reload closes the WebSocket (1001) while the application holds
    its calls: the old worker ends them (the application sees its
    connection closed) and exits at once, without waiting for the proxy
    timeout; nothing crashes, every call is freed."""
    app.release.clear()
    ws, _ = ws_open(ngx)
    old = set(ngx.workers())
    for i in range(3):
        ws.send_json({"type": "rpc", "method": "hold", "ref": str(i)})
    app.wait_requests(lambda r: r["headers"].get("x-wirehub-session")
                      == ws.session, 3)
    ngx.reload()
    try:
        assert ws.wait_closed(10)[0] == 1001
    finally:
        ws.close_socket()
    deadline = time.monotonic() + 8     # the hold lasts 20 s, the proxy 30
    while old & set(ngx.workers()):
        assert time.monotonic() < deadline, "an old worker stayed"
        time.sleep(0.05)
    app.release.set()
    ngx.wait_link_up()
    wait_calls_zero(ngx)
    ws, _ = ws_open(ngx)
    try:
        ws.send_json({"type": "rpc", "method": "echo", "data": 4,
                      "ref": "new"})
        assert reply_to(ws, "new")["data"] == 4
    finally:
        ws.close()
    ngx.assert_clean_log()


def test_connection_status_exp(ngx):
    """The token's exp, so a client refreshes in band before it."""
    tok = wh.mint("HS256", wh.claims(sub=chan.unique("pc"),
                                     workspace=wh.WORKSPACE, ttl=600))
    ws = wh.RawWebSocket.open(ngx.port, tok, path="/hooks/")
    try:
        part = tok.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(
            part + "=" * (-len(part) % 4)))
        assert ws.status["data"]["exp"] == claims["exp"]
    finally:
        ws.close()


def test_counters_and_clean_log(ngx):
    got = wait_calls_zero(ngx)
    assert got['wirehub_backend_calls_total{result="ok"}'] > 0
    assert got['wirehub_backend_calls_total{result="failed"}'] > 0
    ngx.assert_clean_log()


def test_web_client_rpc(ngx, app):
    """The npm package's rpc() through the real path, in Node."""
    tok = chan.token(sub=chan.unique("web"))
    env = dict(os.environ, WH_URL="ws://127.0.0.1:%d/hooks/" % ngx.port,
               WH_TOKEN=tok)
    res = subprocess.run(
        ["node", "--experimental-websocket", "--no-warnings",
         os.path.join(wh.ROOT, "t", "web", "rpc_node.mjs")],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert out == {"stats": {"event": "stats_update",
                             "stats": {"workspace": wh.WORKSPACE,
                                       "devices": 3, "window": "24h"}},
                   "fail": {"code": "rpc_failed", "status": 500}}
