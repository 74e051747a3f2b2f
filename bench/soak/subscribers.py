"""One soak subscriber process: many WebSocket subscribers (chan.Client,
asyncio) that subscribe to their channels, drop at random (abrupt abort
or a clean close), reconnect and resume each channel with `since` (id
and epoch of the last message they saw).  Every delivery is checked as
it comes: the id must follow the last one seen (a gap), must not come
again (a duplicate, within one connection or across), the epoch must
not change.  The data of each id is kept once per process, to be
compared with the stored history at the end.

stdin: the spec (JSON), then "FINISH {"last": {channel: id}, "ref":
{channel: ["p:k" of id 1, ...]}}" (stop dropping, wait until every
subscriber has the last id, check, close) or "STOP" (close now, no
check: the warm-up).  stdout: "READY {...}" once every subscriber
subscribed, "DONE {report}" at the end."""

import asyncio
import json
import random
import sys
import time
from collections import Counter

import paths  # noqa: F401  (t/ on sys.path)
import chan
import procs
import wh

SAMPLES = 20            # problems kept verbatim per kind, for the report
RESUBSCRIBE_S = 3.0     # a channel not confirmed by then is asked again


class Run:
    """What every subscriber of this process shares."""

    def __init__(self, spec):
        self.port = spec["port"]
        self.drop_mean = spec["drop_mean"]
        self.drops = True
        self.stopped = False
        self.counts = Counter()
        self.samples = {}
        self.seen = {}              # channel -> {id: "p:k"}
        self.lat = {"api": {}, "mqtt": {}}
        self.lat_max = {"api": 0.0, "mqtt": 0.0}
        self.caught_up_s = None

    def problem(self, kind, detail, n=1):
        self.counts[kind] += n
        kept = self.samples.setdefault(kind, [])
        if len(kept) < SAMPLES:
            kept.append(detail)

    def latency(self, source, ms):
        hist = self.lat[source]
        b = procs.bucket(ms)
        hist[b] = hist.get(b, 0) + 1
        if ms > self.lat_max[source]:
            self.lat_max[source] = ms


class ChannelState:
    """One subscriber's position in one channel, over all its
    connections."""

    __slots__ = ("last", "epoch", "origin", "conn", "conn_first")

    def __init__(self):
        self.last = None        # the last id seen (or subscribed at)
        self.epoch = None
        self.origin = None      # the id the first subscription began at
        self.conn = 0           # the connection that delivered `last`
        self.conn_first = None  # first id that connection delivered


