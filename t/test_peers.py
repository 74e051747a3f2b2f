"""Who may use the link: `listen unix:PATH ... peers=USER[,USER]`.

wirehubd reads each peer's uid (SO_PEERCRED) at accept and closes a peer
whose uid is not accepted before it reads or answers anything, logging
each such uid once.  The tests run as root: the refused peer is a child
process that became `nobody`, on a socket made 0666 for it."""

import os
import pwd
import socket

import pytest

import chan
import wh
from test_daemon import HELLO, WELCOME, check_config, decode, encode

NOBODY = pwd.getpwnam("nobody")


class PeersDaemon(chan.Daemon):
    """wirehubd whose listen line has the parameters given; its prefix
    can be traversed by anyone (the socket's mode decides)."""

    def __init__(self, tag, params):
        super().__init__(tag)
        self.params = params
        os.chmod(self.prefix, 0o711)

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write("listen unix:%s %s;\nstorage %s map_size=64m;\n"
                    "history %s;\nlog stderr info;\n"
                    % (self.socket, self.params, self.storage, self.history))

    def refusals(self, uid):
        return self.read_log().count("link: peer refused: uid %d " % uid)


def hello_as(path, user=None):
    """Connects as user (a pwd entry; None: this process), sends HELLO
    and reads until the daemon closes or 3 s pass: "welcome" if the first
    frame was WELCOME, "closed" if the daemon closed without a byte,
    else what happened."""
    if user is None:
        return _hello(path)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            result = _hello(path)
        except BaseException as e:
            result = "error: %r" % e
        os.write(w, result.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        result = f.read().decode()
    os.waitpid(pid, 0)
    return result


def _hello(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(path)
        try:
            s.sendall(encode(HELLO, status=wh.LINK_VERSION,
                             count=os.getpid(), name="peer/1"))
        except OSError:
            pass
        data = b""
        try:
            while len(data) < 5:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            return "open after 3 s"
        if not data:
            return "closed"
        return "welcome" if decode(data[4:])["type"] == WELCOME else \
            "frame %r" % data[:16]
    finally:
        s.close()


@pytest.fixture(scope="module")
def listed():
    d = PeersDaemon("peers", "mode=0666 peers=root")
    d.start()
    yield d
    d.stop()


def test_listed_peer_accepted_other_refused_once(listed, nginx_factory,
                                                 keys):
    # nginx's workers run as root: listed
    ngx = chan.start_nginx(nginx_factory, listed, tag="peers")
    api = wh.Api(ngx.port, chan.service_token(chan.unique("peers")))
    assert api.publish("a", {"n": 1}).status == 202

    assert hello_as(listed.socket, NOBODY) == "closed"
    assert hello_as(listed.socket, NOBODY) == "closed"
    assert hello_as(listed.socket, NOBODY) == "closed"
    assert listed.refusals(NOBODY.pw_uid) == 1, listed.read_log()
    # nginx's link was never disturbed
    assert api.publish("a", {"n": 2}).status == 202


@pytest.mark.parametrize("tag,params,nobody", [
    # default: root, wirehubd's own uid (root here) and the users whose
    # primary group is the socket's group
    ("default", "mode=0666", "closed"),
    ("group", "mode=0666 group=nogroup", "welcome"),
    ("names", "mode=0666 peers=root,nobody", "welcome"),
    ("uid", "mode=0666 peers=%d" % NOBODY.pw_uid, "welcome"),
])
def test_who_is_accepted(tag, params, nobody):
    d = PeersDaemon("peers-" + tag, params)
    d.start()
    try:
        assert hello_as(d.socket, NOBODY) == nobody
        root = "closed" if params.endswith("peers=%d" % NOBODY.pw_uid) \
            else "welcome"
        assert hello_as(d.socket) == root
        assert d.refusals(NOBODY.pw_uid) == (nobody == "closed")
    finally:
        d.stop()


@pytest.mark.parametrize("text,what", [
    ("listen unix:/tmp/x.sock peers=no-such-user-here;\n",
     'unknown user "no-such-user-here" in peers'),
    ("listen unix:/tmp/x.sock peers=;\n", "invalid peers"),
    ("listen unix:/tmp/x.sock peers=root,,nobody;\n", "invalid peers"),
])
def test_peers_config_errors(tmp_path, text, what):
    rc, err, conf = check_config(tmp_path, text)
    assert rc != 0
    assert err.startswith("wirehubd: %s:1: " % conf), err
    assert what in err, err
