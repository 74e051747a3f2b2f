"""The cluster example (conf/cluster/, scripts/cluster.sh, `make
cluster`): the script starts Redis + 2 replicas + 3 Sentinels, three
nodes and a front nginx on loopback ports of ours; a WebSocket through
the front receives messages published through the API of the other
nodes; `cluster.sh stop` stops every process it started and nothing
else."""

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import chan
import wh
from chan import Client, run

SCRIPT = os.path.join(wh.ROOT, "scripts", "cluster.sh")

# scripts/cluster.sh starts build/'s wirehubd and module, whatever the pass
pytestmark = pytest.mark.nosan


def free_run(n):
    """A base port with n free ports from it (the script takes bases)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no %d free ports in a row" % n)


def gone(pid):
    """Exited: no such process, or a zombie its new parent has yet to
    reap."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def kit():
    # as root, nginx's workers run as nobody and must reach the daemons'
    # sockets: the prefix is traversable, as build/cluster is
    top = tempfile.mkdtemp(prefix="wh-cluster-kit-")
    os.chmod(top, 0o755)
    env = dict(os.environ, CLUSTER_PREFIX=os.path.join(top, "cluster"),
               CLUSTER_PORT=str(free_run(4)), REDIS_PORT=str(free_run(3)),
               SENTINEL_PORT=str(free_run(3)))
    prefix = env["CLUSTER_PREFIX"]
    out = subprocess.run([SCRIPT, "start"], env=env, capture_output=True,
                         text=True, timeout=180)
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        yield env, out.stdout
    finally:
        stop_kit(env, prefix, top)


def stop_kit(env, prefix, top):
    """cluster.sh stop: every process it started exits, the pid file
    goes; the prefix is removed in any case."""
    pids = []
    try:
        if os.path.exists(os.path.join(prefix, "pids")):
            with open(os.path.join(prefix, "pids")) as f:
                pids = [int(line.split()[1]) for line in f]
        stop = subprocess.run([SCRIPT, "stop"], env=env,
                              capture_output=True, text=True, timeout=120)
        for name in ("n1/wirehubd.log", "front/error.log",
                     "sentinel0/sentinel.log"):
            wh.save_artifact(os.path.join(prefix, name),
                             "cluster-kit-" + name.replace("/", "-"))
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "killed" not in stop.stderr, stop.stderr
        assert not os.path.exists(os.path.join(prefix, "pids"))
        assert len(pids) == 13, pids
        deadline = time.monotonic() + 10
        while not all(gone(p) for p in pids):
            assert time.monotonic() < deadline, \
                [p for p in pids if not gone(p)]
            time.sleep(0.05)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def engine(port, token):
    return chan.stats(port, token)["engine"]


def test_front_websocket_gets_what_other_nodes_publish(kit):
    env, stdout = kit
    prefix = env["CLUSTER_PREFIX"]
    front = int(env["CLUSTER_PORT"])
    nodes = {"n%d" % i: front + i for i in (1, 2, 3)}
    with open(os.path.join(prefix, "token")) as f:
        token = f.read().strip()
    # what it prints: the URLs and the token
    assert "http://127.0.0.1:%d" % front in stdout
    for port in nodes.values():
        assert "http://127.0.0.1:%d" % port in stdout
    assert token in stdout

    for name, port in nodes.items():
        e = engine(port, token)
        assert (e["kind"], e["node_id"], e["up"]) == ("redis", name, True)
        assert e["primary"] == "127.0.0.1:%s" % env["REDIS_PORT"]

    async def scenario():
        ws = await Client.open(front, token)
        await ws.subscribe("room/kit")
        # the node the front chose follows the channel now
        behind = [n for n, p in nodes.items()
                  if engine(p, token)["followed_channels"] > 0]
        assert len(behind) == 1, behind
        others = [n for n in nodes if n != behind[0]]
        for k, name in enumerate(others):
            api = wh.Api(nodes[name], token)
            try:
                r = api.publish("room/kit", {"from": name, "k": k})
                assert r.status == 202, r
                assert r.json()["id"] == k + 1
            finally:
                api.close()
        got = await ws.messages(2, timeout=10)
        assert [(m["channel"], m["id"], m["data"]) for m in got] == [
            ("room/kit", k + 1, {"from": name, "k": k})
            for k, name in enumerate(others)]
        assert await ws.barrier() == []
        await ws.close()

    run(scenario())

    # the metrics of a node show the cluster
    resp, sock, _ = wh.http_raw(nodes["n1"],
                                b"GET /metrics HTTP/1.0\r\n\r\n")
    sock.close()
    assert resp.status == 200, resp
    assert b'wirehubd_node_info{node_id="n1"' in resp.body
    assert b"wirehubd_engine_up 1" in resp.body
