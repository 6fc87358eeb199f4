"""`mailroom run`: the three programs under supervisord, in the foreground.

The supervisord configuration ships inside the package (``mailroom/supervisord.conf``;
the repo-root ``supervisord.conf`` links to it), so this works from an installed
package, not only from a checkout.

`mailroom run` checks the configuration, then replaces itself with
``mailroom.run.runner``, which takes ``STATE_DIR/run.lock`` (a second run on the same
state dir is refused, naming the first one's pid) and runs supervisord's loop in the
same process (``mailroom.run.runsupervisor``): one process, the pid `mailroom run`
started with, which stops everything on SIGINT, SIGTERM, SIGHUP or when its output pipe
is closed. Its exit says why, with one line when a program went down for good (see
``mailroom.run.fatal``, the plugin the packaged supervisord.conf loads).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from mailroom.errors import ConfigError, LockTaken
from mailroom.paths import MAX_SOCKET_PATH, ensure_state_dir
from mailroom.run import pidlock, runner
from mailroom.statenames import SUPERVISOR_SOCKET, SUPERVISORD_CONF, SUPERVISORD_PID

if TYPE_CHECKING:
    from mailroom.config import Settings

log = structlog.get_logger("mailroom.supervise")


def conf_path(state_dir: Path) -> Path:
    """The packaged supervisord.conf as a file on disk (copied into STATE_DIR if zipped)."""
    packaged = resources.files("mailroom") / SUPERVISORD_CONF
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    copy = state_dir / SUPERVISORD_CONF
    copy.write_text(packaged.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def supervisord_args(conf: Path) -> list[str]:
    """supervisord's command line after its program name: ``conf``, in the foreground."""
    return ["-c", str(conf), "-n"]


def supervisord_argv(conf: Path, python: str = sys.executable) -> list[str]:
    """supervisord by itself (without `mailroom run`'s rules), in the foreground, run by
    this interpreter (so from this install)."""
    return [python, "-m", "supervisor.supervisord", *supervisord_args(conf)]


def supervisord_env(
    environ: Mapping[str, str], state_dir: Path, bin_dirs: list[Path]
) -> dict[str, str]:
    """The programs' environment: ours, STATE_DIR exported, the `mailroom` script on PATH."""
    env = dict(environ)
    env["MAILROOM_STATE_DIR"] = str(state_dir)
    found = [str(d) for d in bin_dirs if (d / "mailroom").is_file()]
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    env["PATH"] = os.pathsep.join(dict.fromkeys([*found[:1], *path]))
    return env


def check_socket_fits(state_dir: Path) -> None:
    """STATE_DIR must hold a Unix socket path; raise ConfigError when it cannot."""
    sock = state_dir / SUPERVISOR_SOCKET
    if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
        raise ConfigError(
            [
                f"MAILROOM_STATE_DIR={state_dir} is too long for a Unix socket path "
                f"({MAX_SOCKET_PATH} bytes at most for {sock}); choose a shorter directory"
            ]
        )


def refuse_links(state_dir: Path) -> None:
    """ConfigError when a file supervisord writes in STATE_DIR is a symbolic link.

    supervisord opens its pid file without O_NOFOLLOW and binds its socket by path, so a
    link planted there would make it write through the link. The state dir is ours and
    0700 (``ensure_state_dir``), so only this user could have put one there; refusing it
    is the same rule as for mailroom's own files (``paths.open_nofollow``).
    """
    for name in (SUPERVISORD_PID, SUPERVISOR_SOCKET, SUPERVISORD_CONF):
        path = state_dir / name
        if path.is_symlink():
            raise ConfigError(
                [
                    f"{path} is a symbolic link; supervisord would write through it. "
                    "Remove it, then start mailroom again"
                ]
            )


def main(settings: Settings) -> int:
    """`mailroom run`: becomes supervisord (``runner``), until it ends or is told to stop."""
    state_dir = settings.state_dir
    check_socket_fits(state_dir)
    ensure_state_dir(state_dir)  # 0700, ours: supervisord's socket and pid file live here
    refuse_links(state_dir)
    conf = conf_path(state_dir)
    bin_dirs = [Path(sys.argv[0]).absolute().parent, Path(sys.executable).parent]
    env = supervisord_env(os.environ, state_dir, bin_dirs)
    if shutil.which("mailroom-lifeline", path=env["PATH"]) is None:  # supervisord runs it
        log.warning("mailroom_not_on_path", hint="reinstall mailroom: mailroom-lifeline is missing")
    try:
        with runner.run_lock(state_dir):  # refused now, not after exec
            pass  # a first look; the runner takes the lock for good
    except LockTaken as taken:
        return pidlock.refuse("run", taken)
    argv = [sys.executable, "-m", runner.__name__, str(state_dir), "--", *supervisord_args(conf)]
    log.info("supervisord_starting", conf=str(conf), state_dir=str(state_dir))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, env)  # noqa: S606 - argv is ours, no shell
    except OSError as exc:
        log.error("supervisord_failed", error=str(exc))
    return 1
