"""Shared helpers for the Wirehub integration tests.

Free ports, JWT minting (PyJWT plus hand-built tokens for the cases PyJWT
refuses to produce), a raw-socket HTTP client, the HTTP API test client
(Api), the strict WebSocket frame codec, the synchronous WebSocket test
client (RawWebSocket: any byte sequence out, every frame checked in; the
asyncio one, for many connections in one event loop, is chan.Client),
and management of the nginx and wirehubd processes a test module starts.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import jwt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
# another build (make test-asan) is named by the environment
MODULE_SO = os.environ.get("WIREHUB_MODULE",
                           os.path.join(BUILD, "ngx_http_wirehub_module.so"))
WIREHUBD = os.path.join(BUILD, "wirehubd")
NGINX = os.environ.get("WIREHUB_NGINX", "/usr/sbin/nginx")
KEYS = os.path.join(ROOT, "t", "keys")
TEMPLATE = os.path.join(ROOT, "t", "conf", "nginx.conf.tmpl")
ARTIFACTS = os.path.join(ROOT, "t", "artifacts")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ISSUER = "https://auth.wirehub.test"
AUDIENCE = "wirehub"
WORKSPACE = "acme"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# the link protocol version, as common/wh_link.h says
with open(os.path.join(ROOT, "common", "wh_link.h")) as _f:
    LINK_VERSION = int(re.search(r"#define WH_LINK_VERSION\s+(\d+)",
                                 _f.read()).group(1))

LINK_UP_RE = re.compile(r"\] (\d+)#\d+: wirehub: link to wirehubd up")

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


# ---------------------------------------------------------------- ports


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    """Wait until 127.0.0.1:port accepts; False if proc died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------- keys


def key_path(name):
    """t/keys/NAME; rsa.pem and rsa.pub.pem may be named rsa2048.*."""
    path = os.path.join(KEYS, name)
    if not os.path.exists(path) and name.startswith("rsa."):
        alt = os.path.join(KEYS, "rsa2048." + name[len("rsa."):])
        if os.path.exists(alt):
            return alt
    return path


def read_key(name):
    with open(key_path(name), "rb") as f:
        return f.read()


def hs256_secret():
    """The HS256 secret as nginx reads it: one trailing newline stripped."""
    data = read_key("hs256.secret")
    if data.endswith(b"\n"):
        data = data[:-1]
    return data


def jwt_directives(leeway="5s", issuer=ISSUER, audience=AUDIENCE):
    """The wirehub_jwt_* directives every authenticated config uses."""
    lines = [
        "wirehub_jwt_key HS256 file=%s;" % key_path("hs256.secret"),
        "wirehub_jwt_key RS256 file=%s kid=r1;" % key_path("rsa.pub.pem"),
        "wirehub_jwt_key ES256 file=%s kid=e1;" % key_path("ec256.pub.pem"),
        "wirehub_jwt_leeway %s;" % leeway,
    ]
    if issuer:
        lines.append("wirehub_jwt_issuer %s;" % issuer)
    if audience:
        lines.append("wirehub_jwt_audience %s;" % audience)
    return "\n".join(lines)


