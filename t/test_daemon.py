"""wirehubd through its link protocol (worker/LINK.md), from Python.

Starts the real build/wirehubd with a temporary storage directory and
socket and talks to it as an nginx worker would.
"""

import gzip
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import time

import pytest

import wh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIREHUBD = os.environ.get("WIREHUBD",
                          os.path.join(ROOT, "build", "wirehubd"))

HELLO, WELCOME = 0x01, 0x81
SUBSCRIBE, SUBSCRIBED = 0x02, 0x82
COUNT = 0x03
PUBLISH, PUBLISHED = 0x04, 0x84
MESSAGE = 0x85
REQUEST, RESPONSE = 0x06, 0x86
REPLAY, REPLAY_ITEM, REPLAY_END = 0x07, 0x87, 0x88
SESSION_OPEN, SESSION_ACCEPT = 0x08, 0x89
SESSION_UPDATE, SESSION_CLOSE = 0x09, 0x0A
PING, PONG = 0x0B, 0x8B
EVENT = 0x0C

# field layouts in wire order: (name, kind); kinds: B H I Q s(tr) b(lob)
LAYOUT = {
    HELLO: [("status", "H"), ("count", "I"), ("name", "s")],
    WELCOME: [("status", "H"), ("name", "s"), ("id2", "Q"), ("flag", "B")],
    SUBSCRIBE: [("workspace", "s"), ("channel", "s"), ("count", "I"),
                ("flag", "B"), ("id", "Q"), ("epoch", "s")],
    SUBSCRIBED: [("workspace", "s"), ("channel", "s"), ("id", "Q"),
                 ("epoch", "s"), ("flag", "B")],
    COUNT: [("workspace", "s"), ("channel", "s"), ("count", "I")],
    PUBLISH: [("req_id", "I"), ("workspace", "s"), ("channel", "s"),
              ("name", "s"), ("body", "b"), ("client_id", "s")],
    PUBLISHED: [("req_id", "I"), ("status", "H"), ("id", "Q"),
                ("epoch", "s"), ("reason", "s")],
    MESSAGE: [("workspace", "s"), ("channel", "s"), ("id", "Q"),
              ("epoch", "s"), ("body", "b"), ("id2", "Q")],
    REQUEST: [("req_id", "I"), ("workspace", "s"), ("flag", "B"),
              ("name", "s"), ("path", "s"), ("query", "s"), ("body", "b"),
              ("client_id", "s")],
    RESPONSE: [("req_id", "I"), ("status", "H"), ("flag", "B"),
               ("client_id", "s"), ("body", "b"), ("count", "I")],
    REPLAY: [("req_id", "I"), ("workspace", "s"), ("channel", "s"),
             ("id", "Q"), ("epoch", "s"), ("id2", "Q"), ("count", "I")],
    REPLAY_ITEM: [("req_id", "I"), ("id", "Q"), ("body", "b")],
    REPLAY_END: [("req_id", "I"), ("flag", "B"), ("id", "Q"),
                 ("epoch", "s"), ("id2", "Q")],
    SESSION_OPEN: [("session", "s"), ("workspace", "s"),
                   ("client_id", "s"), ("client_type", "s"),
                   ("name", "s"), ("id2", "Q"), ("count", "I")],
    SESSION_ACCEPT: [("session", "s"), ("status", "H"), ("count", "I")],
    SESSION_UPDATE: [("session", "s"), ("client_type", "s"),
                     ("name", "s")],
    SESSION_CLOSE: [("session", "s"), ("reason", "s")],
    PING: [("req_id", "I")],
    PONG: [("req_id", "I")],
    EVENT: [("workspace", "s"), ("client_id", "s"), ("session", "s"),
            ("name", "s"), ("body", "b")],
}


def encode(mtype, **fields):
    out = bytearray([mtype])
    for name, kind in LAYOUT[mtype]:
        v = fields.get(name, b"" if kind in "sb" else 0)
        if kind in "sb":
            if isinstance(v, str):
                v = v.encode()
            out += struct.pack(">H" if kind == "s" else ">I", len(v)) + v
        else:
            out += struct.pack(">" + kind, v)
    return struct.pack(">I", len(out)) + bytes(out)


def decode(frame):
    mtype = frame[0]
    pos = 1
    msg = {"type": mtype}
    for name, kind in LAYOUT[mtype]:
        if kind in "sb":
            n = 2 if kind == "s" else 4
            (ln,) = struct.unpack(">H" if n == 2 else ">I",
                                  frame[pos:pos + n])
            pos += n
            msg[name] = frame[pos:pos + ln].decode()
            pos += ln
        else:
            size = struct.calcsize(">" + kind)
            (msg[name],) = struct.unpack(">" + kind, frame[pos:pos + size])
            pos += size
    assert pos == len(frame), "trailing bytes in a daemon frame"
    return msg


