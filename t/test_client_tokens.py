"""Tokens minted by POST /api/clients (wirehub_jwt_sign_key): named as
this nginx verifies them (wirehub_client_claim, wirehub_workspace_claim,
wirehub_jwt_issuer, wirehub_jwt_audience), with iat and an exp
wirehub_jwt_sign_ttl after it; and `make run`'s configuration hands out a
working token out of the box."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import jwt
import pytest

import chan
import wh

TTL_HTTP = 7200          # wirehub_jwt_sign_ttl 2h, at http level
DEFAULT_TTL = 30 * 86400

HTTP = """
wirehub_client_claim cid;
wirehub_workspace_claim tenant;
wirehub_jwt_sign_key HS256 file=%s;
wirehub_jwt_sign_ttl 2h;
""" % wh.key_path("hs256.secret")

SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
location /api-noexp/ { wirehub_api; wirehub_jwt_sign_ttl off; }
"""


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("tokens")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    http = "wirehub_daemon unix:%s;\n%s\n%s" % (daemon.socket,
                                                 wh.jwt_directives(), HTTP)
    return nginx_factory(http=http, server=SERVER, daemon=False,
                         tag="tokens")


def service_token(workspace):
    """A service token named the way this nginx reads claims."""
    body = wh.claims(sub=None, workspace=None, ttl=3600, role="service",
                     cid="svc", tenant=workspace)
    return wh.mint("HS256", body)


def register(port, token, prefix="/api"):
    """POST /api/clients; (client id, minted token, seconds around it)."""
    api = wh.Api(port, token)
    cid = chan.unique("pc")
    before = int(time.time())
    status, doc = api.call("POST", prefix + "/clients",
                           {"id": cid, "name": "Desk", "client_type":
                            "desktop"})
    after = int(time.time())
    api.close()
    assert status == 201, doc
    return cid, doc["token"], before, after


def decode(token, secret, audience=None):
    """The verified claims (signature checked, exp not yet)."""
    return jwt.decode(token, secret, algorithms=["HS256"],
                      audience=audience,
                      options={"verify_aud": audience is not None})


def test_minted_token_follows_the_claim_directives(ngx):
    ws_name = chan.unique("tok")
    cid, token, before, after = register(ngx.port, service_token(ws_name))
    claims = decode(token, wh.hs256_secret(), wh.AUDIENCE)
    assert set(claims) == {"cid", "tenant", "iat", "exp", "iss", "aud",
                           "role"}, claims
    assert claims["cid"] == cid
    assert claims["tenant"] == ws_name
    assert claims["iss"] == wh.ISSUER
    assert claims["aud"] == wh.AUDIENCE
    assert claims["role"] == "client"
    assert before <= claims["iat"] <= after
    assert claims["exp"] == claims["iat"] + TTL_HTTP

    ws = wh.RawWebSocket.open(ngx.port, token)
    try:
        data = ws.status["data"]
        assert data["client_id"] == cid
        assert data["workspace"] == ws_name
    finally:
        ws.close()


def test_sign_ttl_off_in_a_location_gives_no_exp(ngx):
    ws_name = chan.unique("tok")
    cid, token, _, _ = register(ngx.port, service_token(ws_name),
                                prefix="/api-noexp")
    claims = decode(token, wh.hs256_secret(), wh.AUDIENCE)
    assert set(claims) == {"cid", "tenant", "iat", "iss", "aud", "role"}
    assert claims["cid"] == cid
    assert wh.handshake_status(ngx.port, token) == 101


@pytest.mark.parametrize("value", ["-5s", "soon", "1h 2h"])
def test_sign_ttl_refuses_bad_values(nginx_factory, value):
    http = "wirehub_daemon off;\nwirehub_jwt_sign_ttl %s;" % value
    ngx = wh.Nginx("tokens-bad", http=http, server="location /e "
                   "{ wirehub_echo; }")
    try:
        status, output = ngx.check_config()
    finally:
        ngx.cleanup()
    assert status != 0
    assert "wirehub_jwt_sign_ttl" in output, output


