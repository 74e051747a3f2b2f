"""The soak's agents process: agents (chan.Client with client tokens)
that receive the commands queued for them through the API, record every
delivery (command_id, attempt, when, on which connection), and answer
command_result "completed" until the server accepted it.  As the agent
library does, a command_id already run is not run again: its result is
sent again.  Agents drop at random (abort or clean close) and reconnect.

stdin: the spec (JSON), then "FINISH" (stop dropping) and "STOP" (close,
report).  stdout: "READY {...}" once every agent is connected, "DONE
{deliveries, accepted, conn_end, counts}" at the end."""

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
from subscribers import backoff, kind_of

RESEND_S = 5.0      # a result with no answer by then is sent again


class Run:
    def __init__(self, spec):
        self.port = spec["port"]
        self.drop_mean = spec["drop_mean"]
        # connection names stay unique over the run's agent processes
        self.tag = spec["tag"]
        self.drops = True
        self.stopped = False
        self.counts = Counter()
        self.deliveries = []    # [command_id, attempt, agent, t, conn]
        self.accepted = {}      # command_id -> [t, conn] of the first ack
        self.conn_end = {}      # conn -> t it closed
        self.errors = []


class Agent:
    def __init__(self, run, name, token, rng):
        self.run = run
        self.name = name
        self.token = token
        self.rng = rng
        self.conn = 0
        self.client = None
        self.pending = {}       # command_id -> monotonic time sent, or 0
        self.connected = False

    @property
    def conn_key(self):
        return "%s:%s#%d" % (self.run.tag, self.name, self.conn)

    async def life(self):
        failures = 0
        while not self.run.stopped:
            try:
                client = await chan.Client.open(self.run.port, self.token,
                                                timeout=10)
            except Exception as e:  # 503 while wirehubd is down
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
        conn = self.conn_key
        self.client = client
        self.connected = True
        self.run.counts["connects"] += 1
        client.on_text = lambda text: self.on_text(text, conn)
        while not client.queue.empty():
            item = client.queue.get_nowait()
            if isinstance(item, str):
                self.on_text(item, conn)
        # results the last connection could not deliver
        for cid in self.pending:
            self.pending[cid] = 0
        drop_at = time.monotonic() + self.rng.expovariate(
            1.0 / self.run.drop_mean)
        try:
            while True:
                self.resend()
                try:
                    await asyncio.wait_for(asyncio.shield(client.lost), 1.0)
                except asyncio.TimeoutError:
                    pass
                if client.lost.done():
                    self.run.counts["closed_by_server:%s" % client.closed] \
                        += 1
                    return
                if self.run.stopped:
                    await client.close()
                    return
                if self.run.drops and time.monotonic() >= drop_at:
                    self.run.counts["drops"] += 1
                    if self.rng.random() < 0.5:
                        client.transport.abort()
                    else:
                        await client.close()
                    return
        finally:
            self.connected = False
            self.run.conn_end[conn] = time.time()

    def resend(self):
        now = time.monotonic()
        for cid, sent in self.pending.items():
            if now - sent > RESEND_S:
                self.run.counts["results_resent"] += 1
                self.send_result(cid)

    def send_result(self, cid):
        self.pending[cid] = time.monotonic()
        msg = {"type": "command_result", "command_id": cid,
               "status": "completed", "result": {"by": self.name},
               "ref": "c:" + cid}
        self.client.transport.write(wh.encode_frame(wh.OP_TEXT,
                                                    json.dumps(msg)))

    def on_text(self, text, conn):
        try:
            self.dispatch(json.loads(text), conn)
        except Exception as e:  # a slip of the soak must show
            self.run.counts["soak_error"] += 1
            if len(self.run.errors) < 20:
                self.run.errors.append("%s: %s" % (kind_of(e), e))

    def dispatch(self, msg, conn):
        mtype = msg.get("type")
        ref = msg.get("ref") or ""
        if mtype == "device_command":
            cid = msg["command_id"]
            self.run.deliveries.append([cid, msg.get("attempt"), self.name,
                                        time.time(), conn])
            self.run.counts["deliveries"] += 1
            self.send_result(cid)
        elif mtype == "command_result_accepted" and ref.startswith("c:"):
            self.settled(ref[2:], conn)
        elif mtype == "error" and ref.startswith("c:"):
            cid = ref[2:]
            self.run.counts["result_error:%s" % msg.get("code")] += 1
            if msg.get("code") == "bad_request" \
                    and "already" in msg.get("message", ""):
                # a result sent again for a command already over
                self.pending.pop(cid, None)
            elif cid in self.pending:
                self.pending[cid] = 0       # "unavailable": again soon
        elif mtype not in ("pong", "connection_status"):
            self.run.counts["other:%s" % mtype] += 1

    def settled(self, cid, conn):
        self.pending.pop(cid, None)
        self.run.counts["results_accepted"] += 1
        self.run.accepted.setdefault(cid, [time.time(), conn])


async def main_async(spec):
    run = Run(spec)
    rng = random.Random(spec["seed"])
    agents = [Agent(run, a["name"], a["token"], random.Random(rng.random()))
              for a in spec["agents"]]
    tasks = [asyncio.ensure_future(a.life()) for a in agents]
    t0 = time.monotonic()
    while not all(a.connected for a in agents) \
            and time.monotonic() - t0 < 60:
        await asyncio.sleep(0.1)
    procs.say("READY", {"connected": sum(a.connected for a in agents)})
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "FINISH":
            run.drops = False
        elif line in ("STOP", ""):
            break
    run.stopped = True
    await asyncio.gather(*tasks, return_exceptions=True)
    procs.say("DONE", {"deliveries": run.deliveries,
                       "accepted": run.accepted, "conn_end": run.conn_end,
                       "counts": dict(run.counts), "errors": run.errors,
                       "pending": sum(len(a.pending) for a in agents)})


if __name__ == "__main__":
    asyncio.run(main_async(json.loads(sys.stdin.readline())))
