"""JWT verification at the handshake: what is let in, what gets 401, and
that no token ever reaches a log."""

import hashlib
import hmac
import json
import os
import socket
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import wh

SERVER = """
location /ws/ { wirehub_websocket; }
location = /metrics { wirehub_metrics; }
"""

USED_TOKENS = []


@pytest.fixture(scope="module")
def nginx(nginx_factory, keys):
    return nginx_factory(http=wh.jwt_directives(leeway="5s"), server=SERVER)


def remember(token):
    USED_TOKENS.append(token)
    return token


def request_for(token, how):
    if how == "header":
        return wh.upgrade_request(token=token)
    if how == "query":
        return wh.upgrade_request(path="/ws/?token=" + token)
    if how == "path":
        return wh.upgrade_request(path="/ws/client/" + token)
    raise ValueError(how)


def handshake(nginx, token, how="header"):
    remember(token)
    resp, sock, _ = wh.http_raw(nginx.port, request_for(token, how))
    sock.close()
    return resp


def assert_accepted(nginx, token, how="header"):
    resp = handshake(nginx, token, how)
    assert resp.status == 101, resp


def assert_401(nginx, token, how="header"):
    resp = handshake(nginx, token, how)
    assert resp.status == 401, resp
    wh.json_error(resp)
    return resp


def now():
    return int(time.time())


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


HS_HEADER = compact({"alg": "HS256", "typ": "JWT"})


def fresh_rsa_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def fresh_ec_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def resign_hs256(signing_input):
    """HS256 over an arbitrary (possibly malformed) signing input."""
    mac = hmac.new(wh.hs256_secret(), signing_input.encode(),
                   hashlib.sha256).digest()
    return signing_input + "." + wh.b64url(mac)


# ------------------------------------------------------------- accepted


@pytest.mark.parametrize("how", ["header", "query", "path"])
@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_valid_token_accepted(nginx, alg, how):
    assert_accepted(nginx, wh.mint(alg), how)


def test_query_token_among_other_arguments(nginx):
    token = remember(wh.mint("HS256"))
    req = wh.upgrade_request(path="/ws/?v=1&token=%s&x=y" % token)
    resp, sock, _ = wh.http_raw(nginx.port, req)
    sock.close()
    assert resp.status == 101, resp


def test_accepted_token_identity_reaches_session(nginx):
    token = remember(wh.mint("ES256", wh.claims(sub="dev-42",
                                                 workspace="plant.9")))
    with wh.RawWebSocket.connect(nginx.port, token=token) as ws:
        msg = ws.recv_json()
    assert msg["type"] == "connection_status", msg
    assert msg["data"]["client_id"] == "dev-42"
    assert msg["data"]["workspace"] == "plant.9"


def test_exp_within_leeway_accepted(nginx):
    assert_accepted(nginx, wh.mint("HS256", wh.claims(exp=now() - 2)))


def test_nbf_within_leeway_accepted(nginx):
    assert_accepted(nginx, wh.mint("HS256", wh.claims(nbf=now() + 2)))


def test_aud_array_containing_audience_accepted(nginx):
    body = wh.claims(aud=["other", wh.AUDIENCE])
    assert_accepted(nginx, wh.mint("HS256", body))


def test_token_just_under_8k_accepted(nginx):
    token = wh.mint("HS256", wh.claims(pad="x" * 5600))
    assert 7600 < len(token) <= 8192, len(token)
    assert_accepted(nginx, token)


@pytest.mark.parametrize("role", ["client", "service", "admin"])
def test_known_roles_accepted(nginx, role):
    assert_accepted(nginx, wh.mint("HS256", wh.claims(role=role)))


# ------------------------------------------------------------- rejected


@pytest.mark.parametrize("how", ["header", "query", "path"])
def test_no_token(nginx, how):
    path = {"header": "/ws/", "query": "/ws/?token=",
            "path": "/ws/client/"}[how]
    resp, sock, _ = wh.http_raw(nginx.port, wh.upgrade_request(path=path))
    sock.close()
    assert resp.status == 401, resp
    wh.json_error(resp)


