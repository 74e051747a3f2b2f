#!/usr/bin/python3
"""Writes the hand-made seeds of every fuzzer into t/fuzz/corpus/NAME/.

Each seed is named after what it is ("seed-...").  A short fuzzing run's
corpus, minimized with -merge=1, sits next to them (hash names, and
"regress-..." inputs that once found a bug).  Rerunning this script
rewrites only the seed-* files.

    /usr/bin/python3 t/fuzz/make_seeds.py
"""

import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------ RFC 6455

def frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04", rsv1=False,
          length=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if mask is not None else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return h + payload
    return h + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def frames():
    # settings: bit 0 require_mask, bit 1 allow_rsv1, bits 2-3 max size
    # index (0, 16, 1000, 70000); then two bytes that seed the cutting
    s = lambda settings: bytes([settings, 0x12, 0x34])
    text = frame(1, b'{"type":"ping"}')
    yield "text", s(1) + text
    yield "text-nolimit-unmasked", s(0) + frame(1, b"hi", mask=None)
    yield "unmasked-required", s(1) + frame(1, b"hi", mask=None)
    yield "binary", s(1) + frame(2, bytes(range(40)))
    yield "fragments", s(1) + frame(1, b"Hel", fin=False) + \
        frame(0, b"lo ", fin=False) + frame(9, b"p") + frame(0, b"\xc3\xa9")
    yield "ping-pong", s(1) + frame(9, b"abc") + frame(10, b"")
    yield "close-reason", s(1) + frame(8, struct.pack(">H", 1000) + b"bye")
    yield "close-empty", s(1) + frame(8, b"")
    yield "close-1byte", s(1) + frame(8, b"\x03")
    yield "close-bad-code", s(1) + frame(8, struct.pack(">H", 1005))
    yield "close-bad-utf8", s(1) + frame(8, b"\x03\xe8\xff")
    yield "control-too-long", s(1) + frame(9, b"x" * 126)
    yield "control-fragmented", s(1) + frame(9, b"x", fin=False)
    yield "bad-opcode", s(1) + frame(3, b"x")
    yield "continuation-first", s(1) + frame(0, b"x")
    yield "text-in-text", s(1) + frame(1, b"a", fin=False) + frame(1, b"b")
    yield "bad-utf8", s(1) + frame(1, b"\xed\xa0\x80")
    yield "utf8-split", s(1) + frame(1, b"\xe2\x82", fin=False) + \
        frame(0, b"\xac")
    yield "rsv1-allowed", s(3) + frame(1, b"\xf2\x48\xcd", rsv1=True)
    yield "rsv1-refused", s(1) + frame(1, b"\xf2\x48\xcd", rsv1=True)
    yield "len16", s(1) + frame(2, b"z" * 300)
    yield "len16-small", s(1) + frame(2, b"z" * 3, length=3)[:1] + \
        b"\xfe\x00\x03" + b"\x00" * 4 + b"zzz"
    yield "len64", s(1) + frame(2, b"q" * 10)[:1] + b"\xff" + \
        struct.pack(">Q", 10) + b"\x00" * 4 + b"q" * 10
    yield "len64-huge", s(1) + b"\x82\xff" + b"\xff" * 8 + b"\x00" * 4
    yield "too-big-16", s(1 | 4) + frame(1, b"a" * 17)
    yield "too-big-1000", s(1 | 8) + frame(2, b"a" * 600, fin=False) + \
        frame(0, b"a" * 600)
    yield "truncated", s(1) + frame(1, b"hello")[:5]


# ------------------------------------------------------------ UTF-8

