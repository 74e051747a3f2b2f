"""What the soak sends, each at a steady rate, recording every answer:
channel messages through the HTTP API (chan.Publisher: one thread per
channel, every 202 kept), through MQTT (paho-mqtt at QoS 1 to the
ingest topics; the broker's PUBACK says the broker has it, the channel
history says wirehubd stored it) and commands through the API (every
202 command_id kept).  Also the sampler (wirehubd's MQTT counters, RSS
and descriptors over time) and the chaos (kill -9, HUP) threads."""

import http.client
import json
import threading
import time
from collections import Counter

import paho.mqtt.client as paho

import paths  # noqa: F401  (t/ on sys.path)
import chan
import stack as stk
import wh


def api_publishers(port, token, cfg, prefix):
    """One chan.Publisher per channel; data {"p": name, "k": k, "ts"}."""
    pause = cfg.channels / cfg.api_rate
    return [chan.Publisher(port, token, stk.channel_name(i),
                           "%s%d" % (prefix, i), pause=pause)
            for i in range(cfg.channels)]


class Paced(threading.Thread):
    """A thread doing step(n) at `rate` per second until stop()."""

    def __init__(self, rate):
        super().__init__(daemon=True)
        self.rate = rate
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        t0, n = time.monotonic(), 0
        try:
            while not self.stopping.is_set():
                self.step(n)
                n += 1
                # open loop: a slow step is caught up, not forgotten
                delay = t0 + n / self.rate - time.monotonic()
                if delay > 0:
                    self.stopping.wait(delay)
        except BaseException as e:  # reported by the verdict
            self.error = repr(e)
        finally:
            self.finish()

    def finish(self):
        pass

    def stop(self):
        self.stopping.set()


