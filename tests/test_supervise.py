"""`mailroom run` and supervisord.conf: pure pieces, then a real supervisord (slow)."""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mailroom import statenames
from mailroom.errors import ConfigError
from mailroom.run.fatal import read_stopped
from mailroom.run.supervise import (
    check_socket_fits,
    conf_path,
    supervisord_argv,
    supervisord_env,
)
from mailroom_dev.servicebox import program_states, stop_session, supervisorctl, unreachable_env
from mailroom_dev.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = ("health", "listener", "worker")


def test_the_conf_ships_inside_the_package_and_the_root_file_is_the_same(tmp_path: Path) -> None:
    packaged = conf_path(tmp_path)
    assert packaged == REPO / "mailroom" / "supervisord.conf"
    assert (REPO / "supervisord.conf").resolve() == packaged.resolve()
    assert list(tmp_path.iterdir()) == []  # nothing copied for an unzipped install


def test_the_conf_names_its_state_dir_files_as_statenames_does() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    in_state_dir = "%(ENV_MAILROOM_STATE_DIR)s/"
    assert conf["supervisord"]["pidfile"] == in_state_dir + statenames.SUPERVISORD_PID
    assert conf["unix_http_server"]["file"] == in_state_dir + statenames.SUPERVISOR_SOCKET
    assert conf["supervisorctl"]["serverurl"] == (
        "unix://" + in_state_dir + statenames.SUPERVISOR_SOCKET
    )


def test_the_conf_runs_the_three_commands_with_restarts_and_a_control_socket() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    assert conf["supervisord"]["nodaemon"] == "true"
    assert conf["unix_http_server"]["file"] == "%(ENV_MAILROOM_STATE_DIR)s/supervisor.sock"
    assert conf["supervisorctl"]["serverurl"].startswith("unix://")
    assert "rpcinterface:supervisor" in conf
    commands = {p: conf[f"program:{p}"]["command"] for p in PROGRAMS}
    assert commands == {  # each tied to supervisord, with a restart back-off (lifeline)
        "listener": "mailroom-lifeline listen",
        "worker": "mailroom-lifeline work",
        "health": "mailroom-lifeline health",
    }
    for p in PROGRAMS:
        section = conf[f"program:{p}"]
        assert section["autorestart"] == "unexpected"
        assert section["exitcodes"] == "78"  # a config error is not restarted
        assert section["stopsignal"] == "TERM"
        assert section["stdout_logfile"] == "/dev/stdout"
        assert section["stdout_logfile_maxbytes"] == "0"
        # every exit is judged by exitcodes alone (no "exited too quickly" path):
        assert section["startsecs"] == "0"
        assert (section["stopasgroup"], section["killasgroup"]) == ("true", "true")


def test_the_conf_ends_supervisord_when_a_program_is_down_for_good() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    plugin = conf["rpcinterface:mailroom"]  # inside supervisord: no event-listener process
    assert plugin["supervisor.rpcinterface_factory"] == "mailroom.run.fatal:make_rpcinterface"
    assert not [s for s in conf.sections() if s.startswith("eventlistener:")]


def test_procfile_is_the_one_container_web_mailroom_run() -> None:
    assert (REPO / "Procfile").read_text().splitlines() == ["web: mailroom run"]


def test_procfile_dev_names_the_three_processes_with_web_first() -> None:
    lines = (REPO / "Procfile.dev").read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#")]
    assert entries == ["web: mailroom health", "listener: mailroom listen", "worker: mailroom work"]


def test_supervisord_runs_in_the_foreground_from_this_interpreter() -> None:
    argv = supervisord_argv(Path("/x/supervisord.conf"), python="/venv/bin/python")
    assert argv == [
        "/venv/bin/python",
        "-m",
        "supervisor.supervisord",
        "-c",
        "/x/supervisord.conf",
        "-n",
    ]


def test_the_programs_get_state_dir_and_the_mailroom_script_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mailroom").write_text("#!/bin/sh\n")
    env = supervisord_env(
        {"PATH": "/usr/bin:/bin", "MAILROOM_JMAP_TOKEN": "t"},
        tmp_path / "state",
        [tmp_path / "nowhere", bin_dir],
    )
    assert env["MAILROOM_STATE_DIR"] == str(tmp_path / "state")
    assert env["PATH"] == f"{bin_dir}:/usr/bin:/bin"
    assert env["MAILROOM_JMAP_TOKEN"] == "t"


def test_path_is_left_alone_when_no_mailroom_script_is_found(tmp_path: Path) -> None:
    env = supervisord_env({"PATH": "/usr/bin"}, tmp_path, [tmp_path])
    assert env["PATH"] == "/usr/bin"


def test_a_state_dir_too_long_for_the_control_socket_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MAILROOM_STATE_DIR"):
        check_socket_fits(Path("/tmp/" + "s" * 100))
    check_socket_fits(Path("/tmp/short"))


