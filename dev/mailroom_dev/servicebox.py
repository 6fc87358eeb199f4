"""The whole service against a real account: a prepared ``Box`` plus a real `mailroom run`.

``ServiceBox.running(box, ...)`` starts supervisord in the foreground (a subprocess in
its own session) with the three programs, on the account's credentials, a short
private STATE_DIR and a free health port; it is always stopped on the way out. All
output (supervisord's own lines and the programs' JSON log lines, copied by `mailroom
run` itself) goes to one file, appended to by each start.

Everything here observes real processes: ``wait_until`` polls with a bounded deadline,
it never sleeps to wait for logic.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from mailroom.ops.status import NotRunning, programs
from mailroom.run.statefiles import read_status
from mailroom.run.supervise import conf_path
from mailroom.run.supervisor_rpc import rpc
from mailroom.statenames import LISTENER_FILE, SUPERVISOR_SOCKET, WORKER_FILE
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

REPO = Path(__file__).resolve().parents[2]  # the checkout (dev/mailroom_dev/..)
PROGRAMS = ("health", "listener", "worker")
READY_TIMEOUT = 90.0  # first start on a loaded machine: three interpreters, a pass, a connect
LOG_START = '{"timestamp"'  # every program's JSON line begins so
_DECODER = json.JSONDecoder()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(box: Box, state_dir: Path, port: int, extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without MAILROOM_*/PORT, plus the account and the service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    env.update(box.account.env())
    env.update(
        MAILROOM_STATE_DIR=str(state_dir),
        MAILROOM_HEALTH_PORT=str(port),
        MAILROOM_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def unreachable_env(state_dir: Path, port: int) -> dict[str, str]:
    """Real settings pointing at a closed port: health and listener run, passes fail.

    PATH is the system's only: `mailroom run` must put its own scripts on it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    env.update(
        PATH="/usr/bin:/bin",
        MAILROOM_STATE_DIR=str(state_dir),
        MAILROOM_JMAP_TOKEN="test-token",
        MAILROOM_CARDDAV_USERNAME=f"nobody-{state_dir.name}",  # its own account lock
        MAILROOM_CARDDAV_PASSWORD="test-password",
        MAILROOM_JMAP_SESSION_URL="http://127.0.0.1:9/jmap/session",
        MAILROOM_CARDDAV_URL="http://127.0.0.1:9/dav/",
        MAILROOM_HEALTH_PORT=str(port),
    )
    return env


