"""The authenticated session on wirehub_websocket: connection_status,
application ping/pong and errors, WebSocket ping and idle timing, token
expiry and refresh, and close 1001 on nginx shutdown and reload."""

import ctypes
import json
import os
import signal
import socket
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

import wh
from wh import OP_CLOSE, OP_PING, OP_PONG

SERVER = """
location /ws/ { wirehub_websocket; }
"""

TIMED_HTTP = wh.jwt_directives(leeway="5s") + """
wirehub_ping_interval 1s;
wirehub_idle_timeout 2s;
"""

EXPIRY_HTTP = wh.jwt_directives(leeway="0s") + """
wirehub_ping_interval 30s;
wirehub_idle_timeout 60s;
"""

QUIET_HTTP = wh.jwt_directives(leeway="5s") + """
wirehub_ping_interval 30s;
wirehub_idle_timeout 60s;
"""

USED_TOKENS = []


@pytest.fixture(scope="module")
def nginx(nginx_factory, keys):
    return nginx_factory(http=TIMED_HTTP, server=SERVER, tag="timed")


@pytest.fixture(scope="module")
def expiring(nginx_factory, keys):
    return nginx_factory(http=EXPIRY_HTTP, server=SERVER, tag="expiry")


def token_for(alg="HS256", **kw):
    token = wh.mint(alg, wh.claims(**kw))
    USED_TOKENS.append(token)
    return token


def unique_workspace():
    return "ws-" + uuid.uuid4().hex[:12]


def connect(ngx, token=None, **kw):
    if token is None:
        token = token_for(**kw)
    ws = wh.RawWebSocket.connect(ngx.port, token=token)
    status = ws.recv_json()
    assert status["type"] == "connection_status", status
    return ws, status


def request(ws, obj, raw=None):
    """Send one client message and return the next JSON reply."""
    if raw is not None:
        ws.send_text(raw)
    else:
        ws.send_json(obj)
    return ws.recv_json()


def assert_iso_now(stamp):
    assert wh.ISO_RE.match(stamp), stamp
    when = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    when = when.replace(tzinfo=timezone.utc).timestamp()
    assert abs(when - time.time()) < 5, stamp


def assert_error(reply, code="bad_request", ref=None):
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert isinstance(reply.get("message"), str) and reply["message"], reply
    if ref is None:
        assert "ref" not in reply, reply
    else:
        assert reply["ref"] == ref, reply


# ------------------------------------------------------ connection_status


def test_connection_status_first_message(nginx):
    ws, msg = connect(nginx, sub="pc-7", workspace=wh.WORKSPACE)
    with ws:
        data = msg["data"]
        assert data["status"] == "connected"
        assert data["client_id"] == "pc-7"
        assert data["workspace"] == wh.WORKSPACE
        assert isinstance(data["session"], str) and data["session"]
        assert isinstance(data["active_clients"], int)
        assert data["active_clients"] >= 1
        assert_iso_now(msg["timestamp"])


def test_sessions_unique_and_counted_per_workspace(nginx):
    workspace = unique_workspace()
    a, first = connect(nginx, sub="a", workspace=workspace)
    b, second = connect(nginx, sub="b", workspace=workspace)
    other, third = connect(nginx, sub="a", workspace=unique_workspace())
    with a, b, other:
        assert first["data"]["session"] != second["data"]["session"]
        assert first["data"]["active_clients"] == 1, first
        assert second["data"]["active_clients"] == 2, second
        assert third["data"]["active_clients"] == 1, third


# ------------------------------------------------------ client messages