@pytest.mark.parametrize("name", ["supervisord.pid", "supervisor.sock"])
def test_a_link_at_supervisords_pid_or_socket_ends_run_with_exit_78(
    name: str, tmp_path: Path
) -> None:
    """`mailroom run` refuses before supervisord starts; the link's target is untouched."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (state_dir / name).symlink_to(target)
    env = unreachable_env(state_dir, free_port())
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 78, done.stderr
    assert f"config error: {state_dir / name} is a symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert target.read_text() == "keep me\n"
    assert not (state_dir / "run.lock").exists()  # nothing started


def test_a_link_at_the_run_lock_ends_run_with_exit_78(tmp_path: Path) -> None:
    """run.lock is refused as the other locks are: a line and exit 78, the target as it was."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (state_dir / "run.lock").symlink_to(target)
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "run"],
        env=unreachable_env(state_dir, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 78, done.stderr
    assert f"config error: {state_dir / 'run.lock'} is a symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert target.read_text() == "keep me\n"
    assert not (state_dir / "supervisord.pid").exists()  # nothing started


# -- a real supervisord -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Supervised:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    port: int
    output: Path

    def ctl(self, *args: str) -> str:
        return supervisorctl(self.env, *args)

    def states(self) -> dict[str, tuple[str, int | None]]:
        return program_states(Path(self.env["MAILROOM_STATE_DIR"]))


def all_running(sup: Supervised) -> bool:
    states = sup.states()
    return len(states) == 3 and all(s == "RUNNING" for s, _ in states.values())


def started(sup: Supervised) -> bool:
    """Past the programs' start: health answers and the worker wrote its status file.

    (RUNNING alone says little: startsecs=0.)"""
    try:
        httpx.get(f"http://127.0.0.1:{sup.port}/healthz", timeout=5)
    except httpx.TransportError:
        return False
    return (Path(sup.env["MAILROOM_STATE_DIR"]) / "worker.json").exists()


@contextmanager
def mailroom_run(**extra_env: str) -> Iterator[Supervised]:
    """`mailroom run` in its own session, with every program RUNNING; stopped after."""
    with tempfile.TemporaryDirectory(prefix="mrs", dir="/tmp") as d:
        state_dir = Path(d)
        port = free_port()
        env = {**unreachable_env(state_dir, port), **extra_env}
        output = state_dir / "supervisord.out"
        with output.open("ab") as out:  # O_APPEND: children write via /dev/stdout too
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailroom", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=d,
                start_new_session=True,
            )
        sup = Supervised(proc, env, port, output)
        try:
            wait_until(
                lambda: all_running(sup) and started(sup),
                "the three programs to be up",
                45,
                every=0.2,
            )
            yield sup
        except BaseException:
            print(output.read_text(errors="replace")[-5000:])
            raise
        finally:
            stop_session(proc)


@pytest.fixture
def supervised() -> Iterator[Supervised]:
    with mailroom_run() as sup:
        yield sup


@pytest.mark.slow
def test_mailroom_run_starts_three_programs_and_health_answers(supervised: Supervised) -> None:
    resp = httpx.get(f"http://127.0.0.1:{supervised.port}/healthz", timeout=10)
    body = resp.json()
    assert body["eventsource"]["status"] in ("connecting", "disconnected")
    assert "test-token" not in resp.text
    assert "test-password" not in resp.text
    assert "test-token" not in supervised.output.read_text(errors="replace")


@pytest.mark.slow
def test_supervisorctl_stop_all_stops_all_three(supervised: Supervised) -> None:
    started = time.monotonic()
    supervised.ctl("stop", "all")
    elapsed = time.monotonic() - started
    print(f"supervisorctl stop all took {elapsed:.2f} s")
    states = supervised.states()
    assert {p: s for p, (s, _) in states.items()} == dict.fromkeys(PROGRAMS, "STOPPED")
    worker_doc = (Path(supervised.env["MAILROOM_STATE_DIR"]) / "worker.json").read_text()
    assert '"status": "stopped"' in worker_doc


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_a_program_killed_with_sigkill_is_restarted(supervised: Supervised, program: str) -> None:
    _, old_pid = supervised.states()[program]
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        state, pid = supervised.states()[program]
        return state == "RUNNING" and pid not in (None, old_pid)

    wait_until(restarted, f"{program} to be restarted", 45, every=0.2)


@pytest.mark.slow
def test_a_worker_that_gives_up_after_failed_passes_is_restarted() -> None:
    # Every pass fails (the server is unreachable); 10 in a row take about 10 s.
    with mailroom_run(MAILROOM_POLL_INTERVAL="1") as sup:
        _, first_pid = sup.states()["worker"]

        def restarted() -> bool:
            state, pid = sup.states()["worker"]
            return state == "RUNNING" and pid not in (None, first_pid)

        wait_until(restarted, "the worker to give up and be restarted", 90, every=0.2)
        out = sup.output.read_text(errors="replace")
        assert "worker_giving_up" in out
        assert "exited: worker (exit status 1; not expected)" in out


@pytest.mark.slow
def test_a_config_error_stops_supervisord_at_once_not_a_restart_loop() -> None:
    with tempfile.TemporaryDirectory(prefix="mrs", dir="/tmp") as d:
        env = unreachable_env(Path(d), free_port())
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        env["MAILROOM_POLL_INTERVAL"] = "-1"  # invalid: listener and worker exit 78 at once
        with (Path(d) / "out").open("ab") as out:  # supervisord by hand, no `mailroom run`
            proc = subprocess.Popen(
                supervisord_argv(conf_path(REPO)),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            assert proc.wait(timeout=60) == 0  # the FATAL plugin shut it down
            out_text = (Path(d) / "out").read_text(errors="replace")
            assert "config error" in out_text
            stopped = read_stopped(Path(d))
            assert stopped is not None
            assert stopped.program in ("listener", "worker")
            assert (stopped.exit_code, stopped.reason) == (
                78,
                "exited with status 78 (a configuration error, its message is above)",
            )
            for program in ("listener", "worker"):  # each was started once, never again
                assert out_text.count(f"spawned: '{program}'") == 1
        finally:
            stop_session(proc)


def test_mailroom_run_with_a_config_error_exits_78_before_supervisord(tmp_path: Path) -> None:
    env = unreachable_env(tmp_path, free_port())
    env["MAILROOM_POLL_INTERVAL"] = "-1"
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 78
    assert "config error" in done.stderr
    assert not (tmp_path / "supervisor.sock").exists()
