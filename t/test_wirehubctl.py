"""tools/wirehubctl end to end: real nginx (2 workers) with the module and
a real wirehubd; tokens minted by the CLI are used against nginx, agents
are wh.RawWebSocket connections, the API answers are compared with what
the CLI prints.  Every test works in a workspace of its own."""

import json
import os
import select
import subprocess

import jwt
import pytest

import chan
import wh

CTL = os.path.join(wh.ROOT, "tools", "wirehubctl")
PYTHON = "/usr/bin/python3"
KEY = wh.key_path("hs256.secret")


@pytest.fixture(scope="module")
def daemon(keys):
    if not os.path.exists(wh.WIREHUBD):
        pytest.fail("%s is missing: run `make daemon`" % wh.WIREHUBD,
                    pytrace=False)
    d = chan.Daemon("wirehubctl").start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def nginx(nginx_factory, daemon):
    return chan.start_nginx(nginx_factory, daemon)


def env_for(ngx, token=None):
    env = dict(os.environ)
    env.pop("WIREHUB_TOKEN", None)
    env["WIREHUB_URL"] = "http://127.0.0.1:%d" % ngx.port
    if token is not None:
        env["WIREHUB_TOKEN"] = token
    return env


def ctl(ngx, *args, token=None, timeout=30):
    """(exit status, stdout, stderr) of one wirehubctl run."""
    res = subprocess.run([PYTHON, CTL] + list(args), env=env_for(ngx, token),
                         stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=timeout)
    return res.returncode, res.stdout, res.stderr


def ctl_bg(ngx, *args, token=None):
    return subprocess.Popen([PYTHON, CTL] + list(args),
                            env=env_for(ngx, token),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def read_line(pipe, timeout=5.0):
    """One line from a child's pipe, or AssertionError after timeout."""
    ready, _, _ = select.select([pipe], [], [], timeout)
    assert ready, "no line within %.1f s" % timeout
    return pipe.readline()


def mint(ngx, workspace, sub="svc", role="service", *extra):
    rc, out, err = ctl(ngx, "token", "--key-file", KEY, "--sub", sub,
                       "--workspace", workspace, "--role", role,
                       "--issuer", wh.ISSUER, "--audience", wh.AUDIENCE,
                       *extra)
    assert rc == 0, err
    return out.strip()


def api_for(ngx, token):
    return wh.Api(ngx.port, token)


# ---------------------------------------------------------------- tokens


def test_token_minted_by_the_cli_is_accepted_by_nginx(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws, "svc-1", "service", "--ttl", "10m",
                 "--channels", "a/*,b", "--claim", "tier=3",
                 "--claim", "site=north")
    claims = jwt.decode(token, wh.hs256_secret(),
                        algorithms=["HS256"], audience=wh.AUDIENCE,
                        issuer=wh.ISSUER)
    assert claims["sub"] == "svc-1" and claims["workspace"] == ws
    assert claims["role"] == "service"
    assert claims["channels"] == ["a/*", "b"]
    assert claims["tier"] == 3 and claims["site"] == "north"
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token) == {"alg": "HS256",
                                                "typ": "JWT"}
    resp = api_for(nginx, token).request("GET", "/api/stats")
    assert resp.status == 200, resp.body
    assert resp.json()["workspace"] == ws


def test_check_token_good(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws, "pc-1", "client")
    rc, out, err = ctl(nginx, "check-token", "--key-file", KEY,
                       "--issuer", wh.ISSUER, "--audience", wh.AUDIENCE,
                       token)
    assert rc == 0, err
    assert out.startswith("valid: HS256 signature verified with ")
    assert "workspace  %s" % ws in out
    assert token.split(".")[2] not in out + err

    rc, out, err = ctl(nginx, "--json", "check-token", "--key-file", KEY,
                       token)
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["valid"] is True
    assert answer["header"] == {"alg": "HS256", "typ": "JWT"}
    assert answer["claims"] == jwt.decode(token, options={
        "verify_signature": False})
    assert token.split(".")[2] not in out


