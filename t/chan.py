"""Helpers for the channel integration tests (issue 3): a wirehubd with its
own history bounds that can be killed and restarted on the same storage,
nginx with a reuseport listener (so connections spread over both
workers), which worker holds a connection, the asyncio WebSocket test
client (Client; the synchronous one is wh.RawWebSocket, the API client
wh.Api), and a fleet of subscriber processes for the heavy fan-out
tests.

Run as a script (`python3 chan.py fleet`) it is one fleet process: see
fleet_main().
"""

import asyncio
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wh  # noqa: E402

HERE = os.path.abspath(__file__)

SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
location = /healthz { wirehub_api; }
"""


def unique(prefix="ws"):
    """A name no other test (or earlier run on kept storage) used."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def token(sub="pc-1", workspace=wh.WORKSPACE, **claims):
    return wh.mint("HS256", wh.claims(sub=sub, workspace=workspace,
                                      ttl=3600, **claims))


def service_token(workspace=wh.WORKSPACE, **claims):
    return token(sub="svc-" + workspace, workspace=workspace,
                 role="service", **claims)


def stats(port, tok):
    """GET /api/stats through nginx on port, as tok: the JSON (200)."""
    api = wh.Api(port, tok)
    try:
        r = api.request("GET", "/api/stats")
        assert r.status == 200, r
        return r.json()
    finally:
        api.close()


# ---------------------------------------------------------------- wirehubd


class Daemon(wh.Wirehubd):
    """wirehubd with chosen history bounds; start() after kill9() or
    terminate() reuses the storage and the socket path."""

    @property
    def pid(self):
        return None if self.proc is None else self.proc.pid

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None

    def terminate(self):
        """SIGTERM (drain and exit); returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.proc = None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


# ---------------------------------------------------------------- nginx


def start_nginx(factory, daemon, http="", server="", tag=None):
    """nginx (2 workers) linked to our daemon; ngx.port is the ordinary
    listener, ngx.rport a reuseport one that spreads connections over
    both workers."""
    rport = wh.free_port()
    http_conf = "wirehub_daemon unix:%s;\n%s\nwirehub_send_limit 32m;\n%s" % (
        daemon.socket, wh.jwt_directives(), http)
    server_conf = "listen 127.0.0.1:%d reuseport;\n%s\n%s" % (
        rport, SERVER, server)
    ngx = factory(http=http_conf, server=server_conf, daemon=False, tag=tag)
    ngx.rport = rport
    assert wh.wait_port(rport, ngx.proc), "reuseport listener is not up"
    ngx.wait_link_up()
    return ngx


def link_up_counts(ngx):
    """How many times each worker pid logged its link to wirehubd up."""
    return Counter(int(pid) for pid in
                   wh.LINK_UP_RE.findall(ngx.read_error_log()))


def wait_relinked(ngx, before, timeout=10.0):
    """Until every current worker logged one more link-up than before."""
    deadline = time.monotonic() + timeout
    while True:
        now = link_up_counts(ngx)
        workers = ngx.workers()
        if workers and all(now[pid] > before.get(pid, 0) for pid in workers):
            return
        if time.monotonic() > deadline:
            raise AssertionError("workers did not relink to wirehubd in "
                                 "%.0f s:\n%s" % (timeout,
                                                  wh.tail(ngx.error_log)))
        time.sleep(0.05)


def wait_health(ngx, status, timeout=5.0):
    """Until /healthz answers status on both workers (asked many times
    through the reuseport listener, so both are asked)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = set(healthz(ngx.rport)[0] for _ in range(8))
        if seen == {status}:
            return
        if time.monotonic() > deadline:
            raise AssertionError("/healthz answered %r, not only %d"
                                 % (seen, status))
        time.sleep(0.05)


def healthz(port):
    api = wh.Api(port, None, timeout=5)
    try:
        resp = api.request("GET", "/healthz")
        return resp.status, resp.header("retry-after"), resp.body
    finally:
        api.close()


def tcp_inodes(port):
    """{client port: socket inode} of the server side of connections to
    127.0.0.1:port."""
    inodes = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.split(":")[1], 16) == port:
                inodes[int(remote.split(":")[1], 16)] = inode
    return inodes