def test_proxy_protocol_connection_after_the_takeover(nginx_factory, keys,
                                                      tmp_path):
    """After the takeover an idle connection's state moves into the
    session's own pool, except when it came with the PROXY protocol (the
    addresses it carries stay in nginx's pool, which it then keeps):
    messages, a ping and the closing handshake work the same there.  On
    a UNIX socket, which no other listener can be given too."""
    path = str(tmp_path / "proxied.sock")
    nginx_factory(http=QUIET_HTTP, tag="proxied", server=SERVER
                  + "listen unix:%s proxy_protocol;\n" % path)
    key = wh.ws_key()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"
                 + wh.upgrade_request(token=token_for(), key=key))
    resp, rest = wh.read_http_response(sock)
    assert resp.status == 101, resp
    assert resp.header("sec-websocket-accept") == wh.ws_accept(key), resp
    ws = wh.RawWebSocket(sock, rest, resp)
    try:
        assert ws.recv_json()["type"] == "connection_status"
        for ref in ("p1", "p2"):
            reply = request(ws, {"type": "ping", "ref": ref})
            assert reply["type"] == "pong" and reply["ref"] == ref, reply
        ws.send_frame(OP_PING, b"still there")
        frame = ws.recv_frame()
        assert (frame.opcode, frame.payload) == (OP_PONG, b"still there")
        ws.send_close(1000)
        ws.expect_close(1000, reply=False)
    finally:
        ws.close_socket()


def server_nodelay(ngx, ws):
    """TCP_NODELAY on nginx's side of ws's connection: the worker's socket
    itself, duplicated out of it with pidfd_getfd(2)."""
    port = ws.sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == ngx.port and \
                    int(fields[2].split(":")[1], 16) == port:
                inode = fields[9]
    assert inode, "no server socket for client port %d" % port
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in ngx.workers():
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, name))
            except OSError:
                continue
            if target != "socket:[%s]" % inode:
                continue
            pidfd = os.pidfd_open(pid)
            try:
                fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
                assert fd >= 0, os.strerror(ctypes.get_errno())
            finally:
                os.close(pidfd)
            dup = socket.socket(fileno=fd)
            try:
                return dup.getsockopt(socket.IPPROTO_TCP,
                                      socket.TCP_NODELAY) != 0
            finally:
                dup.detach()
                os.close(fd)
    raise AssertionError("no worker holds socket %s" % inode)


def test_nodelay_set_before_the_second_write(nginx):
    """The 101 and connection_status leave in one write with Nagle still
    on (nothing is in flight then); TCP_NODELAY is on before the next
    write, so that no later frame waits for an ACK."""
    ws, _ = connect(nginx)
    try:
        assert server_nodelay(nginx, ws) is False
        reply = request(ws, {"type": "ping", "ref": "n1"})
        assert reply["type"] == "pong" and reply["ref"] == "n1", reply
        assert server_nodelay(nginx, ws) is True
    finally:
        ws.close_socket()


def test_ping_with_ref(nginx):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "ping", "ref": "a1"})
        assert reply["type"] == "pong" and reply["ref"] == "a1", reply
        assert_iso_now(reply["timestamp"])


def test_ping_without_ref(nginx):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "ping"})
        assert reply["type"] == "pong" and "ref" not in reply, reply


def test_heartbeat_gets_pong(nginx):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "heartbeat", "ref": "hb-1"})
        assert reply["type"] == "pong" and reply["ref"] == "hb-1", reply


def test_ref_of_64_bytes_echoed(nginx):
    ref = "r" * 64
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "ping", "ref": ref})
        assert reply["type"] == "pong" and reply["ref"] == ref, reply


def test_ref_with_unicode_and_escapes_echoed(nginx):
    ref = 'é"\\/\n✓'
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "ping", "ref": ref})
        assert reply["type"] == "pong" and reply["ref"] == ref, reply


@pytest.mark.parametrize("raw", [
    "{not json",
    "",
    "[1,2,3]",
    '"ping"',
    "{}",
    '{"type":5}',
    '{"type":null}',
    '{"type":"ping","ref":5}',
    '{"type":"ping","ref":"' + "x" * 65 + '"}',
    '{"type":"ping"} trailing',
], ids=["malformed", "empty", "array", "string", "no-type",
        "type-number", "type-null", "ref-number", "ref-65", "trailing"])
