"""The Python agent library (clients/python/wirehub_agent) against the
real stack: nginx with the module, wirehubd (commands ack_timeout=1s),
agents as processes (t/agent_proc.py) so that one can be killed with
SIGKILL, the HTTP API with service tokens.  Also the operator's kick
(POST /api/clients/{id}/disconnect: 4409 with retry_after) it honours,
and that `pip install ./clients/python` works offline."""

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

import conftest
import wh
from cmd_helpers import (CmdDaemon, client_token, commands_api, percentile,
                         service_token, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "agent_proc.py")
PACKAGE = os.path.join(wh.ROOT, "clients", "python")

sys.path.insert(0, PACKAGE)
from wirehub_agent import Backoff, Journal, retry_after_of  # noqa: E402

SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
"""

FLEET = 200             # agents reconnecting after an nginx restart
FLEET_PROCS = 2
FLEET_BASE = 0.5        # their backoff: full jitter, 0.5 s doubling to 4 s
FLEET_CAP = 4.0


def start_nginx(daemon, tag):
    ngx = wh.Nginx(tag, http=wh.jwt_directives(leeway="1s", issuer=None,
                                               audience=None),
                   server=SERVER, daemon_socket=daemon.socket)
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
    d = CmdDaemon("agent", commands="ttl=10m ack_timeout=1s "
                                    "max_attempts=5").start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def nginx(daemon):
    conftest.require_module()
    ngx = start_nginx(daemon, "agent-0")
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
def procs():
    """Agent processes a test starts, killed at its end."""
    started = []
    yield started
    for p in started:
        p.kill()


# ------------------------------------------------------------- agents


class AgentProc:
    """t/agent_proc.py as a process; its events (JSON lines on stdout)
    are collected by a thread as they come."""

    def __init__(self, mode, url, token_file, *extra):
        self.events = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, AGENT, mode, url, token_file] + list(extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def named(self, name):
        with self.cond:
            return [e for e in self.events if e["ev"] == name]

    def wait(self, name, count=1, timeout=10.0, **match):
        """The first count events of that name (whose fields equal
        match), once there are that many."""
        def found(events):
            got = [e for e in events if e["ev"] == name
                   and all(e.get(k) == v for k, v in match.items())]
            return got[:count] if len(got) >= count else None
        return self.wait_until(found, timeout, "%d %r %r events" % (
            count, name, match))

    def wait_until(self, predicate, timeout=10.0, what="a condition"):
        """predicate(events) once it is true (it returns what this
        returns)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(self.events)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0 or not self.reader.is_alive():
                    raise AssertionError("agent: not %s in %.0f s: %r" % (
                        what, timeout, self.events[-8:]))
                self.cond.wait(min(left, 0.2))

    def exit_status(self, timeout=10.0):
        status = self.proc.wait(timeout)
        self.reader.join(5)
        return status

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(5)


class Desk:
    """One client of a test: its token file, state_dir and runs file."""

    def __init__(self, tmp_path, nginx, ws, client_id, ttl=3600):
        self.url = "ws://127.0.0.1:%d/ws/" % nginx.port
        self.ws = ws
        self.client_id = client_id
        self.dir = tmp_path / client_id
        self.dir.mkdir()
        self.token_file = str(self.dir / "token")
        self.state_dir = str(self.dir / "state")
        self.runs_file = str(self.dir / "runs")
        self.set_token(ttl)

    def set_token(self, ttl):
        with open(self.token_file, "w") as f:
            f.write(client_token(self.ws, self.client_id, ttl=ttl))

    def start(self, procs, *extra):
        p = AgentProc("one", self.url, self.token_file, "--state-dir",
                      self.state_dir, "--runs", self.runs_file, *extra)
        procs.append(p)
        return p

    def runs(self):
        if not os.path.exists(self.runs_file):
            return []
        with open(self.runs_file) as f:
            return [json.loads(line) for line in f]


def register(api, client_id):
    status, doc = api.call("POST", "/clients", {
        "id": client_id, "name": "Desk 4", "client_type": "desktop"})
    assert status == 201, doc


def queue(api, client_id, command, payload, priority=5):
    status, doc = api.call("POST", "/clients/%s/commands" % client_id, {
        "command": command, "payload": payload, "priority": priority})
    assert status == 202, doc
    return doc


