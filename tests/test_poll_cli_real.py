"""`mailroom poll` as a user runs it: bad input gets one clear line, and no secret."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from mailroom.triage.parking import PARK_AFTER
from mailroom.triage.strikes import STRIKES_FILE
from mailroom_dev.realserver import Account
from mailroom_dev.triagebox import Box


def poll(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return subprocess.run(
        [sys.executable, "-m", "mailroom", "poll"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_credentials_are_named_with_what_to_do() -> None:
    result = poll({})
    assert result.returncode == 78
    text = result.stderr
    assert "MAILROOM_JMAP_TOKEN" in text
    assert "MAILROOM_CARDDAV_USERNAME" in text
    assert "MAILROOM_CARDDAV_PASSWORD" in text


def test_unreachable_server_is_one_clear_line() -> None:
    port = free_port()
    env = {
        "MAILROOM_JMAP_TOKEN": "tok-secret-123",
        "MAILROOM_JMAP_SESSION_URL": f"http://127.0.0.1:{port}/jmap/",
        "MAILROOM_CARDDAV_URL": f"http://127.0.0.1:{port}/dav/",
        "MAILROOM_CARDDAV_USERNAME": "u",
        "MAILROOM_CARDDAV_PASSWORD": "pw-secret-456",
    }
    result = poll(env)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"127.0.0.1:{port}" in line
    assert "cannot reach" in line
    assert_no_secret(result, "tok-secret-123", "pw-secret-456")


@pytest.mark.real
def test_a_rejected_token_is_one_clear_line(account: Account) -> None:
    env = {**account.env(), "MAILROOM_JMAP_TOKEN": "not-a-valid-token-789"}
    result = poll(env)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "401" in line
    assert "MAILROOM_JMAP_TOKEN" in line
    assert_no_secret(result, "not-a-valid-token-789", account.password)


@pytest.mark.real
def test_a_missing_mailbox_says_to_run_setup(account: Account) -> None:
    result = poll(account.env())
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "Screener" in line
    assert "mailroom setup --apply" in line
    assert_no_secret(result, account.token, account.password)


@pytest.mark.real
def test_poll_triages_and_exits_zero(account: Account) -> None:
    box = Box.create(account)
    mail = box.deliver(from_addr="cli@example.net", subject="a")
    box.label(mail, "@ToJail")
    box.searchable("cli@example.net")

    result = poll(account.env())

    assert result.returncode == 0, result.stderr
    assert box.where(mail) == {"Jail"}
    assert '"poll_completed"' in result.stdout + result.stderr
    assert_no_secret(result, account.token, account.password)


@pytest.mark.real
def test_poll_parks_a_refused_sender_across_runs(account: Account, tmp_path: Path) -> None:
    box = Box.create(account)
    huge = box.deliver(from_addr="huge@name.example", from_name="N" * 100_000, subject="h")
    box.label(huge, "@ToFeed")
    env = {**account.env(), "MAILROOM_STATE_DIR": str(tmp_path / "state")}

    runs = [poll(env) for _ in range(PARK_AFTER)]  # each run a new process

    assert [r.returncode for r in runs] == [1] * PARK_AFTER  # the contact write: HTTP 500
    assert ['"sender_parked"' in r.stdout + r.stderr for r in runs] == [False, False, True]
    assert box.where(huge) == {"Screener", "@ToFeed", box.settings.error_label}
    assert box.account.contacts_with_email("huge@name.example") == []
    assert json.loads((tmp_path / "state" / STRIKES_FILE).read_text()) == {"strikes": {}}
    after = poll(env)
    assert after.returncode == 0, after.stderr  # parked: no longer retried
    assert box.where(huge) == {"Screener", "@ToFeed", box.settings.error_label}
