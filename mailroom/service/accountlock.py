"""One triaging worker per account, whatever its state dir.

The worker's ``STATE_DIR/worker.lock`` stops a second worker on the same state dir; this
lock stops one on another state dir that points at the same account (two `mailroom
run`s with different ``MAILROOM_STATE_DIR``s would race on the same mail). The lock
file lives in a per-user directory, ``$XDG_RUNTIME_DIR/mailroom`` or else
``/tmp/mailroom-<uid>``, named by a hash of the JMAP session URL and the username
(never the token). A second worker exits 78 with a message naming the first one's
pid and state dir: it is a configuration mistake, not something a restart fixes.

The kernel releases an ``flock`` when its holder dies, so a crashed worker never
leaves the account locked.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mailroom.errors import ConfigError

if TYPE_CHECKING:
    from mailroom.config import Settings

_held: list[TextIO] = []  # the open lock file lives as long as the process


def lock_dir(environ: Mapping[str, str], uid: int) -> Path:
    """The per-user directory for account locks."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "mailroom"
    return Path("/tmp") / f"mailroom-{uid}"  # checked: ours, mode 0700


def account_key(session_url: str, username: str) -> str:
    """A stable file name for one account: no credential goes into it."""
    digest = hashlib.sha256(f"{session_url}\n{username}".encode()).hexdigest()
    return f"account-{digest[:32]}.lock"


def private_dir(path: Path, uid: int) -> Path:
    """``path`` created 0700 if missing; ConfigError unless it is our own, private directory."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022:
        raise ConfigError(
            [
                f"{path} (where mailroom keeps its per-account locks) is not a private "
                "directory of this user; remove it or set XDG_RUNTIME_DIR to one"
            ]
        )
    return path


def acquire(path: Path, state_dir: Path) -> TextIO:
    """The locked file at ``path``; ConfigError naming the holder when it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    f = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(f.read())
        f.close()
        raise ConfigError(
            [
                f"another mailroom worker (pid {holder.get('pid', '?')}, state dir "
                f"{holder.get('state_dir', '?')}) already triages this account; two workers "
                "would race: stop that one, or point this one at another account"
            ]
        ) from None
    f.truncate(0)
    f.write(json.dumps({"pid": os.getpid(), "state_dir": str(state_dir)}) + "\n")
    f.flush()
    return f


def _holder(text: str) -> dict[str, object]:
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def hold(settings: Settings) -> None:
    """The worker's call: lock its account for the rest of the process, or ConfigError."""
    uid = os.getuid()
    directory = private_dir(lock_dir(os.environ, uid), uid)
    name = account_key(settings.jmap_session_url, settings.carddav_username or "")
    _held.append(acquire(directory / name, settings.state_dir))