def test_bad_request_keeps_connection(nginx, raw):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, None, raw=raw)
        assert reply["type"] == "error" and reply["code"] == "bad_request", \
            reply
        assert isinstance(reply.get("message"), str) and reply["message"]
        follow = request(ws, {"type": "ping", "ref": "after"})
        assert follow["type"] == "pong" and follow["ref"] == "after"


def test_unknown_type_is_bad_request_with_ref(nginx):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"type": "frobnicate", "ref": "u1", "x": 1})
        assert_error(reply, "bad_request", "u1")
        assert_iso_now(reply["timestamp"])
        assert request(ws, {"type": "ping"})["type"] == "pong"


def test_bad_request_carries_ref(nginx):
    ws, _ = connect(nginx)
    with ws:
        reply = request(ws, {"ref": "no-type"})
        assert_error(reply, "bad_request", "no-type")


def test_replies_in_order_for_pipelined_messages(nginx):
    ws, _ = connect(nginx)
    with ws:
        data = b"".join(wh.encode_frame(wh.OP_TEXT, json.dumps(
            {"type": "ping", "ref": "p%d" % i}).encode()) for i in range(50))
        ws.send_raw(data)
        for i in range(50):
            reply = ws.recv_json()
            assert reply["type"] == "pong" and reply["ref"] == "p%d" % i


def test_invalid_frame_on_session_closes_1007(nginx):
    ws, _ = connect(nginx)
    with ws:
        ws.send_text(b'{"type":"ping","ref":"\xff"}')
        ws.expect_close(1007)


def test_client_close_echoed(nginx):
    ws, _ = connect(nginx)
    with ws:
        ws.send_close(1000)
        frame = ws.recv_message()
        assert frame.opcode == OP_CLOSE and frame.close_code == 1000
        ws.expect_tcp_close(1.0)


# ------------------------------------------------------ pings and idleness


def test_server_ping_within_interval(nginx):
    t0 = time.monotonic()
    ws, _ = connect(nginx)
    with ws:
        stamps = []
        while len(stamps) < 3:
            frame = ws.recv_frame(timeout=2.0)
            if frame.opcode == OP_PING:
                stamps.append(time.monotonic() - t0)
                ws.send_frame(OP_PONG, frame.payload)
        assert stamps[0] <= 1.5, stamps
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        assert all(0.5 <= g <= 1.5 for g in gaps), stamps


def test_silent_client_closed_after_idle_timeout(nginx):
    """Never answers pings, never sends: gone within ~3 s, not before
    the 2 s idle timeout is near."""
    t0 = time.monotonic()
    ws, _ = connect(nginx)
    with ws:
        closed_at = None
        while closed_at is None:
            try:
                frame = ws.recv_frame(timeout=4.0 - (time.monotonic() - t0))
            except wh.ConnectionClosed:
                closed_at = time.monotonic() - t0
                break
            except socket.timeout:
                pytest.fail("silent connection still open after 4 s")
            if frame.opcode == OP_CLOSE:
                closed_at = time.monotonic() - t0
        assert 1.5 <= closed_at <= 3.2, closed_at


def test_client_answering_pings_stays(nginx):
    ws, _ = connect(nginx)
    with ws:
        pings = []
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            frame = ws.recv_frame(timeout=2.0)
            assert frame.opcode != OP_CLOSE, frame
            if frame.opcode == OP_PING:
                pings.append(frame.payload)
                ws.send_frame(OP_PONG, frame.payload)
        assert len(pings) >= 3, pings
        reply = request(ws, {"type": "ping", "ref": "still"})
        assert reply["type"] == "pong"


def test_client_sending_messages_stays(nginx):
    """Application traffic is not silence either (pings unanswered)."""
    ws, _ = connect(nginx)
    with ws:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            ws.send_json({"type": "heartbeat"})
            reply = ws.recv_json(answer_pings=False)
            assert reply["type"] == "pong", reply
            time.sleep(0.5)


# ------------------------------------------------------ expiry and refresh


