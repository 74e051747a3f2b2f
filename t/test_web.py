"""web/: the Node unit tests of wirehub.js, and the dashboard in a real
browser (Debian's chromium driven by playwright-core, t/web/browser.js)
against nginx + wirehubd started here.  The browser script asks for
server restarts on its stdout; this module carries them out.

t/web/deps.sh installs chromium and node_modules when they are missing;
`make deps` runs it, and so does this module before it needs them."""

import json
import os
import subprocess
import threading
import time
import uuid

import pytest

import chan
import wh

WEB_TESTS = os.path.join(wh.ROOT, "t", "web")
DASHBOARD = os.path.join(wh.ROOT, "web", "dashboard")
NODE = "node"
BROWSER_TIMEOUT = 180

SERVER = """
location /ws/ { wirehub_websocket; }
location /api/ { wirehub_api; }
location = /healthz { wirehub_api; }
location / {
    root %s;
    include /etc/nginx/mime.types;
}
""" % DASHBOARD

HTTP = wh.jwt_directives(leeway="5s") + """
wirehub_ping_interval 30s;
wirehub_idle_timeout 75s;
"""


@pytest.fixture(scope="module")
def web_deps():
    res = subprocess.run([os.path.join(WEB_TESTS, "deps.sh")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=900)
    assert res.returncode == 0, \
        "t/web/deps.sh failed:\n" + res.stdout.decode("utf-8", "replace")


@pytest.mark.nosan
def test_wirehub_js_unit(web_deps):
    res = subprocess.run([NODE, "--test", os.path.join(WEB_TESTS, "unit")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120)
    out = res.stdout.decode("utf-8", "replace")
    assert res.returncode == 0, out
    # the runner's own count: the suite really ran
    assert "# fail 0" in out and "# pass " in out, out
    assert int(out.split("# pass ", 1)[1].split()[0]) >= 15, out


def wait_link(ngx, token, timeout=10.0):
    """/healthz answers 200 once a worker's link to wirehubd is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chan.healthz(ngx.port)[0] == 200:
            return
        time.sleep(0.05)
    raise AssertionError("the link to wirehubd did not come up")


class Controls:
    """The restarts browser.js asks for, by name."""

    def __init__(self, ngx, daemon, token):
        self.ngx = ngx
        self.daemon = daemon
        self.token = token

    def restart_wirehubd(self):
        self.daemon.proc.kill()
        self.daemon.proc.wait(10)
        self.daemon.start()

    def stop_nginx(self):
        self.ngx.stop(graceful=False)

    def start_nginx(self):
        self.ngx.start()
        wait_link(self.ngx, self.token)

    def run(self, action):
        getattr(self, action.replace("-", "_"))()


def run_browser(env, controls, script=None):
    """A browser script (browser.js unless told) with its control requests
    served; returns (rc, log)."""
    script = script or os.path.join(WEB_TESTS, "browser.js")
    proc = subprocess.Popen([NODE, script],
                            cwd=WEB_TESTS, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    watchdog = threading.Timer(BROWSER_TIMEOUT, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if not line.startswith("@control "):
                continue
            action = json.loads(line[len("@control "):])["action"]
            try:
                t0 = time.monotonic()
                controls.run(action)
                lines.append("control %s took %.0f ms\n"
                             % (action, (time.monotonic() - t0) * 1000))
                reply = "ok"
            except Exception as e:  # reported to the script, which fails
                reply = "error %s: %s" % (type(e).__name__, e)
                lines.append(reply + "\n")
            proc.stdin.write(reply + "\n")
            proc.stdin.flush()
        rc = proc.wait(10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, "".join(lines)


@pytest.mark.browser
def test_dashboard_in_browser(web_deps, nginx_factory, wirehubd, keys):
    workspace = "web-" + uuid.uuid4().hex[:8]
    client_id = "dash-test"
    agent_id = "agent-1"
    token = wh.mint("HS256", wh.claims(sub=client_id, workspace=workspace,
                                       role="service", ttl=900))
    # the desktop agent: a plain client of the same workspace, which
    # enters the registry by connecting
    agent_token = wh.mint("HS256", wh.claims(sub=agent_id,
                                             workspace=workspace, ttl=900))
    ngx = nginx_factory(http=HTTP, server=SERVER, tag="web")
    wait_link(ngx, token)

    env = dict(os.environ)
    env.update({
        "WH_BASE_URL": "http://127.0.0.1:%d" % ngx.port,
        "WH_TOKEN": token,
        "WH_CLIENT_ID": client_id,
        "WH_AGENT_TOKEN": agent_token,
        "WH_AGENT_ID": agent_id,
        "WH_ARTIFACTS": wh.ARTIFACTS,
    })
    rc, out = run_browser(env, Controls(ngx, wirehubd.ensure(), token))
    os.makedirs(wh.ARTIFACTS, exist_ok=True)
    with open(os.path.join(wh.ARTIFACTS, "browser-test.log"), "w") as f:
        f.write(out)
    print(out)
    assert rc == 0, "browser test failed (rc %r):\n%s" % (rc, out)
    assert os.path.getsize(os.path.join(wh.ARTIFACTS, "dashboard.png")) > 0
    ngx.assert_no_secrets([token, agent_token])
    ngx.assert_clean_log()


@pytest.mark.browser
def test_client_package_in_browser(web_deps, nginx_factory, wirehubd,
                                   keys):
    """t/web/client.js: the package's ES module build in chromium,
    against a server with 1 s of leeway for its 3-second tokens."""
    workspace = "webc-" + uuid.uuid4().hex[:8]
    service = wh.mint("HS256", wh.claims(sub="ops", workspace=workspace,
                                         role="service", ttl=900))
    ngx = nginx_factory(http=wh.jwt_directives(leeway="1s") + """
wirehub_ping_interval 30s;
wirehub_idle_timeout 75s;
""", server=SERVER, tag="webclient")
    wait_link(ngx, service)

    env = dict(os.environ)
    env.update({
        "WH_BASE_URL": "http://127.0.0.1:%d" % ngx.port,
        "WH_SERVICE_TOKEN": service,
        "WH_HS256_SECRET": wh.hs256_secret().hex(),
        "WH_ISS": wh.ISSUER,
        "WH_AUD": wh.AUDIENCE,
        "WH_WORKSPACE": workspace,
    })
    res = subprocess.run([NODE, os.path.join(WEB_TESTS, "client.js")],
                         cwd=WEB_TESTS, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=BROWSER_TIMEOUT)
    out = res.stdout.decode("utf-8", "replace")
    print(out)
    assert res.returncode == 0, "client test failed:\n" + out
    assert "client test passed" in out, out
    ngx.assert_no_secrets([service])
    ngx.assert_clean_log()
