"""The soak's checks, once the load stopped: the stored history is the
reference (every id of a channel from 1, one epoch), every API 202 must
be in it as acknowledged, every MQTT message the broker acknowledged
must be in it unless a kill -9 took it in flight (wirehubd PUBACKs
before it stores, mqtt.c says why), subscribers must have exactly it
(subscribers.py checks), every accepted command must be completed and
delivered, a command delivered twice must be explained, and RSS and
descriptors must be back near their baseline."""

import time
from collections import Counter, defaultdict

import procs

# an MQTT message lost in flight by a kill was published shortly before
# it (wirehubd commits each read burst; the broker holds the rest)
KILL_WINDOW_S = 5.0
FINAL = ("completed", "failed", "expired", "cancelled")


class Verdict:
    def __init__(self):
        self.failures = []

    def fail(self, what, detail=None):
        self.failures.append(what if detail is None
                             else "%s: %s" % (what, str(detail)[:400]))

    @property
    def ok(self):
        return not self.failures


# ------------------------------------------------------------ history


def fetch_history(api, channel):
    items, since = [], 0
    while True:
        resp = api.history(channel, "since=%d&limit=1000" % since)
        assert resp.status == 200, resp
        doc = resp.json()
        items += doc["items"]
        if doc["next"] is None:
            return items
        since = int(doc["next"])


def newest_ids(api, channels):
    out = {}
    for ch in channels:
        resp = api.history(ch, "last=1")
        items = resp.json()["items"] if resp.status == 200 else []
        out[ch] = items[-1]["id"] if items else 0
    return out


def wait_drained(api, channels, timeout=30):
    """Until no channel grows for two seconds (the broker's backlog and
    wirehubd's batches are in)."""
    deadline = time.monotonic() + timeout
    prev = newest_ids(api, channels)
    still = 0
    while time.monotonic() < deadline and still < 2:
        time.sleep(1.0)
        now = newest_ids(api, channels)
        still = still + 1 if now == prev else 0
        prev = now
    return prev


def check_history(v, hist):
    """{channel: items}: ids 1..N without a hole, one epoch."""
    out = {}
    for ch, items in hist.items():
        ids = [m["id"] for m in items]
        if ids != list(range(1, len(ids) + 1)):
            v.fail("history of %s is not 1..%d" % (ch, len(ids)),
                   ids[:5] + ["..."] + ids[-5:])
        epochs = set(m.get("epoch") for m in items)
        if len(epochs) > 1:
            v.fail("history of %s has several epochs" % ch, epochs)
        out[ch] = {"stored": len(ids), "epochs": sorted(map(str, epochs))}
    return out


def reference(hist):
    """{channel: ["p:k" of id 1, id 2, ...]}, what subscribers compare
    their deliveries with."""
    ref = {}
    for ch, items in hist.items():
        ref[ch] = ["%s:%s" % (m["data"].get("p"), m["data"].get("k"))
                   if isinstance(m.get("data"), dict) else
                   repr(m.get("data"))[:40] for m in items]
    return ref


# ------------------------------------------------------------ publishes


def check_api(v, publishers, hist):
    """Every 202 is stored at its id, with its data and epoch."""
    by_id = {ch: {m["id"]: m for m in items} for ch, items in hist.items()}
    acked = refused = bad = 0
    for p in publishers:
        if p.error is not None:
            v.fail("API publisher %s stopped" % p.name, repr(p.error))
        refused += sum(p.refused.values())
        for mid, epoch, data in p.acked:
            acked += 1
            m = by_id.get(p.channel, {}).get(mid)
            if m is None or m.get("data") != data or \
                    m.get("epoch", epoch) != epoch:
                bad += 1
                if bad <= 5:
                    v.fail("API 202 not stored as acknowledged",
                           (p.channel, mid, data, m))
    if bad > 5:
        v.fail("%d API 202s not stored as acknowledged in all" % bad)
    return {"acked": acked, "refused_or_retried": refused,
            "not_stored": bad}


