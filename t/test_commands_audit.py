"""Who sent what, and for how long it is kept (DESIGN.md "Fleet jobs"):
issued_by on commands and jobs (the caller's sub, which the module
passes to wirehubd on the link, never the token), the workspace-wide
GET /api/commands with its filters and pages, and `commands
retention=` deleting ended commands and jobs in short steps.  Real
nginx and wirehubd; the clients stay offline, so pending commands stay
pending and only what ends is pruned."""

import json
import os
import shutil
import subprocess
import time

import pytest

import chan
import wh
from cmd_helpers import (CmdDaemon, commands_api, module_nginx, post_many,
                         wait_for)

WS = "ws-audit"
RETENTION_S = 2
SERVER = """
location /api/ { wirehub_api; }
"""


def token(sub, role="service"):
    return wh.mint("HS256", wh.claims(sub=sub, workspace=WS, role=role,
                                      ttl=3600))


@pytest.fixture(scope="module")
def daemon(keys):
    d = CmdDaemon("audit", commands="ttl=10m ack_timeout=2s max_attempts=3 "
                                    "retention=%ds" % RETENTION_S)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def nginx(daemon):
    yield from module_nginx("audit-0", daemon, wh.jwt_directives(), SERVER)


@pytest.fixture(scope="module")
def ops(nginx):
    a = commands_api(nginx.port, token("ops-1"))
    for cid in ("dev-1", "dev-2", "dev-3"):
        st, doc = a.call("POST", "/clients",
                         {"id": cid, "name": cid, "client_type": "gateway"})
        assert st == 201, doc
    yield a
    a.close()


@pytest.fixture(scope="module")
def admin(nginx):
    a = commands_api(nginx.port, token("root-7", role="admin"))
    yield a
    a.close()


def send(api, client, command, **extra):
    body = {"command": command, "payload": {}}
    body.update(extra)
    st, doc = api.call("POST", "/clients/%s/commands" % client, body)
    assert st == 202, doc
    return doc


def listing(api, query=""):
    st, doc = api.call("GET", "/commands" + query)
    assert st == 200, doc
    return doc


def test_issued_by_on_commands_and_jobs(ops, admin):
    a = send(ops, "dev-1", "reboot")
    assert a["issued_by"] == {"sub": "ops-1", "role": "service"}
    b = send(admin, "dev-2", "reboot")
    assert b["issued_by"] == {"sub": "root-7", "role": "admin"}

    st, doc = ops.call("GET", "/commands/" + a["command_id"])
    assert st == 200
    assert doc["issued_by"] == {"sub": "ops-1", "role": "service"}
    # the token is never recorded: no member carries it
    assert ops.token not in str(doc)

    st, job = admin.call("POST", "/jobs", {
        "command": "firmware_update", "payload": {"v": 2},
        "target": {"clients": ["dev-1", "dev-3"]}})
    assert st == 202, job
    assert job["issued_by"] == {"sub": "root-7", "role": "admin"}
    st, again = ops.call("GET", "/jobs/" + job["job_id"])
    assert again["issued_by"] == {"sub": "root-7", "role": "admin"}

    # its executions carry the job's issuer
    def released():
        st, ex = ops.call("GET", "/jobs/%s/executions" % job["job_id"])
        ids = [i.get("command_id") for i in ex["items"]]
        return ids if all(ids) else None
    for cid in wait_for(released, what="executions released"):
        st, cmd = ops.call("GET", "/commands/" + cid)
        assert st == 200
        assert cmd["issued_by"] == {"sub": "root-7", "role": "admin"}
        assert cmd["job_id"] == job["job_id"]
    st, _ = ops.call("POST", "/jobs/%s/cancel" % job["job_id"])
    assert st == 200


