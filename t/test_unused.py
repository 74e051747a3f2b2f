"""A loaded module that no location uses changes nothing: no phase
handler runs (nginx's own $request is left as the client sent it), while
$wirehub_request, when a log format asks for it, is still masked."""

import socket

import wh


TOKEN = wh.mint("HS256", wh.claims(sub="u-1"))

HTTP = """
log_format both '$request|$wirehub_request';
access_log {log} both;
"""

SERVER = """
location / { return 200 "plain\\n"; }
"""


def get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_module_loaded_but_unused(nginx_factory, tmp_path):
    log = str(tmp_path / "both.log")
    ngx = nginx_factory(http=HTTP.replace("{log}", log), server=SERVER,
                        daemon=False, tag="unused")
    path = "/x?token=%s" % TOKEN
    resp = get(ngx.port, path)
    assert resp.startswith(b"HTTP/1.1 200"), resp
    assert resp.endswith(b"plain\n"), resp

    # the access log is written before the connection closes
    raw, masked = open(log).read().strip().split("|")
    assert raw == "GET %s HTTP/1.1" % path
    assert masked == "GET /x?token=*** HTTP/1.1"
    assert TOKEN not in masked