def test_check_token_expired_bad_signature_and_refusals(nginx, tmp_path):
    ws = chan.unique("ctl")
    expired = wh.mint("HS256", wh.claims(workspace=ws, ttl=-120))
    rc, out, err = ctl(nginx, "check-token", "--key-file", KEY, expired)
    assert (rc, out) == (1, "")
    assert err.startswith("wirehubctl: token_expired: token expired at ")

    # within the leeway it passes, as in nginx
    recent = wh.mint("HS256", wh.claims(workspace=ws, ttl=-10))
    assert ctl(nginx, "check-token", "--key-file", KEY, recent)[0] == 0

    other = tmp_path / "other.secret"
    other.write_text("not-the-key\n")
    good = wh.mint("HS256", wh.claims(workspace=ws))
    rc, out, err = ctl(nginx, "check-token", "--key-file", str(other), good)
    assert (rc, out) == (1, "")
    assert err == ("wirehubctl: invalid_signature: the signature does not "
                   "verify with this key\n")
    assert good.split(".")[2] not in err

    rc, _, err = ctl(nginx, "check-token", "--key-file", KEY,
                     "--audience", "somebody-else", good)
    assert rc == 1 and "invalid_audience" in err

    none = wh.b64url('{"alg":"none"}') + "." + wh.b64url(
        json.dumps(wh.claims())) + "."
    rc, _, err = ctl(nginx, "check-token", "--key-file", KEY, none)
    assert rc == 1 and err.startswith("wirehubctl: invalid_algorithm")

    dup = wh.hs256_raw(b'{"alg":"HS256"}', b'{"sub":"a","sub":"b"}')
    rc, _, err = ctl(nginx, "check-token", "--key-file", KEY, dup)
    assert rc == 1 and "duplicate key" in err

    # RSA and ECDSA are not in the standard library: unsupported
    rs = wh.mint("RS256")
    rc, out, err = ctl(nginx, "check-token", "--key-file", KEY, rs)
    assert (rc, out) == (2, "") and "unsupported" in err


# ---------------------------------------------------------------- API


def test_clients_table_and_json(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws)
    api = api_for(nginx, token)
    for cid, name in (("pc-1", "Desk 1"), ("pc-22", "Front desk 22")):
        resp = api.request("POST", "/api/clients", {
            "id": cid, "name": name, "client_type": "desktop"})
        assert resp.status == 201, resp.body

    rc, out, err = ctl(nginx, "clients", token=token)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "NAME", "ONLINE", "CONNS",
                                "LAST", "SEEN"]
    # aligned: every column starts where its header does
    col = lines[0].index("NAME")
    assert [line[col:col + 13] for line in lines[1:]] == [
        "Desk 1       ", "Front desk 22"]
    assert [line.split()[0] for line in lines[1:]] == ["pc-1", "pc-22"]
    assert "no" in lines[1].split()

    rc, out, err = ctl(nginx, "--json", "clients", token=token)
    assert rc == 0, err
    assert out == api.request("GET", "/api/clients?limit=100").body.decode() \
        .rstrip("\n") + "\n"

    rc, out, _ = ctl(nginx, "clients", "--limit", "1", token=token)
    assert out.splitlines()[-1] == "(more: --cursor pc-1)"


def test_stats_json_is_the_api_answer(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws)
    api = api_for(nginx, token)
    rc, out, err = ctl(nginx, "--json", "stats", token=token)
    assert rc == 0, err
    mine = json.loads(out)
    theirs = api.request("GET", "/api/stats").json()
    # only the clock moves between the two calls in an idle workspace
    # (and the longest loop turn, measured since the previous call; on
    # the Redis engine the lease's age and what INFO said last)
    for s in (mine, theirs):
        s["daemon"].pop("uptime_s")
        s.pop("loop")
        for key in ("lease", "replicas", "replication_lag_bytes"):
            s["engine"].pop(key, None)
    assert mine == theirs

    rc, out, err = ctl(nginx, "stats", token=token)
    assert rc == 0, err
    assert "workspace            %s" % ws in out
    assert "QUOTA" in out and "NGINX WORKER" in out
    assert "history_bytes" in out


def test_send_follow_while_an_agent_completes(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws)
    agent_token = mint(nginx, ws, "dev-1", "client")
    agent = wh.RawWebSocket.open(nginx.port, agent_token)
    try:
        proc = ctl_bg(nginx, "send", "dev-1", "reboot", "--data",
                      '{"delay":5}', "--priority", "7", "--ttl", "1h",
                      "--follow", "--interval", "0.05", token=token)
        cmd = agent.recv_type("device_command")
        assert (cmd["command"], cmd["payload"], cmd["priority"]) == (
            "reboot", {"delay": 5}, 7)
        assert agent.result(cmd["command_id"], result={"ok": True})[
            "type"] == "command_result_accepted"
        out, err = proc.communicate(timeout=10)
    finally:
        agent.close()
    assert proc.returncode == 0, err
    api = api_for(nginx, token)
    final = api.request("GET", "/api/commands/" + cmd["command_id"]).json()
    lines = out.splitlines()
    assert "command_id  %s" % cmd["command_id"] in lines
    follow = [line for line in lines if line[:1].isdigit()]
    assert [line.split()[1] for line in follow] == [
        h["status"] for h in final["history"]]
    assert [h["status"] for h in final["history"]][-1] == "completed"
    assert lines[-1] == 'result: {"ok":true}'

    # --json: the POST's answer, then the command each time it changed
    agent = wh.RawWebSocket.open(nginx.port, agent_token)
    try:
        proc = ctl_bg(nginx, "--json", "send", "dev-1", "update",
                      "--follow", "--interval", "0.05", token=token)
        cmd = agent.recv_type("device_command")
        agent.result(cmd["command_id"], status="failed", error="disk full")
        out, err = proc.communicate(timeout=10)
    finally:
        agent.close()
    assert proc.returncode == 1
    assert err == "wirehubctl: failed: command %s failed: disk full\n" % (
        cmd["command_id"])
    answers = [json.loads(line) for line in out.splitlines()]
    assert answers[0]["command_id"] == cmd["command_id"]
    assert answers[-1] == api.request(
        "GET", "/api/commands/" + cmd["command_id"]).json()


