"""The Redis engine's publish script (worker/engine_redis_channels.c)
against a real redis-server, and against a model of what it must do.

A call takes every message of one channel that a history write holds.
Where no message can be refused and nothing expires at the latest of
their times (which lie within the ttl), it does each step once for
them all (many()); otherwise it runs them one by one (one()), each
expiring, trimming and checking the workspace's byte limit in turn.
Either way the answers, the list, the last id and the byte count must
be those of the messages published one at a time:
batches that trim old entries, batches longer than the history itself,
a history shortened since, a ttl with times shared or not, a byte limit
far off, near, or met.  The script is read out of the C source, as
wirehubd sends it."""

import os
import re

import pytest

from redis_harness import redis_single  # noqa: F401 (a fixture)
from wh import ROOT

pytestmark = pytest.mark.nosan

SOURCE = os.path.join(ROOT, "worker", "engine_redis_channels.c")
EPOCH = "epoch0000000001"
BEFORE = '{"type":"message","id":'


def c_strings(text):
    """The C string literals of text, joined and unescaped."""
    out = []
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        out.append(re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1),
                                                               m.group(1)),
                          lit))
    return "".join(out)


def publish_script():
    src = open(SOURCE).read()
    quota = re.search(r"#define WH_LUA_QUOTA\s*\\\n((?:.*\\\n)*.*\n)", src)
    body = re.search(r"static const char  wh_lua_publish\[\] =\n"
                     r"    WH_LUA_QUOTA\n(.*?);\n", src, re.S)
    assert quota and body
    # the C comments between the literals hold no quotes
    return c_strings(quota.group(1)) + c_strings(
        re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S))


def after(data):
    return '","data":"%s"}' % data


class Model:
    """One channel of a workspace, published to one message at a time."""

    def __init__(self):
        self.entries, self.last, self.used = [], 0, 0

    def publish(self, datas, length, nows, ttl, limit):
        out = []
        for data, now in zip(datas, nows):
            budget = 100
            while ttl > 0 and budget and self.entries and \
                    now - self.entries[0][0] > ttl:
                self.used -= len(self.entries.pop(0)[1])
                budget -= 1
            text = "%s%d,\"epoch\":\"%s%s" % (BEFORE, self.last + 1, EPOCH,
                                             after(data))
            k = max(0, len(self.entries) + 1 - length)
            growth = len(text) - sum(len(e[1]) for e in self.entries[:k])
            if growth > 0 and limit > 0 and self.used + growth > limit:
                out.append([0, 1])
                continue
            self.last += 1
            self.entries = self.entries[k:] + [(now, text)]
            self.used += growth
            out.append([self.last, EPOCH.encode(), growth,
                        ("%d %s %d %s" % (self.last, EPOCH, now, text))
                        .encode()])
        return out


class Channel:
    def __init__(self, r, ws, limit):
        self.r, self.ws, self.limit = r, ws, limit
        self.k = lambda what: "wh:{%s}:%s" % (ws, what)

    def publish(self, script, texts, length, nows, ttl=0):
        keys = [self.k("m:room"), self.k("h:room"), self.k("chans"),
                "wh:workspaces", self.k("usage")]
        argv = ["room", length, ttl, 2 ** 63 - 1, EPOCH, self.k("p:room"),
                self.ws, "0", 0, self.limit, self.k("h:")]
        for data, now in zip(texts, nows):
            argv += [now, BEFORE, after(data)]
        return self.r.command("EVAL", script, len(keys), *keys, *argv)

    def state(self):
        return (self.r.command("LRANGE", self.k("h:room"), 0, -1),
                self.r.command("HGET", self.k("m:room"), "last"),
                self.r.command("HGET", self.k("usage"), "bytes"))


def check(r, script, ws, steps, limit=0, ttl=0):
    """Each step (datas, history length, times[, its own byte limit])
    published in one call: what Redis answers and holds against the
    model."""
    ch, model = Channel(r, ws, limit), Model()
    for datas, length, nows, *own in steps:
        ch.limit = own[0] if own else limit
        got = ch.publish(script, datas, length, nows, ttl)
        assert got == model.publish(datas, length, nows, ttl, ch.limit)
        kept, last, used = ch.state()
        assert kept == [b"%d %s" % (now, text.encode())
                        for now, text in model.entries]
        assert int(last or 0) == model.last
        assert int(used or 0) == model.used


