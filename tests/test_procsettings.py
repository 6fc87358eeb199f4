"""One reader of the process settings: what ``mailroom.procsettings`` reads, and
``Settings`` agreeing because it takes those values.

Each case builds its inputs (environment, ``.env``, ``*_FILE``, YAML file); the core's
verdict is the expected one (a problem line, or the values it reads), and
``load_settings`` gives the same verdict, with the core's problem lines word for word
and the same values.
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
from mailroom.errors import ConfigError
from mailroom.procsettings import (
    DEFAULT_JMAP_SESSION_URL,
    ProcessSettings,
    load_process_settings,
    url_problem,
)

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
HOME_STATE = "{home}/.local/state/mailroom"
# case -> what the core reads: (session URL, log level, log format, state dir), with
# {home} for the case's HOME; or a fragment of the problem line it must report.
EXPECTED: dict[str, tuple[str, str, str, str] | str] = {
    "env": (URL, "info", "auto", HOME_STATE),
    "default_url": (DEFAULT_JMAP_SESSION_URL, "info", "auto", HOME_STATE),
    "lower_case_names": (URL, "info", "auto", HOME_STATE),
    "empty_url_is_unset": (DEFAULT_JMAP_SESSION_URL, "info", "auto", HOME_STATE),
    "url_trailing_space": (URL, "info", "auto", HOME_STATE),
    "dotenv": (URL, "info", "auto", HOME_STATE),
    "env_over_dotenv": (DEFAULT_JMAP_SESSION_URL, "info", "auto", HOME_STATE),
    "token_file": (DEFAULT_JMAP_SESSION_URL, "info", "auto", HOME_STATE),
    "token_file_and_token": "MAILROOM_JMAP_TOKEN and MAILROOM_JMAP_TOKEN_FILE are both set",
    "token_file_missing": "MAILROOM_JMAP_TOKEN_FILE names /nonexistent/token, which does not",
    "token_file_is_a_directory": "the MAILROOM_JMAP_TOKEN_FILE / is not a regular file",
    "yaml_log_settings": (DEFAULT_JMAP_SESSION_URL, "debug", "json", HOME_STATE),
    "env_over_yaml": (DEFAULT_JMAP_SESSION_URL, "warning", "auto", HOME_STATE),
    "yaml_bad_log_format": "c.yaml: log_format: Input should be 'auto', 'json' or 'console'",
    "yaml_log_level_not_text": "log_level: Input should be 'debug', 'info', 'warning' or 'error'",
    "env_bad_log_level": "MAILROOM_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or",
    "yaml_missing": "MAILROOM_CONFIG names /nonexistent/c.yaml, which does not exist",
    "yaml_not_yaml": "c.yaml: not valid YAML",
    "missing_token": "MAILROOM_JMAP_TOKEN is not set",
    "empty_token": "MAILROOM_JMAP_TOKEN is not set",
    "whitespace_token": "MAILROOM_JMAP_TOKEN has a space or line break at its start or end",
    "blank_token": "MAILROOM_JMAP_TOKEN is not set",
    "non_ascii_token": "MAILROOM_JMAP_TOKEN holds a character that is not printable ASCII",
    "url_userinfo": "MAILROOM_JMAP_SESSION_URL holds a user name or password",
    "url_unparseable": "MAILROOM_JMAP_SESSION_URL is not a URL",
    "url_not_http": "MAILROOM_JMAP_SESSION_URL must be an http(s) URL with a host",
    "state_dir": (DEFAULT_JMAP_SESSION_URL, "info", "auto", "{home}/somewhere/state"),
    "state_dir_xdg": (DEFAULT_JMAP_SESSION_URL, "info", "auto", "/var/xdg/mailroom"),
    "state_dir_relative_home": (
        DEFAULT_JMAP_SESSION_URL,
        "info",
        "auto",
        "{cwd}/relative/home/.local/state/mailroom",
    ),
    "state_dir_is_a_file": "/f is not a directory; name one",
}


def both(case: str, tmp_path: Path) -> tuple[ProcessSettings | ConfigError, object]:
    environ = {"HOME": str(tmp_path), **CASES[case](tmp_path)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", environ["HOME"])  # what ~ expands to
        try:
            core: ProcessSettings | ConfigError = load_process_settings(environ, cwd=tmp_path)
        except ConfigError as exc:
            core = exc
        try:
            full: object = load_settings(environ, cwd=tmp_path, require=("jmap_token",))
        except ConfigError as exc:
            full = exc
    return core, full


def test_every_case_has_its_expectation() -> None:
    assert sorted(EXPECTED) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_core_reads_each_case_and_settings_agree(case: str, tmp_path: Path) -> None:
    core, full = both(case, tmp_path)
    expected = EXPECTED[case]
    if isinstance(expected, str):
        assert isinstance(core, ConfigError), core
        assert any(expected in line for line in core.problems), core.problems
        assert isinstance(full, ConfigError), full
        assert set(core.problems) <= set(full.problems), (core.problems, full.problems)
        return
    assert isinstance(core, ProcessSettings), core.problems if core else core
    assert core.jmap_token is not None
    assert core.jmap_token.get_secret_value() == TOKEN
    url, level, fmt, state = expected
    state = state.format(home=tmp_path, cwd=os.getcwd())
    assert (core.jmap_session_url, core.log_level, core.log_format) == (url, level, fmt)
    assert Path(core.state_dir) == Path(state)
    assert not isinstance(full, ConfigError), full.problems
    token = full.jmap_token  # type: ignore[attr-defined]
    assert token.get_secret_value() == core.jmap_token.get_secret_value()
    assert full.jmap_session_url == core.jmap_session_url  # type: ignore[attr-defined]
    assert full.state_dir == Path(core.state_dir)  # type: ignore[attr-defined]
    assert full.log_level == core.log_level  # type: ignore[attr-defined]
    assert full.log_format == core.log_format  # type: ignore[attr-defined]
    # Settings embeds the very record the listener runs on (the token compared above)
    embedded = full.process  # type: ignore[attr-defined]
    assert embedded._replace(jmap_token=None) == core._replace(jmap_token=None)


def test_the_token_is_remembered_for_redaction_and_hidden_from_repr(tmp_path: Path) -> None:
    settings = load_process_settings({"HOME": str(tmp_path), "MAILROOM_JMAP_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
    assert redaction.scrub(f"Bearer {TOKEN}") == "Bearer [redacted]"


def test_url_userinfo_is_remembered_before_it_is_refused(tmp_path: Path) -> None:
    url = "https://ann:hunter2-pw@h.example/s"
    with pytest.raises(ConfigError, match="holds a user name or password"):
        load_process_settings({"MAILROOM_JMAP_TOKEN": TOKEN, "MAILROOM_JMAP_SESSION_URL": url})
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