def workers_of(ngx, client_ports, port=None):
    """{client port: nginx worker pid holding that connection}."""
    inodes = tcp_inodes(port or ngx.rport)
    owner = {}
    for pid in ngx.workers():
        fd_dir = "/proc/%d/fd" % pid
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[8:-1]] = pid
    return {p: owner.get(inodes.get(p)) for p in client_ports}


# ---------------------------------------------------------------- HTTP API


def publish_ok(api, channel, data, mtype="reading"):
    resp = api.publish(channel, data, mtype)
    assert resp.status == 202, resp
    doc = resp.json()
    assert set(doc) == {"id", "epoch"}, doc
    return doc["id"], doc["epoch"]


class Publisher(threading.Thread):
    """Publishes {"p": name, "k": k, "ts": t} to a channel through the API
    until stop() (or count messages), retrying through outages; acked is
    [(id, epoch, data)] of every 202."""

    def __init__(self, port, tok, channel, name, count=None, pause=0.0):
        super().__init__(daemon=True)
        self.api = wh.Api(port, tok, timeout=5)
        self.channel = channel
        self.name = name
        self.count = count
        self.pause = pause
        self.acked = []
        self.refused = Counter()
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        k = 0
        try:
            while not self.stopping.is_set():
                if self.count is not None and k >= self.count:
                    return
                data = {"p": self.name, "k": k, "ts": time.time()}
                try:
                    resp = self.api.publish(self.channel, data)
                except (OSError, http.client.HTTPException) as e:
                    self.refused[type(e).__name__] += 1
                    time.sleep(0.02)
                    continue
                if resp.status == 202:
                    doc = resp.json()
                    self.acked.append((doc["id"], doc["epoch"], data))
                    k += 1
                else:
                    assert resp.status == 503, resp
                    assert resp.header("retry-after"), resp
                    assert resp.error_code() == "unavailable", resp
                    self.refused[resp.status] += 1
                    time.sleep(0.02)
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as e:  # reported by join_checked()
            self.error = e
        finally:
            self.api.close()

    def stop(self):
        self.stopping.set()

    def join_checked(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), "publisher %s hangs" % self.name
        if self.error is not None:
            raise self.error


# ---------------------------------------------------------------- WebSocket


