"""A WebSocket upstream for the sources tests (t/test_sources.py): a
stand-in for a messaging gateway's per-device API, run as its own
process so that a test can kill and restart it.

    upstream_ws.py PORT LOGFILE [--mode MODE] [--count N] [--interval S]
                   [--cert PEM --key PEM] [--subprotocol P]

Modes (per connection, path /ws/DEVICE):
  gateway   {"event":"connected"}, then N pairs of "message" and
            "message.ack" events (seq 0..N-1, one pair per interval),
            then stays open (answers pings)
  nonjson   "not json", "[1,2]", {"event":"a/b"}, {"no_event":1}, then one
            good "message" event
  huge      a 2 MiB text message, then stays open
  flood     "message" events as fast as the socket takes them
  garbage   a few good events, then bytes that are no WebSocket frame
  hang      a raw TCP listener that accepts and never answers
Each connection is logged as a JSON line {"open": path, "headers": {...},
"subprotocol": ...} and each event sent as {"sent": event}; a line
{"ready": port} says it listens.
"""

import argparse
import asyncio
import json
import ssl
import sys

import websockets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("log")
    ap.add_argument("--mode", default="gateway")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--subprotocol")
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1)

    def note(**obj):
        log.write(json.dumps(obj) + "\n")

    async def send(ws, device, event, **extra):
        msg = dict(event=event, device=device, **extra)
        await ws.send(json.dumps(msg))
        note(sent=msg)

    async def gateway(ws, device):
        await send(ws, device, "connected")
        for seq in range(args.count):
            await send(ws, device, "message", seq=seq, text="hi %d" % seq)
            await send(ws, device, "message.ack", seq=seq)
            if args.interval:
                await asyncio.sleep(args.interval)
        await ws.wait_closed()

    async def nonjson(ws, device):
        for raw in ("not json", "[1,2]", json.dumps({"event": "a/b"}),
                    json.dumps({"no_event": 1})):
            await ws.send(raw)
        await send(ws, device, "message", seq=0)
        await ws.wait_closed()

    async def huge(ws, device):
        await ws.send(json.dumps({"event": "message", "blob": "x" * (2 << 20)}))
        await ws.wait_closed()

    async def flood(ws, device):
        seq = 0
        while True:
            await ws.send(json.dumps({"event": "message", "seq": seq}))
            seq += 1

    async def garbage(ws, device):
        for seq in range(3):
            await send(ws, device, "message", seq=seq)
        ws.transport.write(b"\x0f\xff\x00garbage that is no frame")
        await ws.wait_closed()

    modes = dict(gateway=gateway, nonjson=nonjson, huge=huge, flood=flood,
                 garbage=garbage)

    async def handler(ws, path=None):
        path = path or ws.path
        note(open=path, headers=dict(ws.request_headers),
             subprotocol=ws.subprotocol)
        device = path.rsplit("/", 1)[-1]
        try:
            await modes[args.mode](ws, device)
        except websockets.ConnectionClosed:
            pass

    async def hang(reader, writer):
        note(open="hang")
        await asyncio.sleep(3600)

    async def run():
        tls = None
        if args.cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.cert, args.key)
        if args.mode == "hang":
            server = await asyncio.start_server(hang, "127.0.0.1", args.port)
        else:
            server = await websockets.serve(
                handler, "127.0.0.1", args.port, ssl=tls,
                max_size=None, ping_interval=None,
                subprotocols=[args.subprotocol] if args.subprotocol else None)
        note(ready=args.port)
        async with server:
            await asyncio.Future()

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
