"""make soak: Wirehub under churn and failures for SOAK_SECONDS, then a
verdict (exit status 1 on any failure) and a JSON summary in
build/bench/results/soak-STAMP/summary.json, beside the logs of nginx,
wirehubd and mosquitto.

Phases:
  1. the stack (stack.py): mosquitto, wirehubd (LMDB, an ingest rule
     soak/+/data -> channel soak/{1}), nginx with 2 workers;
  2. warm-up (SOAK_WARMUP s): every subscriber, the agents and every
     feed once, then all of them gone; a settle, then the baseline RSS
     and descriptor counts;
  3. load (SOAK_SECONDS s): SOAK_CLIENTS subscribers over SOAK_PROCS
     processes (subscribers.py) drop and resume; API and MQTT publishes
     and commands to the agents (agents.py) at steady rates (feeds.py);
     wirehubd killed with -9 every SOAK_KILL_EVERY s, nginx HUP every
     SOAK_RELOAD_EVERY s;
  4. the end: feeds stop, the history is read back as the reference,
     subscribers catch up and check against it, commands must all
     complete; clients gone, a settle, RSS and descriptors again;
     verdict.py judges.
"""

import datetime
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import paths  # noqa: E402  (t/ on sys.path)
import feeds  # noqa: E402
import stack as stk  # noqa: E402
import verdict  # noqa: E402
import wh  # noqa: E402
from procs import Child  # noqa: E402
from settings import Settings  # noqa: E402


def log(fmt, *args):
    print("soak: " + (fmt % args if args else fmt), file=sys.stderr,
          flush=True)