def test_empty_bearer(nginx):
    req = wh.upgrade_request(extra=[("Authorization", "Bearer ")])
    resp, sock, _ = wh.http_raw(nginx.port, req)
    sock.close()
    assert resp.status == 401, resp
    wh.json_error(resp)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("sig", ["", "c2ln"])
def test_alg_none(nginx, alg, sig):
    header = compact({"alg": alg, "typ": "JWT"})
    token = "%s.%s.%s" % (wh.b64url(header), wh.b64url(compact(wh.claims())),
                          sig)
    assert_401(nginx, token)


def test_alg_none_in_query(nginx):
    header = compact({"alg": "none", "typ": "JWT"})
    token = "%s.%s." % (wh.b64url(header), wh.b64url(compact(wh.claims())))
    assert_401(nginx, token, "query")


def test_alg_none_with_kid_of_a_key(nginx):
    header = compact({"alg": "none", "typ": "JWT", "kid": "r1"})
    token = "%s.%s." % (wh.b64url(header), wh.b64url(compact(wh.claims())))
    assert_401(nginx, token)


@pytest.mark.parametrize("pem,kid", [
    ("rsa.pub.pem", "r1"),
    ("rsa.pub.pem", None),
    ("ec256.pub.pem", "e1"),
])
def test_hmac_signed_with_public_key_pem(nginx, pem, kid):
    """Algorithm confusion: HS256 keyed with the verifier's public PEM."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    token = wh.hs256_raw(compact(header), compact(wh.claims()),
                         secret=wh.read_key(pem))
    assert_401(nginx, token)


def test_algorithm_not_configured(nginx):
    token = wh.mint("HS384", key=wh.hs256_secret())
    assert_401(nginx, token)


def test_rs256_token_with_kid_of_es256_key(nginx):
    token = wh.mint("RS256", headers={"kid": "e1"})
    assert_401(nginx, token)


def test_wrong_hmac_secret(nginx):
    token = wh.mint("HS256", key=wh.read_key("hs256-b.secret").strip())
    assert_401(nginx, token)


def test_wrong_rsa_key(nginx):
    token = wh.mint("RS256", key=fresh_rsa_pem(), headers={"kid": "r1"})
    assert_401(nginx, token)


def test_wrong_ec_key(nginx):
    token = wh.mint("ES256", key=fresh_ec_pem(), headers={"kid": "e1"})
    assert_401(nginx, token)


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_flipped_signature_char(nginx, alg):
    token = wh.mint(alg)
    head, sig = token.rsplit(".", 1)
    i = len(sig) // 2
    sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    assert_401(nginx, head + "." + sig)


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_refused_signature_leaves_the_key_usable(nginx, alg):
    """A key's verification is set up once and used for every token: a
    refused signature must not leave it refusing, or accepting, the
    next."""
    for _ in range(3):
        token = wh.mint(alg)
        head, sig = token.rsplit(".", 1)
        assert_401(nginx, head + "." + sig[::-1])
        assert_accepted(nginx, token, "header")
        assert_401(nginx, token[:-2] + ("AA" if token[-2:] != "AA"
                                        else "BB"))


def test_truncated_signature(nginx):
    assert_401(nginx, wh.mint("HS256")[:-4])


def test_signature_of_other_payload(nginx):
    a = wh.mint("HS256", wh.claims(sub="alice"))
    b = wh.mint("HS256", wh.claims(sub="mallory"))
    forged = b.rsplit(".", 1)[0] + "." + a.rsplit(".", 1)[1]
    assert_401(nginx, forged)


@pytest.mark.parametrize("where", ["header", "payload"])
@pytest.mark.parametrize("junk", ["*", "=", "==", "+", "/", "%", "!"])
def test_bad_base64_char_correctly_signed(nginx, where, junk):
    """A byte outside base64url, HMAC'd as sent: libb64 would skip it."""
    seg_h = wh.b64url(HS_HEADER)
    seg_p = wh.b64url(compact(wh.claims()))
    if where == "header":
        seg_h = seg_h[:5] + junk + seg_h[5:]
    else:
        seg_p = seg_p + junk
    assert_401(nginx, resign_hs256(seg_h + "." + seg_p))