def test_send_to_an_unknown_client(nginx):
    token = mint(nginx, chan.unique("ctl"))
    rc, out, err = ctl(nginx, "send", "nobody", "reboot", token=token)
    assert (rc, out) == (1, "")
    assert err.startswith("wirehubctl: not_found: 404 Not Found: ")


def test_tail_live_then_since_then_last(nginx):
    ws = chan.unique("ctl")
    token = mint(nginx, ws)
    api = api_for(nginx, token)
    channel = "sensors/" + chan.unique("t")

    proc = ctl_bg(nginx, "--json", "tail", channel, "--count", "3",
                  token=token)
    try:
        line = read_line(proc.stderr)
        assert line.startswith("subscribed to %s at id 0, epoch " % channel)
        for i in range(3):
            chan.publish_ok(api, channel, {"n": i})
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    history = api.history(channel, "since=0").json()["items"]
    got = [json.loads(x) for x in out.splitlines()]
    assert got == history
    epoch = history[0]["epoch"]

    # two more while nobody tails: --since the last seen replays them
    for i in range(3, 5):
        chan.publish_ok(api, channel, {"n": i})
    rc, out, err = ctl(nginx, "--json", "tail", channel, "--since", "3",
                       "--epoch", epoch, "--count", "2", token=token)
    assert rc == 0, err
    assert [json.loads(x)["data"] for x in out.splitlines()] == [
        {"n": 3}, {"n": 4}]
    assert err == "subscribed to %s at id 5, epoch %s\n" % (channel, epoch)

    # a wrong epoch: not recovered, said on stderr, live only
    proc = ctl_bg(nginx, "tail", channel, "--since", "1", "--epoch",
                  "zzzzzzzz", "--count", "1", token=token)
    try:
        assert "not recovered" in read_line(proc.stderr)
        chan.publish_ok(api, channel, {"n": 5})
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fields = out.split()
    assert fields[0] == "6" and fields[2] == "reading"
    assert fields[3] == '{"n":5}'

    # --last 2: the two newest from history, then live
    rc, out, err = ctl(nginx, "tail", channel, "--last", "2", "--count", "2",
                       token=token)
    assert rc == 0, err
    assert [line.split()[0] for line in out.splitlines()] == ["5", "6"]


def test_error_paths(nginx, tmp_path):
    ws = chan.unique("ctl")
    other = tmp_path / "other.secret"
    other.write_text("another-secret\n")
    rc, out, _ = ctl(nginx, "token", "--key-file", str(other), "--sub", "x",
                     "--workspace", ws, "--role", "service",
                     "--issuer", wh.ISSUER, "--audience", wh.AUDIENCE)
    bad = out.strip()
    for command in (["stats"], ["clients"], ["tail", "x"]):
        rc, out, err = ctl(nginx, *command, token=bad)
        assert (rc, out) == (1, ""), command
        assert err.startswith("wirehubctl: invalid_signature: 401 "
                              "Unauthorized: "), (command, err)
        assert bad.split(".")[2] not in err

    rc, _, err = ctl(nginx, "stats")
    assert rc == 1 and err.startswith("wirehubctl: missing_token: ")

    token = mint(nginx, ws)
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    assert ctl(nginx, "--token-file", str(tf), "stats")[0] == 0
    # the global options after the command name too
    assert ctl(nginx, "stats", "--token-file", str(tf), "--json")[0] == 0

    client = mint(nginx, ws, "pc-1", "client")
    rc, _, err = ctl(nginx, "stats", token=client)
    assert rc == 1 and err.startswith("wirehubctl: forbidden: 403 ")

    rc, _, err = ctl(nginx, "--url", "http://127.0.0.1:%d" % wh.free_port(),
                     "stats", token=token)
    assert rc == 1 and err.startswith("wirehubctl: unreachable: ")

    rc, _, err = ctl(nginx, "send", "pc-1", "x", "--data", "{nope",
                     token=token)
    assert rc == 1 and err.startswith("wirehubctl: bad_request: --data")

    rc, _, err = ctl(nginx, "tail", "x", "--since", "3", token=token)
    assert rc == 1 and "--since and --epoch go together" in err

    rc, _, err = ctl(nginx, "no-such-command")
    assert rc == 1 and "invalid choice" in err

    rc, out, err = ctl(nginx, "jobs", token=token)
    assert rc == 0 and out.startswith("JOB"), (rc, out, err)

    rc, out, err = ctl(nginx, "jobs", "j-nope", token=token)
    assert rc == 1 and err.startswith("wirehubctl: not_found: 404 "), err