def data(n, k):
    return ["m%d-%s" % (k + i, "x" * ((k + i) % 5)) for i in range(n)]


def test_batches_trim_as_one_by_one(redis_single):  # noqa: F811
    script = publish_script()
    steps, k = [], 0
    for n, length in [(1, 5), (3, 5), (4, 5), (7, 5), (12, 5), (2, 3),
                      (1, 8), (9, 8), (20, 2)]:
        steps.append((data(n, k), length, [1000] * n))
        k += n
    with redis_single.primary.client() as r:
        check(r, script, "wa", steps)


def test_batches_expire_as_one_by_one(redis_single):  # noqa: F811
    """With a ttl: batches at one time, and batches whose messages have
    times of their own (each expiring what is older than itself)."""
    script = publish_script()
    steps, k = [], 0
    for nows in [[0, 10, 20], [30], [120] * 4, [130, 240, 250, 260],
                 [270] * 12, [500, 400, 600], [900] * 3]:
        steps.append((data(len(nows), k), 10, nows))
        k += len(nows)
    with redis_single.primary.client() as r:
        check(r, script, "ta", steps, ttl=100)
        # a trim brings an older entry, past the ttl, to the head
        check(r, script, "tb", [(data(3, 0), 3, [500, 400, 401]),
                                (data(2, 3), 3, [505, 505])], ttl=100)
        # times far apart: a message of the call expires another of it
        check(r, script, "td", [(data(3, 0), 2, [0, 50, 90]),
                                (data(4, 3), 2, [95, 300, 100, 310])],
              ttl=100)


def rpushes(r):
    stats = r.command("INFO", "commandstats").decode()
    found = re.search(r"cmdstat_rpush:calls=(\d+)", stats)
    return int(found.group(1)) if found else 0


def test_times_within_the_ttl_go_as_one(redis_single):  # noqa: F811
    """Events a write holds have times of several loop turns (and
    nodes): where nothing expires at the latest, the call appends them
    in one step, not one by one; where an entry would expire at the
    latest but not at the earliest, one by one."""
    script = publish_script()
    with redis_single.primary.client() as r:
        steps = [(data(3, 0), 10, [1000, 1002, 1001]),
                 (data(5, 3), 10, [1010, 1004, 1090, 1050, 1003])]
        for i in range(len(steps)):
            before = rpushes(r)
            check(r, script, "tw%d" % i, steps[:i + 1], ttl=100)
            # every step of the check again, the last as one RPUSH
            assert rpushes(r) - before == i + 1
        # the head (time 1000) is past the ttl at 1101 only; then times
        # 102 apart
        for ws, nows in [("tx", [1050, 1101, 1060]),
                         ("ty", [1003, 1105, 1004])]:
            before = rpushes(r)
            check(r, script, ws, [(data(2, 0), 10, [1000, 1001]),
                                  (data(3, 2), 10, nows)], ttl=100)
            assert rpushes(r) - before == 1 + 3


@pytest.mark.parametrize("limit", [0, 2400])
def test_expiry_past_its_budget(redis_single, limit):  # noqa: F811
    """More entries past the ttl than one message expires (100): each
    message of the batch takes its share, with and without a limit (one
    the entries left after the first message's share still pass)."""
    script = publish_script()
    steps = [(data(150, 0), 200, [0] * 150, 0),
             (data(3, 150), 200, [1000] * 3)]
    with redis_single.primary.client() as r:
        check(r, script, "tc%d" % limit, steps, limit=limit, ttl=100)


@pytest.mark.parametrize("limit", [10 ** 9, 900, 1500])
def test_batches_under_a_byte_limit(redis_single, limit):  # noqa: F811
    """A byte limit far off (taken at once), near and met (messages
    refused in the middle of a batch, later ones of it taken)."""
    script = publish_script()
    steps, k = [], 0
    for n, length in [(3, 30), (10, 30), (6, 30), (25, 30), (4, 12),
                      (15, 12)]:
        datas = data(n, k)
        # a long one among short ones: refused where the short fit
        datas[n // 2] = "L" * 120
        steps.append((datas, length, [1000] * n))
        k += n
    with redis_single.primary.client() as r:
        check(r, script, "la%d" % limit, steps, limit=limit)
