"""Cluster mode (DESIGN.md "Cluster mode") on this machine: three nodes
(nginx + wirehubd each, `engine redis` through Sentinel), a front nginx
balancing WebSockets and the API across them with `hash $remote_addr
consistent`, a Redis primary with two replicas and three Sentinels, all
real processes on loopback.

It checks cross-node fan-out (publishes on every node reach the
subscribers of every node once, in id order), resume on another node
after a node is killed with -9, and a Redis primary failover during a
stream of publishes: every message answered 202 (replicas_ack=1) reaches
the subscribers and stays in history, none twice, in order."""

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time

import pytest

import chan
import cmd_helpers as cmd
import redis_harness as rh
import wh
from chan import Client, record_metric, run
from test_sources import upstreams  # noqa: F401 (a fixture)

NODES = 3

# a delivery whose commit was not confirmed when the primary died may
# still be in Redis as sent: its frame never left, and the agent gets it
# when the ack window (short here) passes
NODE_COMMANDS = "commands ack_timeout=5s;\n"

NODE_SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
location = /healthz { wirehub_api; }
location = /metrics { wirehub_metrics; }
"""

FRONT_HTTP = """
upstream wirehub_nodes {
    hash $remote_addr consistent;
%s
}
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
"""

FRONT_SERVER = """
location /ws/ {
    proxy_pass http://wirehub_nodes;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_read_timeout 1h;
}
location /api/ {
    proxy_pass http://wirehub_nodes;
    proxy_next_upstream error timeout;
}
"""


class Node:
    def __init__(self, i, engine_line):
        self.name = "n%d" % i
        self.daemon = chan.Daemon(
            "cluster-%s" % self.name, history="length=1000 ttl=24h",
            extra="%s\nnode_id %s;\n%s" % (engine_line, self.name,
                                           NODE_COMMANDS))
        self.daemon.start()
        http = "%s\nwirehub_send_limit 32m;\n" % wh.jwt_directives()
        self.ngx = wh.Nginx("cluster-%s" % self.name, http=http,
                            server=NODE_SERVER,
                            daemon_socket=self.daemon.socket).start()
        self.ngx.wait_link_up()
        self.dead = False

    @property
    def port(self):
        return self.ngx.port

    def kill9(self):
        """Every process of the node at once, as a power cut would."""
        pids = [self.ngx.proc.pid] + list(self.ngx.workers())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.daemon.kill9()
        self.ngx.proc.wait(5)
        self.dead = True

    def stop(self):
        if not self.dead:
            self.ngx.stop()
        # a killed node's daemon is gone too: this keeps its log and
        # removes its prefix
        self.daemon.stop()
        self.ngx.cleanup()


def engine_line(redis_set, replicas_ack):
    return ("engine redis sentinel=%s master=%s replicas_ack=%d "
            "ack_timeout=500ms connect_timeout=300ms command_timeout=1s "
            "node_lease=2s;"
            % (",".join(s.addr for s in redis_set.sentinels), rh.MASTER,
               replicas_ack))


class Cluster:
    def __init__(self, replicas_ack=1):
        self.redis = rh.RedisSet(replicas=2, sentinels=3)
        self.nodes = []
        self.front = None
        try:
            self.redis.wait_replicated()
            self.redis.wait_sentinels_agree()
            line = engine_line(self.redis, replicas_ack)
            for i in range(1, NODES + 1):
                self.nodes.append(Node(i, line))
            servers = "\n".join("    server 127.0.0.1:%d max_fails=1 "
                                "fail_timeout=10s;" % n.port
                                for n in self.nodes)
            self.front = wh.Nginx("cluster-front",
                                  http=FRONT_HTTP % servers,
                                  server=FRONT_SERVER).start()
            for n in self.nodes:
                rh.wait_for(lambda n=n: self.engine(n)["up"], 15,
                            what="%s reaching Redis" % n.name)
        except BaseException:
            self.stop()
            raise

    def engine(self, node, ws=wh.WORKSPACE):
        api = wh.Api(node.port, chan.service_token(ws))
        try:
            r = api.request("GET", "/api/stats")
            assert r.status == 200, r
            return r.json()["engine"]
        finally:
            api.close()

    def stop(self):
        if self.front is not None:
            self.front.stop()
            self.front.cleanup()
        for n in self.nodes:
            n.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(keys):
    c = Cluster()
    yield c
    c.stop()


def ids_in_order(msgs, channel):
    got = [m for m in msgs if m.get("channel") == channel]
    return [m["id"] for m in got], got


def test_nodes_report_the_engine(cluster):
    for n in cluster.nodes:
        e = cluster.engine(n)
        assert e["kind"] == "redis"
        assert e["node_id"] == n.name
        assert e["up"] is True
        assert e["primary"] == cluster.redis.primary.addr
        assert e["lease"]["held"] is True and e["lease"]["ms"] == 2000
        assert 0 <= e["lease"]["renewed_ms_ago"] < 2000
    # the primary's two replicas, as INFO tells (asked once a second)
    for n in cluster.nodes:
        e = rh.wait_for(lambda n=n: (lambda e: e if e["replicas"] == 2
                                     else None)(cluster.engine(n)), 10,
                        what="the replicas seen from %s" % n.name)
        assert e["replication_lag_bytes"] >= 0


def test_fanout_across_nodes_in_order(cluster):
    """Publishes on all three nodes at once; a subscriber on each node
    gets every message once, in id order, ids contiguous."""
    ws = chan.unique("cl")
    ch = "room/fan"
    per_node = 60
    tok = chan.token("viewer", ws)

    async def scenario():
        subs = [await Client.open(n.port, tok) for n in cluster.nodes]
        for s in subs:
            await s.subscribe(ch)
        acked = {}

        def publish(node):
            api = wh.Api(node.port, chan.service_token(ws))
            try:
                for k in range(per_node):
                    mid, _ = chan.publish_ok(api, ch,
                                             {"from": node.name, "k": k})
                    acked[mid] = (node.name, k)
            finally:
                api.close()

        threads = [threading.Thread(target=publish, args=(n,))
                   for n in cluster.nodes]
        for t in threads:
            t.start()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [t.join() for t in threads])
        total = per_node * len(cluster.nodes)
        assert sorted(acked) == list(range(1, total + 1))
        for s in subs:
            msgs = await s.messages(total, timeout=20)
            ids, got = ids_in_order(msgs, ch)
            assert ids == list(range(1, total + 1))
            for m in got:
                assert (m["data"]["from"], m["data"]["k"]) == acked[m["id"]]
            assert await s.barrier() == []
        for s in subs:
            await s.close()

    run(scenario())


def connections(cluster, node, ws):
    api = wh.Api(node.port, chan.service_token(ws))
    try:
        r = api.request("GET", "/api/stats")
        assert r.status == 200, r
        return r.json()["connections"]
    finally:
        api.close()


def test_presence_counts_every_node(cluster):
    """active_clients and the stats' connections count the sessions of
    every node: one session on each of nodes 1 and 2, then a handshake
    on node 3 is told of three."""
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes

    async def scenario():
        a = await Client.open(n1.port, chan.token("a", ws))
        b = await Client.open(n2.port, chan.token("b", ws))
        rh.wait_for(lambda: connections(cluster, n3, ws) == 2, 10,
                    what="node 3 counting the sessions of nodes 1 and 2")
        c = await Client.open(n3.port, chan.token("c", ws))
        assert c.status["data"]["active_clients"] == 3, c.status
        rh.wait_for(lambda: all(connections(cluster, n, ws) == 3
                                for n in cluster.nodes), 10,
                    what="every node counting three sessions")
        await b.close()
        rh.wait_for(lambda: connections(cluster, n1, ws) == 2, 10,
                    what="node 1 seeing node 2's session end")
        await a.close()
        await c.close()

    run(scenario())


def agent(node, ws, sub, opened):
    a = wh.RawWebSocket.open(node.port, cmd.client_token(ws, sub))
    opened.append(a)
    return a


def node_api(node, ws):
    return cmd.commands_api(node.port, cmd.service_token(ws))


@pytest.fixture
def opened():
    conns = []
    yield conns
    for c in conns:
        c.close_socket()


def test_command_crosses_nodes(cluster, opened):
    """A client registered and a command queued through node 1 reach the
    agent connected to node 2; its result completes the command, as node
    3 sees it; nothing is delivered twice."""
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    a1, a3 = node_api(n1, ws), node_api(n3, ws)
    try:
        status, doc = a1.call("POST", "/clients", {
            "id": "pc-1", "name": "Desk", "client_type": "desktop"})
        assert status == 201, doc
        status, doc = a3.call("GET", "/clients/pc-1")
        assert status == 200 and doc["name"] == "Desk", doc

        dev = agent(n2, ws, "pc-1", opened)
        status, doc = a1.call("POST", "/clients/pc-1/commands",
                              {"command": "reboot", "payload": {"k": 1}})
        assert status == 202, doc
        cid = doc["command_id"]
        msg = dev.recv_type("device_command")
        assert (msg["command_id"], msg["attempt"]) == (cid, 1)
        assert msg["payload"] == {"k": 1}

        ack = dev.result(cid, result={"ok": True})
        assert ack["status"] == "completed", ack
        status, doc = a3.call("GET", "/commands/" + cid)
        assert status == 200, doc
        assert doc["status"] == "completed" and doc["result"] == {"ok": True}
        assert [h["status"] for h in doc["history"]] == \
            ["pending", "sent", "completed"]
        assert doc["history"][1]["session"] == dev.session
        assert dev.quiet(1.0) == []
    finally:
        a1.close()
        a3.close()


def command_done(api, dev, sub, name, complete=True):
    """A command for sub through api reaches its agent dev (and, with
    complete, its result completes it): its id."""
    status, doc = api.call("POST", "/clients/%s/commands" % sub,
                           {"command": name})
    assert status == 202, doc
    cid = doc["command_id"]
    assert dev.recv_type("device_command", timeout=10)["command_id"] == cid
    if complete:
        assert dev.result(cid)["status"] == "completed"
    return cid


def reconnects(node):
    """The node's wirehubd_engine_reconnects_total (its /metrics)."""
    api = wh.Api(node.port, None, timeout=5)
    try:
        resp = api.request("GET", "/metrics")
    finally:
        api.close()
    assert resp.status == 200, resp
    for line in resp.body.decode().splitlines():
        if line.startswith("wirehubd_engine_reconnects_total "):
            return int(line.split()[1])
    raise AssertionError("no wirehubd_engine_reconnects_total")