class Link:
    """One nginx worker's side of the link."""

    def __init__(self, path, hello=True, name="pytest/1"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.req = 0
        if hello:
            self.send(HELLO, status=wh.LINK_VERSION, count=os.getpid(),
                      name=name)
            self.welcome = self.expect(WELCOME)

    def send(self, mtype, **fields):
        self.sock.sendall(encode(mtype, **fields))

    def recv(self, timeout=10):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                (ln,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + ln:
                    frame = self.buf[4:4 + ln]
                    self.buf = self.buf[4 + ln:]
                    return decode(frame)
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("daemon closed the link")
            self.buf += data

    def expect(self, mtype, timeout=10):
        msg = self.recv(timeout)
        assert msg["type"] == mtype, msg
        return msg

    def closed(self, timeout=5):
        """True if the daemon closes the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def next_req(self):
        self.req += 1
        return self.req

    def publish(self, ws, ch, data, mtype="reading", wait=True):
        rid = self.next_req()
        self.send(PUBLISH, req_id=rid, workspace=ws, channel=ch,
                  name=mtype, body=json.dumps(data), client_id="c1")
        if not wait:
            return rid
        msg = self.expect(PUBLISHED)
        assert msg["req_id"] == rid
        return msg

    def subscribe(self, ws, ch, since=None, epoch="", count=1):
        self.send(SUBSCRIBE, workspace=ws, channel=ch, count=count,
                  flag=0 if since is None else 1, id=since or 0,
                  epoch=epoch)
        return self.expect(SUBSCRIBED)

    def request(self, ws, method, path, query="", body=b"", role=1):
        rid = self.next_req()
        self.send(REQUEST, req_id=rid, workspace=ws, flag=role,
                  name=method, path=path, query=query, body=body)
        msg = self.expect(RESPONSE)
        assert msg["req_id"] == rid
        return msg["status"], json.loads(msg["body"])

    def metrics(self, ws="", method="GET", role=2):
        """GET /metrics as the module's wirehub_metrics location asks
        for it: (status, body text)."""
        rid = self.next_req()
        self.send(REQUEST, req_id=rid, workspace=ws, flag=role,
                  name=method, path="/metrics")
        msg = self.expect(RESPONSE)
        assert msg["req_id"] == rid
        return msg["status"], msg["body"]

    def replay(self, ws, ch, after, epoch, up_to, page_bytes=0):
        rid = self.next_req()
        self.send(REPLAY, req_id=rid, workspace=ws, channel=ch, id=after,
                  epoch=epoch, id2=up_to, count=page_bytes)
        items = []
        while True:
            msg = self.recv()
            assert msg["req_id"] == rid
            if msg["type"] == REPLAY_END:
                return items, msg
            assert msg["type"] == REPLAY_ITEM
            items.append(msg)

    def close(self):
        self.sock.close()


class Daemon:
    def __init__(self, tmp, length=1000, ttl="24h", extra="",
                 map_size="4m", history="", max_map_size=None):
        self.tmp = tmp
        self.sock = str(tmp / "wh.sock")
        self.conf = tmp / "wirehubd.conf"
        self.log = tmp / "wirehubd.log"
        if max_map_size:
            map_size += " max_map_size=" + max_map_size
        self.conf.write_text(
            "listen unix:%s;\nstorage %s map_size=%s;\n"
            "history length=%d ttl=%s %s;\nstats interval=300ms;\n"
            "log %s debug;\n%s" % (self.sock, tmp / "db", map_size, length,
                                   ttl, history, self.log, extra))
        self.proc = None

    def start(self, env=None):
        assert os.path.exists(WIREHUBD), "build/wirehubd missing: make"
        self.stderr = open(self.tmp / "stderr.log", "ab")
        self.proc = subprocess.Popen([WIREHUBD, "-c", str(self.conf)],
                                     stderr=self.stderr, env=env)
        deadline = time.time() + 5
        while time.time() < deadline:
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.sock)
                    s.close()
                    return self
                except OSError:
                    pass
            assert self.proc.poll() is None, self.errtext()
            time.sleep(0.02)
        raise AssertionError("wirehubd did not start")

    def link(self, **kw):
        return Link(self.sock, **kw)

    def errtext(self):
        path = self.tmp / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()
        self.proc = None

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        rc = self.proc.returncode
        self.stderr.close()
        self.proc = None
        # a sanitizer build (WIREHUBD=...) reports here
        err = self.errtext()
        assert "Sanitizer" not in err and "runtime error" not in err, err
        return rc

    def logtext(self):
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path).start()
    yield d
    d.stop()


# bursts past the default publish_rate (2000/s per workspace)
UNLIMITED_RATE = "quota workspace=* publish_rate=unlimited;\n"


@pytest.fixture
def fast_daemon(tmp_path):
    d = Daemon(tmp_path, extra=UNLIMITED_RATE).start()
    yield d
    d.stop()


def check_config(tmp_path, text):
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    r = subprocess.run([WIREHUBD, "-c", str(conf), "-t"],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stderr.strip(), str(conf)


# ---------------------------------------------------------------- config

def test_config_ok(tmp_path):
    rc, err, _ = check_config(tmp_path, (
        "# comment\nlisten unix:/tmp/x.sock;  # trailing comment\n"
        "storage /tmp/wh map_size=1g max_map_size=4g;\n"
        "history length=1000 ttl=24h;\nstats interval=5s;\n"
        "log stderr info;\n"
        "quota workspace=* channels=10000 history_bytes=256m "
        "clients=100000 queued_commands=1000000 publish_rate=2000/s;\n"
        "quota workspace=acme history_bytes=4g;\n"
        "quota workspace=acme channels=unlimited publish_rate=unlimited;\n"))
    assert rc == 0, err
    assert "configuration ok" in err


@pytest.mark.parametrize("text,line,what", [
    ("listen unix:/a;\nfoo bar;\n", 2, 'unknown directive "foo"'),
    ("\n\nlisten tcp:1;\n", 3, "invalid listen address"),
    ("storage /x map_size=12q;\n", 1, "invalid map_size"),
    ("storage /x size=1g;\n", 1, "unknown storage parameter"),
    ("history length=0;\n", 1, "invalid history length"),
    ("history length=10\n    ttl=5x;\n", 1, "invalid history ttl"),
    ("history size=10;\n", 1, "unknown history parameter"),
    ("history ttl=5x;\n", 1, "invalid history ttl"),
    ("stats interval=soon;\n", 1, "invalid stats interval"),
    ("log stderr loud;\n", 1, "unknown log level"),
    ("log relative.log;\n", 1, "neither stderr nor an absolute path"),
    ("listen unix:/a;\nlisten unix:/b;\n", 2, "duplicate directive"),
    ("listen unix:/a\n", 1, "not terminated"),
    ("# x\n;\n", 2, 'unexpected ";"'),
    ("mqtt hots=127.0.0.1;\n", 1, 'unknown mqtt parameter "hots'),
    ("log stderr;\nquota workspace=acme channels=ten;\n", 2,
     'invalid quota value "channels=ten"'),
    ("quota workspace=* history_bytes=4q;\n", 1, "invalid quota value"),
    ("quota workspace=* publish_rate=10/m;\n", 1, "invalid publish_rate"),
    ("quota workspace=* publish_rate=0/s;\n", 1, "invalid publish_rate"),
    ("quota workspace=* clients=5 flavours=3;\n", 1,
     'unknown quota parameter "flavours=3"'),
    ("quota workspace=a/b channels=1;\n", 1, 'invalid quota workspace'),
    ("\nquota channels=1;\n", 2, "quota needs workspace=NAME"),
    ("quota workspace=acme;\n", 1, "at least one limit"),
    ("quota workspace=a workspace=b channels=1;\n", 1, "one workspace="),
    ("engine redis replicas_ack=1 ack_timeout=2s;\n", 1,
     "ack_timeout must be shorter than command_timeout (ack_timeout "
     "2000ms, command_timeout 2000ms)"),
    ("engine redis replicas_ack=1\n    command_timeout=100ms;\n", 1,
     "ack_timeout must be shorter than command_timeout"),
])
def test_config_errors(tmp_path, text, line, what):
    rc, err, conf = check_config(tmp_path, text)
    assert rc != 0
    assert err.startswith("wirehubd: %s:%d: " % (conf, line)), err
    assert what in err


def test_config_missing_file(tmp_path):
    r = subprocess.run([WIREHUBD, "-c", str(tmp_path / "none"), "-t"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "cannot open" in r.stderr


# ---------------------------------------------------------------- link

def test_hello_welcome(daemon):
    a = daemon.link()
    b = daemon.link()
    assert a.welcome["status"] == wh.LINK_VERSION == 4
    assert len(a.welcome["name"]) == 16
    assert a.welcome["name"] == b.welcome["name"]
    assert abs(a.welcome["id2"] / 1000 - time.time()) < 60
    a.send(PING, req_id=77)
    assert a.expect(PONG)["req_id"] == 77
    st = os.stat(daemon.sock)
    assert oct(st.st_mode & 0o777) == "0o660"
    assert "pid %d" % os.getpid() in daemon.logtext()


def test_frame_before_hello_is_refused(daemon):
    a = daemon.link(hello=False)
    a.send(PING, req_id=1)
    assert a.closed()
    a = daemon.link(hello=False)
    a.send(HELLO, status=wh.LINK_VERSION + 1, count=1, name="future")
    assert a.closed()


def test_publish_fans_out_to_subscribers_in_order(daemon):
    a, b, pub = daemon.link(), daemon.link(), daemon.link()
    sa = a.subscribe("acme", "sensors/V1")
    sb = b.subscribe("acme", "sensors/V1", count=3)
    assert sa["id"] == 0 and sa["flag"] == 1 and len(sa["epoch"]) == 8
    assert sb["epoch"] == sa["epoch"]
    for i in range(1, 11):
        r = pub.publish("acme", "sensors/V1", {"moisture": 45.2, "i": i})
        assert r["status"] == 0 and r["id"] == i
        assert r["epoch"] == sa["epoch"]
    for link in (a, b):
        for i in range(1, 11):
            m = link.expect(MESSAGE)
            assert (m["workspace"], m["channel"], m["id"]) == \
                ("acme", "sensors/V1", i)
            body = json.loads(m["body"])
            assert list(body) == ["type", "channel", "id", "epoch", "data",
                                  "timestamp"]
            assert body["type"] == "reading"
            assert body["data"] == {"moisture": 45.2, "i": i}
            assert body["epoch"] == sa["epoch"]
            assert body["timestamp"].endswith("Z")
    # data keeps its own bytes: 45.2 is not rewritten as 45.200000000000003
    assert '"moisture": 45.2,' in m["body"]
    # the publisher did not subscribe: it gets nothing but PUBLISHED
    pub.send(PING, req_id=5)
    assert pub.expect(PONG)["req_id"] == 5


def test_count_zero_unsubscribes(daemon):
    a, pub = daemon.link(), daemon.link()
    a.subscribe("acme", "c")
    a.send(COUNT, workspace="acme", channel="c", count=0)
    pub.publish("acme", "c", 1)
    a.send(PING, req_id=9)
    assert a.expect(PONG)["req_id"] == 9


def test_publish_errors(daemon):
    a = daemon.link()
    rid = a.publish("acme", "x", None, wait=False)
    a.send(PUBLISH, req_id=2, workspace="acme", channel="x", name="t",
           body="{bad json", client_id="")
    a.send(PUBLISH, req_id=3, workspace="acme", channel="../etc",
           name="t", body="1", client_id="")
    a.send(PUBLISH, req_id=4, workspace="acme", channel="$presence",
           name="t", body="1", client_id="")
    a.send(PUBLISH, req_id=5, workspace="ac me", channel="x",
           name="t", body="1", client_id="")
    replies = {}
    for _ in range(5):
        m = a.expect(PUBLISHED)
        replies[m["req_id"]] = m
    assert replies[rid]["status"] == 0
    assert replies[2]["status"] == 400 and "JSON" in replies[2]["reason"]
    assert replies[3]["status"] == 400
    assert replies[4]["status"] == 403
    assert replies[5]["status"] == 400


def test_5000_messages_in_order(fast_daemon):
    daemon = fast_daemon
    subs = [daemon.link(), daemon.link()]
    pub = daemon.link()
    for s in subs:
        s.subscribe("acme", "bulk")
    n = 5000
    for i in range(n):
        pub.send(PUBLISH, req_id=i + 1, workspace="acme", channel="bulk",
                 name="", body='{"i":%d}' % i, client_id="")
    ids = [pub.expect(PUBLISHED)["id"] for _ in range(n)]
    assert ids == list(range(1, n + 1))
    for s in subs:
        got = [s.expect(MESSAGE) for _ in range(n)]
        assert [m["id"] for m in got] == list(range(1, n + 1))
        assert [json.loads(m["body"])["data"]["i"] for m in got] == \
            list(range(n))
        assert json.loads(got[0]["body"])["type"] == "message"


def test_subscribe_since_replays_then_live(daemon):
    pub = daemon.link()
    ep = pub.subscribe("acme", "r")["epoch"]
    for i in range(1, 6):
        pub.publish("acme", "r", i)
        assert pub.expect(MESSAGE)["id"] == i
    a = daemon.link()
    s = a.subscribe("acme", "r", since=2, epoch=ep)
    assert s["flag"] == 1 and s["id"] == 5
    assert [a.expect(MESSAGE)["id"] for _ in range(3)] == [3, 4, 5]
    pub.publish("acme", "r", 6)
    assert a.expect(MESSAGE)["id"] == 6
    # a wrong epoch: not recovered, no replay
    b = daemon.link()
    s = b.subscribe("acme", "r", since=2, epoch="zzzzzzzz")
    assert s["flag"] == 0 and s["id"] == 6
    b.send(PING, req_id=1)
    assert b.expect(PONG)["type"] == PONG
    # up to date: recovered, nothing to replay
    c = daemon.link()
    s = c.subscribe("acme", "r", since=6, epoch=ep)
    assert s["flag"] == 1
    c.send(PING, req_id=1)
    assert c.expect(PONG)["type"] == PONG


def test_replay_ranges(daemon):
    a = daemon.link()
    ep = a.subscribe("acme", "rr")["epoch"]
    for i in range(1, 21):
        a.publish("acme", "rr", {"n": i})
        a.expect(MESSAGE)
    items, end = a.replay("acme", "rr", 5, ep, 9)
    assert [m["id"] for m in items] == [6, 7, 8, 9]
    assert json.loads(items[0]["body"])["data"] == {"n": 6}
    assert end["flag"] == 1 and end["id"] == 20 and end["epoch"] == ep
    items, end = a.replay("acme", "rr", 18, ep, 1000)
    assert [m["id"] for m in items] == [19, 20] and end["flag"] == 1
    items, end = a.replay("acme", "rr", 20, ep, 25)
    assert items == [] and end["flag"] == 1
    items, end = a.replay("acme", "rr", 5, "otherepo", 9)
    assert items == [] and end["flag"] == 0
    items, end = a.replay("acme", "nochannel", 0, "", 9)
    assert items == [] and end["id"] == 0


def test_replay_goes_in_pages(tmp_path):
    """At most replay_page messages, and the byte budget asked for (but
    one message at least); "more" (bit 1) and the last id sent say where
    the next page starts."""
    d = Daemon(tmp_path, history="replay_page=4").start()
    try:
        a = d.link()
        ep = a.subscribe("acme", "pg")["epoch"]
        for i in range(1, 11):
            a.publish("acme", "pg", {"n": i, "pad": "p" * 100})
            a.expect(MESSAGE)
        pages = []
        after = 0
        while True:
            items, end = a.replay("acme", "pg", after, ep, 10)
            pages.append(([m["id"] for m in items], end["flag"],
                          end["id2"]))
            assert end["id"] == 10 and end["epoch"] == ep
            if not end["flag"] & 2:
                break
            after = end["id2"]
        assert pages == [([1, 2, 3, 4], 3, 4), ([5, 6, 7, 8], 3, 8),
                         ([9, 10], 1, 10)]
        # a budget of 300 bytes: two ~170-byte messages do not fit
        items, end = a.replay("acme", "pg", 0, ep, 10, page_bytes=300)
        assert [m["id"] for m in items] == [1] and end["flag"] == 3
        assert end["id2"] == 1
        items, end = a.replay("acme", "pg", 0, ep, 10, page_bytes=1)
        assert [m["id"] for m in items] == [1] and end["id2"] == 1
        # a bounded range ends without "more"
        items, end = a.replay("acme", "pg", 2, ep, 4, page_bytes=1 << 20)
        assert [m["id"] for m in items] == [3, 4] and end["flag"] == 1
    finally:
        d.stop()


def test_peer_that_does_not_read_is_paused_not_dropped(tmp_path):
    """A peer asks for 40 replays of 3 MiB (120 MiB, past the 64 MiB
    bound on its output) without reading: the daemon stops reading its
    requests while its output is high instead of dropping it, stays
    responsive to another peer, and answers every request once the peer
    reads."""
    d = Daemon(tmp_path, map_size="64m").start()
    try:
        a = d.link()
        ep = a.subscribe("acme", "big")["epoch"]
        for i in range(1, 101):
            a.publish("acme", "big", {"n": i, "pad": "b" * 30000})
            a.expect(MESSAGE)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        for rid in range(1000, 1040):
            a.send(REPLAY, req_id=rid, workspace="acme", channel="big",
                   id=0, epoch=ep, id2=100, count=4 << 20)
        b = d.link(name="pytest/2")
        for i in range(3):
            b.send(PING, req_id=i)
            assert b.expect(PONG, timeout=5)["req_id"] == i
        ends = {}
        items = 0
        while len(ends) < 40:
            msg = a.recv(timeout=20)
            if msg["type"] == REPLAY_ITEM:
                items += 1
            elif msg["type"] == REPLAY_END:
                ends[msg["req_id"]] = (msg["flag"], msg["id2"])
        assert items == 40 * 100
        assert set(ends.values()) == {(1, 100)}
        status, text = b.metrics()
        assert status == 200
        assert sample(text, "wirehubd_link_pauses_total") >= 1
        assert sample(text, "wirehubd_link_peers") == 2
        assert "closed" not in "".join(
            line for line in d.log.read_text().splitlines()
            if "(pytest/1," in line)
    finally:
        d.stop()


def test_replay_not_recovered_after_trim(tmp_path):
    d = Daemon(tmp_path, length=10).start()
    try:
        a = d.link()
        ep = a.subscribe("acme", "t")["epoch"]
        for i in range(25):
            a.publish("acme", "t", i)
            a.expect(MESSAGE)
        items, end = a.replay("acme", "t", 5, ep, 25)
        assert end["flag"] == 0 and items == []
        items, end = a.replay("acme", "t", 15, ep, 25)
        assert end["flag"] == 1
        assert [m["id"] for m in items] == list(range(16, 26))
        b = d.link()
        s = b.subscribe("acme", "t", since=3, epoch=ep)
        assert s["flag"] == 0 and s["id"] == 25
        status, body = b.request("acme", "GET", "/channels/t/messages")
        assert [m["id"] for m in body["items"]] == list(range(16, 26))
    finally:
        d.stop()


def test_history_ttl(tmp_path):
    d = Daemon(tmp_path, ttl="1s").start()
    try:
        a = d.link()
        ep = a.subscribe("acme", "ttl")["epoch"]
        a.publish("acme", "ttl", 1)
        a.expect(MESSAGE)
        time.sleep(1.3)
        a.publish("acme", "ttl", 2)
        a.expect(MESSAGE)
        status, body = a.request("acme", "GET", "/channels/ttl/messages")
        assert [m["id"] for m in body["items"]] == [2]
        items, end = a.replay("acme", "ttl", 0, ep, 2)
        assert end["flag"] == 0
    finally:
        d.stop()


def test_api_history_and_publish(daemon):
    a = daemon.link()
    a.subscribe("acme", "sensors/V1")
    status, body = a.request(
        "acme", "POST", "/channels/sensors/V1/messages",
        body=b'{"type":"sensor_reading","data":{"moisture":45.20}}')
    assert status == 202 and body["id"] == 1 and len(body["epoch"]) == 8
    m = a.expect(MESSAGE)
    assert m["id"] == 1
    assert '"data":{"moisture":45.20}' in m["body"]
    for i in range(2, 8):
        a.publish("acme", "sensors/V1", i)
        a.expect(MESSAGE)
    status, body = a.request("acme", "GET", "/channels/sensors/V1/messages",
                             query="since=2&limit=3")
    assert status == 200
    assert [m["id"] for m in body["items"]] == [3, 4, 5]
    assert body["next"] == "5"
    status, body = a.request("acme", "GET", "/channels/sensors/V1/messages",
                             query="since=" + "5")
    assert [m["id"] for m in body["items"]] == [6, 7]
    assert body["next"] is None
    assert body["items"][0]["channel"] == "sensors/V1"
    status, body = a.request("acme", "GET", "/channels/none/messages")
    assert status == 200 and body == {"items": [], "next": None}


@pytest.mark.parametrize("method,path,query,body,status,code", [
    ("POST", "/channels/a/messages", "", b"[1]", 400, "bad_request"),
    ("POST", "/channels/a/messages", "", b'{"type":"t"}', 400,
     "bad_request"),
    ("POST", "/channels/a/messages", "", b'{"data":1,"data":2}', 400,
     "bad_request"),
    ("POST", "/channels/$presence/messages", "", b'{"data":1}', 403,
     "forbidden"),
    ("POST", "/channels/../x/messages", "", b'{"data":1}', 400,
     "bad_channel"),
    ("GET", "/channels/%2e%2e/messages", "", b"", 400, "bad_channel"),
    ("GET", "/channels/a/#/messages", "", b"", 400, "bad_channel"),
    ("GET", "/channels/a+/messages", "", b"", 400, "bad_channel"),
    ("GET", "/channels/a\0b/messages", "", b"", 400, "bad_channel"),
    ("GET", "/channels/" + "x" * 201 + "/messages", "", b"", 400,
     "bad_channel"),
    ("GET", "/channels/a/messages", "limit=0", b"", 400, "bad_request"),
    ("GET", "/channels/a/messages", "since=-1", b"", 400, "bad_request"),
    ("GET", "/nothing", "", b"", 404, "not_found"),
    ("DELETE", "/channels", "", b"", 404, "not_found"),
])
def test_api_errors(daemon, method, path, query, body, status, code):
    a = daemon.link()
    st, res = a.request("acme", method, path, query=query, body=body)
    assert st == status
    assert res["error"]["code"] == code and res["error"]["message"]


def test_api_needs_service_role(daemon):
    a = daemon.link()
    st, res = a.request("acme", "GET", "/channels", role=0)
    assert st == 403 and res["error"]["code"] == "forbidden"


def sample(text, series):
    """The value of one series (name and labels as written) of a
    Prometheus text body."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.rsplit(" ", 1)[0] == series]
    assert len(values) == 1, (series, text)
    return values[0]


@pytest.mark.parametrize("ws,method,role,status,code", [
    ("", "GET", 1, 400, "bad_request"),         # a service: a workspace's
    ("", "GET", 0, 403, "forbidden"),
    ("acme", "GET", 2, 404, "not_found"),       # not a workspace's route
    ("", "POST", 2, 400, "bad_request"),
])
def test_metrics_only_for_admin_without_workspace(daemon, ws, method, role,
                                                  status, code):
    a = daemon.link()
    st, body = a.metrics(ws, method, role)
    assert st == status
    assert json.loads(body)["error"]["code"] == code


def test_metrics_follow_the_daemon(daemon):
    """The text wirehubd answers the module's scrape with: every family
    has HELP and TYPE, and the figures follow publishes, subscribers and
    sessions."""
    a = daemon.link()
    status, text = a.metrics()
    assert status == 200
    assert text.startswith("# HELP wirehubd_build_info ")
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert "# TYPE %s " % name in text, line
    assert sample(text, "wirehubd_history_messages") == 0
    assert sample(text, "wirehubd_link_peers") == 1

    b = daemon.link(name="pytest/2")
    b.subscribe("acme", "m", count=3)
    for i in range(4):
        a.publish("acme", "m", {"i": i})
    status, text = a.metrics()
    assert sample(text, "wirehubd_history_messages") == 4
    assert sample(text, "wirehubd_history_channels") == 1
    assert sample(text, "wirehubd_messages_published_total") == 4
    assert sample(text, "wirehubd_messages_fanned_out_total") == 4
    assert sample(text, "wirehubd_link_peers") == 2
    assert sample(text, "wirehubd_sessions") == 0

    a.send(SESSION_OPEN, session="s1", workspace="acme", client_id="pc-1",
           client_type="agent", name="pc", id2=0, count=5)
    assert a.expect(SESSION_ACCEPT)["status"] == 0
    status, text = a.metrics()
    assert sample(text, "wirehubd_sessions") == 1
    assert sample(text, "wirehubd_clients_online") == 1
    assert sample(text, "wirehubd_clients_registered") == 1


def test_api_channels_list_and_stats(daemon):
    a, b = daemon.link(), daemon.link()
    a.subscribe("acme", "one", count=2)
    b.subscribe("acme", "one", count=3)
    a.publish("acme", "two", 1)
    a.publish("other", "secret", 1)
    st, res = a.request("acme", "GET", "/channels")
    assert st == 200
    items = {i["channel"]: i for i in res["items"]}
    assert set(items) == {"one", "two"}
    assert items["one"]["subscribers"] == 5
    assert items["two"]["last_id"] == 1 and items["two"]["subscribers"] == 0
    st, res = a.request("acme", "GET", "/channels", query="limit=1")
    assert len(res["items"]) == 1 and res["next"] == "one"
    st, res = a.request("acme", "GET", "/channels",
                        query="limit=1&cursor=one")
    assert [i["channel"] for i in res["items"]] == ["two"]
    a.send(SESSION_OPEN, session="s1", workspace="acme", client_id="pc-7",
           client_type="gui", name="Desk", id2=1)
    a.expect(SESSION_ACCEPT)
    st, res = a.request("acme", "GET", "/stats")
    assert st == 200
    assert res["connections"] == 1 and res["by_client_type"] == {"gui": 1}
    # one, two and $presence (the session published client_connected)
    assert res["channels"] == 3 and res["subscriptions"] == 5
    assert res["links"] == 2 and res["workspace"] == "acme"


def test_workspace_isolation(daemon):
    a, b = daemon.link(), daemon.link()
    ea = a.subscribe("ws-a", "dash")["epoch"]
    eb = b.subscribe("ws-b", "dash")["epoch"]
    assert ea != eb
    a.publish("ws-a", "dash", "for a")
    b.publish("ws-b", "dash", "for b")
    ma, mb = a.expect(MESSAGE), b.expect(MESSAGE)
    assert ma["workspace"] == "ws-a" and json.loads(ma["body"])["data"] == \
        "for a"
    assert mb["workspace"] == "ws-b" and json.loads(mb["body"])["data"] == \
        "for b"
    assert ma["id"] == mb["id"] == 1
    for link in (a, b):
        link.send(PING, req_id=1)
        assert link.expect(PONG)["type"] == PONG
    st, res = a.request("ws-a", "GET", "/channels/dash/messages")
    assert [json.loads(json.dumps(m))["data"] for m in res["items"]] == \
        ["for a"]
    st, res = b.request("ws-b", "GET", "/channels")
    assert [i["channel"] for i in res["items"]] == ["dash"]
    # a workspace that is a prefix of another sees nothing of it
    st, res = a.request("ws", "GET", "/channels")
    assert res["items"] == []


def test_sessions_and_presence(daemon):
    w = daemon.link()
    w.subscribe("acme", "$presence")
    time.sleep(2.1)      # past the resume window of the link
    w.send(SESSION_OPEN, session="s-1", workspace="acme", client_id="pc-7",
           client_type="", name="", id2=123)
    acc = w.expect(SESSION_ACCEPT)
    assert acc["session"] == "s-1" and acc["status"] == 0
    assert acc["count"] == 1
    ev = json.loads(w.expect(MESSAGE)["body"])
    assert ev["type"] == "client_connected"
    assert ev["data"] == {"client_id": "pc-7", "client_type": "",
                          "session": "s-1", "reason": "connected"}
    w.send(SESSION_UPDATE, session="s-1", client_type="gui", name="Desk 4")
    ev = json.loads(w.expect(MESSAGE)["body"])
    assert ev["type"] == "client_updated"
    assert ev["data"]["client_type"] == "gui"
    assert ev["data"]["client_name"] == "Desk 4"
    w.send(SESSION_CLOSE, session="s-1", reason="client_closed")
    ev = json.loads(w.expect(MESSAGE)["body"])
    assert ev["type"] == "client_disconnected"
    assert ev["data"]["reason"] == "client_closed"
    assert ev["data"]["client_type"] == "gui"
    # sessions of a lost link are closed with reason link_lost
    other = daemon.link()
    other.send(SESSION_OPEN, session="s-9", workspace="acme",
               client_id="dev-1", client_type="agent", name="", id2=1)
    assert other.expect(SESSION_ACCEPT)["count"] == 1
    ev = json.loads(w.expect(MESSAGE)["body"])
    assert ev["data"]["reason"] == "resumed"    # within 2 s of HELLO
    other.close()
    ev = json.loads(w.expect(MESSAGE)["body"])
    assert ev["type"] == "client_disconnected"
    assert ev["data"]["reason"] == "link_lost"
    assert ev["data"]["client_id"] == "dev-1"


def test_stats_channel(daemon):
    w = daemon.link()
    w.send(SESSION_OPEN, session="s", workspace="acme", client_id="a",
           client_type="gui", name="", id2=1)
    w.expect(SESSION_ACCEPT)
    w.subscribe("acme", "$stats")
    m = w.expect(MESSAGE, timeout=3)
    body = json.loads(m["body"])
    assert body["type"] == "stats_update" and body["channel"] == "$stats"
    assert body["data"]["connections"] == 1
    assert body["data"]["by_client_type"] == {"gui": 1}
    assert body["data"]["subscriptions"] == 1
    # no subscriber: no stats_update history in another workspace
    q = daemon.link()
    q.send(SESSION_OPEN, session="s2", workspace="quiet", client_id="a",
           client_type="gui", name="", id2=1)
    q.expect(SESSION_ACCEPT)
    time.sleep(0.8)
    st, res = q.request("quiet", "GET", "/channels/$stats/messages")
    assert res["items"] == []
    st, res = q.request("acme", "GET", "/channels/$stats/messages")
    assert len(res["items"]) >= 2


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x00",                          # L = 0
    b"\x01\x00\x00\x01" + b"x" * 16,              # L = 16 MiB + 1
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x01\x7f",                      # unknown type
    b"\x00\x00\x00\x03\x0b\x00\x00",              # truncated PING
    b"\x00\x00\x00\x06\x0b\x00\x00\x00\x01\x00",  # trailing byte
    b"\x00\x00\x00\x05\x85\x00\x00\x00\x00",      # a daemon-only type
])
def test_garbage_closes_only_that_peer(daemon, garbage):
    good = daemon.link()
    good.subscribe("acme", "g")
    bad = daemon.link()
    bad.sock.sendall(garbage)
    assert bad.closed()
    good.publish("acme", "g", 1)
    assert good.expect(MESSAGE)["id"] == 1


