"""The durable command queue and the clients registry, end to end: real
nginx with the module, real wirehubd (commands ttl=10m ack_timeout=1s
max_attempts=3), WebSocket agents (wh.RawWebSocket.open), the HTTP API
with service tokens.  Every test works in a workspace of its own."""

import datetime
import http.client
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest

import chan
import conftest
import wh
from cmd_helpers import (CmdDaemon, client_token, commands_api, percentile,
                         post_many, service_token, wait_for)

SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
location = /metrics { wirehub_metrics; }
"""

LIMIT = 2


def http_conf():
    return (wh.jwt_directives(leeway="5s", issuer=None, audience=None)
            + "\nwirehub_jwt_sign_key HS256 file=%s;\n"
              "wirehub_max_connections_per_client %d;\n"
              # a device answers every command of the load tests at once:
              # thousands of command_result, far past the default 50r/s
              "wirehub_message_rate 2000r/s burst=2000;\n"
            % (wh.key_path("hs256.secret"), LIMIT))


def start_nginx(daemon, tag):
    ngx = wh.Nginx(tag, http=http_conf(), server=SERVER,
                   daemon_socket=daemon.socket)
    conftest.RUNNING_NGINX.append(ngx)
    try:
        ngx.start()
    except AssertionError:
        conftest.RUNNING_NGINX.remove(ngx)
        ngx.cleanup()
        raise
    return ngx


def stop_nginx(ngx):
    try:
        ngx.stop()
    finally:
        conftest.RUNNING_NGINX.remove(ngx)
        ngx.cleanup()


@pytest.fixture(scope="module")
def daemon(keys):
    if not os.path.exists(wh.WIREHUBD):
        pytest.fail("%s is missing: run `make daemon`" % wh.WIREHUBD,
                    pytrace=False)
    d = CmdDaemon("commands").start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def nginx(daemon):
    conftest.require_module()
    ngx = start_nginx(daemon, "commands-0")
    yield ngx
    stop_nginx(ngx)


@pytest.fixture
def ws():
    return "ws-" + uuid.uuid4().hex[:12]


@pytest.fixture
def api(nginx, ws):
    a = commands_api(nginx.port, service_token(ws))
    yield a
    a.close()


@pytest.fixture
def agents():
    """Agents a test opens, closed at its end."""
    opened = []
    yield opened
    for a in opened:
        a.close()


def connect(nginx, opened, ws, sub, token=None):
    agent = wh.RawWebSocket.open(nginx.port, token or client_token(ws, sub))
    opened.append(agent)
    return agent


def register(api, client_id, name="Desk 4", client_type="agent"):
    status, doc = api.call("POST", "/clients", {
        "id": client_id, "name": name, "client_type": client_type})
    assert status == 201, doc
    return doc


def queue(api, client_id, command="reboot", expect=202, **fields):
    body = {"command": command}
    body.update(fields)
    status, doc = api.call("POST", "/clients/%s/commands" % client_id, body)
    assert status == expect, (status, doc)
    return doc


def command(api, command_id):
    status, doc = api.call("GET", "/commands/" + command_id)
    assert status == 200, doc
    return doc


def wait_api(api):
    """Until nginx's link to a restarted wirehubd is up again."""
    wait_for(lambda: api.call("GET", "/clients")[0] == 200, timeout=15,
             interval=0.1, what="the API after a restart")


def events(dash, count, timeout=5.0):
    """The next count command_status events a dashboard sees."""
    return [dash.recv_type("command_status", timeout)["data"]
            for _ in range(count)]


def dashboard(nginx, opened, ws):
    """A client subscribed to $commands (a token naming it)."""
    token = wh.mint("HS256", wh.claims(sub="dash-1", workspace=ws,
                                       channels=["$commands"]))
    dash = connect(nginx, opened, ws, "dash-1", token)
    dash.send_json({"type": "subscribe", "channels": ["$commands"]})
    assert dash.recv_type("subscribed")["channel"] == "$commands"
    return dash


# ------------------------------------------------------------ registry


def test_register_client_with_token(nginx, api, agents, ws):
    doc = register(api, "pc-7", name="Desk 4", client_type="agent")
    assert doc["id"] == "pc-7" and doc["name"] == "Desk 4"
    assert doc["client_type"] == "agent" and doc["online"] is False
    assert wh.ISO_RE.match(doc["created_at"]) and doc["last_seen"] is None
    assert doc["token"].count(".") == 2

    # the token the module signed connects as that client
    agent = connect(nginx, agents, ws, None, token=doc["token"])
    assert agent.status["data"]["client_id"] == "pc-7"

    status, doc = api.call("GET", "/clients/pc-7")
    assert status == 200 and doc["online"] is True
    assert doc["connections"] == 1 and wh.ISO_RE.match(doc["last_seen"])

    status, dup = api.call("POST", "/clients", {"id": "pc-7", "name": "x",
                                                 "client_type": "agent"})
    assert status == 409 and wh_code(dup) == "conflict"

    # without an id the server picks one
    status, auto = api.call("POST", "/clients", {"name": "Desk 5",
                                                  "client_type": "agent"})
    assert status == 201 and auto["id"].startswith("cl-")


def wh_code(doc):
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc
    assert doc["error"]["message"], doc
    return doc["error"]["code"]


def test_register_refuses_bad_bodies(api):
    for body in ({"name": "x"}, {"client_type": "agent"},
                 {"name": "", "client_type": "a"},
                 {"name": 5, "client_type": "agent"},
                 {"name": "x", "client_type": "a", "id": "a/b"},
                 {"name": "x", "client_type": "a", "metadata": [1]}):
        status, doc = api.call("POST", "/clients", body)
        assert status == 400 and wh_code(doc) == "bad_request", body
    status, doc = api.call("POST", "/clients", raw=b'{"name":"a","name":"b",'
                                                    b'"client_type":"x"}')
    assert status == 400, doc
    status, doc = api.call("POST", "/clients", raw=b"not json")
    assert status == 400, doc