def test_scripts_flushed_are_loaded_again(cluster, opened):
    """The nodes send their Lua scripts by SHA1, each with its body on
    its first call to a script cache.  After SCRIPT FLUSH on the primary,
    a call that meets NOSCRIPT fails alone (a publish answers 503 and is
    not stored), and the node's next call of every script carries its
    body again, on the same connection: no node reconnects, so nothing
    that ran beside the failed call (a publish beside a node's lease)
    answers 503.  Publishes through every node and commands then work as
    before, and history holds exactly the publishes answered 202, in
    order."""
    ws = chan.unique("cl")
    ch = "room/flush"
    n1 = cluster.nodes[0]
    a1 = node_api(n1, ws)
    apis = [wh.Api(n.port, chan.service_token(ws)) for n in cluster.nodes]
    try:
        acked = [chan.publish_ok(api, ch, {"k": 0})[0] for api in apis]
        dev = agent(n1, ws, "pc-f", opened)
        command_done(a1, dev, "pc-f", "ping", complete=False)
        before = [reconnects(n) for n in cluster.nodes]

        with cluster.redis.primary.client() as r:
            assert r.command("SCRIPT", "FLUSH") == b"OK"
        refused = []

        def published(api):
            resp = api.publish(ch, {"k": len(acked) + len(refused)},
                               "reading")
            if resp.status == 202:
                acked.append(resp.json()["id"])
                return True
            assert resp.status == 503, resp
            assert "(NOSCRIPT)" in resp.json()["error"]["message"], resp
            refused.append(resp)
            return False

        for api in apis:
            rh.wait_for(lambda: published(api), 15, interval=0.05,
                        what="a publish answered 202 after SCRIPT FLUSH")
        # n1's publish was the first call after the flush
        assert len(refused) >= 1, refused
        for k in range(5):
            acked.append(chan.publish_ok(apis[k % 3], ch, {"k": 100 + k})[0])
        assert acked == list(range(1, len(acked) + 1)), acked

        command_done(a1, dev, "pc-f", "again")
        r = apis[0].history(ch, "limit=1000")
        assert r.status == 200, r
        assert [m["id"] for m in r.json()["items"]] == acked
        assert [reconnects(n) for n in cluster.nodes] == before
        log = n1.daemon.read_log()
        assert "forgot the scripts loaded (NOSCRIPT)" in log, log
    finally:
        a1.close()
        for api in apis:
            api.close()


