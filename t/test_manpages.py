"""The man pages in man/: they format without a warning (groff -ww, and
man -l as a reader runs them), the package installs each, and each still
names what it documents (every wirehubctl command, every wirehubd.conf
directive)."""

import os
import re
import shutil
import subprocess

import pytest

import wh

pytestmark = pytest.mark.nosan      # groff and man only

MAN = os.path.join(wh.ROOT, "man")
PAGES = ("wirehubd.8", "wirehubd.conf.5", "wirehubctl.1")


def need(tool):
    if shutil.which(tool) is None:
        pytest.fail("%s is missing: scripts/deps.sh installs groff-base and "
                    "man-db" % tool, pytrace=False)


@pytest.mark.parametrize("page", PAGES)
def test_groff_without_warnings(page):
    need("groff")
    res = subprocess.run(["groff", "-ww", "-z", "-man", "-Tutf8",
                          os.path.join(MAN, page)], capture_output=True,
                         text=True, timeout=30)
    assert (res.returncode, res.stderr) == (0, "")


@pytest.mark.parametrize("page", PAGES)
def test_man_renders_it(page):
    need("man")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    res = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, page)],
                         capture_output=True, text=True, timeout=30, env=env)
    assert (res.returncode, res.stderr) == (0, "")
    name, section = page.rsplit(".", 1)
    head = res.stdout.splitlines()[0]
    assert head.startswith("%s(%s)" % (name.upper(), section)), head
    assert "\nNAME\n       %s - " % name in res.stdout
    # a stray quote or an unclosed font escape shows in the text
    assert '"\n' not in res.stdout and "\\f" not in res.stdout


def test_the_package_installs_them():
    with open(os.path.join(wh.ROOT, "debian", "wirehubd.manpages")) as f:
        listed = f.read().split()
    assert sorted(listed) == sorted("man/" + p for p in PAGES)


def test_wirehubctl_page_names_every_command():
    text = open(os.path.join(MAN, "wirehubctl.1")).read()
    res = subprocess.run(["/usr/bin/python3",
                          os.path.join(wh.ROOT, "tools", "wirehubctl"),
                          "--help"], capture_output=True, text=True)
    commands = re.search(r"\{([a-z,-]+)\}", res.stdout) or re.findall(
        r"^    ([a-z-]+)  ", res.stdout, re.M)
    assert commands, res.stdout
    for command in commands:
        assert re.search(r"^\.B %s\b" % command.replace("-", r"\\-"), text,
                         re.M), command


def test_conf_page_names_every_directive():
    doc = open(os.path.join(wh.ROOT, "docs", "wirehubd.conf.md")).read()
    page = open(os.path.join(MAN, "wirehubd.conf.5")).read()
    directives = [d for d in re.findall(r"^## (\w+)$", doc, re.M)
                  if d not in ("Syntax", "Signals")]
    assert len(directives) == 13, directives
    for d in directives:
        assert re.search(r'^\.B[IR]? "?%s\b' % d, page, re.M), d
