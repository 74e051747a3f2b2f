"""wirehub_metrics and GET /api/stats through nginx (2 workers) and wirehubd:
the Prometheus text exposition is parsed strictly, and its figures must
follow what the test does, summed over both workers.  One scrape holds
the module's families and wirehubd's; while wirehubd is down it holds the
module's alone.  promtool (Debian's prometheus package) lints a real
scrape and checks the alert rules of conf/monitoring/."""

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import time

import pytest

import chan
import wh
from chan import Client, run

MONITORING = os.path.join(wh.ROOT, "conf", "monitoring")

MODULE_FAMILIES = {
    "wirehub_build_info": "gauge",
    "wirehub_connections": "gauge",
    "wirehub_workers": "gauge",
    "wirehub_handshakes_total": "counter",
    "wirehub_sse_streams": "gauge",
    "wirehub_sse_handshakes_total": "counter",
    "wirehub_closes_total": "counter",
    "wirehub_messages_delivered_total": "counter",
    "wirehub_messages_received_total": "counter",
    "wirehub_subscriptions": "gauge",
    "wirehub_link_up": "gauge",
    "wirehub_link_reconnects_total": "counter",
    "wirehub_link_refused_total": "counter",
    "wirehub_limited_total": "counter",
    "wirehub_rate_limit_closes_total": "counter",
    "wirehub_publishes_paced_total": "counter",
    "wirehub_jwt_signatures_cached_total": "counter",
    "wirehub_jwt_tokens_cached_total": "counter",
    "wirehub_backend_calls": "gauge",
    "wirehub_backend_calls_total": "counter",
    "wirehub_publish_to_delivery_seconds": "histogram",
}

DAEMON_FAMILIES = {
    "wirehubd_build_info": "gauge",
    "wirehubd_start_time_seconds": "gauge",
    "wirehubd_uptime_seconds": "gauge",
    "wirehubd_link_peers": "gauge",
    "wirehubd_link_peers_paused": "gauge",
    "wirehubd_link_pauses_total": "counter",
    "wirehubd_sessions": "gauge",
    "wirehubd_clients_online": "gauge",
    "wirehubd_workspaces_online": "gauge",
    "wirehubd_sessions_kicked_total": "counter",
    "wirehubd_messages_published_total": "counter",
    "wirehubd_messages_fanned_out_total": "counter",
    "wirehubd_history_commits_total": "counter",
    "wirehubd_commands": "gauge",
    "wirehubd_command_queue_clients": "gauge",
    "wirehubd_command_queue_depth_max": "gauge",
    "wirehubd_commands_created_total": "counter",
    "wirehubd_command_deliveries_total": "counter",
    "wirehubd_commands_finished_total": "counter",
    "wirehubd_jobs": "gauge",
    "wirehubd_job_executions": "gauge",
    "wirehubd_job_executions_released_total": "counter",
    "wirehubd_retention_deleted_total": "counter",
    "wirehubd_engine_state": "gauge",
    "wirehubd_history_channels": "gauge",
    "wirehubd_history_messages": "gauge",
    "wirehubd_history_bytes": "gauge",
    "wirehubd_clients_registered": "gauge",
    "wirehubd_lmdb_used_bytes": "gauge",
    "wirehubd_lmdb_map_size_bytes": "gauge",
    "wirehubd_lmdb_map_max_bytes": "gauge",
    "wirehubd_mqtt_configured": "gauge",
    "wirehubd_mqtt_connected": "gauge",
    "wirehubd_mqtt_messages_received_total": "counter",
    "wirehubd_mqtt_messages_ingested_total": "counter",
    "wirehubd_mqtt_messages_coalesced_total": "counter",
    "wirehubd_mqtt_events_published_total": "counter",
    "wirehubd_mqtt_events_queued": "gauge",
    "wirehubd_mqtt_dropped_total": "counter",
    "wirehubd_mqtt_reconnects_total": "counter",
    "wirehubd_mqtt_connect_failures_total": "counter",
    "wirehubd_quota_refused_total": "counter",
    "wirehubd_sources": "gauge",
    "wirehubd_source_messages_received_total": "counter",
    "wirehubd_source_messages_published_total": "counter",
    "wirehubd_source_messages_refused_total": "counter",
    "wirehubd_source_reconnects_total": "counter",
    "wirehubd_source_connect_failures_total": "counter",
    "wirehubd_source_throttled_total": "counter",
}


def release():
    with open(os.path.join(wh.ROOT, "common", "wh_version.h")) as f:
        return re.search(r'#define WH_VERSION\s+"([^"]+)"', f.read()).group(1)


def nginx_version():
    out = subprocess.run([wh.NGINX, "-v"], capture_output=True, text=True,
                         timeout=10).stderr
    return re.search(r"nginx/(\S+)", out).group(1)


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus;"
                    " make deps installs it)")
    return path

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


scrape_text = wh.metrics_text


def scrape(port):
    return parse(scrape_text(port))


