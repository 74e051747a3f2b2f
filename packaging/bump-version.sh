#!/usr/bin/env bash
# Adds a changelog entry VERSION+next1 on top of debian/changelog: the
# packages `make deb-next` builds from the same source, so that
# `make test-deb` has a newer version to upgrade to.
#   packaging/bump-version.sh path/to/debian/changelog
set -euo pipefail

changelog=${1:?usage: bump-version.sh CHANGELOG}
version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$changelog")
{
    printf 'wirehub (%s+next1) unstable; urgency=medium\n\n' "$version"
    printf '  * Test upgrade: the same source as %s.\n\n' "$version"
    printf ' -- Wirehub maintainers <maintainers@wirehub.invalid>  %s\n\n' \
        "$(date -R)"
    cat "$changelog"
} > "$changelog.new"
mv "$changelog.new" "$changelog"
