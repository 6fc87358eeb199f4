"""The listener's pydantic-free loader agrees with ``load_settings`` on what it reads.

Each case builds the same inputs (environment, ``.env``, ``*_FILE``, YAML file) and
loads them both ways: the verdict (refused or not) and every value the listener uses
must be the same; where the two share a rule (credentials, URLs, secret files, state
dir) the lean path's problem lines are the pydantic path's lines, word for word.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailroom import redaction
from mailroom.config import load_settings
from mailroom.config_lean import (
    DEFAULT_JMAP_SESSION_URL,
    ListenerSettings,
    load_listener_settings,
    url_problem,
)
from mailroom.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
TOKEN = "lean-token-0123456789"
URL = "http://127.0.0.1:9/jmap/session"
Case = Callable[[Path], dict[str, str]]


def env(**values: str) -> Case:
    return lambda tmp: dict(values)


def with_files(files: dict[str, str], **values: str) -> Case:
    """Write ``files`` (name -> text) in the case's directory; ``{dir}`` in a value is it."""

    def make(tmp: Path) -> dict[str, str]:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
            (tmp / name).chmod(0o600)  # a group-readable .env is refused
        return {k: v.replace("{dir}", str(tmp)) for k, v in values.items()}

    return make


CASES: dict[str, Case] = {
    "env": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL=URL),
    "default_url": env(MAILROOM_JMAP_TOKEN=TOKEN),
    "lower_case_names": env(mailroom_jmap_token=TOKEN, mailroom_jmap_session_url=URL),
    "empty_url_is_unset": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL=""),
    "url_trailing_space": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL=URL + " "),
    "dotenv": with_files(
        {".env": f"MAILROOM_JMAP_TOKEN={TOKEN}\nexport MAILROOM_JMAP_SESSION_URL='{URL}'\n"}
    ),
    "env_over_dotenv": with_files(
        {".env": "MAILROOM_JMAP_TOKEN=from-dotenv-000\n"}, MAILROOM_JMAP_TOKEN=TOKEN
    ),
    "token_file": with_files({"token": TOKEN + "\n"}, MAILROOM_JMAP_TOKEN_FILE="{dir}/token"),
    "token_file_and_token": with_files(
        {"token": TOKEN}, MAILROOM_JMAP_TOKEN_FILE="{dir}/token", MAILROOM_JMAP_TOKEN=TOKEN
    ),
    "token_file_missing": env(MAILROOM_JMAP_TOKEN_FILE="/nonexistent/token"),
    "token_file_is_a_directory": env(MAILROOM_JMAP_TOKEN_FILE="/"),
    "yaml_log_settings": with_files(
        {"c.yaml": "log_level: DEBUG\nlog_format: json\npoll_interval: 30\n"},
        MAILROOM_CONFIG="{dir}/c.yaml",
        MAILROOM_JMAP_TOKEN=TOKEN,
    ),
    "env_over_yaml": with_files(
        {"c.yaml": "log_level: debug\n"},
        MAILROOM_CONFIG="{dir}/c.yaml",
        MAILROOM_LOG_LEVEL="warning",
        MAILROOM_JMAP_TOKEN=TOKEN,
    ),
    "yaml_bad_log_format": with_files(
        {"c.yaml": "log_format: xml\n"}, MAILROOM_CONFIG="{dir}/c.yaml", MAILROOM_JMAP_TOKEN=TOKEN
    ),
    "yaml_log_level_not_text": with_files(
        {"c.yaml": "log_level: 5\n"}, MAILROOM_CONFIG="{dir}/c.yaml", MAILROOM_JMAP_TOKEN=TOKEN
    ),
    "env_bad_log_level": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_LOG_LEVEL="loud"),
    "yaml_missing": env(MAILROOM_CONFIG="/nonexistent/c.yaml", MAILROOM_JMAP_TOKEN=TOKEN),
    "yaml_not_yaml": with_files(
        {"c.yaml": "a: [\n"}, MAILROOM_CONFIG="{dir}/c.yaml", MAILROOM_JMAP_TOKEN=TOKEN
    ),
    "missing_token": env(MAILROOM_JMAP_SESSION_URL=URL),
    "empty_token": env(MAILROOM_JMAP_TOKEN=""),
    "whitespace_token": env(MAILROOM_JMAP_TOKEN=TOKEN + " "),
    "blank_token": env(MAILROOM_JMAP_TOKEN="   "),
    "non_ascii_token": env(MAILROOM_JMAP_TOKEN="tökén-0123456789"),
    "url_userinfo": env(
        MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL="https://ann:hunter2-pw@h.example/s"
    ),
    "url_unparseable": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL="http://[::1"),
    "url_not_http": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_JMAP_SESSION_URL="ftp://h/s"),
    "state_dir": env(MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_STATE_DIR="~/somewhere/state"),
    "state_dir_xdg": env(MAILROOM_JMAP_TOKEN=TOKEN, XDG_STATE_HOME="/var/xdg"),
    "state_dir_relative_home": env(MAILROOM_JMAP_TOKEN=TOKEN, HOME="relative/home"),
    "state_dir_is_a_file": with_files(
        {"f": "x"}, MAILROOM_JMAP_TOKEN=TOKEN, MAILROOM_STATE_DIR="{dir}/f"
    ),
}
LOG_RULES = {"yaml_bad_log_format", "yaml_log_level_not_text", "env_bad_log_level"}


