"""`mailroom run` owns its programs' lives: real `mailroom run`, real supervisord (slow).

Every way of ending it (SIGINT, SIGTERM, SIGHUP, its output pipe closing, kill -9 of
`mailroom run`, which is supervisord itself) leaves no process behind within a bounded
wait, and a new `mailroom run` then starts cleanly. A program that is down for good
ends it with one line and a non-zero exit; a second run on the same state dir is
refused. The account is unreachable here (nothing triages): these tests are about
processes; test_deploy_real.py triages under supervisord.

"No process left" is checked by scanning /proc for any process whose environment
carries this run's MAILROOM_STATE_DIR: supervisord, the programs and whatever they
started, known pids or not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailroom.run.lifeline import starts_file
from mailroom.run.statefiles import read_status
from mailroom.run.supervisor_rpc import rpc
from mailroom.statenames import SUPERVISOR_SOCKET
from mailroom_dev.servicebox import free_port, json_objects, program_states, unreachable_env
from mailroom_dev.wait import wait_until

pytestmark = pytest.mark.slow
PROGRAMS = ("health", "listener", "worker")
GONE_TIMEOUT = 30.0  # a program's stop is well under a second here; slack for a loaded host


def processes_of(state_dir: Path) -> list[int]:
    """Live (not zombie) processes whose environment names ``state_dir``."""
    marker = f"MAILROOM_STATE_DIR={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class Run:
    """One `mailroom run` in its own session, its output in ``output``."""

    proc: subprocess.Popen[bytes]
    state_dir: Path
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def all_running(self) -> bool:
        states = program_states(self.state_dir)
        return sorted(states) == list(PROGRAMS) and all(s == "RUNNING" for s, _ in states.values())

    def all_started(self) -> bool:
        """All RUNNING, and each past its exec: its start record is written (see
        mailroom.run.lifeline). A SIGTERM that supervisord sends between its fork and
        the program's exec is lost (the forked copy of supervisord's handler takes it),
        and supervisord then waits stopwaitsecs before SIGKILL; the tests stop programs
        that run."""
        return self.all_running() and all(
            Path(starts_file(self.state_dir, p)).exists() for p in PROGRAMS
        )

    def supervisord_pid(self) -> int:
        with rpc(self.state_dir / SUPERVISOR_SOCKET) as proxy:
            return int(proxy.supervisor.getPID())


def start(state_dir: Path, env: dict[str, str], stdout: int | None = None) -> Run:
    output = state_dir / f"run-{len(list(state_dir.glob('run-*.out')))}.out"
    with output.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailroom", "run"],
            env=env,
            stdout=out if stdout is None else stdout,
            stderr=out,
            cwd=state_dir,
            start_new_session=True,
        )
    return Run(proc, state_dir, output)


def stop_all(run: Run) -> None:
    """Whatever a test left: TERM `mailroom run`, then KILL anything of this state dir."""
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGTERM)
        try:
            run.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
    for pid in processes_of(run.state_dir):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mrl", dir="/tmp") as d:  # short socket paths
        yield Path(d)


@contextmanager
def running(state_dir: Path, **extra: str) -> Iterator[Run]:
    """`mailroom run` with every program RUNNING; everything stopped after."""
    env = {**unreachable_env(state_dir, free_port()), **extra}
    run = start(state_dir, env)
    try:
        wait_until(run.all_started, "the three programs to be started", 90)
        yield run
    finally:
        stop_all(run)
        print(run.text()[-6000:])


def assert_nothing_left(run: Run, since: float, how: str) -> None:
    """No process of this run is left (a bounded wait); the time taken is printed."""
    wait_until(
        lambda: not processes_of(run.state_dir), "every mailroom process to end", GONE_TIMEOUT
    )
    print(f"nothing left {time.monotonic() - since:.2f} s after {how}")  # a figure, not asserted
    assert processes_of(run.state_dir) == []


def assert_starts_cleanly(state_dir: Path) -> None:
    with running(state_dir) as again:
        assert again.all_running()
        text = again.text()
        assert "already" not in text  # no "already running", no "already listening"
        assert "FATAL" not in text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_everything_and_a_new_run_starts_cleanly(
    state_dir: Path, sig: signal.Signals
) -> None:
    with running(state_dir) as run:
        # `mailroom run`, which is supervisord itself, and the 3 programs: nothing else
        assert len(processes_of(state_dir)) == 4
        since = time.monotonic()
        run.proc.send_signal(sig)
        assert run.proc.wait(timeout=60) == 0
        assert_nothing_left(run, since, sig.name)
    assert_starts_cleanly(state_dir)


def test_its_output_pipe_closing_ends_everything(state_dir: Path) -> None:
    read_end, write_end = os.pipe()
    reader = subprocess.Popen(["cat"], stdin=read_end, stdout=subprocess.DEVNULL)  # like `| tee`
    os.close(read_end)
    env = unreachable_env(state_dir, free_port())
    run = start(state_dir, env, stdout=write_end)
    os.close(write_end)
    try:
        wait_until(run.all_started, "the three programs to be started", 90)
        since = time.monotonic()
        reader.kill()  # the reading end is gone: the next write would get EPIPE
        reader.wait()
        assert run.proc.wait(timeout=60) == 1
        assert_nothing_left(run, since, "the pipe's reader was killed")
        assert "its output was closed; everything was stopped" in run.text()
    finally:
        reader.kill()
        stop_all(run)
    assert_starts_cleanly(state_dir)


def test_kill_9_of_mailroom_run_which_is_supervisord_leaves_no_program_behind(
    state_dir: Path,
) -> None:
    with running(state_dir) as run:
        programs = [pid for _, pid in program_states(state_dir).values()]
        assert run.supervisord_pid() == run.proc.pid  # one process: no parent to kill apart
        since = time.monotonic()
        run.proc.kill()
        assert run.proc.wait(timeout=60) == -signal.SIGKILL
        assert_nothing_left(run, since, "kill -9 of mailroom run")  # the programs got SIGTERM
        assert all(pid is not None for pid in programs)
    assert_starts_cleanly(state_dir)


def test_a_second_run_on_the_same_state_dir_is_refused_with_the_first_pid(
    state_dir: Path,
) -> None:
    with running(state_dir) as run:
        env = unreachable_env(state_dir, free_port())
        second = subprocess.run(
            [sys.executable, "-m", "mailroom", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"mailroom run: mailroom is already running on {state_dir} (pid {run.proc.pid}); "
            f"see it with `MAILROOM_STATE_DIR={state_dir} mailroom status`, "
            f"stop it with `kill {run.proc.pid}`"
        ]
        assert run.all_running()  # the first one is untouched


def test_a_worker_with_a_config_error_ends_mailroom_run_with_the_reason(state_dir: Path) -> None:
    """`mailroom run` checks the configuration before it starts anything, so the error
    must appear later: the password file is removed while the service runs, and the
    worker, restarted after a crash, finds it gone and exits 78."""
    secret = state_dir.parent / f"{state_dir.name}.password"
    secret.write_text("test-password\n")
    env = unreachable_env(state_dir, free_port())
    del env["MAILROOM_CARDDAV_PASSWORD"]
    env["MAILROOM_CARDDAV_PASSWORD_FILE"] = str(secret)
    run = start(state_dir, env)
    try:
        wait_until(run.all_started, "the three programs to be started", 90)
        pid = wait_until(lambda: worker_up(state_dir), "the worker to be up", 90)
        secret.unlink()
        os.kill(pid, signal.SIGKILL)  # supervisord restarts it: it reads the config again
        assert run.proc.wait(timeout=90) == 78
        lines = run.text().splitlines()
        summary = (
            "mailroom run: worker exited with status 78 (a configuration error, its message "
            "is above); everything was stopped"
        )
        assert lines.count(summary) == 1  # the runner's line; the listener says nothing
        assert any("config error:" in line and "CARDDAV_PASSWORD" in line for line in lines)
        assert sum("spawned: 'worker'" in line for line in lines) == 2  # not after the 78
        assert_nothing_left(run, time.monotonic(), "mailroom run ended")
    finally:
        stop_all(run)
        secret.unlink(missing_ok=True)
        print(run.text()[-6000:])


def worker_up(state_dir: Path) -> int | None:
    """The worker's pid once it runs its loop (its status file names it), else None."""
    state, pid = program_states(state_dir).get("worker", ("", None))
    doc = read_status(state_dir / "worker.json") or {}
    return pid if state == "RUNNING" and doc.get("pid") == pid else None


