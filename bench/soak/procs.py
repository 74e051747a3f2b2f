"""The soak's client processes (subscribers.py, agents.py) and how the
coordinator talks to them: a JSON spec on the child's stdin, then one
word per line ("FINISH {...}", "STOP"); the child answers with lines
"WORD {json}" on stdout.  Tracebacks go to a file per child.  Also the
latency histogram both sides share."""

import json
import math
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


class Child:
    def __init__(self, script, spec, errlog):
        self.name = os.path.basename(errlog)
        self.errlog = errlog
        with open(errlog, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, script)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.send(json.dumps(spec))

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, word, timeout):
        """The JSON after WORD on the child's next line; AssertionError
        (with the child's stderr) on anything else or on timeout."""
        got = {}
        reader = threading.Thread(
            target=lambda: got.update(line=self.proc.stdout.readline()),
            daemon=True)
        reader.start()
        reader.join(timeout)
        line = got.get("line", b"").decode(errors="replace")
        if not line.startswith(word + " "):
            raise AssertionError("%s said %r, not %s; stderr:\n%s" % (
                self.name, line[:200], word, tail(self.errlog)))
        return json.loads(line[len(word) + 1:])

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def tail(path, size=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def say(word, doc):
    """A child's answer line."""
    sys.stdout.write("%s %s\n" % (word, json.dumps(doc)))
    sys.stdout.flush()


# -------------------------------------------------- latency histogram

# log buckets 5% wide from 0.1 ms: a percentile read from them is within
# 5% of the exact one, and a process sends a few hundred counters, not
# every sample
BASE_MS = 0.1
STEP = math.log(1.05)


def bucket(ms):
    return int(math.log(max(ms, BASE_MS) / BASE_MS) / STEP)


def bucket_ms(b):
    """The upper bound of bucket b."""
    return BASE_MS * math.exp((b + 1) * STEP)


def merge(into, hist):
    """Adds a histogram ({bucket: count}, keys as str after JSON)."""
    for b, n in hist.items():
        into[int(b)] = into.get(int(b), 0) + n
    return into


def percentile(hist, p):
    total = sum(hist.values())
    if not total:
        return None
    want = p / 100.0 * total
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= want:
            return round(bucket_ms(b), 2)
    return round(bucket_ms(max(hist)), 2)
