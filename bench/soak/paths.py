"""Puts t/ on sys.path: the soak drives the stack with the integration
tests' own helpers (t/wh.py, t/chan.py, t/test_mqtt.py's Broker), so a
change of the harness reaches the soak too."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
T_DIR = os.path.join(ROOT, "t")
BENCH_BUILD = os.path.join(ROOT, "build", "bench")

for _path in (T_DIR, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