def wait_close(ws, until, answer_pings=True):
    """Read until a close frame or the monotonic deadline; returns
    (close frame or None, time.time() of the close, messages seen)."""
    seen = []
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None, None, seen
        try:
            frame = ws.recv_frame(timeout=left)
        except socket.timeout:
            return None, None, seen
        if frame.opcode == OP_CLOSE:
            return frame, time.time(), seen
        if frame.opcode == OP_PING and answer_pings:
            ws.send_frame(OP_PONG, frame.payload)
        elif frame.opcode == wh.OP_TEXT:
            seen.append(frame.json())


def expiring_token(seconds, **kw):
    exp = int(time.time()) + seconds
    return token_for(exp=exp, **kw), exp


def test_far_exp_neither_wraps_nor_closes(nginx):
    """A token that expires in the far future (up to the top of int64)
    keeps its connection: the expiry saturates instead of wrapping.  One
    connection per exp, open together: they wait the same 1.5 s."""
    socks = {exp: connect(nginx, token=token_for(exp=exp))[0]
             for exp in (2 ** 31, 2 ** 53, 2 ** 62, 2 ** 63 - 1)}
    until = time.monotonic() + 1.5
    try:
        for exp, ws in socks.items():
            frame, _, _ = wait_close(ws, until)
            assert frame is None, (exp, frame)
            reply = request(ws, {"type": "ping", "ref": "far"})
            assert (reply["type"], reply["ref"]) == ("pong", "far"), \
                (exp, reply)
    finally:
        for ws in socks.values():
            ws.close_socket()


def test_expired_token_closes_4401(expiring):
    token, exp = expiring_token(3)
    ws, _ = connect(expiring, token=token)
    with ws:
        frame, when, seen = wait_close(ws, time.monotonic() + 6)
        assert frame is not None, "not closed at token expiry"
        assert frame.close_code == 4401, frame
        assert exp - 0.3 <= when <= exp + 1.2, (when - exp)
        ws.send_frame(OP_CLOSE, frame.payload[:2])
        ws.expect_tcp_close(1.0)


def test_refresh_extends_session(expiring):
    workspace = unique_workspace()
    token, exp = expiring_token(3, sub="agent-1", workspace=workspace)
    ws, _ = connect(expiring, token=token)
    with ws:
        time.sleep(0.5)
        fresh = token_for(sub="agent-1", workspace=workspace, ttl=120)
        ws.send_json({"type": "refresh", "token": fresh, "ref": "rf"})
        frame, when, seen = wait_close(ws, time.monotonic() +
                                       (exp - time.time()) + 1.5)
        assert frame is None, "closed despite refresh: %r" % frame
        assert not [m for m in seen if m.get("type") == "error"], seen
        reply = request(ws, {"type": "ping", "ref": "alive"})
        assert reply["type"] == "pong", reply


def bad_refresh_token(change, workspace):
    if change == "sub":
        return token_for(sub="agent-2", workspace=workspace, ttl=120)
    if change == "workspace":
        return token_for(sub="agent-1", workspace=unique_workspace(),
                         ttl=120)
    if change == "expired":
        return token_for(sub="agent-1", workspace=workspace,
                         exp=int(time.time()) - 10)
    if change == "garbage":
        return "not-a-token"
    good = token_for(sub="agent-1", workspace=workspace, ttl=120)
    bad = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA")
                       else "BBBBBB")
    USED_TOKENS.append(bad)
    return bad


def test_bad_refresh_rejected_and_old_expiry_kept(expiring):
    """Each refused refresh on a connection of its own, all with the same
    exp: they wait for the one expiry together."""
    changes = ("sub", "workspace", "expired", "garbage", "bad-signature")
    workspace = unique_workspace()
    token, exp = expiring_token(3, sub="agent-1", workspace=workspace)
    socks = {c: connect(expiring, token=token)[0] for c in changes}
    try:
        for change, ws in socks.items():
            new = bad_refresh_token(change, workspace)
            reply = request(ws, {"type": "refresh", "token": new,
                                 "ref": "rf"})
            assert reply["type"] == "error", (change, reply)
            assert reply.get("ref") == "rf", (change, reply)
        until = time.monotonic() + 6
        for change, ws in socks.items():
            frame, when, _ = wait_close(ws, until)
            assert frame is not None and frame.close_code == 4401, \
                (change, frame)
            assert exp - 0.3 <= when <= exp + 1.2, (change, when - exp)
    finally:
        for ws in socks.values():
            ws.close_socket()