# ---------------------------------------------------------------- tokens


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub="pc-7", workspace=WORKSPACE, ttl=300, **extra):
    """A valid claim set; extra=None removes a claim."""
    now = int(time.time())
    body = {
        "sub": sub,
        "workspace": workspace,
        "iat": now,
        "exp": now + ttl,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    for name, value in extra.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def mint(alg="HS256", payload=None, headers=None, key=None):
    """A token signed by PyJWT with the configured test keys."""
    if payload is None:
        payload = claims()
    hdrs = {}
    if key is None:
        if alg == "HS256":
            key = hs256_secret()
        elif alg == "RS256":
            key = read_key("rsa.pem")
            hdrs["kid"] = "r1"
        elif alg == "ES256":
            key = read_key("ec256.pem")
            hdrs["kid"] = "e1"
        else:
            raise ValueError("no test key for " + alg)
    if headers:
        hdrs.update(headers)
    token = jwt.encode(payload, key, algorithm=alg, headers=hdrs or None)
    return token if isinstance(token, str) else token.decode()


def hs256_raw(header_bytes, payload_bytes, secret=None):
    """HS256 over arbitrary header and payload bytes (hand-built JSON)."""
    if secret is None:
        secret = hs256_secret()
    signing_input = b64url(header_bytes) + "." + b64url(payload_bytes)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def token_fragments(token):
    """Substrings of a token that must never show up in a log."""
    parts = [token]
    for seg in token.split("."):
        # a JOSE header ({"alg":...) is shared by many tokens: not secret
        if len(seg) >= 16 and not seg.startswith("eyJhbGci"):
            parts.append(seg[:64])
    return parts


# ---------------------------------------------------------------- HTTP


class HttpResponse:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw = raw

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body.decode())

    def error_code(self):
        """The code of a JSON error body that holds nothing else."""
        doc = self.json()
        assert set(doc) == {"error"}, doc
        assert isinstance(doc["error"].get("message"), str), doc
        assert doc["error"]["message"], doc
        return doc["error"]["code"]

    def __repr__(self):
        return "HttpResponse(%d %r, %r, %r)" % (
            self.status, self.reason, self.headers, self.body[:200])


def parse_head(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key in headers:
            headers[key] += ", " + value.strip()
        else:
            headers[key] = value.strip()
    return int(status), reason, headers


def read_http_response(sock, timeout=5.0, stop_after_head_if_101=True):
    """Read one response; a 101 ends at the head (frames may follow)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        raise ConnectionError("no complete HTTP response head: %r"
                              % data[:200])
    head, rest = data.split(b"\r\n\r\n", 1)
    status, reason, headers = parse_head(head + b"\r\n\r\n")
    if status == 101 and stop_after_head_if_101:
        return HttpResponse(status, reason, headers, b"", data), rest
    length = headers.get("content-length")
    if length is not None:
        need = int(length)
        while len(rest) < need:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, extra = rest[:need], rest[need:]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body, extra = read_chunked(sock, rest), b""
    else:
        while True:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            rest += chunk
        body, extra = rest, b""
    return HttpResponse(status, reason, headers, body, data), extra


def read_chunked(sock, buf):
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        size_line, buf = buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(buf) < size + 2:
            buf += sock.recv(65536)
        body += buf[:size]
        buf = buf[size + 2:]
        if size == 0:
            return body


def http_raw(port, request, timeout=5.0, source=None):
    """Send raw request bytes, return (HttpResponse, socket, leftover);
    source=(address, port) binds the client end (127.0.0.N)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout,
                                    source_address=source)
    sock.sendall(request)
    resp, rest = read_http_response(sock, timeout)
    return resp, sock, rest


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key):
    digest = hashlib.sha1(key.encode() + WS_GUID).digest()
    return base64.b64encode(digest).decode()


def upgrade_request(path="/ws/", token=None, key=None, method="GET",
                    version="HTTP/1.1", upgrade="websocket",
                    connection="Upgrade", ws_version="13", origin=None,
                    extra=None, drop=()):
    """Build handshake bytes; a header set to None or named in drop is
    left out."""
    headers = [
        ("Host", "127.0.0.1"),
        ("Upgrade", upgrade),
        ("Connection", connection),
        ("Sec-WebSocket-Key", ws_key() if key is None else key),
        ("Sec-WebSocket-Version", ws_version),
    ]
    if token is not None:
        headers.append(("Authorization", "Bearer " + token))
    if origin is not None:
        headers.append(("Origin", origin))
    for item in extra or ():
        headers.append(item)
    lines = ["%s %s %s" % (method, path, version)]
    for name, value in headers:
        if value is None or name in drop:
            continue
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_error(resp):
    """Assert the body is a Wirehub JSON error and return its code."""
    ctype = resp.header("content-type") or ""
    assert ctype.split(";")[0].strip() == "application/json", resp
    doc = resp.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc
    err = doc["error"]
    assert isinstance(err.get("code"), str) and err["code"], doc
    assert isinstance(err.get("message"), str) and err["message"], doc
    return err["code"]


