"""The HTTP API remembers a verified token per worker (auth.c): a token
sent again passes without its signature being checked again, but only
for the bytes verified, and only while its exp, nbf and iat, with the
leeway, would let it pass."""

import time

import pytest

import chan
import wh

LEEWAY = 5          # wh.jwt_directives()


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("tokcache")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    # 4 sets of 4: many tokens share a set and push each other out
    return chan.start_nginx(nginx_factory, daemon, tag="tokcache",
                            http="wirehub_token_cache 16;",
                            server="location = /metrics "
                                   "{ wirehub_metrics; }")


def service(workspace, **claims):
    return wh.mint("HS256", wh.claims(sub="svc-" + workspace,
                                      workspace=workspace, role="service",
                                      **claims))


def stats(api):
    """GET /api/stats on the API's one keep-alive connection, so that
    every request reaches the same worker: (status, the workspace or the
    error's code)."""
    resp = api.request("GET", "/api/stats")
    if resp.status == 200:
        return 200, resp.json()["workspace"]
    return resp.status, wh.json_error(resp)


def first_change(api, status, deadline_s):
    """Asks until the answer is no longer `status`; the time it changed
    and the new answer."""
    end = time.time() + deadline_s
    while time.time() < end:
        got, what = stats(api)
        if got != status:
            return time.time(), got, what
        time.sleep(0.05)
    raise AssertionError("still %d after %.1f s" % (status, deadline_s))


def test_remembered_token_expires_on_time(ngx):
    ws = chan.unique("tc")
    until = int(time.time()) + 3
    api = wh.Api(ngx.port, service(ws, exp=until - LEEWAY))
    try:
        assert stats(api) == (200, ws)
        changed, status, code = first_change(api, 200, 10)
    finally:
        api.close()
    assert (status, code) == (401, "token_expired")
    # nginx's clock is in whole seconds: refused from `until` on, and not
    # long after it
    assert until - 0.05 <= changed < until + 1.5, (changed, until)


def test_token_not_yet_valid_then_valid(ngx):
    ws = chan.unique("tc")
    valid_from = int(time.time()) + 3
    api = wh.Api(ngx.port, service(ws, nbf=valid_from + LEEWAY))
    try:
        assert stats(api) == (401, "token_not_yet_valid")
        changed, status, code = first_change(api, 401, 10)
    finally:
        api.close()
    assert (status, code) == (200, ws)
    assert valid_from - 0.05 <= changed < valid_from + 1.5


def test_only_the_verified_bytes_pass(ngx):
    ws = chan.unique("tc")
    good = service(ws)
    head, payload, sig = good.split(".")
    # the same length, one signature character changed
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    api = wh.Api(ngx.port, good)
    try:
        for _ in range(3):
            assert stats(api) == (200, ws)
        api.token = ".".join([head, payload, flipped])
        assert stats(api) == (401, "invalid_signature")
        # not even base64url of 32 bytes any more
        for bad in (".".join([head, payload, sig[:-1]]), good + "A"):
            api.token = bad
            status, code = stats(api)
            assert status == 401
            assert code in ("invalid_signature", "invalid_token"), code
        api.token = good
        assert stats(api) == (200, ws)
    finally:
        api.close()


def test_tokens_of_two_workspaces_stay_apart(ngx):
    """Many tokens through one connection, each answered for its own
    workspace, again and again: each remembered from its second time,
    found or pushed out of its set by the others."""
    names = [chan.unique("tc%d" % i) for i in range(100)]
    tokens = dict((ws, service(ws)) for ws in names)
    api = wh.Api(ngx.port, None)
    try:
        for _ in range(3):
            for ws in names:
                api.token = tokens[ws]
                assert stats(api) == (200, ws)
        # one of them, again: noted (if the others wiped its note),
        # remembered, then found
        before = wh.metric_value(ngx.port, "wirehub_jwt_tokens_cached_total")
        api.token = tokens[names[0]]
        for _ in range(4):
            assert stats(api) == (200, names[0])
        found = wh.metric_value(ngx.port,
                                "wirehub_jwt_tokens_cached_total") - before
        assert 2 <= found <= 4, found
    finally:
        api.close()
