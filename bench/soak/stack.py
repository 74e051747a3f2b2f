"""The stack a soak runs against, started here in a temporary prefix on
free loopback ports: mosquitto (t/test_mqtt.py's Broker), wirehubd on
LMDB (chan.Daemon: kill -9 and restart on the same storage) and nginx
with 2 workers and build/'s module (chan.start_nginx).  Also what the
soak measures of it: RSS and open descriptors per process."""

import os
import pathlib
import re
import shutil
import signal
import tempfile
import time

import paths  # noqa: F401  (t/ on sys.path)
import chan
import wh
from test_mqtt import Broker

WORKSPACE = wh.WORKSPACE
TOPIC = "soak/+/data"
LEVEL_RE = re.compile(r" \[(\w+)\] ", re.M)


def channel_name(i):
    return "soak/%d" % i


def topic_name(i):
    return "soak/%d/data" % i


class SoakDaemon(chan.Daemon):
    """chan.Daemon with a map large enough for a long run's history and
    commands (the test default, 64 MiB, is sized for a test module)."""

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write("listen unix:%s;\n"
                    "storage %s map_size=1g;\n"
                    "history %s;\n"
                    "log stderr info;\n%s" % (self.socket, self.storage,
                                             self.history, self.extra))


def daemon_extra(broker_port):
    # QoS 1 ingest, no rate rule: every MQTT message becomes a channel
    # message, so each one can be accounted for
    return ("mqtt host=127.0.0.1 port=%d client_id=wirehubd-soak "
            "keepalive=5 reconnect_min=100ms reconnect_max=1s qos=1;\n"
            "ingest %s workspace=%s channel=soak/{1} type=reading;\n"
            # commands outlive any outage of the run: none may fail
            # for want of attempts or time
            "commands ttl=1h ack_timeout=5s max_attempts=50;\n"
            % (broker_port, TOPIC, WORKSPACE))


def nginx_factory(http="", server="", daemon=False, tag=None):
    """What chan.start_nginx expects of the test fixture: a started
    wh.Nginx (2 workers) with these http and server blocks."""
    return wh.Nginx(tag or "soak", http=http, server=server).start()


class Stack:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tmp = tempfile.mkdtemp(prefix="wh-soak-")
        self.broker = None
        self.daemon = None
        self.ngx = None

    def start(self):
        self.broker = Broker(pathlib.Path(self.tmp)).start()
        self.daemon = SoakDaemon(
            "soak", history="length=%d ttl=24h" % self.cfg.history_length(),
            extra=daemon_extra(self.broker.port))
        self.daemon.start()
        self.ngx = chan.start_nginx(nginx_factory, self.daemon, tag="soak")
        return self

    @property
    def port(self):
        return self.ngx.port

    @property
    def rport(self):
        """The reuseport listener: connections spread over both
        workers."""
        return self.ngx.rport

    def kill_daemon(self):
        """kill -9, SOAK_DOWN seconds dead, restart on the same storage,
        until both workers relinked; returns the timings."""
        before = chan.link_up_counts(self.ngx)
        t0 = time.time()
        self.daemon.kill9()
        time.sleep(self.cfg.down)
        self.daemon.start()
        t1 = time.time()
        chan.wait_relinked(self.ngx, before, timeout=30)
        return {"t": t0, "down_s": round(t1 - t0, 3),
                "relinked_s": round(time.time() - t0, 3)}

    def reload_nginx(self):
        """HUP; until the old workers are gone and the new ones linked."""
        old = set(self.ngx.workers())
        t0 = time.time()
        self.ngx.reload()
        deadline = time.monotonic() + 30
        while set(self.ngx.workers()) & old or len(self.ngx.workers()) < 2:
            if time.monotonic() > deadline:
                raise AssertionError("old nginx workers linger after HUP")
            time.sleep(0.05)
        self.ngx.wait_link_up(timeout=15)
        return {"t": t0, "done_s": round(time.time() - t0, 3)}

    def usage(self):
        """RSS and descriptors of the nginx workers (summed), the nginx
        master and wirehubd."""
        return {
            "nginx_workers": group_usage(self.ngx.workers()),
            "nginx_master": group_usage([self.ngx.proc.pid]),
            "wirehubd": group_usage([self.daemon.pid]
                                    if self.daemon.alive() else []),
        }

    def log_problems(self):
        """Lines that fail a soak: nginx at alert/crit/emerg or a worker
        that died of a signal, wirehubd at error.  (A kill -9 makes
        nginx warn that the link was lost: that is expected.)"""
        bad = []
        for line in self.ngx.read_error_log().splitlines():
            if any(lvl in line for lvl in ("[alert]", "[crit]", "[emerg]")) \
                    or "exited on signal" in line:
                bad.append("nginx: " + line[:300])
        for line in self.daemon.read_log().splitlines():
            if "[error]" in line:
                bad.append("wirehubd: " + line[:300])
        return bad

    def log_levels(self):
        """How many lines each log has per level, for the summary."""
        out = {}
        for name, text in (("nginx", self.ngx.read_error_log()),
                           ("wirehubd", self.daemon.read_log())):
            counts = {}
            for level in LEVEL_RE.findall(text):
                counts[level] = counts.get(level, 0) + 1
            out[name] = counts
        return out

    def stop(self, save_dir=None):
        """Stops what started (by pid), keeps the logs in save_dir."""
        if self.ngx is not None:
            try:
                self.ngx.stop(timeout=20)
            finally:
                self.keep(self.ngx.error_log, save_dir, "nginx-error.log")
                shutil.rmtree(self.ngx.prefix, ignore_errors=True)
        if self.daemon is not None:
            if self.daemon.alive():
                wh.stop_process(self.daemon.proc, signal.SIGTERM, 10)
            self.keep(self.daemon.log, save_dir, "wirehubd.log")
            shutil.rmtree(self.daemon.prefix, ignore_errors=True)
        if self.broker is not None:
            self.broker.stop()
            self.keep(str(self.broker.log), save_dir, "mosquitto.log")
        shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def keep(src, save_dir, name):
        if save_dir and os.path.exists(src):
            shutil.copyfile(src, os.path.join(save_dir, name))


def proc_usage(pid):
    """{rss_kib, anon_kib, fds, age_s} of one process, None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/stat" % pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    kib = lambda key: int(status.get(key, "0 kB").split()[0])  # noqa: E731
    return {"rss_kib": kib("VmRSS"), "anon_kib": kib("RssAnon"),
            "fds": fds,
            "age_s": round(uptime - start / os.sysconf("SC_CLK_TCK"), 1)}


def group_usage(pids):
    """The sum over pids, and each pid's own figures."""
    per = {}
    for pid in pids:
        u = proc_usage(pid)
        if u is not None:
            per[str(pid)] = u
    total = {"rss_kib": 0, "anon_kib": 0, "fds": 0}
    for u in per.values():
        for key in total:
            total[key] += u[key]
    total["procs"] = len(per)
    total["each"] = per
    return total
