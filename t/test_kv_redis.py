"""worker/kv_redis.c (the state space's transactions in Redis) against a
real Redis, through build/kv_probe (t/redis/kv_probe.c).

model: random transactions whose every answer (gets, NOOVERWRITE puts,
deletes, cursor walks both ways across workspaces, deletes under the
cursor) is checked against an in-memory model of LMDB's semantics.
count: probes at once read-modify-write one counter and add a key each:
optimistic commits must lose no increment and add each key once.
pair/snap: a probe keeps two keys equal while others read them in two
rounds: a read-only write never sees them apart.  move/walk: the same
of one range read (its keys, then their values).  The
same runs under ASan/UBSan (build/asan/kv_probe) with no report allowed.
"""

import glob
import json
import os
import subprocess
import tempfile

import pytest

from wh import BUILD, ROOT
from redis_harness import RedisSet, redis_single  # noqa: F401

# runs its own plain and ASan probes: the ASan pass would repeat it
pytestmark = pytest.mark.nosan

PROBE = os.path.join(BUILD, "kv_probe")
ASAN_PROBE = os.path.join(BUILD, "asan", "kv_probe")


@pytest.fixture(scope="module", autouse=True)
def probe_built():
    subprocess.run(["make", "-s", "-C", ROOT, PROBE, ASAN_PROBE],
                   check=True)


