"""POST /api/broadcast: one message to every connected client of the
caller's workspace, on every nginx worker, and to nobody else."""

import pytest

import chan
import wh
from chan import Client, run


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("broadcast")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon, tag="broadcast")


def test_broadcast_reaches_the_workspace_on_both_workers_only(ngx):
    ws_a, ws_b = chan.unique("bca"), chan.unique("bcb")
    workers = ngx.workers()
    assert len(workers) == 2

    async def scenario():
        mine = [await chan.open_on(ngx, chan.token("a%d" % i, ws_a), pid)
                for i, pid in enumerate(workers)]
        other = await Client.open(ngx.rport, chan.token("b1", ws_b))
        api = wh.Api(ngx.port, chan.service_token(ws_a))
        resp = api.request("POST", "/api/broadcast",
                           {"type": "maintenance", "data": {"in_min": 5}})
        api.close()
        assert resp.status == 202, resp
        got = [await c.recv() for c in mine]
        stray = await other.barrier()
        bad = wh.Api(ngx.port, chan.service_token(ws_a))
        refused = bad.request("POST", "/api/broadcast",
                              {"type": "a\"b", "data": 1})
        bad.close()
        for c in mine + [other]:
            await c.close()
        return got, stray, refused

    got, stray, refused = run(scenario())
    for msg in got:
        assert msg["type"] == "maintenance"
        assert msg["data"] == {"in_min": 5}
        assert msg["timestamp"].endswith("Z")
        assert "channel" not in msg and "id" not in msg
    assert stray == []
    assert refused.status == 400
    assert refused.error_code() == "bad_request"


def test_broadcast_needs_a_service_token(ngx):
    api = wh.Api(ngx.port, chan.token("c1", chan.unique("bcc")))
    resp = api.request("POST", "/api/broadcast", {"type": "x", "data": 1})
    api.close()
    assert resp.status == 403
