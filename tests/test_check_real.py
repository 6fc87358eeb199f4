"""`mailroom check` against the real Cyrus: missing things, all good, bad token, no server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from mailroom.config import load_settings
from mailroom.ops import check, setup
from mailroom_dev.realserver import Account

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return subprocess.run(
        [sys.executable, "-m", "mailroom", *args],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("problem: ")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.real
def test_check_before_setup_says_run_setup_once_with_the_count(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.create_mailbox("Feed")
    assert check.main(load_settings(account.env())) == 1
    out = capsys.readouterr().out
    assert problems(out) == [
        "problem: 25 things setup makes are missing or stale (16 mailboxes, 8 contact groups, "
        "the routing rules; `mailroom setup` lists them): run `mailroom setup --apply`"
    ]  # 'Feed' exists: 16 of the 17 mailboxes
    assert out.splitlines()[-1] == "1 problem found"


@pytest.mark.real
def test_check_passes_after_setup_from_the_command_line(account: Account) -> None:
    assert run_cli("setup", "--apply", env=account.env()).returncode == 0
    result = run_cli("check", env=account.env())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "all good"
    assert "ok: mailboxes: all 17 exist" in lines
    assert "ok: contact groups: all 8 exist" in lines
    assert "ok: push: the EventSource streams (HTTP 200)" in lines
    for secret in (account.token, account.password):
        assert secret not in result.stdout + result.stderr


@pytest.mark.real
def test_a_wrong_token_is_one_auth_line(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.main(load_settings(account.env()), apply=True) == 0
    capsys.readouterr()
    wrong = "wrong-token-" + account.token[-12:]
    env = {**account.env(), "MAILROOM_JMAP_TOKEN": wrong}
    assert check.main(load_settings(env)) == 1
    out = capsys.readouterr().out
    assert problems(out) == [
        "problem: the JMAP server rejected the credentials (HTTP 401); "
        "check MAILROOM_JMAP_TOKEN; on Fastmail, create an API token with Mail access "
        "(Settings > Privacy & Security > API tokens)"
    ]
    assert wrong not in out
    assert account.password not in out


@pytest.mark.real
def test_a_wrong_carddav_password_is_one_auth_line(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.main(load_settings(account.env()), apply=True) == 0
    capsys.readouterr()
    env = {**account.env(), "MAILROOM_CARDDAV_PASSWORD": "not-the-password"}
    assert check.main(load_settings(env)) == 1
    (line,) = problems(capsys.readouterr().out)
    assert line.startswith("problem: the CardDAV server rejected the credentials (HTTP 401)")
    assert "not-the-password" not in line


@pytest.mark.real
def test_an_unreachable_server_is_named_with_its_url(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/jmap/"
    env = {**account.env(), "MAILROOM_JMAP_SESSION_URL": url}
    assert setup.main(load_settings(account.env()), apply=True) == 0
    capsys.readouterr()
    assert check.main(load_settings(env)) == 1
    (line,) = problems(capsys.readouterr().out)
    assert line.startswith(f"problem: cannot reach the JMAP server at {url} (ConnectError")
    assert line.endswith("check the URL and your network, mailroom will retry")
