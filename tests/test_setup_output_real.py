"""`mailroom setup --apply` piped (not on a terminal): its table, with no log line in it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mailroom_dev.realserver import Account


@pytest.mark.real
def test_setup_apply_piped_prints_its_table_without_a_json_line(account: Account) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    done = subprocess.run(  # `mailroom setup --apply 2>&1 | less`: one pipe, no tty
        [sys.executable, "-m", "mailroom", "setup", "--apply"],
        env={**base, **account.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout
    assert [line for line in lines if line.lstrip().startswith("{")] == []
    assert "Applied: 25 created, 0 exist, 0 failed." in lines
    assert any(line.startswith("  sieve    mailroom-rules") for line in lines)


@pytest.mark.real
def test_a_configured_log_level_still_logs(account: Account) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "setup", "--apply"],
        env={**base, **account.env(), "MAILROOM_LOG_LEVEL": "debug"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"event": "sieve_installed"' in done.stderr  # asked for: given
