"""The parent of supervisord in `mailroom run`: a run lock, signals, the output pipe, the exit.

`mailroom run` checks the configuration, then replaces itself with
``python -m mailroom.service.runner STATE_DIR -- SUPERVISORD_ARGV...``: this module
imports the standard library only, so the process that stays up for the service's
lifetime holds a few MiB instead of pydantic and structlog.

``supervise`` is the I/O shell: it takes ``STATE_DIR/run.lock`` (and hands the lock's file to
supervisord, so the lock is held until both are gone), starts supervisord in its own
session with a parent-death signal, and waits in ``poll()`` for one of: a signal
(SIGINT, SIGTERM, SIGHUP: stop; SIGCHLD: supervisord ended), or our stdout/stderr pipe
losing its reader (POLLERR: `mailroom run | tee log` after the tee was killed). The
first stop request sends supervisord SIGTERM (it stops the programs, each within its
stopwaitsecs, then SIGKILLs what is left); later ones change nothing (Ctrl-C and a
parent's SIGTERM often come together). ``outcome`` (pure) turns the way it ended
into an exit code and one line.

supervisord's stdout and stderr are pipes of ours, copied to our own stdout and stderr
(``_copy``): supervisord reopens ``/dev/stdout`` for each program's log, and a reopened
descriptor neither shares our file's offset (``mailroom run > run.log`` would be
overwritten line by line, from offset 0) nor may be opened at all when it belongs to
another user (a container's pipe, made by root, under ``USER mailroom``: EACCES).
A pipe we made is ours, and appends by nature; we write what comes out of it in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO

from mailroom.errors import MailroomError
from mailroom.service.fatal import STOPPED_FILE, Stopped, read_stopped
from mailroom.service.lifeline import STARTS_SUFFIX, libc, set_parent_death_signal

RUN_LOCK = "run.lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PIPE_GONE = select.POLLERR | select.POLLHUP


class AlreadyRunning(MailroomError):
    """Another `mailroom run` holds the state dir's run lock."""

    def __init__(self, pid: str, state_dir: Path) -> None:
        super().__init__(
            f"mailroom is already running on {state_dir} (pid {pid}); "
            f"see it with `MAILROOM_STATE_DIR={state_dir} mailroom status`, "
            f"stop it with `kill {pid}`"
        )


def outcome(returncode: int, asked: str | None, stopped: Stopped | None) -> tuple[int, str | None]:
    """Our exit code and the line to print, from how supervisord ended.

    ``asked`` names what told us to stop (a signal's name, or "output closed"), if
    anything did; ``stopped`` is what the FATAL listener left, if anything.
    """
    if stopped is not None:
        return stopped.exit_code, stopped.line()
    if asked == "output closed":
        return 1, "mailroom run: its output was closed; everything was stopped"
    if asked is not None:
        return 0, None
    how = (
        f"was killed by {signal.Signals(-returncode).name}"
        if returncode < 0
        else f"exited with status {returncode}"
    )
    return 1, f"mailroom run: supervisord {how}; the programs stop with it"


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


def _tie_to_parent() -> None:  # runs in the child between fork and exec
    set_parent_death_signal(signal.SIGTERM)


def _watched_pipes() -> select.poll:
    """stdout and stderr when they are pipes: POLLERR once their reader is gone."""
    poller = select.poll()
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.stat(fd).st_mode & 0o170000 == 0o010000:  # S_IFIFO
                poller.register(fd, 0)  # no events asked: only POLLERR/POLLHUP come
    return poller


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def supervise(argv: Sequence[str], env: Mapping[str, str], state_dir: Path, lock: int) -> int:
    """supervisord (``argv``) as our child until it ends; our exit code.

    ``lock`` is the run lock's descriptor (see ``run_lock``), handed on to supervisord.
    """
    (state_dir / STOPPED_FILE).unlink(missing_ok=True)
    for record in state_dir.glob(f".*{STARTS_SUFFIX}"):  # a new run starts without back-off
        record.unlink(missing_ok=True)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous = {s: signal.signal(s, _noop) for s in (*STOP_SIGNALS, signal.SIGCHLD)}
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    libc()  # loaded here, not in the forked child
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            pass_fds=(lock,),
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,
            preexec_fn=_tie_to_parent if sys.platform.startswith("linux") else None,
        )
        os.close(out_w)
        os.close(err_w)
        asked = _wait(proc, wake_r, {out_r: 1, err_r: 2})
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for s, h in previous.items():
            signal.signal(s, h)
        for fd in (wake_r, wake_w, out_r, out_w, err_r, err_w):
            with contextlib.suppress(OSError):
                os.close(fd)
    code, line = outcome(proc.returncode, asked, read_stopped(state_dir))
    if line:
        _say(line)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mailroom.service.runner STATE_DIR -- COMMAND...``: our exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        _say("usage: python -m mailroom.service.runner STATE_DIR -- SUPERVISORD_ARGV...")
        return 2
    state_dir = Path(args[0])
    try:
        with run_lock(state_dir) as lock:
            return supervise(args[2:], os.environ, state_dir, lock.fileno())
    except AlreadyRunning as exc:
        _say(f"mailroom run: {exc}")
        return 1


def _noop(signum: int, frame: FrameType | None) -> None:
    pass  # the wakeup fd carries the signal number to _wait


def _wait(proc: subprocess.Popen[bytes], wake: int, copies: dict[int, int]) -> str | None:
    """Until supervisord ends, copying its output (``copies``: its pipe -> our fd);
    what asked us to stop it, if anything did."""
    poller = _watched_pipes()
    poller.register(wake, select.POLLIN)
    for fd in copies:
        poller.register(fd, select.POLLIN)
    asked: str | None = None
    while proc.poll() is None:
        for fd, events in poller.poll(1000):
            if fd == wake:
                signums = os.read(wake, 64)
                stops = [s for s in signums if s in STOP_SIGNALS]
                if stops and asked is None:
                    asked = _stop(proc, signal.Signals(stops[0]).name)
            elif fd in copies:
                if not _copy(fd, copies[fd]):
                    poller.unregister(fd)
                    del copies[fd]
            elif events & PIPE_GONE:
                poller.unregister(fd)
                if asked is None:
                    asked = _stop(proc, "output closed")
    for fd, to in copies.items():  # what supervisord wrote last, up to EOF
        os.set_blocking(fd, False)
        with contextlib.suppress(BlockingIOError):
            while _copy(fd, to):
                pass
    return asked


def _copy(pipe: int, to: int) -> bool:
    """One read from ``pipe`` written whole to ``to``; False at EOF. Output nobody
    reads any more is dropped (the pipe watch stops supervisord), never left to fill
    the pipe and block supervisord."""
    data = os.read(pipe, 65536)
    with contextlib.suppress(OSError):
        view = memoryview(data)
        while view:
            view = view[os.write(to, view) :]
    return bool(data)


def _stop(proc: subprocess.Popen[bytes], why: str) -> str:
    """SIGTERM to supervisord: it stops the programs, then exits; ``why`` returned."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    return why


if __name__ == "__main__":
    sys.exit(main())
