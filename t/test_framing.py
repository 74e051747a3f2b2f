"""RFC 6455 framing through the wirehub_echo location, with raw sockets:
every frame is built by hand and every server frame parsed strictly."""

import os
import socket
import struct
import time

import pytest

import wh
from wh import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

MAX_MESSAGE = 100 * 1024

SERVER = """
location /echo { wirehub_echo; }
"""


@pytest.fixture(scope="module")
def nginx(nginx_factory):
    return nginx_factory(http="wirehub_max_message_size 100k;\n",
                         server=SERVER)


@pytest.fixture
def ws(nginx):
    conn = wh.RawWebSocket.connect(nginx.port, path="/echo")
    yield conn
    conn.close_socket()


def echo_roundtrip(ws, opcode, payload, **kw):
    ws.send_frame(opcode, payload, **kw)
    msg = ws.recv_message(timeout=5)
    assert msg.opcode == opcode, msg
    assert msg.payload == payload, msg
    return msg


# ------------------------------------------------------------- echo


def test_text_echo(ws):
    echo_roundtrip(ws, OP_TEXT, "héllo, wörld ✓ 🎉".encode())


def test_binary_echo(ws):
    echo_roundtrip(ws, OP_BINARY, bytes(range(256)))


def test_empty_messages_echo(ws):
    echo_roundtrip(ws, OP_TEXT, b"")
    echo_roundtrip(ws, OP_BINARY, b"")


def test_server_frames_unmasked(ws):
    ws.send_frame(OP_TEXT, b"abc")
    frame = ws.recv_frame()
    assert not frame.masked and frame.payload == b"abc"


def test_many_messages_in_order(ws):
    data = b"".join(wh.encode_frame(OP_TEXT, b"m%d" % i) for i in range(200))
    ws.send_raw(data)
    for i in range(200):
        assert ws.recv_message().payload == b"m%d" % i


def test_frames_split_byte_by_byte(ws):
    frame = wh.encode_frame(OP_TEXT, "split ✓".encode())
    ws.send_raw(frame, chunks=[1], delay=0.01)
    assert ws.recv_message().payload == "split ✓".encode()


def test_ping_gets_pong_with_same_payload(ws):
    ws.send_frame(OP_PING, b"are you there")
    frame = ws.recv_frame()
    assert frame.opcode == OP_PONG and frame.payload == b"are you there"


def test_ping_125_bytes(ws):
    payload = os.urandom(125)
    ws.send_frame(OP_PING, payload)
    frame = ws.recv_frame()
    assert frame.opcode == OP_PONG and frame.payload == payload


def test_unsolicited_pong_ignored(ws):
    ws.send_frame(OP_PONG, b"stray")
    echo_roundtrip(ws, OP_TEXT, b"still here")


# ------------------------------------------------------- fragmentation


def test_fragmented_text_with_interleaved_ping(ws):
    ws.send_frame(OP_TEXT, b"Hello, ", fin=False)
    ws.send_frame(OP_PING, b"p1")
    ws.send_frame(OP_CONT, "wörld".encode(), fin=False)
    ws.send_frame(OP_CONT, b"!", fin=True)
    pongs = []
    parts = []
    deadline = time.monotonic() + 3
    while True:
        frame = ws.recv_frame(deadline - time.monotonic())
        if frame.opcode == OP_PONG:
            pongs.append(frame.payload)
            continue
        parts.append(frame)
        if frame.fin:
            break
    assert pongs == [b"p1"]
    assert parts[0].opcode == OP_TEXT
    assert all(p.opcode == OP_CONT for p in parts[1:])
    assert b"".join(p.payload for p in parts) == "Hello, wörld!".encode()


def test_fragmented_binary_many_pieces(ws):
    payload = os.urandom(5000)
    ws.send_frame(OP_BINARY, payload[:1], fin=False)
    for i in range(1, 5000, 499):
        ws.send_frame(OP_CONT, payload[i:i + 499], fin=False)
        ws.send_frame(OP_PING, b"%d" % i)
    ws.send_frame(OP_CONT, b"", fin=True)
    pongs = []
    msg = ws.recv_message(timeout=5, pings=pongs)
    assert msg.opcode == OP_BINARY and msg.payload == payload


def test_utf8_character_split_across_fragments(ws):
    text = "€".encode()
    ws.send_frame(OP_TEXT, text[:1], fin=False)
    ws.send_frame(OP_CONT, text[1:2], fin=False)
    ws.send_frame(OP_CONT, text[2:], fin=True)
    assert ws.recv_message().payload == text


def test_cont_without_message_is_1002(ws):
    ws.send_frame(OP_CONT, b"orphan", fin=True)
    ws.expect_close(1002)