def command(api, command_id):
    status, doc = api.call("GET", "/commands/" + command_id)
    assert status == 200, doc
    return doc


def iso_seconds(text):
    """Seconds since the epoch of the API's "2026-12-05T10:00:00.000Z"."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ") \
        .replace(tzinfo=datetime.timezone.utc).timestamp()


def wait_status(api, command_id, status, timeout=15.0):
    return wait_for(lambda: (lambda d: d if d["status"] == status else None)
                    (command(api, command_id)), timeout=timeout,
                    interval=0.1, what="%s %s" % (command_id, status))


# ------------------------------------------------------------- commands


def test_overnight_queue_drains_in_priority_order(nginx, api, ws, procs,
                                                  tmp_path):
    """Commands queued while the agent is off run on connect, highest
    priority first, FIFO within a priority, and all end completed."""
    register(api, "desk-1")
    priorities = [1, 5, 9, 5, 0, 9, 3, 1, 7, 5, 9, 0]
    cmds = [queue(api, "desk-1", "work", {"n": n}, priority=p)
            for n, p in enumerate(priorities)]
    assert {c["status"] for c in cmds} == {"pending"}

    desk = Desk(tmp_path, nginx, ws, "desk-1")
    agent = desk.start(procs)
    agent.wait("acked", count=len(cmds), timeout=20)

    expected = sorted(range(len(priorities)),
                      key=lambda n: (-priorities[n], n))
    assert [r["payload"]["n"] for r in desk.runs()] == expected
    for n, c in enumerate(cmds):
        doc = command(api, c["command_id"])
        assert doc["status"] == "completed", doc
        assert doc["result"] == {"echo": {"n": n}}, doc
    status, doc = api.call("GET", "/clients/desk-1")
    assert status == 200 and doc["online"] is True

    # a handler's exception fails the command with its text
    c = queue(api, "desk-1", "fail", {"message": "no such port"})
    doc = wait_status(api, c["command_id"], "failed")
    assert doc["error"] == "no such port", doc
    c = queue(api, "desk-1", "reboot", {})
    doc = wait_status(api, c["command_id"], "failed")
    assert doc["error"] == "no handler for command 'reboot'", doc


def test_kill9_mid_command_is_reported_interrupted(nginx, api, ws, procs,
                                                   tmp_path):
    """An agent killed while a handler runs does not run the command
    again after a restart: it reports it failed, error interrupted."""
    register(api, "desk-2")
    desk = Desk(tmp_path, nginx, ws, "desk-2")
    agent = desk.start(procs)
    agent.wait("connected")
    cid = queue(api, "desk-2", "block", {"step": 1})["command_id"]
    wait_for(lambda: desk.runs(), what="the handler to start")
    agent.proc.send_signal(signal.SIGKILL)
    assert agent.exit_status() == -signal.SIGKILL
    assert command(api, cid)["status"] == "sent"

    again = desk.start(procs)
    again.wait("interrupted", command_id=cid)
    doc = wait_status(api, cid, "failed")
    assert doc["error"] == "interrupted", doc
    assert doc["attempt"] >= 2, doc
    assert desk.runs() == [{"command": "block", "payload": {"step": 1}}]
    assert again.named("command") == []

    # the agent goes on with the next command
    cid = queue(api, "desk-2", "work", {"step": 2})["command_id"]
    assert wait_status(api, cid, "completed")["result"] == \
        {"echo": {"step": 2}}
    assert len(desk.runs()) == 2


def test_redelivered_command_with_journaled_result_is_not_rerun(
        nginx, api, ws, procs, tmp_path):
    """The agent dies after its result is in the journal but before the
    server has it; the redelivered command is answered from the journal,
    and the handler runs once in all."""
    register(api, "desk-3")
    desk = Desk(tmp_path, nginx, ws, "desk-3")
    agent = desk.start(procs, "--die-after-journal")
    agent.wait("connected")
    cid = queue(api, "desk-3", "work", {"v": 42})["command_id"]
    assert agent.exit_status() == -signal.SIGKILL
    assert agent.named("finished")[0]["command_id"] == cid
    assert agent.named("reported") == []
    doc = command(api, cid)
    assert doc["status"] == "sent", doc

    # past its ack window (ack_timeout=1s from "sent") the server sends
    # it again as soon as the client connects: before the journaled
    # result, which the agent also sends at start, can end it
    sent = [h for h in doc["history"] if h["status"] == "sent"][-1]
    overdue = iso_seconds(sent["at"]) + 1.0
    wait_for(lambda: time.time() > overdue, what="the ack window")
    again = desk.start(procs)
    replayed = again.wait("replayed", command_id=cid)[0]
    assert replayed["status"] == "completed" and replayed["attempt"] >= 2
    doc = wait_status(api, cid, "completed")
    assert doc["result"] == {"echo": {"v": 42}}, doc
    assert desk.runs() == [{"command": "work", "payload": {"v": 42}}]
    assert again.named("command") == []


# --------------------------------------------------------- close codes


def test_kick_4409_waits_retry_after(nginx, api, ws, procs, tmp_path):
    register(api, "desk-4")
    desk = Desk(tmp_path, nginx, ws, "desk-4")
    agent = desk.start(procs)
    agent.wait("connected")

    status, doc = api.call("POST", "/clients/desk-4/disconnect",
                           {"retry_after": 2})
    assert status == 200, doc
    assert doc == {"id": "desk-4", "disconnected": 1, "retry_after": 2}
    closed = agent.wait("closed")[0]
    assert (closed["code"], closed["reason"]) == (4409, "retry_after=2")
    back = agent.wait("connected", count=2, timeout=10)[1]
    delay = back["t"] - closed["t"]
    print("4409 retry_after=2: reconnected after %.3f s" % delay)
    # 2 s, plus at most the backoff base (0.2 s) of jitter, plus the
    # handshake
    assert 2.0 <= delay < 3.5, delay


def test_disconnect_refuses_bad_retry_after(nginx, api, ws):
    register(api, "desk-5")
    for raw in (b'{"retry_after":-1}', b'{"retry_after":86401}',
                b'{"retry_after":"5"}', b'{"retry_after":1.5}',
                b'{"retry_after":null}', b'[30]', b'not json',
                b'{"retry_after":1,"retry_after":2}'):
        status, doc = api.call("POST", "/clients/desk-5/disconnect",
                               raw=raw)
        assert status == 400 and doc["error"]["code"] == "bad_request", raw
    for body, after in (({}, 30), ({"retry_after": 0}, 0),
                        ({"retry_after": 86400}, 86400)):
        client = wh.RawWebSocket.open(nginx.port,
                                      client_token(ws, "desk-5"))
        status, doc = api.call("POST", "/clients/desk-5/disconnect", body)
        assert status == 200 and doc["retry_after"] == after, doc
        assert client.wait_closed() == (4409, "retry_after=%d" % after)
        client.close_socket()


def test_revoked_4403_stops_the_agent(nginx, api, ws, procs, tmp_path):
    register(api, "desk-6")
    desk = Desk(tmp_path, nginx, ws, "desk-6")
    agent = desk.start(procs)
    agent.wait("connected")
    status, doc = api.call("DELETE", "/clients/desk-6")
    assert status == 200, doc
    assert agent.exit_status() == 3
    closed = agent.named("closed")
    assert [(c["code"], c["reason"]) for c in closed] == \
        [(4403, "client deleted")]
    assert agent.named("exit")[0]["error"] == "Revoked"
    assert agent.named("reconnecting") == []


def test_expired_4401_asks_token_provider(nginx, api, ws, procs,
                                          tmp_path):
    desk = Desk(tmp_path, nginx, ws, "desk-7", ttl=2)
    agent = desk.start(procs)
    agent.wait("connected")
    desk.set_token(3600)      # what token_provider will read
    closed = agent.wait("closed", timeout=10)[0]
    assert closed["code"] == 4401, closed
    agent.wait("token_renewed")
    agent.wait("connected", count=2)
    # registered implicitly, with what its register message said
    status, doc = api.call("GET", "/clients/desk-7")
    assert status == 200 and doc["online"] is True, doc
    assert (doc["client_type"], doc["name"]) == ("desktop", "Desk 4"), doc


def test_refused_token_without_provider_stops(nginx, ws, procs, tmp_path):
    desk = Desk(tmp_path, nginx, ws, "desk-9", ttl=-60)
    agent = desk.start(procs, "--no-token-provider")
    assert agent.exit_status() == 3
    assert agent.named("refused")[0]["status"] == 401
    exit = agent.named("exit")[0]
    assert (exit["error"], exit["code"]) == ("AuthenticationFailed", 401)
    assert agent.named("connected") == []


# ------------------------------------------------------------- a fleet


def reconnected(events, since, count):
    """{agent: the time of its first connect after since} once count
    agents have one."""
    firsts = {}
    for e in events:
        if e["ev"] == "connected" and e["t"] > since:
            firsts.setdefault(e["i"], e["t"])
    return firsts if len(firsts) >= count else None


def test_fleet_spreads_reconnects_after_nginx_restart(daemon, ws,
                                                      tmp_path):
    """200 agents (2 processes) lose nginx at once; when it is back they
    come back over their backoff window, not in one burst."""
    ngx = start_nginx(daemon, "agent-fleet")
    fleet = []
    try:
        url = "ws://127.0.0.1:%d/ws/" % ngx.port
        per = FLEET // FLEET_PROCS
        for k in range(FLEET_PROCS):
            path = str(tmp_path / ("tokens-%d" % k))
            with open(path, "w") as f:
                json.dump([client_token(ws, "fleet-%d-%d" % (k, i))
                           for i in range(per)], f)
            fleet.append(AgentProc("fleet", url, path, "--backoff-base",
                                   str(FLEET_BASE), "--backoff-max",
                                   str(FLEET_CAP)))
        for p in fleet:
            p.wait("connected", count=per, timeout=60)

        ngx.stop()
        t_start = time.monotonic()
        ngx.start()
        times = []
        for p in fleet:
            firsts = p.wait_until(lambda events: reconnected(
                events, t_start, per), 60, "every agent back")
            times += [t - t_start for t in firsts.values()]

        times.sort()
        spread = times[-1] - times[0]
        burst = max(sum(1 for t in times if s <= t < s + 0.1)
                    for s in times)
        print("fleet of %d reconnects after the restart: min %.3f s, "
              "median %.3f s, max %.3f s, spread %.3f s, at most %d in "
              "any 100 ms" % (len(times), times[0], percentile(times, 50),
                              times[-1], spread, burst))
        assert spread >= 1.0, times
        assert burst <= FLEET // 3, times
    finally:
        for p in fleet:
            p.proc.send_signal(signal.SIGTERM)
        for p in fleet:
            try:
                p.exit_status(15)
            finally:
                p.kill()
        stop_nginx(ngx)


# -------------------------------------------------------------- install


@pytest.mark.nosan
def test_pip_installs_offline(tmp_path):
    """`pip install ./clients/python` into a venv, without network (the
    system's setuptools and websockets through --system-site-packages)."""
    src = tmp_path / "src"
    # a copy: pip builds in the tree and would leave build/ behind
    shutil.copytree(PACKAGE, str(src), ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index",
                          "--no-build-isolation", str(src)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert pip.returncode == 0, pip.stdout.decode()
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import wirehub_agent as w; "
                          "print(w.__version__, w.__file__)"],
                         cwd=str(tmp_path), check=True,
                         stdout=subprocess.PIPE).stdout.decode().split()
    assert out[0] == "0.1.0"
    assert out[1].startswith(str(venv)), out