def test_slow_peer_is_dropped_past_64_mib(tmp_path):
    d = Daemon(tmp_path, length=10).start()
    try:
        slow = d.link()
        slow.subscribe("acme", "flood")
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fast = d.link()
        fast.subscribe("acme", "flood")
        blob = json.dumps("z" * 200000)
        n = 400                                  # ~80 MB to each peer
        for i in range(n):
            fast.send(PUBLISH, req_id=i + 1, workspace="acme",
                      channel="flood", name="", body=blob, client_id="")
            while True:
                m = fast.recv()
                if m["type"] == MESSAGE:
                    assert m["id"] == i + 1
                    break
                assert m["type"] == PUBLISHED and m["status"] == 0
        assert "output bound exceeded" in d.logtext()
        assert slow.closed(timeout=1)
    finally:
        d.stop()


def test_invalid_subscribe_is_a_protocol_error(daemon):
    bad = daemon.link()
    bad.send(SUBSCRIBE, workspace="acme", channel="a/../b", count=1)
    assert bad.closed()
    bad = daemon.link()
    bad.send(SUBSCRIBE, workspace="ac/me", channel="a", count=1)
    assert bad.closed()


def test_raw_garbage_stream(daemon):
    good = daemon.link()
    for seed in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.sock)
        s.sendall(os.urandom(256 + seed * 97))
        s.close()
    good.send(PING, req_id=3)
    assert good.expect(PONG)["req_id"] == 3


