"""worker/redis.c against real Redis and Sentinel, through build/redis_probe.

The probe runs the connection on wirehubd's loop and prints one JSON line
per event (t/redis/redis_probe.c).  These tests kill, pause and fail over
the Redis it talks to and check what it reports: down promptly, commands
failed or refused (never hung), up again with its subscription restored,
a Sentinel failover followed, the loop never held up.  The same scenarios
run under ASan/UBSan (build/asan/redis_probe) with no report allowed.
"""

import glob
import json
import os
import subprocess
import tempfile
import threading
import time

import pytest

from wh import BUILD, ROOT, stop_process
from redis_harness import (MASTER, RedisSet, Resp, redis_sentinel,  # noqa
                           redis_single, wait_for)

# it runs the plain and the ASan probe itself, whatever the pass
pytestmark = pytest.mark.nosan

PROBE = os.path.join(BUILD, "redis_probe")
ASAN_PROBE = os.path.join(BUILD, "asan", "redis_probe")

# the loop may be late by this much at most (a 10 ms timer's lateness).
# What these tests could provoke, a connect or read blocked on a dead or
# paused Redis, would last seconds; an idle box measures under 10 ms, the
# rest is slack for a loaded 2-core box descheduling the probe (up to 92
# ms seen while the whole suite ran beside).
MAX_TURN_MS = 300


@pytest.fixture(scope="module", autouse=True)
def probe_built():
    subprocess.run(["make", "-s", "-C", ROOT, PROBE, ASAN_PROBE],
                   check=True)


class Probe:
    """build/redis_probe in the background; its events in self.events."""

    def __init__(self, args, asan=False, interval=100):
        self.asan_dir = tempfile.mkdtemp(prefix="wh-probe-asan-")
        env = dict(os.environ)
        if asan:
            env["ASAN_OPTIONS"] = ("detect_leaks=1:log_path=%s/asan"
                                   % self.asan_dir)
            env["UBSAN_OPTIONS"] = ("print_stacktrace=1:log_path=%s/ubsan"
                                    % self.asan_dir)
        self.stderr_path = os.path.join(self.asan_dir, "stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [ASAN_PROBE if asan else PROBE, "--interval", str(interval)]
            + args, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.events = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def wait(self, pred, timeout=10.0, what="an event", start=0):
        """The first event from index start on that pred accepts."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and \
                        not self.reader.is_alive():
                    raise AssertionError(
                        "no %s in %.1f s; last events:\n%s\nstderr:\n%s"
                        % (what, timeout, "\n".join(
                            json.dumps(e) for e in self.events[-15:]),
                           self.log()))
                self.cond.wait(left)

    def wait_ev(self, kind, timeout=10.0, start=0, **fields):
        return self.wait(lambda e: e["ev"] == kind and all(
            e.get(k) == v for k, v in fields.items()), timeout,
            "%s %r" % (kind, fields), start)

    def mark(self):
        with self.cond:
            return len(self.events)

    def since(self, start, kind=None):
        with self.cond:
            return [e for e in self.events[start:]
                    if kind is None or e["ev"] == kind]

    def log(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM: the probe closes the connection and exits 0; returns
        its last stats event."""
        if self.proc.poll() is None:
            assert stop_process(self.proc, 15, 10) == 0, self.log()
        self.reader.join(5)
        self.stderr.close()
        stats = [e for e in self.events if e["ev"] == "stats"]
        end = self.events[-1]
        assert end["ev"] == "exit", self.events[-3:]
        # every command's callback ran once: the probe counts replies
        # (ok or failed) against the commands accepted
        assert end["sent"] == end["replied"], end
        assert end["sent"] == len([e for e in self.events
                                   if e["ev"] == "reply"])
        return stats[-1]

    def sanitizer_reports(self):
        out = []
        for path in glob.glob(os.path.join(self.asan_dir, "[au]*san.*")):
            with open(path, errors="replace") as f:
                out.append(f.read())
        return out


@pytest.fixture
def probes():
    started = []

    def start(args, **kw):
        p = Probe(args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(5)


def max_turn(probe, start=0):
    return max([e["max_turn_ms"] for e in probe.since(start, "stats")]
               or [0])


def publish(server, channel, payload):
    return server.command("PUBLISH", channel, payload)


def wait_message(probe, payload, timeout=5.0, start=0):
    return probe.wait_ev("message", timeout, start, channel="probe",
                         payload=payload)


def check_clean(probe, stats):
    assert stats["max_turn_ms"] < MAX_TURN_MS, \
        "the loop was held up %d ms" % stats["max_turn_ms"]
    assert probe.sanitizer_reports() == []


# ------------------------------------------------------------ one Redis


def test_commands_and_pubsub(redis_single, probes):
    r = redis_single.primary
    p = probes(["--redis", r.addr])

    up = p.wait_ev("up")
    assert up["primary"] == r.addr
    p.wait_ev("subscribed", channel="probe")

    incr = [p.wait(lambda e, n=n: e["ev"] == "reply" and e["cmd"] == "INCR"
                   and e.get("value") == n, what="INCR %d" % n)
            for n in (1, 2, 3)]
    assert all(e["ok"] for e in incr)
    # the probe hears its own PUBLISH on its subscription
    wait_message(p, "tick-3")
    # and one from anybody else, binary-safe
    assert publish(r, "probe", "from \"outside\"\n") == 1
    wait_message(p, "from \"outside\"\n")
    assert int(r.command("GET", "probe")) >= 3

    stats = p.stop()
    assert stats["state"] == "up" and stats["failed"] == 0
    assert stats["reconnects"] == 1 and stats["failovers"] == 0
    check_clean(p, stats)


@pytest.mark.parametrize("asan", [False, True], ids=["plain", "asan"])
def test_kill_and_restart(redis_single, probes, asan):
    r = redis_single.primary
    p = probes(["--redis", r.addr, "--reconnect-min", "50",
                "--reconnect-max", "400"], asan=asan)
    p.wait_ev("up")
    p.wait_ev("subscribed", channel="probe")
    acked = p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "INCR"
                   and e.get("value", 0) >= 5, what="INCR 5")

    mark = p.mark()
    t_kill = r.kill9()
    down = p.wait_ev("down", 2.0, start=mark)
    assert down["ts"] / 1000 - t_kill < 0.5, down
    assert "connection lost" in down["why"] or "refused" in down["why"]
    # commands are refused at once while it is down, not queued or hung
    p.wait_ev("refused", 1.0, start=mark, cmd="INCR")
    for e in p.since(mark, "reply"):
        assert e["ms"] < 1000, e
    acked_all = [e["value"] for e in p.since(0, "reply")
                 if e["cmd"] == "INCR" and e["ok"]]

    mark = p.mark()
    r.start()
    up = p.wait_ev("up", 5.0, start=mark)
    assert up["primary"] == r.addr
    p.wait_ev("subscribed", 5.0, start=mark, channel="probe")
    # a message published after the reconnect arrives
    assert publish(r, "probe", "after-restart") == 1
    wait_message(p, "after-restart", start=mark)
    # appendfsync always: every INCR acknowledged survived the kill
    after = p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "INCR"
                   and e["ok"], 5.0, "an INCR after the restart", mark)
    assert after["value"] > max(acked_all) >= acked["value"]

    stats = p.stop()
    assert stats["reconnects"] == 2 and stats["failovers"] == 0
    check_clean(p, stats)