def check_mqtt(v, feeds, hist, kills, daemon_ingested):
    """Broker-acknowledged MQTT messages against the history."""
    stored = Counter()
    for items in hist.values():
        for m in items:
            d = m.get("data")
            if isinstance(d, dict) and "k" in d:
                stored[(d.get("p"), d.get("k"))] += 1
    out = Counter()
    kill_times = [k["t"] for k in kills]
    for feed in feeds:
        if feed.error is not None:
            v.fail("MQTT feed %s stopped" % feed.name, feed.error)
        pubacked = feed.pubacked()
        out["published"] += len(feed.sent)
        out["pubacked_by_broker"] += len(pubacked)
        for k, (_, t, _) in feed.sent.items():
            n = stored[(feed.name, k)]
            if n:
                out["ingested"] += 1
                out["stored_twice"] += n > 1
            elif k not in pubacked:
                out["not_pubacked_not_stored"] += 1
            elif any(0 <= kt - t <= KILL_WINDOW_S for kt in kill_times):
                out["lost_in_flight_at_kill"] += 1
            else:
                out["lost"] += 1
                if out["lost"] <= 5:
                    v.fail("MQTT message lost with no kill near it",
                           (feed.name, k, t))
    out["daemon_counted_ingested"] = daemon_ingested
    return dict(out)


# ------------------------------------------------------------ commands


def all_commands(api, client_id):
    items, cursor = [], None
    while True:
        q = "/api/clients/%s/commands?limit=1000" % client_id
        status, page = api.call("GET", q + ("&cursor=" + cursor
                                            if cursor else ""))
        assert status == 200, page
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def command_states(api, agent_ids):
    return {d["command_id"]: d for a in agent_ids
            for d in all_commands(api, a)}


def wait_commands_final(api, agent_ids, accepted, timeout):
    deadline = time.monotonic() + timeout
    while True:
        states = command_states(api, agent_ids)
        pending = [c for c in accepted
                   if states.get(c, {}).get("status") not in FINAL]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def check_commands(v, feed, states, agents_done, kills):
    accepted = feed.accepted
    deliveries = defaultdict(list)
    for cid, attempt, agent, t, conn in agents_done["deliveries"]:
        deliveries[cid].append((t, attempt, conn))
    status = Counter(states.get(c, {}).get("status", "absent")
                     for c in accepted)
    not_done = [c for c in accepted
                if states.get(c, {}).get("status") != "completed"]
    if not_done:
        v.fail("%d accepted commands not completed" % len(not_done),
               [(c, states.get(c, {}).get("status")) for c in not_done[:5]])
    never = [c for c in accepted if c not in deliveries]
    if never:
        v.fail("%d accepted commands never reached an agent" % len(never),
               never[:5])
    unknown = [c for c in deliveries if c not in accepted]
    if unknown:
        v.fail("agents got commands nobody queued", unknown[:5])
    if feed.error is not None:
        v.fail("command feed stopped", feed.error)
    if feed.odd:
        v.fail("odd answers to command POSTs", feed.odd[:3])
    dups = classify_duplicates(deliveries, kills, agents_done)
    if dups["unexplained"]:
        v.fail("%d command redeliveries neither across a kill -9 nor "
               "after a result lost with its connection"
               % dups["unexplained"], dups["unexplained_samples"])
    return {"accepted": len(accepted), "posts": dict(feed.counts),
            "final_status": dict(status),
            "executed_at_least_once": len(accepted) - len(never),
            "deliveries": sum(len(d) for d in deliveries.values()),
            "duplicates": dups,
            "agents": agents_done["counts"]}


def classify_duplicates(deliveries, kills, agents_done):
    """Every delivery after a command's first: at-least-once is allowed
    across a kill -9 (wirehubd restarts and sends what it had not seen
    answered) and after the connection that got the previous delivery
    closed before the server accepted its result (an agent drop or an
    nginx reload); anything else is unexplained."""
    kill_times = [k["t"] for k in kills]
    accepted = agents_done["accepted"]
    conn_end = agents_done["conn_end"]
    out = Counter()
    samples = []
    for cid, ds in deliveries.items():
        ds.sort()
        for (t0, _, conn0), (t1, attempt, conn1) in zip(ds, ds[1:]):
            out["total"] += 1
            acc = accepted.get(cid)
            acked_before = acc is not None and acc[0] <= t1
            if any(t0 < kt <= t1 for kt in kill_times):
                out["across_kill"] += 1
                out["across_kill_after_accepted"] += acked_before
            elif not acked_before and conn_end.get(conn0, t1 + 1) <= t1:
                out["result_lost_with_connection"] += 1
            else:
                out["unexplained"] += 1
                if len(samples) < 5:
                    samples.append([cid, conn0, conn1, attempt,
                                    round(t1 - t0, 3), acc])
    for key in ("total", "across_kill", "across_kill_after_accepted",
                "result_lost_with_connection", "unexplained"):
        out.setdefault(key, 0)
    out = dict(out)
    out["unexplained_samples"] = samples
    return out