# ----------------------------------------------------- the library alone


@pytest.mark.nosan
def test_backoff_full_jitter():
    b = Backoff(0.5, 4.0)
    windows = []
    for _ in range(6):
        windows.append(b.window())
        assert 0 <= b.next() <= windows[-1]
    assert windows == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.window() == 0.5
    b.attempt = 10 ** 6             # no overflow however long it fails
    assert b.window() == 4.0
    # full jitter: uniform over the whole window, not clustered at its end
    b = Backoff(1.0, 1.0)
    samples = sorted(b.next() for _ in range(2000))
    assert samples[0] < 0.05 and samples[-1] > 0.95
    assert 0.45 < percentile(samples, 50) < 0.55


@pytest.mark.nosan
def test_retry_after_of():
    assert retry_after_of("retry_after=30") == 30
    assert retry_after_of('{"retry_after":12}') == 12
    assert retry_after_of("disconnected; retry_after = 7") == 7
    assert retry_after_of("", 30) == 30
    assert retry_after_of(None) is None


@pytest.mark.nosan
def test_journal_survives_reopen(tmp_path):
    state = str(tmp_path / "state")
    j = Journal(state)
    assert j.durable and j.get("c-1") is None
    j.start("c-1", "reboot")
    assert Journal(state).get("c-1")["state"] == "started"
    j.finish("c-1", "reboot", {"status": "completed", "result": {"a": 1}})
    j.start("c-2", "reboot")
    again = Journal(state)
    rec = again.get("c-1")
    assert (rec["state"], rec["status"], rec["result"]) == \
        ("done", "completed", {"a": 1})
    assert [r["command_id"] for r in again.unacked()] == ["c-1"]
    again.acked("c-1")
    assert Journal(state).unacked() == []
    assert sorted(os.listdir(os.path.join(state, "journal"))) == \
        ["c-1.acked", "c-1.json", "c-2.json"]


