"""The one lock helper: an ``flock`` on a file that records who holds it.

Every lock mailroom takes is one of these: `mailroom run`'s ``STATE_DIR/run.lock``, the
worker's ``STATE_DIR/worker.lock`` and the worker's account lock (``run.accountlock``).
``take`` opens the file (never through a symbolic link), locks it without waiting and
writes the holder, ``{"pid": ..., "state_dir": ...}``; when another process holds it,
the caller's ``refusal`` turns that holder into the one refusal, ``errors.LockTaken``
(what holds it, what to do). The kernel releases an ``flock`` when its holder dies, so a
crashed process never leaves a lock held. ``refuse`` is how a program that exits 1
rather than 78 on a held lock says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TextIO

from mailroom.errors import LockTaken
from mailroom.paths import open_nofollow

UNKNOWN = "unknown"  # a lock file that names nobody (written by hand, or empty)


class Holder(NamedTuple):
    """Who holds a lock, as its file records it. (Not a dataclass: see fatal.Stopped.)"""

    pid: str
    state_dir: str | None = None

    @classmethod
    def of(cls, text: str) -> Holder:
        """The holder in a lock file's text: its JSON line, or a bare pid (pure)."""
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return cls(text.strip() or UNKNOWN)
        state_dir = doc.get("state_dir")
        return cls(str(doc.get("pid", UNKNOWN)), None if state_dir is None else str(state_dir))


Refusal = Callable[[Holder], LockTaken]
Opener = Callable[[Path, int], int]


def take(
    path: Path, state_dir: Path, refusal: Refusal, *, opener: Opener = open_nofollow
) -> TextIO:
    """The locked file at ``path``, with our pid and ``state_dir`` in it (closing it, or
    leaving its ``with``, lets the lock go); ``refusal(holder)`` is raised when another
    process holds it. ``opener`` opens without following a link (``paths.open_nofollow``:
    a ConfigError naming it)."""
    f = os.fdopen(opener(path, os.O_RDWR | os.O_CREAT), "r+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = Holder.of(f.read())
        f.close()
        raise refusal(holder) from None
    except BaseException:
        f.close()
        raise
    f.truncate(0)
    f.write(json.dumps({"pid": os.getpid(), "state_dir": str(state_dir)}) + "\n")
    f.flush()
    return f


def refuse(command: str, taken: LockTaken) -> int:
    """``mailroom COMMAND: <what holds it>; <what to do>`` on stderr; exit code 1."""
    with contextlib.suppress(OSError):  # a closed stderr must not hide the exit code
        print(f"mailroom {command}: {taken}", file=sys.stderr, flush=True)
    return 1
