#!/usr/bin/env bash
# test.sh -- mailroom's one test command (`make test`), from nothing on Debian.
#
# Usage:  scripts/test.sh install        .venv + `pip install -e '.[dev]' -e ./dev`
#                                        (mailroom, its dev tools, and the test/bench
#                                        harness mailroom_dev from dev/pyproject.toml)
#         scripts/test.sh lint           install, then ruff check, ruff format --check, mypy
#         scripts/test.sh test [ARGS..]  install, lint, then pytest ARGS
#
# Needs python3 >= 3.11. As root on a bare Debian it apt-get installs python3-venv
# if venv is missing; the test fixtures install and start the Cyrus test server
# themselves (dev/cyrus/start.sh, a one-time build of ~1-2 min on first use).
# Every step runs even when an earlier one fails; the exit code is non-zero if
# any failed, and pytest finding no tests (exit 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MAILROOM_VENV:-.venv}"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'test.sh: ERROR: %s\n' "$*" >&2; exit 1; }

apt_install() {
    [ "$(id -u)" = 0 ] || die "missing $*; install it (as root: apt-get install $*)"
    say "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@" >&2 \
        || { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 \
             && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@" >&2; } \
        || die "apt-get install $* failed"
}

make_venv() {
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "python3 is $(python3 -V 2>&1); mailroom needs 3.11 or newer"
    say "creating $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
}

install() {
    [ -x "$PY" ] || make_venv
    # reinstall only when a pyproject.toml changed since the last successful install
    local stamp="$VENV/.mailroom-installed" want
    want="$(cat pyproject.toml dev/pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "pip install -e '.[dev]' -e ./dev"
        "$PY" -m pip install -qq -e '.[dev]' -e ./dev >&2 \
            || die "pip install -e '.[dev]' -e ./dev failed"
        echo "$want" > "$stamp"
    fi
}

FAILED=()
step() {   # name command... : run it, remember a failure, go on
    local name="$1"; shift
    say "$name"
    local rc=0
    "$@" || rc=$?
    [ "$rc" = 0 ] || FAILED+=("$name (exit $rc)")
    return 0
}

lint() {
    step "ruff check" "$VENV/bin/ruff" check mailroom tests bench dev
    step "ruff format --check" "$VENV/bin/ruff" format --check mailroom tests bench dev
    step "mypy" "$VENV/bin/mypy"
}

# Tests run in parallel (pytest-xdist), each worker process with a Cyrus of its own
# (tests/conftest.py): most of a real-server test is waiting on the server, so more
# workers than cores pays. MAILROOM_TEST_JOBS sets how many (0: one process, no xdist);
# an explicit -n in ARGS wins, being later on the line.
run_pytest() {
    local rc=0
    "$PY" -m pytest -n "${MAILROOM_TEST_JOBS:-4}" "$@" || rc=$?
    [ "$rc" = 5 ] && say "pytest collected no tests (exit 5): that is a failure"
    return "$rc"
}

finish() {
    if [ ${#FAILED[@]} -gt 0 ]; then
        printf 'test.sh: FAILED: %s\n' "${FAILED[@]}" >&2
        exit 1
    fi
    say "all steps passed"
}

cmd="${1:-test}"
[ $# -gt 0 ] && shift
case "$cmd" in
    install) install ;;
    lint) install; lint; finish ;;
    test) install; lint; step "pytest" run_pytest "$@"; finish ;;
    *) die "unknown command '$cmd' (install, lint or test)" ;;
esac