def test_base64_bad_length(nginx):
    """A payload segment of length 4n+1 cannot be base64."""
    seg_p = wh.b64url(compact(wh.claims()))
    while len(seg_p) % 4 != 1:
        seg_p += "A"
    assert_401(nginx, resign_hs256(wh.b64url(HS_HEADER) + "." + seg_p))


@pytest.mark.parametrize("shape", ["4-segments", "2-segments",
                                   "trailing-dot", "leading-dot",
                                   "empty-payload", "double-dot"])
def test_wrong_segment_count(nginx, shape):
    token = wh.mint("HS256")
    h, p, s = token.split(".")
    bad = {
        "4-segments": "%s.%s.%s.%s" % (h, p, s, s),
        "2-segments": "%s.%s" % (h, p),
        "trailing-dot": token + ".",
        "leading-dot": "." + token,
        "empty-payload": "%s..%s" % (h, s),
        "double-dot": "%s.%s..%s" % (h, p, s),
    }[shape]
    assert_401(nginx, bad)


@pytest.mark.parametrize("where", ["header", "payload"])
def test_not_json(nginx, where):
    header, payload = HS_HEADER, compact(wh.claims())
    if where == "header":
        header = b"not json"
    else:
        payload = b"{sub: pc-7, workspace: acme"
    assert_401(nginx, wh.hs256_raw(header, payload))


@pytest.mark.parametrize("payload", [
    b'["pc-7","acme"]', b'"pc-7"', b"42", b"null", b"true",
], ids=["array", "string", "number", "null", "bool"])
def test_payload_not_an_object(nginx, payload):
    assert_401(nginx, wh.hs256_raw(HS_HEADER, payload))


def test_header_not_an_object(nginx):
    assert_401(nginx, wh.hs256_raw(b'["HS256"]', compact(wh.claims())))


def test_duplicate_keys_in_payload(nginx):
    body = compact(wh.claims(workspace="other"))
    body = body[:-1] + b',"workspace":"acme"}'
    assert body.count(b'"workspace"') == 2
    assert_401(nginx, wh.hs256_raw(HS_HEADER, body))


def test_duplicate_sub_in_payload(nginx):
    body = compact(wh.claims(sub="admin-bot"))
    body = body[:-1] + b',"sub":"pc-7"}'
    assert_401(nginx, wh.hs256_raw(HS_HEADER, body))


def test_duplicate_alg_in_header(nginx):
    header = b'{"alg":"none","typ":"JWT","alg":"HS256"}'
    assert_401(nginx, wh.hs256_raw(header, compact(wh.claims())))


def test_crit_header(nginx):
    header = compact({"alg": "HS256", "typ": "JWT", "crit": ["exp"]})
    assert_401(nginx, wh.hs256_raw(header, compact(wh.claims())))


def test_crit_header_via_pyjwt(nginx):
    assert_401(nginx, wh.mint("ES256", headers={"crit": ["exp"]}))


@pytest.mark.parametrize("alg,kid", [("RS256", "r2"), ("ES256", "E1"),
                                     ("HS256", "nope"), ("RS256", "")])
def test_unknown_kid(nginx, alg, kid):
    assert_401(nginx, wh.mint(alg, headers={"kid": kid}))


def test_kid_not_a_string(nginx):
    header = compact({"alg": "HS256", "typ": "JWT", "kid": 1})
    assert_401(nginx, wh.hs256_raw(header, compact(wh.claims())))


@pytest.mark.parametrize("claim", ["workspace", "sub"])
def test_missing_identity_claim(nginx, claim):
    assert_401(nginx, wh.mint("HS256", wh.claims(**{claim: None})))