class Soak:
    def __init__(self, cfg, st, out_dir):
        self.cfg = cfg
        self.st = st
        self.out_dir = out_dir
        self.children = []
        self.rng = random.Random(cfg.seed)
        # tokens outlive the run: an expired one would close with 4401
        self.ttl = int(cfg.seconds + cfg.warmup + 3600)
        self.svc = wh.mint("HS256", wh.claims(sub="svc-soak", role="service",
                                              ttl=self.ttl))
        self.api = wh.Api(st.port, self.svc, timeout=10, retry=True)
        self.channels = [stk.channel_name(i) for i in range(cfg.channels)]
        self.agent_ids = ["agent-%d" % i for i in range(cfg.agents)]
        self.agents_done = {"deliveries": [], "accepted": {},
                            "conn_end": {}, "counts": {}}

    # ------------------------------------------------ children

    def token(self, sub):
        return wh.mint("HS256", wh.claims(sub=sub, ttl=self.ttl))

    def start_subscribers(self, prefix):
        """SOAK_CLIENTS subscribers, each on SOAK_PER_CLIENT random
        channels, over SOAK_PROCS processes."""
        cfg = self.cfg
        subs = []
        for i in range(cfg.clients):
            name = "%s-%d" % (prefix, i)
            picked = sorted(self.rng.sample(range(cfg.channels),
                                            cfg.per_client))
            subs.append({"name": name, "token": self.token(name),
                         "channels": [self.channels[c] for c in picked]})
        kids = []
        for p in range(cfg.procs):
            part = subs[p::cfg.procs]
            spec = {"port": self.st.rport, "subs": part,
                    "drop_mean": cfg.drop_mean, "catchup": cfg.catchup,
                    "seed": self.rng.random()}
            kids.append(self.child("subscribers.py", spec,
                                   "%s-%d.stderr" % (prefix, p)))
        ready = sum(k.expect("READY", 90)["subscribed"] for k in kids)
        log("%s: %d of %d subscribers subscribed", prefix, ready,
            cfg.clients)
        return kids

    def start_agents(self, tag):
        spec = {"port": self.st.rport, "drop_mean": self.cfg.agent_drop_mean,
                "seed": self.rng.random(), "tag": tag,
                "agents": [{"name": a, "token": self.token(a)}
                           for a in self.agent_ids]}
        kid = self.child("agents.py", spec, "agents-%s.stderr" % tag)
        log("agents %s: %d connected", tag, kid.expect("READY", 90)
            ["connected"])
        return kid

    def child(self, script, spec, errname):
        kid = Child(script, spec, os.path.join(self.out_dir, errname))
        self.children.append(kid)
        return kid

    def stop_agents(self, kid):
        """STOP; their records join those of earlier agent processes."""
        kid.send("STOP")
        done = kid.expect("DONE", 60)
        kid.wait()
        acc = self.agents_done
        acc["deliveries"] += done["deliveries"]
        acc["conn_end"].update(done["conn_end"])
        for cid, first in done["accepted"].items():
            known = acc["accepted"].get(cid)
            if known is None or first[0] < known[0]:
                acc["accepted"][cid] = first
        for k, n in done["counts"].items():
            acc["counts"][k] = acc["counts"].get(k, 0) + n
        if done["errors"]:
            acc.setdefault("errors", []).extend(done["errors"])

    # ------------------------------------------------ phases

    def prepare(self):
        for a in self.agent_ids:
            status, doc = self.api.call("POST", "/api/clients", {
                "id": a, "name": a, "client_type": "agent"})
            assert status in (201, 409), (status, doc)
        deadline = time.monotonic() + 15
        while not self.api.call("GET", "/api/stats")[1].get(
                "mqtt", {}).get("subscribed"):
            assert time.monotonic() < deadline, \
                "wirehubd never subscribed at the broker"
            time.sleep(0.1)
        # every channel exists, under one epoch, before anyone subscribes
        for ch in self.channels:
            resp = self.api.publish(ch, {"p": "seed", "k": 0,
                                         "ts": time.time()})
            assert resp.status == 202, resp

    def warm_up(self, cmds):
        log("warm-up: %d subscribers, %d agents, %.0f s", self.cfg.clients,
            self.cfg.agents, self.cfg.warmup)
        agents = self.start_agents("warm")
        kids = self.start_subscribers("warm")
        pubs = feeds.api_publishers(self.st.port, self.svc, self.cfg,
                                    "warm")
        mqtt = feeds.MqttFeed(self.st.broker.port, "mqtt-warm", self.cfg)
        for t in pubs + [mqtt, cmds]:
            t.start()
        time.sleep(self.cfg.warmup)
        cmds.paused.set()
        for t in pubs + [mqtt]:
            t.stop()
        for t in pubs + [mqtt]:
            t.join(30)
        for k in kids:
            k.send("STOP")
        for k in kids:
            k.expect("DONE", 60)
            k.wait()
        verdict.wait_commands_final(self.api, self.agent_ids,
                                    cmds.accepted, 60)
        self.stop_agents(agents)
        return pubs, mqtt

    def baseline(self):
        self.api.close()
        time.sleep(self.cfg.settle)
        usage = self.st.usage()
        log("baseline: nginx workers %d KiB %d fds, wirehubd %d KiB "
            "(heap %d) %d fds", usage["nginx_workers"]["rss_kib"],
            usage["nginx_workers"]["fds"], usage["wirehubd"]["rss_kib"],
            usage["wirehubd"]["anon_kib"], usage["wirehubd"]["fds"])
        return usage

    def load(self, cmds):
        cfg = self.cfg
        kids = self.start_subscribers("sub")
        agents = self.start_agents("main")
        pubs = feeds.api_publishers(self.st.port, self.svc, cfg, "api")
        mqtt = feeds.MqttFeed(self.st.broker.port, "mqtt", cfg)
        sampler = feeds.Sampler(self.st, self.svc, cfg.sample_every)
        t0 = time.time()
        end = t0 + cfg.seconds
        chaos = feeds.Chaos(self.st, cfg, sampler, t0, end)
        for t in pubs + [mqtt, sampler, chaos]:
            t.start()
        cmds.paused.clear()
        log("load: %.0f s, kill -9 every %.0f s, HUP every %.0f s",
            cfg.seconds, cfg.kill_every, cfg.reload_every)
        while time.time() < end:
            time.sleep(min(30.0, max(0.0, end - time.time())))
            log("%4.0f s: api 202 %d, mqtt sent %d, commands %d, kills %d, "
                "reloads %d", time.time() - t0,
                sum(len(p.acked) for p in pubs), len(mqtt.sent),
                len(cmds.accepted), len(chaos.kills), len(chaos.reloads))
        chaos.stop()
        self.ensure_up()
        for t in pubs + [mqtt, cmds]:
            t.stop()
        for t in pubs + [mqtt, cmds]:
            t.join(30)
        return kids, agents, pubs, mqtt, sampler, chaos, t0

    def ensure_up(self):
        """The stack as the checks need it, whatever the chaos left."""
        if not self.st.daemon.alive():
            log("wirehubd was down at the end: restarting it")
            self.st.daemon.start()
        self.st.ngx.wait_link_up(timeout=15)

    def finish(self, v, kids, agents, cmds):
        """The reference, the subscribers' verdicts, the commands."""
        self.api = wh.Api(self.st.port, self.svc, timeout=10, retry=True)
        verdict.wait_drained(self.api, self.channels)
        hist = {ch: verdict.fetch_history(self.api, ch)
                for ch in self.channels}
        history = verdict.check_history(v, hist)
        last = {ch: len(items) for ch, items in hist.items()}
        line = "FINISH " + json.dumps({"last": last,
                                       "ref": verdict.reference(hist)})
        for k in kids:
            k.send(line)
        agents.send("FINISH")
        reports = [k.expect("DONE", self.cfg.catchup + 120) for k in kids]
        for k in kids:
            k.wait()
        states = verdict.wait_commands_final(self.api, self.agent_ids,
                                             cmds.accepted, 60)
        self.stop_agents(agents)
        self.api.close()
        return hist, history, reports, states


