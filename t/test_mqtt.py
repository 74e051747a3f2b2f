"""MQTT ingest and egress of wirehubd, at the link level.

A real mosquitto (persistence on, in a temp directory) on a free loopback
port, the real build/wirehubd, the link client of test_daemon.py in the
role of an nginx worker, and paho-mqtt as device and backend.
"""

import json
import os
import pwd
import re
import signal
import socket
import ssl
import stat
import subprocess
import time

import paho.mqtt.client as paho
import pytest

import wh
from test_daemon import (EVENT, MESSAGE, PING, PONG, SESSION_ACCEPT,
                         SESSION_OPEN, Daemon, check_config, sample)

MOSQUITTO = "/usr/sbin/mosquitto"
WS = "demo"

SENSORS = ("ingest sensors/+/data workspace=demo channel=sensors/{1} "
           "type=sensor_reading key={1} rate=1/s;\n")
DEVICES = ("ingest ws/+/devices/+/telemetry workspace={1} "
           "channel=devices/{2} type=telemetry;\n")
EGRESS = "egress ws/{workspace}/clients/{client}/events/{type};\n"


class Broker:
    """mosquitto on 127.0.0.1:port, persisting into its own directory."""

    def __init__(self, tmp, name="broker", listener="", anonymous=True):
        self.dir = tmp / name
        self.dir.mkdir()
        self.port = wh.free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        # as root mosquitto drops to user "mosquitto", which could not
        # write this directory
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.conf.write_text(
            "listener %d 127.0.0.1\n%sallow_anonymous %s\n"
            "persistence true\npersistence_location %s/\n"
            "max_queued_messages 100000\nuser %s\n"
            % (self.port, listener, "true" if anonymous else "false",
               self.dir, user))
        self.proc = None

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=logf, stderr=logf)
        logf.close()
        assert wh.wait_port(self.port, self.proc), wh.tail(str(self.log))
        return self

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self):
        """SIGTERM: mosquitto saves its sessions on the way out."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


def mqtt_conf(broker, client_id="wirehubd-test", extra=""):
    return ("mqtt host=127.0.0.1 port=%d client_id=%s keepalive=5 "
            "reconnect_min=100ms reconnect_max=1s%s;\n"
            % (broker.port, client_id, extra))


def start_daemon(tmp, broker, rules, **kw):
    d = Daemon(tmp, extra=mqtt_conf(broker, **kw) + rules).start()
    return d


def stats(link):
    status, body = link.request(WS, "GET", "/stats")
    assert status == 200, body
    return body["mqtt"]


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def wait_subscribed(link, timeout=10):
    return wait_for(lambda: stats(link)["subscribed"], timeout,
                    "wirehubd to connect and subscribe")


class Device:
    """A paho client: publishes and, if asked, subscribes."""

    def __init__(self, broker, client_id="", clean=True):
        self.client = paho.Client(client_id=client_id, clean_session=clean)
        self.received = []
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        self.received.append((msg.topic, msg.payload))

    def publish(self, topic, payload, qos=1):
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(5)
        assert info.is_published()

    def subscribe(self, topic, qos=1):
        result, mid = self.client.subscribe(topic, qos)
        assert result == paho.MQTT_ERR_SUCCESS
        # the SUBACK: a round trip through the broker
        wait_for(lambda: self.client.is_connected(), 5, "paho connect")
        time.sleep(0.2)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def messages(link, duration):
    """Every MESSAGE the link gets within duration seconds."""
    got = []
    deadline = time.monotonic() + duration
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            m = link.recv(timeout=left)
        except socket.timeout:
            return got
        assert m["type"] == MESSAGE, m
        got.append(m)


def history(link, channel, ws=WS):
    status, body = link.request(ws, "GET", "/channels/%s/messages"
                                % channel, query="limit=1000")
    assert status == 200, body
    return body["items"]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("text,what", [
    ("mqtt port=0;\n", "invalid mqtt port"),
    ("mqtt keepalive=2;\n", "invalid mqtt keepalive"),
    ("mqtt qos=2;\n", "invalid mqtt qos"),
    ("mqtt password_file=/nonexistent/pw;\n", "cannot open password_file"),
    ("mqtt certfile=/etc/hostname keyfile=/etc/hostname;\n",
     "TLS needs cafile"),
    ("mqtt reconnect_min=5s reconnect_max=1s;\n", "reconnect_max is below"),
    ("mqtt;\ningest a/# workspace=w channel=c/{2} type=t;\n",
     "names no wildcard"),
    ("mqtt;\ningest a/+ workspace=w channel=$stats type=t;\n",
     "channel template"),
    ("mqtt;\ningest a/+ workspace=w channel=c type=t rate=fast;\n",
     "invalid rate"),
    ("mqtt;\negress e/{client}/{type};\n", "has no {workspace}"),
    ("mqtt;\negress e/{workspace}/+;\n", "not a topic name"),
    ("mqtt;\negress e/{workspace};\negress f/{workspace};\n",
     "duplicate directive"),
    ("listen unix:/tmp/x.sock group=no-such-group-here;\n",
     "unknown group"),
    ("listen unix:/tmp/x.sock mode=999;\n", "invalid mode"),
])
def test_config_errors(tmp_path, text, what):
    rc, err, _ = check_config(tmp_path, text)
    assert rc != 0
    assert what in err, err


def test_ingest_needs_mqtt(tmp_path):
    rc, err, _ = check_config(tmp_path, SENSORS)
    assert rc != 0 and "need an \"mqtt\" directive" in err


def test_config_ok_with_mqtt(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    rc, err, _ = check_config(tmp_path, (
        "mqtt host=broker.example port=1883 client_id=wirehubd-1 "
        "keepalive=30 username=wh password_file=%s qos=1;\n%s%s"
        "ingest a/# workspace=w channel=all/{1} type=t;  # a comment\n"
        "ingest \"#\" workspace=w channel=all/{1} type=t;\n%s"
        % (pw, SENSORS, DEVICES, EGRESS)))
    assert rc == 0, err
    rc, err, _ = check_config(tmp_path, "mqtt;\ningest # workspace=w "
                              "channel=c type=t;\n")
    assert rc != 0 and "not terminated" in err


def test_listen_group_and_mode(tmp_path):
    """listen unix:PATH group=NAME mode=0640 (nginx workers run as another
    user than wirehubd)."""
    group = subprocess.run(["id", "-gn"], capture_output=True,
                           text=True).stdout.strip()
    d = Daemon(tmp_path)
    text = d.conf.read_text().replace(
        "listen unix:%s;" % d.sock,
        "listen unix:%s group=%s mode=0640;" % (d.sock, group))
    d.conf.write_text(text)
    d.start()
    try:
        st = os.stat(d.sock)
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert st.st_gid == os.getgid()
        d.link().close()
    finally:
        d.stop()


# ---------------------------------------------------------------- ingest


def test_sensor_readings_reach_every_worker(tmp_path, broker):
    d = start_daemon(tmp_path, broker, SENSORS + DEVICES)
    try:
        workers = [d.link(name="nginx/%d" % i) for i in range(3)]
        for w in workers:
            for i in range(1, 6):
                w.subscribe(WS, "sensors/V%d" % i, count=40)
        wait_subscribed(workers[0])
        dev = Device(broker)
        for i in range(1, 6):
            dev.publish("sensors/V%d/data" % i,
                        json.dumps({"moisture": 40 + i + 0.2}))
        dev.publish("ws/acme/devices/d-1/telemetry", '{"rssi":-70}')
        for w in workers:
            got = sorted(messages(w, 1.0), key=lambda m: m["channel"])
            assert [m["channel"] for m in got] == \
                ["sensors/V%d" % i for i in range(1, 6)]
            for i, m in enumerate(got, 1):
                assert m["workspace"] == WS and m["id"] == 1
                body = json.loads(m["body"])
                assert list(body) == ["type", "channel", "id", "epoch",
                                      "data", "timestamp"]
                assert body["type"] == "sensor_reading"
                assert body["channel"] == "sensors/V%d" % i
                assert body["data"] == {"sensor_id": "V%d" % i,
                                        "moisture": 40 + i + 0.2}
                assert wh.ISO_RE.match(body["timestamp"])
            # the publisher's bytes: 41.2 is not 41.200000000000003
            assert '"moisture":%s' % (40 + i + 0.2) in got[-1]["body"]
        tele = history(workers[0], "devices/d-1", ws="acme")
        assert [m["data"] for m in tele] == [{"rssi": -70}]
        assert tele[0]["type"] == "telemetry"
        s = stats(workers[0])
        assert s["connected"] and s["messages_in"] == 6
        assert s["ingested"] == 6 and s["dropped"] == 0
        dev.close()
    finally:
        d.stop()


def test_rate_rule_keeps_the_last_value(tmp_path, broker):
    d = start_daemon(tmp_path, broker, SENSORS)
    try:
        w = d.link()
        w.subscribe(WS, "sensors/V1")
        wait_subscribed(w)
        dev = Device(broker)
        start = time.monotonic()
        for i in range(50):
            dev.client.publish("sensors/V1/data",
                               json.dumps({"moisture": i}), qos=1)
            time.sleep(0.004)
        assert time.monotonic() - start < 0.9
        got = messages(w, 2.5)
        values = [json.loads(m["body"])["data"]["moisture"] for m in got]
        assert 1 <= len(values) <= 2, values
        assert values[0] == 0 and values[-1] == 49
        if len(values) == 2:
            t0, t1 = (wh_ms(m) for m in got)
            assert t1 - t0 >= 950
        assert [m["data"]["moisture"] for m in history(w, "sensors/V1")] \
            == values
        s = stats(w)
        assert s["messages_in"] == 50 and s["coalesced"] == 48
        dev.close()
    finally:
        d.stop()


def wh_ms(message):
    ts = json.loads(message["body"])["timestamp"]
    t = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
    return int(time.mktime(t)) * 1000 + int(ts[20:23])


def test_bad_payloads_are_counted_not_fatal(tmp_path, broker):
    d = start_daemon(tmp_path, broker, SENSORS + DEVICES,
                     extra=" max_payload=1k")
    try:
        w = d.link()
        w.subscribe(WS, "sensors/V2")
        wait_subscribed(w)
        dev = Device(broker)
        for payload in (b"not json", b"{\"moisture\":", b"\xff\xfe\x00",
                        b"", b'{"a":1,"a":2}', b"1e999999"):
            dev.publish("sensors/V2/data", payload)
        dev.publish("sensors/V2/data", b'{"pad":"' + b"x" * 2000 + b'"}')
        # names no channel may have, or system ones
        dev.publish("ws/bad ws/devices/x/telemetry", b"{}")
        dev.publish("ws/acme/devices/../telemetry", b"{}")
        dev.publish("sensors/V2/data", b'{"moisture":12.5}')
        got = messages(w, 1.0)
        assert [json.loads(m["body"])["data"] for m in got] == \
            [{"sensor_id": "V2", "moisture": 12.5}]
        s = stats(w)
        assert s["non_json"] == 6 and s["oversize"] == 1
        assert s["dropped"] == 9 and s["ingested"] == 1
        # /metrics says the same, by reason
        _, text = w.metrics()
        drops = {r: sample(text, 'wirehubd_mqtt_dropped_total{reason="%s"}'
                           % r)
                 for r in ("non_json", "oversize", "no_route", "storage",
                           "egress")}
        assert drops == {"non_json": 6, "oversize": 1, "no_route": 2,
                         "storage": 0, "egress": 0}
        assert sample(text, "wirehubd_mqtt_messages_received_total") == \
            s["messages_in"] == 10
        assert sample(text, "wirehubd_mqtt_messages_ingested_total") == 1
        assert sample(text, "wirehubd_mqtt_configured") == 1
        assert sample(text, "wirehubd_mqtt_connected") == 1
        log = d.logtext()
        # logged once per interval, not once per message
        assert log.count("non-JSON payloads dropped") == 1
        assert log.count("oversize payloads dropped") == 1
        assert d.proc.poll() is None
        dev.close()
    finally:
        d.stop()


def test_broker_killed_and_restarted(tmp_path, broker):
    d = start_daemon(tmp_path, broker, SENSORS + DEVICES)
    try:
        w = d.link()
        w.subscribe("acme", "devices/d1")
        wait_subscribed(w)
        broker.kill()
        wait_for(lambda: not stats(w)["connected"], 10, "broker loss")
        s = stats(w)
        assert s["last_error"]
        assert sample(w.metrics()[1], "wirehubd_mqtt_connected") == 0
        # channels and history keep working without the broker
        assert w.publish("acme", "devices/d1", {"from": "api"})["status"] \
            == 0
        assert w.expect(MESSAGE)["id"] == 1
        time.sleep(1.5)
        assert stats(w)["connect_failures"] >= 2
        # a fresh broker (killed: it forgot the subscription) on the port
        broker.start()
        wait_subscribed(w, timeout=15)
        dev = Device(broker)
        dev.publish("ws/acme/devices/d1/telemetry", '{"rssi":-1}')
        m = w.expect(MESSAGE)
        assert m["id"] == 2
        assert json.loads(m["body"])["data"] == {"rssi": -1}
        s = stats(w)
        assert s["reconnects"] == 1 and s["last_error"] is None
        _, text = w.metrics()
        assert sample(text, "wirehubd_mqtt_connected") == 1
        assert sample(text, "wirehubd_mqtt_reconnects_total") == 1
        assert sample(text, "wirehubd_mqtt_connect_failures_total") == \
            s["connect_failures"]
        log = d.logtext()
        assert "lost the broker" in log and "again after" in log
        dev.close()
    finally:
        d.stop()


def test_qos1_readings_sent_while_wirehubd_was_down(tmp_path, broker):
    rules = DEVICES
    d = start_daemon(tmp_path, broker, rules)
    w = d.link()
    wait_subscribed(w)
    w.close()
    d.kill()   # no DISCONNECT: the broker keeps the session anyway
    dev = Device(broker)
    for i in range(20):
        dev.publish("ws/acme/devices/d7/telemetry", json.dumps({"n": i}))
    dev.close()
    # and the broker restarts in between, from its persistence file
    broker.stop()
    broker.start()
    d.start()
    try:
        w = d.link()
        items = wait_for(lambda: len(history(w, "devices/d7", "acme")) == 20
                         and history(w, "devices/d7", "acme"), 10,
                         "the readings queued by the broker")
        assert [m["data"]["n"] for m in items] == list(range(20))
        assert [m["id"] for m in items] == list(range(1, 21))
    finally:
        d.stop()


# ---------------------------------------------------------------- egress


def open_session(link, session, client_id, ws="acme"):
    link.send(SESSION_OPEN, session=session, workspace=ws,
              client_id=client_id, client_type="agent", name="", id2=0)
    m = link.expect(SESSION_ACCEPT)
    assert m["status"] == 0, m


def send_event(link, session, client_id, name, body, ws="acme"):
    link.send(EVENT, workspace=ws, client_id=client_id, session=session,
              name=name, body=body)


def test_egress_to_a_subscribing_client(tmp_path, broker):
    d = start_daemon(tmp_path, broker, DEVICES + EGRESS)
    try:
        w = d.link()
        assert w.welcome["flag"] & 1
        wait_subscribed(w)
        backend = Device(broker)
        backend.subscribe("ws/#")
        open_session(w, "s-1", "pc-7")
        event = {"type": "device_discovery", "devices": [{"port": 3}],
                 "ref": "r1"}
        send_event(w, "s-1", "pc-7", "device_discovery", json.dumps(event))
        wait_for(lambda: backend.received, 5, "the event at the backend")
        topic, payload = backend.received[0]
        assert topic == "ws/acme/clients/pc-7/events/device_discovery"
        body = json.loads(payload)
        assert body["type"] == "device_discovery"
        assert body["workspace"] == "acme" and body["client_id"] == "pc-7"
        assert body["session"] == "s-1" and body["message"] == event
        assert wh.ISO_RE.match(body["timestamp"])
        wait_for(lambda: stats(w)["messages_out"] == 1, 5, "the PUBACK")
        backend.close()
    finally:
        d.stop()


def test_egress_refuses_injection(tmp_path, broker):
    d = start_daemon(tmp_path, broker, DEVICES + EGRESS)
    try:
        w = d.link()
        wait_subscribed(w)
        backend = Device(broker)
        backend.subscribe("#")
        open_session(w, "s-1", "pc-7")
        for client in ("a/b", "+", "#", "evil/#"):
            open_session(w, "s-" + client, client)
            send_event(w, "s-" + client, client, "x", "{}")
        for name in ("a/b", "+", "#", "x/+/y", ""):
            send_event(w, "s-1", "pc-7", name, "{}")
        # fields that do not match the verified session
        send_event(w, "s-1", "pc-7", "x", "{}", ws="other")
        send_event(w, "s-1", "someone-else", "x", "{}")
        send_event(w, "no-such-session", "pc-7", "x", "{}")
        send_event(w, "s-1", "pc-7", "x", "{not json")
        # then a good one: the backend sees it and nothing before it
        send_event(w, "s-1", "pc-7", "ok", "{}")
        wait_for(lambda: backend.received, 5, "the valid event")
        time.sleep(0.3)
        assert [t for t, _ in backend.received] == \
            ["ws/acme/clients/pc-7/events/ok"]
        s = stats(w)
        assert s["egress_dropped"] == 13 and s["dropped"] == 13
        assert d.proc.poll() is None
        backend.close()
    finally:
        d.stop()


def test_egress_waits_for_the_broker(tmp_path, broker):
    d = start_daemon(tmp_path, broker, EGRESS)
    try:
        w = d.link()
        wait_for(lambda: stats(w)["connected"], 10, "connect")
        # a backend with a persistent session: it gets what was
        # published while it was away too
        backend = Device(broker, client_id="backend-1", clean=False)
        backend.subscribe("ws/acme/#")
        backend.close()
        broker.stop()
        wait_for(lambda: not stats(w)["connected"], 10, "broker loss")
        open_session(w, "s-1", "pc-7")
        for i in range(3):
            send_event(w, "s-1", "pc-7", "evt", json.dumps({"i": i}))
        wait_for(lambda: stats(w)["egress_queued"] == 3, 5, "queued")
        broker.start()
        wait_for(lambda: stats(w)["messages_out"] == 3, 15, "resent")
        backend = Device(broker, client_id="backend-1", clean=False)
        wait_for(lambda: len(backend.received) == 3, 5, "delivery")
        got = [json.loads(p)["message"]["i"] for _, p in backend.received]
        assert got == [0, 1, 2]
        assert stats(w)["egress_queued"] == 0
        backend.close()
    finally:
        d.stop()


def test_shutdown_sends_the_pending_value(tmp_path, broker):
    d = start_daemon(tmp_path, broker, SENSORS)
    w = d.link()
    wait_subscribed(w)
    dev = Device(broker)
    dev.publish("sensors/V3/data", '{"m":1}')
    dev.publish("sensors/V3/data", '{"m":2}')
    dev.publish("sensors/V3/data", '{"m":3}')
    dev.close()
    wait_for(lambda: stats(w)["messages_in"] == 3, 5, "the readings")
    w.close()
    assert d.stop() == 0
    d.start()
    try:
        w = d.link()
        assert [m["data"]["m"] for m in history(w, "sensors/V3")] == [1, 3]
    finally:
        d.stop()


def test_egress_off_says_so_in_welcome(tmp_path, broker):
    d = start_daemon(tmp_path, broker, DEVICES)
    try:
        w = d.link()
        assert w.welcome["flag"] == 0
        open_session(w, "s-1", "pc-7")
        send_event(w, "s-1", "pc-7", "x", "{}")
        wait_for(lambda: stats(w)["egress_dropped"] == 1, 5, "the drop")
        assert re.search(r"no egress configured", d.logtext())
    finally:
        d.stop()


def test_host_name_connects_without_blocking_the_loop(tmp_path, broker):
    """A host name is resolved (and connected) by the helper thread."""
    d = Daemon(tmp_path, extra=mqtt_conf(broker).replace(
        "host=127.0.0.1", "host=localhost") + DEVICES).start()
    try:
        w = d.link()
        wait_subscribed(w)
        assert stats(w)["broker"] == "localhost:%d" % broker.port
        w.subscribe("acme", "devices/d2")
        dev = Device(broker)
        dev.publish("ws/acme/devices/d2/telemetry", "{}")
        assert w.expect(MESSAGE)["channel"] == "devices/d2"
        dev.close()
    finally:
        d.stop()


def test_unresolvable_host_is_retried_and_the_loop_answers(tmp_path,
                                                           broker):
    d = Daemon(tmp_path, extra=mqtt_conf(broker).replace(
        "host=127.0.0.1", "host=wirehub-no-such-host.invalid")
        + DEVICES).start()
    try:
        w = d.link()
        s = wait_for(lambda: (lambda s: s["connect_failures"] >= 2 and s)(
            stats(w)), 20, "failed lookups")
        assert not s["connected"] and s["last_error"]
        for i in range(20):
            start = time.monotonic()
            w.send(PING, req_id=i)
            assert w.expect(PONG)["req_id"] == i
            assert time.monotonic() - start < 0.2
            time.sleep(0.05)
        assert "cannot connect to wirehub-no-such-host.invalid" in \
            d.logtext()
    finally:
        d.stop()


def make_ca(tmp):
    """A CA and a server certificate for localhost / 127.0.0.1."""
    def ssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=tmp,
                       capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=wirehub test CA", "-keyout", "ca.key", "-out",
        "ca.pem")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (tmp / "san.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
        "-out", "server.pem")
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=another CA", "-keyout", "other.key", "-out",
        "other.pem")
    return tmp


def test_tls_with_a_host_name(tmp_path):
    ca = make_ca(tmp_path)
    b = Broker(tmp_path, listener="cafile %s\ncertfile %s\nkeyfile %s\n"
               % (ca / "ca.pem", ca / "server.pem", ca / "server.key"))
    b.start()
    d = Daemon(tmp_path, extra=mqtt_conf(b).replace(
        "host=127.0.0.1", "host=localhost").replace(
        ";", " cafile=%s;" % (ca / "ca.pem")) + DEVICES).start()
    try:
        w = d.link()
        wait_subscribed(w)
        w.subscribe("acme", "devices/tls")
        dev = paho.Client()
        dev.tls_set_context(ssl.create_default_context(
            cafile=str(ca / "ca.pem")))
        dev.connect("localhost", b.port)
        dev.loop_start()
        dev.publish("ws/acme/devices/tls/telemetry", '{"ok":1}',
                    qos=1).wait_for_publish(5)
        m = w.expect(MESSAGE)
        assert json.loads(m["body"])["data"] == {"ok": 1}
        dev.loop_stop()
        dev.disconnect()
    finally:
        d.stop()
        b.stop()


def test_tls_with_the_wrong_ca_is_refused(tmp_path):
    ca = make_ca(tmp_path)
    b = Broker(tmp_path, listener="cafile %s\ncertfile %s\nkeyfile %s\n"
               % (ca / "ca.pem", ca / "server.pem", ca / "server.key"))
    b.start()
    d = Daemon(tmp_path, extra=mqtt_conf(b).replace(
        ";", " cafile=%s;" % (ca / "other.pem")) + DEVICES).start()
    try:
        w = d.link()
        s = wait_for(lambda: (lambda s: s["connect_failures"] >= 2 and s)(
            stats(w)), 10, "refused TLS handshakes")
        assert not s["connected"] and s["last_error"]
    finally:
        d.stop()
        b.stop()


def test_broker_refusing_the_client_is_retried(tmp_path):
    b = Broker(tmp_path, anonymous=False).start()
    d = Daemon(tmp_path, extra=mqtt_conf(b) + DEVICES).start()
    try:
        w = d.link()
        s = wait_for(lambda: (lambda s: s["connect_failures"] >= 2 and s)(
            stats(w)), 10, "refused CONNACKs")
        assert "not authorised" in s["last_error"]
        assert not s["connected"]
    finally:
        d.stop()
        b.stop()