@pytest.mark.parametrize("claim,value", [
    ("workspace", ""),
    ("workspace", "ac me"),
    ("workspace", "a" * 65),
    ("workspace", 7),
    ("workspace", ["acme"]),
    ("sub", ""),
    ("sub", 7),
    ("sub", {"id": "pc-7"}),
    ("sub", "pc 7"),
])
def test_bad_identity_claim(nginx, claim, value):
    assert_401(nginx, wh.mint("HS256", wh.claims(**{claim: value})))


def test_expired_beyond_leeway(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(exp=now() - 30)))


def test_expired_by_a_day(nginx):
    assert_401(nginx, wh.mint("RS256", wh.claims(exp=now() - 86400)))


def test_nbf_beyond_leeway(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(nbf=now() + 60)))


def test_iat_in_the_future(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(iat=now() + 600)))


@pytest.mark.parametrize("claim,value", [
    ("exp", "STR"), ("exp", None), ("exp", True), ("exp", [1]),
    ("nbf", "STR"), ("iat", "STR"), ("iat", False),
], ids=["exp-string", "exp-null", "exp-bool", "exp-array", "nbf-string",
        "iat-string", "iat-bool"])
def test_time_claim_wrong_type(nginx, claim, value):
    body = wh.claims()
    if value == "STR":
        value = str(now() + 300)
    body[claim] = value
    assert_401(nginx, wh.hs256_raw(HS_HEADER, compact(body)))


def test_wrong_issuer(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(iss="https://evil.test")))


def test_missing_issuer(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(iss=None)))


def test_issuer_wrong_type(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(iss=[wh.ISSUER])))


def test_wrong_audience(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(aud="someone-else")))


def test_missing_audience(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(aud=None)))


def test_audience_array_without_ours(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(aud=["a", "b"])))


def test_audience_array_with_non_string(nginx):
    assert_401(nginx, wh.mint("HS256", wh.claims(aud=[wh.AUDIENCE, 5])))


@pytest.mark.parametrize("role", ["root", "", "Admin", 1, ["admin"]])
def test_bad_role(nginx, role):
    assert_401(nginx, wh.mint("HS256", wh.claims(role=role)))


@pytest.mark.parametrize("claim,value", [
    ("channels", "sensors/#"), ("channels", [1]), ("publish", {"a": 1}),
])
def test_acl_claims_wrong_type(nginx, claim, value):
    assert_401(nginx, wh.mint("HS256", wh.claims(**{claim: value})))


def test_token_over_8k(nginx):
    token = wh.mint("HS256", wh.claims(pad="x" * 6500))
    assert 8192 < len(token) < 30000, len(token)
    assert_401(nginx, token)


def test_token_over_8k_in_query(nginx):
    token = wh.mint("HS256", wh.claims(pad="x" * 6500))
    assert_401(nginx, token, "query")


@pytest.mark.parametrize("how", ["query", "header", "path"])
def test_12mib_token_does_not_crash(nginx, how):
    workers = sorted(nginx.workers())
    sig = wh.mint("HS256").split(".")[2]
    token = "eyJhbGciOiJIUzI1NiJ9." + "QUFB" * (3 * 1024 * 1024) + "." + sig
    # nginx core may quote the start of an oversized line at info level;
    # the part that makes a token usable, its signature, must not leak.
    USED_TOKENS.append(sig)
    req = request_for(token, how)
    sock = socket.create_connection(("127.0.0.1", nginx.port), 5)
    try:
        try:
            sock.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp, _ = wh.read_http_response(sock, 10)
            assert resp.status in (400, 401, 414, 431), resp
        except (ConnectionError, ConnectionResetError):
            pass
    finally:
        sock.close()
    assert_accepted(nginx, wh.mint("HS256"))
    assert sorted(nginx.workers()) == workers, "a worker died"
    nginx.assert_clean_log()


def test_valid_token_in_overlong_uri_not_logged(nginx):
    """nginx core logs the request line of a 414 at info level: the
    token in it must still be masked."""
    token = wh.mint("HS256", wh.claims(sub="long-uri"))
    path = "/ws/?token=%s&pad=%s" % (token, "p" * 40000)
    resp, sock, _ = wh.http_raw(nginx.port, wh.upgrade_request(path=path))
    sock.close()
    assert resp.status in (400, 414), resp
    nginx.assert_no_secrets([token])


