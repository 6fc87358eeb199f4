"""`honcho start -f Procfile.dev`, as a developer runs mailroom (the repo's Procfile is the
one-container `web: mailroom run`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailroom.run.statefiles import read_status
from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import free_port, service_env
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]
REPO = Path(__file__).resolve().parent.parent


def healthz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return dict(json.loads(r.read()))
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mrhc", dir="/tmp"))  # short: a Unix socket lives here
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(180)
def test_honcho_runs_procfile_dev_with_health_on_the_first_port_and_triages_by_push(
    account: Account, state_dir: Path, tmp_path: Path
) -> None:
    box = Box.create(account)
    base = free_port()
    env = service_env(box, state_dir, 0, {"MAILROOM_POLL_INTERVAL": "600"})
    del env["MAILROOM_HEALTH_PORT"]  # web is health on $PORT, as honcho and platforms set it
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    web_port = base  # honcho: PORT = base + 100 x the entry's place; web is first
    out = os.open(tmp_path / "honcho.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    honcho_bin = str(Path(sys.executable).parent / "honcho")
    honcho = subprocess.Popen(
        [honcho_bin, "start", "-f", "Procfile.dev", "-p", str(base)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        body = wait_until(  # and the startup pass done: the label is push's to triage
            lambda: (
                (b := healthz(web_port))
                and b["eventsource"]["status"] == "connected"
                and b["last_poll_trigger"] == "startup"
                and b
            ),
            "health on $PORT with push connected and the startup pass done",
        )
        mail = box.deliver(from_addr="dev@honcho.example", subject="a")
        box.label(mail, "@ToFeed")
        wait_until(lambda: box.where(mail) == {"Feed"}, "the label acted on")
        wait_until(  # the mail moves mid-pass; the pass is recorded as it ends
            lambda: ((read_status(state_dir / "worker.json") or {}).get("counters") or {}).get(
                "emails_moved"
            ),
            "the pass that moved it recorded in worker.json",
        )
        after = healthz(web_port) or {}
        pids = [after["worker"]["pid"], body["worker"]["pid"]]
    finally:
        honcho.send_signal(signal.SIGTERM)
        code = honcho.wait(timeout=30)
        os.close(out)
    log = (tmp_path / "honcho.out").read_text()
    assert '"trigger": "push"' in log, log
    assert after["last_poll_trigger"] == "push"
    assert box.groups_of("dev@honcho.example") == {"Feed", "Mailroom"}
    assert code in (0, 128 + signal.SIGTERM, -signal.SIGTERM)  # honcho exits 143 on TERM
    wait_until(lambda: not any(alive(pid) for pid in pids), "honcho's processes to exit", 10)
