"""The pure pieces of `mailroom run`'s lifecycle, and the locks and the parent tie on real files
and processes (fast: no supervisord)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mailroom.errors import ConfigError, LockTaken
from mailroom.jmap.models import Session
from mailroom.ops import status
from mailroom.run import (
    accountlock,
    fatal,
    lifeline,
    outpipes,
    pidlock,
    runner,
    runsupervisor,
    stopping,
)
from mailroom_dev.wait import wait_until


# -- restart back-off (lifeline.next_delay) ------------------------------------------------
def test_a_first_start_does_not_wait() -> None:
    assert lifeline.next_delay(None, now=1000.0) == 0.0


def test_restarts_in_quick_succession_wait_twice_as_long_each_time_up_to_a_minute() -> None:
    delays, previous, now = [], None, 1000.0
    for _ in range(9):
        delay = lifeline.next_delay(previous, now)
        delays.append(delay)
        previous = lifeline.Starts(now, delay)
        now += delay + 2.0  # it crashed 2 s after its wait
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_start_after_a_long_run_does_not_wait() -> None:
    previous = lifeline.Starts(at=1000.0, delay=32.0)
    assert lifeline.next_delay(previous, now=1000.0 + 32.0 + lifeline.STABLE_AFTER) == 0.0
    assert lifeline.next_delay(previous, now=1000.0 + 32.0 + 59.0) == 60.0


def test_started_records_each_start_and_waits_the_back_off(tmp_path: Path) -> None:
    # now= in the past, so the wait is computed from the record and not slept long
    assert lifeline.started("worker", tmp_path, now=100.0) == 0.0
    record = Path(lifeline.starts_file(tmp_path, "worker"))
    assert record.name == ".worker.starts"
    assert lifeline._read_starts(record) == lifeline.Starts(100.0, 0.0)


def test_the_lifeline_command_refuses_anything_but_the_three_programs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert lifeline.main(["poll"]) == 2
    assert "usage: mailroom-lifeline {listen,work,health}" in capsys.readouterr().err


# -- parent death -------------------------------------------------------------------------
CHILD = """
import sys, time
from mailroom.run import lifeline
print(lifeline.die_with_parent(use_prctl={prctl}), flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize(("use_prctl", "how"), [(True, "prctl"), (False, "poll")])
def test_a_program_ends_when_its_parent_is_killed(use_prctl: bool, how: str) -> None:
    # parent: a shell that starts the child and waits; kill -9 the shell, the child goes
    code = textwrap.dedent(CHILD.format(prctl=use_prctl))
    parent = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" -c "$0" & echo $!; wait', code],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == how
    parent.kill()
    parent.wait()
    wait_until(lambda: not alive(child), "the child to end after its parent", 15)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- the FATAL plugin's verdict --------------------------------------------------------------
def test_an_expected_exit_78_is_a_configuration_error_that_stops_everything() -> None:
    body = {"processname": "worker", "groupname": "worker", "expected": "1"}
    stopped = fatal.verdict("PROCESS_STATE_EXITED", body, {"exitstatus": 78})
    assert stopped == fatal.Stopped("worker", fatal.EXITED_78, 78)
    assert stopped.line() == (
        "mailroom run: worker exited with status 78 (a configuration error, its message is "
        "above); everything was stopped"
    )


def test_an_unexpected_exit_is_left_to_supervisord_to_restart() -> None:
    body = {"processname": "worker", "groupname": "worker", "expected": "0"}
    assert fatal.verdict("PROCESS_STATE_EXITED", body, {"exitstatus": 1}) is None


def test_a_fatal_program_stops_everything_with_supervisords_reason() -> None:
    body = {"processname": "health", "groupname": "health", "from_state": "BACKOFF"}
    info = {"spawnerr": "can't find command 'mailroom-lifeline'"}
    assert fatal.verdict("PROCESS_STATE_FATAL", body, info) == fatal.Stopped(
        "health", "could not be started (can't find command 'mailroom-lifeline')", 1
    )


@dataclass
class FakeConfig:
    name: str


@dataclass
class FakeGroup:
    config: FakeConfig


@dataclass
class FakeProcess:
    """What supervisord's Subprocess gives an event (name, group, pid, exit, spawn error)."""

    config: FakeConfig
    group: FakeGroup
    pid: int = 42
    exitstatus: int | None = None
    spawnerr: str | None = None


@dataclass
class FakeOptions:
    mood: int
    logger: Any


def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeOptions, list[str]]:
    """A FatalWatch subscribed to supervisord's own event bus, on a stand-in Supervisor."""
    from supervisor import events
    from supervisor.states import SupervisorStates

    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path))
    events.clear()
    said: list[str] = []
    logger = SimpleNamespace(critical=said.append)
    options = FakeOptions(SupervisorStates.RUNNING, logger)
    supervisord = SimpleNamespace(options=options)
    first = fatal.make_rpcinterface(supervisord)
    assert fatal.make_rpcinterface(supervisord) is first  # once per supervisord: one watch
    return options, said


