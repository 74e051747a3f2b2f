"""wirehub_echo with a real client library (python3-websockets): no token
needed, text and binary echoed, many clients at once, permessage-deflate."""

import asyncio
import os
import random

import pytest
import websockets

import wh

HTTP = wh.jwt_directives() + """
wirehub_max_message_size 1m;
# room to echo a message of the maximum size without a slow-consumer close
wirehub_send_limit 4m;
"""

SERVER = """
location /echo { wirehub_echo; }
location /ws/ { wirehub_websocket; }
"""


@pytest.fixture(scope="module")
def nginx(nginx_factory, keys):
    return nginx_factory(http=HTTP, server=SERVER)


def url(nginx, path="/echo"):
    return "ws://127.0.0.1:%d%s" % (nginx.port, path)


async def echo_messages(nginx, messages, compression):
    async with websockets.connect(url(nginx), compression=compression,
                                  max_size=2 ** 21,
                                  ping_interval=None) as ws:
        out = []
        for msg in messages:
            await ws.send(msg)
            out.append(await asyncio.wait_for(ws.recv(), 10))
        await ws.close()
        return out, ws.close_code, ws.response_headers


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_library_client_echo(nginx, compression):
    messages = ["hello", "", "ünïcödé ✓" * 100, b"\x00\xff" * 10,
                os.urandom(70000), "x" * 200000, os.urandom(1024 * 1024)]
    out, code, _ = asyncio.run(echo_messages(nginx, messages, compression))
    assert out == messages
    assert code == 1000


def test_permessage_deflate_negotiated(nginx):
    resp, sock, _ = wh.http_raw(nginx.port, wh.upgrade_request(
        path="/echo", extra=[("Sec-WebSocket-Extensions",
                              "permessage-deflate; client_max_window_bits")]))
    sock.close()
    assert resp.status == 101, resp
    ext = resp.header("sec-websocket-extensions") or ""
    assert ext.split(";")[0].strip() == "permessage-deflate", resp


def test_unknown_extension_not_accepted(nginx):
    resp, sock, _ = wh.http_raw(nginx.port, wh.upgrade_request(
        path="/echo", extra=[("Sec-WebSocket-Extensions", "x-frobnicate")]))
    sock.close()
    assert resp.status == 101, resp
    assert "x-frobnicate" not in (resp.header("sec-websocket-extensions")
                                  or ""), resp


def test_compressible_message_over_limit_is_1009(nginx):
    """The limit applies to the inflated size, not the wire size."""
    async def run():
        async with websockets.connect(url(nginx), compression="deflate",
                                      max_size=None,
                                      ping_interval=None) as ws:
            if "permessage-deflate" not in (
                    ws.response_headers.get("Sec-WebSocket-Extensions")
                    or ""):
                return "not negotiated"
            await ws.send("a" * (1024 * 1024 + 1))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    assert asyncio.run(run()) == 1009


def test_echo_needs_no_token(nginx):
    with wh.RawWebSocket.connect(nginx.port, path="/echo") as ws:
        ws.send_text("anonymous")
        assert ws.recv_message().payload == b"anonymous"


def test_echo_plain_get_is_400(nginx):
    req = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    resp, sock, _ = wh.http_raw(nginx.port, req)
    sock.close()
    assert resp.status == 400, resp
    wh.json_error(resp)


def test_many_concurrent_echo_clients(nginx):
    async def client(i):
        rnd = random.Random(i)
        msgs = [os.urandom(rnd.randint(0, 3000)) if rnd.random() < 0.5
                else "c%d-" % i + "é" * rnd.randint(0, 500)
                for _ in range(20)]
        async with websockets.connect(url(nginx), ping_interval=None,
                                      compression=None) as ws:
            for m in msgs:
                await ws.send(m)
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in msgs]
            return got == msgs

    async def run():
        return await asyncio.gather(*[client(i) for i in range(100)])

    assert all(asyncio.run(run()))
    nginx.assert_clean_log()