def test_scripts_without_the_script_command(tmp_path, opened):
    """A Redis where SCRIPT is renamed away (as some managed ones do):
    a script's first call on a connection goes with EVAL, the next ones
    by SHA1, so publishes and commands work as anywhere else."""
    server = rh.RedisServer(str(tmp_path), "noscript",
                            rh.redis_lines() + ['rename-command SCRIPT ""'])
    node = None
    try:
        node = Node(7, "engine redis host=127.0.0.1 port=%d "
                    "command_timeout=1s node_lease=2s;" % server.port)
        ws = chan.unique("cl")
        api = wh.Api(node.port, chan.service_token(ws))
        a1 = node_api(node, ws)
        try:
            ids = [chan.publish_ok(api, "room/e", {"k": k})[0]
                   for k in range(5)]
            assert ids == list(range(1, 6))
            dev = agent(node, ws, "pc-e", opened)
            command_done(a1, dev, "pc-e", "ping")
        finally:
            api.close()
            a1.close()
        log = open(node.daemon.log).read()
        assert "NOSCRIPT" not in log and "[error]" not in log, log
        with server.client() as r:
            stats = r.command("INFO", "commandstats").decode()
        assert "cmdstat_evalsha:" in stats
    finally:
        if node is not None:
            node.stop()
        server.stop()


def test_new_client_is_stored_before_it_is_told_connected(cluster, opened):
    """A client's first session is answered (connection_status) only once
    its record is in Redis: a command for it through another node at that
    very moment is queued, not refused 404."""
    ws = chan.unique("cl")
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    a1 = node_api(n1, ws)
    try:
        for i in range(20):
            sub = "fresh-%d" % i
            dev = agent(n2, ws, sub, opened)
            status, doc = a1.call("POST", "/clients/%s/commands" % sub,
                                  {"command": "ping"})
            assert status == 202, (sub, doc)
            msg = dev.recv_type("device_command")
            assert msg["command_id"] == doc["command_id"]
    finally:
        a1.close()