def stop_session(proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """SIGTERM a process started in its own session (`mailroom run`, supervisord) and
    wait; SIGKILL that session's group if it is still there after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session only
        proc.wait()


@dataclass
class ServiceBox:
    """A ``Box`` with `mailroom run` serving it; see ``running``."""

    box: Box
    state_dir: Path
    env: dict[str, str]
    port: int
    output: Path
    proc: subprocess.Popen[bytes] | None = None
    _events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _read: int = field(default=0, repr=False)

    @classmethod
    @contextmanager
    def running(
        cls,
        box: Box,
        *,
        poll_interval: float = 600,
        debounce_seconds: float = 1,
        log_level: str = "info",
        ready: bool = True,
        **extra_env: str,
    ) -> Iterator[ServiceBox]:
        """`mailroom run` for ``box``; ``wait_ready()`` first unless ``ready`` is False.

        ``extra_env`` adds or overrides variables (e.g. MAILROOM_CONFIG). supervisord is
        stopped in every case, then the tail of the output is printed (pytest shows it
        when the test fails).
        """
        state_dir = Path(tempfile.mkdtemp(prefix="mrsb", dir="/tmp"))  # socket paths are short
        settings = {
            "MAILROOM_POLL_INTERVAL": str(poll_interval),
            "MAILROOM_DEBOUNCE_SECONDS": str(debounce_seconds),
            "MAILROOM_LOG_LEVEL": log_level,
            **extra_env,
        }
        port = free_port()
        service = cls(
            box,
            state_dir,
            service_env(box, state_dir, port, settings),
            port,
            state_dir / "supervisord.out",
        )
        try:
            service.start()
            if ready:
                service.wait_ready()
            yield service
        finally:
            service.stop()
            # pytest shows a test's captured output only when it fails
            print(f"--- the tail of {service.output}:\n{service.output_text()[-12000:]}")
            shutil.rmtree(state_dir, ignore_errors=True)

    # -- processes
    def start(self) -> None:
        """Start supervisord (foreground, own session); output appended to ``output``."""
        with self.output.open("ab") as out:  # appended: a restart keeps the earlier lines
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailroom", "run"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )

    def stop(self) -> None:
        """SIGTERM supervisord and wait (it stops the programs); SIGKILL its group if stuck."""
        if self.proc is not None:
            stop_session(self.proc)

    def supervisorctl(self, *args: str, timeout: float = 90) -> str:
        """Run the user's supervisorctl against this supervisord; its stdout. Only for
        tests of supervisorctl itself: the harness asks over ``rpc`` (``stop_program``)."""
        return supervisorctl(self.env, *args, timeout=timeout)

    def stop_program(self, program: str) -> None:
        """Stop ``program`` and wait until it is STOPPED (as `supervisorctl stop` does)."""
        with rpc(self.state_dir / SUPERVISOR_SOCKET) as proxy:
            proxy.supervisor.stopProcess(program, True)

    def start_program(self, program: str) -> None:
        """Start ``program`` and wait until it is RUNNING (as `supervisorctl start` does)."""
        with rpc(self.state_dir / SUPERVISOR_SOCKET) as proxy:
            proxy.supervisor.startProcess(program, True)

    def states(self) -> dict[str, tuple[str, int | None]]:
        """{program: (STATE, pid or None)} from supervisord's XML-RPC interface."""
        return program_states(self.state_dir)

    def supervisord_pid(self) -> int:
        """supervisord's pid (the child of `mailroom run`), over XML-RPC."""
        with rpc(self.state_dir / SUPERVISOR_SOCKET) as proxy:
            return int(proxy.supervisor.getPID())

    def pid_of(self, program: str) -> int | None:
        """The pid of a RUNNING program, else None."""
        state, pid = self.states().get(program, ("", None))
        return pid if state == "RUNNING" else None

    def wait_restarted(self, program: str, old_pid: int, timeout: float = 60) -> int:
        """Wait until ``program`` runs again under a pid other than ``old_pid``; that pid."""

        def new_pid() -> int | None:
            pid = self.pid_of(program)
            return pid if pid not in (None, old_pid) else None

        pid = wait_until(new_pid, f"{program} to be restarted", timeout)
        assert pid is not None
        return pid

    # -- what the processes say
    def healthz(self) -> tuple[int, dict[str, Any]]:
        """GET /healthz: (HTTP status, JSON body); (0, {}) while nothing answers."""
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10)
        except httpx.TransportError:
            return 0, {}
        return resp.status_code, resp.json()

    def listener_status(self) -> dict[str, Any]:
        return read_status(self.state_dir / LISTENER_FILE) or {}

    def worker_status(self) -> dict[str, Any]:
        return read_status(self.state_dir / WORKER_FILE) or {}

    def output_text(self) -> str:
        try:
            return self.output.read_text(errors="replace")
        except OSError:
            return ""

    def log_events(self, name: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """The programs' JSON log lines, in order (``event == name`` if given), from the
        ``since``-th line on (see ``mark``); supervisord's own lines are skipped."""
        self._read_new_lines()
        return [e for e in self._events[since:] if name is None or e.get("event") == name]

    def mark(self) -> int:
        """A position in the log: pass it as ``since`` to see only what came after."""
        self._read_new_lines()
        return len(self._events)

    def passes(self, trigger: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """``poll_completed`` lines (one per pass), with that trigger if given."""
        found = self.log_events("poll_completed", since)
        return [e for e in found if trigger is None or e.get("trigger") == trigger]

    def _read_new_lines(self) -> None:
        with self.output.open("rb") as f:
            f.seek(self._read)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        self._read += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self._events.extend(json_objects(line))

    # -- readiness
    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """All three programs RUNNING, health 200 with the EventSource connected, the
        startup pass done, and the push pass that the listener's connect wake asks for
        done too (when that wake reached the worker): a test's first label meets an
        idle worker."""
        what = "all RUNNING, healthz 200, eventsource connected, the startup pass"
        wait_until(self._ready, what, timeout)
        if self.listener_status().get("wakes_dropped") == 0:
            wait_until(lambda: self.passes("push"), "the pass after the connect wake", timeout)

    def _ready(self) -> bool:
        status, body = self.healthz()
        return (
            status == 200
            and body.get("eventsource", {}).get("status") == "connected"
            and body.get("worker", {}).get("status") == "up"
            and bool(self.passes("startup"))
            and self.all_running()
        )

    def all_running(self) -> bool:
        """All three programs RUNNING (past supervisord's startsecs) with a pid."""
        states = self.states()
        return len(states) == len(PROGRAMS) and all(s == "RUNNING" for s, _ in states.values())


def supervisorctl(env: Mapping[str, str], *args: str, timeout: float = 90) -> str:
    """The user's supervisorctl with the packaged supervisord.conf; its stdout (for the
    tests that check it works: the harness itself asks over ``supervisor_rpc.rpc``)."""
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf_path(REPO)), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


def program_states(state_dir: Path) -> dict[str, tuple[str, int | None]]:
    """{program: (STATE, pid or None)} over XML-RPC on STATE_DIR's control socket; {} when
    no supervisord answers there."""
    try:
        _, found = programs(state_dir / SUPERVISOR_SOCKET)
    except NotRunning:
        return {}
    return {p.name: (p.state, p.pid) for p in found}


def log_time(event: Mapping[str, Any]) -> float | None:
    """A JSON log line's ``timestamp`` (ISO 8601, UTC) as POSIX seconds; None without one."""
    try:
        return datetime.fromisoformat(str(event.get("timestamp"))).timestamp()
    except ValueError:
        return None


def json_objects(line: str) -> list[dict[str, Any]]:
    """The JSON log objects in one line of the combined output.

    A program's line and its newline can reach the file in two writes (print() under
    PYTHONUNBUFFERED), and supervisord's own line may land in between:
    ``{"timestamp": ...}2024-... INFO success: ...``. Each object is decoded where it
    starts and whatever follows it is ignored.
    """
    found: list[dict[str, Any]] = []
    start = line.find(LOG_START)
    while start >= 0:
        try:
            obj, end = _DECODER.raw_decode(line, start)
        except ValueError:
            end = start + 1
        else:
            if isinstance(obj, dict):
                found.append(obj)
        start = line.find(LOG_START, end)
    return found
