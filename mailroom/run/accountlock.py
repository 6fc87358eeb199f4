"""One triaging worker per account, however its settings spell it.

The worker's ``STATE_DIR/worker.lock`` stops a second worker on the same state dir; this
lock stops one on another state dir, another spelling of the session URL or another
``XDG_RUNTIME_DIR`` that reaches the same account. It is keyed on the account as the
server names it, so it is taken at the worker's first pass, once the JMAP session is
known (a session that cannot be fetched is an ordinary failed pass, retried; no pass
writes anything before the lock is held): the session's ``username`` (trimmed,
case-folded), its mail account id, and the origin of its API URL (scheme, host and
port, lower-cased, the default port filled in: two servers may both have a user
"test"). The lock file is named by a hash of these, never a credential.

It lives in ``~/.local/state/mailroom-accounts``, with ``~`` the home the password
database gives this OS user (not ``$HOME`` nor ``$XDG_RUNTIME_DIR``, which differ
between a shell, a service manager and a test run), else in ``/tmp/mailroom-<uid>``
when there is no such home or it cannot be written; either is created 0700 and must be
ours and closed to others (``paths.check_private_dir``). What it cannot see (another
OS user, another machine) is in docs/decisions.md.

A second worker exits 78 with a message naming the first one's pid and state dir: it
is a configuration mistake, not something a restart fixes. The kernel releases an
``flock`` when its holder dies, so a crashed worker never leaves the account locked;
a worker that ends normally removes its file (a waiting opener notices the file it
locked is no longer the one at the path, and takes the new one).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar
from urllib.parse import urlsplit

from mailroom.errors import ConfigError, LockTaken
from mailroom.jmap.models import Session
from mailroom.paths import check_private_dir
from mailroom.run import pidlock
from mailroom.statenames import ACCOUNT_LOCK_DIR, ACCOUNT_LOCK_TMP_PREFIX, account_lock_name

T = TypeVar("T")
DEFAULT_PORTS = {"http": 80, "https": 443}
OPEN_ATTEMPTS = 5  # a holder removing its file as we open it: try the new file


def home_lock_dir(uid: int) -> Path | None:
    """``~/.local/state/mailroom-accounts`` for the home the password database names."""
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        return None
    return Path(home).joinpath(*ACCOUNT_LOCK_DIR) if home and os.path.isabs(home) else None


def tmp_lock_dir(uid: int) -> Path:
    return Path("/tmp") / f"{ACCOUNT_LOCK_TMP_PREFIX}{uid}"


def account_key(session: Session) -> str:
    """A stable file name for the account ``session`` opens: no credential goes into it."""
    parts = urlsplit(session.api_url)
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    origin = f"{scheme}://{(parts.hostname or '').lower()}:{port}"
    who = session.username.strip().casefold()
    digest = hashlib.sha256(f"{origin}\n{who}\n{session.account_id.strip()}".encode())
    return account_lock_name(digest.hexdigest()[:32])


def private_dir(path: Path) -> Path:
    """``path`` created 0700 if missing; ConfigError unless it is our own, private directory."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private_dir(
        path,
        name="the account lock directory",
        instead="remove it (mailroom makes a new one)",
    )
    return path


def lock_dir(uid: int) -> Path:
    """The home's lock directory, else the per-user one in /tmp (created, checked)."""
    home = home_lock_dir(uid)
    if home is not None:
        try:
            return private_dir(home)
        except OSError:
            pass  # a read-only or missing home: /tmp, as every run of this user will
    return private_dir(tmp_lock_dir(uid))


def taken(holder: pidlock.Holder) -> LockTaken:
    """Another worker of this OS user holds the account's lock."""
    return LockTaken(
        f"another mailroom worker (pid {holder.pid}, state dir {holder.state_dir or '?'}) "
        "already triages this account",
        "two workers would race: stop that one, or point this one at another account",
        pid=holder.pid,
        state_dir=holder.state_dir,
    )


def _open(path: Path, flags: int) -> int:
    """A link here is an OSError (a failed pass, retried): the directory is ours and private."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def acquire(path: Path, state_dir: Path) -> TextIO:
    """The locked file at ``path`` (``pidlock.take``); LockTaken naming the holder when
    it is taken."""
    for _ in range(OPEN_ATTEMPTS):
        f = pidlock.take(path, state_dir, taken, opener=_open)
        if _is_at(f, path):
            return f
        f.close()  # its holder removed it as it ended: lock the file now at the path
    raise ConfigError([f"cannot lock {path}: it keeps being replaced; try again"])


def release(f: TextIO, path: Path) -> None:
    """Remove the lock file (if it is still ours), then let the lock go."""
    if not f.closed:
        with contextlib.suppress(OSError):
            if _is_at(f, path):
                path.unlink()
        f.close()


def _is_at(f: TextIO, path: Path) -> bool:
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(f.fileno())
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def hold(session: Session, state_dir: Path) -> None:
    """Lock the account ``session`` opens for the rest of the process, or LockTaken."""
    path = lock_dir(os.getuid()) / account_key(session)
    f = acquire(path, state_dir)
    atexit.register(release, f, path)


def locked(
    pass_fn: Callable[[str], T], session: Callable[[], Session], state_dir: Path
) -> Callable[[str], T]:
    """``pass_fn`` behind the account lock, taken at the first pass that gets a session."""
    held = False

    def run(trigger: str) -> T:
        nonlocal held
        if not held:
            hold(session(), state_dir)
            held = True
        return pass_fn(trigger)

    return run