@pytest.mark.parametrize("where", ["query", "bearer"])
def test_valid_token_with_oversized_header_not_logged(nginx, where):
    """A too long header line makes nginx core log the request line and
    the start of that header line: a token in either must be masked."""
    token = wh.mint("HS256", wh.claims(sub="big-" + where))
    if where == "query":
        req = wh.upgrade_request(path="/ws/?token=" + token,
                                 extra=[("Cookie", "c=" + "k" * 40000)])
    else:
        req = wh.upgrade_request(extra=[(
            "Authorization", "Bearer %s %s" % (token, "k" * 40000))])
    resp, sock, _ = wh.http_raw(nginx.port, req)
    sock.close()
    assert resp.status in (400, 431), resp
    nginx.assert_no_secrets([token])


def test_valid_token_in_bad_request_not_logged(nginx):
    """A request nginx core rejects after the request line (a broken
    header) logs that line: the token in it must be masked."""
    token = wh.mint("HS256", wh.claims(sub="bad-header"))
    req = wh.upgrade_request(path="/ws/client/" + token,
                             extra=[("Bad\x01Header", "x")])
    resp, sock, _ = wh.http_raw(nginx.port, req)
    sock.close()
    assert resp.status == 400, resp
    nginx.assert_no_secrets([token])


# ------------------------------- tokens and signatures found good, remembered


def cached_total(port):
    return wh.metric_value(port, "wirehub_jwt_signatures_cached_total")


def tokens_total(port):
    return wh.metric_value(port, "wirehub_jwt_tokens_cached_total")


def fresh_sub():
    """A client id no other test's token has: the caches go by the bytes,
    and two tokens minted alike in the same second are the same token."""
    return "dev-%s" % os.urandom(6).hex()


def skipped_total(port):
    """Verifications skipped whole (the token remembered) or in part (its
    signature remembered)."""
    return cached_total(port) + tokens_total(port)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_token_seen_again_skips_its_signature(nginx, alg):
    """A client that reconnects brings the token it had: each of the two
    workers checks its signature once; the second time it finds the
    signature in its cache and remembers the token, which it finds from
    then on."""
    token = wh.mint(alg, wh.claims(sub=fresh_sub()))
    before, tokens_before = skipped_total(nginx.port), tokens_total(nginx.port)
    for _ in range(10):
        assert_accepted(nginx, token)
    skipped = skipped_total(nginx.port) - before
    assert 8 <= skipped <= 9, skipped
    assert 6 <= tokens_total(nginx.port) - tokens_before <= 8


def test_hmac_tokens_remembered_not_signatures(nginx):
    """An HMAC is never kept as a signature (it costs what finding it
    would), but the token is, from the second time a worker verifies it."""
    token = wh.mint("HS256", wh.claims(sub=fresh_sub()))
    before, tokens_before = cached_total(nginx.port), tokens_total(nginx.port)
    for _ in range(6):
        assert_accepted(nginx, token)
    assert cached_total(nginx.port) == before
    assert 2 <= tokens_total(nginx.port) - tokens_before <= 4


@pytest.mark.parametrize("alg", ["ES256", "HS256"])
def test_cached_token_still_expires(nginx, alg):
    """The caches skip the signature and the JSON, never the times: a
    token found good is refused once its exp (with the 5 s leeway) has
    passed."""
    token = wh.mint(alg, wh.claims(sub=fresh_sub(), exp=now() - 5 + 3))
    before = tokens_total(nginx.port)
    tries = 0
    while tokens_total(nginx.port) - before < 2:
        assert_accepted(nginx, token)
        tries += 1
        assert tries <= 20, "never remembered"
    deadline = time.monotonic() + 10
    while True:
        resp = handshake(nginx, token)
        if resp.status != 101:
            break
        assert time.monotonic() < deadline, "never expired"
        time.sleep(0.1)
    assert resp.status == 401, resp
    assert wh.json_error(resp) == "token_expired"