def families(text):
    """{family: type} of a scrape, as its TYPE lines declare them."""
    return {line.split(" ")[2]: line.split(" ")[3]
            for line in text.splitlines() if line.startswith("# TYPE ")}


def parse(text):
    """{(name, frozenset(labels)): value}; every family declared by a
    HELP and a TYPE line before its samples, names and labels well
    formed."""
    types, helps, samples = {}, set(), {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            _, _, name, text_ = line.split(" ", 3)
            assert text_.strip(), "empty HELP: " + line
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, "family declared twice: " + name
            assert name in helps, "TYPE before HELP: " + name
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


# ---------------------------------------------------------- wirehubd's


def build_info(samples):
    (labels,) = [dict(k[1]) for k in samples
                 if k[0] == "wirehub_build_info"]
    return labels


def wait_for(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


# the Redis engine adds this node's link to the cluster
CLUSTER_FAMILIES = {
    "wirehubd_node_info": "gauge",
    "wirehubd_engine_up": "gauge",
    "wirehubd_engine_failovers_total": "counter",
    "wirehubd_engine_reconnects_total": "counter",
    "wirehubd_engine_followed_channels": "gauge",
    "wirehubd_engine_delivered_total": "counter",
    "wirehubd_engine_gap_messages_total": "counter",
    "wirehubd_engine_state_commits_total": "counter",
    "wirehubd_engine_state_conflicts_total": "counter",
    "wirehubd_engine_state_reads_total": "counter",
    "wirehubd_engine_lease_held": "gauge",
    "wirehubd_engine_replicas": "gauge",
    "wirehubd_engine_replication_lag_bytes": "gauge",
}
if wh.ENGINE == "redis":
    DAEMON_FAMILIES = dict(DAEMON_FAMILIES, **CLUSTER_FAMILIES)


def test_one_scrape_has_module_and_daemon_families(ngx):
    text = scrape_text(ngx.port)
    assert families(text) == dict(MODULE_FAMILIES, **DAEMON_FAMILIES)
    samples = parse(text)

    assert build_info(samples) == {"version": release(),
                                   "nginx": nginx_version(),
                                   "daemon": release()}
    assert value(samples, "wirehubd_build_info", version=release(),
                 link_protocol=str(wh.LINK_VERSION)) == 1

    now = time.time()
    start = value(samples, "wirehubd_start_time_seconds")
    assert now - 600 < start <= now
    assert 0 <= value(samples, "wirehubd_uptime_seconds") <= now - start + 1

    # both workers are linked; nothing holds their requests
    assert value(samples, "wirehubd_link_peers") == 2
    assert value(samples, "wirehubd_link_peers_paused") == 0
    assert value(samples, "wirehubd_link_pauses_total") == 0

    states = {dict(k[1])["state"]: v for k, v in samples.items()
              if k[0] == "wirehubd_engine_state"}
    assert states == {"ok": 1, "full": 0, "sync_failed": 0, "error": 0}
    assert {dict(k[1])["engine"] for k in samples
            if k[0] == "wirehubd_engine_state"} == {wh.ENGINE}

    # the test daemon's maps: 64 MiB, growing up to the default 64 GiB;
    # the Redis engine opens no LMDB environment: the families are 0
    for space in ("state", "history"):
        used = value(samples, "wirehubd_lmdb_used_bytes", space=space)
        size = value(samples, "wirehubd_lmdb_map_size_bytes", space=space)
        top = value(samples, "wirehubd_lmdb_map_max_bytes", space=space)
        if wh.ENGINE == "lmdb":
            assert 0 < used <= size == 64 << 20
            assert top == 64 << 30
        else:
            assert used == size == top == 0

    # no mqtt directive: the families are there, at zero
    assert value(samples, "wirehubd_mqtt_configured") == 0
    assert value(samples, "wirehubd_mqtt_connected") == 0
    assert {dict(k[1])["reason"] for k in samples
            if k[0] == "wirehubd_mqtt_dropped_total"} == {
        "non_json", "oversize", "no_route", "storage", "egress"}


def test_daemon_figures_follow_actions(ngx):
    """Publish, register, queue a command, connect the client and answer
    it: each step moves wirehubd's figures, and only by what it did."""
    ws = chan.unique("metd")
    api = wh.Api(ngx.port, chan.service_token(ws))

    def delta(a, b, name, **labels):
        return value(b, name, **labels) - value(a, name, **labels)

    # the sessions of the tests before are gone, their presence stored
    base = wait_for(lambda: (lambda s: s if value(s, "wirehubd_sessions")
                             == 0 else None)(scrape(ngx.port)),
                    "wirehubd to see no session")

    chan.publish_ok(api, "metrics/d", {"n": 1})
    s1 = scrape(ngx.port)
    if wh.ENGINE == "lmdb":
        # Redis holds the history of the cluster: these figures are
        # the LMDB engine's (the Redis engine counts its deliveries)
        assert delta(base, s1, "wirehubd_history_messages") == 1
        assert delta(base, s1, "wirehubd_history_channels") == 1
        assert value(s1, "wirehubd_history_bytes") > 0
    assert delta(base, s1, "wirehubd_messages_published_total") == 1
    assert delta(base, s1, "wirehubd_history_commits_total") == 1

    status, doc = api.call("POST", "/api/clients", {
        "id": "dev-1", "name": "Desk", "client_type": "agent"})
    assert status == 201, doc
    s2 = scrape(ngx.port)
    if wh.ENGINE == "lmdb":
        # the registry of a cluster is in Redis, uncounted (as history)
        assert delta(s1, s2, "wirehubd_clients_registered") == 1

    status, doc = api.call("POST", "/api/clients/dev-1/commands",
                           {"command": "reboot"})
    assert status == 202, doc
    s3 = scrape(ngx.port)
    assert delta(s2, s3, "wirehubd_commands", status="pending") == 1
    assert delta(s2, s3, "wirehubd_commands", status="sent") == 0
    assert delta(s2, s3, "wirehubd_commands_created_total") == 1
    assert delta(s2, s3, "wirehubd_command_queue_clients") == 1
    assert value(s3, "wirehubd_command_queue_depth_max") >= 1

    agent = wh.RawWebSocket.open(ngx.port, chan.token("dev-1", ws))
    try:
        msg = agent.recv_type("device_command")
        s4 = scrape(ngx.port)
        assert delta(s2, s4, "wirehubd_commands", status="pending") == 0
        assert delta(s2, s4, "wirehubd_commands", status="sent") == 1
        assert delta(s3, s4, "wirehubd_command_deliveries_total") == 1
        assert value(s4, "wirehubd_sessions") == 1
        assert value(s4, "wirehubd_clients_online") == 1
        assert value(s4, "wirehubd_workspaces_online") == 1
        assert delta(s3, s4, "wirehubd_clients_registered") == 0

        ack = agent.result(msg["command_id"])
        assert ack["status"] == "completed", ack
        s5 = scrape(ngx.port)
        assert delta(s4, s5, "wirehubd_commands_finished_total",
                     status="completed") == 1
        assert delta(s2, s5, "wirehubd_commands", status="sent") == 0
        assert delta(s2, s5, "wirehubd_command_queue_clients") == 0
    finally:
        agent.close()
        api.close()

    wait_for(lambda: value(scrape(ngx.port), "wirehubd_sessions") == 0,
             "the session to close")


def test_promtool_lints_a_real_scrape(ngx):
    tool = promtool()
    text = scrape_text(ngx.port)
    r = subprocess.run([tool, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def expr_families(expr):
    """The Wirehub families an expression names (histogram series by
    their family)."""
    return {re.sub(r"_(bucket|sum|count)$", "", n)
            for n in re.findall(r"\bwirehubd?_[a-z_]+", expr)}


def test_alert_rules_pass_promtool_and_name_real_families(ngx):
    tool = promtool()
    rules = os.path.join(MONITORING, "wirehub-alerts.yml")
    r = subprocess.run([tool, "check", "rules", rules],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # the rules' own unit tests: each alert fires on its series
    r = subprocess.run([tool, "test", "rules", "wirehub-alerts.test.yml"],
                       cwd=MONITORING, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    known = families(scrape_text(ngx.port))
    with open(rules) as f:
        exprs = re.findall(r"expr: (.*(?:\n {8,}\S.*)*)", f.read())
    named = set().union(*(expr_families(e) for e in exprs))
    assert named and named <= set(known), named - set(known)


def test_dashboard_names_real_families(ngx):
    with open(os.path.join(MONITORING, "wirehub-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    named = set().union(*(expr_families(e) for e in exprs))
    known = set(families(scrape_text(ngx.port)))
    assert named <= known, named - known
    for fam in ("wirehub_connections", "wirehub_handshakes_total",
                "wirehub_messages_delivered_total",
                "wirehub_publish_to_delivery_seconds", "wirehub_link_up",
                "wirehub_link_reconnects_total", "wirehubd_commands",
                "wirehubd_history_bytes", "wirehubd_lmdb_used_bytes",
                "wirehubd_mqtt_connected"):
        assert fam in named, fam


def test_scrape_while_wirehubd_is_down(ngx, daemon):
    """Last in this file: it restarts the module's wirehubd."""
    relinks = chan.link_up_counts(ngx)
    daemon.kill9()
    try:
        wait_for(lambda: value(scrape(ngx.port), "wirehub_link_up") == 0,
                 "both links to go down")
        text = scrape_text(ngx.port)
        assert families(text) == MODULE_FAMILIES
        samples = parse(text)
        assert build_info(samples) == {"version": release(),
                                       "nginx": nginx_version(),
                                       "daemon": ""}
        assert value(samples, "wirehub_workers") == 2
    finally:
        daemon.start()
        chan.wait_relinked(ngx, relinks)

    wait_for(lambda: value(scrape(ngx.port), "wirehub_link_up") == 2,
             "both links to come back")
    text = scrape_text(ngx.port)
    assert families(text) == dict(MODULE_FAMILIES, **DAEMON_FAMILIES)
    assert build_info(parse(text))["daemon"] == release()