def run(cfg, st, out_dir):
    soak = Soak(cfg, st, out_dir)
    v = verdict.Verdict()
    try:
        soak.prepare()
        cmds = feeds.CommandFeed(st.port, soak.svc, soak.agent_ids, cfg,
                                 "cmd")
        warm_pubs, warm_mqtt = soak.warm_up(cmds)
        base = soak.baseline()
        kids, agents, pubs, mqtt, sampler, chaos, t0 = soak.load(cmds)
        hist, history, reports, states = soak.finish(v, kids, agents, cmds)
        sampler.stop()
        time.sleep(cfg.settle)
        end_usage = st.usage()
    finally:
        for kid in soak.children:
            kid.kill()
    for e in chaos.errors:
        v.fail("chaos", e)
    kills = chaos.kills
    out = {
        "verdict": None,
        "settings": cfg.as_dict(),
        "history_length": cfg.history_length(),
        "chaos": {"kills": len(kills), "reloads": len(chaos.reloads),
                  "kill_events": rel(kills, t0),
                  "reload_events": rel(chaos.reloads, t0)},
        "history": history,
        "api": verdict.check_api(v, warm_pubs + pubs, hist),
        "mqtt": verdict.check_mqtt(v, [warm_mqtt, mqtt], hist, kills,
                                   sampler.ingested()),
        "subscribers": verdict.check_subscribers(v, reports),
        "commands": verdict.check_commands(v, cmds, states,
                                           soak.agents_done, kills),
        "resources": verdict.check_usage(v, base, end_usage, cfg),
        "timeline": [{"t": round(e["t"] - t0, 1), "what": e["what"],
                      "usage": {g: verdict.strip(u)
                                for g, u in e["usage"].items()}}
                     for e in sampler.timeline],
    }
    for line in st.log_problems():
        v.fail("log", line)
    out["log_levels"] = st.log_levels()
    out["published"] = out["api"]["acked"] + out["mqtt"].get("ingested", 0)
    out["delivered"] = out["subscribers"]["counts"].get("delivered", 0)
    out["verdict"] = "pass" if v.ok else "fail"
    out["failures"] = v.failures
    return out


