"""A real application for the backend-hook tests (test_hooks.py,
test_migrating.py): an HTTP server in a thread of the test that records
every request and answers with answer(path, headers, body) ->
(status, content type, body bytes)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend:
    def __init__(self, answer):
        self.requests = []
        self.cond = threading.Condition()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with backend.cond:
                    backend.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v
                                    for k, v in self.headers.items()},
                        "raw_headers": str(self.headers),
                        "body": body,
                    })
                    backend.cond.notify_all()
                status, ctype, out = answer(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def wait_requests(self, pred, count, timeout=5.0):
        """The recorded requests that satisfy pred, once there are count
        of them."""
        with self.cond:
            got = []

            def enough():
                got[:] = [r for r in self.requests if pred(r)]
                return len(got) >= count
            assert self.cond.wait_for(enough, timeout), \
                "the application saw %d of %d requests" % (len(got), count)
            return list(got)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