def process(name: str, **kw: Any) -> FakeProcess:
    return FakeProcess(FakeConfig(name), FakeGroup(FakeConfig(name)), **kw)


def test_the_plugin_ends_supervisord_on_the_first_program_down_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supervisor import events
    from supervisor.states import ProcessStates, SupervisorStates

    options, said = watched(tmp_path, monkeypatch)
    crash = process("listener", exitstatus=1)
    events.notify(events.ProcessStateExitedEvent(crash, ProcessStates.RUNNING, expected=False))
    assert (options.mood, said) == (SupervisorStates.RUNNING, [])  # a crash: restarted
    assert fatal.read_stopped(tmp_path) is None
    worker = process("worker", exitstatus=78)
    events.notify(events.ProcessStateExitedEvent(worker, ProcessStates.RUNNING, expected=True))
    stopped = fatal.Stopped("worker", fatal.EXITED_78, 78)
    assert options.mood == SupervisorStates.SHUTDOWN
    assert said == [stopped.line()]
    assert fatal.read_stopped(tmp_path) == stopped
    health = process("health", spawnerr="can't find command")
    events.notify(events.ProcessStateFatalEvent(health, ProcessStates.BACKOFF))
    assert fatal.read_stopped(tmp_path) == stopped  # the first reason stays
    events.clear()


def test_a_fatal_program_ends_supervisord_with_its_spawn_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supervisor import events
    from supervisor.states import ProcessStates, SupervisorStates

    options, said = watched(tmp_path, monkeypatch)
    health = process("health", spawnerr="can't find command 'mailroom-lifeline'")
    events.notify(events.ProcessStateFatalEvent(health, ProcessStates.BACKOFF))
    assert options.mood == SupervisorStates.SHUTDOWN
    assert fatal.read_stopped(tmp_path) == fatal.Stopped(
        "health", "could not be started (can't find command 'mailroom-lifeline')", 1
    )
    assert len(said) == 1
    events.clear()


def test_the_reason_is_read_back_from_the_state_dir(tmp_path: Path) -> None:
    assert fatal.read_stopped(tmp_path) is None
    (tmp_path / fatal.STOPPED_FILE).write_text('{"program": "w", "reason": "r", "exit_code": 78}')
    assert fatal.read_stopped(tmp_path) == fatal.Stopped("w", "r", 78)


# -- how `mailroom run` ends (runner.outcome) ------------------------------------------------
def test_a_requested_stop_exits_0_without_a_line() -> None:
    assert runner.outcome("SIGTERM", None) == (0, None)


def test_a_program_down_for_good_gives_its_line_and_code() -> None:
    stopped = fatal.Stopped("worker", fatal.EXITED_78, 78)
    assert runner.outcome(None, stopped) == (78, stopped.line())
    assert runner.outcome("SIGTERM", stopped) == (78, stopped.line())  # the reason wins


def test_a_closed_output_or_a_shutdown_nobody_asked_for_is_a_failure_with_a_line() -> None:
    assert runner.outcome("output closed", None) == (
        1,
        "mailroom run: its output was closed; everything was stopped",
    )
    assert runner.outcome(None, None) == (
        1,
        "mailroom run: supervisord was shut down (supervisorctl shutdown); everything stopped",
    )


def test_a_second_run_lock_on_a_state_dir_names_the_first_pid(tmp_path: Path) -> None:
    with runner.run_lock(tmp_path):
        with pytest.raises(LockTaken) as caught:
            runner.run_lock(tmp_path).__enter__()
        assert f"(pid {os.getpid()})" in str(caught.value)
    with runner.run_lock(tmp_path):  # free again
        pass


def test_a_lock_file_names_its_holder_as_written_or_as_a_bare_pid() -> None:
    assert pidlock.Holder.of('{"pid": 12, "state_dir": "/s"}\n') == pidlock.Holder("12", "/s")
    assert pidlock.Holder.of("4242\n") == pidlock.Holder("4242")
    assert pidlock.Holder.of("") == pidlock.Holder("unknown")