class Subscriber:
    def __init__(self, run, name, token, channels, rng):
        self.run = run
        self.name = name
        self.token = token
        self.channels = channels
        self.rng = rng
        self.state = {ch: ChannelState() for ch in channels}
        self.conn = 0
        self.sub_ids = {}           # channel -> subscribed id, this conn
        self.asked_at = 0.0

    # ------------------------------------------------ the connection loop

    async def life(self):
        failures = 0
        while not self.run.stopped:
            try:
                client = await chan.Client.open(self.run.port, self.token,
                                                timeout=10)
            except Exception as e:  # refused (503 while wirehubd is down)
                self.run.counts["connect_failed:" + kind_of(e)] += 1
                failures += 1
                await asyncio.sleep(backoff(self.rng, failures))
                continue
            failures = 0
            await self.session(client)
            if not self.run.stopped:
                await asyncio.sleep(self.rng.uniform(0.05, 1.0))

    async def session(self, client):
        self.conn += 1
        conn = self.conn
        self.sub_ids = {}
        self.run.counts["connects"] += 1
        if conn > 1:
            self.run.counts["reconnects"] += 1
        client.on_text = lambda text: self.on_text(text, conn)
        while not client.queue.empty():
            item = client.queue.get_nowait()
            if isinstance(item, str):
                self.on_text(item, conn)
        self.subscribe(client, self.channels)
        drop_at = time.monotonic() + self.rng.expovariate(
            1.0 / self.run.drop_mean)
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(client.lost), 1.0)
            except asyncio.TimeoutError:
                pass
            if client.lost.done():
                self.run.counts["closed_by_server:%s" % client.closed] += 1
                return
            if self.run.stopped:
                await client.close()
                return
            if self.run.drops and time.monotonic() >= drop_at:
                await self.drop(client)
                return
            missing = [ch for ch in self.channels if ch not in self.sub_ids]
            if missing and time.monotonic() - self.asked_at > RESUBSCRIBE_S:
                self.run.counts["resubscribe_asks"] += 1
                self.subscribe(client, missing)

    async def drop(self, client):
        """Half abrupt (as a lost network: no close frame), half a
        clean close handshake."""
        if self.rng.random() < 0.5:
            self.run.counts["drops_abort"] += 1
            client.transport.abort()
        else:
            self.run.counts["drops_close"] += 1
            await client.close()

    def subscribe(self, client, channels):
        msg = {"type": "subscribe", "channels": list(channels),
               "ref": "s%d" % self.conn}
        since = {}
        for ch in channels:
            st = self.state[ch]
            if st.last is not None:
                since[ch] = {"id": st.last, "epoch": st.epoch}
        if since:
            msg["since"] = since
        self.asked_at = time.monotonic()
        client.transport.write(wh.encode_frame(wh.OP_TEXT, json.dumps(msg)))

    # ------------------------------------------------ what arrives

    def on_text(self, text, conn):
        # chan.Client would take an exception here for a bad frame and
        # drop the connection quietly: a slip of the soak must show
        try:
            self.dispatch(json.loads(text), conn)
        except Exception as e:
            self.run.problem("soak_error", "%s: %s" % (kind_of(e), e))

    def dispatch(self, msg, conn):
        mtype = msg.get("type")
        if mtype == "subscribed":
            self.subscribed(msg, conn)
        elif mtype == "error":
            # "unavailable" while wirehubd restarts: the channel stays
            # unconfirmed and is asked again
            self.run.counts["error:%s" % msg.get("code")] += 1
        elif "channel" in msg and "id" in msg:
            self.deliver(msg, conn)
        elif mtype not in ("pong", "connection_status"):
            self.run.counts["other:%s" % mtype] += 1

    def subscribed(self, msg, conn):
        ch = msg["channel"]
        st = self.state.get(ch)
        if st is None or conn != self.conn:
            self.run.problem("stray_subscribed", msg)
            return
        if ch in self.sub_ids:
            # the answer to a second ask while the first was in flight
            self.run.counts["subscribed_again"] += 1
            return
        self.sub_ids[ch] = msg["id"]
        if st.last is None:
            st.last = st.origin = msg["id"]
            st.epoch = msg["epoch"]
            self.run.counts["subscribes"] += 1
            return
        self.run.counts["resumes"] += 1
        if msg.get("recovered") is not True:
            self.run.problem("recovered_false", {
                "sub": self.name, "channel": ch, "since": st.last,
                "reply": msg})
        if msg.get("epoch") != st.epoch:
            self.run.problem("epoch_changed", {
                "sub": self.name, "channel": ch, "was": st.epoch,
                "reply": msg})

    def deliver(self, msg, conn):
        ch, mid = msg["channel"], msg["id"]
        st = self.state.get(ch)
        run = self.run
        if st is None or st.last is None:
            run.problem("unsubscribed_delivery", {
                "sub": self.name, "channel": ch, "id": mid})
            return
        data = msg.get("data")
        pk = "%s:%s" % (data.get("p"), data.get("k")) \
            if isinstance(data, dict) else repr(data)[:40]
        first = run.seen.setdefault(ch, {}).setdefault(mid, pk)
        if first != pk:
            run.problem("data_differs", {"channel": ch, "id": mid,
                                         "first": first, "now": pk})
        if msg.get("epoch") != st.epoch:
            run.problem("epoch_changed", {"sub": self.name, "channel": ch,
                                          "id": mid, "was": st.epoch,
                                          "now": msg.get("epoch")})
        if mid <= st.last:
            same = st.conn == conn and st.conn_first is not None \
                and mid >= st.conn_first
            run.problem("dup_in_conn" if same else "dup_across_conns", {
                "sub": self.name, "channel": ch, "id": mid,
                "last": st.last, "conn": conn})
            return
        if mid != st.last + 1:
            run.problem("gaps", {"sub": self.name, "channel": ch,
                                 "after": st.last, "got": mid,
                                 "conn": conn})
            run.counts["missing_in_gaps"] += mid - st.last - 1
        if st.conn != conn:
            st.conn, st.conn_first = conn, mid
        st.last = mid
        run.counts["delivered"] += 1
        # live, not replayed: latency means publish -> deliver
        if mid > self.sub_ids.get(ch, mid) and isinstance(data, dict) \
                and isinstance(data.get("ts"), (int, float)):
            source = "mqtt" if str(data.get("p", "")).startswith("mqtt") \
                else "api"
            run.latency(source, (time.time() - data["ts"]) * 1000.0)

    def caught_up(self, last):
        return all(self.state[ch].last is not None
                   and self.state[ch].last >= last.get(ch, 0)
                   for ch in self.channels)


