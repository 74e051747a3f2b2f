"""docs/migrating.md, as written: every ```nginx block of the page is
extracted and the server is made of exactly those blocks (with an
upstream app_backend, a small application this test runs), then each
mapping of the page is exercised: FastAPI's /ws/client/{jwt} and
/api/clients/register, Flask-SocketIO's rooms, emits, broadcast,
request_stats -> stats_update and client events, and a channel server's
/websocket/clients, /websocket/broadcast, /websocket/disconnect/{id}
and /websocket/stats."""

import json
import os
import re

import pytest

import chan
import wh
from backend import Backend

DOC = os.path.join(wh.ROOT, "docs", "migrating.md")


def doc_server_blocks():
    with open(DOC) as f:
        text = f.read()
    blocks = re.findall(r"^```nginx\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) >= 3, "migrating.md lost its nginx blocks"
    return "\n".join(blocks)


def answer(path, headers, body):
    """What a Flask-SocketIO handler did, as HTTP routes."""
    if path == "/_wirehub/rpc/request_stats":
        params = json.loads(body)
        return 200, "application/json", json.dumps({
            "event": "stats_update",
            "stats": {"workspace": headers["X-Wirehub-Workspace"],
                      "client": headers["X-Wirehub-Client"],
                      "window": params["window"]}}).encode()
    if path.startswith("/_wirehub/events/"):
        return 204, "application/json", b""
    return 404, "application/json", b'{"error":"no route"}'


@pytest.fixture(scope="module")
def app():
    a = Backend(answer)
    yield a
    a.stop()


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("migrating")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, app, nginx_factory, keys):
    http = "\n".join([
        "wirehub_daemon unix:%s;" % daemon.socket,
        wh.jwt_directives(),
        "wirehub_jwt_sign_key HS256 file=%s;" % wh.key_path("hs256.secret"),
        "upstream app_backend { server 127.0.0.1:%d; keepalive 4; }"
        % app.port,
    ])
    n = nginx_factory(http=http, server=doc_server_blocks(), daemon=False)
    n.wait_link_up()
    return n


def workspace():
    return chan.unique("mig")


def test_the_blocks_are_the_whole_server(ngx):
    """Nothing but the page's blocks (and the test's upstream) serves."""
    with open(ngx.conf) as f:
        conf = " ".join(f.read().split())
    assert " ".join(doc_server_blocks().split()) in conf


# ------------------------------------------------------------- FastAPI


def test_fastapi_register_and_ws_client_jwt(ngx):
    ws_name = workspace()
    api = wh.Api(ngx.port, chan.service_token(ws_name))
    try:
        resp = api.request("POST", "/api/clients/register", {
            "id": "desk-1", "name": "Desk 1", "client_type": "desktop"})
        assert resp.status == 201, resp
        doc = resp.json()
        assert doc["id"] == "desk-1" and doc["token"]
    finally:
        api.close()
    # the old URL, with the token in the path
    ws = wh.RawWebSocket.open(ngx.port, None,
                              path="/ws/client/" + doc["token"])
    try:
        data = ws.status["data"]
        assert (data["client_id"], data["workspace"]) == ("desk-1", ws_name)
    finally:
        ws.close()
    ngx.assert_no_secrets([doc["token"]])


def test_fastapi_bad_token_in_path_is_refused(ngx):
    status = wh.handshake_status(ngx.port, None,
                                 path="/ws/client/not-a-jwt")
    assert status == 401, status


# ------------------------------------------------------ Flask-SocketIO


def test_socketio_rooms_emit_and_broadcast(ngx):
    ws_name = workspace()
    api = wh.Api(ngx.port, chan.service_token(ws_name))
    ws = wh.RawWebSocket.open(ngx.port, chan.token(sub="pc-1",
                                                   workspace=ws_name))
    try:
        # join_room("room1")
        ws.send_json({"type": "subscribe", "channels": ["room1"]})
        assert ws.recv_type("subscribed")["channel"] == "room1"
        # emit("chat_message", data, to="room1")
        assert api.request("POST", "/api/channels/room1/messages", {
            "type": "chat_message", "data": {"text": "hi"}}).status == 202
        msg = ws.recv_type("chat_message")
        assert (msg["channel"], msg["data"]) == ("room1", {"text": "hi"})
        # socketio.emit("maintenance", data): everyone
        assert api.request("POST", "/api/broadcast", {
            "type": "maintenance", "data": {"in": 300}}).status == 202
        assert ws.recv_type("maintenance")["data"] == {"in": 300}
        # leave_room("room1")
        ws.send_json({"type": "unsubscribe", "channels": ["room1"]})
        assert ws.recv_type("unsubscribed")["channels"] == ["room1"]
    finally:
        ws.close()
        api.close()


def test_socketio_request_stats_to_stats_update(ngx, app):
    ws_name = workspace()
    ws = wh.RawWebSocket.open(ngx.port, chan.token(sub="dash-1",
                                                   workspace=ws_name))
    try:
        ws.send_json({"type": "rpc", "method": "request_stats",
                      "data": {"window": "1h"}, "ref": "1"})
        msg = ws.recv_type("rpc_result")
        assert msg == {"type": "rpc_result", "ref": "1", "data": {
            "event": "stats_update",
            "stats": {"workspace": ws_name, "client": "dash-1",
                      "window": "1h"}}}
    finally:
        ws.close()


def test_socketio_client_event(ngx, app):
    ws_name = workspace()
    ws = wh.RawWebSocket.open(ngx.port, chan.token(sub="pc-2",
                                                   workspace=ws_name))
    try:
        ws.send_json({"type": "device_discovery", "devices": ["a"]})
        req = app.wait_requests(
            lambda r: r["path"].startswith("/_wirehub/events/"), 1)[0]
        assert req["path"] == "/_wirehub/events/device_discovery"
        assert json.loads(req["body"]) == {"type": "device_discovery",
                                           "devices": ["a"]}
        assert req["headers"]["x-wirehub-workspace"] == ws_name
        assert req["headers"]["x-wirehub-client"] == "pc-2"
    finally:
        ws.close()


# ------------------------------------------------------ channel server


def test_channel_server_endpoints(ngx):
    ws_name = workspace()
    api = wh.Api(ngx.port, chan.service_token(ws_name))
    ws = wh.RawWebSocket.open(ngx.port, chan.token(sub="pc-3",
                                                   workspace=ws_name))
    try:
        resp = api.request("GET", "/websocket/clients")
        assert resp.status == 200, resp
        clients = {c["id"]: c for c in resp.json()["items"]}
        assert clients["pc-3"]["online"] is True

        resp = api.request("GET", "/websocket/stats")
        assert resp.status == 200, resp
        assert "nginx" in resp.json()

        resp = api.request("POST", "/websocket/broadcast",
                           {"type": "notice", "data": "hello"})
        assert resp.status == 202, resp
        assert ws.recv_type("notice")["data"] == "hello"

        resp = api.request("POST", "/websocket/disconnect/pc-3")
        assert resp.status == 200, resp
        doc = resp.json()
        assert (doc["id"], doc["disconnected"]) == ("pc-3", 1)
        assert doc["retry_after"] > 0
        code, _ = ws.wait_closed()
        assert code == 4409

        resp = api.request("POST", "/websocket/disconnect/nobody")
        assert resp.status == 404, resp
    finally:
        ws.close()
        api.close()


def test_channel_server_needs_a_service_token(ngx):
    api = wh.Api(ngx.port, None)
    try:
        assert api.request("GET", "/websocket/clients").status == 401
        assert api.request("GET", "/websocket/stats").status == 401
    finally:
        api.close()
