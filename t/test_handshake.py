"""The WebSocket opening handshake of wirehub_websocket (RFC 6455 4.2)."""

import pytest

import wh

OK_ORIGIN = "https://ok.example"

CONFIG_HTTP = wh.jwt_directives() + """
wirehub_allowed_origins %s;
""" % OK_ORIGIN

CONFIG_SERVER = """
location /ws/ { wirehub_websocket; }
location /echo { wirehub_echo; }
"""


@pytest.fixture(scope="module")
def nginx(nginx_factory, keys):
    return nginx_factory(http=CONFIG_HTTP, server=CONFIG_SERVER)


@pytest.fixture(scope="module")
def token(keys):
    return wh.mint("HS256")


def handshake(nginx, **kw):
    resp, sock, _ = wh.http_raw(nginx.port, wh.upgrade_request(**kw))
    sock.close()
    return resp


def assert_rejected(resp, status):
    assert resp.status == status, resp
    wh.json_error(resp)


def test_upgrade_accepted_with_rfc_accept_value(nginx, token):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    resp = handshake(nginx, token=token, key=key)
    assert resp.status == 101, resp
    assert resp.header("sec-websocket-accept") == \
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert resp.header("upgrade").lower() == "websocket"
    assert "upgrade" in resp.header("connection").lower()


def test_upgrade_accepted_with_random_key(nginx, token):
    key = wh.ws_key()
    resp = handshake(nginx, token=token, key=key)
    assert resp.status == 101, resp
    assert resp.header("sec-websocket-accept") == wh.ws_accept(key)


def test_connection_header_is_a_token_list(nginx, token):
    resp = handshake(nginx, token=token, connection="keep-alive, Upgrade",
                     upgrade="WebSocket")
    assert resp.status == 101, resp


def test_upgraded_connection_carries_frames(nginx, token):
    with wh.RawWebSocket.connect(nginx.port, token=token) as ws:
        msg = ws.recv_json()
        assert msg["type"] == "connection_status", msg


@pytest.mark.parametrize("key", [
    None,
    "",
    "not base64 at all!!",
    "AAAAAAAAAAAAAAAAAAAA",          # 15 bytes
    "AAAAAAAAAAAAAAAAAAAAAAAA",      # 18 bytes
    "AAAAAAAAAAAAAAAAAAAAAA",        # 16 bytes, padding missing
], ids=["missing", "empty", "garbage", "15-bytes", "18-bytes",
        "no-padding"])
def test_bad_key_is_400(nginx, token, key):
    if key is None:
        resp = handshake(nginx, token=token, drop=("Sec-WebSocket-Key",))
    else:
        resp = handshake(nginx, token=token, key=key)
    assert_rejected(resp, 400)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_not_get_is_400(nginx, token, method):
    resp = handshake(nginx, token=token, method=method,
                     extra=[("Content-Length", "0")])
    assert_rejected(resp, 400)


def test_missing_upgrade_is_400(nginx, token):
    assert_rejected(handshake(nginx, token=token, drop=("Upgrade",)), 400)


def test_upgrade_not_websocket_is_400(nginx, token):
    assert_rejected(handshake(nginx, token=token, upgrade="h2c"), 400)


def test_missing_connection_upgrade_is_400(nginx, token):
    assert_rejected(handshake(nginx, token=token, connection="keep-alive"),
                    400)


def test_no_connection_header_is_400(nginx, token):
    assert_rejected(handshake(nginx, token=token, drop=("Connection",)),
                    400)


def test_http10_is_400(nginx, token):
    assert_rejected(handshake(nginx, token=token, version="HTTP/1.0"), 400)


def test_version_8_is_426_with_supported_version(nginx, token):
    resp = handshake(nginx, token=token, ws_version="8")
    assert resp.status == 426, resp
    assert resp.header("sec-websocket-version") == "13", resp
    wh.json_error(resp)


def test_missing_version_is_refused(nginx, token):
    resp = handshake(nginx, token=token, drop=("Sec-WebSocket-Version",))
    assert resp.status in (400, 426), resp
    wh.json_error(resp)


def test_foreign_origin_is_403(nginx, token):
    resp = handshake(nginx, token=token, origin="https://evil.example")
    assert_rejected(resp, 403)


def test_origin_prefix_trick_is_403(nginx, token):
    resp = handshake(nginx, token=token, origin=OK_ORIGIN + ".evil.example")
    assert_rejected(resp, 403)


def test_no_origin_is_a_non_browser_client(nginx, token):
    assert handshake(nginx, token=token).status == 101


def test_allowed_origin_is_101(nginx, token):
    assert handshake(nginx, token=token, origin=OK_ORIGIN).status == 101


def test_no_token_is_401_json(nginx):
    assert_rejected(handshake(nginx), 401)


def test_echo_location_handshake(nginx):
    key = wh.ws_key()
    resp = handshake(nginx, path="/echo", key=key)
    assert resp.status == 101, resp
    assert resp.header("sec-websocket-accept") == wh.ws_accept(key)


def test_echo_location_version_8_is_426(nginx):
    resp = handshake(nginx, path="/echo", ws_version="8")
    assert resp.status == 426, resp
    assert resp.header("sec-websocket-version") == "13", resp


def test_no_token_in_logs(nginx, token):
    nginx.assert_no_secrets([token])