def test_sigterm_exits_zero(daemon):
    a = daemon.link()
    a.publish("acme", "z", 1)
    assert daemon.stop(signal.SIGTERM) == 0
    assert a.closed()
    assert not os.path.exists(daemon.sock)


def test_sighup_reopens_log(daemon):
    os.rename(daemon.log, str(daemon.log) + ".1")
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while not daemon.log.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert "log reopened" in daemon.log.read_text()


def test_kill9_restart_keeps_acknowledged(tmp_path):
    d = Daemon(tmp_path, length=5000).start()
    try:
        kill9_restart_keeps_acknowledged(d)
    finally:
        d.stop()


def kill9_restart_keeps_acknowledged(d):
    a = d.link()
    epoch = a.subscribe("acme", "k")["epoch"]
    # 2,000 publishes in flight; kill -9 once 500 are acknowledged
    a.sock.sendall(b"".join(
        encode(PUBLISH, req_id=i + 1, workspace="acme", channel="k",
               name="", body=str(i), client_id="") for i in range(2000)))
    acked = []
    while len(acked) < 500:
        m = a.recv()
        if m["type"] == PUBLISHED:
            assert m["status"] == 0
            acked.append(m["id"])
    d.kill()
    d.start()
    b = d.link()
    s = b.subscribe("acme", "k", since=0, epoch=epoch)
    assert s["epoch"] == epoch and s["id"] >= max(acked)
    assert s["flag"] == 1
    got = [b.expect(MESSAGE)["id"] for _ in range(s["id"])]
    assert got == list(range(1, s["id"] + 1))
    assert set(acked) <= set(got)
    r = b.publish("acme", "k", "after")
    assert r["id"] == s["id"] + 1 and r["epoch"] == epoch