def test_offline_client_gets_commands_on_any_node(cluster, opened):
    """Commands queued through every node while the client is away come
    to it on whichever node it connects to, in creation order."""
    ws = chan.unique("cl")
    apis = [node_api(n, ws) for n in cluster.nodes]
    try:
        status, doc = apis[1].call("POST", "/clients", {
            "id": "pc-2", "name": "Desk", "client_type": "desktop"})
        assert status == 201, doc
        ids = []
        for k in range(9):
            status, doc = apis[k % 3].call(
                "POST", "/clients/pc-2/commands",
                {"command": "step", "payload": {"k": k}})
            assert status == 202, doc
            ids.append(doc["command_id"])
        status, doc = apis[1].call("GET", "/clients/pc-2/commands")
        assert status == 200, doc
        assert [c["command_id"] for c in doc["items"]] == ids

        dev = agent(cluster.nodes[2], ws, "pc-2", opened)
        got = []
        for _ in ids:
            msg = dev.recv_type("device_command")
            got.append(msg["command_id"])
            assert dev.result(msg["command_id"])["status"] == "completed"
        assert got == ids
        assert dev.quiet(1.0) == []
    finally:
        for a in apis:
            a.close()


def test_greeted_before_commands_on_a_new_node(cluster, opened):
    """A client that connects to a node which has not seen it yet, just
    as a command queued through another node is announced there, gets
    connection_status first and then its commands in creation order.
    Before the fix, the announced command reached the session wirehubd
    had not accepted yet, and left ahead of connection_status (1 to 12
    of the 40 clients in each run)."""
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    a1 = node_api(n1, ws)
    try:
        for i in range(40):
            status, doc = a1.call("POST", "/clients", {
                "id": "pc-g%d" % i, "name": "Desk",
                "client_type": "desktop"})
            assert status == 201, doc
    finally:
        a1.close()

    def connect_as_queued(i):
        cid = "pc-g%d" % i
        a2, a3 = node_api(n2, ws), node_api(n3, ws)
        try:
            ids = []
            # node 3 holds the client's queue in memory, so node 2's
            # command is announced to node 3 while the client connects
            for api in (a3, a2):
                status, doc = api.call(
                    "POST", "/clients/%s/commands" % cid,
                    {"command": "go", "payload": {"i": i}})
                assert status == 202, doc
                ids.append(doc["command_id"])
            dev = agent(n3, ws, cid, opened)
            got = [dev.recv_type("device_command")["command_id"]
                   for _ in ids]
            assert got == ids, (cid, got, ids)
        finally:
            a2.close()
            a3.close()

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        list(pool.map(connect_as_queued, range(40)))


def test_delete_on_one_node_closes_sessions_on_another(cluster, opened):
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    a1 = node_api(n1, ws)
    try:
        token = cmd.client_token(ws, "pc-3")
        dev = wh.RawWebSocket.open(n2.port, token)
        opened.append(dev)
        rh.wait_for(lambda: a1.call("GET", "/clients/pc-3")[0] == 200, 10,
                    what="the implicit registration")
        status, doc = a1.call("DELETE", "/clients/pc-3")
        assert status == 200 and doc["deleted"] is True, doc
        assert dev.wait_closed() == (4403, "client deleted")
        # every node refuses the token from now on
        for n in cluster.nodes:
            assert wh.handshake_status(n.port, token) == 401
    finally:
        a1.close()


def history_len(node, ws, ch):
    api = wh.Api(node.port, chan.service_token(ws))
    try:
        r = api.history(ch, "limit=1000")
        assert r.status == 200, r
        return len(r.json()["items"])
    finally:
        api.close()


def source_body(sid, up):
    return {"id": sid, "url": "ws://127.0.0.1:%d/ws/%s" % (up.port, sid),
            "channel": "up/%s/{event}" % sid, "type": "{event}",
            "headers": {"Authorization": "Bearer s3cr3t"},
            "reconnect_min_ms": 100, "reconnect_max_ms": 1000}


def test_runtime_sources_on_any_node(cluster, upstreams, tmp_path):
    """A source posted through node 1 runs there, once; every node lists
    and reads it (state "remote" and the node elsewhere); a delete
    through node 2 stops it on node 1."""
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    up = upstreams(tmp_path, count=3, interval=0.05).start()
    a1, a2, a3 = node_api(n1, ws), node_api(n2, ws), node_api(n3, ws)
    try:
        status, doc = a1.call("POST", "/sources", source_body("s1", up))
        assert status == 201, doc
        assert doc["origin"] == "api" and "s3cr3t" not in json.dumps(doc)
        status, doc = a2.call("POST", "/sources", source_body("s1", up))
        assert status == 409, doc
        cmd.wait_for(lambda: history_len(n3, ws, "up/s1/message.ack") == 3,
                     10, what="the source's messages, read on node 3")
        status, doc = a2.call("GET", "/sources")
        assert status == 200, doc
        assert [(s["id"], s["state"], s["node"]) for s in doc["items"]] \
            == [("s1", "remote", "n1")]
        assert doc["items"][0]["headers"] == ["Authorization"]
        status, doc = a1.call("GET", "/sources/s1")
        assert status == 200 and doc["state"] == "connected", doc
        assert "node" not in doc
        # one connection: no other node runs it
        assert len([o for o in up.lines("open")
                    if o["open"] == "/ws/s1"]) == 1

        status, doc = a2.call("DELETE", "/sources/s1")
        assert status == 200 and doc == {"id": "s1", "deleted": True}, doc
        cmd.wait_for(lambda: a1.call("GET", "/sources")[1]["items"] == [],
                     10, what="node 1 stopping the source")
        for a in (a1, a2, a3):
            assert a.call("GET", "/sources/s1")[0] == 404
        assert a3.call("DELETE", "/sources/s1")[0] == 404
    finally:
        for a in (a1, a2, a3):
            a.close()