def test_workspace_listing_filters_and_pages(nginx, ops, admin):
    t0 = time.time()
    mine = [send(ops, "dev-%d" % (1 + i % 3), "probe")
            ["command_id"] for i in range(7)]
    theirs = [send(admin, "dev-3", "probe")["command_id"] for _ in range(3)]

    # newest first, both issuers
    doc = listing(ops, "?limit=10")
    assert [i["command_id"] for i in doc["items"]] == \
        list(reversed(mine + theirs))
    assert doc["next"] is not None

    # by issuer, paged 3 at a time, no item twice, none missed
    got, cursor = [], None
    while True:
        q = "?issued_by=ops-1&limit=3" + ("&cursor=" + cursor
                                           if cursor else "")
        doc = listing(ops, q)
        assert len(doc["items"]) <= 3
        got += [i["command_id"] for i in doc["items"]]
        assert all(i["issued_by"]["sub"] == "ops-1" for i in doc["items"])
        cursor = doc["next"]
        if cursor is None:
            break
    assert got[:7] == list(reversed(mine))
    assert not set(theirs) & set(got)

    # since: only what was created from then on
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 1))
    while time.time() < t0 + 1.2:
        time.sleep(0.05)
    late = send(admin, "dev-2", "late")["command_id"]
    doc = listing(ops, "?since=" + since)
    assert [i["command_id"] for i in doc["items"]] == [late]
    assert doc["next"] is None

    # status: a cancelled one (pruned later by the retention)
    st, _ = ops.call("DELETE", "/commands/" + theirs[0])
    assert st == 200
    doc = listing(ops, "?status=cancelled&issued_by=root-7")
    assert theirs[0] in [i["command_id"] for i in doc["items"]]
    assert all(i["status"] == "cancelled" for i in doc["items"])

    for bad in ("?status=nope", "?since=yesterday", "?limit=0",
                "?cursor=x"):
        st, doc = ops.call("GET", "/commands" + bad)
        assert (st, doc["error"]["code"]) == (400, "bad_request"), bad
    st, doc = ops.call("POST", "/commands", {})
    assert st == 405


def last_answers(results):
    """post_many's answers by key: a retried POST is listed once per
    try, its last answer counts."""
    return {key: (st, body) for key, st, body, _ in results}


def stats_turn(api):
    st, doc = api.call("GET", "/stats")
    assert st == 200
    return doc["loop"]["longest_turn_ms"]


def test_retention_prunes_in_short_turns(nginx, ops):
    # 5,000 commands that expire after a second, 1,000 per client
    n = 5000
    jobs = [(i, "/api/clients/dev-%d/commands" % (1 + i % 3),
             {"command": "short", "payload": {"i": i}, "ttl": 1,
              "idempotency_key": "k%d" % i})
            for i in range(n)]
    final = last_answers(post_many(nginx.port, token("bulk-1"), jobs,
                                   retry=True))
    assert sorted(st for st, _ in final.values()) == [202] * n
    ids = [json.loads(final[i][1])["command_id"] for i in range(n)]
    keep = send(ops, "dev-1", "stays")["command_id"]   # pending: kept

    # a job of 300 executions, released and cancelled: it goes in two
    # steps (250 executions a turn) with the commands of its executions
    big = ["big-%03d" % i for i in range(300)]
    made = last_answers(post_many(nginx.port, token("bulk-1"), [
        (c, "/api/clients", {"id": c, "name": c, "client_type": "bulk"})
        for c in big], retry=True))
    assert sorted(st for st, _ in made.values()) == [201] * len(big)
    st, job = ops.call("POST", "/jobs", {
        "command": "fw", "payload": {}, "target": {"client_type": "bulk"}})
    assert (st, job["targets"]) == (202, 300), job
    wait_for(lambda: ops.call("GET", "/jobs/" + job["job_id"])[1]
             ["released"] == 300, what="the job released")
    st, _ = ops.call("POST", "/jobs/%s/cancel" % job["job_id"])
    assert st == 200
    job_cmds = ["%s.%d.1" % (job["job_id"], i) for i in (0, 249, 250, 299)]
    assert all(ops.call("GET", "/commands/" + c)[0] == 200
               for c in job_cmds)

    # every one expired (the last made expires last); then, RETENTION_S
    # later, all of them go
    def expired():
        st, doc = ops.call("GET", "/commands/" + ids[-1])
        return st == 404 or doc["status"] == "expired"
    wait_for(expired, timeout=10, what="commands expired")
    stats_turn(ops)                     # the longest turn starts over
    t0 = time.monotonic()
    turns = []

    def gone():
        turns.append(stats_turn(ops))
        doc = listing(ops, "?issued_by=bulk-1&limit=1")
        return not doc["items"] and doc["next"] is None
    wait_for(gone, timeout=30, interval=0.2, what="commands pruned")
    took = time.monotonic() - t0

    for cid in ids[:50] + ids[-50:]:
        st, _ = ops.call("GET", "/commands/" + cid)
        assert st == 404, cid
    st, doc = ops.call("GET", "/commands/" + keep)
    assert (st, doc["status"]) == (200, "pending")
    # an idempotency key of a pruned command may be used again
    fresh = send(ops, "dev-2", "short", idempotency_key="k1")
    assert fresh["command_id"] not in ids

    wait_for(lambda: ops.call("GET", "/jobs/" + job["job_id"])[0] == 404,
             timeout=10, what="job pruned")
    assert all(ops.call("GET", "/commands/" + c)[0] == 404
               for c in job_cmds)
    longest = max(turns)
    chan.record_metric("retention_prune_seconds", round(took, 2))
    chan.record_metric("retention_longest_turn_ms", longest)
    print("pruned %d commands in %.2f s after the retention; longest loop "
          "turn %.1f ms" % (n, took, longest))
    assert longest < 100, turns