def metrics_text(port):
    """The text of GET /metrics (a location with wirehub_metrics)."""
    api = Api(port, None, timeout=5)
    try:
        resp = api.request("GET", "/metrics")
    finally:
        api.close()
    assert resp.status == 200, resp
    ctype = resp.header("content-type")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return resp.body.decode()


def metric_value(port, sample):
    """The value of one sample of GET /metrics, by its name and labels as
    written (`wirehub_closes_total{reason="idle"}`): exactly one line."""
    found = [line.split()[-1] for line in metrics_text(port).splitlines()
             if line.startswith(sample + " ")]
    assert len(found) == 1, (sample, found)
    return int(found[0])


def handshake_status(port, token, path="/ws/"):
    """The HTTP status of a WebSocket handshake with this token (101 on
    success; the connection is closed again at once)."""
    resp, sock, _ = http_raw(port, upgrade_request(path=path, token=token))
    sock.close()
    return resp.status


class Api:
    """The one HTTP API test client: a token (None: no Authorization),
    one keep-alive connection to 127.0.0.1:port (from the address source,
    if given), paths under prefix.
    request() returns an HttpResponse; call() (status, JSON body or None).
    retry=True sends a request again once when it failed on the wire
    (a keep-alive connection nginx closed meanwhile)."""

    def __init__(self, port, token, workspace_header=None, timeout=10,
                 prefix="", retry=False, source=None):
        self.port = port
        self.source = (source, 0) if source else None
        self.token = token
        self.workspace_header = workspace_header
        self.timeout = timeout
        self.prefix = prefix
        self.retry = retry
        self.conn = None

    def request(self, method, path, body=None, headers=None, raw=None):
        """body is sent as JSON, raw as the bytes given (both with
        Content-Type: application/json unless headers say otherwise)."""
        hdrs = {}
        if self.token is not None:
            hdrs["Authorization"] = "Bearer " + self.token
        if self.workspace_header is not None:
            hdrs["X-Workspace-ID"] = self.workspace_header
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in ((0, 1) if self.retry else (1,)):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout,
                    source_address=self.source)
            try:
                self.conn.request(method, self.prefix + path, data, hdrs)
                resp = self.conn.getresponse()
                text = resp.read()
                break
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        headers_out = {}
        for name, value in resp.getheaders():
            key = name.lower()
            headers_out[key] = (headers_out[key] + ", " + value
                                if key in headers_out else value)
        if resp.will_close:
            self.close()
        return HttpResponse(resp.status, resp.reason, headers_out, text, b"")

    def call(self, method, path, body=None, headers=None, raw=None):
        """(status, JSON body or None; the bytes when not JSON)."""
        resp = self.request(method, path, body, headers, raw)
        try:
            doc = json.loads(resp.body.decode()) if resp.body.strip() \
                else None
        except ValueError:
            doc = resp.body
        return resp.status, doc

    def publish(self, channel, data, mtype="reading"):
        return self.request("POST", "/api/channels/%s/messages" % channel,
                            {"type": mtype, "data": data})

    def history(self, channel, query=""):
        return self.request("GET", "/api/channels/%s/messages%s"
                            % (channel, "?" + query if query else ""))

    def channels(self, query=""):
        return self.request("GET", "/api/channels" +
                            ("?" + query if query else ""))

    def all_channels(self):
        """Every channel of the workspace, following next cursors."""
        items, cursor = [], None
        while True:
            resp = self.channels("limit=1000" + (
                "&cursor=" + cursor if cursor else ""))
            assert resp.status == 200, resp
            doc = resp.json()
            items += doc["items"]
            cursor = doc["next"]
            if cursor is None:
                return items

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------- frames


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.masked = masked
        self.payload = payload

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def text(self):
        return self.payload.decode("utf-8")

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        return "Frame(fin=%d rsv=%d op=%#x masked=%d len=%d %r)" % (
            self.fin, self.rsv, self.opcode, self.masked,
            len(self.payload), self.payload[:80])


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                 mask_key=None, length_bytes=None, declared_len=None):
    """Client frame bytes. length_bytes forces 0/2/8 extended length
    bytes (non-minimal encodings); declared_len lies about the length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if declared_len is None else declared_len
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if length_bytes is None:
        length_bytes = 0 if n <= 125 else (2 if n <= 0xFFFF else 8)
    if length_bytes == 0:
        head = struct.pack("!BB", b0, mbit | n)
    elif length_bytes == 2:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    if mask_key is None:
        mask_key = os.urandom(4)
    return head + mask_key + apply_mask(payload, mask_key)


def apply_mask(payload, mask_key):
    if not payload:
        return b""
    reps = (len(payload) + 3) // 4
    key = int.from_bytes((mask_key * reps)[:len(payload)], "big")
    data = int.from_bytes(payload, "big")
    return (data ^ key).to_bytes(len(payload), "big")


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class ConnectionClosed(Exception):
    """The server closed the TCP connection (code and reason: its close
    frame's, where a client keeps them)."""

    def __init__(self, message, code=None, reason=""):
        super().__init__(message)
        self.code = code
        self.reason = reason


class HandshakeRefused(AssertionError):
    """The server answered a WebSocket handshake with something else than
    101; .status and .response tell what."""

    def __init__(self, response):
        super().__init__("handshake refused: %r" % response)
        self.response = response
        self.status = response.status


def parse_frame(buf, pos=0):
    """(Frame, end) of the server frame at buf[pos:], or None while it is
    incomplete.  Strict: server frames must never be masked, set RSV
    bits or use a non-minimal length."""
    end = len(buf)
    if end - pos < 2:
        return None
    b0, b1 = buf[pos], buf[pos + 1]
    n = b1 & 0x7F
    hdr = 2
    if n == 126:
        if end - pos < 4:
            return None
        n = struct.unpack("!H", buf[pos + 2:pos + 4])[0]
        hdr = 4
        assert n > 125, "server used a non-minimal 16-bit length"
    elif n == 127:
        if end - pos < 10:
            return None
        n = struct.unpack("!Q", buf[pos + 2:pos + 10])[0]
        hdr = 10
        assert n > 0xFFFF, "server used a non-minimal 64-bit length"
    masked = bool(b1 & 0x80)
    mask_key = b""
    if masked:
        if end - pos < hdr + 4:
            return None
        mask_key = buf[pos + hdr:pos + hdr + 4]
        hdr += 4
    if end - pos < hdr + n:
        return None
    payload = buf[pos + hdr:pos + hdr + n]
    if masked:
        payload = apply_mask(payload, mask_key)
    frame = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)
    assert not frame.masked, "server sent a masked frame: %r" % frame
    assert frame.rsv == 0, "server set RSV bits: %r" % frame
    return frame, pos + hdr + n