def test_refresh_without_token_is_bad_request(expiring):
    ws, _ = connect(expiring)
    with ws:
        reply = request(ws, {"type": "refresh", "ref": "r0"})
        assert_error(reply, "bad_request", "r0")


def test_zz_no_token_in_logs(nginx, expiring):
    assert USED_TOKENS, "run the whole module: this checks its tokens"
    nginx.assert_no_secrets(USED_TOKENS)
    expiring.assert_no_secrets(USED_TOKENS)
    nginx.assert_clean_log()
    expiring.assert_clean_log()


# ------------------------------------------------ shutdown and reload: 1001


def hold_connections(ngx, count):
    conns = []
    for i in range(count):
        ws, _ = connect(ngx, token=token_for(sub="c%d" % i))
        conns.append(ws)
    return conns


def collect_closes(conns, t0, timeout):
    """Per connection: (close code or None, seconds after t0)."""
    results = [None] * len(conns)

    def watch(i, ws):
        frame, when, _ = wait_close(ws, time.monotonic() + timeout)
        if frame is None:
            results[i] = (None, None)
            return
        results[i] = (frame.close_code, time.monotonic() - t0)
        try:
            ws.send_frame(OP_CLOSE, frame.payload[:2])
        except OSError:
            pass

    threads = [threading.Thread(target=watch, args=(i, ws))
               for i, ws in enumerate(conns)]
    for t in threads:
        t.start()
    return threads, results


def assert_spread_1001(results):
    codes = [code for code, _ in results]
    assert codes == [1001] * len(results), codes
    times = sorted(t for _, t in results)
    assert times[-1] <= 5.5, times
    assert times[-1] - times[0] >= 0.5, \
        "all %d closes within %.3f s" % (len(times), times[-1] - times[0])


@pytest.mark.parametrize("how", ["quit", "reload"])
def test_shutdown_and_reload_close_1001_spread(nginx_factory, keys, how):
    ngx = nginx_factory(http=QUIET_HTTP, server=SERVER, tag=how)
    conns = hold_connections(ngx, 50)
    old_workers = set(ngx.workers())
    try:
        t0 = time.monotonic()
        ngx.proc.send_signal(signal.SIGQUIT if how == "quit"
                             else signal.SIGHUP)
        threads, results = collect_closes(conns, t0, 8.0)
        for t in threads:
            t.join()
        assert_spread_1001(results)
        if how == "quit":
            ngx.proc.wait(5)
            ngx.proc = None
        else:
            ngx.wait_link_up()
            ws, msg = connect(ngx)
            ws.close_socket()
            assert msg["data"]["status"] == "connected"
            deadline = time.monotonic() + 5
            while old_workers & set(ngx.workers()):
                assert time.monotonic() < deadline, "old workers linger"
                time.sleep(0.1)
        ngx.assert_no_secrets(USED_TOKENS)
        ngx.assert_clean_log()
    finally:
        for ws in conns:
            ws.close_socket()


# ------------------------------------------------------ wirehubd down: 503


def test_handshake_without_wirehubd_is_503(nginx_factory, keys, tmp_path):
    http = "wirehub_daemon unix:%s;\n%s" % (tmp_path / "absent.sock",
                                            QUIET_HTTP)
    ngx = nginx_factory(http=http, server=SERVER, daemon=False, tag="down")
    token = token_for()
    resp, sock, _ = wh.http_raw(ngx.port, wh.upgrade_request(token=token))
    sock.close()
    assert resp.status == 503, resp
    assert resp.header("retry-after") and \
        resp.header("retry-after").isdigit(), resp
    assert wh.json_error(resp) == "unavailable"
    ngx.assert_no_secrets([token])
    ngx.assert_clean_log()
