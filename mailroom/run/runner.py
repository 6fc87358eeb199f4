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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from mailroom.errors import LockTaken
from mailroom.run import pidlock
from mailroom.run.fatal import Stopped, read_stopped
from mailroom.run.outpipes import piped_output
from mailroom.statenames import RUN_LOCK, STOPPED_FILE, starts_name


def already_running(state_dir: Path, holder: pidlock.Holder) -> LockTaken:
    """Another `mailroom run` holds the state dir's run lock."""
    return LockTaken(
        f"mailroom is already running on {state_dir} (pid {holder.pid})",
        f"see it with `MAILROOM_STATE_DIR={state_dir} mailroom status`, "
        f"stop it with `kill {holder.pid}`",
        pid=holder.pid,
        state_dir=str(state_dir),
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


def run_lock(state_dir: Path) -> TextIO:
    """Hold ``STATE_DIR/run.lock`` (``pidlock``); LockTaken naming the holder when it is taken."""
    return pidlock.take(state_dir / RUN_LOCK, state_dir, lambda h: already_running(state_dir, h))


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
            from mailroom.run.runsupervisor import run_supervisord  # supervisor: only from here on

            with piped_output() as output:
                asked = run_supervisord(args[2:], output)
    except LockTaken as taken:
        return pidlock.refuse("run", taken)
    code, line = outcome(asked, read_stopped(state_dir))
    if line:
        _say(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