class RawWebSocket:
    """The synchronous WebSocket test client, over a plain socket: it
    sends whatever bytes a test wants and parses every server frame
    strictly (recv_frame, recv_message, expect_close ...).  open() is the
    Wirehub client on top of it: the connection_status message is read,
    recv() returns JSON messages (None once closed, with close_code and
    close_reason), recv_type()/quiet() keep what they pass over."""

    def __init__(self, sock, leftover=b"", response=None):
        self.sock = sock
        self.buf = leftover
        self.response = response
        self.status = None
        self.backlog = []
        self.close_code = None
        self.close_reason = None

    @classmethod
    def connect(cls, port, path="/ws/", token=None, timeout=5.0,
                source=None, **kw):
        key = ws_key()
        req = upgrade_request(path=path, token=token, key=key, **kw)
        resp, sock, rest = http_raw(port, req, timeout, source)
        if resp.status != 101:
            sock.close()
            raise HandshakeRefused(resp)
        assert resp.header("sec-websocket-accept") == ws_accept(key), resp
        return cls(sock, rest, resp)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_socket()

    # sending

    def send_raw(self, data, chunks=None, delay=0.0):
        """Send bytes, optionally cut into pieces of the given sizes
        (cycled) with a pause between them."""
        if not chunks:
            self.sock.sendall(data)
            return
        pos, i = 0, 0
        while pos < len(data):
            size = chunks[i % len(chunks)]
            self.sock.sendall(data[pos:pos + size])
            pos += size
            i += 1
            if delay:
                time.sleep(delay)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(encode_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str)
                        else text, **kw)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # receiving

    def _fill(self, need, deadline):
        while len(self.buf) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame before the deadline")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionClosed("server closed TCP (%d bytes "
                                       "buffered)" % len(self.buf))
            self.buf += chunk

    def recv_frame(self, timeout=3.0):
        """The next server frame (parse_frame checks it)."""
        deadline = time.monotonic() + timeout
        while True:
            got = parse_frame(self.buf)
            if got is not None:
                frame, end = got
                self.buf = self.buf[end:]
                return frame
            self._fill(len(self.buf) + 1, deadline)

    def recv_message(self, timeout=3.0, answer_pings=True, pings=None):
        """The next data message, reassembled; pings are answered and
        collected into pings; a close frame is returned as is."""
        deadline = time.monotonic() + timeout
        parts, opcode = [], None
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_PING:
                if pings is not None:
                    pings.append(frame.payload)
                if answer_pings:
                    self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                return frame
            if opcode is None:
                assert frame.opcode in (OP_TEXT, OP_BINARY), frame
                opcode = frame.opcode
            else:
                assert frame.opcode == OP_CONT, frame
            parts.append(frame.payload)
            if frame.fin:
                return Frame(True, 0, opcode, False, b"".join(parts))

    def recv_json(self, timeout=3.0, **kw):
        msg = self.recv_message(timeout, **kw)
        assert msg.opcode == OP_TEXT, "expected a text message: %r" % msg
        return msg.json()

    def expect_close(self, code, timeout=2.0, reply=True):
        """Read until a close frame (skipping data and pings); assert its
        code, answer it, and check the server then closes TCP within 1 s.
        Returns the close frame."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.recv_frame(max(0.0,
                                            deadline - time.monotonic()))
            except ConnectionClosed:
                raise AssertionError("TCP closed without a close frame "
                                     "(expected close %d)" % code)
            except socket.timeout:
                raise AssertionError("no close frame within %.1f s "
                                     "(expected close %d)" % (timeout, code))
            if frame.opcode == OP_CLOSE:
                break
        assert frame.close_code == code, \
            "expected close %d, got %r" % (code, frame)
        if len(frame.payload) > 2:
            frame.payload[2:].decode("utf-8")
        if reply:
            try:
                self.send_frame(OP_CLOSE, frame.payload[:2])
            except (BrokenPipeError, ConnectionResetError):
                return frame
            self.expect_tcp_close(1.0)
        return frame

    def expect_tcp_close(self, timeout=1.0):
        """Assert the server closes TCP within timeout (nothing but an
        EOF may arrive)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server kept TCP open for %.1f s "
                                     "after the close handshake" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not chunk:
                return
            self.buf += chunk

    def is_open(self, timeout=0.2):
        """True when the server neither closed nor sent a close frame."""
        try:
            while True:
                frame = self.recv_frame(timeout)
                if frame.opcode == OP_CLOSE:
                    return False
                if frame.opcode == OP_PING:
                    self.send_frame(OP_PONG, frame.payload)
        except socket.timeout:
            return True
        except ConnectionClosed:
            return False


    # the Wirehub client

    @classmethod
    def open(cls, port, token, path="/ws/", timeout=5.0):
        """Connected, with the connection_status message read (.status);
        HandshakeRefused when the server says no."""
        ws = cls.connect(port, path=path, token=token, timeout=timeout)
        try:
            ws.status = ws.recv(5)
            assert ws.status is not None, \
                "closed %s %r before connection_status" % (
                    ws.close_code, ws.close_reason)
            assert ws.status["type"] == "connection_status", ws.status
        except BaseException:
            ws.close_socket()
            raise
        return ws

    @property
    def session(self):
        return self.status["data"]["session"]

    def recv(self, timeout=5.0):
        """The next JSON message (pings answered), or None once the
        server closed: close_code and close_reason then say how (1006 for
        TCP closed without a close frame); its close frame is answered."""
        if self.close_code is not None:
            return None
        try:
            msg = self.recv_message(timeout)
        except ConnectionClosed:
            self.close_code, self.close_reason = 1006, ""
            return None
        if msg.opcode == OP_CLOSE:
            self.close_code = msg.close_code or 1005
            self.close_reason = msg.payload[2:].decode("utf-8")
            try:
                self.send_frame(OP_CLOSE, msg.payload[:2])
            except OSError:
                pass
            return None
        return msg.json()

    def recv_type(self, mtype, timeout=5.0):
        """The first message of type mtype, kept or new (others are
        kept)."""
        for i, msg in enumerate(self.backlog):
            if msg.get("type") == mtype:
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.1f s" % (mtype,
                                                              timeout))
            try:
                msg = self.recv(left)
            except TimeoutError:
                raise AssertionError("no %s within %.1f s" % (mtype,
                                                              timeout))
            if msg is None:
                raise AssertionError("closed %s %r while waiting for %s"
                                     % (self.close_code, self.close_reason,
                                        mtype))
            if msg.get("type") == mtype:
                return msg
            self.backlog.append(msg)

    def quiet(self, seconds):
        """The kept messages and those that arrive within seconds (none
        expected, usually)."""
        got, self.backlog = self.backlog, []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                msg = self.recv(left)
            except TimeoutError:
                return got
            if msg is None:
                return got
            got.append(msg)

    def result(self, command_id, status="completed", timeout=5.0, **extra):
        """Sends command_result; returns the server's answer (a
        command_result_accepted or an error)."""
        msg = {"type": "command_result", "command_id": command_id,
               "status": status, "ref": "r-" + command_id}
        msg.update(extra)
        self.send_json(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(0.1, deadline - time.monotonic()))
            assert reply is not None, "closed while awaiting the result ack"
            if reply.get("ref") == msg["ref"]:
                return reply
            self.backlog.append(reply)

    def wait_closed(self, timeout=5.0):
        """(close code, reason) once the server closed."""
        deadline = time.monotonic() + timeout
        while self.close_code is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("still open after %.1f s" % timeout)
            try:
                self.recv(left)
            except TimeoutError:
                pass
        return self.close_code, self.close_reason

    def close(self, timeout=5.0):
        """Close handshake (1000) unless the server closed first, then
        the socket; never raises."""
        try:
            if self.close_code is None:
                self.send_close(1000)
                deadline = time.monotonic() + timeout
                while True:
                    frame = self.recv_frame(max(0.0, deadline -
                                                time.monotonic()))
                    if frame.opcode == OP_CLOSE:
                        self.close_code = frame.close_code or 1005
                        self.close_reason = frame.payload[2:].decode(
                            "utf-8", "replace")
                        break
                self.expect_tcp_close(1.0)
        except (OSError, ConnectionClosed, AssertionError):
            pass
        self.close_socket()