def utf8():
    yield "empty", b""
    yield "ascii", b"hello, world"
    yield "2byte", "caf\u00e9".encode()
    yield "3byte", "\u20ac\u2603".encode()
    yield "4byte", "\U0001f600\U0010ffff".encode()
    yield "max-bmp", "\ufffd\uffff".encode()
    yield "mixed", "a\u00e9\u20ac\U0001f600z".encode()
    yield "overlong-2", b"\xc0\xaf"
    yield "overlong-c1", b"\xc1\xbf"
    yield "overlong-3", b"\xe0\x80\xaf"
    yield "overlong-4", b"\xf0\x80\x80\xaf"
    yield "surrogate-lo", b"\xed\xa0\x80"
    yield "surrogate-hi", b"\xed\xbf\xbf"
    yield "edge-d7ff", b"\xed\x9f\xbf"
    yield "edge-e000", b"\xee\x80\x80"
    yield "above-10ffff", b"\xf4\x90\x80\x80"
    yield "f5", b"\xf5\x80\x80\x80"
    yield "ff", b"\xff"
    yield "lone-cont", b"\x80"
    yield "cut-2", b"ab\xc3"
    yield "cut-3", b"ab\xe2\x82"
    yield "cut-4", b"ab\xf0\x9f\x98"
    yield "bad-cont", b"\xe2\x28\xa1"
    yield "nul", b"a\x00b"
    yield "long-valid", ("\u00e9\u20ac\U0001f600x" * 40).encode()
    yield "long-bad-end", ("\u20ac" * 100).encode() + b"\xe2"


# ------------------------------------------------------------ JSON bits

MESSAGES = [
    {"type": "ping"},
    {"type": "ping", "ref": "r1"},
    {"type": "subscribe", "channels": ["sensors/V1", "sensors/+",
                                       "sensors/#", "$presence"],
     "ref": "s1"},
    {"type": "subscribe", "channels": ["a/b/c", "a/+/c", "+/+/+", "#",
                                       "a/#", "a", "$stats", "$commands"],
     "since": {"a/b/c": {"id": 5, "epoch": "e1"}}},
    {"type": "unsubscribe", "channels": ["sensors/V1"]},
    {"type": "publish", "channel": "chat/room-1",
     "data": {"text": "hi", "n": 0.1, "l": [1, 2, {"x": None}]}},
    {"type": "publish", "channel": "a..b/c", "data": "x", "event": "msg"},
    {"type": "publish", "channel": "a/../b", "data": 1},
    {"type": "publish", "channel": "a//b", "data": True},
    {"type": "publish", "channel": "x" * 201, "data": []},
    {"type": "register", "client_type": "sensor", "client_name": "pc-7"},
    {"type": "refresh", "token": "a.b.c"},
    {"type": "command_result", "command_id": "cmd-1",
     "status": "completed", "result": {"ok": True}},
    {"type": "device_discovery", "data": {"ip": "10.0.0.7"}},
]


def messages():
    for i, m in enumerate(MESSAGES):
        yield "msg-%02d" % i, json.dumps(m)
    yield "escaped-key", '{"type":"publish","\\u0064ata":{"a":1},' \
        '"channel":"c"}'
    yield "spaces", ' { "type" : "publish" , "data" : [ 1 , 2 ] } '
    yield "dup", '{"type":"a","type":"b"}'
    yield "not-object", '["type","ping"]'
    yield "broken", '{"type":"ping",'
    yield "strings", '{"data":"a\\"}b\\\\","ref":"\\u00e9"}'
    yield "deep", '{"data":' + "[" * 50 + "]" * 50 + "}"
    yield "lines", "sensors/+/#\nsensors/V1/x"
    yield "lines-sys", "$presence\n$presence"
    yield "lines-sources", "\n$sources\n"
    yield "lines-bad", "a/#/b\na/b"
    yield "result-plain", ' {"ref":"r-1","type":"command_result",' \
        '"command_id":"c-1","status":"completed","result":{"v":0.1}} '
    yield "result-nul", '{"type":"command_result","command_id":"c-1",' \
        '"status":"failed","error":"a\\u0000b"}'
    yield "result-escaped", '{"type":"command_result","command_id":"c-1",' \
        '"status":"completed","ref":"r\\u002d1"}'


