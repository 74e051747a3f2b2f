# Sourced by the package and container tests (packaging/test-deb-machine.sh,
# docker/test-docker.sh): numbered checks that go on after a failure and
# show what the failing command printed. The caller sets $tmp (a
# directory) and reads $checks and $failures at the end.

checks=0
failures=0

ok() {
    checks=$((checks + 1))
    echo "ok: $*"
}

fail() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    echo "FAIL: $*"
}

# check WHAT COMMAND...: COMMAND succeeds
check() {
    local what=$1
    shift
    if "$@" > "$tmp/out" 2>&1; then
        ok "$what"
    else
        fail "$what"
        sed 's/^/    /' "$tmp/out"
    fi
}

# check_not WHAT COMMAND...: COMMAND fails
check_not() {
    local what=$1
    shift
    if "$@" > "$tmp/out" 2>&1; then
        fail "$what"
        sed 's/^/    /' "$tmp/out"
    else
        ok "$what"
    fi
}

# a condition that becomes true soon (a unit or a container starting):
# up to ${EVENTUALLY_S:-10} s
eventually() {
    local i
    for i in $(seq $((${EVENTUALLY_S:-10} * 10))); do
        if "$@" > /dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    "$@"
}