# ---------------------------------------------------------------- processes


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(line if len(line) <= 400 else line[:400] + "..."
                     for line in text[-lines:])


def children_of(pid):
    """Pids whose parent is pid (to reap nginx workers we started)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def stop_process(proc, sig, timeout):
    """Signal our process, wait, SIGKILL it (and its children) if it
    lingers.  Returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    kids = children_of(proc.pid)
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    for kid in children_of(proc.pid) or kids:
        try:
            os.kill(kid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.kill()
    proc.wait(5)
    raise AssertionError("pid %d ignored signal %d for %.0f s; killed"
                         % (proc.pid, sig, timeout))


def render(template, values):
    out = template
    for name, value in values.items():
        out = out.replace("{{%s}}" % name, value)
    leftover = re.findall(r"\{\{[A-Z_]+\}\}", out)
    assert not leftover, "unrendered placeholders: %r" % leftover
    return out


def new_prefix(tag):
    prefix = tempfile.mkdtemp(prefix="wh-%s-" % tag)
    for sub in ("conf", "logs", "tmp"):
        os.mkdir(os.path.join(prefix, sub))
    return prefix


def save_artifact(src, name):
    if not os.path.exists(src):
        return
    os.makedirs(ARTIFACTS, exist_ok=True)
    shutil.copyfile(src, os.path.join(ARTIFACTS, name))


# WIREHUB_ENGINE=redis runs every wirehubd of the suite on the Redis
# engine (DESIGN.md "Cluster mode"), each with a redis-server of its own.
ENGINE = os.environ.get("WIREHUB_ENGINE", "lmdb")


class RedisServer:
    """A real redis-server (Debian's) on a free loopback port, in its own
    directory; AOF with appendfsync always, as the engine asks of it."""

    def __init__(self, prefix, extra=()):
        self.dir = os.path.join(prefix, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--protected-mode", "no"]
            + self.extra, stdin=subprocess.DEVNULL, stdout=logf,
            stderr=logf)
        logf.close()
        wait_port(self.port, self.proc)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, sig, 10)
        self.proc = None


