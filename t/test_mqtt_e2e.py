"""The sensor scenario end to end: readings published to a real mosquitto
reach 100+ WebSocket clients through wirehubd's ingest and nginx (2
workers), in the seed format, at most once per second per sensor, with
the last value never lost."""

import asyncio
import json
import time

import paho.mqtt.client as mqtt
import pytest

import chan
import wh
from chan import Client, run
from test_mqtt import Broker

WS = "demo"
SENSORS = ["V1", "V2", "V3", "V4", "V5"]
RULE = ("ingest sensors/+/data workspace=%s channel=sensors/{1} "
        "type=sensor_reading key={1} rate=1/s;\n" % WS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("e2e")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def daemon(broker):
    d = chan.Daemon("mqtt-e2e", extra=(
        "mqtt host=127.0.0.1 port=%d client_id=wirehubd-e2e keepalive=5 "
        "reconnect_min=100ms reconnect_max=1s;\n%s" % (broker.port, RULE)))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, tag="mqtt-e2e")


def publisher(broker):
    client = mqtt.Client(client_id="e2e-pub", clean_session=True)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def wait_ingest_ready(ngx):
    api = wh.Api(ngx.port, chan.service_token(WS))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = api.request("GET", "/api/stats").json()
            if doc.get("mqtt", {}).get("subscribed"):
                return
            time.sleep(0.1)
        raise AssertionError("wirehubd never subscribed at the broker")
    finally:
        api.close()


def test_readings_reach_120_websocket_clients_once_per_second(ngx, broker):
    wait_ingest_ready(ngx)
    channels = ["sensors/" + s for s in SENSORS]

    async def scenario():
        clients = []
        for i in range(120):
            c = await Client.open(ngx.rport, chan.token("dash-%d" % i, WS))
            reply = await c.call({"type": "subscribe",
                                  "channels": channels})
            assert reply["type"] == "subscribed", reply
            for _ in channels[1:]:
                assert (await c.recv())["type"] == "subscribed"
            clients.append(c)

        pub = publisher(broker)
        # 20 readings per sensor within ~0.5 s: the rate rule lets the
        # first out at once and the last at the end of the second
        for n in range(20):
            for s in SENSORS:
                pub.publish("sensors/%s/data" % s,
                            json.dumps({"moisture": 40 + n}), qos=1)
            await asyncio.sleep(0.025)

        # the trailing value leaves at the end of the rate interval
        await asyncio.sleep(2.5)
        per_client = []
        for c in clients:
            per_client.append(await c.barrier())
        pub.loop_stop()
        pub.disconnect()
        for c in clients:
            await c.close()
        return per_client

    per_client = run(scenario(), timeout=120)
    for got in per_client:
        readings = [m for m in got if m["type"] == "sensor_reading"]
        for s in SENSORS:
            mine = [m for m in readings if m["channel"] == "sensors/" + s]
            # one or two deliveries, the last one carrying the last value
            assert 1 <= len(mine) <= 2, mine
            last = mine[-1]
            assert last["data"] == {"sensor_id": s, "moisture": 59}, last
            assert set(last) == {"type", "channel", "id", "epoch", "data",
                                 "timestamp"}
            assert last["timestamp"].endswith("Z")
            ids = [m["id"] for m in mine]
            assert ids == sorted(ids)
    # every client saw the same ids for the same sensor
    first = [(m["channel"], m["id"]) for m in per_client[0]
             if m["type"] == "sensor_reading"]
    for got in per_client[1:]:
        assert [(m["channel"], m["id"]) for m in got
                if m["type"] == "sensor_reading"] == first