class Run:
    def __init__(self, addr, args, asan=False):
        self.asan_dir = tempfile.mkdtemp(prefix="wh-kvprobe-")
        env = dict(os.environ)
        if asan:
            env["ASAN_OPTIONS"] = "detect_leaks=1:log_path=%s/asan" \
                % self.asan_dir
            env["UBSAN_OPTIONS"] = ("print_stacktrace=1:log_path=%s/ubsan"
                                    % self.asan_dir)
        self.proc = subprocess.Popen(
            [ASAN_PROBE if asan else PROBE, "--redis", addr] + args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            text=True)

    def result(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        reports = glob.glob(os.path.join(self.asan_dir, "*"))
        assert not reports, open(reports[0]).read()
        lines = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert lines and lines[-1]["ev"] == "done", (out, err)
        self.lines = lines
        return lines[-1], self.proc.returncode, err


@pytest.mark.parametrize("asan", [False, True], ids=["plain", "asan"])
@pytest.mark.parametrize("seed", [1, 7])
def test_model(redis_single, asan, seed):
    r = redis_single.primary
    r.command("FLUSHALL")
    done, rc, err = Run(r.addr, ["--mode", "model", "--txns", "300",
                                 "--seed", str(seed)], asan).result()
    assert done["mismatches"] == 0, done["first"]
    assert done["failed"] == 0, err
    assert done["committed"] == 300
    # the runs did read through Redis and commit there
    assert done["fetches"] > 300 and done["commits"] > 250
    assert rc == 0


def count_at_once(addr, txns, more=(), asan=False):
    """Three count probes at once, txns each (more: their other
    arguments): every one committed, none failed, they ran into each
    other, and the counter and the keys lost nothing."""
    runs = [Run(addr, ["--mode", "count", "--txns", str(txns), "--id",
                       "p%d" % i] + list(more), asan=asan)
            for i in range(3)]
    results = [run.result()[0] for run in runs]
    assert [x["committed"] for x in results] == [txns] * 3
    assert all(x["failed"] == 0 for x in results)
    assert sum(x["conflicts"] for x in results) > 0
    check, rc, _ = Run(addr, ["--mode", "check"]).result()
    assert (check["counter"], check["keys"]) == (3 * txns, 3 * txns)


def test_concurrent_read_modify_write(redis_single):
    r = redis_single.primary
    count_at_once(r.addr, 300)

    # the layout kv_redis.h documents
    assert r.command("HGET", "wh:{#cmd_meta}:kv:cmd_meta", "counter") == b"900"
    assert r.command("ZRANGE", "wh:s:ws:clients", "0", "-1") \
        == [b"w0", b"w1", b"w2"]
    assert sum(r.command("HLEN", "wh:{w%d}:kv:clients" % i)
               for i in range(3)) == 900
    assert r.command("ZCARD", "wh:{w1}:kz:clients") == 300
    key = b"w1\x00p0-1"
    assert r.command("HGET", "wh:{w1}:kv:clients", key) is not None


def beside_writer(r, write, writes, read, reads):
    """One transaction of mode write alone, then writes more of them
    beside two probes running reads of mode read: the writer's done
    line and the readers'."""
    done, rc, _ = Run(r.addr, ["--mode", write, "--txns", "1"]).result()
    assert done["committed"] == 1
    writer = Run(r.addr, ["--mode", write, "--txns", str(writes)])
    readers = [Run(r.addr, ["--mode", read, "--txns", str(reads), "--id",
                            "r%d" % i]) for i in range(2)]
    got = [x.result()[0] for x in readers]
    return writer.result()[0], got


@pytest.mark.parametrize("write,read,other", [("pair", "snap", "w9"),
                                              ("xpair", "xsnap", "w8")])
def test_reads_of_one_moment(redis_single, write, read, other):
    """Two keys a writer keeps equal, read a round apart: in one
    workspace, and in two (the first round's workspace is checked again
    after the second round's reads)."""
    r = redis_single.primary
    r.command("FLUSHALL")
    w, got = beside_writer(r, write, 600, read, 600)
    assert w["committed"] == 600 and w["failed"] == 0
    for x in got:
        assert (x["committed"], x["failed"]) == (600, 0), x
        assert x["torn"] == 0, x
    # the reads did overlap the writes: the readers saw the pair move
    assert sum(x["moved"] for x in got) > 20, got
    assert r.command("HGET", "wh:{w9}:kv:clients", b"w9\x00a") == b"601"
    assert r.command("HGET", "wh:{%s}:kv:clients" % other,
                     other.encode() + b"\x00b") == b"601"


def test_writes_checked_by_the_keys_they_read(redis_single):
    """A write's commit checks the keys it got, not its workspace's
    version: probes that each add to a counter of their own in one
    workspace never refuse each other; probes that read the pair "a",
    "b" a round apart (while a writer moves it) and then write are
    refused when it moved in between, so none commits a torn pair."""
    r = redis_single.primary
    r.command("FLUSHALL")
    own = [Run(r.addr, ["--mode", "own", "--txns", "300", "--id", "o%d" % i])
           for i in range(3)]
    for d in [x.result()[0] for x in own]:
        assert (d["committed"], d["failed"], d["conflicts"]) \
            == (300, 0, 0), d
        assert d["counter"] == 300, d
    w, got = beside_writer(r, "pair", 600, "snapw", 400)
    assert w["committed"] == 600
    for x in got:
        assert (x["committed"], x["failed"], x["torn"]) == (400, 0, 0), x
    assert sum(x["moved"] for x in got) > 20, got
    assert sum(x["conflicts"] for x in got) > 0, got


def test_range_writers_lose_nothing(redis_single):
    """Writes that decide from a range read (a cursor fetched in one run,
    read from again in the run that commits) are checked by it: two
    probes moving w8's one key to the next number lose no move."""
    r = redis_single.primary
    done, _, _ = Run(r.addr, ["--mode", "move", "--txns", "1"]).result()
    assert done["committed"] == 1
    runs = [Run(r.addr, ["--mode", "move", "--txns", "300", "--id",
                         "m%d" % i]) for i in range(2)]
    got = [x.result()[0] for x in runs]
    assert [x["committed"] for x in got] == [300, 300]
    assert sum(x["conflicts"] for x in got) > 0
    assert r.command("ZRANGE", "wh:{w8}:kz:clients", "0", "-1") \
        == [b"w8\x00k601"]


def test_unchecked_reads_refuse_nothing(redis_single):
    """Reads made unchecked (kv.h: a refresh of memory beside the
    batch's writes) are left out of the commit's checks: probes that
    read a pair and a range others keep moving, then write keys of
    their own, are never refused; the same reads checked are."""
    r = redis_single.primary

    def beside_movers(mode, ids):
        for m in ("pair", "move"):
            done, _, _ = Run(r.addr, ["--mode", m, "--txns", "1"]).result()
            assert done["committed"] == 1
        movers = [Run(r.addr, ["--mode", m, "--txns", "600"])
                  for m in ("pair", "move")]
        peekers = [Run(r.addr, ["--mode", mode, "--txns", "100", "--id",
                                i]) for i in ids]
        got = [p.result()[0] for p in peekers]
        for m in movers:
            assert m.result()[0]["failed"] == 0
        for i in ids:
            assert r.command("HGET", "wh:{w6}:kv:clients",
                             b"w6\x00" + i.encode()) == b"100"
        return got

    got = beside_movers("peek", ["u0", "u1"])
    assert [x["committed"] for x in got] == [100, 100]
    assert [x["conflicts"] for x in got] == [0, 0]
    got = beside_movers("peekc", ["c0", "c1"])
    assert [x["committed"] for x in got] == [100, 100]
    assert sum(x["conflicts"] for x in got) > 0


def test_range_of_one_moment(redis_single):
    """A range read within one workspace is two commands (its keys, then
    their values): a key moved between them must not read as a key
    without its value, nor as no key at all."""
    r = redis_single.primary
    r.command("FLUSHALL")
    w, got = beside_writer(r, "move", 1500, "walk", 600)
    assert (w["committed"], w["failed"], w["counter"]) == (1500, 0, 1501), w
    for x in got:
        assert (x["committed"], x["failed"]) == (600, 0), x
        assert x["torn"] == 0, x
    assert sum(x["moved"] for x in got) > 20, got
    # a walk fetches twice (keys, values); more: a move came between
    # them and the reads were made again
    assert sum(x["fetches"] for x in got) > 2 * 2 * 600, got
    assert r.command("HGETALL", "wh:{w8}:kv:clients") \
        == [b"w8\x00k1501", b"1501"]


def test_script_cache_emptied_reads_again(redis_single):
    """A walk across the workspaces reads by script; once the script
    cache is emptied (SCRIPT FLUSH) its next call meets NOSCRIPT and did
    not run: the run's reads are made again, the script with its body,
    and no transaction fails for it."""
    r = redis_single.primary
    r.command("FLUSHALL")
    done, rc, _ = Run(r.addr, ["--mode", "count", "--txns", "5"]).result()
    assert (done["committed"], done["failed"]) == (5, 0)
    done, rc, err = Run(r.addr, ["--mode", "check", "--txns", "3",
                                 "--flush-after", "1"]).result()
    assert (done["committed"], done["failed"]) == (3, 0), (done, err)
    assert (done["counter"], done["keys"]) == (5, 5), done
    assert "forgot the scripts loaded (NOSCRIPT)" in err
    assert rc == 0


def test_reserved_seqs_never_overlap(redis_single):
    """Three probes take runs of the command seq counter at once, as the
    nodes of a cluster do, while a fourth reads and writes it the way a
    wirehubd of before did (a get and a put checked at the commit): no
    number is given twice or lost, each probe's runs only go up, and the
    commits of the probes that reserve are never refused."""
    r = redis_single.primary
    r.command("FLUSHALL")
    probes = [Run(r.addr, ["--mode", "reserve", "--txns", "300", "--id",
                           "p%d" % i, "--seed", str(i + 1)])
              for i in range(3)]
    probes.append(Run(r.addr, ["--mode", "oldseq", "--txns", "150"]))
    done = [p.result()[0] for p in probes]
    for d in done[:3]:
        assert (d["committed"], d["failed"], d["conflicts"]) \
            == (300, 0, 0), d
    assert (done[3]["committed"], done[3]["failed"]) == (150, 0), done[3]
    taken = []
    for p in probes:
        mine = [(x["first"], x["n"]) for x in p.lines if x["ev"] == "took"]
        assert [f for f, _ in mine] == sorted(f for f, _ in mine), mine
        taken += mine
    assert len(taken) == 3 * 300 * 2 + 150
    taken.sort()
    for (f1, n1), (f2, _) in zip(taken, taken[1:]):
        assert f1 + n1 <= f2, (f1, n1, f2)
    # none lost: the counter is the numbers given out, one after another
    last = sum(n for _, n in taken)
    assert taken[-1][0] + taken[-1][1] - 1 == last
    stored = r.command("HGET", "wh:{#cmd_meta}:kv:cmd_meta", b"seq")
    assert int.from_bytes(stored, "big") == last


def test_reserved_seqs_kept_when_refused(redis_single):
    """Probes that reserve runs of the seq counter and add one to a
    counter they share: their commits refuse each other's, and a write
    run again keeps the numbers it reserved (taken again, they would
    be lost: a gap in the seqs)."""
    r = redis_single.primary
    r.command("FLUSHALL")
    probes = [Run(r.addr, ["--mode", "reservec", "--txns", "200", "--id",
                           "p%d" % i, "--seed", str(i + 1)])
              for i in range(3)]
    done = [p.result()[0] for p in probes]
    for d in done:
        assert (d["committed"], d["failed"]) == (200, 0), d
    assert sum(d["conflicts"] for d in done) > 20, done
    taken = sorted((x["first"], x["n"]) for p in probes
                   for x in p.lines if x["ev"] == "took")
    assert len(taken) == 3 * 200 * 2
    for (f1, n1), (f2, _) in zip(taken, taken[1:]):
        assert f1 + n1 == f2, (f1, n1, f2)
    last = sum(n for _, n in taken)
    stored = r.command("HGET", "wh:{#cmd_meta}:kv:cmd_meta", b"seq")
    assert int.from_bytes(stored, "big") == last
    assert r.command("HGET", "wh:{w9}:kv:clients", b"w9\x00a") == b"600"


@pytest.mark.parametrize("asan", [False, True], ids=["plain", "asan"])
def test_replicas_ack_beside_conflicts(asan):
    """The WAIT goes right behind each commit: probes that refuse each
    other's commits (the WAIT behind a refused one answers first and
    tells nothing) still have every commit confirmed, none counted
    twice or lost."""
    rs = RedisSet(replicas=1)
    try:
        rs.wait_replicated()
        count_at_once(rs.primary.addr, 200, ["--wait", "1"], asan)
        # the replica has every commit the probes were told of
        assert rs.servers[1].command("HGET", "wh:{#cmd_meta}:kv:cmd_meta",
                                     "counter") == b"600"
    finally:
        rs.stop()


def test_replicas_ack(tmp_path):
    rs = RedisSet(replicas=1)
    try:
        rs.wait_replicated()
        p = rs.primary
        done, rc, _ = Run(p.addr, ["--mode", "count", "--txns", "50",
                                   "--wait", "1"]).result()
        assert (done["committed"], done["failed"]) == (50, 0)

        # no replica to confirm: each commit is applied on the primary
        # but answered as failed (503), never as done
        for s in rs.servers[1:]:
            s.kill9()
        done, rc, err = Run(p.addr, ["--mode", "count", "--txns", "2",
                                     "--wait", "1"]).result()
        assert (done["committed"], done["failed"]) == (0, 2)
        assert "not confirmed by the replicas" in err
        assert rc == 1
    finally:
        rs.stop()