def register(api, ids):
    for cid in ids:
        status, doc = api.call("POST", "/clients", {
            "id": cid, "name": cid, "client_type": "desktop"})
        assert status == 201, doc


def get_job(api, job_id):
    status, doc = api.call("GET", "/jobs/" + job_id)
    assert status == 200, doc
    return doc


def test_job_read_and_cancelled_through_any_node(cluster, opened):
    """A job posted through node 1 (which runs its rollout) is read,
    listed and cancelled through the others; node 1 hears of the cancel
    and stops its rollout: nothing more is sent."""
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    a1, a2, a3 = node_api(n1, ws), node_api(n2, ws), node_api(n3, ws)
    try:
        ids = ["jc-%d" % k for k in range(5)]
        register(a1, ids)
        devs = [agent(n2, ws, cid, opened) for cid in ids]
        status, doc = a1.call("POST", "/jobs", {
            "command": "update", "payload": {"v": 2},
            "target": {"clients": ids},
            "rollout": {"max_per_minute": 60}})
        assert status == 202, doc
        job_id = doc["job_id"]
        # the first execution goes at once; the next a second later
        msg = devs[0].recv_type("device_command", timeout=10)
        assert msg["command"] == "update"
        assert devs[0].result(msg["command_id"])["status"] == "completed"

        # another node reads the counts node 1 stored (within a second)
        cmd.wait_for(lambda: get_job(a2, job_id)["counts"]["completed"]
                     == 1, 10, what="the counts seen from node 2")
        doc = get_job(a2, job_id)
        assert doc["status"] == "in_progress" and doc["targets"] == 5, doc
        status, doc = a3.call("GET", "/jobs")
        assert status == 200, doc
        assert [j["job_id"] for j in doc["items"]] == [job_id]
        status, doc = a3.call("GET", "/jobs/%s/executions" % job_id)
        assert status == 200, doc
        assert [e["client_id"] for e in doc["items"]] == ids
        assert doc["items"][0]["status"] == "completed"

        status, doc = a3.call("POST", "/jobs/%s/cancel" % job_id)
        assert status == 200 and doc["status"] == "cancelled", doc
        status, doc = a3.call("POST", "/jobs/%s/cancel" % job_id)
        assert status == 409, doc
        # node 1 read the cancel: its memory says so, its sweep cancels
        # what it had released and not yet sent
        cmd.wait_for(lambda: get_job(a1, job_id)["status"] == "cancelled",
                     10, what="node 1 seeing the cancel")
        counts = cmd.wait_for(
            lambda: (lambda c: c if c["completed"] + c["cancelled"]
                     + c["sent"] == 5 else None)(get_job(a1, job_id)
                                                 ["counts"]),
            10, what="node 1's counts after the cancel")
        # what was sent before the cancel came (and is not answered),
        # then nothing more
        sent = [m for d in devs[1:] for m in d.quiet(0.5)
                if m.get("type") == "device_command"]
        assert len(sent) == counts["sent"], (sent, counts)
        assert [m for d in devs[1:] for m in d.quiet(2.0)
                if m.get("type") == "device_command"] == []
    finally:
        for a in (a1, a2, a3):
            a.close()


def redis_ports_of(pid):
    """The local ports of the process's TCP connections (ss -tnp)."""
    out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True,
                         check=True).stdout
    ports = []
    for line in out.splitlines():
        if "pid=%d," % pid in line:
            ports.append(line.split()[3].rsplit(":", 1)[1])
    return ports


def test_revocation_lost_in_an_outage_is_read_again(cluster, opened):
    """Node 2 is stopped while Redis drops its connections and node 1
    deletes a client: the note never reaches node 2.  Once it runs again
    it reconnects, reads every revocation again and closes the client's
    session there (4403)."""
    ws = chan.unique("cl")
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    a1 = node_api(n1, ws)
    try:
        status, doc = a1.call("POST", "/clients", {
            "id": "pc-r", "name": "Desk", "client_type": "desktop"})
        assert status == 201, doc
        token = cmd.client_token(ws, "pc-r")
        dev = wh.RawWebSocket.open(n2.port, token)
        opened.append(dev)
        pid = n2.daemon.pid
        ports = redis_ports_of(pid)
        assert ports, "wirehubd of n2 has no TCP connection"
        os.kill(pid, signal.SIGSTOP)
        try:
            with cluster.redis.primary.client() as r:
                killed = 0
                for port in ports:
                    try:
                        killed += r.command("CLIENT", "KILL", "ADDR",
                                            "127.0.0.1:%s" % port)
                    except rh.RespError:
                        pass    # a Sentinel's, not the primary's
            # its commands and its pub/sub connections
            assert killed >= 2, (ports, killed)
            status, doc = a1.call("DELETE", "/clients/pc-r")
            assert status == 200, doc
        finally:
            os.kill(pid, signal.SIGCONT)
        assert dev.wait_closed(timeout=15) == (4403, "client deleted")
        assert wh.handshake_status(n2.port, token) == 401
    finally:
        a1.close()