def test_new_message_inside_fragmented_one_is_1002(ws):
    ws.send_frame(OP_TEXT, b"first", fin=False)
    ws.send_frame(OP_TEXT, b"second", fin=True)
    ws.expect_close(1002)


# ------------------------------------------------------------- UTF-8


def test_invalid_utf8_fails_before_frame_complete(ws):
    """The header announces 1000 bytes; the 6th is invalid; nothing else
    is sent: the server must close 1007 without waiting for the rest."""
    payload = b"hello\xffworld" + b"x" * 989
    frame = wh.encode_frame(OP_TEXT, payload)
    head_len = 2 + 2 + 4
    ws.send_raw(frame[:head_len + 8])
    t0 = time.monotonic()
    ws.expect_close(1007, timeout=2)
    assert time.monotonic() - t0 < 1.0


def test_invalid_utf8_across_fragments_is_1007(ws):
    ws.send_frame(OP_TEXT, b"ok \xf0\x90", fin=False)
    ws.send_frame(OP_CONT, b"\x28 then more", fin=True)
    ws.expect_close(1007)


def test_invalid_utf8_in_later_fragment_before_fin(ws):
    ws.send_frame(OP_TEXT, b"fine", fin=False)
    ws.send_frame(OP_CONT, b"\xc0\xaf", fin=False)
    ws.expect_close(1007)


def test_truncated_utf8_at_message_end_is_1007(ws):
    ws.send_frame(OP_TEXT, b"ab\xe2\x82", fin=True)
    ws.expect_close(1007)


@pytest.mark.parametrize("bad", [
    b"\xed\xa0\x80",          # surrogate U+D800
    b"\xf4\x90\x80\x80",      # above U+10FFFF
    b"\xc0\x80",              # overlong NUL
    b"\xe0\x80\xaf",          # overlong '/'
    b"\xf5\x80\x80\x80",
    b"\x80",
], ids=["surrogate", "above-max", "overlong-2", "overlong-3", "f5",
        "lone-continuation"])
def test_invalid_utf8_classes(ws, bad):
    ws.send_frame(OP_TEXT, b"x" + bad + b"y")
    ws.expect_close(1007)


def test_binary_is_not_utf8_checked(ws):
    echo_roundtrip(ws, OP_BINARY, b"\xff\xfe\xc0\x80")


# ----------------------------------------------------- protocol errors


def test_unmasked_frame_is_1002(ws):
    ws.send_frame(OP_TEXT, b"naked", mask=False)
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_rsv_bits_are_1002(ws, rsv):
    ws.send_frame(OP_TEXT, b"rsv", rsv=rsv)
    ws.expect_close(1002)


def test_rsv_on_ping_is_1002(ws):
    ws.send_frame(OP_PING, b"rsv", rsv=4)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_reserved_opcode_is_1002(ws, opcode):
    ws.send_frame(opcode, b"what")
    ws.expect_close(1002)


def test_reserved_opcode_after_good_message(ws):
    echo_roundtrip(ws, OP_TEXT, b"good")
    ws.send_frame(0xB, b"")
    ws.expect_close(1002)


def test_control_frame_126_bytes_is_1002(ws):
    ws.send_frame(OP_PING, os.urandom(126))
    ws.expect_close(1002)


def test_control_frame_16bit_length_header_is_1002(ws):
    """Even announcing 126 bytes is enough: no need to send them."""
    ws.send_raw(wh.encode_frame(OP_PING, b"", declared_len=126)[:8])
    ws.expect_close(1002)


def test_fragmented_ping_is_1002(ws):
    ws.send_frame(OP_PING, b"half", fin=False)
    ws.expect_close(1002)


def test_fragmented_close_is_1002(ws):
    ws.send_frame(OP_CLOSE, wh.close_payload(1000), fin=False)
    ws.expect_close(1002)


def test_non_minimal_length_is_1002(ws):
    ws.send_frame(OP_TEXT, b"short", length_bytes=2)
    ws.expect_close(1002)


def test_64bit_length_msb_set_is_1002(ws):
    head = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 63) + os.urandom(4)
    ws.send_raw(head)
    ws.expect_close(1002)


# ------------------------------------------------------- close handshake


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4000, 4999])
def test_valid_close_code_echoed(ws, code):
    ws.send_close(code, b"bye")
    frame = ws.recv_frame()
    assert frame.opcode == OP_CLOSE and frame.close_code == code, frame
    ws.expect_tcp_close(1.0)


def test_empty_close_answered_with_empty_or_1000(ws):
    ws.send_frame(OP_CLOSE, b"")
    frame = ws.recv_frame()
    assert frame.opcode == OP_CLOSE, frame
    assert frame.payload == b"" or frame.close_code == 1000, frame
    ws.expect_tcp_close(1.0)


