"""The dashboard's jobs panel in a real browser (t/web/jobs_browser.js,
Debian's chromium driven by playwright-core) against nginx + wirehubd
started here, with a stub fleet of gateways (t/job_fleet.py) that fails
every fifth execution: the progress bar moves live from $commands, the
job aborts, the failures list matches the API.  The screenshot goes to
build/web/jobs-panel.png."""

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest

import wh
from cmd_helpers import client_token, post_many
from test_web import HTTP, NODE, SERVER, WEB_TESTS, wait_link, web_deps

__all__ = ["web_deps"]          # the fixture, shared with test_web.py

TARGETS = 60
SHOT = os.path.join(wh.ROOT, "build", "web", "jobs-panel.png")


class Fleet:
    """t/job_fleet.py: one WebSocket agent per gateway."""

    def __init__(self, port, pairs, tmp):
        path = os.path.join(tmp, "fleet.json")
        with open(path, "w") as f:
            json.dump(pairs, f)
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(wh.ROOT, "t", "job_fleet.py"),
             "ws://127.0.0.1:%d/ws/" % port, path],
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            if json.loads(line)["ev"] == "ready":
                self.ready.set()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.mark.browser
def test_jobs_panel_in_browser(web_deps, nginx_factory, wirehubd, keys,
                               tmp_path):
    workspace = "webj-" + uuid.uuid4().hex[:8]
    token = wh.mint("HS256", wh.claims(sub="ops-dash", workspace=workspace,
                                       role="service", ttl=900))
    ngx = nginx_factory(http=HTTP, server=SERVER, tag="webjobs")
    wait_link(ngx, token)

    gateways = ["gw-%02d" % i for i in range(TARGETS)]
    results = post_many(ngx.port, token, [
        (g, "/api/clients", {"id": g, "name": g, "client_type": "gateway"})
        for g in gateways], retry=True)
    assert sorted(r[1] for r in results) == [201] * TARGETS
    fleet = Fleet(ngx.port, [[g, client_token(workspace, g, ttl=900)]
                             for g in gateways], str(tmp_path))
    try:
        assert fleet.ready.wait(60), "the fleet did not connect"
        os.makedirs(os.path.dirname(SHOT), exist_ok=True)
        env = dict(os.environ)
        env.update({"WH_BASE_URL": "http://127.0.0.1:%d" % ngx.port,
                    "WH_TOKEN": token, "WH_TARGETS": str(TARGETS),
                    "WH_SHOT": SHOT})
        res = subprocess.run([NODE, os.path.join(WEB_TESTS,
                                                 "jobs_browser.js")],
                             cwd=WEB_TESTS, env=env,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=120)
    finally:
        fleet.stop()
    out = res.stdout.decode("utf-8", "replace")
    print(out)
    assert res.returncode == 0, "jobs panel test failed:\n" + out
    assert "jobs panel test passed" in out, out
    assert os.path.getsize(SHOT) > 0
    ngx.assert_no_secrets([token])