def rebuild_without(state, names):
    """state/ again from mdb_dump and mdb_load (Debian's lmdb-utils), all
    of its databases but names: the store as an older wirehubd left it."""
    old = state + ".old"
    os.rename(state, old)
    os.mkdir(state, 0o700)
    stat = subprocess.run(["mdb_stat", "-a", old], check=True,
                          capture_output=True, text=True).stdout
    dbs = [line.split("Status of ", 1)[1].strip()
           for line in stat.splitlines() if line.startswith("Status of ")]
    for db in dbs:
        if db == "Main DB" or db in names:
            continue
        dump = subprocess.run(["mdb_dump", "-s", db, old], check=True,
                              capture_output=True).stdout
        subprocess.run(["mdb_load", "-s", db, state], input=dump,
                       check=True)
    shutil.rmtree(old)
    return dbs


@pytest.mark.lmdb_only("rebuilds the state/ environment with mdb_dump")
def test_older_store_is_indexed_at_start(nginx, daemon, ops):
    """A store made before GET /commands and the retention existed gets
    its indexes at the first start: the listing is the same, and what
    ended is pruned again."""
    send(ops, "dev-1", "before")
    doomed = send(ops, "dev-2", "ends")["command_id"]
    st, _ = ops.call("DELETE", "/commands/" + doomed)
    assert st == 200
    before = [i["command_id"] for i in listing(ops, "?limit=1000")["items"]]

    assert daemon.terminate() == 0
    dbs = rebuild_without(os.path.join(daemon.prefix, "data", "state"),
                          ("cmd_ws", "cmd_ended"))
    assert "cmd_ws" in dbs and "commands" in dbs
    daemon.start()
    nginx.wait_link_up()
    assert "stored commands indexed" in daemon.read_log()

    # every worker's link back (one may still be reconnecting)
    doc = wait_for(lambda: (lambda r: r[1] if r[0] == 200 else None)
                   (ops.call("GET", "/commands?limit=1000")),
                   what="the links back")
    after = [i["command_id"] for i in doc["items"]]
    assert after == before or after == [c for c in before if c != doomed]
    wait_for(lambda: ops.call("GET", "/commands/" + doomed)[0] == 404,
             timeout=10, what="the cancelled command pruned")