class Wirehubd:
    """build/wirehubd on a Unix socket in its own temp directory; start()
    again reuses the storage and the socket path.  WIREHUBD=path in the
    environment tests another build (ASan, say)."""

    def __init__(self, tag, history="length=1000 ttl=24h", extra=""):
        self.tag = tag
        self.history = history
        self.extra = extra
        self.prefix = new_prefix("d-" + tag)
        self.socket = os.path.join(self.prefix, "wirehubd.sock")
        self.storage = os.path.join(self.prefix, "data")
        self.conf = os.path.join(self.prefix, "conf", "wirehubd.conf")
        self.log = os.path.join(self.prefix, "logs", "wirehubd.log")
        self.proc = None
        self.redis = None
        os.mkdir(self.storage)

    def engine_conf(self):
        if ENGINE != "redis" or "engine " in self.extra:
            return ""
        if self.redis is None:
            self.redis = RedisServer(self.prefix).start()
        return "engine redis host=127.0.0.1 port=%d;\n" % self.redis.port

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write("listen unix:%s;\n"
                    "storage %s map_size=64m;\n"
                    "history %s;\n"
                    "log stderr info;\n%s%s" % (self.socket, self.storage,
                                               self.history,
                                               self.engine_conf(),
                                               self.extra))

    def start(self):
        self.write_conf()
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [os.environ.get("WIREHUBD", WIREHUBD), "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("wirehubd exited with %d:\n%s" % (
                    self.proc.returncode, tail(self.log)))
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("wirehubd did not listen on %s:\n%s"
                             % (self.socket, tail(self.log)))

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, 10)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        save_artifact(self.log, "%s-wirehubd.log" % self.tag)
        shutil.rmtree(self.prefix, ignore_errors=True)


