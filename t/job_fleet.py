"""A stub fleet for t/test_jobs.py: many WebSocket agents in one asyncio
loop, run as a process so that the test's own loop stays free.  Agents
dedupe nothing: every device_command is reported as one JSON line on
stdout, then answered.

    job_fleet.py URL AGENTS_FILE
        AGENTS_FILE: a JSON list of [client_id, token].

stdout lines: {"ev": "ready", "n": N} once every agent is connected,
then {"ev": "cmd", "c": client, "id": command_id, "t": monotonic seconds,
"lane": ...} per delivery.  A command fails when its payload says so:
{"fail_mod": K, "fail_series": S} fails the executions whose index is a
multiple of K in attempt series S (the id "<job>.<index>.<series>"); a
payload {"fail": true} always fails.  Results are sent again every
second until the server accepts them (wirehubd may be down)."""

import asyncio
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

from wirehub_agent import _ws  # noqa: E402


def emit(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def outcome(message):
    payload = message.get("payload") or {}
    cid = message.get("command_id", "")
    parts = cid.split(".")
    if payload.get("fail"):
        return "failed"
    mod = payload.get("fail_mod")
    if mod and len(parts) == 3:
        if (int(parts[1]) % mod == 0
                and parts[2] == str(payload.get("fail_series", 1))):
            return "failed"
    return "completed"


class Agent:
    def __init__(self, url, client, token):
        self.url, self.client, self.token = url, client, token
        self.pending = {}           # command_id -> result message
        self.ws = None
        self.ref = 0

    async def send(self, message):
        try:
            await self.ws.send(json.dumps(message))
        except Exception:
            pass

    async def retry(self):
        while True:
            await asyncio.sleep(1.0)
            for message in list(self.pending.values()):
                await self.send(message)

    async def run(self, connected):
        first = True
        while True:
            try:
                self.ws = await _ws.connect(self.url, self.token, 30, None)
                json.loads(await self.ws.recv())        # connection_status
                if first:
                    connected.release()
                    first = False
                for message in list(self.pending.values()):
                    await self.send(message)
                async for text in self.ws:
                    await self.on(json.loads(text))
            except Exception:
                pass
            await asyncio.sleep(0.5)

    async def on(self, message):
        kind = message.get("type")
        if kind == "device_command":
            cid = message["command_id"]
            emit({"ev": "cmd", "c": self.client, "id": cid,
                  "t": time.monotonic(), "lane": message.get("lane")})
            self.ref += 1
            result = {"type": "command_result", "command_id": cid,
                      "status": outcome(message), "ref": "r%d" % self.ref}
            if result["status"] == "failed":
                result["error"] = "stub failure"
            self.pending[cid] = result
            await self.send(result)
        elif kind == "command_result_accepted":
            self.pending.pop(message.get("command_id"), None)
        elif kind == "error" and message.get("code") in ("bad_request",
                                                          "not_found"):
            for cid, result in list(self.pending.items()):
                if result["ref"] == message.get("ref"):
                    del self.pending[cid]


async def main(url, path):
    with open(path) as f:
        pairs = json.load(f)
    agents = [Agent(url, c, t) for c, t in pairs]
    connected = asyncio.Semaphore(0)
    gate = asyncio.Semaphore(64)

    async def start(agent):
        async with gate:
            asyncio.ensure_future(agent.run(connected))
            await connected.acquire()

    for agent in agents:
        asyncio.ensure_future(agent.retry())
    await asyncio.gather(*[start(a) for a in agents])
    emit({"ev": "ready", "n": len(agents)})
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