def run(coro, timeout=90):
    """Run one async scenario with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client(asyncio.Protocol):
    """The asyncio WebSocket test client (RFC 6455 client side on a bare
    asyncio transport; frames checked by wh.parse_frame, pings answered
    and counted) speaking the Wirehub protocol; every reply is read in
    order.  Text messages go to on_text (by default the queue recv()
    reads; a fleet hands them to its tally instead)."""

    def __init__(self, key):
        loop = asyncio.get_running_loop()
        self.key = key
        self.buf = b""
        self.head = None
        self.parts = []
        self.opcode = None
        self.transport = None
        self.ready = loop.create_future()
        self.lost = loop.create_future()
        self.queue = asyncio.Queue()
        self.on_text = self.queue.put_nowait
        self.closed = None      # the close code once closed (1006: TCP)
        self.close_reason = ""
        self.close_sent = False
        self.server_pings = 0
        self.pongs = {}
        self.status = None
        self.error = None
        self.refs = 0

    @classmethod
    async def open(cls, port, tok, path="/ws/", timeout=10):
        """Connected, connection_status read (.status)."""
        key = wh.ws_key()
        loop = asyncio.get_running_loop()

        async def handshake():
            _, proto = await loop.create_connection(lambda: cls(key),
                                                    "127.0.0.1", port)
            proto.transport.write(wh.upgrade_request(path=path, token=tok,
                                                     key=key))
            await proto.ready
            return proto

        proto = await asyncio.wait_for(handshake(), timeout)
        status = await proto.recv(10)
        assert status["type"] == "connection_status", status
        assert status["data"]["status"] == "connected", status
        proto.status = status
        return proto

    @property
    def close_code(self):
        return self.closed

    @property
    def local_port(self):
        return self.transport.get_extra_info("sockname")[1]

    # asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.closed is None:
            self.closed = 1006
            self.queue.put_nowait(wh.ConnectionClosed("closed 1006", 1006))
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed in handshake"))
        if not self.lost.done():
            self.lost.set_result(True)

    def data_received(self, data):
        self.buf += data
        if self.head is None:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.head = head
            status, _, headers = wh.parse_head(head + b"\r\n\r\n")
            if status != 101 or headers.get("sec-websocket-accept") \
                    != wh.ws_accept(self.key):
                self.ready.set_exception(AssertionError(
                    "handshake refused: %r" % head[:200]))
                self.transport.close()
                return
            self.ready.set_result(True)
        try:
            self.parse()
        except Exception as e:  # a bad frame: recv() raises it
            self.error = e
            self.closed = self.closed or 1006
            self.queue.put_nowait(e)
            self.transport.abort()

    def parse(self):
        buf, pos = self.buf, 0
        while True:
            got = wh.parse_frame(buf, pos)
            if got is None:
                break
            frame, pos = got
            self.frame(frame)
            if self.closed is not None:
                break
        self.buf = buf[pos:]

    def frame(self, frame):
        opcode = frame.opcode
        if opcode == wh.OP_PING:
            self.server_pings += 1
            if not self.close_sent:  # nothing follows a close frame
                self.transport.write(wh.encode_frame(wh.OP_PONG,
                                                     frame.payload))
            return
        if opcode == wh.OP_PONG:
            fut = self.pongs.pop(frame.payload, None)
            if fut is not None and not fut.done():
                fut.set_result(True)
            return
        if opcode == wh.OP_CLOSE:
            self.closed = frame.close_code or 1005
            self.close_reason = frame.payload[2:].decode("utf-8")
            if not self.close_sent:
                self.close_sent = True
                self.transport.write(wh.encode_frame(wh.OP_CLOSE,
                                                     frame.payload[:2]))
            self.queue.put_nowait(wh.ConnectionClosed(
                "closed %d %r" % (self.closed, self.close_reason),
                self.closed, self.close_reason))
            return
        if self.opcode is None:
            assert opcode == wh.OP_TEXT, "expected a text message: %r" \
                % frame
            self.opcode = opcode
        else:
            assert opcode == wh.OP_CONT, frame
        self.parts.append(frame.payload)
        if frame.fin:
            text = b"".join(self.parts).decode("utf-8")
            self.parts = []
            self.opcode = None
            self.on_text(text)

    # the Wirehub protocol

    def next_ref(self):
        self.refs += 1
        return "r%d" % self.refs

    async def send(self, obj):
        self.transport.write(wh.encode_frame(wh.OP_TEXT, json.dumps(obj)))

    async def recv(self, timeout=5.0):
        """The next message; wh.ConnectionClosed once closed."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise NothingReceived("nothing received within %.1f s"
                                  % timeout)
        if isinstance(item, BaseException):
            self.queue.put_nowait(item)
            raise item
        return json.loads(item)

    async def call(self, obj, timeout=5.0):
        """Send with a fresh ref; the next message must be the reply."""
        obj = dict(obj, ref=self.next_ref())
        await self.send(obj)
        reply = await self.recv(timeout)
        assert reply.get("ref") == obj["ref"], (obj, reply)
        return reply

    async def subscribe(self, channel, since=None, timeout=5.0):
        """Subscribe one channel; returns the `subscribed` reply."""
        msg = {"type": "subscribe", "channels": [channel]}
        if since is not None:
            msg["since"] = {channel: since}
        reply = await self.call(msg, timeout)
        assert reply["type"] == "subscribed", reply
        assert reply["channel"] == channel, reply
        return reply

    async def barrier(self, timeout=5.0):
        """Messages that arrive before the pong to a ping sent now."""
        ref = self.next_ref()
        await self.send({"type": "ping", "ref": ref})
        got = []
        while True:
            msg = await self.recv(timeout)
            if msg.get("type") == "pong" and msg.get("ref") == ref:
                return got
            got.append(msg)

    async def messages(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d messages: %r"
                                     % (len(out), n, out[-3:]))
            out.append(await self.recv(left))
        return out

    async def ping(self):
        """A WebSocket ping; returns a future done at its pong."""
        payload = os.urandom(4)
        fut = asyncio.get_running_loop().create_future()
        self.pongs[payload] = fut
        self.transport.write(wh.encode_frame(wh.OP_PING, payload))
        return fut

    async def close(self, timeout=2.0):
        """Close handshake (1000, unless the server closed first), then
        until the server closed TCP (aborted after timeout)."""
        if not self.close_sent and not self.transport.is_closing():
            self.close_sent = True
            self.transport.write(wh.encode_frame(
                wh.OP_CLOSE, wh.close_payload(1000)))
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        except asyncio.TimeoutError:
            self.transport.abort()