# -- stopping on signals -------------------------------------------------------------------
def test_a_stop_signal_sets_the_event_names_itself_and_the_old_handlers_come_back() -> None:
    seen: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with stopping.stop_signals(seen.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
        signal.raise_signal(signal.SIGINT)
    assert seen == ["SIGTERM", "SIGINT"]
    assert signal.getsignal(signal.SIGTERM) is before


# -- the account lock ------------------------------------------------------------------------
def session_of(api_url: str, username: str, account_id: str) -> Session:
    return Session("s", api_url, None, None, account_id, 500, 500, 16, username=username)


def test_the_account_lock_is_named_by_the_account_as_the_server_names_it() -> None:
    a = accountlock.account_key(session_of("https://x.example/jmap/api/", "Ada@x.example", "u1"))
    same = [
        session_of("https://X.example:443/jmap/api", " ada@X.EXAMPLE ", "u1"),
        session_of("https://x.example/other/path/", "ada@x.example", " u1"),
    ]
    assert [accountlock.account_key(s) for s in same] == [a, a]
    others = [
        session_of("https://x.example/jmap/api/", "bob@x.example", "u1"),
        session_of("https://x.example/jmap/api/", "ada@x.example", "u2"),
        session_of("https://y.example/jmap/api/", "ada@x.example", "u1"),
        session_of("http://x.example/jmap/api/", "ada@x.example", "u1"),
    ]
    assert a not in {accountlock.account_key(s) for s in others}
    assert "ada" not in a.lower()
    assert "x.example" not in a


def test_the_lock_dir_is_in_the_home_the_password_database_names_not_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert accountlock.home_lock_dir(os.getuid()) == Path(
        home, ".local", "state", "mailroom-accounts"
    )
    assert accountlock.tmp_lock_dir(7) == Path("/tmp/mailroom-7")


def test_a_second_worker_on_the_same_account_is_a_config_error_naming_the_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "account.lock"
    first = accountlock.acquire(path, Path("/state/one"))
    try:
        with pytest.raises(ConfigError) as caught:
            accountlock.acquire(path, Path("/state/two"))
        assert caught.value.problems == [
            f"another mailroom worker (pid {os.getpid()}, state dir /state/one) already "
            "triages this account; two workers would race: stop that one, or point this one "
            "at another account"
        ]
    finally:
        first.close()
    accountlock.acquire(path, Path("/state/two")).close()  # released with its holder


def test_a_lock_dir_others_can_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match=r"the account lock directory: .* is writable by others"):
        accountlock.private_dir(shared)
    made = accountlock.private_dir(tmp_path / "new")
    assert made.stat().st_mode & 0o777 == 0o700


def test_a_symlink_at_the_account_lock_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "account.lock").symlink_to(target)
    with pytest.raises(OSError):
        accountlock.acquire(tmp_path / "account.lock", tmp_path)
    assert target.read_text() == "keep"


# -- mailroom status's rendering ---------------------------------------------------------------
INFOS = [
    {"name": "worker", "group": "worker", "statename": "RUNNING", "pid": 12, "description": "d"},
    {"name": "health", "group": "health", "statename": "EXITED", "pid": 0, "description": "e"},
]


def test_status_lists_the_programs_by_name() -> None:
    assert status.parse_programs(INFOS) == [
        status.Program("health", "EXITED", None, "e"),
        status.Program("worker", "RUNNING", 12, "d"),
    ]
    grouped = [{"name": "mailroom-worker", "group": "mailroom", "statename": "RUNNING", "pid": 3}]
    assert status.parse_programs(grouped)[0].name == "mailroom:mailroom-worker"


def test_status_renders_the_programs_and_the_health_summary() -> None:
    progs = [status.Program("worker", "RUNNING", 12, "pid 12, uptime 0:00:05")]
    body = {
        "status": "degraded",
        "last_poll_age_seconds": 4.2,
        "last_poll_trigger": "push",
        "worker": {"status": "up", "last_error": None},
        "eventsource": {"status": "disconnected", "last_error": "ConnectError: refused"},
    }
    assert status.render(Path("/s"), 7, progs, (200, body)) == [
        "mailroom on /s: supervisord pid 7",
        "  worker  RUNNING   pid 12, uptime 0:00:05",
        "/healthz: 200 degraded; last pass 4 s ago (push); worker up; push disconnected",
        "  eventsource last error: ConnectError: refused",
    ]
    assert status.exit_code(progs, 200) == 0
    assert status.exit_code(progs, 503) == 1
    assert status.exit_code([status.Program("worker", "FATAL", None, "")], 200) == 1


