"""docs/openapi.json: the document itself (OpenAPI 3.1 structure checked
by hand, every schema against JSON Schema 2020-12), served by the module
at /api/openapi.json, and real answers of every operation, success and
error, validated against it (status, Content-Type, the headers it names,
the body).  Every operation of the document must be exercised, so the
document cannot drift from the server.

Debian ships no OpenAPI validator for Python (python3-openapi-spec-
validator is not packaged; python3-swagger-spec-validator is Swagger 2
only) nor the OpenAPI JSON Schema, so the structural checks are written
here; schemas are checked with python3-jsonschema's 2020-12 metaschema."""

import json
import os
import re

import jsonschema
import pytest

import chan
import wh

DOC_PATH = os.path.join(wh.ROOT, "docs", "openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")
TIGHT = chan.unique("tight")
SLOW = chan.unique("slow")
SRC_WS = chan.unique("src")
QUOTAS = ("quota workspace=%s channels=1 clients=1 queued_commands=1;\n"
          "quota workspace=%s publish_rate=1/s;\n"
          "source conf1 url=ws://127.0.0.1:%d/ workspace=%s channel=c/{event} "
          "reconnect_min=1s;\n" % (TIGHT, SLOW, wh.free_port(), SRC_WS))

with open(DOC_PATH, "rb") as _f:
    DOC_BYTES = _f.read()
DOC = json.loads(DOC_BYTES)


# ------------------------------------------------------------ the document


def deref(node):
    """A $ref of this document, followed (local references only)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = DOC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def walk(node, path=()):
    """Every (path, dict) under node."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


def operations():
    for tmpl, item in DOC["paths"].items():
        for method in METHODS:
            if method in item:
                yield tmpl, method, item[method]


def test_document_structure():
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "bearerFormat": "JWT",
                                 "description": schemes["bearer"][
                                     "description"]}
    for req in DOC["security"]:
        assert set(req) <= set(schemes), req
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids)), ids
    for tmpl, method, op in operations():
        assert tmpl.startswith("/"), tmpl
        params = [deref(p) for p in DOC["paths"][tmpl].get("parameters", [])
                  + op.get("parameters", [])]
        named = set(re.findall(r"\{([^}]+)\}", tmpl))
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert named == in_path, (tmpl, named, in_path)
        for p in params:
            assert p["in"] in ("path", "query", "header", "cookie"), p
            assert p["in"] != "path" or p["required"] is True, p
            assert "schema" in p, p
        assert op["responses"], (tmpl, method)
        for status, resp in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", status), (tmpl, status)
            resp = deref(resp)
            assert resp["description"], (tmpl, status)
            for name, header in resp.get("headers", {}).items():
                assert "schema" in deref(header), (tmpl, status, name)
            for ctype, media in resp.get("content", {}).items():
                assert "schema" in media, (tmpl, status, ctype)
        if "requestBody" in op:
            assert "application/json" in op["requestBody"]["content"]
    # every reference resolves
    for where, node in walk(DOC):
        if "$ref" in node:
            deref(node)


def test_every_schema_is_valid_json_schema_2020_12():
    schemas = [s for _, s in DOC["components"]["schemas"].items()]
    for _, node in walk(DOC["paths"]):
        if "schema" in node and isinstance(node["schema"], dict):
            schemas.append(node["schema"])
    for _, resp in DOC["components"]["responses"].items():
        for media in resp["content"].values():
            schemas.append(media["schema"])
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_error_codes_enum_matches_the_sources():
    """Every code the sources answer with is in the enum, and no more."""
    enum = set(deref({"$ref": "#/components/schemas/ErrorCode"})["enum"])
    with open(os.path.join(wh.ROOT, "docs", "api.md")) as f:
        api_md = f.read()
    with open(os.path.join(wh.ROOT, "docs", "protocol.md")) as f:
        auth_row = [line for line in f if line.startswith("| 401 |")][0]
    table = api_md.split("**Errors**", 1)[1].split("- **Paging**", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines()
            if re.match(r"\s*\| \d{3} \|", line)]
    text = " ".join(rows)
    while re.search(r"\([^()]*\)", text):
        # asides in parentheses name settings, not codes
        text = re.sub(r"\([^()]*\)", "", text)
    documented = set(re.findall(r"`([a-z_]+)`", text))
    documented |= set(re.findall(r"`([a-z_]+)`", auth_row.split("|")[2]))
    documented |= {"internal"}
    assert enum == documented, enum ^ documented


