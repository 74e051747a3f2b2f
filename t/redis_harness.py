"""Redis and Redis Sentinel for the tests, on loopback ports in temp dirs.

A primary with N replicas (appendonly yes, appendfsync always, no RDB
snapshots), optionally with requirepass/masterauth, and three
redis-sentinel processes (quorum 2) watching it.  Only processes started
here are stopped here, by pid.  redis-py is not a dependency: Resp is a
small RESP2 client over a socket.

Fixtures (import them into a test module to use them):

    redis_single     one Redis, no password
    redis_sentinel   a primary, two replicas, three sentinels; replication
                     caught up and the sentinels agreeing before the test

Helpers: RedisSet.wait_replicated(), .wait_sentinels_agree(),
.kill_primary() (SIGKILL), .wait_new_primary(old), wait_for(pred).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from wh import free_port, stop_process, wait_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
MASTER = "wirehub"


class RespError(Exception):
    """An error reply (-ERR ...)."""


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except (OSError, RespError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                         % (timeout, what, last))


class Resp:
    """A blocking RESP2 client: command(*args) returns the reply (bytes,
    int, list, None) or raises RespError."""

    def __init__(self, port, password=None, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.buf = b""
        if password is not None:
            self.command("AUTH", password)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("connection closed")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise OSError("bad RESP line %r" % line)


def info(port, section, password=None):
    """INFO section as a dict of str."""
    with Resp(port, password) as c:
        text = c.command("INFO", section).decode()
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


class RedisServer:
    """One redis-server (or redis-sentinel) process of ours."""

    def __init__(self, workdir, name, lines, binary=REDIS_SERVER,
                 password=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.binary = binary
        self.password = password
        self.conf = os.path.join(self.dir, name + ".conf")
        self.log = os.path.join(self.dir, name + ".log")
        base = ["bind 127.0.0.1", "port %d" % self.port,
                "protected-mode no", "dir %s" % self.dir,
                "logfile %s" % self.log, "daemonize no"]
        with open(self.conf, "w") as f:
            f.write("\n".join(base + lines) + "\n")
        self.proc = None
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        # the config is rewritten by sentinels (and CONFIG REWRITE): it
        # stays in its dir, which is ours
        self.proc = subprocess.Popen([self.binary, self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc):
            raise AssertionError("%s did not start: %s"
                                 % (self.name, self.tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL; returns the time.time() it was sent."""
        t = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        return t

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        try:
            stop_process(self.proc, signal.SIGTERM, 10)
        except AssertionError:
            pass

    def client(self):
        return Resp(self.port, self.password)

    def command(self, *args):
        with self.client() as c:
            return c.command(*args)

    def role(self):
        return self.command("ROLE")[0].decode()

    def tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def quote(s):
    """A config file argument (redis.conf takes C-like quoting)."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def redis_lines(password=None, replicaof=None):
    lines = ["appendonly yes", "appendfsync always", "save ''",
             # replicas sync at once, not after the default 5 s
             "repl-diskless-sync-delay 0"]
    if password is not None:
        lines += ["requirepass %s" % quote(password),
                  "masterauth %s" % quote(password)]
    if replicaof is not None:
        lines.append("replicaof 127.0.0.1 %d" % replicaof)
    return lines


class RedisSet:
    """A primary, replicas and sentinels (any may be none)."""

    def __init__(self, replicas=0, sentinels=0, password=None,
                 down_after_ms=1000, failover_timeout_ms=5000):
        self.workdir = tempfile.mkdtemp(prefix="wh-redis-")
        self.password = password
        self.servers = []
        self.sentinels = []
        try:
            primary = RedisServer(self.workdir, "redis0",
                                  redis_lines(password), password=password)
            self.servers.append(primary)
            for i in range(replicas):
                self.servers.append(RedisServer(
                    self.workdir, "redis%d" % (i + 1),
                    redis_lines(password, primary.port),
                    password=password))
            for i in range(sentinels):
                lines = [
                    "sentinel resolve-hostnames no",
                    "sentinel monitor %s 127.0.0.1 %d 2"
                    % (MASTER, primary.port),
                    "sentinel down-after-milliseconds %s %d"
                    % (MASTER, down_after_ms),
                    "sentinel failover-timeout %s %d"
                    % (MASTER, failover_timeout_ms),
                    "sentinel parallel-syncs %s 1" % MASTER]
                if password is not None:
                    lines.append("sentinel auth-pass %s %s"
                                 % (MASTER, quote(password)))
                self.sentinels.append(RedisServer(
                    self.workdir, "sentinel%d" % i, lines,
                    binary=REDIS_SENTINEL))
        except BaseException:
            self.stop()
            raise

    @property
    def primary(self):
        return self.servers[0]

    def server_at(self, addr):
        for s in self.servers:
            if s.addr == addr:
                return s
        raise KeyError(addr)

    def sentinel_args(self):
        return [a for s in self.sentinels for a in ("--sentinel", s.addr)]

    def stop(self):
        for s in self.sentinels + self.servers:
            s.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ---------------------------------------------------------- waiting

    def wait_replicated(self, primary=None, timeout=15.0):
        """Every live replica connected to primary and has all its writes."""
        primary = primary or self.primary
        want = len([s for s in self.servers
                    if s is not primary and s.alive()])

        def caught_up():
            i = info(primary.port, "replication", self.password)
            if int(i.get("connected_slaves", 0)) < want:
                return False
            for k in range(want):
                if "state=online" not in i["slave%d" % k]:
                    return False
            # every write so far acknowledged by every replica (the
            # offsets INFO shows lag by up to a second of REPLCONF ACKs)
            with primary.client() as c:
                return c.command("WAIT", want, 1000) >= want

        wait_for(caught_up, timeout, what="replication caught up")

    def sentinel_primary(self, sentinel):
        with Resp(sentinel.port) as c:
            r = c.command("SENTINEL", "get-master-addr-by-name", MASTER)
        return None if r is None else "%s:%s" % (r[0].decode(),
                                                 r[1].decode())

    def wait_sentinels_agree(self, addr=None, timeout=20.0, ready=True):
        """Every live sentinel names the same primary (addr if given);
        with ready, each also knows the other sentinels and the
        replicas, so that a failover can start at once."""
        live = [s for s in self.sentinels if s.alive()]

        def agree():
            seen = {self.sentinel_primary(s) for s in live}
            if len(seen) != 1 or None in seen:
                return False
            got = seen.pop()
            if addr is not None and got != addr:
                return False
            if ready:
                nrep = len([s for s in self.servers
                            if s.alive() and s.addr != got])
                for s in live:
                    with Resp(s.port) as c:
                        m = c.command("SENTINEL", "master", MASTER)
                    fields = dict(zip(m[::2], m[1::2]))
                    if int(fields[b"num-other-sentinels"]) \
                            < len(self.sentinels) - 1 \
                            or int(fields[b"num-slaves"]) < nrep:
                        return False
            return got

        return wait_for(agree, timeout, interval=0.05,
                        what="sentinels agreeing on the primary")

    def kill_primary(self):
        """SIGKILL the primary; returns the time.time() of the kill."""
        return self.primary.kill9()

    def wait_new_primary(self, old_addr, timeout=30.0):
        """The address the sentinels switched to, once a majority say so
        and it answers ROLE master; also promoted to self.servers[0]."""
        def switched():
            votes = {}
            for s in self.sentinels:
                if s.alive():
                    try:
                        a = self.sentinel_primary(s)
                    except OSError:
                        continue
                    votes[a] = votes.get(a, 0) + 1
            for a, n in votes.items():
                if a and a != old_addr and n >= 2:
                    if self.server_at(a).role() == "master":
                        return a
            return None

        addr = wait_for(switched, timeout, interval=0.02,
                        what="a new primary")
        new = self.server_at(addr)
        self.servers.remove(new)
        self.servers.insert(0, new)
        return addr


@pytest.fixture
def redis_single():
    rs = RedisSet()
    yield rs
    rs.stop()


@pytest.fixture
def redis_sentinel():
    rs = RedisSet(replicas=2, sentinels=3)
    try:
        rs.wait_replicated()
        rs.wait_sentinels_agree(rs.primary.addr)
    except BaseException:
        rs.stop()
        raise
    yield rs
    rs.stop()