def test_fresh_storage_gives_new_epochs(tmp_path):
    epochs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        d = Daemon(tmp_path / name).start()
        try:
            epochs.append(d.link().subscribe("acme", "e")["epoch"])
        finally:
            d.stop()
    assert epochs[0] != epochs[1]


def test_map_full_grows(tmp_path):
    d = Daemon(tmp_path, length=100000).start()
    try:
        a = d.link()
        blob = "x" * 60000
        for i in range(200):                  # ~12 MB into a 4 MB map
            r = a.publish("acme", "big", blob)
            assert r["status"] == 0, r
        assert "map grown" in d.logtext()
    finally:
        d.stop()


def test_full_disk_answers_503_and_stays_up(tmp_path):
    """A disk that fills (a 6 MB tmpfs, the map free to grow to 64 MB) is
    a storage error: the publish that meets it answers 503, wirehubd
    stays up and still serves what it stored.  History is written
    through its map: without the disk it allocates ahead of its pages, it
    would die of SIGBUS at that point instead (a page fault with no block
    to give)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m",
                              "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % mounted.stderr)
    try:
        d = Daemon(disk, length=100000, max_map_size="64m").start()
        try:
            a = d.link()
            stored = []
            for _ in range(400):
                r = a.publish("acme", "big", "x" * 60000)
                if r["status"] != 0:
                    break
                stored.append(r["id"])
                epoch = r["epoch"]
            assert r["status"] == 503, r
            assert len(stored) >= 50, len(stored)
            assert d.proc.poll() is None
            r = a.publish("acme", "small", "y")
            assert r["status"] in (0, 503), r
            assert d.proc.poll() is None
            b = d.link()
            s = b.subscribe("acme", "big", since=0, epoch=epoch)
            assert s["id"] == stored[-1] and s["flag"] == 1, s
            got = [b.expect(MESSAGE)["id"] for _ in range(s["id"])]
            assert got == stored
        finally:
            d.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_map_full_at_limit_is_507(tmp_path):
    d = Daemon(tmp_path, length=100000, map_size="2m",
               max_map_size="2m").start()
    try:
        a = d.link()
        blob = "y" * 100000
        statuses = [a.publish("acme", "big", blob)["status"]
                    for _ in range(40)]
        assert 507 in statuses
        assert statuses[0] == 0
        st, res = a.request("acme", "POST", "/channels/big/messages",
                            body=b'{"data":"%s"}' % blob.encode())
        assert st == 507
        assert res["error"]["code"] == "insufficient_storage"
        status, text = a.metrics()
        assert sample(text, 'wirehubd_engine_state{engine="lmdb",'
                            'state="full"}') == 1
        assert sample(text, 'wirehubd_engine_state{engine="lmdb",'
                            'state="ok"}') == 0
        assert sample(text, 'wirehubd_lmdb_map_max_bytes'
                            '{space="history"}') == 2 << 20
        # still serving
        a.send(PING, req_id=1)
        assert a.expect(PONG)["req_id"] == 1
    finally:
        d.stop()



# ------------------------------------------- storage layout, upgrade

# data.mdb as the one-environment layout (before the split into state/
# and history/) left it: client dev-1 in acme, one command for it, three
# messages on sensors/t1 (epoch o886mfgp) and one on $commands
OLD_LAYOUT = os.path.join(ROOT, "t", "data", "old-layout.mdb.gz")
OLD_COMMAND = "c-1a2455d23b3be04a1a5ba"


def old_layout_store(tmp_path):
    db = tmp_path / "db"
    db.mkdir(mode=0o750)
    with gzip.open(OLD_LAYOUT, "rb") as f:
        (db / "data.mdb").write_bytes(f.read())
    os.chmod(db / "data.mdb", 0o640)
    return db


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def check_modes(db, root=True):
    """Only wirehubd reads its store: every directory under db (and db
    itself when wirehubd made it) is 0700, every file 0600."""
    seen = 0
    for top, dirs, files in os.walk(db):
        if top != str(db) or root:
            assert mode(top) == 0o700, top
        for f in files:
            assert mode(os.path.join(top, f)) == 0o600, (top, f)
            seen += 1
    return seen


def check_new_layout(db):
    for env in ("state", "history"):
        assert mode(db / env) == 0o700
        for f in ("data.mdb", "lock.mdb"):
            assert mode(db / env / f) == 0o600, (env, f)
    check_modes(db, root=False)
    assert not (db / "data.mdb").exists()
    assert not (db / "lock.mdb").exists()
    assert not (db / "upgrade.tmp").exists()


def test_store_files_are_private(tmp_path):
    # modes wirehubd asks for, not the umask's leniency
    old = os.umask(0o002)
    try:
        d = Daemon(tmp_path).start()
    finally:
        os.umask(old)
    try:
        a = d.link()
        assert a.publish("acme", "c", {"v": 1})["status"] == 0
        st, _ = a.request("acme", "POST", "/clients",
                          body=b'{"id":"d1","name":"d","client_type":"t"}')
        assert st == 201
        st, _ = a.request("acme", "POST", "/clients/d1/commands",
                          body=b'{"command":"ping"}')
        assert st == 202
    finally:
        assert d.stop() == 0
    # state/ and history/, each with data.mdb and lock.mdb
    assert check_modes(tmp_path / "db") == 4


def test_old_layout_is_upgraded_in_place(tmp_path):
    db = old_layout_store(tmp_path)
    d = Daemon(tmp_path, ttl="0").start()
    try:
        a = d.link()
        st, cl = a.request("acme", "GET", "/clients/dev-1")
        assert st == 200 and cl["name"] == "Device one", cl
        st, cmd = a.request("acme", "GET", "/commands/" + OLD_COMMAND)
        assert st == 200 and cmd["command"] == "reboot", cmd
        assert cmd["payload"] == {"at": "now"}
        st, res = a.request("acme", "GET", "/channels/sensors/t1/messages")
        assert st == 200
        assert [m["data"] for m in res["items"]] == [{"v": 0}, {"v": 1},
                                                      {"v": 2}]
        r = a.publish("acme", "sensors/t1", {"v": 3})
        assert r["status"] == 0 and r["id"] == 4
        assert r["epoch"] == "o886mfgp"
        # the command goes on in the new store
        st, res = a.request("acme", "POST", "/clients/dev-1/commands",
                            body=b'{"command":"ping"}')
        assert st == 202, res
    finally:
        assert d.stop() == 0
    check_new_layout(db)
    # the two environments and the old file kept aside
    assert check_modes(db, root=False) == 5
    assert mode(db / "data.mdb.pre-split") == 0o600
    log = d.logtext()
    assert "one-environment layout; upgrading" in log
    assert "copied 5 state and 6 history records" in log

    # once only: the next start opens the new layout as it is
    d.start()
    try:
        a = d.link()
        st, res = a.request("acme", "GET", "/clients/dev-1/commands")
        assert [c["command"] for c in res["items"]] == ["reboot", "ping"]
        assert a.publish("acme", "sensors/t1", {"v": 4})["id"] == 5
    finally:
        d.stop()
    assert d.logtext().count("upgrading it") == 1


def test_old_layout_beside_a_kept_copy_is_refused(tmp_path):
    db = old_layout_store(tmp_path)
    (db / "data.mdb.pre-split").write_bytes(b"an earlier upgrade's copy")
    d = Daemon(tmp_path)
    p = subprocess.run([WIREHUBD, "-c", str(d.conf)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert "data.mdb.pre-split: move one of them away" in p.stderr, \
        p.stderr
    assert (db / "data.mdb").exists() and not (db / "state").exists()


def test_kill9_right_after_202_keeps_the_command(tmp_path):
    """The command's 202 comes after its synced commit in state/, so a
    SIGKILL right after it loses nothing (a power cut would not either:
    state/ has no MDB_NOSYNC)."""
    d = Daemon(tmp_path).start()
    try:
        a = d.link()
        st, res = a.request("acme", "POST", "/clients",
                            body=b'{"id":"dev-9","name":"n","client_type":"t"}')
        assert st == 201, res
        ids = []
        for i in range(20):
            # a publish (history/) and a command (state/) in one turn
            a.publish("acme", "k", str(i), wait=False)
            rid = a.next_req()
            a.send(REQUEST, req_id=rid, workspace="acme", flag=1,
                   name="POST", path="/clients/dev-9/commands", query="",
                   body=b'{"command":"c%d"}' % i)
            got = {}
            for _ in range(2):
                m = a.recv()
                got[m["type"]] = m
            assert got[PUBLISHED]["status"] == 0
            assert got[RESPONSE]["status"] == 202, got
            ids.append(json.loads(got[RESPONSE]["body"])["command_id"])
        d.kill()
        d.start()
        b = d.link()
        st, res = b.request("acme", "GET", "/clients/dev-9/commands",
                            query="limit=100")
        assert st == 200
        assert [c["command_id"] for c in res["items"]] == ids
    finally:
        d.stop()
    check_new_layout(tmp_path / "db")


def count_frames(sock, n, timeout=30):
    """Reads until n frames arrived, looking at length prefixes only."""
    sock.settimeout(timeout)
    buf = b""
    seen = 0
    while seen < n:
        data = sock.recv(1 << 20)
        assert data, "link closed"
        buf += data
        pos = 0
        while len(buf) - pos >= 4:
            (ln,) = struct.unpack_from(">I", buf, pos)
            if len(buf) - pos < 4 + ln:
                break
            pos += 4 + ln
            seen += 1
        buf = buf[pos:]
    assert seen == n and buf == b""


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.heavy
def test_measure_throughput(fast_daemon):
    """Publishes/s through one link (group commit) and fan-out MESSAGE
    frames/s to 2 peers; printed for the report, not a timed target."""
    daemon = fast_daemon
    subs = [daemon.link(), daemon.link()]
    pub = daemon.link()
    for s in subs:
        s.subscribe("acme", "perf")
    n = 50000
    payload = encode(PUBLISH, req_id=1, workspace="acme", channel="perf",
                     name="reading", body='{"sensor_id":"V1","m":45.2}',
                     client_id="")
    cpu0 = cpu_seconds(daemon.proc.pid)
    t0 = time.time()
    pub.sock.sendall(payload * n)
    count_frames(pub.sock, n)
    t1 = time.time()
    for s in subs:
        count_frames(s.sock, n)
    t2 = time.time()
    cpu = cpu_seconds(daemon.proc.pid) - cpu0
    print("\npublish: %d msgs acknowledged in %.3f s = %.0f msg/s; "
          "%d MESSAGE frames to 2 peers done in %.3f s = %.0f frames/s; "
          "daemon CPU %.2f s = %.1f us per publish incl. its fan-out" %
          (n, t1 - t0, n / (t1 - t0), 2 * n, t2 - t0, 2 * n / (t2 - t0),
           cpu, cpu * 1e6 / n))
    st, res = pub.request("acme", "GET", "/channels")
    assert res["items"][0]["last_id"] == n
