"""`mailroom run` after its configuration check: the run lock, then supervisord in this
same process, then the exit.

`mailroom run` checks the configuration, then replaces itself with
``python -m mailroom.run.runner STATE_DIR -- SUPERVISORD_ARGS...``. This module takes
``STATE_DIR/run.lock`` (a second run on the same state dir is refused, naming the first
one's pid), clears what a previous run left (the stop reason, the restart back-off
records), and runs supervisord's own loop in this process
(``mailroom.run.runsupervisor``): `mailroom run`'s pid is supervisord's, so there is
no parent to keep alive, tie to supervisord or pass signals on. The lock is held until
this process is gone (supervisord closes it in the programs it starts); the programs
die with it, even by kill -9 (``mailroom.run.lifeline``). supervisord's stdout and
stderr are pipes of this process, copied to the real ones by a thread
(``mailroom.run.outpipes``: `> run.log` keeps every line, a stdout owned by another
user works). ``outcome`` (pure) turns the way it ended into an exit code and one line,
printed after everything supervisord wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from mailroom.errors import MailroomError
from mailroom.run.fatal import Stopped, read_stopped
from mailroom.run.outpipes import piped_output
from mailroom.statenames import RUN_LOCK, STOPPED_FILE, starts_name


class AlreadyRunning(MailroomError):
    """Another `mailroom run` holds the state dir's run lock."""

    def __init__(self, pid: str, state_dir: Path) -> None:
        super().__init__(
            f"mailroom is already running on {state_dir} (pid {pid}); "
            f"see it with `MAILROOM_STATE_DIR={state_dir} mailroom status`, "
            f"stop it with `kill {pid}`"
        )


def outcome(asked: str | None, stopped: Stopped | None) -> tuple[int, str | None]:
    """Our exit code and the line to print, from how supervisord's loop ended.

    ``asked`` names what told us to stop (a signal's name, or "output closed"), if
    anything did; ``stopped`` is what the FATAL plugin left, if anything.
    """
    if stopped is not None:
        return stopped.exit_code, stopped.line()
    if asked == "output closed":
        return 1, "mailroom run: its output was closed; everything was stopped"
    if asked is not None:
        return 0, None
    return 1, "mailroom run: supervisord was shut down (supervisorctl shutdown); everything stopped"


@contextmanager
def run_lock(state_dir: Path) -> Iterator[IO[str]]:
    """Hold ``STATE_DIR/run.lock`` with our pid in it; AlreadyRunning when it is taken."""
    path = state_dir / RUN_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f.read().strip() or "unknown", state_dir) from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield f


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def clear_previous_run(state_dir: Path) -> None:
    """A new run starts without the last one's stop reason or restart back-off."""
    (state_dir / STOPPED_FILE).unlink(missing_ok=True)
    for record in state_dir.glob(starts_name("*")):
        record.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mailroom.run.runner STATE_DIR -- SUPERVISORD_ARGS...``: our exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        _say("usage: python -m mailroom.run.runner STATE_DIR -- SUPERVISORD_ARGS...")
        return 2
    state_dir = Path(args[0])
    try:
        with run_lock(state_dir):
            clear_previous_run(state_dir)
            from mailroom.run.runsupervisor import serve  # supervisor: only from here on

            with piped_output() as output:
                asked = serve(args[2:], output)
    except AlreadyRunning as exc:
        _say(f"mailroom run: {exc}")
        return 1
    code, line = outcome(asked, read_stopped(state_dir))
    if line:
        _say(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
