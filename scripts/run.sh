#!/usr/bin/env bash
# run.sh -- `make run`: mailroom against your account, or a local demo without one.
#
# With MAILROOM_JMAP_TOKEN (and the CardDAV credentials) in the environment it runs the
# service (`mailroom run`: listener, worker and health under supervisord). Without it,
# it runs `mailroom demo`: a throwaway Cyrus on 127.0.0.1 (ports 8008, 8143, 8024 unless
# CYRUS_PEER_*_PORT say otherwise; state in /tmp/mailroom-demo or MAILROOM_DEMO_DIR) with
# Sieve on, mail delivered over LMTP so its routing rules run, and a sender to triage.
# The first demo run installs Cyrus's Debian packages and builds it with push (root,
# 2-3 minutes, once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test.sh install
if [ -n "${MAILROOM_JMAP_TOKEN:-}" ]; then
    exec .venv/bin/mailroom run
fi
echo "run.sh: MAILROOM_JMAP_TOKEN is not set: starting the local demo (see README.md)" >&2
exec .venv/bin/mailroom demo "$@"