@pytest.mark.nosan
def test_journal_odd_ids_damage_and_pruning(tmp_path):
    state = str(tmp_path / "state")
    j = Journal(state)
    odd = ["../x", "a/b", ".hidden", "x" * 65, "é"]
    for cid in odd:
        j.finish(cid, "c", {"status": "failed", "error": "e"})
    names = os.listdir(os.path.join(state, "journal"))
    assert len(names) == len(odd)
    assert all(n.startswith("=") for n in names)
    assert [j.get(cid)["command_id"] for cid in odd] == odd

    # a damaged record counts as started: never run twice
    path = os.path.join(state, "journal", "c-9.json")
    for damage in ('{not json', '[]', '{"command_id":"c-9","state":"done"}',
                   '{"command_id":"c-9","state":"done","status":"x"}'):
        with open(path, "w") as f:
            f.write(damage)
        assert j.get("c-9") == {"command_id": "c-9", "state": "started"}
        assert "c-9" not in [r["command_id"] for r in j.unacked()]

    # a torn temporary file and records past `keep` go at open
    with open(path + ".tmp", "w") as f:
        f.write("{")
    old = time.time() - 40 * 86400
    for name in names:
        os.utime(os.path.join(state, "journal", name), (old, old))
    Journal(state)
    assert os.listdir(os.path.join(state, "journal")) == ["c-9.json"]