def test_cached_signature_covers_only_its_token(nginx):
    """A signature found good for one payload, put under another: each
    worker refuses it, the ones that remember the first token too."""
    good = wh.mint("ES256", wh.claims(sub=fresh_sub()))
    before = skipped_total(nginx.port)
    while skipped_total(nginx.port) - before < 4:
        assert_accepted(nginx, good)
    other = wh.mint("ES256", wh.claims(sub="mallory"))
    forged = other.rsplit(".", 1)[0] + "." + good.rsplit(".", 1)[1]
    for _ in range(6):
        resp = assert_401(nginx, forged)
        assert wh.json_error(resp) == "invalid_signature"
    assert_accepted(nginx, good)


def test_cache_off(nginx_factory, keys):
    ngx = nginx_factory(http=wh.jwt_directives() + "\nwirehub_jwt_cache 0;",
                        server=SERVER)
    token = wh.mint("ES256")
    for _ in range(6):
        assert_accepted(ngx, token)
    assert cached_total(ngx.port) == 0
    assert 2 <= tokens_total(ngx.port) <= 4


def test_token_cache_off(nginx_factory, keys):
    """wirehub_token_cache 0: every token verified, its public-key
    signature still remembered."""
    ngx = nginx_factory(http=wh.jwt_directives()
                        + "\nwirehub_token_cache 0;", server=SERVER,
                        tag="tokens-off")
    for alg in ("HS256", "ES256"):
        token = wh.mint(alg)
        for _ in range(6):
            assert_accepted(ngx, token)
    assert tokens_total(ngx.port) == 0
    assert 4 <= cached_total(ngx.port) <= 5


def test_remembered_tokens_stay_apart(nginx):
    """Many tokens, each remembered by its worker, each answered with its
    own identity, again and again (sets of 4: some share one)."""
    subs = [fresh_sub() for _ in range(40)]
    tokens = dict((sub, remember(wh.mint("HS256", wh.claims(sub=sub))))
                  for sub in subs)
    before = tokens_total(nginx.port)
    for _ in range(6):
        for sub, token in tokens.items():
            with wh.RawWebSocket.connect(nginx.port, token=token) as ws:
                msg = ws.recv_json()
            assert msg["data"]["client_id"] == sub, msg
    # each token verified at most twice by each of the two workers
    assert tokens_total(nginx.port) - before >= 80


def test_rejections_keep_workers_alive(nginx):
    assert nginx.alive()
    assert len(nginx.workers()) == 2
    nginx.assert_clean_log()


def test_zz_no_token_in_logs(nginx):
    assert USED_TOKENS, "run the whole module: this checks its tokens"
    nginx.assert_no_secrets(USED_TOKENS)


# --------------------------------------------------- access log variables


def test_wirehub_request_masks_token(nginx_factory, keys):
    http = wh.jwt_directives() + """
log_format wh_masked '$wirehub_request|$wirehub_workspace|$wirehub_client_id';
"""
    server = """
access_log %s wh_masked;
location /ws/ { wirehub_websocket; }
"""
    ngx = nginx_factory(http=http, server=server % "logs/masked.log",
                        tag="masked")
    tokens = [wh.mint("HS256", wh.claims(sub="tab-1")),
              wh.mint("RS256", wh.claims(sub="tab-2")),
              wh.mint("ES256", wh.claims(sub="tab-3"))]
    paths = ["/ws/?token=%s" % tokens[0], "/ws/client/%s" % tokens[1],
             "/ws/?a=1&token=%s&b=2" % tokens[2]]
    for path in paths:
        ws = wh.RawWebSocket.connect(ngx.port, path=path)
        ws.recv_json()
        ws.send_close(1000)
        ws.expect_close(1000)
    bad = wh.mint("HS256", wh.claims(exp=now() - 3600))
    resp, sock, _ = wh.http_raw(ngx.port, request_for(bad, "query"))
    sock.close()
    assert resp.status == 401
    masked = os.path.join(ngx.prefix, "logs", "masked.log")
    deadline = time.monotonic() + 3
    lines = []
    while time.monotonic() < deadline and len(lines) < 4:
        with open(masked) as f:
            lines = f.read().splitlines()
        time.sleep(0.1)
    assert len(lines) == 4, lines
    for line in lines[:3]:
        req, workspace, client = line.split("|")
        assert req.startswith("GET /ws/") and req.endswith(" HTTP/1.1"), line
        assert workspace == wh.WORKSPACE, line
        assert client.startswith("tab-"), line
    assert "a=1" in lines[2] and "b=2" in lines[2], lines[2]
    ngx.assert_no_secrets(tokens + [bad])


