#!/usr/bin/env bash
# run.sh -- `make run`: mailroom against your account, or a local demo without one.
#
# With a JMAP token configured -- MAILROOM_JMAP_TOKEN (or _FILE) in the environment or
# in ./.env, the one place for the credentials (mode 0600; see README.md) -- it runs the
# service (`mailroom run`: listener, worker and health under supervisord, each reading
# the same .env). `mailroom config --has-account` decides, with mailroom's own .env
# reader. Without a token it runs `mailroom demo`: a throwaway Cyrus on 127.0.0.1
# (ports 8008, 8143, 8024 unless CYRUS_PEER_*_PORT say otherwise; state in
# /tmp/mailroom-demo or MAILROOM_DEMO_DIR) with Sieve on, mail delivered over LMTP so
# its routing rules run, and a sender to triage. The first demo run installs Cyrus's
# Debian packages and builds it with push (root, 2-3 minutes, once).
# MAILROOM_RUN_DRY=1 prints the command instead of running it (for the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test.sh install
status=0
.venv/bin/mailroom config --has-account || status=$?
run() {
    if [ -n "${MAILROOM_RUN_DRY:-}" ]; then echo "$*"; exit 0; fi
    exec "$@"
}
case $status in
    0) run .venv/bin/mailroom run ;;
    1) echo "run.sh: no JMAP token (MAILROOM_JMAP_TOKEN, here or in .env): starting the local demo (see README.md)" >&2
       run .venv/bin/mailroom demo "$@" ;;
    *) exit "$status" ;;  # a .env mailroom refuses (open to others): its message is above
esac
