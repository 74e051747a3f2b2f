"""The noisy neighbour: one workspace attacking the shared stack every way
a tenant can (test_noisy.py runs it in a process of its own, so that its
Python does not share an interpreter lock with the measurements).

    python3 noisy.py PORT SMALL_PORT WORKSPACE SECONDS

All of it comes from 127.0.0.2, as another tenant's machines would come
from other addresses than its neighbour's, so that nginx's limit_req and
limit_conn per address (as the README recommends) can see it.

It first gives the workspace 1000 messages (4 MiB) of history, prints
"ready" and waits for a line on stdin; then for SECONDS it floods at
once, through the real nginx and wirehubd:
  - API publishes of 4 KiB messages from 2 threads (history and storage
    fill, the publish rate),
  - WebSocket publishes as fast as the socket takes them (4 connections,
    reopened when closed),
  - huge replays: 20 connections resume the flood channel from id 0 and
    never read,
  - 10 live subscribers of the flood channel that never read,
  - command_result spam of 30 KiB messages (2 connections),
then prints one JSON object: what A got back (HTTP statuses, error codes,
close codes), for the test to check that the culprit got its errors."""

import asyncio
import json
import socket
import sys
import threading
import time
from collections import Counter

import chan
import wh
from chan import Client

BODY = "a" * 4000
SOURCE = "127.0.0.2"


def api_flood(port, ws, stop_at, out):
    api = wh.Api(port, chan.service_token(ws), timeout=10, source=SOURCE)
    try:
        while time.monotonic() < stop_at:
            try:
                resp = api.publish("flood", {"pad": BODY})
            except OSError as e:
                out["api:" + type(e).__name__] += 1
                api.close()
                api = wh.Api(port, chan.service_token(ws), timeout=10,
                             source=SOURCE)
                continue
            out["api:%d" % resp.status] += 1
            if resp.status != 202:
                out["api:" + str(resp.error_code())] += 1
    finally:
        api.close()


async def open_from(port, tok, rcvbuf=None):
    """A client connected from SOURCE (with a small receive buffer, if
    rcvbuf is given); raises AssertionError when the handshake is
    refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((SOURCE, 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = wh.ws_key()
    _, proto = await loop.create_connection(lambda: Client(key), sock=sock)
    proto.transport.write(wh.upgrade_request(token=tok, key=key))
    await proto.ready
    await proto.recv(10)
    return proto


def abort(c):
    if not c.transport.is_closing():
        c.transport.abort()


def tally_closed(c, out, what):
    if c.closed is not None:
        out["%s:close:%d" % (what, c.closed)] += 1
        return True
    return False


def drain_errors(c, out, what):
    while not c.queue.empty():
        item = c.queue.get_nowait()
        if isinstance(item, BaseException):
            continue
        msg = json.loads(item)
        if msg.get("type") == "error":
            out["%s:error:%s" % (what, msg.get("code"))] += 1


async def ws_publisher(port, ws, stop_at, out, n):
    tok = chan.token("pub%d" % n, ws, publish=["#"])
    frame = wh.encode_frame(wh.OP_TEXT, json.dumps(
        {"type": "publish", "channel": "flood", "data": {"pad": BODY * 2}}))
    while time.monotonic() < stop_at:
        try:
            c = await open_from(port, tok)
        except (OSError, AssertionError, asyncio.TimeoutError) as e:
            out["ws_pub:open:" + type(e).__name__] += 1
            await asyncio.sleep(0.1)
            continue
        while time.monotonic() < stop_at and c.closed is None:
            for _ in range(20):
                c.transport.write(frame)
            drain_errors(c, out, "ws_pub")
            await asyncio.sleep(0.001)
        drain_errors(c, out, "ws_pub")
        tally_closed(c, out, "ws_pub")
        abort(c)


async def result_spammer(port, ws, stop_at, out, n):
    tok = chan.token("agent%d" % n, ws)
    pad = "r" * 30000
    k = 0
    while time.monotonic() < stop_at:
        try:
            c = await open_from(port, tok)
        except (OSError, AssertionError, asyncio.TimeoutError) as e:
            out["result:open:" + type(e).__name__] += 1
            await asyncio.sleep(0.1)
            continue
        while time.monotonic() < stop_at and c.closed is None:
            for _ in range(10):
                k += 1
                c.transport.write(wh.encode_frame(wh.OP_TEXT, json.dumps(
                    {"type": "command_result", "command_id": "c%d" % k,
                     "status": "completed", "result": {"pad": pad}})))
            drain_errors(c, out, "result")
            await asyncio.sleep(0.001)
        drain_errors(c, out, "result")
        tally_closed(c, out, "result")
        abort(c)


async def sleepers(port, ws, epoch, out, n, since):
    """Clients that subscribe (resuming from id 0, or live) and stop
    reading at once."""
    held = []
    for i in range(n):
        try:
            c = await open_from(port, chan.token("sleep%d" % i, ws), 4096)
        except (OSError, AssertionError, asyncio.TimeoutError) as e:
            out["sleeper:open:" + type(e).__name__] += 1
            continue
        msg = {"type": "subscribe", "channels": ["flood"]}
        if since:
            msg["since"] = {"flood": {"id": 0, "epoch": epoch}}
        await c.send(msg)
        c.transport.pause_reading()
        held.append(c)
    return held


async def wake(held, out, what):
    """Read what the sleepers were sent, until closed or quiet."""
    for c in held:
        c.transport.resume_reading()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(c.closed is None
                                              for c in held):
        await asyncio.sleep(0.05)
    for c in held:
        if not tally_closed(c, out, what):
            out[what + ":open"] += 1
        abort(c)


def prefill(port, ws, n):
    """n messages of history for the replayers; returns the epoch."""
    api = wh.Api(port, chan.service_token(ws), source=SOURCE)
    stored = 0
    try:
        while stored < n:
            resp = api.publish("flood", {"pad": BODY})
            if resp.status == 429:      # the workspace's publish_rate
                time.sleep(int(resp.header("retry-after")))
                continue
            assert resp.status == 202, resp
            epoch = resp.json()["epoch"]
            stored += 1
    finally:
        api.close()
    return epoch


async def attack(port, small, ws, epoch, seconds):
    out = Counter()
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=api_flood,
                                args=(port, ws, stop_at, out))
               for _ in range(2)]
    for t in threads:
        t.start()
    replayers = await sleepers(small, ws, epoch, out, 20, since=True)
    readers = await sleepers(small, ws, epoch, out, 10, since=False)
    tasks = [asyncio.ensure_future(ws_publisher(port, ws, stop_at, out, n))
             for n in range(4)]
    tasks += [asyncio.ensure_future(result_spammer(port, ws, stop_at, out,
                                                   n))
              for n in range(2)]
    await asyncio.gather(*tasks)
    for t in threads:
        t.join()
    await wake(replayers, out, "replayer")
    await wake(readers, out, "never_reader")
    return out


def main():
    port, small, ws, seconds = sys.argv[1:5]
    epoch = prefill(int(port), ws, 1000)
    print("ready", flush=True)
    sys.stdin.readline()
    out = asyncio.run(attack(int(port), int(small), ws, epoch,
                             float(seconds)))
    print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
