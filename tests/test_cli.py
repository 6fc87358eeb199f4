"""mailroom.cli: dispatch, exit codes, error lines, and a light `health` import path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailroom.cli import COMMANDS, EX_CONFIG, guarded, load_entry, main
from mailroom.cli.args import build_parser
from mailroom.errors import AuthError, ConfigError, MailroomError
from mailroom.version import version

REPO = Path(__file__).resolve().parent.parent
TOKEN = "cli-test-token-0123456789"
CREDENTIALS = {
    "MAILROOM_JMAP_TOKEN": TOKEN,
    "MAILROOM_CARDDAV_USERNAME": "ann@example.com",
    "MAILROOM_CARDDAV_PASSWORD": "cli-test-password-123",
}
BAD_CONFIG = {
    "poll_interval": -5,
    "log_format": "xml",
    "categories": [
        "Feed",
        "Feed",
        {"name": "Kid", "parent": "Ghost"},
        {"name": "Main", "destination_mailbox": "Inbox"},
    ],
}
BAD_CONFIG_LINES = 5


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.pop("PORT", None)
    return {**env, "HOME": str(tmp_path), "PYTHONPATH": str(REPO), **extra}


def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(BAD_CONFIG), encoding="utf-8")
    return path


def mailroom(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailroom", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_poll_with_an_invalid_config_exits_78_listing_every_problem(tmp_path: Path) -> None:
    env = clean_env(tmp_path, MAILROOM_CONFIG=str(bad_config(tmp_path)), **CREDENTIALS)
    done = mailroom(env, "poll")
    assert done.returncode == EX_CONFIG
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == BAD_CONFIG_LINES
    assert all(line.startswith("config error: ") for line in lines)
    text = done.stderr
    for fragment in (
        "poll_interval",
        "log_format",
        "'Feed' is defined more than once",
        "parent 'Ghost'",
        "'Inbox' is refused",
    ):
        assert fragment in text
    assert "Traceback" not in text
    assert TOKEN not in text


def test_missing_credentials_exit_78_naming_each_variable(tmp_path: Path) -> None:
    done = mailroom(clean_env(tmp_path), "poll")
    assert done.returncode == EX_CONFIG
    lines = done.stderr.splitlines()
    assert [line.split()[2] for line in lines] == [
        "MAILROOM_JMAP_TOKEN",
        "MAILROOM_CARDDAV_USERNAME",
        "MAILROOM_CARDDAV_PASSWORD",
    ]
    assert all(line.startswith("config error: ") for line in lines)


@pytest.mark.parametrize(
    "argv",
    [
        ["poll"],
        ["setup"],
        ["setup", "--apply"],
        ["check"],
        ["reset", "--apply", "--yes"],
        ["work"],
        ["run"],
    ],
)
def test_every_command_with_settings_refuses_a_bad_config(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MAILROOM_CONFIG", str(bad_config(tmp_path)))
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == EX_CONFIG
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == BAD_CONFIG_LINES
    assert captured.out == ""


def test_listen_refuses_the_bad_setting_it_reads_and_leaves_the_rest_to_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILROOM_CONFIG", str(bad_config(tmp_path)))
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    assert main(["listen"]) == EX_CONFIG
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"config error: {tmp_path / 'config.yaml'}: log_format: Input should be "
        "'auto', 'json' or 'console' (got 'xml')"
    ]


def test_version_is_printed(tmp_path: Path) -> None:
    done = mailroom(clean_env(tmp_path), "--version")
    assert done.returncode == 0
    assert done.stdout == f"mailroom {version()}\n"
    assert version()[0].isdigit()


def test_version_and_help_return_zero_from_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "usage: mailroom" in capsys.readouterr().err


def test_options_of_setup_reset_and_demo() -> None:
    parser = build_parser()
    assert parser.parse_args(["setup"]).apply is False
    assert parser.parse_args(["setup", "--apply"]).apply is True
    reset = parser.parse_args(["reset", "--apply", "--yes"])
    assert (reset.apply, reset.yes) == (True, True)
    assert parser.parse_args(["reset"]).yes is False
    demo = parser.parse_args(["demo", "label", "bob@example.com", "@ToFeed"])
    assert (demo.demo_action, demo.address, demo.label) == ("label", "bob@example.com", "@ToFeed")
    assert parser.parse_args(["demo", "--once"]).once is True
    sent = parser.parse_args(["demo", "send", "bob@example.com", "Hi there"])
    assert (sent.demo_action, sent.address, sent.subject) == ("send", "bob@example.com", "Hi there")


def test_the_health_path_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = (
        "import importlib, sys\n"
        "import mailroom.cli as cli\n"
        "import mailroom.cli.args\n"
        "args = cli.args.build_parser().parse_args(['health'])\n"
        "module, function, _ = cli.COMMANDS[args.command]\n"
        "cli.load_entry(module, function)\n"
        "heavy = ['mailroom.config', 'pydantic', 'httpx', 'structlog', 'yaml']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "[]\n"


# -- entry points and error mapping ---------------------------------------------------


def write_module(root: Path, name: str, body: str) -> None:
    (root / f"{name}.py").write_text(body, encoding="utf-8")


def test_a_missing_entry_module_is_a_clear_error() -> None:
    with pytest.raises(MailroomError, match=r"mailroom\.nowhere\.gone is missing"):
        load_entry("mailroom.nowhere.gone", "main")


def test_a_missing_dependency_inside_an_entry_module_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "cli_probe_broken", "import cli_probe_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="cli_probe_no_such_dependency"):
        load_entry("cli_probe_broken", "main")


def test_an_entry_module_without_its_function_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "cli_probe_empty", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MailroomError, match=r"cli_probe_empty has no main\(\)"):
        load_entry("cli_probe_empty", "main")


def test_an_expected_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> int:
        raise AuthError("JMAP", 401, "check MAILROOM_JMAP_TOKEN")

    assert guarded("poll", fail) == 1
    err = capsys.readouterr().err
    assert err == (
        "mailroom poll: the JMAP server rejected the credentials (HTTP 401); "
        "check MAILROOM_JMAP_TOKEN\n"
    )


def test_a_config_error_from_a_command_is_exit_78(capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> int:
        raise ConfigError(["first problem", "second problem"])

    assert guarded("work", fail) == EX_CONFIG
    assert capsys.readouterr().err == "config error: first problem\nconfig error: second problem\n"


def test_ctrl_c_is_exit_130() -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert guarded("listen", interrupted) == 130


def test_the_command_s_own_exit_code_is_returned() -> None:
    assert guarded("check", lambda: 3) == 3
    assert guarded("check", lambda: None) == 0


def test_a_bug_keeps_its_traceback() -> None:
    def broken() -> int:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        guarded("poll", broken)