def test_resume_on_another_node_after_kill9(cluster, opened):
    """A subscriber's node dies with SIGKILL; it reconnects to another
    node with `since` and gets exactly what it missed, then live ones.
    An agent on the same node had been sent a command it never acked:
    on the other node the command comes again (attempt 2) and completes
    once."""
    ws = chan.unique("cl")
    ch = "room/resume"
    tok = chan.token("viewer", ws)
    victim, other, publisher = cluster.nodes[2], cluster.nodes[1], \
        cluster.nodes[0]
    api = wh.Api(publisher.port, chan.service_token(ws))
    capi = node_api(publisher, ws)
    status, doc = capi.call("POST", "/clients", {
        "id": "pc-k", "name": "Desk", "client_type": "desktop"})
    assert status == 201, doc
    dev = agent(victim, ws, "pc-k", opened)
    status, doc = capi.call("POST", "/clients/pc-k/commands",
                            {"command": "reboot", "payload": {"k": 9}})
    assert status == 202, doc
    cid = doc["command_id"]
    msg = dev.recv_type("device_command")
    assert (msg["command_id"], msg["attempt"]) == (cid, 1)

    async def scenario():
        s = await Client.open(victim.port, tok)
        reply = await s.subscribe(ch)
        epoch = reply["epoch"]
        for k in range(5):
            chan.publish_ok(api, ch, {"k": k})
        first = await s.messages(5)
        assert [m["id"] for m in first] == [1, 2, 3, 4, 5]
        rh.wait_for(lambda: connections(cluster, publisher, ws) == 2, 10,
                    what="the victim's sessions counted elsewhere")
        victim.kill9()
        # its lease (2 s) runs out: it no longer counts
        rh.wait_for(lambda: connections(cluster, publisher, ws) == 0, 10,
                    what="the dead node's sessions forgotten")
        for k in range(5, 12):
            chan.publish_ok(api, ch, {"k": k})
        s2 = await Client.open(other.port, tok)
        reply = await s2.subscribe(ch, since={"id": 5, "epoch": epoch})
        assert reply["recovered"] is True, reply
        missed = await s2.messages(7)
        assert [m["id"] for m in missed] == list(range(6, 13))
        assert [m["data"]["k"] for m in missed] == list(range(5, 12))
        chan.publish_ok(api, ch, {"k": 12})
        live = await s2.messages(1)
        assert live[0]["id"] == 13
        assert await s2.barrier() == []
        await s2.close()

        dev2 = agent(other, ws, "pc-k", opened)
        again = dev2.recv_type("device_command")
        assert (again["command_id"], again["attempt"]) == (cid, 2)
        assert again["payload"] == {"k": 9}
        assert dev2.result(cid)["status"] == "completed"
        assert dev2.quiet(1.0) == []
        status, doc = capi.call("GET", "/commands/" + cid)
        assert status == 200 and doc["status"] == "completed", doc
        assert [h["status"] for h in doc["history"]] == \
            ["pending", "sent", "sent", "completed"]

    try:
        run(scenario())
    finally:
        api.close()
        capi.close()


def test_front_tier_spreads_and_proxies(cluster):
    """Through the front nginx: handshakes and API calls from different
    addresses land on different nodes and see the same channels."""
    ws = chan.unique("cl")
    tok = chan.token("viewer", ws)
    live = [n for n in cluster.nodes if not n.dead]
    api = wh.Api(cluster.front.port, chan.service_token(ws))
    try:
        mid, epoch = chan.publish_ok(api, "room/front", {"k": 0})
        assert mid == 1
        seen = set()
        for last in range(1, 40):
            sock = wh.RawWebSocket.connect(
                cluster.front.port, token=tok,
                source=("127.0.0.%d" % last, 0))
            with sock:
                status = sock.recv_json()
                assert status["type"] == "connection_status"
                seen.add(status["data"]["session"].rsplit("-", 1)[0])
            if len(seen) >= 2:
                break
        assert len(seen) >= 2, seen
        hist = api.history("room/front")
        assert hist.status == 200
        assert [m["id"] for m in hist.json()["items"]] == [1]
    finally:
        api.close()
    assert live


@pytest.fixture
def own_cluster(keys):
    """A cluster of the test's own: it fails its primary over."""
    c = Cluster()
    yield c
    c.stop()