def test_close_with_123_byte_reason(ws):
    ws.send_close(1000, "r" * 123)
    frame = ws.recv_frame()
    assert frame.opcode == OP_CLOSE and frame.close_code == 1000, frame
    ws.expect_tcp_close(1.0)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016,
                                  2999, 5000, 65535])
def test_invalid_close_code_is_1002(ws, code):
    ws.send_close(code)
    ws.expect_close(1002)


def test_one_byte_close_payload_is_1002(ws):
    ws.send_frame(OP_CLOSE, b"\x03")
    ws.expect_close(1002)


def test_close_reason_invalid_utf8_is_1007(ws):
    ws.send_close(1000, b"bad \xff reason")
    ws.expect_close(1007)


def test_nothing_after_close_is_processed(ws):
    ws.send_raw(wh.encode_frame(OP_CLOSE, wh.close_payload(1000)) +
                wh.encode_frame(OP_TEXT, b"too late"))
    frame = ws.recv_frame()
    assert frame.opcode == OP_CLOSE and frame.close_code == 1000, frame
    ws.expect_tcp_close(1.0)
    assert ws.buf == b"", "server sent data after its close frame"


def test_server_closes_tcp_within_1s_after_close_reply(ws):
    ws.send_frame(OP_TEXT, b"\xff")
    frame = ws.recv_frame()
    assert frame.close_code == 1007
    ws.send_close(1007)
    t0 = time.monotonic()
    ws.expect_tcp_close(1.0)
    assert time.monotonic() - t0 < 1.0


def test_server_closes_even_without_close_reply(ws):
    """A client that never answers the close frame still gets its TCP
    connection closed (here within 5 s)."""
    ws.send_frame(OP_TEXT, b"\xff")
    assert ws.recv_frame().close_code == 1007
    ws.expect_tcp_close(5.0)


# ------------------------------------------------------- lengths and size


@pytest.mark.parametrize("size", [125, 126, 127, 65535, 65536, 70000])
def test_length_encodings(ws, size):
    payload = os.urandom(size)
    frame = wh.encode_frame(OP_BINARY, payload)
    ws.send_raw(frame, chunks=[1, 7, 333, 4097, 2])
    msg = ws.recv_message(timeout=10)
    assert msg.opcode == OP_BINARY and msg.payload == payload


def test_70000_byte_text_in_odd_chunks(ws):
    payload = ("ü" * 35000).encode()
    assert len(payload) == 70000
    ws.send_raw(wh.encode_frame(OP_TEXT, payload), chunks=[3, 1001, 17])
    msg = ws.recv_message(timeout=10)
    assert msg.opcode == OP_TEXT and msg.payload == payload


def test_message_at_limit_accepted(ws):
    payload = os.urandom(MAX_MESSAGE)
    echo_roundtrip(ws, OP_BINARY, payload)


def test_message_over_limit_is_1009_from_header(ws):
    head = wh.encode_frame(OP_BINARY, b"", declared_len=MAX_MESSAGE + 1)
    ws.send_raw(head[:14])
    ws.expect_close(1009)


def test_fragments_each_below_limit_over_in_sum_is_1009(ws):
    piece = os.urandom(40 * 1024)
    ws.send_frame(OP_BINARY, piece, fin=False)
    ws.send_frame(OP_CONT, piece, fin=False)
    try:
        ws.send_frame(OP_CONT, piece, fin=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    ws.expect_close(1009, timeout=5)


def test_text_fragments_over_limit_is_1009(ws):
    piece = b"a" * (60 * 1024)
    ws.send_frame(OP_TEXT, piece, fin=False)
    try:
        ws.send_frame(OP_CONT, piece, fin=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    ws.expect_close(1009, timeout=5)


# ------------------------------------------------------------ isolation


def test_errors_do_not_affect_other_connections(nginx):
    good = wh.RawWebSocket.connect(nginx.port, path="/echo")
    bad = [wh.RawWebSocket.connect(nginx.port, path="/echo")
           for _ in range(10)]
    try:
        for i, ws in enumerate(bad):
            ws.send_raw(bytes([0x83 + (i % 3), 0x80]) + b"\0\0\0\0")
        for ws in bad:
            ws.expect_close(1002)
        echo_roundtrip(good, OP_TEXT, b"unaffected")
    finally:
        good.close_socket()
        for ws in bad:
            ws.close_socket()


def test_abrupt_disconnects_mid_frame(nginx):
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", nginx.port), 3)
        sock.sendall(wh.upgrade_request(path="/echo"))
        resp, _ = wh.read_http_response(sock)
        assert resp.status == 101
        frame = wh.encode_frame(OP_TEXT, b"x" * 1000)
        sock.sendall(frame[:i * 30 + 1])
        sock.close()
    with wh.RawWebSocket.connect(nginx.port, path="/echo") as ws:
        echo_roundtrip(ws, OP_TEXT, b"alive")
    nginx.assert_clean_log()