def test_close_from_callback(redis_single, probes):
    """wh_redis_close from inside down(), under ASan: the commands in
    flight fail once each, the memory is freed later by the timer."""
    r = redis_single.primary
    p = probes(["--redis", r.addr, "--close-on-down", "--interval", "5"],
               asan=True)
    p.wait(lambda e: e["ev"] == "reply" and e.get("value", 0) >= 20,
           what="INCR 20")
    r.kill9()
    p.wait_ev("down", 2.0)
    end = p.wait_ev("exit", 5.0)
    assert p.proc.wait(5) == 0, p.log()
    assert end["sent"] == end["replied"] > 0, end
    assert p.sanitizer_reports() == []


def test_paused_primary_times_out(redis_single, probes):
    """SIGSTOP: the socket stays open and silent.  Commands time out after
    command_timeout, down is reported, the loop keeps turning."""
    r = redis_single.primary
    p = probes(["--redis", r.addr, "--command-timeout", "500",
                "--connect-timeout", "300", "--reconnect-min", "100",
                "--reconnect-max", "400"])
    p.wait_ev("up")
    p.wait(lambda e: e["ev"] == "reply" and e["ok"], what="a reply")

    mark = p.mark()
    t_stop = time.time()
    r.pause()
    try:
        down = p.wait_ev("down", 3.0, start=mark)
        assert "no answer in 500 ms" in down["why"], down
        assert 0.4 < down["ts"] / 1000 - t_stop < 1.5, down
        failed = p.wait(lambda e: e["ev"] == "reply" and not e["ok"],
                        what="a failed reply", start=mark)
        assert "no answer" in failed["why"] and failed["ms"] < 1000
        # reconnecting to a paused server: the kernel accepts, Redis does
        # not answer AUTH/PING/ROLE: the connect timeout gives up
        p.wait_ev("refused", 2.0, start=mark)
        time.sleep(1.5)
        assert p.since(mark, "up") == []
        assert max_turn(p, mark) < MAX_TURN_MS
    finally:
        r.resume()
    p.wait_ev("up", 5.0, start=mark)
    stats = p.stop()
    assert stats["timeouts"] >= 2, stats
    check_clean(p, stats)