@pytest.mark.nosan
def test_journal_in_memory():
    j = Journal(None)
    assert not j.durable
    j.start("c-1", "x")
    j.finish("c-1", "x", {"status": "completed"})
    assert j.unacked()[0]["command_id"] == "c-1"
    j.acked("c-1")
    assert j.unacked() == []


def test_example_desk_agent(nginx, api, ws, tmp_path):
    """clients/python/examples/desk_agent.py, as docs/agent.md shows it."""
    token_file = tmp_path / "token"
    token_file.write_text(client_token(ws, "desk-8"))
    env = dict(os.environ, WIREHUB_URL="ws://127.0.0.1:%d/ws/" % nginx.port,
               WIREHUB_TOKEN_FILE=str(token_file),
               STATE_DIR=str(tmp_path / "state"), PYTHONPATH=PACKAGE)
    proc = subprocess.Popen([sys.executable, os.path.join(
        PACKAGE, "examples", "desk_agent.py")], env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: api.call("GET", "/clients/desk-8")[0] == 200,
                 what="the example to connect")
        hello = queue(api, "desk-8", "hello", {})["command_id"]
        usage = queue(api, "desk-8", "disk_usage",
                      {"path": "/nonexistent/x"})["command_id"]
        note = queue(api, "desk-8", "notify", {"text": "hi"})["command_id"]
        doc = wait_status(api, hello, "completed")
        assert set(doc["result"]) == {"host", "python"}, doc
        doc = wait_status(api, usage, "failed")
        assert "No such file or directory" in doc["error"], doc
        assert wait_status(api, note, "completed")["result"] == \
            {"shown": True}
    finally:
        proc.kill()
        proc.wait(10)