class NothingReceived(AssertionError):
    """Client.recv() timed out."""


async def open_on(ngx, tok, pid, tries=40):
    """A client whose connection landed on worker pid."""
    for _ in range(tries):
        client = await Client.open(ngx.rport, tok)
        if workers_of(ngx, [client.local_port])[client.local_port] == pid:
            return client
        await client.close()
    raise AssertionError("no connection landed on worker %d" % pid)


def assert_channel_messages(msgs, channel, ids, epoch=None, mtype=None):
    """msgs are exactly the channel messages with these ids, in order."""
    got = [(m.get("channel"), m.get("id")) for m in msgs]
    assert got == [(channel, i) for i in ids], got
    for m in msgs:
        assert list(m) == ["type", "channel", "id", "epoch", "data",
                           "timestamp"], m
        assert wh.ISO_RE.match(m["timestamp"]), m
        if epoch is not None:
            assert m["epoch"] == epoch, m
        if mtype is not None:
            assert m["type"] == mtype, m


# ---------------------------------------------------------------- fleet


def digest(pairs):
    """One hash over (id, data) pairs, data in a canonical form."""
    h = hashlib.sha256()
    for mid, data in pairs:
        h.update(("%d:%s\n" % (mid, json.dumps(
            data, sort_keys=True, separators=(",", ":")))).encode())
    return h.hexdigest()