# ------------------------------------------------------------ answers


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("openapi", extra=QUOTAS)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    http = "wirehub_jwt_sign_key HS256 file=%s;" % wh.key_path(
        "hs256.secret")
    return chan.start_nginx(nginx_factory, daemon, tag="openapi", http=http,
                            server="location = /metrics "
                                   "{ wirehub_metrics; }")


class Checker:
    """Sends requests, validates each answer against the document and
    records which (path, method, status) were seen."""

    def __init__(self, port):
        self.port = port
        self.seen = set()
        self.resolver = jsonschema.RefResolver.from_schema(DOC)

    def api(self, token, **kw):
        return wh.Api(self.port, token, **kw)

    def check(self, api, method, tmpl, path, status, body=None, raw=None,
              headers=None):
        resp = api.request(method.upper(), path, body, headers, raw)
        assert resp.status == status, (method, path, resp)
        self.validate(method, tmpl, resp)
        return resp

    def validate(self, method, tmpl, resp):
        item = DOC["paths"][tmpl]
        if method in item:
            declared = item[method]["responses"].get(str(resp.status))
        else:
            declared = item.get("x-other-methods")
        assert declared is not None, \
            "%s %s answered %d, not in the document: %r" % (
                method, tmpl, resp.status, resp)
        declared = deref(declared)
        self.seen.add((tmpl, method, resp.status))
        for name, header in declared.get("headers", {}).items():
            header = deref(header)
            value = resp.header(name)
            if value is None:
                assert not header.get("required"), (name, resp)
                continue
            self.validate_json(value, header["schema"])
        content = declared.get("content")
        if not content:
            assert resp.body == b"", resp
            return
        ctype = resp.header("content-type")
        assert ctype in content, (ctype, list(content))
        if ctype == "application/json":
            self.validate_json(json.loads(resp.body), content[ctype]["schema"])

    def validate_json(self, instance, schema):
        jsonschema.Draft202012Validator(
            schema, resolver=self.resolver,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(instance)


@pytest.fixture(scope="module")
def checker(ngx):
    return Checker(ngx.port)


def test_openapi_json_is_served(checker):
    anon = checker.api(None)
    resp = checker.check(anon, "get", "/api/openapi.json",
                         "/api/openapi.json", 200)
    assert resp.body == DOC_BYTES
    assert resp.header("cache-control") == "no-cache"
    etag = resp.header("etag")
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag
    again = checker.check(anon, "get", "/api/openapi.json",
                          "/api/openapi.json", 304,
                          headers={"If-None-Match": etag})
    assert again.header("etag") == etag
    head = anon.request("HEAD", "/api/openapi.json")
    assert head.status == 200 and head.body == b""
    assert int(head.header("content-length")) == len(DOC_BYTES)
    resp = checker.check(anon, "post", "/api/openapi.json",
                         "/api/openapi.json", 405, raw=b"{}")
    assert resp.header("allow") == "GET, HEAD"
    # a token is not needed, and a bad one is not looked at
    assert checker.api("x.y.z").request(
        "GET", "/api/openapi.json").status == 200


def test_channels(checker):
    api = checker.api(chan.service_token(chan.unique("oa")))
    msgs = "/api/channels/{channel}/messages"
    ch = "sensors/" + chan.unique("v")
    for k in range(3):
        checker.check(api, "post", msgs, "/api/channels/%s/messages" % ch,
                      202, {"type": "reading", "data": {"k": k}})
    checker.check(api, "post", msgs, "/api/channels/%s/messages" % ch, 202,
                  {"data": [1, "two", None]})
    resp = checker.check(api, "get", msgs, "/api/channels/%s/messages"
                         "?since=1&limit=2" % ch, 200)
    assert [m["id"] for m in resp.json()["items"]] == [2, 3]
    assert resp.json()["next"] == "3"
    checker.check(api, "get", msgs, "/api/channels/%s/messages?cursor=3"
                  % ch, 200)
    checker.check(api, "get", msgs, "/api/channels/nothing/here/messages",
                  200)
    checker.check(api, "get", msgs, "/api/channels/%s/messages?limit=0"
                  % ch, 400)
    resp = checker.check(api, "get", msgs, "/api/channels/%s/messages"
                         "?last=2&order=desc" % ch, 200)
    assert [m["id"] for m in resp.json()["items"]] == [4, 3]
    assert resp.json()["next"] == "3"
    checker.check(api, "get", msgs, "/api/channels/%s/messages?before=3"
                  "&last=5" % ch, 200)
    checker.check(api, "get", msgs, "/api/channels/%s/messages?last=2"
                  "&since=1" % ch, 400)
    key = {"Idempotency-Key": chan.unique("idem")}
    first = checker.check(api, "post", msgs, "/api/channels/%s/messages"
                          % ch, 202, {"data": "once"}, headers=key)
    again = checker.check(api, "post", msgs, "/api/channels/%s/messages"
                          % ch, 200, {"data": "once"}, headers=key)
    assert again.json() == first.json()
    checker.check(api, "post", msgs, "/api/channels/%s/messages" % ch, 400,
                  {"data": 1}, headers={"Idempotency-Key": "x" * 129})
    checker.check(api, "post", msgs, "/api/channels/bad*name/messages",
                  400, {"data": 1})
    checker.check(api, "get", msgs, "/api/channels/bad*name/messages", 400)
    checker.check(api, "post", msgs, "/api/channels/%s/messages" % ch, 400,
                  raw=b"[1]")
    checker.check(api, "post", msgs, "/api/channels/$presence/messages",
                  403, {"data": 1})
    checker.check(api, "post", msgs, "/api/channels/%s/messages" % ch, 413,
                  raw=b'{"data":"' + b"x" * (1024 * 1024) + b'"}')
    checker.check(api, "post", msgs, "/api/channels/%s/b/messages" % ch,
                  202, {"data": None})
    resp = checker.check(api, "get", "/api/channels",
                         "/api/channels?limit=1", 200)
    assert resp.json()["next"] is not None
    checker.check(api, "get", "/api/channels", "/api/channels?cursor="
                  + resp.json()["next"], 200)
    checker.check(api, "get", "/api/channels", "/api/channels?limit=x",
                  400)
    checker.check(api, "post", "/api/broadcast", "/api/broadcast", 202,
                  {"type": "maintenance", "data": {"in": 300}})
    checker.check(api, "post", "/api/broadcast", "/api/broadcast", 400,
                  {"type": "has space", "data": 1})


def test_clients_and_commands(checker):
    api = checker.api(chan.service_token(chan.unique("oa")))
    one = "/api/clients/{id}"
    cmds = "/api/clients/{id}/commands"
    resp = checker.check(api, "post", "/api/clients", "/api/clients", 201,
                         {"id": "pc-7", "name": "Desk 4",
                          "client_type": "desktop",
                          "metadata": {"site": "north"}})
    assert resp.json()["token"]
    checker.check(api, "post", "/api/clients", "/api/clients", 201,
                  {"name": "Desk 5", "client_type": "desktop"})
    checker.check(api, "post", "/api/clients", "/api/clients", 409,
                  {"id": "pc-7", "name": "again", "client_type": "desktop"})
    checker.check(api, "post", "/api/clients", "/api/clients", 400,
                  {"name": "no type"})
    resp = checker.check(api, "get", "/api/clients",
                         "/api/clients?limit=1", 200)
    checker.check(api, "get", "/api/clients", "/api/clients?cursor="
                  + resp.json()["next"], 200)
    checker.check(api, "get", "/api/clients", "/api/clients?limit=0", 400)
    ws = wh.RawWebSocket.open(checker.port, chan.token(sub="pc-7",
                              workspace=workspace_of(api)))
    try:
        checker.check(api, "get", one, "/api/clients/pc-7", 200)
        checker.check(api, "get", one, "/api/clients/nobody", 404)
        checker.check(api, "patch", one, "/api/clients/pc-7", 200,
                      {"metadata": None, "name": "Desk 4b"})
        checker.check(api, "patch", one, "/api/clients/pc-7", 400,
                      {"metadata": 5})
        checker.check(api, "patch", one, "/api/clients/nobody", 404,
                      {"name": "x"})
        checker.check(api, "put", one, "/api/clients/pc-7", 405, {})

        resp = checker.check(api, "post", cmds, "/api/clients/pc-7/commands",
                             202, {"command": "reboot", "ttl": 60,
                                   "idempotency_key": "k1"})
        sent = resp.json()["command_id"]
        assert resp.json()["status"] == "sent"
        checker.check(api, "post", cmds, "/api/clients/pc-7/commands", 200,
                      {"command": "reboot", "idempotency_key": "k1"})
        checker.check(api, "post", cmds, "/api/clients/pc-7/commands", 200,
                      {"command": "reboot"},
                      headers={"Idempotency-Key": "k1"})
        checker.check(api, "post", cmds, "/api/clients/pc-7/commands", 400,
                      {"command": "reboot", "idempotency_key": "k2"},
                      headers={"Idempotency-Key": "k1"})
        checker.check(api, "post", cmds, "/api/clients/pc-7/commands", 400,
                      {"command": "reboot", "priority": 10})
        checker.check(api, "post", cmds, "/api/clients/nobody/commands",
                      404, {"command": "reboot"})
        checker.check(api, "post", cmds, "/api/clients/pc-7/commands", 413,
                      raw=b'{"command":"x","payload":"' + b"x" * 300000
                      + b'"}')
        checker.check(api, "patch", cmds, "/api/clients/pc-7/commands", 405,
                      {})
        ack = ws.result(sent, result={"ok": True})
        assert ack["type"] == "command_result_accepted", ack
        resp = checker.check(api, "post", cmds, "/api/clients/pc-7/commands",
                             202, {"command": "later", "payload": {"a": 1}})
        pending = resp.json()["command_id"]

        checker.check(api, "get", cmds, "/api/clients/pc-7/commands"
                      "?status=completed,sent&limit=1", 200)
        resp = checker.check(api, "get", cmds, "/api/clients/pc-7/commands"
                             "?limit=1", 200)
        checker.check(api, "get", cmds, "/api/clients/pc-7/commands"
                      "?cursor=" + resp.json()["next"], 200)
        checker.check(api, "get", cmds, "/api/clients/pc-7/commands"
                      "?status=lost", 400)

        cmd = "/api/commands/{command_id}"
        resp = checker.check(api, "get", cmd, "/api/commands/" + sent, 200)
        assert resp.json()["result"] == {"ok": True}
        checker.check(api, "get", cmd, "/api/commands/c-none", 404)
        checker.check(api, "delete", cmd, "/api/commands/" + pending, 200)
        checker.check(api, "delete", cmd, "/api/commands/" + sent, 409)
        checker.check(api, "delete", cmd, "/api/commands/c-none", 404)
        checker.check(api, "post", cmd, "/api/commands/" + sent, 405, {})

        disc = "/api/clients/{id}/disconnect"
        resp = checker.check(api, "post", disc, "/api/clients/pc-7/disconnect",
                             200, {"retry_after": 600})
        assert resp.json()["disconnected"] == 1
        assert ws.wait_closed() == (4409, "retry_after=600")
        checker.check(api, "post", disc, "/api/clients/pc-7/disconnect",
                      200)
        checker.check(api, "post", disc, "/api/clients/pc-7/disconnect",
                      400, {"retry_after": -1})
        checker.check(api, "post", disc, "/api/clients/nobody/disconnect",
                      404)
        checker.check(api, "get", disc, "/api/clients/pc-7/disconnect", 405)
    finally:
        ws.close()
    checker.check(api, "delete", one, "/api/clients/pc-7", 200)
    checker.check(api, "delete", one, "/api/clients/pc-7", 404)
    checker.check(api, "post", "/api/clients", "/api/clients", 413,
                  raw=b'{"name":"' + b"n" * (1024 * 1024) + b'"}')


def test_jobs(checker):
    api = checker.api(chan.service_token(chan.unique("oa")))
    for cid in ("gw-1", "gw-2"):
        checker.check(api, "post", "/api/clients", "/api/clients", 201,
                      {"id": cid, "name": cid, "client_type": "gateway"})
    body = {"command": "firmware_update", "payload": {"v": 2},
            "target": {"clients": ["gw-1", "gw-2", "gw-9"]},
            "rollout": {"max_per_minute": 600},
            "abort": {"failure_percent": 10, "min_executed": 50},
            "ttl": 3600}
    job = checker.check(api, "post", "/api/jobs", "/api/jobs", 202,
                        body).json()
    assert job["targets"] == 2 and job["skipped"] == 1
    checker.check(api, "post", "/api/jobs", "/api/jobs", 400,
                  {"command": "x", "target": {"nobody": 1}})
    one = "/api/jobs/{job_id}"
    path = "/api/jobs/" + job["job_id"]
    checker.check(api, "get", "/api/jobs", "/api/jobs?status=in_progress",
                  200)
    checker.check(api, "get", one, path, 200)
    checker.check(api, "get", one, "/api/jobs/j-nope", 404)
    execs = checker.check(api, "get", one + "/executions",
                          path + "/executions?limit=1", 200).json()
    assert len(execs["items"]) == 1 and execs["next"] == "1"
    checker.check(api, "get", one + "/executions",
                  path + "/executions?status=nope", 400)
    checker.check(api, "post", one + "/retry", path + "/retry", 409)
    checker.check(api, "post", one + "/cancel", path + "/cancel", 200)
    checker.check(api, "post", one + "/cancel", path + "/cancel", 409)
    checker.check(api, "post", one + "/retry", path + "/retry", 202)

    # the workspace's commands, newest first, by issuer
    cmds = "/api/commands"
    first = checker.check(api, "post", "/api/clients/{id}/commands",
                          "/api/clients/gw-1/commands", 202,
                          {"command": "probe"}).json()
    checker.check(api, "post", "/api/clients/{id}/commands",
                  "/api/clients/gw-2/commands", 202, {"command": "probe"})
    page = checker.check(api, "get", cmds, cmds + "?limit=1", 200).json()
    assert page["items"][0]["client_id"] == "gw-2"
    assert page["items"][0]["issued_by"] == job["issued_by"]
    sub = job["issued_by"]["sub"]
    rest = checker.check(api, "get", cmds, cmds + "?issued_by=" + sub
                         + "&status=pending&since=2026-01-01T00:00:00Z"
                         "&cursor=" + page["next"], 200).json()
    assert [i["command_id"] for i in rest["items"]] == [first["command_id"]]
    assert rest["next"] is None
    checker.check(api, "get", cmds, cmds + "?since=soon", 400)


def workspace_of(api):
    return api.request("GET", "/api/stats").json()["workspace"]


@pytest.mark.lmdb_only("run-time sources answer 501 in cluster mode "
                       "(test_cluster checks that answer)")
def test_sources(checker):
    api = checker.api(chan.service_token(SRC_WS))
    one = "/api/sources/{id}"
    body = {"id": "dev1", "url": "ws://127.0.0.1:%d/ws" % wh.free_port(),
            "channel": "devices/dev1/{event}",
            "headers": {"Authorization": "Basic c2VjcmV0"}}
    resp = checker.check(api, "post", "/api/sources", "/api/sources", 201,
                         body)
    assert resp.json()["headers"] == ["Authorization"]
    checker.check(api, "post", "/api/sources", "/api/sources", 409, body)
    checker.check(api, "post", "/api/sources", "/api/sources", 400,
                  {"id": "x", "url": "http://h/", "channel": "c"})
    resp = checker.check(api, "get", "/api/sources", "/api/sources", 200)
    assert {s["id"] for s in resp.json()["items"]} == {"conf1", "dev1"}
    checker.check(api, "get", one, "/api/sources/dev1", 200)
    checker.check(api, "get", one, "/api/sources/nope", 404)
    checker.check(api, "delete", one, "/api/sources/conf1", 409)
    checker.check(api, "delete", one, "/api/sources/dev1", 200)
    checker.check(api, "delete", one, "/api/sources/dev1", 404)
    checker.check(checker.api(chan.token(workspace=SRC_WS)), "get",
                  "/api/sources", "/api/sources", 403)


def test_stats_health_metrics_and_auth(checker):
    api = checker.api(chan.service_token(chan.unique("oa")))
    resp = checker.check(api, "get", "/api/stats", "/api/stats", 200)
    assert resp.json()["mqtt"] == {"configured": False}
    checker.check(checker.api(chan.service_token("bad workspace")), "get",
                  "/api/stats", "/api/stats", 401)
    checker.check(checker.api(None), "get", "/api/stats", "/api/stats", 401)
    checker.check(checker.api(chan.token()), "get", "/api/stats",
                  "/api/stats", 403)
    checker.check(api, "get", "/api/stats", "/api/stats", 403,
                  headers={"X-Workspace-ID": "elsewhere"})
    checker.check(checker.api(None), "get", "/healthz", "/healthz", 200)
    resp = checker.api(None).request("GET", "/metrics")
    assert resp.status == 200
    checker.validate("get", "/metrics", resp)


def test_quota_and_rate_refusals(checker):
    msgs = "/api/channels/{channel}/messages"
    slow = checker.api(chan.service_token(SLOW))
    checker.check(slow, "post", msgs, "/api/channels/one/messages", 202,
                  {"data": 1})
    resp = checker.check(slow, "post", msgs, "/api/channels/one/messages",
                         429, {"data": 2})
    assert resp.json()["error"]["code"] == "rate_limited"
    assert resp.header("retry-after") == "1"
    api = checker.api(chan.service_token(TIGHT))
    checker.check(api, "post", msgs, "/api/channels/one/messages", 202,
                  {"data": 1})
    resp = checker.check(api, "post", msgs, "/api/channels/two/messages",
                         429, {"data": 3})
    assert resp.json()["error"]["code"] == "quota_exceeded"
    assert resp.header("retry-after") is None
    checker.check(api, "post", "/api/clients", "/api/clients", 201,
                  {"id": "a", "name": "A", "client_type": "desktop"})
    checker.check(api, "post", "/api/clients", "/api/clients", 429,
                  {"id": "b", "name": "B", "client_type": "desktop"})
    cmds = "/api/clients/{id}/commands"
    checker.check(api, "post", cmds, "/api/clients/a/commands", 202,
                  {"command": "one"})
    checker.check(api, "post", cmds, "/api/clients/a/commands", 429,
                  {"command": "two"})


def test_unavailable_while_wirehubd_is_down(checker, ngx, daemon):
    """503 with Retry-After on every operation that needs wirehubd; the
    document and /healthz (503 too) are still answered by nginx."""
    api = checker.api(chan.service_token(chan.unique("oa")), retry=True)
    daemon.terminate()
    try:
        chan.wait_health(ngx, 503)
        for tmpl, method, op in list(operations()):
            if "503" not in op["responses"] or tmpl == "/healthz":
                continue
            path = tmpl.format(channel="a/b", id="pc-1", command_id="c-1",
                               job_id="j-1")
            body = {"data": 1} if method in ("post", "patch") else None
            checker.check(api, method, tmpl, path, 503, body)
        checker.check(checker.api(None), "get", "/healthz", "/healthz", 503)
        resp = checker.check(checker.api(None), "get", "/api/openapi.json",
                             "/api/openapi.json", 200)
        assert resp.body == DOC_BYTES
    finally:
        daemon.start()
        chan.wait_health(ngx, 200, timeout=10)


def test_every_operation_was_exercised(checker):
    """Last: each (path, method) of the document answered at least once
    above, and every status the brief names was seen and validated."""
    done = {(t, m) for t, m, _ in checker.seen}
    missing = [(t, m) for t, m, _ in operations() if (t, m) not in done]
    assert not missing, missing
    statuses = {s for _, _, s in checker.seen}
    assert {200, 201, 202, 304, 400, 401, 403, 404, 405, 409, 413, 429,
            503} <= statuses, statuses
