"""`mailroom-fatal`: the supervisord event listener that ends `mailroom run` for good.

supervisord alone keeps running when a program goes FATAL, so systemd or a platform
would see a live service while nothing triages. This listener (``[eventlistener:fatal]``
in the packaged supervisord.conf, never in the system include snippet) receives
``PROCESS_STATE_FATAL`` and ``PROCESS_STATE_EXITED``. A program that is FATAL (it could
not be started) or that exited with an expected code (78, a configuration error: not
restarted) will not come back, so the listener writes the reason to
``STATE_DIR/stopped.json`` and asks supervisord to shut down over its XML-RPC
interface. `mailroom run` then prints that reason as one line and exits non-zero.

The decision is pure (``verdict``); ``main`` speaks supervisord's listener protocol.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from mailroom.paths import state_dir_from_env
from mailroom.service.status import read_status, write_status

STOPPED_FILE = "stopped.json"
EX_CONFIG = 78
EXITED_78 = "exited with status 78 (a configuration error, its message is above)"


@dataclass(frozen=True, slots=True)
class Stopped:
    """Why `mailroom run` stopped everything: the program, a reason line, the exit code."""

    program: str
    reason: str
    exit_code: int

    def line(self) -> str:
        return f"mailroom run: {self.program} {self.reason}; everything was stopped"


def parse_event(headers: Mapping[str, str], payload: str) -> tuple[str, dict[str, str]]:
    """The event name and the payload's ``key:value`` tokens (its first line)."""
    first = payload.split("\n", 1)[0]
    tokens = dict(t.split(":", 1) for t in first.split() if ":" in t)
    return headers.get("eventname", ""), tokens


def verdict(event: str, body: Mapping[str, str], info: Mapping[str, Any]) -> Stopped | None:
    """A Stopped when ``event`` leaves a program down for good, else None.

    ``info`` is supervisord's getProcessInfo for the program (exitstatus, spawnerr).
    """
    program = body.get("processname", "?")
    if event == "PROCESS_STATE_EXITED" and body.get("expected") == "1":
        status = int(info.get("exitstatus") or 0)
        if status == EX_CONFIG:
            return Stopped(program, EXITED_78, EX_CONFIG)
        return Stopped(program, "exited and will not be restarted (its lines are above)", 1)
    if event == "PROCESS_STATE_FATAL":
        why = str(info.get("spawnerr") or "it exited too quickly, see its lines above")
        return Stopped(program, f"could not be started ({why})", 1)
    return None


def read_stopped(state_dir: Path) -> Stopped | None:
    """The reason the listener left in ``state_dir``, if any."""
    doc = read_status(state_dir / STOPPED_FILE)
    if not doc:
        return None
    try:
        return Stopped(str(doc["program"]), str(doc["reason"]), int(doc["exit_code"]))
    except (KeyError, TypeError, ValueError):
        return None


def main() -> int:
    """The listener loop: READY, one event, RESULT OK; until supervisord closes stdin."""
    state_dir = state_dir_from_env(os.environ)
    url = os.environ.get("SUPERVISOR_SERVER_URL", "")
    done = False  # the first program down for good is the reason; the rest follow it
    while (got := next_event(sys.stdin, sys.stdout)) is not None:
        event, body = parse_event(*got)
        if not done and may_end_the_run(event, body):
            done = _handle(_connect(url), state_dir, event, body)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()
    return 0


def may_end_the_run(event: str, body: Mapping[str, str]) -> bool:
    """Whether ``event`` can leave a program down for good (``verdict`` decides, with
    supervisord's details): a crash that supervisord restarts cannot."""
    expected_exit = event == "PROCESS_STATE_EXITED" and body.get("expected") == "1"
    return expected_exit or event == "PROCESS_STATE_FATAL"


def _connect(url: str) -> Any:
    """supervisord's XML-RPC proxy, imported only now: xmlrpc.client (and the http.client
    and ssl under it) would cost the idle listener about 7 MiB."""
    from mailroom.service.supervisor_rpc import server_proxy

    return server_proxy(url)


def next_event(stdin: TextIO, stdout: TextIO) -> tuple[dict[str, str], str] | None:
    """supervisord's listener protocol, by hand (supervisor.childutils costs ~10 MiB)."""
    stdout.write("READY\n")
    stdout.flush()
    line = stdin.readline()
    if not line:
        return None
    headers = dict(token.split(":", 1) for token in line.split() if ":" in token)
    return headers, stdin.read(int(headers.get("len", "0")))


def _handle(rpc: Any, state_dir: Path, event: str, body: Mapping[str, str]) -> bool:
    """Act on one event; True once supervisord was asked to shut down."""
    try:
        info = rpc.supervisor.getProcessInfo(f"{body['groupname']}:{body['processname']}")
    except Exception:  # a missing detail must not stop the listener
        info = {}
    stopped = verdict(event, body, info)
    if stopped is None:
        return False
    write_status(state_dir / STOPPED_FILE, asdict(stopped))  # `mailroom run` prints it
    with contextlib.suppress(Exception):  # already shutting down: fine
        rpc.supervisor.shutdown()
    return True