class MqttFeed(Paced):
    """QoS 1 publishes to soak/{i}/data, i round robin; sent[k] is
    (channel index, time, paho's message info)."""

    def __init__(self, broker_port, name, cfg):
        super().__init__(cfg.mqtt_rate)
        self.name = name
        self.channels = cfg.channels
        self.sent = {}
        self.client = paho.Client(client_id="soak-" + name,
                                  clean_session=True)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()

    def step(self, k):
        i = k % self.channels
        t = time.time()
        info = self.client.publish(stk.topic_name(i), json.dumps(
            {"p": self.name, "k": k, "ts": t}), qos=1)
        self.sent[k] = (i, t, info)

    def finish(self):
        """Waits (10 s at most) for the broker's PUBACKs, then leaves."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                info.is_published() for _, _, info in self.sent.values()):
            time.sleep(0.05)
        self.client.loop_stop()
        self.client.disconnect()

    def pubacked(self):
        return {k for k, (_, _, info) in self.sent.items()
                if info.is_published()}


class CommandFeed(Paced):
    """POST /api/clients/{agent}/commands, agents round robin, each with
    an idempotency key: a POST that got no answer, or 503, is sent again
    with the same key until it has one.  accepted[command_id] = {key,
    agent, t}."""

    def __init__(self, port, token, agent_ids, cfg, name):
        super().__init__(cfg.cmd_rate)
        self.api = wh.Api(port, token, prefix="/api", timeout=10)
        self.agent_ids = agent_ids
        self.name = name
        self.paused = threading.Event()
        self.accepted = {}
        self.by_key = {}
        self.counts = Counter()
        self.odd = []

    def step(self, n):
        if self.paused.is_set():
            # no keep-alive connection either: the baseline counts
            # nginx's descriptors with no client at all
            self.api.close()
            return
        agent = self.agent_ids[n % len(self.agent_ids)]
        key = "%s-%d" % (self.name, n)
        body = {"command": "soak", "payload": {"n": n},
                "idempotency_key": key, "ttl": 3600}
        while not self.stopping.is_set():
            try:
                status, doc = self.api.call(
                    "POST", "/clients/%s/commands" % agent, body)
            except (OSError, http.client.HTTPException):
                self.counts["no_answer"] += 1
                self.api.close()
                time.sleep(0.1)
                continue
            if status in (200, 202):
                self.record(key, agent, status, doc)
                return
            self.counts["status_%d" % status] += 1
            if status != 503:
                self.odd.append([status, doc])
                return
            time.sleep(0.1)
        self.counts["given_up"] += 1

    def record(self, key, agent, status, doc):
        cid = doc["command_id"]
        self.counts["status_%d" % status] += 1
        if key in self.by_key and self.by_key[key] != cid:
            self.odd.append(["key answered two ids", key, cid,
                             self.by_key[key]])
        self.by_key[key] = cid
        self.accepted.setdefault(cid, {"key": key, "agent": agent,
                                       "t": time.time()})

    def finish(self):
        self.api.close()


class Sampler(threading.Thread):
    """Every 2 s: wirehubd's MQTT counters (per wirehubd pid, the last
    value each life reported); every `every` s: RSS and descriptors."""

    def __init__(self, stk_, token, every):
        super().__init__(daemon=True)
        self.stack = stk_
        self.api = wh.Api(stk_.port, token, timeout=5)
        self.every = every
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.mqtt = {}          # wirehubd pid -> its last mqtt stats
        self.timeline = []

    def run(self):
        last_usage = time.monotonic()
        while not self.stopping.wait(2.0):
            self.poll_stats()
            if time.monotonic() - last_usage >= self.every:
                last_usage = time.monotonic()
                self.sample("timeline")

    def poll_stats(self):
        with self.lock:
            pid = self.stack.daemon.pid
            try:
                status, doc = self.api.call("GET", "/api/stats")
            except (OSError, http.client.HTTPException):
                self.api.close()
                return
            if status == 200 and isinstance(doc, dict) and pid:
                self.mqtt[pid] = doc.get("mqtt", {})

    def sample(self, what):
        entry = {"t": time.time(), "what": what,
                 "usage": self.stack.usage()}
        with self.lock:
            self.timeline.append(entry)
        return entry

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.api.close()

    def ingested(self):
        """wirehubd's own count of ingested MQTT messages, summed over
        its lives (each life counts from 0)."""
        return sum(int(m.get("ingested", 0)) for m in self.mqtt.values())


class Chaos(threading.Thread):
    """kill -9 of wirehubd every cfg.kill_every s and HUP of nginx every
    cfg.reload_every s from t0, none in the last 15 s before end (the
    run ends with both up); a HUP that would come within 10 s of a kill
    waits 15 s more."""

    def __init__(self, stk_, cfg, sampler, t0, end):
        super().__init__(daemon=True)
        self.stack = stk_
        self.sampler = sampler
        self.plan = plan(cfg, t0, end)
        self.stopping = threading.Event()
        self.kills = []
        self.reloads = []
        self.errors = []

    def run(self):
        for when, what in self.plan:
            if self.stopping.wait(max(0.0, when - time.time())):
                return
            try:
                if what == "kill":
                    # wirehubd's counters of this life, before they go
                    self.sampler.poll_stats()
                    self.sampler.sample("before kill")
                    self.kills.append(self.stack.kill_daemon())
                else:
                    self.sampler.sample("before reload")
                    self.reloads.append(self.stack.reload_nginx())
            except Exception as e:  # the run goes on; the verdict fails
                self.errors.append("%s at %.0f: %r" % (what, when, e))

    def stop(self):
        self.stopping.set()
        self.join(60)


def plan(cfg, t0, end):
    last = end - 15
    kills = []
    t = t0 + cfg.kill_every
    while t < last:
        kills.append(t)
        t += cfg.kill_every
    events = [(t, "kill") for t in kills]
    t = t0 + cfg.reload_every
    while t < last:
        when = t
        while any(abs(when - k) < 10 for k in kills):
            when += 15
        if when < last:
            events.append((when, "reload"))
        t += cfg.reload_every
    return sorted(events)
