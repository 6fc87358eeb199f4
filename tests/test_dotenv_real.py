"""`.env` is the one place for the credentials: `mailroom run` started with nothing but a
.env (0600) in its working directory, and each of its programs reads it (slow, real).

Only the .env names the health port (health reads it), the token (the listener's push
connects) and the CardDAV credentials (the worker triages a label).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import free_port, stop_session
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]


def healthz(port: int) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())
    except (httpx.TransportError, ValueError):
        return {}


@pytest.mark.timeout(240)
def test_mailroom_run_and_its_three_programs_read_the_dotenv(account: Account) -> None:
    box = Box.create(account)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mrenv", dir="/tmp") as d:
        cwd = Path(d)
        dotenv = {
            **account.env(),
            "MAILROOM_STATE_DIR": str(cwd / "state"),
            "MAILROOM_HEALTH_PORT": str(port),
            "MAILROOM_POLL_INTERVAL": "600",
            "MAILROOM_LOG_FORMAT": "json",
        }
        (cwd / ".env").write_text("".join(f"export {k}='{v}'\n" for k, v in dotenv.items()))
        (cwd / ".env").chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        with (cwd / "run.out").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailroom", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        try:
            body = wait_until(
                lambda: (
                    (h := healthz(port)).get("eventsource", {}).get("status") == "connected"
                    and h.get("last_poll_trigger") is not None
                    and h
                ),
                "health on the .env's port, push connected, the startup pass done",
                120,
            )
            assert body["status"] == "ok"
            mail = box.deliver(from_addr="dot@env.example", subject="read from .env")
            box.label(mail, "@ToPaperTrail")
            wait_until(lambda: box.where(mail) == {"Paper Trail"}, "the label acted on", 120)
            assert box.groups_of("dot@env.example") == {"Paper Trail", "Mailroom"}
            assert (cwd / "state" / "worker.json").exists()  # the .env's state dir
        finally:
            stop_session(proc)
            print((cwd / "run.out").read_text(errors="replace")[-4000:])
        assert proc.returncode == 0
