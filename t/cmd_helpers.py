"""Helpers for the command-queue tests (t/test_commands.py): a wirehubd
with its own `commands` settings that can be killed with SIGKILL and
restarted on the same storage, the API client as these tests use it
(wh.Api) and a concurrent POST driver (asyncio, raw HTTP/1.1
keep-alive).  Agents are wh.RawWebSocket.open() connections."""

import asyncio
import json
import signal
import time

import chan
import conftest
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


def module_nginx(tag, daemon, http, server):
    """For a module fixture (yield from): nginx linked to daemon,
    known to the suite's cleanup while it runs."""
    conftest.require_module()
    ngx = wh.Nginx(tag, http=http, server=server,
                   daemon_socket=daemon.socket)
    conftest.RUNNING_NGINX.append(ngx)
    ngx.start()
    yield ngx
    ngx.stop()
    conftest.RUNNING_NGINX.remove(ngx)
    ngx.cleanup()


# ---------------------------------------------------------------- tokens


def service_token(workspace, role="service"):
    return wh.mint("HS256", wh.claims(sub="svc-" + workspace,
                                      workspace=workspace, role=role))


def client_token(workspace, sub, iat=None, ttl=600):
    extra = {} if iat is None else {"iat": iat}
    return wh.mint("HS256", wh.claims(sub=sub, workspace=workspace, ttl=ttl,
                                      **extra))


# ---------------------------------------------------------------- HTTP API


def commands_api(port, token):
    """wh.Api as the command tests use it: paths under /api, a request
    that failed on the wire sent again once."""
    return wh.Api(port, token, prefix="/api", retry=True)


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


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values))) - 1))
    return values[k]
