"""A raw Server-Sent Events client over a socket: the status and headers
as sent, then the stream parsed event by event (chunked or not), with
comments kept, so that tests see exactly what the server wrote."""

import base64
import json
import socket
import time


class Refused(AssertionError):
    pass


class Stream:
    def __init__(self, port, path, token=None, last_event_id=None,
                 headers=None, http="1.1", bearer=False, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        if token and not bearer:
            path += ("&" if "?" in path else "?") + "token=" + token
        lines = ["GET %s HTTP/%s" % (path, http), "Host: 127.0.0.1",
                 "Accept: text/event-stream"]
        if token and bearer:
            lines.append("Authorization: Bearer " + token)
        if last_event_id is not None:
            lines.append("Last-Event-ID: " + last_event_id)
        lines += headers or []
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        self.body = b""       # de-chunked stream bytes not parsed yet
        self.chunked = False
        self.ended = False    # the last chunk, or the connection closed
        self.status, self.headers = self._head()
        self.last_id = None

    def _recv(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.ended = True
            return False
        self.buf += data
        return True

    def _head(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._recv(deadline):
                raise AssertionError("no response head: %r" % self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        self.chunked = headers.get("transfer-encoding") == "chunked"
        return status, headers

    def error_body(self, timeout=5):
        """The JSON body of a refusal."""
        n = int(self.headers["content-length"])
        deadline = time.monotonic() + timeout
        while len(self.buf) < n and self._recv(deadline):
            pass
        return json.loads(self.buf[:n])

    def _dechunk(self):
        if not self.chunked:
            self.body += self.buf
            self.buf = b""
            return
        while b"\r\n" in self.buf:
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            assert rest[size:size + 2] == b"\r\n", rest[:size + 2]
            if size == 0:
                self.ended = True
            self.body += rest[:size]
            self.buf = rest[size + 2:]

    def next(self, timeout=10):
        """The next event as a dict (event, data, id, comments) or None
        once the stream ended; raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._dechunk()
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                return self._event(block.decode())
            if self.ended:
                return None
            if not self._recv(deadline) and not self.ended:
                raise AssertionError("no event in %.1f s (have %r)"
                                     % (timeout, self.body))

    def _event(self, block):
        ev = {"event": None, "data": None, "id": None, "comments": []}
        data = []
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comments"].append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field in ("event", "id"):
                ev[field] = value
        if data:
            ev["data"] = json.loads("\n".join(data))
        if ev["id"] is not None:
            self.last_id = ev["id"]
        return ev

    def next_event(self, timeout=10):
        """The next event with data, pings skipped."""
        while True:
            ev = self.next(timeout)
            if ev is None or ev["data"] is not None:
                return ev

    def expect(self, etype, timeout=10):
        ev = self.next_event(timeout)
        assert ev is not None, "stream ended, %s expected" % etype
        assert ev["event"] == etype, ev
        return ev

    def close(self):
        self.sock.close()


def cursor(text):
    """The cursor decoded: {index: (epoch, id)}."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    out = {}
    for part in raw.split(","):
        index, epoch, mid = part.split(":")
        out[int(index)] = (epoch, int(mid))
    return out