def test_patch_list_and_page(api):
    for i in range(5):
        register(api, "dev-%d" % i, name="Device %d" % i)

    status, doc = api.call("PATCH", "/clients/dev-2", raw=(
        b'{"name":"Pump 2","metadata":{"site":"north","moisture":45.2}}'))
    assert status == 200, doc
    assert doc["name"] == "Pump 2" and doc["client_type"] == "agent"
    assert doc["metadata"] == {"site": "north", "moisture": 45.2}

    # metadata keeps the bytes it was given (45.2, not 45.200000000000003)
    conn_status, raw = api.call("GET", "/clients/dev-2")
    assert conn_status == 200
    assert raw["metadata"]["moisture"] == 45.2

    status, doc = api.call("PATCH", "/clients/dev-2", {"metadata": None})
    assert status == 200 and "metadata" not in doc

    seen, cursor = [], None
    while True:
        q = "/clients?limit=2" + ("&cursor=" + cursor if cursor else "")
        status, page = api.call("GET", q)
        assert status == 200 and len(page["items"]) <= 2, page
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["dev-%d" % i for i in range(5)]

    status, doc = api.call("GET", "/clients?limit=0")
    assert status == 400


def test_connecting_registers_implicitly(nginx, api, agents, ws):
    status, _ = api.call("GET", "/clients/agent-9")
    assert status == 404
    queue(api, "agent-9", expect=404)

    agent = connect(nginx, agents, ws, "agent-9")
    agent.send_json({"type": "register", "client_type": "desktop",
                "client_name": "Desk 9"})

    def registered():
        status, doc = api.call("GET", "/clients/agent-9")
        return status == 200 and doc["client_type"] == "desktop" and doc
    doc = wait_for(registered, what="the implicit registration")
    assert doc["name"] == "Desk 9" and doc["online"] is True

    # now it can be commanded
    cmd = queue(api, "agent-9")
    assert cmd["status"] == "sent"
    assert agent.recv_type("device_command")["command_id"] == \
        cmd["command_id"]


def test_disconnect(nginx, api, agents, ws):
    register(api, "pc-1")
    agent = connect(nginx, agents, ws, "pc-1")
    status, doc = api.call("POST", "/clients/pc-1/disconnect")
    assert status == 200 and doc["disconnected"] == 1, doc
    assert doc["retry_after"] == 30, doc
    assert agent.wait_closed() == (4409, "retry_after=30")
    wait_for(lambda: api.call("GET", "/clients/pc-1")[1]["online"] is False,
             what="offline")

    status, doc = api.call("POST", "/clients/nope/disconnect")
    assert status == 404 and wh_code(doc) == "not_found"


def offline_doc(api, client_id):
    status, doc = api.call("GET", "/clients/" + client_id)
    return status == 200 and doc["online"] is False and doc


def waiting(api):
    """Clients whose last_seen write waits for wirehubd's next flush."""
    status, doc = api.call("GET", "/stats")
    assert status == 200, doc
    return doc["daemon"]["last_seen_waiting"]


def test_last_seen_of_a_known_client(nginx, daemon, api, agents, ws):
    """A registered client's sessions move last_seen in the API at once;
    the store gets it within a second (one write per client, not per
    session): at a SIGTERM restart (the drain writes what waits), and
    by the flush, so that SIGKILL once nothing waits loses nothing."""
    register(api, "pc-ls")
    seen = []
    for _ in range(3):
        agent = connect(nginx, agents, ws, "pc-ls")
        status, doc = api.call("GET", "/clients/pc-ls")
        assert status == 200 and doc["online"] is True, doc
        assert wh.ISO_RE.match(doc["last_seen"]), doc
        seen.append(doc["last_seen"])
        agent.close()
        agents.remove(agent)
        doc = wait_for(lambda: offline_doc(api, "pc-ls"), what="offline")
        seen.append(doc["last_seen"])
    assert seen == sorted(seen) and seen[0] < seen[-1], seen

    linked = chan.link_up_counts(nginx)
    daemon.restart()
    chan.wait_relinked(nginx, linked)
    wait_api(api)
    doc = offline_doc(api, "pc-ls")
    assert doc and doc["last_seen"] == seen[-1], (doc, seen)

    agent = connect(nginx, agents, ws, "pc-ls")
    agent.close()
    agents.remove(agent)
    last = wait_for(lambda: offline_doc(api, "pc-ls"),
                    what="offline")["last_seen"]
    assert last > seen[-1]
    wait_for(lambda: waiting(api) == 0, timeout=5, what="the flush")
    linked = chan.link_up_counts(nginx)
    daemon.kill9()
    daemon.start()
    chan.wait_relinked(nginx, linked)
    wait_api(api)
    doc = offline_doc(api, "pc-ls")
    assert doc and doc["last_seen"] == last, (doc, last)


def test_delete_drops_a_waiting_last_seen(nginx, daemon, api, agents, ws):
    """A client deleted while its last_seen write waits stays deleted:
    the write registers nobody, before or after a restart."""
    register(api, "pc-gone")
    agent = connect(nginx, agents, ws, "pc-gone")
    agent.close()
    agents.remove(agent)
    wait_for(lambda: offline_doc(api, "pc-gone"), what="offline")

    status, doc = api.call("DELETE", "/clients/pc-gone")
    assert status == 200 and doc == {"id": "pc-gone", "deleted": True}
    assert api.call("GET", "/clients/pc-gone")[0] == 404
    linked = chan.link_up_counts(nginx)
    daemon.restart()
    chan.wait_relinked(nginx, linked)
    wait_api(api)
    assert api.call("GET", "/clients/pc-gone")[0] == 404


# ------------------------------------------------------------ commands


def test_offline_agent_gets_reboot_next_morning(nginx, api, agents, ws):
    """The seed flow: a dashboard queues reboot for an offline desktop
    agent, the agent connects, receives it, reports completed, and the
    dashboard sees every status change live."""
    register(api, "pc-7", client_type="desktop")
    dash = dashboard(nginx, agents, ws)

    cmd = queue(api, "pc-7", payload={"delay_s": 5, "reason": "update"},
                priority=7)
    assert cmd["status"] == "pending" and cmd["priority"] == 7
    cid = cmd["command_id"]
    assert cid.startswith("c-")
    ev = events(dash, 1)[0]
    assert ev == {"command_id": cid, "client_id": "pc-7",
                  "command": "reboot", "status": "pending", "attempt": 0}

    agent = connect(nginx, agents, ws, "pc-7")
    msg = agent.recv_type("device_command")
    assert msg["command_id"] == cid and msg["command"] == "reboot"
    assert msg["payload"] == {"delay_s": 5, "reason": "update"}
    assert msg["priority"] == 7 and msg["attempt"] == 1
    assert wh.ISO_RE.match(msg["timestamp"])
    ev = events(dash, 1)[0]
    assert (ev["status"], ev["attempt"]) == ("sent", 1)
    assert command(api, cid)["status"] == "sent"

    ack = agent.result(cid, result={"rebooted": True, "uptime": 0.5})
    assert wh.ISO_RE.match(ack.pop("timestamp")), ack
    assert ack == {"type": "command_result_accepted", "command_id": cid,
                   "status": "completed", "ref": "r-" + cid}
    ev = events(dash, 1)[0]
    assert (ev["status"], ev["command_id"]) == ("completed", cid)

    doc = command(api, cid)
    assert doc["status"] == "completed"
    assert doc["result"] == {"rebooted": True, "uptime": 0.5}
    assert [h["status"] for h in doc["history"]] == \
        ["pending", "sent", "completed"]
    assert doc["history"][1]["session"] == agent.session

    # nothing comes again
    assert agent.quiet(1.5) == []


