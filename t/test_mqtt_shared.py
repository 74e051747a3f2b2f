"""MQTT ingest in a cluster (DESIGN.md "Cluster mode"): two wirehubd,
both `engine redis` on one redis-server, both connected to one real
mosquitto with `mqtt ... shared=g`.  The broker hands each message to one
member of the group ($share/g/FILTER), so each reading is stored once
(history ids contiguous, no payload twice), both nodes take a share of
the ingest, and subscribers on both nodes get every reading in id order.
"""

import asyncio
import time

import paho.mqtt.client as mqtt
import pytest

import chan
import wh
from chan import Client, run
from test_mqtt import Broker, wait_for

WS = "shared-ws"
CHANNEL = "sensors/S1"
RULE = ("ingest sensors/+/data workspace=%s channel=sensors/{1} "
        "type=sensor_reading key={1};\n"
        "ingest meters/+/data workspace=%s channel=meters/{1} "
        "type=meter_reading key={1} rate=30/m;\n" % (WS, WS))
SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
"""


class Node:
    def __init__(self, name, redis_port, broker):
        self.name = name
        self.daemon = chan.Daemon(
            "mqtt-shared-" + name, extra=(
                "engine redis host=127.0.0.1 port=%d;\nnode_id %s;\n"
                "mqtt host=127.0.0.1 port=%d client_id=wirehubd-%s "
                "keepalive=5 reconnect_min=100ms reconnect_max=1s "
                "shared=g;\n%s" % (redis_port, name, broker.port, name,
                                   RULE)))
        self.daemon.start()
        self.ngx = wh.Nginx("mqtt-shared-" + name, http=wh.jwt_directives(),
                            server=SERVER,
                            daemon_socket=self.daemon.socket).start()
        self.ngx.wait_link_up()

    @property
    def port(self):
        return self.ngx.port

    def mqtt_stats(self):
        return chan.stats(self.port, chan.service_token(WS))["mqtt"]

    def stop(self):
        self.ngx.stop()
        self.ngx.cleanup()
        self.daemon.stop()


@pytest.fixture
def cluster(tmp_path, keys):
    broker = Broker(tmp_path).start()
    redis = wh.RedisServer(str(tmp_path)).start()
    nodes = []
    try:
        for name in ("n1", "n2"):
            nodes.append(Node(name, redis.port, broker))
        yield broker, nodes
    finally:
        for n in nodes:
            n.stop()
        redis.stop()
        broker.stop()


def wait_subscribed(node):
    deadline = time.monotonic() + 10
    while not node.mqtt_stats().get("subscribed"):
        assert time.monotonic() < deadline, node.mqtt_stats()
        time.sleep(0.05)


def test_each_message_ingested_once_across_nodes(cluster):
    broker, nodes = cluster
    for n in nodes:
        wait_subscribed(n)
    total = 60
    tok = chan.token("viewer", WS)

    async def scenario():
        subs = [await Client.open(n.port, tok) for n in nodes]
        for s in subs:
            await s.subscribe(CHANNEL)
        pub = mqtt.Client(client_id="shared-pub", clean_session=True)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        try:
            for k in range(total):
                info = pub.publish("sensors/S1/data", '{"k":%d}' % k, qos=1)
                info.wait_for_publish(5)
        finally:
            pub.loop_stop()
            pub.disconnect()
        for s in subs:
            msgs = await s.messages(total, timeout=20)
            got = [m for m in msgs if m.get("channel") == CHANNEL]
            assert [m["id"] for m in got] == list(range(1, total + 1))
            assert sorted(m["data"]["k"] for m in got) == list(range(total))
            assert all(m["data"]["sensor_id"] == "S1" for m in got)
            # nothing more: a message ingested twice would come next
            assert await s.barrier() == []
        for s in subs:
            await s.close()

    run(scenario())

    api = wh.Api(nodes[1].port, chan.service_token(WS))
    try:
        r = api.history(CHANNEL, "limit=1000")
        assert r.status == 200, r
        items = r.json()["items"]
    finally:
        api.close()
    assert [m["id"] for m in items] == list(range(1, total + 1))
    assert sorted(m["data"]["k"] for m in items) == list(range(total))

    ingested = [n.mqtt_stats()["ingested"] for n in nodes]
    assert sum(ingested) == total, ingested
    # the broker spread the group's messages over both members
    assert all(i > 0 for i in ingested), ingested


def test_rate_holds_across_nodes(cluster):
    """rate=30/m (a 2 s window) on a key whose values the broker spreads
    over both nodes: the first value goes out at once, the nine after it
    in the window are held in Redis, each replacing the one before, and
    only the last goes out when the window ends.  Coalescing per node
    would send each node's first value, and each node's last."""
    broker, nodes = cluster
    for n in nodes:
        wait_subscribed(n)
    tok = chan.token("viewer", WS)

    def held():
        return sum(n.mqtt_stats()["coalesced"] for n in nodes)

    async def scenario():
        subs = [await Client.open(n.port, tok) for n in nodes]
        for s in subs:
            await s.subscribe("meters/M1")
        pub = mqtt.Client(client_id="shared-rate-pub", clean_session=True)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        try:
            for k in range(10):
                info = pub.publish("meters/M1/data", '{"k":%d}' % k, qos=1)
                info.wait_for_publish(5)
                if k == 0:
                    first = await subs[0].messages(1)
                    assert [m["data"]["k"] for m in first] == [0]
                else:
                    # each value reached Redis before the next is sent,
                    # so "the last" is well defined across the nodes
                    wait_for(lambda k=k: held() == k, 10,
                                what="value %d held" % k)
        finally:
            pub.loop_stop()
            pub.disconnect()
        last = await subs[0].messages(1, timeout=10)
        assert [m["data"]["k"] for m in last] == [9]
        assert last[0]["id"] == first[0]["id"] + 1
        wait_for(lambda: all(n.mqtt_stats()["coalescing"] == 0
                                for n in nodes), 10,
                    what="every node done with the key")
        assert await subs[0].barrier() == []
        got = await subs[1].messages(2)
        assert [m["data"]["k"] for m in got] == [0, 9]
        assert await subs[1].barrier() == []
        for s in subs:
            await s.close()

    run(scenario())
    ins = [n.mqtt_stats()["messages_in"] for n in nodes]
    # both nodes had values of the key
    assert sum(ins) == 10 and all(i > 0 for i in ins), ins


def test_shared_group_is_checked(tmp_path):
    """A group is one topic level: / + # and an empty name are refused
    at load."""
    for bad in ("a/b", "g+", "#", ""):
        d = chan.Daemon("mqtt-shared-bad",
                        extra="mqtt host=127.0.0.1 port=1883 shared=%s;\n"
                        % bad)
        d.write_conf()
        out = wh.subprocess.run([wh.WIREHUBD, "-c", d.conf, "-t"],
                                capture_output=True, text=True)
        assert out.returncode == 1, out
        assert "invalid mqtt shared group" in out.stderr, out.stderr
        d.stop()
