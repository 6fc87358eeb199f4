"""Every bad config is one clear line and exit 78, with no traceback: the real CLI.

Each case is run as `mailroom poll` in a subprocess (poll reads the whole config and
the credentials before it touches a server). The figures for how fast these are
refused come from bench/config_load.py, not from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CREDENTIALS = {
    "MAILROOM_JMAP_TOKEN": "badconfig-token-0123456789",
    "MAILROOM_CARDDAV_USERNAME": "ann@example.com",
    "MAILROOM_CARDDAV_PASSWORD": "badconfig-password-42",
}
Setup = Callable[[Path], dict[str, str]]


def poll(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    return subprocess.run(
        [sys.executable, "-m", "mailroom", "poll"],
        env={**base, "HOME": str(cwd), "PYTHONPATH": str(REPO), **CREDENTIALS, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_file(text: str) -> Setup:
    def make(tmp: Path) -> dict[str, str]:
        path = tmp / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return {"MAILROOM_CONFIG": str(path)}

    return make


def big_file(tmp: Path) -> dict[str, str]:
    path = tmp / "config.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # 50 MB (sparse): refused before it is read
    return {"MAILROOM_CONFIG": str(path)}


def fifo(tmp: Path) -> dict[str, str]:
    path = tmp / "config.fifo"
    os.mkfifo(path)
    return {"MAILROOM_CONFIG": str(path)}


def state_dir_is_a_file(tmp: Path) -> dict[str, str]:
    path = tmp / "state"
    path.write_text("not a directory", encoding="utf-8")
    return {"MAILROOM_STATE_DIR": str(path)}


def env(**values: str) -> Setup:
    return lambda tmp: dict(values)


CASES: dict[str, tuple[Setup, str]] = {
    "nested_yaml": (config_file("a: " + "[" * 100_000), "nest"),
    "nested_yaml_block": (
        config_file("".join(f"{' ' * i}k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n"),
        "nested more than 16 levels",
    ),
    "nested_json_env": (env(MAILROOM_CATEGORIES="[" * 100_000), "MAILROOM_CATEGORIES: nested"),
    "alias_bomb": (
        config_file(
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}" + "]\n" for i in range(120))
        ),
        "aliases",
    ),
    "fifty_megabytes": (big_file, "larger than 262,144 bytes"),
    "dev_zero": (env(MAILROOM_CONFIG="/dev/zero"), "is not a regular file"),
    "fifo": (fifo, "is not a regular file"),
    "a_directory": (lambda tmp: {"MAILROOM_CONFIG": str(tmp)}, "is not a regular file"),
    "not_utf8": (
        lambda tmp: (
            (tmp / "c.yaml").write_bytes(b"poll_interval: \xff\n")
            and {"MAILROOM_CONFIG": str(tmp / "c.yaml")}
        ),
        "is not UTF-8",
    ),
    "poll_interval_inf": (env(MAILROOM_POLL_INTERVAL="inf"), "MAILROOM_POLL_INTERVAL: "),
    "poll_interval_tiny": (env(MAILROOM_POLL_INTERVAL="0.000001"), "greater than or equal to 1"),
    "poll_interval_nan": (config_file("poll_interval: .nan\n"), "poll_interval: "),
    "debounce_inf": (config_file("debounce_seconds: .inf\n"), "debounce_seconds: "),
    "debounce_huge": (env(MAILROOM_DEBOUNCE_SECONDS="1e9"), "less than or equal to 600"),
    "token_non_ascii": (env(MAILROOM_JMAP_TOKEN="tökén-0123456789"), "not printable ASCII"),
    "password_control": (
        env(MAILROOM_CARDDAV_PASSWORD="pass\x07word-123"),
        "MAILROOM_CARDDAV_PASSWORD holds a character that is not printable ASCII",
    ),
    "token_trailing_newline": (
        env(MAILROOM_JMAP_TOKEN="badconfig-token-0123456789\n"),
        "MAILROOM_JMAP_TOKEN has a space or line break",
    ),
    "state_dir_is_a_file": (state_dir_is_a_file, "is not a directory"),
    "url_unparseable": (env(MAILROOM_JMAP_SESSION_URL="http://[::1"), "is not a URL"),
    "url_bad_port": (env(MAILROOM_CARDDAV_URL="https://host:99999/"), "is not a URL"),
    "url_not_http": (env(MAILROOM_JMAP_SESSION_URL="ftp://host/s"), "must be an http(s) URL"),
    "url_userinfo": (
        env(MAILROOM_CARDDAV_URL="https://ann:hunter2-secret@dav.example.com/"),
        "holds a user name or password",
    ),
    "bad_json_env": (env(MAILROOM_CATEGORIES="[Feed"), "MAILROOM_CATEGORIES: not valid JSON"),
    "token_file_missing": (
        env(MAILROOM_JMAP_TOKEN="", MAILROOM_JMAP_TOKEN_FILE="/nonexistent/token"),
        "does not exist",
    ),
    "dotenv_is_a_fifo": (
        lambda tmp: os.mkfifo(tmp / ".env") or {},
        ".env file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_config_exits_78_with_a_clear_line_and_no_traceback(
    case: str, tmp_path: Path
) -> None:
    setup, expected = CASES[case]
    done = poll(setup(tmp_path), tmp_path)
    assert done.returncode == 78, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("config error: ")]
    assert errors, done.stderr[-2000:]
    assert any(expected in line for line in errors), errors
    assert all(len(line) < 400 for line in errors)
    assert "hunter2-secret" not in done.stderr + done.stdout
