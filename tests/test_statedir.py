"""A state dir safe on a shared machine: private, ours, and no link in it followed.

The refusals are checked through the real `mailroom work` process (exit 78, one
clear line, nothing written through a planted link); the status-file writer and
reader directly.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.paths import ensure_state_dir
from mailroom.run.statefiles import StatusFile, read_status, write_status

REPO = Path(__file__).resolve().parent.parent
PLANTED = "the victim's file\n"


def work(state_dir: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`mailroom work` on a server that is not there (it never gets that far here)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    env = {
        **base,
        "HOME": str(tmp),
        "PYTHONPATH": str(REPO),
        "MAILROOM_STATE_DIR": str(state_dir),
        "MAILROOM_JMAP_TOKEN": "statedir-token-0123456789",
        "MAILROOM_CARDDAV_USERNAME": "ann@example.com",
        "MAILROOM_CARDDAV_PASSWORD": "statedir-password-42",
        "MAILROOM_JMAP_SESSION_URL": "http://127.0.0.1:9/jmap/session",
        "MAILROOM_CARDDAV_URL": "http://127.0.0.1:9/dav/",
    }
    return subprocess.run(
        [sys.executable, "-m", "mailroom", "work"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_state_dir_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = tmp_path / "new" / "state"
        ensure_state_dir(made)
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_state_dir_others_can_write_is_refused(mode: int, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    done = work(state, tmp_path)
    assert done.returncode == 78
    assert f"config error: MAILROOM_STATE_DIR: {state} is writable by others" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(state)) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_state_dir_another_user_owns_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 4242, 4242)
    done = work(state, tmp_path)
    assert done.returncode == 78
    assert f"{state} belongs to uid 4242, not to you" in done.stderr
    assert sorted(os.listdir(state)) == []


def test_a_symlink_as_the_state_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        ensure_state_dir(link)


@pytest.mark.parametrize("name", ["worker.lock", "wake.sock"])
def test_a_symlink_at_the_lock_or_socket_is_not_followed(name: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    ensure_state_dir(state)
    victim = tmp_path / "victim.txt"
    victim.write_text(PLANTED, encoding="utf-8")
    (state / name).symlink_to(victim)
    done = work(state, tmp_path)
    assert done.returncode == 78
    assert f"config error: {state / name} is" in done.stderr
    assert "Traceback" not in done.stderr
    assert victim.read_text(encoding="utf-8") == PLANTED
    assert (state / name).is_symlink()


@pytest.mark.parametrize("name", ["worker.json", "listener.json"])
def test_a_symlink_at_a_status_file_is_replaced_not_followed(name: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    ensure_state_dir(state)
    victim = tmp_path / "victim.txt"
    victim.write_text(PLANTED, encoding="utf-8")
    (state / name).symlink_to(victim)
    assert read_status(state / name) is None  # a link is not read either
    assert StatusFile(state / name, {"status": "starting"}).update(status="idle")
    assert victim.read_text(encoding="utf-8") == PLANTED
    assert not (state / name).is_symlink()
    assert (read_status(state / name) or {})["status"] == "idle"


def test_a_status_file_is_written_with_private_permissions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ensure_state_dir(state)
    write_status(state / "worker.json", {"status": "idle"})
    assert stat.S_IMODE((state / "worker.json").stat().st_mode) == 0o600