class Nginx:
    """One real Debian nginx (master + 2 workers) in a fresh prefix."""

    def __init__(self, tag, http="", server="", daemon_socket=None,
                 main=""):
        self.tag = tag
        self.prefix = new_prefix("n-" + tag)
        self.port = free_port()
        self.conf = os.path.join(self.prefix, "conf", "nginx.conf")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        self.access_log = os.path.join(self.prefix, "logs", "access.log")
        self.stderr_log = os.path.join(self.prefix, "logs", "stderr.log")
        self.proc = None
        # the link is only needed (and opened) for sessions and the API
        self.uses_daemon = (bool(daemon_socket)
                            and os.path.exists(daemon_socket)
                            and re.search(r"\bwirehub_(websocket|api)\b",
                                          server) is not None)
        if daemon_socket:
            http = "wirehub_daemon unix:%s;\n%s" % (daemon_socket, http)
        with open(TEMPLATE) as f:
            template = f.read()
        text = render(template, {
            "MODULE": MODULE_SO,
            "PREFIX": self.prefix,
            "PORT": str(self.port),
            "USER": "user root root;" if os.geteuid() == 0 else "",
            "MAIN": indent(main, 0),
            "HTTP": indent(http, 4),
            "SERVER": indent(server, 8),
        })
        with open(self.conf, "w") as f:
            f.write(text)

    def command(self, *extra):
        return [NGINX, "-p", self.prefix + "/", "-c", self.conf,
                "-e", self.error_log] + list(extra)

    def check_config(self):
        """Run nginx -t; return (exit status, combined output)."""
        res = subprocess.run(self.command("-t"), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        return res.returncode, res.stdout.decode("utf-8", "replace")

    def start(self):
        status, output = self.check_config()
        if status != 0:
            raise AssertionError("nginx -t failed for %s:\n%s\n%s" % (
                self.conf, output, tail(self.error_log)))
        errf = open(self.stderr_log, "ab")
        self.proc = subprocess.Popen(self.command(),
                                     stdin=subprocess.DEVNULL,
                                     stdout=errf, stderr=errf)
        errf.close()
        if not wait_port(self.port, self.proc):
            self.stop(graceful=False)
            raise AssertionError("nginx did not accept on port %d:\n%s"
                                 % (self.port, tail(self.error_log)))
        deadline = time.monotonic() + 5
        while len(self.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # a worker that dies at start (crash loop) fails the module now,
        # not each test by a timeout
        time.sleep(0.2)
        if "exited on signal" in self.read_error_log():
            self.stop(graceful=False)
            raise AssertionError("an nginx worker crashed at start:\n%s"
                                 % tail(self.error_log))
        if self.uses_daemon:
            try:
                self.wait_link_up()
            except AssertionError:
                self.stop(graceful=False)
                raise
        return self

    def wait_link_up(self, timeout=5.0):
        """Until every current worker logged its link to wirehubd up
        (before that, handshakes rightly get 503)."""
        deadline = time.monotonic() + timeout
        while True:
            up = set(int(pid) for pid in LINK_UP_RE.findall(
                self.read_error_log()))
            missing = set(self.workers()) - up
            if self.workers() and not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    "workers %r never logged \"wirehub: link to wirehubd "
                    "up\" within %.0f s:\n%s" % (sorted(missing), timeout,
                                                  tail(self.error_log)))
            time.sleep(0.05)

    def workers(self):
        return [] if self.proc is None else children_of(self.proc.pid)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, graceful=True, timeout=15):
        if self.proc is None:
            return
        sig = signal.SIGQUIT if graceful else signal.SIGTERM
        try:
            stop_process(self.proc, sig, timeout)
        finally:
            self.proc = None

    def cleanup(self):
        save_artifact(self.error_log, "%s-error.log" % self.tag)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def read_error_log(self):
        with open(self.error_log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def read_logs(self):
        """Everything nginx wrote under logs/: error, access, stderr."""
        out = []
        logs = os.path.join(self.prefix, "logs")
        for name in sorted(os.listdir(logs)):
            with open(os.path.join(logs, name), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
        return "\n".join(out)

    def assert_no_secrets(self, tokens):
        """No token (nor its payload or signature part) in any log."""
        logs = self.read_logs()
        for token in tokens:
            for piece in token_fragments(token):
                assert piece not in logs, \
                    "a token leaked into the nginx logs: %s..." % piece[:24]

    def assert_clean_log(self, levels=("alert", "crit", "emerg")):
        """No line at the given severities and no crashed worker."""
        bad = []
        for line in self.read_error_log().splitlines():
            if any("[%s]" % lvl in line for lvl in levels):
                bad.append(line)
            elif "exited on signal" in line:
                bad.append(line)
        assert not bad, "nginx error log:\n" + "\n".join(bad[:20])


def indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line.strip() else line
                     for line in text.strip("\n").splitlines())