def test_job_taken_over_when_its_node_dies(own_cluster, opened, upstreams,
                                           tmp_path):
    """The node running a job's rollout is killed with -9: once its
    lease ends another node takes the job over and finishes it; every
    target gets its command once."""
    cluster = own_cluster
    ws = chan.unique("cl")
    n1, n2, n3 = cluster.nodes
    up = upstreams(tmp_path, count=3, interval=0.05).start()
    a2 = node_api(n2, ws)
    a1 = node_api(n1, ws)
    try:
        ids = ["jt-%d" % k for k in range(4)]
        register(a2, ids)
        devs = [agent(n3, ws, cid, opened) for cid in ids]
        # a run-time source on the node that dies goes over too
        status, doc = a1.call("POST", "/sources", source_body("s2", up))
        assert status == 201, doc
        cmd.wait_for(lambda: history_len(n2, ws, "up/s2/message.ack") == 3,
                     10, what="the source's messages")
        status, doc = a1.call("POST", "/jobs", {
            "command": "update", "payload": {"v": 3},
            "target": {"clients": ids},
            "rollout": {"max_per_minute": 60}})
        assert status == 202, doc
        job_id = doc["job_id"]
        msg = devs[0].recv_type("device_command", timeout=10)
        assert devs[0].result(msg["command_id"])["status"] == "completed"
        n1.kill9()
        t0 = time.monotonic()
        seen = {0: [msg["command_id"]]}
        for k in range(1, 4):
            m = devs[k].recv_type("device_command", timeout=30)
            seen[k] = [m["command_id"]]
            assert devs[k].result(m["command_id"])["status"] == "completed"
        took = time.monotonic() - t0
        doc = cmd.wait_for(lambda: (lambda d: d if d["status"] == "completed"
                                    else None)(get_job(a2, job_id)), 20,
                           what="the job completed")
        assert doc["counts"]["completed"] == 4, doc
        for d in devs:
            assert [m for m in d.quiet(1.0)
                    if m.get("type") == "device_command"] == []
        record_metric("job_takeover_s", round(took, 2))
        # another node connects the source again: its messages go on
        cmd.wait_for(lambda: history_len(n2, ws, "up/s2/message.ack") == 6,
                     20, what="the source taken over")
        status, doc = a2.call("GET", "/sources/s2")
        assert status == 200 and doc.get("node") != "n1", doc
        assert len([o for o in up.lines("open")
                    if o["open"] == "/ws/s2"]) == 2
    finally:
        a1.close()
        a2.close()


def test_primary_failover_during_commands(own_cluster, opened):
    """The Redis primary is killed with -9 while commands are queued
    through one node as fast as they are answered, for an agent on
    another node that completes each: every command answered 202 is
    delivered once and completed once, none is lost; the others were
    answered 503 meanwhile."""
    cluster = own_cluster
    ws = chan.unique("cl")
    live = [n for n in cluster.nodes if not n.dead]
    api_node, dev_node = live[0], live[1]
    api = node_api(api_node, ws)
    try:
        status, doc = api.call("POST", "/clients", {
            "id": "pc-f", "name": "Desk", "client_type": "desktop"})
        assert status == 201, doc
    finally:
        api.close()
    dev = agent(dev_node, ws, "pc-f", opened)
    stop = threading.Event()
    acked, refused, delivered, completed = [], [], [], set()
    errors, answers = [], []
    kill_at, first_after = [], []

    def poster():
        try:
            post_loop()
        except BaseException as e:
            errors.append(repr(e))

    def post_loop():
        api = node_api(api_node, ws)
        k = 0
        try:
            while not stop.is_set():
                # a stream, not a flood: at most 50 waiting for the agent
                if len(acked) - len(completed) > 50:
                    time.sleep(0.01)
                    continue
                status, doc = api.call("POST", "/clients/pc-f/commands",
                                       {"command": "step",
                                        "payload": {"k": k}})
                if status == 202:
                    acked.append(doc["command_id"])
                    if kill_at and refused and not first_after:
                        first_after.append(time.time())
                else:
                    assert status == 503, (status, doc)
                    refused.append(k)
                    time.sleep(0.02)
                k += 1
        finally:
            api.close()

    def device():
        try:
            device_loop()
        except BaseException as e:
            errors.append(repr(e))

    def device_loop():
        # completed may hold commands answered 503 that were stored
        while not stop.is_set() or not set(acked) <= completed:
            try:
                msg = dev.recv_type("device_command", timeout=0.5)
            except AssertionError:
                if stop.is_set() and time.monotonic() > deadline[0]:
                    return
                continue
            cid = msg["command_id"]
            delivered.append((cid, msg["attempt"]))
            # a result refused during the failover is sent again; one
            # whose answer was lost with the primary may be stored
            # already
            for _ in range(100):
                ack = dev.result(cid, timeout=15)
                answers.append((cid, ack.get("type"), ack.get("code")))
                if ack.get("type") == "command_result_accepted" \
                        or "already completed" in ack.get("message", ""):
                    completed.add(cid)
                    break
                assert ack.get("code") == "unavailable", ack
                time.sleep(0.1)

    deadline = [time.monotonic() + 120]
    threads = [threading.Thread(target=poster),
               threading.Thread(target=device)]
    for t in threads:
        t.start()
    old_server = cluster.redis.primary
    try:
        rh.wait_for(lambda: len(completed) >= 20 or errors, 40,
                    what="commands going through")
        assert errors == [], (errors, len(acked), len(refused))
        old = old_server.addr
        kill_at.append(cluster.redis.kill_primary())
        new = cluster.redis.wait_new_primary(old)
        for n in (api_node, dev_node):
            rh.wait_for(lambda n=n: cluster.engine(n)["primary"] == new, 20,
                        what="%s following the new primary" % n.name)
        rh.wait_for(lambda: len(first_after) > 0, 20,
                    what="a command answered after the failover")
        n_after = len(acked)
        rh.wait_for(lambda: len(acked) >= n_after + 30, 20,
                    what="commands going on")
    finally:
        stop.set()
        threads[0].join()
        deadline[0] = time.monotonic() + 30
        threads[1].join()

    assert len(set(acked)) == len(acked)
    assert errors == [], errors
    missing = [c for c in acked if c not in completed]
    if missing:
        print("delivered", [d for d in delivered if d[0] in missing])
        print("answers", [a for a in answers if a[0] in missing])
        api = node_api(live[-1], ws)
        try:
            missing = [api.call("GET", "/commands/" + c) for c in missing]
        finally:
            api.close()
    assert missing == [], "answered 202, never completed: %r" % missing
    ids = [cid for cid, _ in delivered]
    twice = sorted({c for c in ids if ids.count(c) > 1})
    assert twice == [], "delivered twice: %r" % twice
    api = node_api(live[-1], ws)
    try:
        for cid in acked:
            status, doc = api.call("GET", "/commands/" + cid)
            assert status == 200 and doc["status"] == "completed", doc
            # a delivery whose commit the failover left unconfirmed is
            # sent again after the ack window: the agent got it once
            steps = [h["status"] for h in doc["history"]]
            assert steps[0] == "pending" and steps[-1] == "completed" \
                and set(steps[1:-1]) == {"sent"}, doc
    finally:
        api.close()
    record_metric("cluster_failover_commands", {
        "acked": len(acked), "refused_503": len(refused), "lost": 0,
        "recovery_s": round(first_after[0] - kill_at[0], 2)})


