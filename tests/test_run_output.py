"""`mailroom run`'s output: a file opened with `>` (no O_APPEND) holds every line intact
(slow). A non-root run whose stdout belongs to root (a container) is in
tests/test_container_real.py.

supervisord reopens /dev/stdout for each program's log; `mailroom run` gives it pipes of
its own and copies them (mailroom/service/runner.py), so neither the offset of our file
nor its owner matters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mailroom_dev.servicebox import free_port, stop_session, unreachable_env
from mailroom_dev.wait import wait_until

pytestmark = pytest.mark.slow
SUPERVISORD_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]{4} \S")
RUNNER = (sys.executable, "-m", "mailroom.service.runner")
RUNNER_LINE = re.compile(r"mailroom run: ")


def intact(line: str) -> bool:
    """A whole JSON log line, a whole supervisord line or the runner's own line."""
    if SUPERVISORD_LINE.match(line) or RUNNER_LINE.match(line):
        return True
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@pytest.mark.timeout(120)
def test_a_log_written_with_truncate_holds_every_line_intact() -> None:
    with tempfile.TemporaryDirectory(prefix="mro", dir="/tmp") as d:
        port = free_port()
        env = {**unreachable_env(Path(d) / "state", port), "MAILROOM_LOG_FORMAT": "json"}
        log = Path(d) / "run.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # `> run.log`
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailroom", "run"],
                env=env,
                stdout=fd,
                stderr=fd,
                cwd=d,
                start_new_session=True,
            )
        finally:
            os.close(fd)
        try:  # the listener reconnecting, the worker failing: every program writes
            wait_until(
                lambda: (
                    log.read_text(errors="replace").count("eventsource_session_failed") >= 3
                    and "pass_failed" in log.read_text(errors="replace")
                ),
                "the listener's and the worker's lines",
                60,
            )
        finally:
            stop_session(proc)
        text = log.read_text(errors="replace")
    lines = text.splitlines()
    assert "\x00" not in text  # no hole left by a writer at a stale offset
    assert [line for line in lines if not intact(line)] == []
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert "supervisord_starting" in events  # `mailroom run`'s own line, before supervisord
    assert events.count("eventsource_session_failed") >= 3
    assert "pass_failed" in events
    assert any("stopped: worker" in line for line in lines)  # supervisord's, written last


def test_the_runner_copies_supervisords_output_in_order(tmp_path: Path) -> None:
    """A stand-in for supervisord that writes through /dev/stdout and /dev/stderr as
    supervisord does: what it wrote reaches our file whole and in order."""
    script = (
        "import os\n"
        "a = open('/dev/stdout', 'ab', buffering=0)\n"
        "b = open('/dev/stdout', 'ab', buffering=0)\n"
        "e = open('/dev/stderr', 'ab', buffering=0)\n"
        "for i in range(200):\n"
        "    (a if i % 2 else b).write(b'line %03d\\n' % i)\n"
        "e.write(b'to stderr\\n')\n"
    )
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as o, err.open("w") as e:
        done = subprocess.run(
            [*RUNNER, str(state), "--", sys.executable, "-c", script],
            stdout=o,
            stderr=e,
            timeout=60,
            check=False,
        )
    assert out.read_text().splitlines() == [f"line {i:03d}" for i in range(200)]
    assert "to stderr" in err.read_text()
    assert done.returncode == 1  # "supervisord" exited on its own: said, and non-zero