def test_result_keeps_the_agents_bytes(nginx, api, agents, ws):
    """command_result's "result" is stored as the agent wrote it, as the
    API stores payloads: 0.1 is not re-encoded as 0.10000000000000001."""
    register(api, "pc-raw", client_type="desktop")
    agent = connect(nginx, agents, ws, "pc-raw")
    cid = queue(api, "pc-raw")["command_id"]
    agent.recv_type("device_command")
    ack = agent.result(cid, result={"v": 0.1, "w": [1.5, -0.0]})
    assert ack["type"] == "command_result_accepted", ack
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    conn.request("GET", "/api/commands/%s" % cid,
                 headers={"Authorization": "Bearer " + api.token})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, body
    assert b'"result":{"v": 0.1, "w": [1.5, -0.0]}' in body, body


def test_results_written_with_escapes(nginx, api, agents, ws):
    """wirehubd reads a plain result without jansson and sends any other
    to it: escaped strings and keys, and an error that is not a string,
    come out as jansson reads them."""
    register(api, "pc-esc")
    agent = connect(nginx, agents, ws, "pc-esc")
    dash = dashboard(nginx, agents, ws)
    sent = []
    for _ in range(4):
        sent.append(queue(api, "pc-esc")["command_id"])
        assert agent.recv_type("device_command")["command_id"] == sent[-1]
    events(dash, 8)

    def escaped(cid):
        return cid.replace("-", "\\u002d")

    texts = [
        # the id and the status escaped
        '{"type":"command_result","command_id":"%s",'
        '"status":"complet\\u0065d","result":{"v":0.1}}' % escaped(sent[0]),
        # an escaped error, and the key "error" escaped
        '{"type":"command_result","command_id":"%s","status":"failed",'
        '"\\u0065rror":"disk \\"full\\"\\n"}' % sent[1],
        # an error that is not a string: its JSON text
        '{"type":"command_result","command_id":"%s","status":"failed",'
        '"error":{"code": 28}}' % sent[2],
        # plain
        '{"type":"command_result","status":"failed","error":"no disk",'
        '"command_id":"%s"}' % sent[3],
    ]
    for text in texts:
        agent.send_text(text)
        ack = agent.recv_type("command_result_accepted")
        assert ack["command_id"] in sent, ack

    got = [command(api, cid) for cid in sent]
    assert [d["status"] for d in got] == \
        ["completed", "failed", "failed", "failed"]
    assert got[0]["result"] == {"v": 0.1}
    assert got[1]["error"] == 'disk "full"\n'
    assert got[2]["error"] == '{"code":28}'
    assert got[3]["error"] == "no disk"
    done = events(dash, 4)
    assert sorted((e["command_id"], e["status"]) for e in done) == sorted(
        zip(sent, ["completed", "failed", "failed", "failed"]))

    # what neither reads as a result: the same errors either way
    for text in ('{"type":"command_result","command_id":"%s",'
                 '"status":"done"}' % sent[0],
                 '{"type":"command_result","command_id":"%s",'
                 '"status":"d\\u006fne"}' % sent[0],
                 '{"type":"command_result","status":"completed"}'):
        agent.send_text(text)
        reply = agent.recv_type("error")
        assert reply["code"] == "bad_request", (text, reply)


def test_results_scanned_or_parsed_alike(nginx, api, agents, ws):
    """nginx reads a plain command_result without jansson and sends any
    other to it: both give the same answer, the ref and the command id
    come back as the agent wrote them, and what jansson refuses is
    refused whichever way it came."""
    register(api, "pc-scan")
    agent = connect(nginx, agents, ws, "pc-scan")

    def fresh():
        cid = queue(api, "pc-scan")["command_id"]
        assert agent.recv_type("device_command")["command_id"] == cid
        return cid

    def answer(text):
        agent.send_text(text)
        reply = agent.recv(5.0)
        assert reply is not None, text
        return reply

    # plain: the ref and the id echoed, key order of the agent's choosing
    cid = fresh()
    reply = answer('{ "ref" : "r/1 x", "status":"completed",'
                   '"type":"command_result", "command_id" : "%s" }' % cid)
    assert (reply["type"], reply["command_id"], reply["status"],
            reply["ref"]) == ("command_result_accepted", cid, "completed",
                              "r/1 x"), reply

    # no ref: none in the answer
    cid = fresh()
    reply = answer('{"type":"command_result","command_id":"%s",'
                   '"status":"failed","error":"e"}' % cid)
    assert reply["type"] == "command_result_accepted", reply
    assert "ref" not in reply and reply["status"] == "failed", reply

    # escaped ref, escaped type, escaped key: jansson's, the same answer
    for text in ('{"type":"command_result","command_id":"%s",'
                 '"status":"completed","ref":"r\\u002d2"}',
                 '{"type":"command\\u005fresult","command_id":"%s",'
                 '"status":"completed","ref":"r-2"}',
                 '{"type":"command_result","command_\\u0069d":"%s",'
                 '"status":"completed","ref":"r-2"}'):
        cid = fresh()
        reply = answer(text % cid)
        assert (reply["type"], reply["command_id"], reply["ref"]) == \
            ("command_result_accepted", cid, "r-2"), (text, reply)
        assert command(api, cid)["status"] == "completed"

    # refused either way: nothing accepted, the command still open
    cid = fresh()
    for text, why in (
            ('{"type":"command_result","command_id":"%s",'
             '"status":"completed","status":"failed"}', "malformed"),
            ('{"type":"command_result","command_id":"%s",'
             '"status":"completed","result":"a\\u0000b"}', "malformed"),
            ('{"type":"command_result","command_id":"%s",'
             '"status":"completed"} x', "malformed"),
            ('{"type":"command_result","command_id":"%s",'
             '"status":"completed","result":{"a":[1,,2],"b":tru}}', "malformed"),
            ('{"type":"command_result","command_id":"%s",'
             '"status":"completed","ref":"' + "r" * 65 + '"}', "ref"),
            ('{"type":"command_result","command_id":"%s",'
             '"status":"Completed"}', "status"),
            ('{"type":"command_result","command_id":["%s"],'
             '"status":"completed"}', "status")):
        reply = answer(text % cid)
        assert (reply["type"], reply["code"]) == ("error", "bad_request"), \
            (text, reply)
        assert why in reply["message"], (text, reply)
    assert command(api, cid)["status"] == "sent"

    # wirehubd's refusal carries the plain ref back
    reply = answer('{"type":"command_result","command_id":"c-nope",'
                   '"status":"completed","ref":"r-3"}')
    assert (reply["type"], reply["code"], reply["ref"]) == \
        ("error", "not_found", "r-3"), reply