def bodies():
    # first byte: 0 publish, 1 clients, 2 commands, 3 command_result
    pub = [
        {"type": "reading", "data": {"t": 21.5}},
        {"data": [1, 2, 3]},
        {"type": 5, "data": 1},
        {"type": "x"},
        {"data": None, "ref": "r"},
    ]
    for i, b in enumerate(pub):
        yield "publish-%d" % i, b"\x00" + json.dumps(b).encode()
    yield "publish-raw", b"\x00" + b'{"type":"t","data":0.10000,"x":"\\""}'
    yield "publish-escaped", b"\x00" + b'{"\\u0064ata":1}'
    cl = [
        {"name": "pump 1", "client_type": "pump",
         "metadata": {"site": "A", "n": [1, 2]}},
        {"name": ""},
        {"name": "n" * 257},
        {"client_type": "t", "metadata": None},
        {"metadata": "x"},
        {},
    ]
    for i, b in enumerate(cl):
        yield "clients-%d" % i, b"\x01" + json.dumps(b).encode()
    yield "clients-escaped-meta", b"\x01" + b'{"metad\\u0061ta":{}}'
    cmd = [
        {"command": "reboot", "payload": {"delay": 5}, "priority": 9,
         "ttl": 60, "idempotency_key": "k1"},
        {"command": "reboot"},
        {"command": "", "payload": 1},
        {"command": "x", "priority": 10},
        {"command": "x", "ttl": 0},
        {"command": "x", "ttl": 2592001},
        {"command": "x", "idempotency_key": "k" * 129},
        {"command": "a b"},
    ]
    for i, b in enumerate(cmd):
        yield "commands-%d" % i, b"\x02" + json.dumps(b).encode()
    res = [
        {"command_id": "cmd-1", "status": "completed", "result": {"a": 1}},
        {"command_id": "cmd-1", "status": "failed",
         "error": {"code": "E", "message": "m"}},
        {"command_id": "cmd-1", "status": "failed", "error": "boom"},
        {"command_id": "", "status": "completed"},
        {"command_id": "c" * 65, "status": "completed"},
        {"command_id": "c", "status": "done"},
    ]
    for i, b in enumerate(res):
        yield "result-%d" % i, b"\x03" + json.dumps(b).encode()
    yield "not-json", b"\x01{name:1}"
    yield "array", b"\x02[1,2]"


# ------------------------------------------------------------ query

def queries():
    # byte 0: key index (0 limit, 1 cursor, 2 since, 3 status, 4 channel,
    # 5 a, 6 "", 7 "a=b"; 8-15: key on the first line); byte 1: out size
    yield "limit", b"\x00\x20limit=10"
    yield "limit-big", b"\x00\x7flimit=18446744073709551615"
    yield "limit-over", b"\x00\x7flimit=18446744073709551616"
    yield "limit-neg", b"\x00\x20limit=-1"
    yield "limit-empty", b"\x00\x20limit="
    yield "limit-plus", b"\x00\x20limit=+5"
    yield "limit-later", b"\x00\x20x=1&limitx=2&limit=3&limit=4"
    yield "cursor", b"\x01\x40cursor=abc%2Fdef%3d&limit=5"
    yield "cursor-bad-pct", b"\x01\x40cursor=%zz"
    yield "cursor-cut-pct", b"\x01\x40cursor=ab%4"
    yield "cursor-tiny", b"\x01\x00cursor=abc"
    yield "since", b"\x02\x20since=42&cursor=7"
    yield "status", b"\x03\x20status=pending+delivered"
    yield "empty-key", b"\x06\x10=x&a=b"
    yield "eq-key", b"\x07\x10a=b=c"
    yield "own-key", b"\x08\x20client_id\nclient_id=pc%2D7&x"
    yield "amps", b"\x05\x10&&&a=&a=1"
    yield "nul-value", b"\x00\x20limit=5%00"


# ------------------------------------------------------------ config