# ------------------------------------------------------------ subscribers


def merge_reports(reports):
    counts, samples = Counter(), {}
    lat = {"api": {}, "mqtt": {}}
    lat_max = {"api": 0.0, "mqtt": 0.0}
    subscribers = 0
    for r in reports:
        subscribers += r["subscribers"]
        counts.update(r["counts"])
        for kind, items in r["samples"].items():
            samples.setdefault(kind, []).extend(items[:5])
        for src in lat:
            procs.merge(lat[src], r["lat"][src])
            lat_max[src] = max(lat_max[src], r["lat_max"][src])
    return subscribers, counts, samples, lat, lat_max


# a subscriber process counts these; any of them fails the soak
SUBSCRIBER_FAILURES = ("gaps", "dup_in_conn", "dup_across_conns",
                       "recovered_false", "epoch_changed", "data_differs",
                       "not_as_stored", "beyond_history", "behind_at_end",
                       "never_subscribed", "unsubscribed_delivery",
                       "stray_subscribed", "soak_error")


def check_subscribers(v, reports):
    subscribers, counts, samples, lat, lat_max = merge_reports(reports)
    for kind in SUBSCRIBER_FAILURES:
        if counts.get(kind):
            v.fail("subscribers: %s x%d" % (kind, counts[kind]),
                   samples.get(kind, [])[:3])
    # no gap and caught up means exactly this; said again in one figure
    if counts.get("delivered", 0) != counts.get("covered_ids", 0):
        v.fail("subscribers: %d deliveries for %d ids covered" % (
            counts.get("delivered", 0), counts.get("covered_ids", 0)))
    latency = {}
    for src in lat:
        latency[src] = {"live_deliveries": sum(lat[src].values()),
                        "p50_ms": procs.percentile(lat[src], 50),
                        "p99_ms": procs.percentile(lat[src], 99),
                        "p999_ms": procs.percentile(lat[src], 99.9),
                        "max_ms": round(lat_max[src], 1)}
    caught = [r["caught_up_s"] for r in reports
              if r.get("caught_up_s") is not None]
    return {"subscribers": subscribers, "counts": dict(sorted(
        counts.items())), "latency": latency,
        "caught_up_s": max(caught) if caught else None}


# ------------------------------------------------------------ resources


GROUPS = {"nginx_workers": "rss_kib", "nginx_master": "rss_kib",
          # wirehubd's VmRSS holds the LMDB pages it touched, which grow
          # with the history by design: its heap (RssAnon) is checked
          "wirehubd": "anon_kib"}


def check_usage(v, base, end, cfg):
    out = {}
    for group, key in GROUPS.items():
        b, e = base[group], end[group]
        limit = b[key] * (1 + cfg.rss_tolerance) + cfg.rss_slack_mib * 1024
        row = {"checked": key, "baseline": strip(b), "end": strip(e),
               "limit_kib": int(limit), "fd_limit": b["fds"] + cfg.fd_slack}
        if e["procs"] != b["procs"]:
            v.fail("%s: %d processes at the end, %d at baseline"
                   % (group, e["procs"], b["procs"]))
        if e[key] > limit:
            v.fail("%s: %s %d KiB at the end > %d KiB (baseline %d)"
                   % (group, key, e[key], limit, b[key]))
        if e["fds"] > row["fd_limit"]:
            v.fail("%s: %d descriptors at the end > %d (baseline %d)"
                   % (group, e["fds"], row["fd_limit"], b["fds"]))
        out[group] = row
    return out


def strip(u):
    """A usage group without the per-process detail."""
    row = {k: u[k] for k in ("rss_kib", "anon_kib", "fds", "procs")}
    row["age_s"] = [p["age_s"] for p in u["each"].values()]
    return row
