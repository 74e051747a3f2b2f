#!/usr/bin/env bash
# What the web tests need, installed only when missing (idempotent):
# Debian's chromium for the browser test, and playwright-core from npm
# into t/web/node_modules exactly as package-lock.json pins it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

top=$(cd "$here/../.." && pwd)
pkgs=(chromium)
# node and npm may come from another repository (nodesource): only when
# there is none at all does Debian's package come in
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    pkgs+=(nodejs npm)
fi
"$top/scripts/apt-missing.sh" "web deps" "${pkgs[@]}"

# npm ci again only when the lock file changed since the last install
stamp=$here/node_modules/.wirehub-package-lock.json
if [ ! -f "$stamp" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
    echo "web deps: npm ci in $here"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$stamp"
fi