# ------------------------------------------------------ configuration errors


def config_check(directive):
    ngx = wh.Nginx("cfg", http=directive + "\n",
                   server="location /ws/ { wirehub_websocket; }")
    try:
        return ngx.check_config()
    finally:
        ngx.cleanup()


def assert_config_error(out, reason):
    """One [emerg] line naming the directive and the reason."""
    lines = [l for l in out.splitlines() if "[emerg]" in l]
    assert len(lines) == 1, out
    assert "wirehub_jwt_key" in lines[0] and reason in lines[0], out


def test_config_ok_control(keys):
    status, out = config_check(wh.jwt_directives())
    assert status == 0, out


def test_config_empty_hs256_key(tmp_path, keys):
    empty = tmp_path / "empty.secret"
    empty.write_bytes(b"")
    status, out = config_check(
        "wirehub_jwt_key HS256 file=%s;" % empty)
    assert status != 0, out
    assert_config_error(out, "empty")


def test_config_newline_only_hs256_key(tmp_path, keys):
    nl = tmp_path / "nl.secret"
    nl.write_bytes(b"\n")
    status, out = config_check(
        "wirehub_jwt_key HS256 file=%s;" % nl)
    assert status != 0, out
    assert_config_error(out, "empty")


@pytest.mark.parametrize("pem", ["rsa.pub.pem", "ec256.pub.pem"])
def test_config_hs256_with_pem(keys, pem):
    path = wh.key_path(pem)
    status, out = config_check(
        "wirehub_jwt_key HS256 file=%s;" % path)
    assert status != 0, out
    assert_config_error(out, "PEM")


def test_config_jwt_cache_not_a_number(keys):
    status, out = config_check("wirehub_jwt_cache many;")
    assert status != 0, out
    lines = [l for l in out.splitlines() if "[emerg]" in l]
    assert len(lines) == 1 and "wirehub_jwt_cache" in lines[0], out
    assert "invalid number" in lines[0], out


@pytest.mark.parametrize("directive,most", [("wirehub_jwt_cache", 1048576),
                                             ("wirehub_token_cache", 65536)])
def test_config_cache_too_large(keys, directive, most):
    status, out = config_check("%s %d;" % (directive, most + 1))
    assert status != 0, out
    lines = [l for l in out.splitlines() if "[emerg]" in l]
    assert len(lines) == 1, out
    assert "value must be between 0 and %d" % most in lines[0], out


def test_config_unknown_algorithm(keys):
    status, out = config_check(
        "wirehub_jwt_key XS256 file=%s;"
        % wh.key_path("hs256.secret"))
    assert status != 0, out
    assert_config_error(out, "XS256")


def test_config_alg_none(keys):
    status, out = config_check(
        "wirehub_jwt_key none file=%s;"
        % wh.key_path("hs256.secret"))
    assert status != 0, out
    assert_config_error(out, "none")


def test_config_missing_key_file(tmp_path, keys):
    path = str(tmp_path / "does-not-exist.pem")
    status, out = config_check(
        "wirehub_jwt_key RS256 file=%s;" % path)
    assert status != 0, out
    assert "[emerg]" in out and path in out, out


def test_config_rs256_with_ec_key(keys):
    path = wh.key_path("ec256.pub.pem")
    status, out = config_check(
        "wirehub_jwt_key RS256 file=%s;" % path)
    assert status != 0, out
    assert_config_error(out, "RSA")