class Fleet:
    """Subscriber processes (asyncio, Client): each opens its
    connections, subscribes them to one channel and, once told the last
    id, reports per connection what it received.
    Tokens go in on stdin; results come out on stdout."""

    def __init__(self, port, tokens, channel, procs=2, since=None,
                 collect_latency=False, keep=False):
        self.procs = []
        self.channel = channel
        per = (len(tokens) + procs - 1) // procs
        for i in range(procs):
            part = tokens[i * per:(i + 1) * per]
            if not part:
                continue
            spec = {"port": port, "tokens": part, "channel": channel,
                    "since": since, "latency": collect_latency,
                    "keep": keep}
            proc = subprocess.Popen([sys.executable, HERE, "fleet"],
                                    stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            proc.stdin.write((json.dumps(spec) + "\n").encode())
            proc.stdin.flush()
            self.procs.append(proc)

    def _line(self, proc, word, timeout):
        """The next stdout line of proc, which must start with word."""
        result = {}

        def read():
            result["line"] = proc.stdout.readline()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        line = result.get("line", b"").decode()
        if not line.startswith(word + " "):
            proc.kill()
            err = proc.stderr.read().decode(errors="replace")
            raise AssertionError("fleet process said %r, not %s:\n%s"
                                 % (line[:300], word, err[-3000:]))
        return json.loads(line[len(word) + 1:])

    def wait_ready(self, timeout=60):
        """[{port, subscribed}] of every connection."""
        conns = []
        for proc in self.procs:
            conns += self._line(proc, "READY", timeout)
        return conns

    def finish(self, last_id, timeout=60):
        """Tell every process the last id to wait for; returns the per
        connection reports {port, n, first, last, gaps, dups, epochs,
        types, others, digest, lat, t_last} (and pairs, [[id, data]],
        with keep)."""
        for proc in self.procs:
            proc.stdin.write(("%d\n" % last_id).encode())
            proc.stdin.flush()
        reports = []
        for proc in self.procs:
            reports += self._line(proc, "DONE", timeout)
            proc.wait(10)
        return reports

    def kill(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def fleet_connect(spec, tok):
    client = await Client.open(spec["port"], tok)
    msg = {"type": "subscribe", "channels": [spec["channel"]], "ref": "s"}
    if spec.get("since") is not None:
        msg["since"] = {spec["channel"]: spec["since"]}
    await client.send(msg)
    reply = await client.recv(30)
    assert reply["type"] == "subscribed" and reply["ref"] == "s", reply
    return client, reply


class Tally:
    """What one fleet connection received on its channel."""

    def __init__(self, port, subscribed, want_latency, stop, keep=False):
        self.keep = keep
        self.port = port
        self.subscribed = subscribed
        self.want_latency = want_latency
        self.stop = stop
        self.pairs = []
        self.epochs = set()
        self.types = set()
        self.others = []
        self.lat = []
        self.prev = None
        self.gaps = 0
        self.dups = 0
        self.t_last = None

    def add_text(self, text):
        self.add(json.loads(text))

    def add(self, msg):
        mid = msg.get("id")
        if msg.get("channel") is None or mid is None:
            self.others.append(msg)
            return
        if self.prev is not None:
            if mid <= self.prev:
                self.dups += 1
            elif mid != self.prev + 1:
                self.gaps += 1
        self.prev = mid
        self.t_last = time.time()
        self.pairs.append((mid, msg["data"]))
        self.epochs.add(msg["epoch"])
        self.types.add(msg["type"])
        if self.want_latency and isinstance(msg["data"], dict) \
                and "ts" in msg["data"]:
            self.lat.append((self.t_last - msg["data"]["ts"]) * 1000.0)
        self.stop.check(self)

    def report(self):
        ids = [mid for mid, _ in self.pairs]
        return {"port": self.port, "n": len(ids),
                "first": ids[0] if ids else None,
                "last": ids[-1] if ids else None,
                "gaps": self.gaps, "dups": self.dups,
                "epochs": sorted(self.epochs), "types": sorted(self.types),
                "others": self.others[:5], "digest": digest(self.pairs),
                "lat": self.lat, "t_last": self.t_last,
                "pairs": self.pairs if self.keep else None}


class FleetStop:
    """Set once every connection has seen last_id."""

    def __init__(self, count):
        self.last_id = None
        self.count = count
        self.finished = set()
        self.event = asyncio.Event()

    def check(self, tally):
        if self.last_id is not None and tally.prev is not None \
                and tally.prev >= self.last_id:
            self.finished.add(id(tally))
            if len(self.finished) == self.count:
                self.event.set()


def fleet_start(pairs, tallies):
    """Hands every connection's further messages to its tally."""
    for (client, _), tally in zip(pairs, tallies):
        while not client.queue.empty():
            item = client.queue.get_nowait()
            if not isinstance(item, BaseException):
                tally.add_text(item)
        client.on_text = tally.add_text


async def fleet_run(spec):
    sem = asyncio.Semaphore(50)

    async def one(tok):
        async with sem:
            return await fleet_connect(spec, tok)

    pairs = await asyncio.gather(*[one(t) for t in spec["tokens"]])
    stop = FleetStop(len(pairs))
    tallies = [Tally(c.local_port, r, spec["latency"], stop,
                     spec.get("keep"))
               for c, r in pairs]
    fleet_start(pairs, tallies)
    print("READY " + json.dumps([{"port": t.port, "subscribed": t.subscribed}
                                 for t in tallies]), flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    stop.last_id = int(line)
    for t in tallies:
        stop.check(t)
    try:
        await asyncio.wait_for(stop.event.wait(), 60)
    except asyncio.TimeoutError:
        pass
    for (client, _), t in zip(pairs, tallies):
        if client.closed:
            t.others.append({"closed": client.closed})
    print("DONE " + json.dumps([t.report() for t in tallies]), flush=True)
    await asyncio.gather(*[c.close() for c, _ in pairs],
                         return_exceptions=True)


def fleet_main():
    spec = json.loads(sys.stdin.readline())
    asyncio.run(fleet_run(spec))


def cpu_seconds(pids):
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered)))
                                  - 1))
    return ordered[k]


def record_metric(name, value):
    """Measurements land in t/artifacts/metrics.json (and stdout)."""
    os.makedirs(wh.ARTIFACTS, exist_ok=True)
    path = os.path.join(wh.ARTIFACTS, "metrics.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    doc[name] = value
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    print("METRIC %s = %s" % (name, json.dumps(value)))


if __name__ == "__main__" and sys.argv[1:] == ["fleet"]:
    fleet_main()