def configs():
    with open(os.path.join(HERE, "../../conf/wirehubd.conf")) as f:
        yield "wirehubd.conf", f.read()
    with open(os.path.join(HERE, "../../conf/wirehubd-run.conf")) as f:
        yield "wirehubd-run.conf", f.read()
    yield "empty", ""
    yield "comment", "# nothing\n"
    yield "listen", "listen unix:/tmp/w.sock mode=0600;\n"
    yield "listen-group", "listen unix:/tmp/w.sock group=root;"
    yield "listen-peers", ("listen unix:/tmp/w.sock mode=0660 "
                           "peers=root,nobody,65534;")
    yield "quota", ("quota workspace=* channels=10000 history_bytes=256m "
                    "clients=100000 queued_commands=1000000 "
                    "publish_rate=2000/s;\n"
                    "quota workspace=acme history_bytes=4g "
                    "channels=unlimited;\n")
    yield "quota-bad", ("quota workspace=acme publish_rate=0/s;\n"
                        "quota clients=1;")
    yield "storage", "storage /tmp/wh map_size=64m max_map_size=1g;"
    yield "storage-small", "storage /tmp/wh map_size=1k;"
    yield "history", "history length=10 ttl=0;"
    yield "history-bad", "history length=0 ttl=-1s;"
    yield "stats", "stats interval=100ms;"
    yield "commands", "commands ttl=1h ack_timeout=5s max_attempts=1;"
    yield "commands-retention", "commands retention=30d;\ncommands retention=0 ttl=2s;"
    yield "log", "log /var/log/wirehubd.log debug;"
    yield "log-bad", "log relative warn;"
    yield "mqtt-tls", ("mqtt host=broker.example port=8883 username=u "
                       "password_file=/nonexistent cafile=/etc/hostname "
                       "keepalive=5 qos=0 max_payload=1m "
                       "reconnect_min=100ms reconnect_max=1m;")
    yield "ingest-no-mqtt", "ingest a/+ workspace=w channel=c/{1} type=t;"
    yield "ingest", ("mqtt host=::1;\n"
                     "ingest \"#\" workspace=w channel=all/{1} type=t;\n"
                     "ingest a/+/b/+ workspace={1} channel=x/{2} type=t "
                     "key=k{2} key_field=id rate=30/m;\n")
    yield "egress", ("mqtt host=10.0.0.1;\n"
                     "egress ws/{workspace}/c/{client}/e/{type} qos=0 "
                     "max_queue=1;")
    yield "egress-bad", "mqtt host=h; egress ws/{nope};"
    yield "dup", "stats interval=1s; stats interval=2s;"
    yield "unterminated", "stats interval=1s"
    yield "semicolon", ";"
    yield "unknown", "frobnicate yes;"
    yield "quotes", 'storage "/tmp/a b" ;'
    yield "open-quote", 'storage "/tmp/a\n;'
    yield "many-args", "history " + "length=1 " * 20 + ";"
    yield "units", "64m"
    yield "units-dur", "24h"


# ------------------------------------------------------------ ingest

def ingest():
    # line 1: rule, line 2: topic, line 3: key_field, rest: payload
    rows = [
        ("sensors/+/data workspace=demo channel=sensors/{1} "
         "type=sensor_reading key={1} rate=1/s", "sensors/V1/data",
         "sensor_id", '{"moisture":45.2}'),
        ("ws/+/devices/# workspace={1} channel=devices/{2} type=telemetry",
         "ws/acme/devices/d1/t", "", '{"a":1}'),
        ("# workspace=w channel=all/{1} type=t", "$SYS/broker", "", "1"),
        ("$SYS/# workspace=w channel=sys/{1} type=t", "$SYS/x/y", "k", "[]"),
        ("a/# workspace=w channel=a type=t", "a", "id", '"s"'),
        ("+/+/+ workspace={1} channel={2}/{3} type=t key={3}{3}",
         "w/c/k", "val", "null"),
        ("sensors/+/data workspace=demo channel=sensors/{1} type=t",
         "sensors/a b/data", "", "{}"),
        ("sensors/+/data workspace=demo channel=sensors/{1} type=t",
         "sensors//data", "", "{"),
        ("sensors/+/data workspace=demo channel=sensors/{1} type=t",
         "sensors/../data", "", ""),
        ("a/+ workspace=w channel=c/{2} type=t", "a/b", "", "1"),
        ("a/#/b workspace=w channel=c type=t", "a/x/b", "", "1"),
        ("a+/b workspace=w channel=c type=t", "a+/b", "", "1"),
        ("a/+ workspace=w channel=c type=t rate=0/s", "a/b", "", "1"),
        ("a/+ workspace=w channel=c type=t rate=abc", "a/b", "", "1"),
        ("a/+ workspace=w channel=c/{1 type=t", "a/b", "", "1"),
        ("a/+ channel=c type=t", "a/b", "", "1"),
        ("a/+ workspace=w channel=c type=t key_field=id",
         "a/\xc3\xa9", "id", '{"id":"old","x":{"id":1},"\\u0069d":2}'),
        ("+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+ workspace=w channel=c type=t",
         "a/b", "", "1"),
    ]
    for i, (r, t, k, p) in enumerate(rows):
        yield "rule-%02d" % i, "\n".join([r, t, k, p])
    yield "data-dup", "\n\nk\n" + '{"a":1,"a":2}'
    yield "data-nested", "\nt\nid\n" + ' {"a" : 1.50 , "b":{"c":[1,2]}} '
    yield "data-escaped-key", "\nt\nid\n" + '{"i\\u0064":1,"z":2}'


