"""The Redis engine's publish script (worker/engine_redis_channels.c)
against a real redis-server, differentially.

A call takes every message of one channel that a history write holds.
Without a byte limit it does each step once for them all (many()); with
one it runs the messages one by one (one()), the form that checks the
limit per message.  With a limit too large to refuse anything, both
must leave the same list, the same meta and the same byte count, and
answer the same ids and growth, whatever the batches: ones that trim old
entries, ones longer than the history itself, a history shortened since
the last write.  The script is read out of the C source, as wirehubd
sends it."""

import os
import re

import pytest

from redis_harness import redis_single  # noqa: F401 (a fixture)
from wh import ROOT

pytestmark = pytest.mark.nosan

SOURCE = os.path.join(ROOT, "worker", "engine_redis_channels.c")


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


class Channel:
    def __init__(self, r, ws, limit):
        self.r, self.ws, self.limit = r, ws, limit
        self.k = lambda what: "wh:{%s}:%s" % (ws, what)

    def publish(self, script, texts, length, nows, ttl=0):
        keys = [self.k("m:room"), self.k("h:room"), self.k("chans"),
                "wh:workspaces", self.k("usage")]
        argv = ["room", length, ttl, 2 ** 63 - 1, "epoch0000000001",
                self.k("p:room"), self.ws, "0", 0, self.limit,
                self.k("h:")]
        for t, now in zip(texts, nows):
            argv += [now, '{"type":"message","id":', '","data":"%s"}' % t]
        return self.r.command("EVAL", script, len(keys), *keys, *argv)

    def state(self):
        return (self.r.command("LRANGE", self.k("h:room"), 0, -1),
                self.r.command("HGET", self.k("m:room"), "last"),
                self.r.command("HGET", self.k("usage"), "bytes"))


def test_batches_as_one_by_one(redis_single):  # noqa: F811
    script = publish_script()
    with redis_single.primary.client() as r:
        many = Channel(r, "wa", 0)
        one = Channel(r, "wb", 10 ** 15)
        k = kept = 0
        for n, length in [(1, 5), (3, 5), (4, 5), (7, 5), (12, 5), (2, 3),
                          (1, 8), (9, 8), (20, 2)]:
            texts = ["m%d-%s" % (k + i, "x" * (i % 4)) for i in range(n)]
            k += n
            a = many.publish(script, texts, length, [1000] * n)
            b = one.publish(script, texts, length, [1000] * n)
            assert len(a) == n and a == b
            la, lasta, used_a = many.state()
            lb, lastb, used_b = one.state()
            assert (la, lasta, used_a) == (lb, lastb, used_b)
            kept = min(length, kept + n)
            assert len(la) == kept
            assert int(used_a) == sum(len(e) - e.index(b" ") - 1
                                      for e in la)
        assert int(lasta) == k


def test_batches_expire_as_one_by_one(redis_single):  # noqa: F811
    """With a ttl: batches at one time (each step once) and batches whose
    messages have times of their own (one by one, each expiring what is
    older than itself), against one by one."""
    script = publish_script()
    with redis_single.primary.client() as r:
        many = Channel(r, "ta", 0)
        one = Channel(r, "tb", 10 ** 15)
        k = 0
        for nows in [[0, 10, 20], [30], [120] * 4, [130, 240, 250, 260],
                     [270] * 12, [500, 400, 600], [900] * 3]:
            n = len(nows)
            texts = ["m%d-%s" % (k + i, "y" * (i % 3)) for i in range(n)]
            k += n
            a = many.publish(script, texts, 10, nows, ttl=100)
            b = one.publish(script, texts, 10, nows, ttl=100)
            assert len(a) == n and a == b
            assert many.state() == one.state()
            la, last, used = many.state()
            assert int(last) == k
            assert int(used or 0) == sum(len(e) - e.index(b" ") - 1
                                         for e in la)
