"""`mailroom-lifeline COMMAND`: how supervisord starts each program, tied to its parent.

supervisord runs ``mailroom-lifeline listen`` (``work``, ``health``), which does two
things within milliseconds of the spawn, before the program's heavy imports, then
runs ``mailroom COMMAND`` in the same process (same pid):

- **Parent death.** When the parent (supervisord) dies, even by ``kill -9``, the
  program gets SIGTERM and stops as it would under ``supervisorctl stop``. On Linux
  the kernel does this (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls
  ``getppid()`` once a second.
- **Restart back-off.** supervisord restarts a crashed program at once, with no pause
  (``startsecs=0``; see supervisord.conf for why). So the program waits before
  starting when its previous start was recent: 1 s, 2 s, 4 s ... up to ``MAX_DELAY``,
  and none once a run has lasted ``STABLE_AFTER`` seconds. A crash at import time (a
  broken install) is paced too. ``next_delay`` is pure; only ``started`` sleeps.
  `mailroom run` clears the records when it starts, so a fixed configuration starts
  at once. A configuration error exits 78 on the first start: never restarted.

Standard library only, until the command itself is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import namedtuple

from mailroom.paths import StrPath
from mailroom.procsettings import read_environment, state_dir
from mailroom.statenames import starts_name

PR_SET_PDEATHSIG = 1
COMMANDS = {"listen": "listener", "work": "worker", "health": "health"}  # command -> program
MAX_DELAY = 60.0
STABLE_AFTER = 60.0
POLL_SECONDS = 1.0


class Starts(namedtuple("Starts", ("at", "delay"))):
    """The last start of one program: when, and the delay it waited. (Not a dataclass
    nor a typing.NamedTuple: those import inspect and typing, 2.4 MiB in every program.)"""

    __slots__ = ()

    at: float
    delay: float


def next_delay(previous: Starts | None, now: float) -> float:
    """How long a program starting at ``now`` waits, given its previous start."""
    if previous is None or now - previous.at >= STABLE_AFTER + previous.delay:
        return 0.0
    return min(MAX_DELAY, max(1.0, 2 * previous.delay))


def _read_starts(path: StrPath) -> Starts | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.loads(f.read())
        return Starts(float(doc["at"]), float(doc["delay"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_starts(path: StrPath, starts: Starts) -> None:
    """Replace ``path`` atomically; never through a symlink planted at the temp name."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}")
    data = json.dumps({"at": starts.at, "delay": starts.delay}).encode()
    with contextlib.suppress(OSError):  # a read-only state dir must not stop the program
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def die_with_parent(*, use_prctl: bool = True) -> str:
    """SIGTERM to this process when its parent dies; how ("prctl" or "poll")."""
    parent = os.getppid()
    if use_prctl and sys.platform.startswith("linux") and set_parent_death_signal(signal.SIGTERM):
        if os.getppid() != parent:  # it died while prctl was being set
            os.kill(os.getpid(), signal.SIGTERM)
        return "prctl"
    thread = threading.Thread(target=_watch_parent, args=(parent,), daemon=True)
    thread.name = "lifeline"
    thread.start()
    return "poll"


def set_parent_death_signal(sig: int) -> bool:
    """Linux: ask the kernel for ``sig`` when our parent dies; False when it cannot."""
    import ctypes  # here: only the programs set a parent-death signal

    try:  # the C library linked into this interpreter (find_library may spawn ldconfig)
        c = ctypes.CDLL(None, use_errno=True)
        return int(c.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no C library to load, or no prctl in it
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def starts_file(state_dir: StrPath, program: str) -> str:
    return os.path.join(state_dir, starts_name(program))


def started(program: str, state_dir: StrPath, *, now: float | None = None) -> float:
    """Tie to the parent, then wait out the restart back-off; the delay waited."""
    die_with_parent()
    path = starts_file(state_dir, program)
    at = time.time() if now is None else now
    delay = next_delay(_read_starts(path), at)
    _write_starts(path, Starts(at, delay))
    if delay > 0:
        _say(program, delay)
        time.sleep(delay)
    return delay


def _say(program: str, delay: float) -> None:
    from mailroom.run.statefiles import utc_stamp

    line: dict[str, object] = {"timestamp": utc_stamp(time.time()), "level": "warning"}
    line.update(event="restart_backoff", program=program, delay=delay)
    print(json.dumps(line), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``mailroom-lifeline COMMAND``: the tie and the back-off, then ``mailroom COMMAND``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in COMMANDS:
        print(f"usage: mailroom-lifeline {{{','.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    started(COMMANDS[args[0]], state_dir(read_environment()))
    from mailroom.cli import main as mailroom

    return mailroom(args)
