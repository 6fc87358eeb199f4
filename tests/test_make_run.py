"""`make run` (scripts/run.sh) decides between the service and the demo by mailroom's own
reading of the environment and ./.env (`mailroom config --has-account`).

The script runs in a copy of the checkout's layout (scripts/, .venv linked to this
venv, a stub scripts/test.sh), so a developer's own .env is never touched;
MAILROOM_RUN_DRY=1 makes it print the command it would exec.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOKEN = "fmu1-dotenv-token-0123456789"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_bytes((REPO / "scripts" / "run.sh").read_bytes())
    (tmp_path / "scripts" / "test.sh").write_text("#!/bin/sh\nexit 0\n")  # install: done
    (tmp_path / "scripts" / "test.sh").chmod(0o755)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return tmp_path


def make_run(checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh")],
        env={**base, "MAILROOM_RUN_DRY": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_token_in_dotenv_runs_the_service(checkout: Path) -> None:
    (checkout / ".env").write_text(f"MAILROOM_JMAP_TOKEN={TOKEN}\n")
    (checkout / ".env").chmod(0o600)
    done = make_run(checkout)
    assert (done.returncode, done.stdout) == (0, ".venv/bin/mailroom run\n")


def test_a_token_in_the_environment_runs_the_service(checkout: Path) -> None:
    done = make_run(checkout, MAILROOM_JMAP_TOKEN=TOKEN)
    assert (done.returncode, done.stdout) == (0, ".venv/bin/mailroom run\n")


def test_no_token_anywhere_runs_the_demo(checkout: Path) -> None:
    (checkout / ".env").write_text("MAILROOM_POLL_INTERVAL=30\n")
    (checkout / ".env").chmod(0o600)
    done = make_run(checkout)
    assert (done.returncode, done.stdout) == (0, ".venv/bin/mailroom demo\n")
    assert "starting the local demo" in done.stderr


def test_a_dotenv_open_to_others_runs_nothing_and_says_why(checkout: Path) -> None:
    (checkout / ".env").write_text(f"MAILROOM_JMAP_TOKEN={TOKEN}\n")
    (checkout / ".env").chmod(0o644)
    done = make_run(checkout)
    assert done.returncode == 78
    assert done.stdout == ""  # neither the service nor the demo
    assert f"chmod 600 {checkout / '.env'}" in done.stderr
    assert TOKEN not in done.stderr
