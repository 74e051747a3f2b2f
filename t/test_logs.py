"""wirehubd's log: `log ... format=json` writes one JSON object per line,
and under journald (stderr is the stream JOURNAL_STREAM names) lines
carry a "<N>" priority instead of wirehubd's own time (worker/log.c,
docs/wirehubd.conf.md "log")."""

import json
import os
import re

from test_daemon import Daemon, check_config

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_format_json_to_a_file(tmp_path):
    d = Daemon(tmp_path)
    conf = d.conf.read_text().replace("debug;", "debug format=json;")
    d.conf.write_text(conf)
    d.start()
    link = d.link()
    link.close()
    assert d.stop() == 0

    lines = d.logtext().splitlines()
    assert len(lines) >= 3
    objs = [json.loads(line) for line in lines]
    for o in objs:
        assert set(o) <= {"time", "level", "pid", "component", "msg"}
        assert ISO.match(o["time"]), o
        assert o["level"] in ("debug", "info", "warn", "error")
        assert o["pid"] == objs[0]["pid"]
        assert o["msg"] and not o["msg"].startswith(" ")
    peers = [o for o in objs if o.get("component") == "link"
             and '"pytest/1"' in o["msg"]]
    assert len(peers) == 1, objs
    assert peers[0]["level"] == "info"
    assert peers[0]["msg"].startswith("peer #")
    assert any(o["msg"].startswith("signal 15") for o in objs), objs


def run_on_stderr(tmp_path, log_line, journal):
    """wirehubd with `log stderr ...`, its stderr a file, JOURNAL_STREAM
    naming that file (journal=True) or another one; returns the lines"""
    d = Daemon(tmp_path)
    d.conf.write_text(re.sub(r"(?m)^log .*$", log_line,
                             d.conf.read_text()))
    err_path = tmp_path / "stderr.log"
    other = tmp_path / "other"
    err_path.write_text("")
    other.write_text("")
    st = os.stat(err_path if journal else other)
    d.start(env=dict(os.environ,
                     JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino)))
    d.link().close()
    assert d.stop() == 0
    return err_path.read_text().splitlines()


def test_journald_gets_priorities_not_timestamps(tmp_path):
    lines = run_on_stderr(tmp_path, "log stderr debug;", journal=True)
    assert lines
    for line in lines:
        assert re.match(r"^<[3467]>\S", line), line
        assert not re.search(r"\d{4}-\d\d-\d\dT", line), line
        assert "[info]" not in line and "[debug]" not in line
    assert any(line.startswith('<6>link: peer #') for line in lines), lines
    assert "<6>signal 15: shutting down" in lines


def test_journal_stream_of_another_file_is_ignored(tmp_path):
    lines = run_on_stderr(tmp_path, "log stderr info;", journal=False)
    assert lines
    for line in lines:
        assert re.match(r"^\d{4}-\d\d-\d\dT\S+Z \[(info|warn|error)\] "
                        r"\d+: ", line), line


def test_json_under_journald(tmp_path):
    lines = run_on_stderr(tmp_path, "log stderr info format=json;",
                          journal=True)
    assert lines
    for line in lines:
        assert re.match(r"^<[346]>\{", line), line
        o = json.loads(line[3:])
        assert {"level", "msg", "time", "pid"} <= set(o)


def test_log_config(tmp_path):
    for text in ("log stderr format=json;\n", "log stderr info format=text;\n",
                 "log /tmp/x.log format=json warn;\n"):
        rc, err, _ = check_config(tmp_path, text)
        assert rc == 0, (text, err)
    for text, what in (("log stderr format=xml;\n", 'unknown log format "xml"'),
                       ("log stderr info json;\n", 'unknown log level "json"'),
                       ("log stderr info format=json debug warn;\n",
                        "takes a target")):
        rc, err, conf = check_config(tmp_path, text)
        assert rc == 1, text
        assert err.startswith("wirehubd: %s:1: " % conf), err
        assert what in err, err