# ------------------------------------------------------------ deflate

def deflate_raw(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate():
    # byte 0: bits 0-1 mode (0/3 inflate, 1 round trip, 2 negotiate);
    # inflate: bits 2-4 (mode 0) or 5-7 (mode 3) the limit
    # (0, 1, 16, 255, 1000, 4096, 65536, 1m)
    msg = json.dumps({"type": "publish", "channel": "c",
                      "data": {"x": "y" * 50}}).encode()
    lim = lambda i: bytes([(i & 7) << 2])
    yield "inflate-1m", lim(7) + deflate_raw(msg)
    yield "inflate-1000", lim(4) + deflate_raw(msg)
    yield "inflate-16", lim(2) + deflate_raw(msg)
    yield "inflate-0", lim(0) + deflate_raw(b"")
    yield "inflate-empty", lim(5) + b""
    yield "inflate-bomb", lim(5) + deflate_raw(b"\x00" * 100000, 9)
    yield "inflate-stored", lim(6) + deflate_raw(b"abc" * 20, 0)
    yield "inflate-final", lim(6) + zlib.compressobj(
        6, zlib.DEFLATED, -15).compress(b"fin") + \
        zlib.compressobj(6, zlib.DEFLATED, -15).flush()
    yield "inflate-corrupt", lim(6) + b"\xff\xff\xff\xff"
    yield "inflate-cut", lim(6) + deflate_raw(msg)[:10]
    yield "inflate-trailing", lim(6) + deflate_raw(b"x", 9) + \
        b"\x03\x00" + b"garbage"
    yield "inflate-mode3", bytes([3 | (4 << 5)]) + deflate_raw(msg)
    yield "round-text", b"\x01" + msg
    yield "round-binary", b"\x05" + bytes(range(256))
    yield "round-empty", b"\x01"
    yield "round-126", b"\x01" + bytes(
        (i * 7919) % 251 for i in range(300))
    offers = [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=10; "
        "server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate",
        'permessage-deflate; client_max_window_bits="15"',
        "x-webkit-deflate-frame, permessage-deflate ; "
        "client_no_context_takeover ; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; "
        "server_no_context_takeover",
        "PERMESSAGE-DEFLATE;client_max_window_bits=7",
        "permessage-deflate; unknown=1",
        "permessage-deflate; server_max_window_bits=99999999999999999999",
    ]
    for i, o in enumerate(offers):
        yield "offer-%02d" % i, b"\x02" + o.encode()
    yield "offer-two-headers", b"\x02!permessage-deflate\nfoo\n" \
        b"permessage-deflate; server_max_window_bits=15"


# ------------------------------------------------------------ JWT

def b64(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt():
    # byte 0: mode (low 2 bits: 0 raw, 1 text signed here, 2 recipe,
    # 3 forged signature), policy in the higher bits
    now = 1700000000
    payloads = [
        {"workspace": "demo", "sub": "pc-7", "exp": now + 60},
        {"workspace": "demo", "sub": "pc-7", "exp": now - 60},
        {"workspace": "demo", "sub": "pc-7", "nbf": now + 600},
        {"workspace": "demo", "sub": "pc-7", "exp": 9223372036854775807},
        {"workspace": "demo", "sub": "pc-7", "iss": "iss", "aud": ["aud"]},
        {"workspace": "", "sub": "pc-7"},
        {"ws": "acme", "sub": "x", "channels": ["a/+", "b/#"],
         "publish": ["a/b"], "role": "device"},
        {"workspace": "demo", "sub": "s" * 300},
        {"workspace": "demo", "sub": "pc-7", "channels": "a"},
    ]
    for i, p in enumerate(payloads):
        for policy in (0, 0x1f):
            yield "signed-%02d-%02x" % (i, policy), \
                bytes([1 | (policy << 2)]) + json.dumps(p).encode()
    yield "header-none", b"\x01" + b'{"alg":"none"}\n{"sub":"a"}'
    yield "header-crit", b"\x01" + b'{"alg":"HS256","crit":["b64"]}\n' \
        b'{"workspace":"w","sub":"a"}'
    yield "header-kid", b"\x01" + b'{"alg":"HS256","kid":"k1",' \
        b'"typ":"JWT"}\n{"workspace":"w","sub":"a"}'
    yield "raw-none", b"\x00" + b64(b'{"alg":"none"}') + b"." + \
        b64(b'{"workspace":"w","sub":"a"}') + b"."
    yield "raw-garbage", b"\x00a.b.c"
    yield "raw-two-dots", b"\x00.."
    yield "raw-rs256", b"\x00" + b64(b'{"alg":"RS256"}') + b"." + \
        b64(b'{"workspace":"w","sub":"a"}') + b"." + b64(b"\x01" * 256)
    for i in range(4):
        yield "forge-%d" % i, bytes([3, i]) + bytes(range(64))
        yield "forge-raw-%d" % i, bytes([3, i | 4]) + b"\x00" * 3
    yield "recipe", bytes([2]) + bytes(range(1, 60))


# ------------------------------------------------------------ link

def link():
    # the link decoder's own framing is learnt by the fuzzer; these give
    # it lengths and bodies to start from
    yield "empty", b""
    yield "four", b"\x04\x04\x04\x04workclidsessname{\"a\":1}"
    yield "zeros", b"\x00" * 16
    yield "long", b"\x10\x20\x08\x05" + bytes(range(200))

    # a whole REQUEST frame of version 4 (the caller's sub last)
    def s(v):
        return struct.pack(">H", len(v)) + v
    body = (bytes([0x06]) + struct.pack(">I", 7) + s(b"acme") + b"\x01"
            + s(b"POST") + s(b"/clients/pc-1/commands") + s(b"")
            + struct.pack(">I", 17) + b'{"command":"ping"}'[:17]
            + s(b"ops-1"))
    yield "request-v4", struct.pack(">I", len(body)) + body


def json_member():
    for i, m in enumerate(MESSAGES):
        yield "msg-%02d" % i, json.dumps(m)
    yield "escaped", '{"\\u0064ata":1,"a\\"b":2}'
    yield "numbers", '{"a":0.1,"b":-1e300,"c":1E-5,"d":[0,-0]}'
    yield "nested", '{"a":{"data":1},"data":{"a":[{"data":2}]}}'
    yield "ws", ' \t\n{ "data" :\r\n"x" } '
    yield "unicode", '{"\u00e9":"\U0001f600","data":"\\ud83d\\ude00"}'
    yield "bad", '{"data":'


def json_check():
    yield from json_member()
    yield "scalars", '[true,false,null,"",0,-0,1.5e-3,"\\u0000"]'
    yield "int-edges", '[9223372036854775807,-9223372036854775808]'
    yield "int-over", '9223372036854775808'
    yield "real-over", '[1e308,1.8e308]'
    yield "surrogates", '["\\ud834\\udd1e","\\udbff\\udfff"]'
    yield "lone", '"\\ud800\\u0041"'
    yield "nul-key", '{"a\\u0000":1}'
    yield "deep", "[" * 2048 + "]" * 2048
    yield "deeper", '{"a":' * 2048 + "1" + "}" * 2048
    yield "nul-after", "[1\0]"
    yield "bad-numbers", "[01,1.,-,1e,.5]"


TARGETS = {
    "frame": frames, "utf8": utf8, "message": messages, "api": bodies,
    "query": queries, "config": configs, "ingest": ingest,
    "inflate": inflate, "jwt": jwt, "link": link, "json": json_member,
    "json_check": json_check,
}


def main():
    for target, gen in TARGETS.items():
        d = os.path.join(CORPUS, target)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.startswith("seed-"):
                    os.unlink(os.path.join(d, f))
        for name, data in gen():
            write(target, name, data)


if __name__ == "__main__":
    main()