def test_password(probes, tmp_path):
    rs = RedisSet(password="s3cret pass")
    try:
        r = rs.primary
        good = tmp_path / "good"
        good.write_text("s3cret pass\n")
        bad = tmp_path / "bad"
        bad.write_text("wrong\n")

        p = probes(["--redis", r.addr, "--password-file", str(good),
                    "--db", "3"])
        p.wait_ev("up")
        p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "INCR"
               and e.get("value") == 2, what="INCR 2")
        # SELECT 3 took effect
        with Resp(r.port, "s3cret pass") as c:
            c.command("SELECT", 3)
            assert int(c.command("GET", "probe")) >= 2
        check_clean(p, p.stop())

        before = int(rs_errorstat(r, "WRONGPASS"))
        q = probes(["--redis", r.addr, "--password-file", str(bad),
                    "--reconnect-min", "100", "--reconnect-max", "1000"])
        time.sleep(3)
        stats = q.stop()
        assert not any(e["ev"] == "up" for e in q.events)
        assert stats["state"] != "up"
        log = q.log()
        lines = [ln for ln in log.splitlines() if "WRONGPASS" in ln]
        # reported clearly, once
        assert len(lines) == 1, log
        assert r.addr in lines[0] and "s3cret" not in log
        # backoff: a handful of attempts in 3 s (each AUTHs both of its
        # connections), not a storm
        attempts = (int(rs_errorstat(r, "WRONGPASS")) - before) / 2
        assert 3 <= attempts <= 10, attempts

        # no password at all: NOAUTH, once
        n = probes(["--redis", r.addr])
        n.wait(lambda e: e["ev"] == "stats", what="stats")
        wait_for(lambda: "NOAUTH" in n.log(), 5, what="NOAUTH logged")
        n.stop()
        assert len([ln for ln in n.log().splitlines()
                    if "NOAUTH" in ln]) == 1
    finally:
        rs.stop()


def test_primary_turned_replica(probes):
    """The Redis the probe uses becomes a replica (REPLICAOF): writes get
    READONLY or the connection drops, the probe goes down, and ROLE keeps
    it from coming up on a replica until the server is a primary again."""
    a, b = RedisSet(), RedisSet()
    try:
        p = probes(["--redis", a.primary.addr, "--reconnect-min", "50",
                    "--reconnect-max", "200"])
        p.wait_ev("up")
        mark = p.mark()
        a.primary.command("REPLICAOF", "127.0.0.1", b.primary.port)
        p.wait_ev("down", 3.0, start=mark)
        wait_for(lambda: "is not a primary (ROLE: slave)" in p.log(), 5,
                 what="ROLE refused")
        assert p.since(mark, "up") == []
        a.primary.command("REPLICAOF", "NO", "ONE")
        p.wait_ev("up", 5.0, start=mark, primary=a.primary.addr)
        check_clean(p, p.stop())
    finally:
        a.stop()
        b.stop()


def rs_errorstat(server, name):
    with server.client() as c:
        text = c.command("INFO", "errorstats").decode()
    for line in text.splitlines():
        if line.startswith("errorstat_%s:" % name):
            return line.split("count=")[1].split(",")[0]
    return 0


# ------------------------------------------------------------- Sentinel


def test_sentinel_discovery(redis_sentinel, probes):
    rs = redis_sentinel
    # the first sentinel listed is not there: the next one answers
    p = probes(["--sentinel", "127.0.0.1:1"] + rs.sentinel_args()
               + ["--master", MASTER, "--wait", "1"])
    up = p.wait_ev("up")
    assert up["primary"] == rs.primary.addr
    w = p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "WAIT",
               what="WAIT")
    assert w["ok"] and w["value"] >= 1, w
    wait_message(p, "tick-2")
    check_clean(p, p.stop())


def test_sentinel_unknown_master(redis_sentinel, probes):
    rs = redis_sentinel
    p = probes(rs.sentinel_args() + ["--master", "nosuch",
               "--reconnect-min", "100", "--reconnect-max", "500"])
    wait_for(lambda: "does not know master" in p.log(), 5,
             what="unknown master logged")
    time.sleep(1)
    stats = p.stop()
    assert stats["state"] != "up"
    assert not any(e["ev"] == "up" for e in p.events)


