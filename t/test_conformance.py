"""RFC 6455 and RFC 7692 details the Autobahn|Testsuite checks
(`make autobahn`), pinned with raw sockets through wirehub_echo: answers
to valid messages go out before a failure's close frame, the message
size limit is exact after inflation, and every server_max_window_bits
offer is honoured with output a decoder of that window can read."""

import os
import socket
import struct
import time
import zlib

import pytest

import wh
from wh import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

MAX_MESSAGE = 64 * 1024

SERVER = """
location /echo { wirehub_echo; }
location /slow { wirehub_echo; wirehub_send_limit 64k; }
"""

TAIL = b"\x00\x00\xff\xff"


@pytest.fixture(scope="module")
def nginx(nginx_factory):
    return nginx_factory(http="wirehub_max_message_size 64k;\n",
                         server=SERVER)


class DeflateWebSocket(wh.RawWebSocket):
    """RawWebSocket that also accepts RSV1 (compressed) server frames."""

    def recv_frame(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server sent a masked frame"
        assert not b0 & 0x30, "server set RSV2 or RSV3"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._fill(pos + n, deadline)
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return wh.Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, False,
                        payload)


def connect_deflate(nginx, offer="permessage-deflate"):
    return DeflateWebSocket.connect(
        nginx.port, path="/echo",
        extra=[("Sec-WebSocket-Extensions", offer)])


def compress(data, level=6, mem_level=8, wbits=15):
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem_level)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def decompress(payload, wbits=15):
    return zlib.decompressobj(-wbits).decompress(payload + TAIL)


def expect_messages_then_close(ws, messages, code):
    for opcode, payload in messages:
        msg = ws.recv_message(timeout=5)
        assert (msg.opcode, msg.payload) == (opcode, payload), msg
    ws.expect_close(code)


# ------------------------------------- valid messages before a failure