def both(case: str, tmp_path: Path) -> tuple[ListenerSettings | ConfigError, object]:
    environ = {"HOME": str(tmp_path), **CASES[case](tmp_path)}
    try:
        lean: ListenerSettings | ConfigError = load_listener_settings(environ, cwd=tmp_path)
    except ConfigError as exc:
        lean = exc
    try:
        full: object = load_settings(environ, cwd=tmp_path, require=("jmap_token",))
    except ConfigError as exc:
        full = exc
    return lean, full


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_listener_loader_agrees_with_load_settings(case: str, tmp_path: Path) -> None:
    lean, full = both(case, tmp_path)
    if isinstance(full, ConfigError):
        assert isinstance(lean, ConfigError), lean
        assert lean.problems
        if case not in LOG_RULES:  # one rule, one wording
            assert set(lean.problems) <= set(full.problems), (lean.problems, full.problems)
        return
    assert isinstance(lean, ListenerSettings), lean.problems if lean else lean
    token = full.jmap_token  # type: ignore[attr-defined]
    assert lean.jmap_token == token.get_secret_value()
    assert lean.jmap_session_url == full.jmap_session_url  # type: ignore[attr-defined]
    assert lean.state_dir == full.state_dir  # type: ignore[attr-defined]
    assert lean.log_level == full.log_level  # type: ignore[attr-defined]
    assert lean.log_format == full.log_format  # type: ignore[attr-defined]


def test_the_values_the_matrix_compares_are_the_expected_ones(tmp_path: Path) -> None:
    lean, _ = both("yaml_log_settings", tmp_path)
    assert isinstance(lean, ListenerSettings)
    assert (lean.jmap_token, lean.jmap_session_url) == (TOKEN, DEFAULT_JMAP_SESSION_URL)
    assert (lean.log_level, lean.log_format) == ("debug", "json")
    assert lean.state_dir == tmp_path / ".local" / "state" / "mailroom"
    lean, _ = both("token_file", tmp_path)
    assert isinstance(lean, ListenerSettings)
    assert lean.jmap_token == TOKEN


def test_the_token_is_remembered_for_redaction_and_hidden_from_repr(tmp_path: Path) -> None:
    settings = load_listener_settings({"HOME": str(tmp_path), "MAILROOM_JMAP_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
    assert redaction.scrub(f"Bearer {TOKEN}") == "Bearer [redacted]"


def test_url_userinfo_is_remembered_before_it_is_refused(tmp_path: Path) -> None:
    url = "https://ann:hunter2-pw@h.example/s"
    with pytest.raises(ConfigError, match="holds a user name or password"):
        load_listener_settings({"MAILROOM_JMAP_TOKEN": TOKEN, "MAILROOM_JMAP_SESSION_URL": url})
    assert redaction.scrub(url) == "https://[redacted]@h.example/s"


@pytest.mark.parametrize(
    ("url", "verdict"),
    [
        ("https://api.fastmail.com/jmap/session", None),
        ("http://127.0.0.1:8008/jmap/", None),
        ("http://[::1]:80/", None),
        ("HTTPS://HOST/", None),
        ("https://x/ ", None),  # stripped afterwards
        ("http://[::1", "is not a URL"),
        ("https://host:99999/", "is not a URL"),
        ("https://host:0/", "is not a URL"),
        ("https://host:abc/", "is not a URL"),
        ("https://x/\n", "is not a URL"),
        (" https://x/", "is not a URL"),
        ("https://ho st/", "is not a URL"),
        ("https://:pw@host/", "holds a user name or password"),
        ("https://ann@host/", "holds a user name or password"),
        ("ftp://host/s", "must be an http(s) URL"),
        ("https:///path", "must be an http(s) URL"),
        ("/jmap/session", "must be an http(s) URL"),
    ],
)
def test_url_problem(url: str, verdict: str | None) -> None:
    found = url_problem("MAILROOM_JMAP_SESSION_URL", url)
    if verdict is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith("MAILROOM_JMAP_SESSION_URL ")
        assert verdict in found


# -- the real program, started the way supervisord starts it ------------------------------


def listen(environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    state = cwd / "state"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom mailroom.run.lifeline import main\nsys.exit(main(['listen']))",
        ],
        env={**base, "HOME": str(cwd), "MAILROOM_STATE_DIR": str(state), **environ},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MAILROOM_JMAP_TOKEN": TOKEN + "\n"}, "MAILROOM_JMAP_TOKEN has a space or line break"),
        (
            {"MAILROOM_JMAP_TOKEN": TOKEN, "MAILROOM_JMAP_SESSION_URL": "https://a:hunter2-pw@h/"},
            "MAILROOM_JMAP_SESSION_URL holds a user name or password",
        ),
        ({}, "MAILROOM_JMAP_TOKEN is not set; set it (or MAILROOM_JMAP_TOKEN_FILE)"),
    ],
    ids=["whitespace_token", "url_userinfo", "missing_token"],
)
def test_the_listener_refuses_a_bad_setting_with_exit_78(
    environ: dict[str, str], expected: str, tmp_path: Path
) -> None:
    done = listen(environ, tmp_path)
    assert done.returncode == 78, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert lines
    assert all(line.startswith("config error: ") for line in lines), lines
    assert any(expected in line for line in lines), lines
    assert "hunter2-pw" not in done.stderr + done.stdout
    assert TOKEN not in done.stderr + done.stdout
