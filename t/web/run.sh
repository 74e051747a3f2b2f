#!/usr/bin/env bash
# The web tests in one command: installs what is missing (deps.sh), then
# runs the Node unit tests of web/wirehub.js and the browser test of the
# dashboard against a real nginx + wirehubd (t/test_web.py starts them;
# build them first with `make`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

"$here/deps.sh"
cd "$top"
exec /usr/bin/python3 -m pytest -q t/test_web.py "$@"
