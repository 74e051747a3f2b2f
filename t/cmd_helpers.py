"""Helpers for the command-queue tests (t/test_commands.py): a wirehubd
with its own `commands` settings that can be killed with SIGKILL and
restarted on the same storage, an HTTP API client, a concurrent POST
driver (asyncio, raw HTTP/1.1 keep-alive), and a WebSocket agent built on
python3-websockets run from a background event loop."""

import asyncio
import http.client
import json
import signal
import threading
import time

import websockets

import chan
import wh

class CmdDaemon(chan.Daemon):
    """wirehubd with its own `commands` settings that survives kill -9
    and restart (the same socket path, so nginx reconnects by itself).
    WIREHUBD=path tests another build (ASan, say)."""

    def __init__(self, tag, commands="ttl=10m ack_timeout=1s max_attempts=3"):
        super().__init__(tag, extra="commands %s;\n" % commands)

    def restart(self):
        if self.proc is not None:
            wh.stop_process(self.proc, signal.SIGTERM, 10)
            self.proc = None
        return self.start()


# ---------------------------------------------------------------- tokens


def service_token(workspace, role="service"):
    return wh.mint("HS256", wh.claims(sub="svc-" + workspace,
                                      workspace=workspace, role=role))


def client_token(workspace, sub, iat=None, ttl=600):
    extra = {} if iat is None else {"iat": iat}
    return wh.mint("HS256", wh.claims(sub=sub, workspace=workspace, ttl=ttl,
                                      **extra))


# ---------------------------------------------------------------- HTTP API


class Api:
    """The HTTP API of one workspace, through nginx, one keep-alive
    connection."""

    def __init__(self, port, token, prefix="/api"):
        self.port = port
        self.token = token
        self.prefix = prefix
        self.conn = None

    def call(self, method, path, body=None, headers=None, raw=None):
        """(status, JSON body or None)."""
        hdrs = {"Authorization": "Bearer " + self.token}
        hdrs.update(headers or {})
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1",
                                                       self.port, timeout=10)
            try:
                self.conn.request(method, self.prefix + path, body=data,
                                  headers=hdrs)
                resp = self.conn.getresponse()
                text = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        try:
            doc = json.loads(text.decode()) if text.strip() else None
        except ValueError:
            doc = text
        return resp.status, doc

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


# ------------------------------------------------------ concurrent POSTs


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _poster(port, token, jobs, results, retry):
    reader = writer = None
    while jobs:
        key, path, body = jobs.pop()
        data = json.dumps(body).encode()
        req = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Bearer %s\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (path, token, len(data))
               ).encode() + data
        t0 = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1",
                                                               port)
            writer.write(req)
            status, text, close = await asyncio.wait_for(
                _read_response(reader), 20)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                ValueError):
            status, text, close = None, b"", True
        results.append((key, status, text, time.monotonic() - t0))
        if status is None or status >= 500:
            if retry:
                jobs.insert(0, (key, path, body))
                await asyncio.sleep(0.05)
        if close and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def post_many(port, token, jobs, conns=32, retry=False, results=None):
    """POST every (key, path, body) of jobs over conns keep-alive
    connections; returns [(key, status, body bytes, seconds)] in
    completion order, appended to results as they come when given (with
    retry, failed and 5xx answers are retried until each job got a
    non-5xx answer)."""
    jobs = list(reversed(jobs))
    results = [] if results is None else results

    async def run():
        await asyncio.gather(*[_poster(port, token, jobs, results, retry)
                               for _ in range(conns)])

    asyncio.run(run())
    return results


# ---------------------------------------------------------------- agents


class _Loop:
    """One asyncio loop in a daemon thread for all agents."""

    loop = None
    lock = threading.Lock()

    @classmethod
    def get(cls):
        with cls.lock:
            if cls.loop is None:
                cls.loop = asyncio.new_event_loop()
                t = threading.Thread(target=cls.loop.run_forever,
                                     daemon=True)
                t.start()
            return cls.loop


def _run(coro, timeout):
    fut = asyncio.run_coroutine_threadsafe(coro, _Loop.get())
    return fut.result(timeout)


class HandshakeRefused(Exception):
    def __init__(self, status):
        super().__init__("handshake refused with %s" % status)
        self.status = status


class Agent:
    """A desktop agent: a python3-websockets client, used synchronously.
    Its messages are JSON objects; a close ends it with .close_code.
    Messages passed over while waiting for a particular one are kept, in
    order, for the next recv_type / quiet."""

    def __init__(self, port, token, path="/ws/"):
        self.port = port
        self.backlog = []
        self.ws = None
        self.close_code = None
        self.close_reason = None
        self.status = None
        uri = "ws://127.0.0.1:%d%s" % (port, path)

        async def connect():
            try:
                return await websockets.connect(
                    uri, extra_headers={"Authorization": "Bearer " + token},
                    open_timeout=5, ping_interval=None, max_size=None)
            except websockets.exceptions.InvalidStatusCode as e:
                raise HandshakeRefused(e.status_code)

        self.ws = _run(connect(), 10)
        self.status = self.recv(5)
        assert self.status["type"] == "connection_status", self.status

    @property
    def session(self):
        return self.status["data"]["session"]

    def recv(self, timeout=5.0):
        """The next message, or None once the server closed."""
        async def get():
            try:
                return await asyncio.wait_for(self.ws.recv(), timeout)
            except websockets.exceptions.ConnectionClosed as e:
                self.close_code = e.rcvd.code if e.rcvd else 1006
                self.close_reason = e.rcvd.reason if e.rcvd else ""
                return None
        text = _run(get(), timeout + 5)
        return None if text is None else json.loads(text)

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
            except (asyncio.TimeoutError, TimeoutError):
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
            except (asyncio.TimeoutError, TimeoutError):
                return got
            if msg is None:
                return got
            got.append(msg)

    def send(self, obj):
        _run(self.ws.send(json.dumps(obj)), 5)

    def result(self, command_id, status="completed", timeout=5.0, **extra):
        """Sends command_result; returns the server's answer (a
        command_result_accepted or an error)."""
        msg = {"type": "command_result", "command_id": command_id,
               "status": status, "ref": "r-" + command_id}
        msg.update(extra)
        self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(0.1, deadline - time.monotonic()))
            assert reply is not None, "closed while awaiting the result ack"
            if reply.get("ref") == msg["ref"]:
                return reply
            self.backlog.append(reply)

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.close_code is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("still open after %.1f s" % timeout)
            try:
                self.recv(left)
            except (asyncio.TimeoutError, TimeoutError):
                pass
        return self.close_code, self.close_reason

    def close(self):
        if self.ws is not None:
            try:
                _run(self.ws.close(), 5)
            except Exception:
                pass
            self.ws = None


def handshake_status(port, token, path="/ws/"):
    """The HTTP status of a WebSocket handshake with this token (101 on
    success; the connection is closed again at once)."""
    resp, sock, _ = wh.http_raw(port, wh.upgrade_request(path=path,
                                                         token=token))
    sock.close()
    return resp.status


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values))) - 1))
    return values[k]