def test_priority_then_fifo(nginx, api, agents, ws):
    register(api, "pc-2")
    order = [(1, "a"), (5, "b"), (9, "c"), (5, "d"), (1, "e"), (9, "f"),
             (0, "g")]
    ids = {}
    for prio, name in order:
        ids[queue(api, "pc-2", command=name, priority=prio)["command_id"]] = \
            name

    status, doc = api.call("GET", "/clients/pc-2/commands?status=pending")
    assert status == 200 and len(doc["items"]) == len(order)

    agent = connect(nginx, agents, ws, "pc-2")
    got = [agent.recv_type("device_command")["command"] for _ in order]
    assert got == ["c", "f", "b", "d", "a", "e", "g"]

    for cid in ids:
        assert agent.result(cid)["type"] == "command_result_accepted"
    status, doc = api.call("GET", "/clients/pc-2/commands?status=completed")
    assert len(doc["items"]) == len(order)


def test_window_paces_a_backlog(nginx, api, agents, ws):
    """150 commands waiting: the agent gets 64 (the window), and one
    more for each it answers, all in FIFO order."""
    register(api, "pc-20")
    ids = [queue(api, "pc-20", command="c%d" % i)["command_id"]
           for i in range(150)]
    agent = connect(nginx, agents, ws, "pc-20")

    first = [m for m in agent.quiet(0.8) if m["type"] == "device_command"]
    assert len(first) == 64
    got = [m["command_id"] for m in first]
    for cid in got:
        agent.send_json({"type": "command_result", "command_id": cid,
                    "status": "completed"})
    while len(got) < 150:
        msg = agent.recv_type("device_command")
        if msg["command_id"] in got:
            # at least once: an attempt the ack window let go again
            assert msg["attempt"] > 1, msg
            continue
        got.append(msg["command_id"])
        agent.send_json({"type": "command_result", "command_id": got[-1],
                    "status": "completed"})
    assert got == ids
    wait_for(lambda: api.call("GET", "/clients/pc-20/commands?status="
                                     "pending,sent")[1]["items"] == [],
             what="every command completed")


def test_failed_result(nginx, api, agents, ws):
    register(api, "pc-3")
    agent = connect(nginx, agents, ws, "pc-3")
    dash = dashboard(nginx, agents, ws)
    cid = queue(api, "pc-3", command="open_port",
                payload={"port": 8080})["command_id"]
    assert [e["status"] for e in events(dash, 2)] == ["pending", "sent"]
    assert agent.recv_type("device_command")["command_id"] == cid

    ack = agent.result(cid, status="failed", error="no such port")
    assert ack["type"] == "command_result_accepted"
    assert ack["status"] == "failed"
    ev = events(dash, 1)[0]
    assert ev["status"] == "failed" and ev["error"] == "no such port"

    doc = command(api, cid)
    assert doc["status"] == "failed" and doc["error"] == "no such port"
    assert "result" not in doc


def test_ack_timeout_redelivers_with_backoff(nginx, api, agents, ws):
    """ack_timeout=1s, max_attempts=3: attempts at 0, 1 s and 3 s (the
    window doubles), failed with reason max_attempts at 7 s."""
    register(api, "pc-4")
    agent = connect(nginx, agents, ws, "pc-4")
    cid = queue(api, "pc-4")["command_id"]

    seen = []
    for attempt in (1, 2, 3):
        msg = agent.recv_type("device_command", timeout=6)
        assert (msg["command_id"], msg["attempt"]) == (cid, attempt)
        seen.append(time.monotonic())
    gap1, gap2 = seen[1] - seen[0], seen[2] - seen[1]
    assert 0.8 <= gap1 <= 1.9, gap1
    assert 1.8 <= gap2 <= 3.0, gap2

    doc = wait_for(lambda: command(api, cid)["status"] == "failed"
                   and command(api, cid), timeout=6, what="max_attempts")
    failed_at = time.monotonic()
    assert 3.5 <= failed_at - seen[2] <= 5.5, failed_at - seen[2]
    assert doc["reason"] == "max_attempts" and doc["attempt"] == 3
    assert [h["status"] for h in doc["history"]] == \
        ["pending", "sent", "sent", "sent", "failed"]

    # a late result is refused: the command is over
    reply = agent.result(cid)
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    assert "already failed" in reply["message"]


def test_unanswered_command_goes_again_on_reconnect(nginx, api, agents,
                                                    ws):
    register(api, "pc-5")
    agent = connect(nginx, agents, ws, "pc-5")
    cid = queue(api, "pc-5")["command_id"]
    assert agent.recv_type("device_command")["attempt"] == 1
    agent.close()
    time.sleep(1.3)            # the first ack window passes offline

    again = connect(nginx, agents, ws, "pc-5")
    msg = again.recv_type("device_command")
    assert (msg["command_id"], msg["attempt"]) == (cid, 2)
    assert again.result(cid)["type"] == "command_result_accepted"


def test_ttl_expiry(nginx, api, agents, ws):
    register(api, "pc-6")
    dash = dashboard(nginx, agents, ws)
    cid = queue(api, "pc-6", ttl=1)["command_id"]
    keep = queue(api, "pc-6", command="keep")["command_id"]
    time.sleep(1.4)

    doc = command(api, cid)
    assert doc["status"] == "expired" and doc["reason"] == "ttl"
    evs = events(dash, 3)
    assert [(e["command_id"], e["status"]) for e in evs] == \
        [(cid, "pending"), (keep, "pending"), (cid, "expired")]

    agent = connect(nginx, agents, ws, "pc-6")
    assert agent.recv_type("device_command")["command_id"] == keep
    assert agent.quiet(0.5) == []

    for bad in (0, -1, "10", 10 ** 9):
        status, doc = api.call("POST", "/clients/pc-6/commands",
                               {"command": "x", "ttl": bad})
        assert status == 400, (bad, doc)


