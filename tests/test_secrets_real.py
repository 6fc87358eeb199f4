"""No credential leaves: a failure matrix through every command and the running service.

Each case breaks one thing on a real Cyrus account (a refused token, a wrong CardDAV
password, a server that is not there, a session URL that is 404, a token or password
pasted with a space or line break). `check`, `poll`, `setup` and `reset` run as real
processes, and `mailroom run` serves under real supervisord; every byte they print,
log, write to the state dir or answer on /healthz is searched for every secret value
(as is, trimmed, JSON-escaped, and the HTTP Basic header form) and must hold none.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import ServiceBox
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

REPO = Path(__file__).resolve().parent.parent
COMMANDS = (("check",), ("poll",), ("setup",), ("reset",))


@dataclass(frozen=True)
class Case:
    name: str
    overrides: dict[str, str]
    config_error: str | None = None  # the variable a config error must name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cases(account: Account) -> dict[str, Case]:
    base = f"http://127.0.0.1:{account.server.http_port}"
    dead = f"http://127.0.0.1:{closed_port()}"
    return {
        c.name: c
        for c in (
            Case("token_refused", {"MAILROOM_JMAP_TOKEN": "refused-" + uuid.uuid4().hex}),
            Case(
                "carddav_password_wrong", {"MAILROOM_CARDDAV_PASSWORD": "wrong-" + uuid.uuid4().hex}
            ),
            Case(
                "unreachable",
                {
                    "MAILROOM_JMAP_SESSION_URL": f"{dead}/jmap/session",
                    "MAILROOM_CARDDAV_URL": f"{dead}/dav/",
                },
            ),
            Case("session_404", {"MAILROOM_JMAP_SESSION_URL": f"{base}/no/such/session"}),
            Case(
                "token_trailing_space",
                {"MAILROOM_JMAP_TOKEN": account.token + " "},
                "MAILROOM_JMAP_TOKEN",
            ),
            Case(
                "token_newline",
                {"MAILROOM_JMAP_TOKEN": account.token + "\n"},
                "MAILROOM_JMAP_TOKEN",
            ),
            Case(
                "password_newline",
                {"MAILROOM_CARDDAV_PASSWORD": account.password + "\n"},
                "MAILROOM_CARDDAV_PASSWORD",
            ),
        )
    }


CASES = (
    "token_refused",
    "carddav_password_wrong",
    "unreachable",
    "session_404",
    "token_trailing_space",
    "token_newline",
    "password_newline",
)


def spellings(env: Mapping[str, str]) -> set[str]:
    """Every form in which the env's token and password could leak."""
    user = env["MAILROOM_CARDDAV_USERNAME"]
    found: set[str] = set()
    for name in ("MAILROOM_JMAP_TOKEN", "MAILROOM_CARDDAV_PASSWORD"):
        value = env[name]
        found |= {value, value.strip(), json.dumps(value)[1:-1]}
    basic = f"{user}:{env['MAILROOM_CARDDAV_PASSWORD'].strip()}".encode()
    found.add(base64.b64encode(basic).decode())
    return found


def leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s[:6] + "..." for s in secrets if s and s in text)


def run_cli(
    args: tuple[str, ...], env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    return subprocess.run(
        [sys.executable, "-m", "mailroom", *args],
        env={**base, "PYTHONPATH": str(REPO), "MAILROOM_LOG_FORMAT": "json", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=90,
        check=False,
    )


def assert_sensible(
    case: Case, args: tuple[str, ...], done: subprocess.CompletedProcess[str]
) -> None:
    text = done.stdout + done.stderr
    assert "Traceback" not in text, (args, text[-2000:])
    if case.config_error:
        assert done.returncode == 78, (args, text[-2000:])
        assert f"config error: {case.config_error} has a space or line break" in done.stderr
        return
    # a pass with nothing to do never asks CardDAV: only check and setup must fail there
    if case.name != "carddav_password_wrong" or args[0] in ("check", "setup"):
        assert done.returncode != 0, (args, text[-2000:])
    if done.returncode != 0 and case.name in ("token_refused", "carddav_password_wrong"):
        assert "rejected the credentials" in text, (args, text[-2000:])
        assert "cannot reach" not in text, (args, text[-2000:])
        assert "network" not in text, (args, text[-2000:])


@pytest.mark.real
@pytest.mark.parametrize("name", CASES)
def test_no_command_shows_a_secret_whatever_fails(
    name: str, account: Account, tmp_path: Path
) -> None:
    case = cases(account)[name]
    Box.create(account)  # mailboxes and groups exist: each command gets to the broken part
    env = {**account.env(), "MAILROOM_STATE_DIR": str(tmp_path / "state"), **case.overrides}
    secrets = spellings(env) | spellings(account.env())
    for args in COMMANDS:
        done = run_cli(args, env, tmp_path)
        assert_sensible(case, args, done)
        assert leaks(done.stdout + done.stderr, secrets) == [], args


def state_text(state_dir: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for p in sorted(state_dir.rglob("*")) if p.is_file()
    )


def failed_visibly(service: ServiceBox) -> bool:
    """Health answers and the worker said why it fails (worker.json, or its log)."""
    status, _ = service.healthz()
    said = "rejected the credentials" in service.output_text()
    return status != 0 and (bool(service.worker_status().get("last_error")) or said)


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_the_running_service_shows_no_secret_whatever_fails(name: str, account: Account) -> None:
    case = cases(account)[name]
    box = Box.create(account)
    box.label(box.deliver(from_addr="ann@example.com"), "@ToFeed")  # a pass must use CardDAV
    secrets = spellings({**account.env(), **case.overrides}) | spellings(account.env())
    with ServiceBox.running(box, ready=False, **case.overrides) as service:
        if case.config_error:  # `mailroom run` refuses before supervisord starts
            assert service.proc is not None
            assert service.proc.wait(timeout=60) == 78
            said = service.output_text()
            assert f"config error: {case.config_error} has a space or line break" in said
            assert leaks(said + state_text(service.state_dir), secrets) == []
            return
        wait_until(lambda: failed_visibly(service), f"the worker to report {name}", 90)
        body = httpx.get(f"http://127.0.0.1:{service.port}/healthz", timeout=10).text
        everything = body + service.output_text() + state_text(service.state_dir)
        assert leaks(everything, secrets) == []
        last_error = json.loads(body)["worker"]["last_error"]
        assert last_error is None or len(last_error) <= 300