def test_status_without_a_running_supervisord_says_so_and_exits_3(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "status"],
        env={
            **os.environ,
            "MAILROOM_STATE_DIR": str(tmp_path),
            "MAILROOM_DEMO_DIR": str(tmp_path / "demo"),  # not a demo that may run here
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert done.stdout.startswith(f"mailroom is not running on {tmp_path}: ")
    assert done.stdout.rstrip().endswith("start it with `mailroom run`")


def test_signals_are_the_stop_signals_of_a_terminal_and_a_service_manager() -> None:
    assert set(runsupervisor.STOP_SIGNALS) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def test_the_runner_needs_a_state_dir_and_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["/tmp/x"]) == 2
    assert "usage: python -m mailroom.run.runner STATE_DIR -- " in capsys.readouterr().err


def test_the_runner_imports_nothing_heavy_before_supervisord_starts() -> None:
    """`mailroom run` imports the runner (its lock) during its configuration check:
    supervisor comes in only where supervisord runs (runsupervisor)."""
    code = (
        "import sys, mailroom.run.runner; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'structlog', 'httpx', 'yaml', 'supervisor', 'mailroom.config'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"


# -- supervisord's loop with the run's rules (runsupervisor.RunSupervisor) ---------------------
class SignalOptions:
    """What RunSupervisor.handle_signal uses of supervisord's options."""

    def __init__(self, *signals: int) -> None:
        from supervisor.states import SupervisorStates

        self.signals = list(signals)
        self.mood = SupervisorStates.RUNNING
        self.said: list[str] = []
        self.reopened = 0
        self.logger = SimpleNamespace(warn=self.said.append, info=self.said.append)
        self.logger.blather = self.said.append

    def get_signal(self) -> int | None:
        return self.signals.pop(0) if self.signals else None

    def reopenlogs(self) -> None:
        self.reopened += 1


class Output:
    def __init__(self, closed: bool) -> None:
        self.is_closed = closed

    def closed(self) -> bool:
        return self.is_closed


def test_sighup_stops_like_sigterm_and_signals_are_taken_in_order() -> None:
    from supervisor.states import SupervisorStates

    options = SignalOptions(signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM)
    run = runsupervisor.RunSupervisor(options, Output(closed=False))
    run.handle_signal()  # SIGCHLD: nothing to do
    assert (run.asked, options.mood) == (None, SupervisorStates.RUNNING)
    run.handle_signal()
    assert (run.asked, options.mood) == ("SIGHUP", SupervisorStates.SHUTDOWN)  # not RESTARTING
    run.handle_signal()
    assert run.asked == "SIGHUP"  # the first reason stays
    assert "received SIGHUP indicating exit request" in options.said


def test_sigusr2_still_reopens_the_logs() -> None:
    options = SignalOptions(signal.SIGUSR2)
    run = runsupervisor.RunSupervisor(options, Output(closed=False))
    run.handle_signal()
    assert (options.reopened, run.asked) == (1, None)


def test_a_closed_output_stops_everything() -> None:
    from supervisor.states import SupervisorStates

    options = SignalOptions()
    run = runsupervisor.RunSupervisor(options, Output(closed=True))
    run.handle_signal()
    assert (run.asked, options.mood) == ("output closed", SupervisorStates.SHUTDOWN)


def test_the_output_watch_sees_a_pipe_whose_reader_is_gone() -> None:
    read_end, write_end = os.pipe()
    try:
        watch = outpipes.OutputWatch((write_end,))
        assert not watch.closed()
        os.close(read_end)
        assert watch.closed()
    finally:
        os.close(write_end)


def test_a_reload_closes_what_supervisord_leaked_but_not_the_output_copiers_fds() -> None:
    """``RunOptions.cleanup_fds`` (supervisord's, on `supervisorctl reload`) in a process
    of its own: it closes every descriptor from 5 up, so it must not run here."""
    code = (
        "import os\n"
        "from mailroom.run.runsupervisor import RunOptions\n"
        "null = os.open(os.devnull, os.O_RDONLY)\n"
        "fds = [os.dup2(null, fd) for fd in range(10, 16)]\n"
        "options = RunOptions()\n"
        "options.minfds, options.keep = 64, frozenset(fds[1::2])\n"
        "options.cleanup_fds()\n"
        "def is_open(fd):\n"
        "    try:\n"
        "        os.fstat(fd)\n"
        "    except OSError:\n"
        "        return False\n"
        "    return True\n"
        "print([is_open(fd) for fd in fds])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[0] == "[False, True, False, True, False, True]", done.stderr