# ------------------------------------------------- `make run` out of the box


def free_unused_port():
    """A port no broker listens on: wirehubd keeps retrying it, quietly."""
    return wh.free_port()


@pytest.fixture(scope="module")
def run_prefix():
    """conf/nginx.conf and conf/wirehubd-run.conf rendered into a temp
    prefix by scripts/run.sh --render, then wirehubd and nginx started
    from them as run.sh starts them (on free ports, not 8080)."""
    prefix = tempfile.mkdtemp(prefix="wh-run-")
    # a root master runs its workers as nobody: they walk to the socket
    os.chmod(prefix, 0o755)
    port = wh.free_port()
    env = dict(os.environ, RUN_PREFIX=prefix,
               LISTEN="127.0.0.1:%d" % port,
               MQTT_PORT=str(free_unused_port()))
    subprocess.run([os.path.join(wh.ROOT, "scripts", "run.sh"),
                    "--render"], env=env, check=True, timeout=30)
    procs = []
    try:
        procs.append(start_wirehubd(prefix))
        procs.append(subprocess.Popen(
            [wh.NGINX, "-p", prefix, "-c", prefix + "/nginx.conf",
             "-e", prefix + "/error.log", "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        assert wh.wait_port(port, procs[-1]), wh.tail(prefix + "/error.log")
        wait_links_up(prefix, procs[-1])
        yield prefix, port
    finally:
        for proc, sig in zip(reversed(procs), (signal.SIGQUIT,
                                               signal.SIGTERM)):
            wh.stop_process(proc, sig, 15)
        shutil.rmtree(prefix, ignore_errors=True)


def start_wirehubd(prefix):
    sock = os.path.join(prefix, "wirehubd.sock")
    log = open(os.path.join(prefix, "wirehubd.log"), "ab")
    proc = subprocess.Popen([wh.WIREHUBD, "-c", prefix + "/wirehubd.conf"],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, wh.tail(prefix + "/wirehubd.log")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
            return proc
        except OSError:
            time.sleep(0.02)
    raise AssertionError("wirehubd did not listen: " +
                         wh.tail(prefix + "/wirehubd.log"))


def wait_links_up(prefix, nginx, timeout=10.0):
    """Until both workers logged their link to wirehubd up (before that,
    the worker that takes a call may rightly answer 503)."""
    log = os.path.join(prefix, "error.log")
    deadline = time.monotonic() + timeout
    while True:
        with open(log, "rb") as f:
            up = set(int(pid) for pid in wh.LINK_UP_RE.findall(
                f.read().decode("utf-8", "replace")))
        workers = set(wh.children_of(nginx.pid))
        if len(workers) == 2 and workers <= up:
            return
        assert time.monotonic() < deadline, wh.tail(log)
        time.sleep(0.05)


def test_make_run_registers_an_agent_that_connects(run_prefix):
    prefix, port = run_prefix
    with open(os.path.join(prefix, "jwt.secret"), "rb") as f:
        secret = f.read().strip()
    service = jwt.encode({"sub": "ops", "workspace": "demo",
                          "role": "service", "iat": int(time.time()),
                          "exp": int(time.time()) + 600}, secret,
                         algorithm="HS256")
    api = wh.Api(port, service)
    status, doc = api.call("POST", "/api/clients",
                           {"id": "desk-agent-1", "name": "Desk 1",
                            "client_type": "desktop"})
    api.close()
    assert status == 201, doc
    claims = decode(doc["token"], secret)
    assert set(claims) == {"sub", "workspace", "iat", "exp", "role"}
    assert claims["sub"] == "desk-agent-1"
    assert claims["workspace"] == "demo"
    assert claims["role"] == "client"
    assert claims["exp"] == claims["iat"] + DEFAULT_TTL

    ws = wh.RawWebSocket.open(port, doc["token"])
    try:
        assert ws.status["data"]["client_id"] == "desk-agent-1"
        assert ws.status["data"]["workspace"] == "demo"
    finally:
        ws.close()