def rel(events, t0):
    return [dict(e, t=round(e["t"] - t0, 1)) for e in events]


def machine():
    def git(*args):
        try:
            return subprocess.run(["git", "-C", paths.ROOT] + list(args),
                                  stdout=subprocess.PIPE, timeout=10,
                                  stderr=subprocess.DEVNULL
                                  ).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return {"cores": os.cpu_count(), "loadavg": load,
            "wirehub": git("describe", "--always", "--dirty")}


def print_summary(s, path):
    sub = s["subscribers"]
    c = sub["counts"]
    cmd = s["commands"]
    lat = sub["latency"]
    lines = [
        "soak %s after %.0f s: %d subscribers, %d kills, %d reloads"
        % (s["verdict"].upper(), s["wall_s"], sub["subscribers"],
           s["chaos"]["kills"], s["chaos"]["reloads"]),
        "messages: API 202 %d, MQTT ingested %d of %d sent (lost in flight "
        "at a kill %d, stored twice %d); stored %d"
        % (s["api"]["acked"], s["mqtt"].get("ingested", 0),
           s["mqtt"].get("published", 0),
           s["mqtt"].get("lost_in_flight_at_kill", 0),
           s["mqtt"].get("stored_twice", 0),
           sum(h["stored"] for h in s["history"].values())),
        "subscribers: delivered %d, connects %d, reconnects %d, resumes %d, "
        "recovered:false %d, gaps %d, duplicates %d/%d (in/across "
        "connections), behind at end %d"
        % (c.get("delivered", 0), c.get("connects", 0),
           c.get("reconnects", 0), c.get("resumes", 0),
           c.get("recovered_false", 0), c.get("gaps", 0),
           c.get("dup_in_conn", 0), c.get("dup_across_conns", 0),
           c.get("behind_at_end", 0)),
        "latency publish->deliver (live): API p50 %s p99 %s max %s ms; "
        "MQTT p50 %s p99 %s max %s ms"
        % (lat["api"]["p50_ms"], lat["api"]["p99_ms"], lat["api"]["max_ms"],
           lat["mqtt"]["p50_ms"], lat["mqtt"]["p99_ms"],
           lat["mqtt"]["max_ms"]),
        "commands: accepted %d, completed %d, executed %d, deliveries %d, "
        "duplicates %d (across kill -9 %d, result lost with its connection "
        "%d, unexplained %d)"
        % (cmd["accepted"], cmd["final_status"].get("completed", 0),
           cmd["executed_at_least_once"], cmd["deliveries"],
           cmd["duplicates"]["total"], cmd["duplicates"]["across_kill"],
           cmd["duplicates"]["result_lost_with_connection"],
           cmd["duplicates"]["unexplained"]),
    ]
    for group, row in s["resources"].items():
        b, e = row["baseline"], row["end"]
        key = row["checked"]
        lines.append("%s: %s %d -> %d KiB (limit %d), fds %d -> %d"
                     % (group, key, b[key], e[key], row["limit_kib"],
                        b["fds"], e["fds"]))
    for f in s["failures"]:
        lines.append("FAILED: " + f)
    lines.append("summary: " + path)
    print("\n".join(lines))


def main():
    cfg = Settings.from_env()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(paths.BENCH_BUILD, "results", "soak-" + stamp)
    os.makedirs(out_dir, exist_ok=True)
    started = time.monotonic()
    info = machine()
    log("results in %s; %s", out_dir, json.dumps(cfg.as_dict()))
    st = stk.Stack(cfg)
    try:
        st.start()
        summary = run(cfg, st, out_dir)
    finally:
        st.stop(out_dir)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["started"] = stamp
    summary["machine"] = dict(info, loadavg_at_end=machine()["loadavg"])
    path = os.path.join(out_dir, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    print_summary(summary, path)
    sys.exit(0 if summary["verdict"] == "pass" else 1)


if __name__ == "__main__":
    main()
