"""pytest fixtures: a real nginx with the Wirehub module (and wirehubd when
built) per test module.  The harness builds nothing: `make test` does."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wh  # noqa: E402

RUNNING_NGINX = []


def require_module():
    if not os.path.exists(wh.MODULE_SO):
        pytest.fail("%s is missing: run `make module` (or `make test`, "
                    "which builds everything first)" % wh.MODULE_SO,
                    pytrace=False)


def require_keys(names):
    missing = [n for n in names if not os.path.exists(wh.key_path(n))]
    if missing:
        pytest.fail("test keys missing under %s: %s" % (
            wh.KEYS, ", ".join(missing)), pytrace=False)


def module_tag(request):
    name = request.module.__name__.rsplit(".", 1)[-1]
    return name.replace("test_", "")


class DaemonHandle:
    """wirehubd for one test module, started on first use, and only when
    build/wirehubd exists (until the link lands the module ignores
    wirehub_daemon; once it requires it, the binary is built by make)."""

    def __init__(self, tag):
        self.tag = tag
        self.daemon = None

    @property
    def available(self):
        return os.path.exists(wh.WIREHUBD)

    def ensure(self):
        if self.daemon is None:
            self.daemon = wh.Wirehubd(self.tag)
            self.daemon.start()
        return self.daemon

    def socket_path(self):
        if self.available:
            return self.ensure().socket
        return None

    def stop(self):
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None


@pytest.fixture(scope="module")
def wirehubd(request):
    handle = DaemonHandle(module_tag(request))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def nginx_factory(request, wirehubd):
    """start(http=..., server=..., main=..., daemon=True, tag=...) ->
    running wh.Nginx; everything it started is stopped at module end."""
    require_module()
    started = []
    base = module_tag(request)

    def start(http="", server="", main="", daemon=True, tag=None):
        sock = None
        if daemon:
            sock = wirehubd.socket_path()
            if sock is None:
                sock = "/nonexistent/wirehub-test/wirehubd.sock"
        name = "%s-%d" % (tag or base, len(started))
        ngx = wh.Nginx(name, http=http, server=server,
                       daemon_socket=sock, main=main)
        started.append(ngx)
        RUNNING_NGINX.append(ngx)
        return ngx.start()

    yield start
    errors = []
    for ngx in started:
        try:
            ngx.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            RUNNING_NGINX.remove(ngx)
            ngx.cleanup()
    if errors:
        pytest.fail("nginx did not stop gracefully: " + "; ".join(errors))


@pytest.fixture(scope="module")
def keys():
    require_keys(["hs256.secret", "rsa.pem", "rsa.pub.pem", "ec256.pem",
                  "ec256.pub.pem"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for ngx in RUNNING_NGINX:
            rep.sections.append(("nginx %s error.log (tail)" % ngx.tag,
                                 wh.tail(ngx.error_log)))


def pytest_collection_modifyitems(config, items):
    """WIREHUB_ENGINE=redis skips what only the LMDB engine has (its
    files, its map figures), each with the reason its marker gives."""
    if wh.ENGINE == "lmdb":
        return
    for item in items:
        mark = item.get_closest_marker("lmdb_only")
        if mark is not None:
            item.add_marker(pytest.mark.skip(
                reason="LMDB engine only: " + mark.args[0]))
