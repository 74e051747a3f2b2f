"""permessage-deflate in channel fan-out: subscribers that negotiated
different server_max_window_bits each get a frame compressed with their
window (one per window size and worker), decodable with that window."""

import json
import os

import pytest

import chan
import wh
from test_conformance import DeflateWebSocket, decompress
from wh import OP_PING, OP_PONG, OP_TEXT


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("deflate-fanout")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon)


def recv_json(ws, bits):
    """The next text message (the server sends each in one frame)."""
    while True:
        frame = ws.recv_frame(timeout=5)
        if frame.opcode != OP_PING:
            break
        ws.send_frame(OP_PONG, frame.payload)
    assert frame.opcode == OP_TEXT and frame.fin, frame
    payload = frame.payload
    if frame.rsv & 4:
        payload = decompress(payload, bits or 15)
    return json.loads(payload)


def open_subscriber(ngx, bits, channel):
    offer = "permessage-deflate"
    if bits:
        offer += "; server_max_window_bits=%d" % bits
    ws = DeflateWebSocket.connect(
        ngx.port, token=chan.token("fan-%s" % bits),
        extra=[("Sec-WebSocket-Extensions", offer)])
    ext = ws.response.header("sec-websocket-extensions")
    assert ext and ext.startswith("permessage-deflate"), ext
    if bits:
        assert "server_max_window_bits=%d" % bits in ext, ext
    assert recv_json(ws, bits)["type"] == "connection_status"
    ws.send_text(json.dumps({"type": "subscribe", "channels": [channel],
                             "ref": "s1"}))
    reply = recv_json(ws, bits)
    assert reply["type"] == "subscribed", reply
    return ws


def test_each_window_size_decodes_the_same_message(ngx):
    channel = chan.unique("deflate")
    windows = [8, 9, 10, 12, None, 15, 10]
    subs = [open_subscriber(ngx, bits, channel) for bits in windows]
    try:
        # repeats 300 to 2000 characters apart, beyond small windows
        block = os.urandom(1000).hex()
        data = (block + block[:600] + os.urandom(150).hex() + block) * 3
        api = wh.Api(ngx.port, chan.service_token())
        for n in range(3):
            resp = api.publish(channel, "%d:%s" % (n, data))
            assert resp.status == 202, resp
        api.close()
        for ws, bits in zip(subs, windows):
            for n in range(3):
                msg = recv_json(ws, bits)
                assert msg["type"] == "reading", msg
                assert msg["data"] == "%d:%s" % (n, data), bits
    finally:
        for ws in subs:
            ws.close_socket()