def test_primary_failover_during_publishes(cluster):
    """The Redis primary is killed with -9 while a node publishes as fast
    as it is answered: publishes answer 503 until a replica is promoted
    and wirehubd follows it; every message answered 202 reaches a
    subscriber on another node and the history, once, in order."""
    ws = chan.unique("cl")
    ch = "room/failover"
    tok = chan.token("viewer", ws)
    live = [n for n in cluster.nodes if not n.dead]
    pub_node, sub_node = live[0], live[1]
    stop = threading.Event()
    acked, refused, first_after = [], [], []
    kill_at = []

    def publisher():
        api = wh.Api(pub_node.port, chan.service_token(ws), timeout=5)
        k = 0
        try:
            while not stop.is_set():
                r = api.publish(ch, {"k": k})
                if r.status == 202:
                    acked.append((r.json()["id"], k))
                    if kill_at and not first_after \
                            and len(refused) > 0:
                        first_after.append(time.time())
                else:
                    assert r.status == 503, r
                    refused.append(k)
                    time.sleep(0.02)
                k += 1
        finally:
            api.close()

    async def scenario():
        s = await Client.open(sub_node.port, tok)
        await s.subscribe(ch)
        t = threading.Thread(target=publisher)
        t.start()
        try:
            await asyncio.sleep(0.5)
            old = cluster.redis.primary.addr
            kill_at.append(cluster.redis.kill_primary())
            new = cluster.redis.wait_new_primary(old)
            rh.wait_for(lambda: cluster.engine(pub_node)["primary"] == new,
                        20, what="the node following the new primary")
            rh.wait_for(lambda: len(first_after) > 0, 20,
                        what="a publish answered after the failover")
            n_after = len(acked)
            rh.wait_for(lambda: len(acked) >= n_after + 50, 20,
                        what="publishes going on")
        finally:
            stop.set()
            await asyncio.get_running_loop().run_in_executor(None, t.join)
        ids = [mid for mid, _ in acked]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        got = []
        deadline = time.monotonic() + 20
        while len([m for m in got if m["id"] in set(ids)]) < len(ids):
            assert time.monotonic() < deadline, (len(got), len(ids))
            got += await s.messages(1, timeout=deadline - time.monotonic())
        got_ids = [m["id"] for m in got]
        assert got_ids == sorted(got_ids), "out of order"
        assert len(set(got_ids)) == len(got_ids), "a message twice"
        by_id = {m["id"]: m["data"]["k"] for m in got}
        for mid, k in acked:
            assert by_id.get(mid) == k, (mid, k, by_id.get(mid))
        await s.close()
        return kill_at[0], first_after[0], len(acked), len(refused)

    killed, recovered, n_acked, n_refused = run(scenario(), timeout=120)
    api = wh.Api(live[-1].port, chan.service_token(ws))
    try:
        items = []
        query = ""
        while True:
            r = api.history(ch, query)
            assert r.status == 200, r
            doc = r.json()
            items += doc["items"]
            if doc.get("next") is None:
                break
            query = "since=%s" % doc["next"]
        stored = {m["id"]: m["data"]["k"] for m in items}
        for mid, k in acked:
            assert stored.get(mid) == k, (mid, k)
    finally:
        api.close()
    record_metric("cluster_failover_recovery_s", round(recovered - killed, 2))
    record_metric("cluster_failover_publishes", {
        "acked": n_acked, "refused_503": n_refused, "lost": 0})