@pytest.mark.timeout(240)
def test_a_worker_that_keeps_crashing_comes_back_each_time(state_dir: Path) -> None:
    with running(state_dir) as run:
        for _ in range(5):  # each kill lands as soon as the restarted worker is up
            pid = wait_until(lambda: worker_up(state_dir), "the worker to be up", 90)
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda old=pid: worker_up(state_dir) not in (None, old), "a restart", 90)
        assert program_states(state_dir)["worker"][0] == "RUNNING"
        assert run.proc.poll() is None  # not FATAL, so `mailroom run` is still up
        events = [e for line in run.text().splitlines() for e in json_objects(line)]
        delays = [e["delay"] for e in events if e.get("event") == "restart_backoff"]
        assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_status_shows_each_program_and_the_health_summary(state_dir: Path) -> None:
    with running(state_dir) as run:
        wait_until(lambda: worker_up(state_dir), "the worker to be up", 90)
        last_error = lambda: (read_status(state_dir / "worker.json") or {}).get("last_error")  # noqa: E731
        wait_until(last_error, "the first pass to fail (the server is unreachable)", 60)
        done = subprocess.run(
            [sys.executable, "-m", "mailroom", "status"],
            env=unreachable_env(state_dir, free_port()),  # no supervisord config passed
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = done.stdout.splitlines()
        assert lines[0] == f"mailroom on {state_dir}: supervisord pid {run.supervisord_pid()}"
        assert [line.split()[:3] for line in lines[1:4]] == [
            [program, "RUNNING", "pid"] for program in PROGRAMS
        ]
        assert lines[4].startswith("/healthz: 200 degraded; no pass yet; worker up; push ")
        assert any(line.startswith("  worker last error: ") for line in lines[5:])
        assert done.returncode == 0
