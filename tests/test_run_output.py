"""`mailroom run`'s output: a file opened with `>` (no O_APPEND) holds every line intact
(slow). A non-root run whose stdout belongs to root (a container) is in
tests/test_container_real.py.

supervisord reopens /dev/stdout for each program's log; `mailroom run` puts pipes of its
own on its fd 1 and 2 and copies them from a thread (mailroom/run/outpipes.py), so
neither the offset of our file nor its owner matters.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import pytest

from mailroom_dev.servicebox import free_port, stop_session, unreachable_env
from mailroom_dev.wait import wait_until

pytestmark = pytest.mark.slow
SUPERVISORD_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]{4} \S")
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


def run_script(
    script: str, stdout: int | IO[bytes], stderr: IO[bytes]
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", script], stdout=stdout, stderr=stderr, timeout=60, check=False
    )


def test_every_writer_reaches_our_file_in_order_and_the_last_line_after_them(
    tmp_path: Path,
) -> None:
    """Writers through /dev/stdout and /dev/stderr as supervisord's (reopened, two at
    once), more than a pipe holds written by the main thread: all of it reaches a file
    opened without O_APPEND, whole and in order, before what is written after."""
    script = (
        "import sys\n"
        "from mailroom.run.outpipes import piped_output\n"
        "with piped_output():\n"
        "    a = open('/dev/stdout', 'ab', buffering=0)\n"
        "    b = open('/dev/stdout', 'ab', buffering=0)\n"
        "    e = open('/dev/stderr', 'ab', buffering=0)\n"
        "    for i in range(200):\n"
        "        (a if i % 2 else b).write(b'line %03d\\n' % i)\n"
        "    e.write(b'to stderr\\n')\n"
        "    for i in range(20000):\n"
        "        print(f'bulk {i:05d}', 'x' * 90)\n"
        "print('the last line', flush=True)\n"
        "print('said last', file=sys.stderr, flush=True)\n"
    )
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as o, err.open("wb") as e:  # O_TRUNC, no O_APPEND: `> out 2> err`
        done = run_script(script, stdout=o, stderr=e)
    assert done.returncode == 0, err.read_text()
    assert out.read_text().splitlines() == [
        *(f"line {i:03d}" for i in range(200)),
        *(f"bulk {i:05d} {'x' * 90}" for i in range(20000)),
        "the last line",
    ]
    assert err.read_text().splitlines() == ["to stderr", "said last"]


def test_a_write_that_fails_marks_the_output_closed_and_nothing_blocks(tmp_path: Path) -> None:
    """Our stdout a socket whose peer is gone (not a FIFO: only the failed write can
    tell): ``closed()`` says so, later writes are dropped instead of filling the pipe."""
    script = (
        "import sys\n"
        "from mailroom.run.outpipes import piped_output\n"
        "from mailroom_dev.wait import wait_until\n"
        "with piped_output() as out:\n"
        "    before = out.closed()\n"
        "    print('nobody reads this', flush=True)\n"
        "    wait_until(out.closed, 'the copy to fail', 30)\n"
        "    for i in range(20000):\n"
        "        print('dropped', 'x' * 90)\n"
        "print(f'closed before {before}, after {out.closed()}', file=sys.stderr)\n"
    )
    ours, peer = socket.socketpair()
    peer.close()
    err = tmp_path / "err"
    with ours, err.open("wb") as e:
        done = run_script(script, stdout=ours.fileno(), stderr=e)
    assert err.read_text().splitlines() == ["closed before False, after True"]
    assert done.returncode == 0