def kind_of(e):
    text = str(e)
    if "503" in text[:200]:
        return "503"
    return type(e).__name__


def backoff(rng, failures):
    """Jittered exponential backoff, 0.1 s to 3 s."""
    return rng.uniform(0.5, 1.0) * min(3.0, 0.1 * 2 ** min(failures, 6))


# ------------------------------------------------------------ the end


def check(run, subs, last, ref):
    """The verdict of this process once every subscriber had its
    chance to catch up: counts added to run.counts."""
    for ch, table in run.seen.items():
        want = ref.get(ch, [])
        for mid, pk in table.items():
            if mid > len(want):
                run.problem("beyond_history", {"channel": ch, "id": mid})
            elif want[mid - 1] != pk:
                run.problem("not_as_stored", {"channel": ch, "id": mid,
                                              "got": pk,
                                              "stored": want[mid - 1]})
    for sub in subs:
        for ch, st in sub.state.items():
            if st.last is None:
                run.problem("never_subscribed", {"sub": sub.name,
                                                 "channel": ch})
                continue
            run.counts["covered_ids"] += last.get(ch, 0) - st.origin
            if st.last < last.get(ch, 0):
                run.problem("behind_at_end", {
                    "sub": sub.name, "channel": ch, "last": st.last,
                    "want": last[ch]}, n=last[ch] - st.last)


def report(run, subs):
    return {"subscribers": len(subs), "counts": dict(run.counts),
            "samples": run.samples, "lat": run.lat,
            "caught_up_s": run.caught_up_s,
            "lat_max": run.lat_max}


async def main_async(spec):
    run = Run(spec)
    rng = random.Random(spec["seed"])
    subs = [Subscriber(run, s["name"], s["token"], s["channels"],
                       random.Random(rng.random())) for s in spec["subs"]]
    loop = asyncio.get_running_loop()
    # connect storm bounded: at most 50 handshakes at once per process
    tasks = []
    for i, sub in enumerate(subs):
        tasks.append(asyncio.ensure_future(sub.life()))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await wait_until(lambda: all(all(st.last is not None
                                     for st in s.state.values())
                                 for s in subs), 60)
    procs.say("READY", {"subscribed": sum(
        all(st.last is not None for st in s.state.values()) for s in subs)})

    line = await loop.run_in_executor(None, sys.stdin.readline)
    word, _, rest = line.strip().partition(" ")
    if word == "FINISH":
        doc = json.loads(rest)
        last, ref = doc["last"], doc["ref"]
        run.drops = False
        caught = await wait_until(
            lambda: all(s.caught_up(last) for s in subs), spec["catchup"])
        run.caught_up_s = round(caught, 2)
    run.stopped = True
    await asyncio.gather(*tasks, return_exceptions=True)
    if word == "FINISH":
        check(run, subs, last, ref)
    procs.say("DONE", report(run, subs))


async def wait_until(pred, timeout):
    """Seconds it took for pred to hold (timeout if it never did)."""
    t0 = time.monotonic()
    while not pred() and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


if __name__ == "__main__":
    asyncio.run(main_async(json.loads(sys.stdin.readline())))