def test_cancel(nginx, api, agents, ws):
    register(api, "pc-8")
    cid = queue(api, "pc-8")["command_id"]

    status, doc = api.call("DELETE", "/commands/" + cid)
    assert status == 200 and doc["status"] == "cancelled", doc
    status, doc = api.call("DELETE", "/commands/" + cid)
    assert status == 409 and wh_code(doc) == "conflict"
    assert command(api, cid)["reason"] == "cancelled by the API"

    agent = connect(nginx, agents, ws, "pc-8")
    assert agent.quiet(0.5) == []
    reply = agent.result(cid)
    assert reply["type"] == "error" and reply["code"] == "bad_request"

    status, doc = api.call("DELETE", "/commands/c-00000000000000000000")
    assert status == 404 and wh_code(doc) == "not_found"


def test_idempotency(api):
    register(api, "pc-9")
    register(api, "pc-10")
    first = queue(api, "pc-9", idempotency_key="deploy-42")
    again = queue(api, "pc-9", command="other", idempotency_key="deploy-42",
                  expect=200)
    assert again["command_id"] == first["command_id"]
    assert again["status"] == "pending"

    other = queue(api, "pc-9", idempotency_key="deploy-43")
    assert other["command_id"] != first["command_id"]
    # keys belong to a client
    mine = queue(api, "pc-10", idempotency_key="deploy-42")
    assert mine["command_id"] != first["command_id"]

    status, doc = api.call("GET", "/clients/pc-9/commands")
    assert [c["command"] for c in doc["items"]] == ["reboot", "reboot"]
    assert doc["items"][0]["idempotency_key"] == "deploy-42"


def test_results_that_are_not_a_state_change(nginx, api, agents, ws):
    register(api, "pc-11")
    register(api, "pc-12")
    owner = connect(nginx, agents, ws, "pc-11")
    other = connect(nginx, agents, ws, "pc-12")
    cid = queue(api, "pc-11")["command_id"]
    assert owner.recv_type("device_command")["command_id"] == cid

    # another client of the workspace: as if it did not exist
    reply = other.result(cid)
    assert reply["type"] == "error" and reply["code"] == "not_found"
    assert command(api, cid)["status"] == "sent"

    reply = owner.result("c-ffffffffffffffffffff")
    assert reply["type"] == "error" and reply["code"] == "not_found"

    assert owner.result(cid)["type"] == "command_result_accepted"
    reply = owner.result(cid, status="failed", error="late")
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    assert "already completed" in reply["message"]
    assert command(api, cid)["status"] == "completed"

    # a client of another workspace with the same id
    stranger = connect(nginx, agents, "x" + ws, "pc-11")
    reply = stranger.result(cid)
    assert reply["type"] == "error" and reply["code"] == "not_found"


def test_bad_command_bodies(api):
    register(api, "pc-13")
    for body in ({}, {"command": ""}, {"command": 5},
                 {"command": "x", "priority": 10},
                 {"command": "x", "priority": -1},
                 {"command": "x", "priority": 1.5},
                 {"command": "x", "idempotency_key": ""},
                 {"command": "x", "idempotency_key": "k" * 129}):
        status, doc = api.call("POST", "/clients/pc-13/commands", body)
        assert status == 400 and wh_code(doc) == "bad_request", body
    status, doc = api.call("GET", "/clients/pc-13/commands?status=done")
    assert status == 400
    status, doc = api.call("PUT", "/clients/pc-13/commands", {})
    assert status == 405
    status, doc = api.call("GET", "/clients/pc-13/commands")
    assert status == 200 and doc == {"items": [], "next": None}


# (body as sent, status, what the stored command shows): wirehubd reads a
# plain body without a parser and hands anything else to jansson; both
# must give the same answer
CREATE_BODIES = [
    # every field, on the path without a parser
    (b'{"command":"reboot","payload":{"a":[1,2],"c":{"d":"x y"}},'
     b'"priority":7,"ttl":90,"idempotency_key":"k-0","not_before":null,'
     b'"lane":"fw","supersede_key":"cfg"}',
     202, {"command": "reboot", "priority": 7, "idempotency_key": "k-0",
           "payload": {"a": [1, 2], "c": {"d": "x y"}}, "lane": "fw",
           "supersede_key": "cfg"}),
    (b'{"command":"reboot","payload":{"a":[1,{"b":"x"}],"c":{"d":2}},'
     b'"priority":3,"ttl":60,"idempotency_key":"k-1","not_before":null}',
     202, {"command": "reboot", "priority": 3, "idempotency_key": "k-1",
           "payload": {"a": [1, {"b": "x"}], "c": {"d": 2}}}),
    (b' {"priority" : 0 , "command" : "x" , "ttl" : 2592000} ', 202,
     {"command": "x", "priority": 0, "payload": {}}),
    (b'{"command":"reb\\u006fot","payload":{"k":[{"a":1},{"a":2}]}}', 202,
     {"command": "reboot", "payload": {"k": [{"a": 1}, {"a": 2}]}}),
    (b'{"command":"x","priority":-0,"payload":"{\\"a\\":1"}', 202,
     {"command": "x", "priority": 0, "payload": '{"a":1'}),
    (b'{"command":"x","extra":{"a":1},"not_before":'
     b'"2030-01-02T03:04:05Z"}', 202,
     {"command": "x", "not_before": "2030-01-02T03:04:05.000Z"}),
    (b'{"command":"x","payload":{"a":1,"a":2}}', 400, None),
    (b'{"command":"x","payload":{"a":{"b":1,"b":1}}}', 400, None),
    (b'{"command":"x","payload":[{"a":1,"a":2}]}', 400, None),
    (b'{"command":"x","command":"y"}', 400, None),
    (b'{"command":"x","co\\u006dmand":"y"}', 400, None),
    (b'{"command":"x","payload":"\\u0000"}', 400, None),
    (b'{"command":"x","ttl":0}', 400, None),
    (b'{"command":"x","ttl":2592001}', 400, None),
    (b'{"command":"x","ttl":1e3}', 400, None),
    (b'{"command":"x","ttl":60.0}', 400, None),
    (b'{"command":"x","priority":"3"}', 400, None),
    (b'{"command":"x","priority":10}', 400, None),
    (b'{"command":"x","lane":""}', 400, None),
    (b'{"command":"x","supersede_key":null}', 400, None),
    (b'{"command":"x","not_before":"tomorrow"}', 400, None),
    (b'{"command":"x"} {}', 400, None),
    (b'{"command":"x",}', 400, None),
    (b'["command","x"]', 400, None),
    (b'{"payload":{}}', 400, None),
]