def test_no_sentinel_answers(probes):
    """No sentinel listens: each failure is logged once, then retried
    quietly with backoff."""
    p = probes(["--sentinel", "127.0.0.1:1", "--sentinel", "127.0.0.1:2",
                "--sentinel", "127.0.0.1:3", "--master", MASTER,
                "--reconnect-min", "50", "--reconnect-max", "200"])
    time.sleep(2)
    p.stop()
    lines = [ln for ln in p.log().splitlines() if "[warn]" in ln]
    assert len(lines) == 3, lines
    assert all("refused" in ln for ln in lines), lines
    assert not any(e["ev"] == "up" for e in p.events)


FIGURES = os.path.join(BUILD, "redis_failover.json")


@pytest.mark.parametrize("asan", [False, True], ids=["plain", "asan"])
def test_sentinel_failover(redis_sentinel, probes, asan):
    """kill -9 of the primary: the probe reports down at once, follows the
    sentinels' +switch-master to the promoted replica, resubscribes, and
    the loop is never held up.  The figures go to build/."""
    rs = redis_sentinel
    old = rs.primary.addr
    p = probes(rs.sentinel_args() + ["--master", MASTER,
               "--reconnect-min", "100", "--reconnect-max", "1000"],
               asan=asan)
    p.wait_ev("up", primary=old)
    p.wait_ev("subscribed", channel="probe")
    p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "INCR"
           and e["ok"], what="INCR")
    rs.wait_replicated()

    mark = p.mark()
    t_kill = rs.kill_primary()
    down = p.wait_ev("down", 2.0, start=mark)
    new = rs.wait_new_primary(old, 30)
    t_switch = time.time()
    up = p.wait_ev("up", 30.0, start=mark)
    assert up["primary"] == new
    fo = p.wait_ev("failover", 1.0, start=mark)
    assert fo["from"] == old and fo["primary"] == new
    p.wait_ev("subscribed", 5.0, start=mark, channel="probe")
    publish(rs.server_at(new), "probe", "after-failover")
    wait_message(p, "after-failover", start=mark)
    p.wait(lambda e: e["ev"] == "reply" and e["cmd"] == "INCR" and e["ok"],
           5.0, "an INCR on the new primary", mark)

    stats = p.stop()
    assert stats["failovers"] == 1, stats
    check_clean(p, stats)

    figures = {
        "probe": "asan" if asan else "plain",
        "kill_to_down_ms": round(down["ts"] - t_kill * 1000),
        # the sentinels' view, polled every 20 ms: an upper bound
        "kill_to_sentinel_switch_ms": round((t_switch - t_kill) * 1000),
        "kill_to_probe_up_ms": round(up["ts"] - t_kill * 1000),
        "max_turn_ms": stats["max_turn_ms"],
    }
    print("failover:", json.dumps(figures))
    try:
        with open(FIGURES) as f:
            runs = json.load(f)
    except (OSError, ValueError):
        runs = []
    with open(FIGURES, "w") as f:
        json.dump((runs + [figures])[-10:], f, indent=1)
    assert figures["kill_to_probe_up_ms"] < 15000, figures


def test_sentinel_lost_then_failover(redis_sentinel, probes):
    """The sentinel the probe watches dies: the probe stays up, moves to
    the next sentinel, and still follows the failover that comes after."""
    rs = redis_sentinel
    old = rs.primary.addr
    p = probes(rs.sentinel_args() + ["--master", MASTER,
               "--reconnect-min", "50", "--reconnect-max", "500"])
    p.wait_ev("up", primary=old)

    mark = p.mark()
    # the probe asks the first sentinel listed first
    rs.sentinels[0].kill9()
    wait_for(lambda: rs.sentinels[1].command("CLIENT", "LIST").count(
        b"cmd=subscribe") >= 1
        or rs.sentinels[2].command("CLIENT", "LIST").count(
            b"cmd=subscribe") >= 1, 5, what="the probe on another sentinel")
    assert p.since(mark, "down") == []

    rs.kill_primary()
    new = rs.wait_new_primary(old, 30)
    up = p.wait_ev("up", 30.0, start=mark)
    assert up["primary"] == new
    check_clean(p, p.stop())


def test_paused_primary_with_sentinels(redis_sentinel, probes):
    """SIGSTOP of the primary: commands time out, the loop keeps turning,
    and the failover the sentinels make is followed."""
    rs = redis_sentinel
    old = rs.primary.addr
    p = probes(rs.sentinel_args() + ["--master", MASTER,
               "--command-timeout", "500", "--connect-timeout", "300",
               "--reconnect-min", "100", "--reconnect-max", "500"])
    p.wait_ev("up", primary=old)
    mark = p.mark()
    rs.primary.pause()
    try:
        p.wait_ev("down", 3.0, start=mark)
        new = rs.wait_new_primary(old, 30)
        up = p.wait_ev("up", 30.0, start=mark)
        assert up["primary"] == new
        stats = p.stop()
        check_clean(p, stats)
    finally:
        for s in rs.servers:
            if s.alive():
                s.resume()
