"""1,000 concurrent authenticated WebSockets across 2 nginx workers: each
gets connection_status, answers server pings for 5 s, gets its pong, and
closes cleanly with 1000 echoed."""

import asyncio
import json
import os
import time

import pytest

import chan
import wh

CLIENTS = 1000
HOLD_SECONDS = 5.0
HANDSHAKES_IN_FLIGHT = 200

HTTP = wh.jwt_directives() + """
wirehub_ping_interval 1s;
wirehub_idle_timeout 3s;
"""

SERVER = """
location /ws/ { wirehub_websocket; }
"""


@pytest.fixture(scope="module")
def nginx(nginx_factory, keys):
    return nginx_factory(http=HTTP, server=SERVER)


def socket_fds(pid):
    fd_dir = "/proc/%d/fd" % pid
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


async def open_client(port, token, gate):
    async with gate:
        ws = await chan.Client.open(port, token, timeout=30)
    return ws, ws.status


async def hold(ws, index, until):
    """Keep reading (so pings get answered) until the deadline."""
    try:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            msg = await ws.recv(left)
            return "client %d got %r while idle" % (
                index, json.dumps(msg)[:100])
    except chan.NothingReceived:
        return None
    except wh.ConnectionClosed as e:
        return "client %d closed while held: %s" % (index, e)


async def app_ping(ws, index):
    await ws.send({"type": "ping", "ref": "r%d" % index})
    reply = await ws.recv(10)
    return reply


async def run_load(nginx, tokens, worker_sockets):
    gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    t0 = time.monotonic()
    opened = await asyncio.gather(*[open_client(nginx.port, tok, gate)
                                    for tok in tokens])
    connect_time = time.monotonic() - t0
    conns = [ws for ws, _ in opened]
    for pid in nginx.workers():
        worker_sockets[pid] = socket_fds(pid)
    until = time.monotonic() + HOLD_SECONDS
    held = await asyncio.gather(*[hold(ws, i, until)
                                  for i, ws in enumerate(conns)])
    replies = await asyncio.gather(*[app_ping(ws, i)
                                     for i, ws in enumerate(conns)])
    await asyncio.gather(*[ws.close(timeout=5) for ws in conns])
    return opened, connect_time, held, replies, conns


@pytest.mark.heavy
def test_1000_concurrent_sessions(nginx):
    tokens = [wh.mint("HS256", wh.claims(sub="load-%d" % i,
                                         workspace="load"))
              for i in range(CLIENTS)]
    worker_sockets = {}
    opened, connect_time, held, replies, conns = asyncio.run(
        run_load(nginx, tokens, worker_sockets))
    print("\n%d handshakes in %.2f s; sockets per worker: %r"
          % (CLIENTS, connect_time, worker_sockets))

    statuses = [first for _, first in opened]
    bad = [s for s in statuses if s.get("type") != "connection_status"
           or s["data"]["status"] != "connected"]
    assert not bad, bad[:3]
    assert {s["data"]["client_id"] for s in statuses} == \
        {"load-%d" % i for i in range(CLIENTS)}
    assert len({s["data"]["session"] for s in statuses}) == CLIENTS

    problems = [h for h in held if h is not None]
    assert not problems, problems[:5]

    wrong = [(i, r) for i, r in enumerate(replies)
             if r.get("type") != "pong" or r.get("ref") != "r%d" % i]
    assert not wrong, wrong[:3]

    unpinged = [i for i, ws in enumerate(conns) if ws.server_pings < 3]
    assert not unpinged, "%d clients got < 3 pings in %.0f s" % (
        len(unpinged), HOLD_SECONDS)

    codes = [ws.close_code for ws in conns]
    not_clean = [(i, c) for i, c in enumerate(codes) if c != 1000]
    assert not not_clean, not_clean[:5]

    assert len(worker_sockets) == 2, worker_sockets
    assert sum(worker_sockets.values()) >= CLIENTS, worker_sockets
    assert all(n > 0 for n in worker_sockets.values()), worker_sockets

    # after the clean closes the workers hold no client sockets
    deadline = time.monotonic() + 3
    while True:
        left = {pid: socket_fds(pid) for pid in nginx.workers()}
        if all(n < 20 for n in left.values()):
            break
        assert time.monotonic() < deadline, left
        time.sleep(0.1)

    nginx.assert_clean_log()
    nginx.assert_no_secrets(tokens[:50])

