"""The systemd units (conf/wirehubd.service, conf/wirehubd.socket; the
package installs the same files) and the socket activation they rely on:
wirehubd takes a listening socket passed as fd 3 with LISTEN_PID and
LISTEN_FDS (sd_listen_fds(3), read without libsystemd), serves nginx on
it, and leaves it in place across a restart.  systemd itself is not PID 1
in this container, so the units are checked with systemd-analyze and the
protocol with a hand-made handover and with systemd-socket-activate."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import chan
import wh

CONF = os.path.join(wh.ROOT, "conf")
DEBIAN = os.path.join(wh.ROOT, "debian")
MAN = os.path.join(wh.ROOT, "man")
UNITS = ("wirehubd.socket", "wirehubd.service")


def need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s is missing: scripts/deps.sh installs systemd"
                    % tool, pytrace=False)
    return path


def unit(name):
    """The unit as {section: {key: [values]}}: keys repeat in systemd's
    format, which configparser does not allow."""
    sections = {}
    current = None
    with open(os.path.join(CONF, name)) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


# ---------------------------------------------------------------- units


def test_debian_installs_the_same_units():
    for name in UNITS:
        assert os.path.realpath(os.path.join(DEBIAN, name)) == \
            os.path.join(CONF, name), name


def test_systemd_analyze_verify(tmp_path):
    """verify, with the man: links checked against man/ and ExecStart=
    pointing at the binary built here (it is not in /usr/sbin)."""
    need("systemd-analyze")
    mandir = tmp_path / "man"
    for page in os.listdir(MAN):
        section = page.rsplit(".", 1)[1]
        os.makedirs(mandir / ("man" + section), exist_ok=True)
        shutil.copy(os.path.join(MAN, page), mandir / ("man" + section))
    for name in UNITS:
        with open(os.path.join(CONF, name)) as f:
            text = f.read().replace("/usr/sbin/wirehubd", wh.WIREHUBD)
        (tmp_path / name).write_text(text)
    env = dict(os.environ, MANPATH=str(mandir))
    res = subprocess.run(["systemd-analyze", "verify"] +
                         ["./" + n for n in UNITS], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout + res.stderr) == (0, "")


def test_service_runs_apart_from_nginx_and_is_hardened():
    svc = unit("wirehubd.service")
    s = svc["Service"]
    assert (s["User"], s["Group"]) == (["wirehub"], ["wirehub"])
    assert "SupplementaryGroups" not in s
    assert "RuntimeDirectory" not in s, \
        "the socket unit owns /run/wirehub: RuntimeDirectory= would remove"\
        " the socket when the service stops"
    expected = {
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/wirehub",
        "ProtectKernelTunables": "true", "ProtectKernelModules": "true",
        "ProtectKernelLogs": "true", "ProtectControlGroups": "true",
        "PrivateDevices": "true", "PrivateTmp": "true",
        "NoNewPrivileges": "true",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "", "UMask": "0077",
        "LimitNOFILE": "65536",
    }
    for key, value in expected.items():
        assert s.get(key, [None])[0] == value, key
    assert "@system-service" in s["SystemCallFilter"]
    u = svc["Unit"]
    assert u["Requires"] == ["wirehubd.socket"]
    assert "wirehubd.socket" in u["After"][0].split()

    sock = unit("wirehubd.socket")
    k = sock["Socket"]
    assert k["ListenStream"] == ["/run/wirehub/wirehubd.sock"]
    assert (k["SocketUser"], k["SocketGroup"], k["SocketMode"]) == (
        ["wirehub"], ["www-data"], ["0660"])
    assert sock["Unit"]["Before"] == ["nginx.service"]
    assert sock["Install"]["WantedBy"] == ["sockets.target"]


def test_security_exposure(tmp_path):
    """systemd-analyze security: the service's exposure score stays low
    (1.4 when written; 10 is an unconfined service)."""
    need("systemd-analyze")
    text = open(os.path.join(CONF, "wirehubd.service")).read()
    (tmp_path / "wirehubd.service").write_text(
        text.replace("/usr/sbin/wirehubd", wh.WIREHUBD))
    res = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                          "--no-pager", "./wirehubd.service"],
                         cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    found = re.search(r"Overall exposure level for wirehubd.service: "
                      r"([0-9.]+)", res.stdout)
    assert found, res.stdout + res.stderr
    assert float(found.group(1)) <= 2.0, res.stdout


# ---------------------------------------------------------------- activation


def listening_socket(path, kind=socket.SOCK_STREAM, listen=True):
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    os.chmod(path, 0o660)
    if listen:
        s.listen(16)
    return s


class Activated(wh.Wirehubd):
    """wirehubd started the way systemd starts it from wirehubd.socket:
    the socket as fd 3, LISTEN_PID its own pid, LISTEN_FDS.  Its config's
    listen names another path, which must stay unused."""

    def __init__(self, tag):
        super().__init__(tag)
        self.activated = os.path.join(self.prefix, "activated.sock")

    def spawn(self, fd, env, listen_pid=None):
        """The process; fd becomes its fd 3.  listen_pid None: its own."""
        self.write_conf()

        def handover():
            os.dup2(fd, 3)
            for name, value in env.items():
                os.putenv(name, value)
            os.putenv("LISTEN_PID", str(listen_pid or os.getpid()))

        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [wh.WIREHUBD, "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=logf, stderr=logf, pass_fds=(3,), preexec_fn=handover)
        logf.close()
        return self.proc

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.read_log():
            if self.proc.poll() is not None and text not in self.read_log():
                raise AssertionError("wirehubd exited %d:\n%s" % (
                    self.proc.returncode, self.read_log()))
            assert time.monotonic() < deadline, self.read_log()
            time.sleep(0.02)


@pytest.fixture
def activated(request):
    if not os.path.exists(wh.WIREHUBD):
        pytest.fail("%s is missing: run `make daemon`" % wh.WIREHUBD,
                    pytrace=False)
    d = Activated("units-" + re.sub(r"[^a-z0-9]+", "-",
                                    request.node.name[-20:]))
    yield d
    d.stop()


def inherited_line(path):
    return "listening on unix:%s (inherited socket, fd 3; listen not " \
           "used)" % path


def test_inherited_socket_serves_nginx_across_a_restart(activated,
                                                        nginx_factory, keys):
    d = activated
    sock = listening_socket(d.activated)
    try:
        d.spawn(sock.fileno(), {"LISTEN_FDS": "1"})
        d.wait_log(inherited_line(d.activated))
        assert not os.path.exists(d.socket), "listen must not be bound"

        ngx = nginx_factory(http="wirehub_daemon unix:%s;\n%s" % (
            d.activated, wh.jwt_directives()), server=chan.SERVER,
            daemon=False)
        ngx.wait_link_up()
        api = wh.Api(ngx.port, chan.service_token())
        channel = chan.unique("units")
        assert chan.publish_ok(api, channel, {"n": 1})[0] == 1

        # stopped: the socket file stays (the manager's), and a worker
        # that connects meanwhile waits in the backlog, not refused
        before = chan.link_up_counts(ngx)
        assert wh.stop_process(d.proc, signal.SIGTERM, 10) == 0
        assert os.path.exists(d.activated)
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(d.activated)

        d.spawn(sock.fileno(), {"LISTEN_FDS": "1"})
        d.wait_log(inherited_line(d.activated))
        chan.wait_relinked(ngx, before)
        assert chan.publish_ok(api, channel, {"n": 2})[0] == 2
        ngx.assert_clean_log()
    finally:
        sock.close()


def test_listen_pid_of_another_process_is_not_ours(activated):
    """LISTEN_* left by a parent: ignored, listen is bound as usual."""
    d = activated
    sock = listening_socket(d.activated)
    try:
        d.spawn(sock.fileno(), {"LISTEN_FDS": "1"}, listen_pid=1)
        d.wait_log("listening on unix:%s, storage" % d.socket)
        assert "inherited" not in d.read_log()
    finally:
        sock.close()


@pytest.mark.parametrize("case, message", [
    ("two", "LISTEN_FDS=2: wirehubd takes exactly one socket"),
    ("tcp", "inherited fd 3 is not a Unix stream socket"),
    ("datagram", "inherited fd 3 is not a Unix stream socket"),
    ("unlistened", "inherited fd 3 is not listening"),
    ("file", "inherited fd 3 is not a socket"),
])
def test_what_is_not_one_listening_unix_socket_is_refused(activated, case,
                                                          message):
    d = activated
    env = {"LISTEN_FDS": "1"}
    if case == "two":
        obj = listening_socket(d.activated)
        env["LISTEN_FDS"] = "2"
    elif case == "tcp":
        obj = socket.socket()
        obj.bind(("127.0.0.1", 0))
        obj.listen(1)
    elif case == "datagram":
        obj = listening_socket(d.activated, socket.SOCK_DGRAM, listen=False)
    elif case == "unlistened":
        obj = listening_socket(d.activated, listen=False)
    else:
        obj = open(os.path.join(d.prefix, "not-a-socket"), "w")
    try:
        proc = d.spawn(obj.fileno(), env)
        assert proc.wait(10) == 1
        assert message in d.read_log()
        assert not os.path.exists(d.socket)
    finally:
        obj.close()
        d.proc = None


def test_systemd_socket_activate(activated):
    """systemd's own implementation of the handover: it binds, waits for
    the first connection, then execs wirehubd with the socket."""
    tool = need("systemd-socket-activate")
    d = activated
    d.write_conf()
    logf = open(d.log, "ab")
    d.proc = subprocess.Popen([tool, "-l", d.activated, wh.WIREHUBD, "-c",
                               d.conf], stdin=subprocess.DEVNULL,
                              stdout=logf, stderr=logf)
    logf.close()
    deadline = time.monotonic() + 10
    while not os.path.exists(d.activated):
        assert time.monotonic() < deadline and d.proc.poll() is None, \
            d.read_log()
        time.sleep(0.02)
    with socket.socket(socket.AF_UNIX) as first:
        first.connect(d.activated)
        d.wait_log(inherited_line(d.activated))
        d.wait_log("link: peer #1 connected (pid %d" % os.getpid())
    assert not os.path.exists(d.socket)
