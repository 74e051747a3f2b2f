"""The dashboard's health view (web/dashboard/health.js) in headless
chromium, t/web/health_browser.js: against mosquitto, wirehubd with MQTT
and a channels quota already refused once, and nginx with two workers and
/metrics. The script checks each card against /api/stats and /metrics,
a presence row for a client that comes and goes, and a channel tail
resumed with `since` (recovered, and another epoch: not recovered); here
what the page showed is compared with `wirehubctl stats --json`.
Screenshots: build/screenshots/health-*.png."""

import json
import os
import subprocess
import sys
import threading

import pytest

import chan
import wh
from test_mqtt import Broker
from test_web import BROWSER_TIMEOUT, DASHBOARD, NODE, WEB_TESTS
from test_web import web_deps  # noqa: F401 (a fixture)

SHOTS = os.path.join(wh.ROOT, "build", "screenshots")
CTL = os.path.join(wh.ROOT, "tools", "wirehubctl")
WS = chan.unique("health")
TAIL = "health/tail"

SERVER = """
location = /metrics { wirehub_metrics; }
location / {
    root %s;
    include /etc/nginx/mime.types;
}
""" % DASHBOARD


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("health")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def daemon(broker):
    d = chan.Daemon("health", extra=(
        "mqtt host=127.0.0.1 port=%d client_id=wirehubd-health "
        "keepalive=5 reconnect_min=100ms reconnect_max=1s;\n"
        "quota workspace=%s channels=2;\n" % (broker.port, WS)))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, server=SERVER,
                            tag="health")


def wirehubctl(port, token, *args):
    res = subprocess.run([sys.executable, CTL, "--url",
                          "http://127.0.0.1:%d" % port, "--token", token,
                          *args], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.browser
def test_health_view_in_browser(web_deps, ngx, broker):  # noqa: F811
    service = chan.service_token(WS)
    agent_id = "health-agent"
    agent = chan.token(sub=agent_id, workspace=WS)
    api = wh.Api(ngx.port, service)
    try:
        for n in (1, 2, 3):
            assert api.publish(TAIL, {"n": n}, mtype="note").status == 202
        # the second channel of a workspace with channels=2 fills it; a
        # third one is refused: the quota card shows it
        assert api.publish("health/other", {"n": 0}).status == 202
        refused = api.publish("health/third", {"n": 0})
        assert refused.status == 429
        assert refused.error_code() == "quota_exceeded"
        stats = api.request("GET", "/api/stats").json()
        assert stats["mqtt"]["connected"], stats["mqtt"]
    finally:
        api.close()

    env = dict(os.environ, WH_BASE_URL="http://127.0.0.1:%d" % ngx.port,
               WH_TOKEN=service, WH_AGENT_TOKEN=agent, WH_AGENT_ID=agent_id,
               WH_TAIL_CHANNEL=TAIL, WH_BROKER="127.0.0.1:%d" % broker.port,
               WH_SCREENSHOTS=SHOTS, WH_ENGINE=wh.ENGINE)
    proc = subprocess.Popen([NODE, os.path.join(WEB_TESTS,
                                                "health_browser.js")],
                            cwd=WEB_TESTS, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    watchdog = threading.Timer(BROWSER_TIMEOUT, proc.kill)
    watchdog.start()
    try:
        out, _ = proc.communicate()
    finally:
        watchdog.cancel()
    print(out)
    assert proc.returncode == 0, "health browser test failed:\n" + out
    shown = json.loads(out.split("@shown ", 1)[1].splitlines()[0])

    # the operator's CLI tells the same story as the page
    ctl = json.loads(wirehubctl(ngx.port, service, "--json", "stats"))
    assert shown["instance"] == ctl["daemon"]["instance"]
    assert shown["links_up"].startswith("%d of " % ctl["nginx"]["links_up"])
    assert sorted(shown["workers"]) == sorted(
        w["pid"] for w in ctl["nginx"]["workers"])
    assert shown["quota_channels"] == [
        "channels", str(ctl["quota"]["channels"]["used"]), "2",
        str(ctl["quota"]["channels"]["refused"])]
    assert shown["mqtt"] == "%s connected" % ctl["mqtt"]["broker"]
    for name in ("health-view.png", "health-cards.png",
                 "health-tail-form.png", "health-view-phone.png"):
        assert os.path.getsize(os.path.join(SHOTS, name)) > 0
    ngx.assert_no_secrets([service, agent])
