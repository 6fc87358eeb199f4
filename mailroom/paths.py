"""Where the processes meet: the files in the state dir, the ``.env`` file, and the
small files settings are read from.

Standard library only, and no pathlib (health imports this module through
``mailroom.procsettings``, which holds the state dir's rule). This module is the one
source of the checks that keep the state dir private (``ensure_state_dir``) and its
files from being redirected (``open_nofollow``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from mailroom.errors import ConfigError

StrPath = str | os.PathLike[str]

# The files in the state dir are named in mailroom.statenames.
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
DOTENV_LIMIT = 64 * 1024  # bytes: a .env is a few lines


# -- .env ----------------------------------------------------------------------------


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=value`` lines (``export`` allowed, ``#`` comments, quotes stripped)."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[key.strip()] = value
    return found


def with_dotenv(environ: Mapping[str, str], cwd: StrPath) -> dict[str, str]:
    """``environ`` over the MAILROOM_* (and PORT) lines of ``cwd/.env``, when there is one.

    The ``.env`` holds credentials, so one that group or others may read or write is
    refused (ConfigError, exit 78), as ssh refuses a readable private key: a warning
    would scroll by in a log while the token stays readable.
    """
    path = os.path.join(cwd, ".env")
    try:
        data = read_small_file(path, DOTENV_LIMIT, what=".env file", private=True)
    except FileNotFoundError:
        return dict(environ)
    wanted = {
        k: v for k, v in parse_dotenv(data).items() if k.startswith("MAILROOM_") or k == "PORT"
    }
    return {**wanted, **environ}


def read_small_file(path: StrPath, limit: int, *, what: str, private: bool = False) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes; ConfigError for anything else
    (a FIFO or device is refused before it is read, so nothing blocks or fills memory).
    ``private``: also refused when group or others have any permission on it.
    FileNotFoundError is left to the caller."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError([f"cannot read the {what} {path} ({exc.strerror}); fix it"]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([f"the {what} {path} is not a regular file; name a file"])
        if private and info.st_mode & 0o077:
            raise ConfigError(
                [
                    f"the {what} {path} is open to group or others "
                    f"(mode {info.st_mode & 0o777:04o}); it holds credentials: chmod 600 {path}"
                ]
            )
        if info.st_size > limit:
            raise ConfigError([f"the {what} {path} is larger than {limit:,} bytes; trim it"])
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError([f"the {what} {path} is larger than {limit:,} bytes; trim it"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"the {what} {path} is not UTF-8 text; save it as UTF-8"]) from None


# -- a private state dir ---------------------------------------------------------------


def ensure_state_dir(path: StrPath) -> None:
    """Create ``path`` 0700 (whatever the umask) if missing; refuse one that is not a
    directory, not ours, or writable by others (ConfigError, so exit 78)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            [f"MAILROOM_STATE_DIR: cannot create {path} ({exc.strerror}); choose another"]
        ) from None
    check_state_dir(path)


def check_state_dir(path: StrPath) -> None:
    """ConfigError unless ``path`` is a real directory owned by us and closed to others."""
    check_private_dir(
        path,
        name="MAILROOM_STATE_DIR",
        instead="set MAILROOM_STATE_DIR to a directory of your own",
    )


def check_private_dir(path: StrPath, *, name: str, instead: str) -> None:
    """ConfigError (``name: ...``, then what to do, ``instead``) unless ``path`` is a
    real directory owned by us and closed to others: no link, not another user's, not
    writable by group or others."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        raise ConfigError([f"{name}: {path} is {kind}; name a directory"])
    if info.st_uid != os.geteuid():
        raise ConfigError(
            [
                f"{name}: {path} belongs to uid {info.st_uid}, not to you "
                f"(uid {os.geteuid()}); another user could plant files there. "
                f"{instead[0].upper()}{instead[1:]}"
            ]
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError([f"{name}: {path} is writable by others; chmod 700 {path}, or {instead}"])


def open_nofollow(path: StrPath, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (ConfigError, naming it)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if os.path.islink(path):
            raise ConfigError(
                [f"{path} is a symbolic link; mailroom will not follow it. Remove it"]
            ) from exc
        raise


def write_atomic(path: StrPath, text: str) -> None:
    """Replace ``path`` with ``text``: a temp file in the same directory, then
    ``os.replace``, so a reader sees the old file or the new one, never half of one;
    neither step follows a symbolic link."""
    import contextlib
    import tempfile  # here: it imports shutil, bz2 and lzma, and health never writes

    folder, name = os.path.split(os.fspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