@pytest.mark.parametrize("bad, code", [
    (wh.encode_frame(3, b"reserved opcode"), 1002),
    (wh.encode_frame(OP_TEXT, b"rsv", rsv=2), 1002),
    (wh.encode_frame(OP_CONT, b"no message to continue"), 1002),
    (wh.encode_frame(OP_TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80"),
     1007),
    (wh.encode_frame(OP_BINARY, b"x" * (MAX_MESSAGE + 1)), 1009),
])
def test_valid_messages_echoed_before_the_close(nginx, bad, code):
    """Autobahn 3.2-3.4, 4.1.3-4.2.5, 5.15: the frames before the bad one
    were valid and are answered, in order, before the close frame."""
    first = [(OP_TEXT, b"first"), (OP_BINARY, bytes(range(256))),
             (OP_TEXT, "é" * 1000)]
    data = b"".join(wh.encode_frame(op, p if isinstance(p, bytes)
                                    else p.encode())
                    for op, p in first)
    expected = [(op, p if isinstance(p, bytes) else p.encode())
                for op, p in first]
    with wh.RawWebSocket.connect(nginx.port, path="/echo") as ws:
        ws.send_raw(data + bad + wh.encode_frame(OP_PING, b"late"))
        expect_messages_then_close(ws, expected, code)


def test_nothing_after_the_close_frame(nginx):
    """A ping after the bad frame is not answered: the close frame is the
    last frame, then TCP closes."""
    with wh.RawWebSocket.connect(nginx.port, path="/echo") as ws:
        ws.send_raw(wh.encode_frame(OP_TEXT, b"ok")
                    + wh.encode_frame(4, b"")
                    + wh.encode_frame(OP_PING, b"after"))
        assert ws.recv_message(timeout=5).payload == b"ok"
        frame = ws.recv_frame(timeout=5)
        assert frame.opcode == OP_CLOSE and frame.close_code == 1002, frame
        ws.expect_tcp_close(2.0)
        assert ws.buf == b"", "bytes after the close frame: %r" % ws.buf


def test_fragmented_message_then_bad_fragment(nginx):
    """Autobahn 5.15: a whole fragmented message, then a continuation
    with nothing to continue."""
    with wh.RawWebSocket.connect(nginx.port, path="/echo") as ws:
        ws.send_raw(wh.encode_frame(OP_TEXT, b"frag", fin=False)
                    + wh.encode_frame(OP_CONT, b"ment1")
                    + wh.encode_frame(OP_CONT, b"frag", fin=False)
                    + wh.encode_frame(OP_CONT, b"ment2"))
        expect_messages_then_close(ws, [(OP_TEXT, b"fragment1")], 1002)


def test_slow_consumer_still_1013(nginx):
    """Past wirehub_send_limit the queue is the problem: it is dropped
    and the close 1013 goes out behind at most the frame being written."""
    ws = wh.RawWebSocket.connect(nginx.port, path="/slow")
    try:
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        chunk = wh.encode_frame(OP_BINARY, b"s" * 16000)
        sent = 0
        for _ in range(200):
            ws.send_raw(chunk)
            sent += 16000
        echoed = 0
        deadline = time.monotonic() + 10
        while True:
            frame = ws.recv_frame(max(0.1, deadline - time.monotonic()))
            if frame.opcode == OP_CLOSE:
                break
            echoed += len(frame.payload)
        assert frame.close_code == 1013, frame
        assert echoed < sent
        ws.expect_tcp_close(2.0)
    finally:
        ws.close_socket()


# ------------------------------------------------- size after inflation


@pytest.mark.parametrize("mem_level", [1, 4, 8, 9])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_exactly_max_after_inflation_accepted(nginx, level, mem_level):
    """Incompressible data grows when deflated (a block header every 128
    bytes at memLevel 1): a message of exactly the limit still passes."""
    data = os.urandom(MAX_MESSAGE)
    with connect_deflate(nginx) as ws:
        ws.send_frame(OP_BINARY, compress(data, level, mem_level), rsv=4)
        frame = ws.recv_frame(timeout=5)
        assert frame.opcode == OP_BINARY, frame
        payload = decompress(frame.payload) if frame.rsv & 4 \
            else frame.payload
        assert payload == data


def test_exactly_max_after_inflation_fragmented(nginx):
    data = os.urandom(MAX_MESSAGE)
    wire = compress(data, 6, 1)
    parts = [wire[i:i + 256] for i in range(0, len(wire), 256)]
    with connect_deflate(nginx) as ws:
        for i, part in enumerate(parts):
            ws.send_frame(OP_BINARY if i == 0 else OP_CONT, part,
                          rsv=4 if i == 0 else 0, fin=i == len(parts) - 1)
        frame = ws.recv_frame(timeout=5)
        assert frame.opcode == OP_BINARY, frame
        assert decompress(frame.payload) == data


@pytest.mark.parametrize("mem_level", [1, 8])
def test_one_byte_over_max_after_inflation_is_1009(nginx, mem_level):
    data = os.urandom(MAX_MESSAGE + 1)
    with connect_deflate(nginx) as ws:
        ws.send_frame(OP_BINARY, compress(data, 6, mem_level), rsv=4)
        ws.expect_close(1009)


# ------------------------------------------------ server_max_window_bits


def window_payload():
    """Repeats 300 to 2000 bytes apart: a deflater with a window larger
    than the client's would reach back further than it can follow."""
    block = os.urandom(2000)
    return (block + block[:300] + os.urandom(300) + block[:300]
            + block) * 4


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_max_window_bits_accepted(nginx, bits):
    data = window_payload()
    with connect_deflate(nginx, "permessage-deflate; "
                         "server_max_window_bits=%d; client_max_window_bits"
                         % bits) as ws:
        ext = ws.response.header("sec-websocket-extensions")
        params = [p.strip() for p in ext.split(";")]
        assert params[0] == "permessage-deflate", ext
        assert "server_max_window_bits=%d" % bits in params, ext
        for _ in range(3):
            ws.send_frame(OP_BINARY, compress(data), rsv=4)
            frame = ws.recv_frame(timeout=5)
            assert frame.opcode == OP_BINARY and frame.rsv == 4, frame
            assert decompress(frame.payload, bits) == data


def test_window_bits_offer_after_a_declined_one(nginx):
    """Autobahn 13.7: several offers, the first valid one is taken."""
    with connect_deflate(nginx, "permessage-deflate; server_max_window_bits"
                         "=7, permessage-deflate; server_max_window_bits=10"
                         ", permessage-deflate") as ws:
        ext = ws.response.header("sec-websocket-extensions")
        assert "server_max_window_bits=10" in ext, ext
        data = window_payload()
        ws.send_frame(OP_BINARY, compress(data), rsv=4)
        assert decompress(ws.recv_frame(timeout=5).payload, 10) == data


@pytest.mark.parametrize("offer", [
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=10; "
    "server_max_window_bits=10",
    "permessage-deflate; client_max_window_bits=7",
])
def test_invalid_window_bits_declined(nginx, offer):
    with connect_deflate(nginx, offer) as ws:
        assert ws.response.header("sec-websocket-extensions") is None
        ws.send_frame(OP_TEXT, b"plain")
        assert ws.recv_message().payload == b"plain"


def test_pong_payload_untouched_with_deflate(nginx):
    with connect_deflate(nginx, "permessage-deflate; "
                         "server_max_window_bits=9") as ws:
        ws.send_frame(OP_PING, b"p" * 100)
        frame = ws.recv_frame()
        assert (frame.opcode, frame.rsv, frame.payload) == \
            (OP_PONG, 0, b"p" * 100)
