"""Where the three processes meet: STATE_DIR and the files in it.

Standard library only, so that ``mailroom health`` (which must not import pydantic)
finds the same directory as ``mailroom.config``: this module is the one source of the
default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# The status files are named in mailroom.service.status (LISTENER_FILE, WORKER_FILE).
WAKE_SOCKET = "wake.sock"
WORKER_LOCK = "worker.lock"
SUPERVISOR_SOCKET = "supervisor.sock"


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/mailroom``, else ``~/.local/state/mailroom`` (never the cwd)."""
    xdg = environ.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "mailroom"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "mailroom"


def state_dir_from_env(environ: Mapping[str, str]) -> Path:
    """``MAILROOM_STATE_DIR`` (made absolute) when set and not empty, else the default."""
    value = environ.get("MAILROOM_STATE_DIR", "")
    if value:
        return Path(value).expanduser().absolute()
    return default_state_dir(environ)