def iso_ms(text):
    """Milliseconds since the epoch of 2026-12-06T10:00:00.123Z."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def test_create_bodies_scanned_or_parsed_alike(api):
    register(api, "pc-30")
    for raw, want, fields in CREATE_BODIES:
        status, doc = api.call("POST", "/clients/pc-30/commands", raw=raw,
                               headers={"Content-Type": "application/json"})
        assert status == want, (raw, status, doc)
        if want != 202:
            assert wh_code(doc) == "bad_request", (raw, doc)
            continue
        stored = command(api, doc["command_id"])
        for key, value in fields.items():
            assert key in stored and stored[key] == value, (raw, key, stored)
        if b'"ttl":90' in raw:
            assert iso_ms(stored["expires_at"]) - \
                iso_ms(stored["created_at"]) == 90000, stored


def test_list_pages(api):
    register(api, "pc-14")
    ids = [queue(api, "pc-14", command="c%d" % i)["command_id"]
           for i in range(7)]
    api.call("DELETE", "/commands/" + ids[3])
    seen, cursor = [], None
    while True:
        q = "/clients/pc-14/commands?limit=3"
        status, page = api.call("GET", q + ("&cursor=" + cursor
                                            if cursor else ""))
        assert status == 200 and len(page["items"]) <= 3
        seen += [c["command_id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids
    # no command is past the largest cursor
    status, page = api.call("GET", "/clients/pc-14/commands?"
                                   "cursor=18446744073709551615")
    assert status == 200 and page == {"items": [], "next": None}, page
    status, page = api.call("GET", "/clients/pc-14/commands?"
                                   "status=cancelled,expired")
    assert status == 200, page
    assert [c["command_id"] for c in page["items"]] == [ids[3]]


def state_entries(daemon, db):
    """Entries of a database of the state, as LMDB holds them."""
    out = subprocess.run(["mdb_stat", "-s", db,
                          os.path.join(daemon.prefix, "data", "state")],
                         check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Entries: (\d+)", out).group(1))


def listed(api, client_id, limit):
    ids, cursor = [], None
    while True:
        q = "/clients/%s/commands?limit=%d" % (client_id, limit)
        status, page = api.call("GET", q + ("&cursor=" + cursor
                                            if cursor else ""))
        assert status == 200, page
        ids += [c["command_id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            return ids


@pytest.mark.lmdb_only("reads state/ with mdb_stat")
def test_client_index_written_late(nginx, daemon, api):
    """One node enters a client's commands in its index about once a
    second, many to a page, and lists the newer ones from the commands
    in creation order: each listing has every command once and in
    order, before the index has them, after it, across a kill -9."""
    clients = ["late-%d" % i for i in range(3)]
    for c in clients:
        register(api, c)
    indexed = state_entries(daemon, "cmd_client")
    ids = {c: [] for c in clients}
    for i in range(60):
        c = clients[i % 3]
        ids[c].append(queue(api, c, command="n%d" % i)["command_id"])
        if i == 29:
            for c in clients:
                assert listed(api, c, 4) == ids[c]
            daemon.kill9()
            daemon.start()
            wait_api(api)
    for c in clients:
        assert listed(api, c, 1000) == ids[c]
        assert listed(api, c, 3) == ids[c]
    # every command of the store (this module prunes none) indexed
    wait_for(lambda: state_entries(daemon, "cmd_client")
             == state_entries(daemon, "commands"),
             timeout=10, interval=0.2, what="the index written")
    assert state_entries(daemon, "cmd_client") >= indexed + 60
    for c in clients:
        assert listed(api, c, 1000) == ids[c]
        assert listed(api, c, 7) == ids[c]


# ------------------------------------------------- revocation, limits


def test_delete_revokes_live_client(nginx, daemon, api, agents, ws):
    register(api, "pc-15")
    token = client_token(ws, "pc-15")
    agent = connect(nginx, agents, ws, "pc-15", token)
    pending = queue(api, "pc-15", command="later", ttl=600)["command_id"]
    assert agent.recv_type("device_command")["command_id"] == pending

    status, doc = api.call("DELETE", "/clients/pc-15")
    assert status == 200 and doc == {"id": "pc-15", "deleted": True}
    assert agent.wait_closed() == (4403, "client deleted")

    assert wh.handshake_status(nginx.port, token) == 401
    status, doc = api.call("GET", "/clients/pc-15")
    assert status == 404
    doc = command(api, pending)
    assert doc["status"] == "cancelled" and doc["reason"] == "client deleted"
    queue(api, "pc-15", expect=404)

    # after a wirehubd restart the revocation still holds, and a fresh
    # nginx (empty memory) learns it right after WELCOME
    daemon.restart()
    wait_api(api)
    fresh = start_nginx(daemon, "commands-fresh")
    try:
        assert wh.handshake_status(fresh.port, token) == 401
        assert wh.handshake_status(nginx.port, token) == 401
        # a token issued after the delete (and the leeway a clock running
        # ahead may have had) is a new registration
        again = wh.RawWebSocket.open(fresh.port, client_token(
            ws, "pc-15", iat=int(time.time()) + 5))
        agents.append(again)
        assert again.status["data"]["client_id"] == "pc-15"
    finally:
        stop_nginx(fresh)


def test_remembered_token_still_revoked(nginx, api, ws):
    """A token its workers remember (wirehub_token_cache) is refused once
    its client is deleted: the cache skips the signature and the claims,
    never the revocations."""
    register(api, "pc-rt")
    token = client_token(ws, "pc-rt")
    for _ in range(8):
        assert wh.handshake_status(nginx.port, token) == 101
    status, _ = api.call("DELETE", "/clients/pc-rt")
    assert status == 200
    before = wh.metric_value(nginx.port, "wirehub_jwt_tokens_cached_total")
    for _ in range(6):
        assert wh.handshake_status(nginx.port, token) == 401
    # some of the refusals found the token in a worker's cache
    assert wh.metric_value(nginx.port,
                           "wirehub_jwt_tokens_cached_total") > before


def test_refresh_checks_revocation(nginx, api, agents, ws):
    """Tokens issued before their client was deleted (also by a clock
    running ahead, with an iat up to the leeway later) can neither
    connect nor extend a session of the client registered again under the
    same id; the token minted at that registration works at once."""
    register(api, "pc-16")
    old = client_token(ws, "pc-16", iat=int(time.time()) - 10)
    ahead = client_token(ws, "pc-16", iat=int(time.time()) + 3)
    status, _ = api.call("DELETE", "/clients/pc-16")
    assert status == 200
    doc = register(api, "pc-16")
    agent = connect(nginx, agents, ws, None, token=doc["token"])
    assert agent.status["data"]["client_id"] == "pc-16"
    assert wh.handshake_status(nginx.port, ahead) == 401

    for ref, token in (("f1", old), ("f2", ahead)):
        agent.send_json({"type": "refresh", "token": token, "ref": ref})
        reply = agent.recv_type("error")
        assert (reply["code"], reply["ref"]) == ("forbidden", ref), reply
        assert "revoked" in reply["message"], reply

    agent.send_json({"type": "refresh", "token": doc["token"], "ref": "f3"})
    reply = agent.recv_type("refreshed")
    assert reply["ref"] == "f3", reply


def test_link_replays_revocations_after_welcome(daemon, api, ws):
    """On the link itself: a worker that connects is told every stored
    revocation right after WELCOME, and a SESSION_OPEN with a token
    issued before the delete is refused with 4403."""
    import test_daemon as td
    td.LAYOUT.setdefault(0x8E, [("workspace", "s"), ("client_id", "s"),
                                ("id2", "Q")])
    register(api, "pc-r")
    status, _ = api.call("DELETE", "/clients/pc-r")
    assert status == 200
    deleted = time.time()

    link = td.Link(daemon.socket, name="pytest/commands")
    try:
        iat = int(deleted) - 5
        link.send(td.SESSION_OPEN, session="s-old", workspace=ws,
                  client_id="pc-r", id2=iat, count=0)
        revoked = []
        while True:
            msg = link.recv()
            if msg["type"] == 0x8E:
                revoked.append(msg)
                continue
            assert msg["type"] == td.SESSION_ACCEPT, msg
            break
        mine = [r for r in revoked if (r["workspace"], r["client_id"])
                == (ws, "pc-r")]
        assert len(mine) == 1
        assert int(deleted) <= mine[0]["id2"] <= int(deleted) + 1
        assert (msg["session"], msg["status"]) == ("s-old", 4403)

        link.send(td.SESSION_OPEN, session="s-new", workspace=ws,
                  client_id="pc-r", id2=mine[0]["id2"], count=0)
        msg = link.expect(td.SESSION_ACCEPT)
        assert (msg["session"], msg["status"]) == ("s-new", 0)
    finally:
        link.close()


def test_limit_closes_oldest_and_commands_go_to_newest(nginx, api, agents,
                                                        ws):
    register(api, "pc-16")
    first = connect(nginx, agents, ws, "pc-16")
    second = connect(nginx, agents, ws, "pc-16")
    third = connect(nginx, agents, ws, "pc-16")

    assert first.wait_closed() == (4408, "replaced by a newer connection")
    assert second.quiet(0.3) == [] and second.close_code is None

    cid = queue(api, "pc-16")["command_id"]
    assert third.recv_type("device_command")["command_id"] == cid
    assert second.quiet(0.3) == []
    status, doc = api.call("GET", "/clients/pc-16")
    assert doc["connections"] == LIMIT


def test_revoked_token_refused_on_api(nginx, api, ws):
    """A deleted client's id in a service token of the same sub: API
    calls with tokens issued before the delete are refused."""
    register(api, "svc-robot")
    robot = wh.mint("HS256", wh.claims(sub="svc-robot", workspace=ws,
                                       role="service"))
    status, _ = commands_api(nginx.port, robot).call("GET", "/clients")
    assert status == 200
    status, _ = api.call("DELETE", "/clients/svc-robot")
    assert status == 200
    status, doc = commands_api(nginx.port, robot).call("GET", "/clients")
    assert status == 401, doc


# ------------------------------------------------------------ isolation


def test_isolation_on_every_endpoint(nginx, api, agents, ws):
    register(api, "pc-17")
    cid = queue(api, "pc-17")["command_id"]
    other_ws = "x" + ws
    other = commands_api(nginx.port, service_token(other_ws))

    not_found = [
        ("GET", "/clients/pc-17", None),
        ("PATCH", "/clients/pc-17", {"name": "mine"}),
        ("DELETE", "/clients/pc-17", None),
        ("POST", "/clients/pc-17/disconnect", None),
        ("POST", "/clients/pc-17/commands", {"command": "wipe"}),
        ("GET", "/clients/pc-17/commands", None),
        ("GET", "/commands/" + cid, None),
        ("DELETE", "/commands/" + cid, None),
    ]
    for method, path, body in not_found:
        status, doc = other.call(method, path, body)
        assert status == 404 and wh_code(doc) == "not_found", (method, path)

    status, doc = other.call("GET", "/clients")
    assert status == 200 and doc["items"] == []

    # the same ids in the other workspace are other objects
    status, doc = other.call("POST", "/clients", {"id": "pc-17",
                                                   "name": "theirs",
                                                   "client_type": "x"})
    assert status == 201
    status, doc = other.call("GET", "/clients/pc-17/commands")
    assert status == 200 and doc["items"] == []

    # a client token may not use the API; X-Workspace-ID must match
    client_api = commands_api(nginx.port, client_token(ws, "pc-17"))
    status, doc = client_api.call("GET", "/clients")
    assert status == 403
    status, doc = other.call("GET", "/clients/pc-17",
                             headers={"X-Workspace-ID": ws})
    assert status == 403

    # nothing of the first workspace changed
    assert command(api, cid)["status"] == "pending"
    status, doc = api.call("GET", "/clients/pc-17")
    assert status == 200 and doc["name"] == "Desk 4"
    other.close()


# ------------------------------------------------- kill -9, measurements


class Responder(threading.Thread):
    """An agent that completes every command it receives."""

    def __init__(self, agent):
        super().__init__(daemon=True)
        self.agent = agent
        self.accepted = set()
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                msg = self.agent.recv(0.2)
            except Exception:
                continue
            if msg is None:
                return
            if msg.get("type") == "device_command":
                self.agent.send_json({"type": "command_result",
                                 "command_id": msg["command_id"],
                                 "status": "completed",
                                 "ref": msg["command_id"]})
            elif msg.get("type") == "command_result_accepted":
                self.accepted.add(msg["command_id"])


def all_commands(api, client_id):
    items, cursor = [], None
    while True:
        q = "/clients/%s/commands?limit=1000" % client_id
        status, page = api.call("GET", q + ("&cursor=" + cursor
                                            if cursor else ""))
        assert status == 200, page
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def test_kill9_under_load_loses_nothing(nginx, daemon, api, agents, ws):
    """2,000 commands posted concurrently while wirehubd is killed with
    SIGKILL and restarted; clients retry a failed POST with the same
    idempotency key.  Every 202 is in the store exactly once, and a
    command whose result was accepted is completed, never pending."""
    offline = ["off-%d" % i for i in range(3)]
    for c in offline + ["live"]:
        register(api, c)
    live = connect(nginx, agents, ws, "live")
    responder = Responder(live)
    responder.start()

    jobs = []
    for i in range(2000):
        c = (offline + ["live"])[i % 4]
        jobs.append(("k-%d" % i, "/api/clients/%s/commands" % c,
                     {"command": "job", "payload": {"n": i},
                      "idempotency_key": "k-%d" % i}))

    results = []

    def killer():
        wait_for(lambda: len(results) >= 400, timeout=30, interval=0.005,
                 what="400 answers")
        daemon.kill9()
        time.sleep(0.3)
        daemon.start()

    t = threading.Thread(target=killer)
    t.start()
    post_many(nginx.port, api.token, jobs, conns=48, retry=True,
              results=results)
    t.join()
    wait_api(api)

    answers = {}
    for key, status, body, _ in results:
        if status in (200, 202):
            answers.setdefault(key, set()).add(json.loads(body)
                                               ["command_id"])
        else:
            assert status in (None, 502, 503), (key, status, body)
    assert len(answers) == 2000
    # a retried key names the command its first 202 did
    assert all(len(ids) == 1 for ids in answers.values())
    acked = {next(iter(ids)) for ids in answers.values()}
    assert len(acked) == 2000
    statuses = [s for _, s, _, _ in results]
    assert statuses.count(503) + statuses.count(None) > 0, \
        "the kill did not hit the load"

    # the live agent reconnects its session by itself; let the
    # redeliveries after the restart settle
    def settled():
        docs = all_commands(api, "live")
        return all(d["status"] == "completed" for d in docs) and docs
    live_docs = wait_for(settled, timeout=30, interval=0.5,
                         what="the live client's commands to complete")
    responder.stop = True

    stored = {}
    for c in offline:
        for d in all_commands(api, c):
            assert d["command_id"] not in stored
            stored[d["command_id"]] = d
            assert d["status"] == "pending", d
    for d in live_docs:
        assert d["command_id"] not in stored
        stored[d["command_id"]] = d
    assert set(stored) == acked
    assert responder.accepted <= {d["command_id"] for d in live_docs}


def test_kill9_nginx_worker_under_load(daemon, ws):
    """An nginx worker killed with SIGKILL while commands are posted
    (the master starts another): failed POSTs are retried with their
    idempotency key, and each 202 names one stored command."""
    ngx = start_nginx(daemon, "commands-kill")
    try:
        api = commands_api(ngx.port, service_token(ws))
        register(api, "pc-k")
        jobs = [("k-%d" % i, "/api/clients/pc-k/commands",
                 {"command": "job", "idempotency_key": "k-%d" % i})
                for i in range(600)]
        killed = []

        class Results(list):
            """Kills, at the 150th answer, the worker that holds most of
            the POST connections (they need not spread over both); the
            POSTs wait meanwhile, so some are in flight on it."""

            def append(self, item):
                super().append(item)
                if len(self) == 150:
                    held = Counter(pid for pid in chan.workers_of(
                        ngx, list(chan.tcp_inodes(ngx.port)),
                        ngx.port).values() if pid is not None)
                    killed.append(held.most_common(1)[0][0] if held
                                  else ngx.workers()[0])
                    os.kill(killed[0], 9)

        results = Results()
        post_many(ngx.port, api.token, jobs, conns=32, retry=True,
                  results=results)
        assert killed, "fewer than 150 answers"

        answers = {}
        for key, status, body, _ in results:
            if status in (200, 202):
                answers.setdefault(key, set()).add(
                    json.loads(body)["command_id"])
        assert len(answers) == 600
        assert all(len(ids) == 1 for ids in answers.values())
        assert any(r[1] is None for r in results), \
            "the kill did not hit the load"
        stored = [d["command_id"] for d in all_commands(api, "pc-k")]
        assert sorted(stored) == sorted(next(iter(ids))
                                        for ids in answers.values())
        api.close()
    finally:
        stop_nginx(ngx)


@pytest.mark.heavy
def test_measure_throughput_and_latency(nginx, api, agents, ws, capsys):
    """Not a timing test: prints commands/s accepted with fsync and the
    API -> device -> ack latency (p50/p99); checks every answer."""
    register(api, "bulk")
    n = 4000
    jobs = [(i, "/api/clients/bulk/commands",
             {"command": "job", "payload": {"n": i}}) for i in range(n)]
    t0 = time.monotonic()
    results = post_many(nginx.port, api.token, jobs, conns=64)
    elapsed = time.monotonic() - t0
    assert [s for _, s, _, _ in results].count(202) == n
    posts = sorted(r[3] for r in results)

    register(api, "lat")
    agent = connect(nginx, agents, ws, "lat")
    to_device, to_ack = [], []
    for i in range(300):
        t0 = time.monotonic()
        cid = queue(api, "lat", command="ping", payload={"i": i})[
            "command_id"]
        msg = agent.recv_type("device_command")
        t1 = time.monotonic()
        assert msg["command_id"] == cid
        assert agent.result(cid)["type"] == "command_result_accepted"
        t2 = time.monotonic()
        to_device.append(t1 - t0)
        to_ack.append(t2 - t0)

    with capsys.disabled():
        print("\ncommands: %d accepted in %.2f s = %.0f/s with fsync "
              "(64 connections; POST p50 %.1f ms, p99 %.1f ms)"
              % (n, elapsed, n / elapsed, 1000 * percentile(posts, 50),
                 1000 * percentile(posts, 99)))
        print("commands: API -> device p50 %.1f ms p99 %.1f ms; "
              "API -> device -> ack p50 %.1f ms p99 %.1f ms (300 sequential)"
              % (1000 * percentile(to_device, 50),
                 1000 * percentile(to_device, 99),
                 1000 * percentile(to_ack, 50),
                 1000 * percentile(to_ack, 99)))
    assert percentile(to_ack, 50) < 1.0
