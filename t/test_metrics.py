"""wirehub_metrics and GET /api/stats through nginx (2 workers) and wirehubd:
the Prometheus text exposition is parsed strictly, and its figures must
follow what the test does, summed over both workers."""

import asyncio
import math
import re

import pytest

import chan
import wh
from chan import Client, run

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.e+]+|\+Inf)$')


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("metrics")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, tag="metrics",
                            server="location = /metrics "
                                   "{ wirehub_metrics; }")


def scrape(port):
    api = wh.Api(port, None, timeout=5)
    try:
        resp = api.request("GET", "/metrics")
    finally:
        api.close()
    assert resp.status == 200
    ctype = resp.header("content-type")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return parse(resp.body.decode())


def parse(text):
    """{(name, frozenset(labels)): value}; every family declared by a
    TYPE line before its samples, names and labels well formed."""
    types, samples = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, "family declared twice: " + name
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(3), m.group(5)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "no TYPE for " + name
        if types.get(name) == "counter" or types.get(family) == "counter":
            assert name.endswith("_total"), name
        pairs = frozenset(re.findall(r'([a-zA-Z_]+)="([^"]*)"',
                                     labels or ""))
        key = (name, pairs)
        assert key not in samples, "duplicate sample " + line
        samples[key] = float(value) if value != "+Inf" else math.inf
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_exposition_follows_connections_handshakes_and_deliveries(ngx):
    ws = chan.unique("met")
    tok = chan.token("m1", ws)
    before = scrape(ngx.port)

    async def scenario():
        clients = [await Client.open(ngx.rport, chan.token("m%d" % i, ws))
                   for i in range(6)]
        for c in clients:
            await c.subscribe("metrics/x")
        during = scrape(ngx.port)
        api = wh.Api(ngx.port, chan.service_token(ws))
        for i in range(5):
            chan.publish_ok(api, "metrics/x", {"i": i})
        api.close()
        for c in clients:
            got = await c.messages(5)
            assert [m["id"] for m in got] == [1, 2, 3, 4, 5]
        for c in clients:
            await c.close()
        return during

    during = run(scenario())

    # a refused handshake is counted as such
    assert wh.handshake_status(ngx.port, tok[:-3] + "AAA") == 401

    after = scrape(ngx.port)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(during, "wirehub_connections") \
        - value(before, "wirehub_connections") == 6
    assert value(during, "wirehub_subscriptions") \
        - value(before, "wirehub_subscriptions") == 6
    assert delta("wirehub_handshakes_total", result="ok") == 6
    assert delta("wirehub_handshakes_total", result="unauthorized") == 1
    assert delta("wirehub_messages_delivered_total") == 30
    assert value(after, "wirehub_workers") == 2
    assert value(after, "wirehub_link_up") == 2

    # the histogram is cumulative and its +Inf bucket is its count
    buckets = sorted(
        (float(dict(k[1])["le"]), v) for k, v in after.items()
        if k[0] == "wirehub_publish_to_delivery_seconds_bucket")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    assert buckets[-1][0] == math.inf
    assert buckets[-1][1] == value(
        after, "wirehub_publish_to_delivery_seconds_count")
    assert delta("wirehub_publish_to_delivery_seconds_count") >= 5


def test_connections_gauge_returns_to_zero_after_closes(ngx):
    ws = chan.unique("met0")

    async def scenario():
        clients = [await Client.open(ngx.rport, chan.token("z%d" % i, ws))
                   for i in range(4)]
        for c in clients:
            await c.close()

    base = value(scrape(ngx.port), "wirehub_connections")
    run(scenario())
    for _ in range(50):
        if value(scrape(ngx.port), "wirehub_connections") == base:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert value(scrape(ngx.port), "wirehub_connections") == base


def test_stats_shows_the_workers_view(ngx):
    ws = chan.unique("stats")

    async def scenario():
        c = await Client.open(ngx.rport, chan.token("s1", ws))
        api = wh.Api(ngx.port, chan.service_token(ws))
        doc = api.request("GET", "/api/stats").json()
        api.close()
        await c.close()
        return doc

    doc = run(scenario())
    assert doc["workspace"] == ws
    nginx = doc["nginx"]
    assert nginx["module_version"]
    assert nginx["links_up"] == 2
    assert len(nginx["workers"]) >= 2
    assert sum(w["sessions"] for w in nginx["workers"]) \
        == nginx["connections"] >= 1
