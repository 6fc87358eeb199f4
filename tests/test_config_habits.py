"""Configuration habits: .env, secrets from files, misspelt variables, one round, one format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.categories import GROUP_PAIRS_SHOWN, ancestry, category, category_problems
from mailroom.config import Settings, load_settings
from mailroom.errors import ConfigError
from mailroom.routing.model import routing

REPO = Path(__file__).resolve().parent.parent
HOME = {"HOME": "/home/test"}
TOKEN = "habit-token-0123456789"


def problems_of(environ: dict[str, str], **kw: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, **kw)  # type: ignore[arg-type]
    return caught.value.problems


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# a comment\n"
        f"export MAILROOM_JMAP_TOKEN='{TOKEN}'\n"
        "MAILROOM_POLL_INTERVAL=90  # seconds\n"
        'MAILROOM_LOG_LEVEL="debug"\n'
        "OTHER_TOOL=ignored\n",
        encoding="utf-8",
    )
    (tmp_path / ".env").chmod(0o600)
    settings = load_settings({**HOME, "MAILROOM_LOG_LEVEL": "warning"}, cwd=tmp_path)
    assert settings.jmap_token is not None
    assert settings.jmap_token.get_secret_value() == TOKEN
    assert settings.poll_interval == 90
    assert settings.log_level == "warning"


def test_without_cwd_no_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MAILROOM_POLL_INTERVAL=90\n", encoding="utf-8")
    (tmp_path / ".env").chmod(0o600)
    assert load_settings(HOME).poll_interval == 60


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_dotenv_open_to_others_is_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    (tmp_path / ".env").write_text(f"MAILROOM_JMAP_TOKEN={TOKEN}\n", encoding="utf-8")
    (tmp_path / ".env").chmod(mode)
    problems = problems_of(HOME, cwd=tmp_path)
    assert len(problems) == 1
    assert f"mode {mode:04o}" in problems[0]
    assert f"chmod 600 {tmp_path / '.env'}" in problems[0]
    assert TOKEN not in problems[0]


def test_a_credential_is_read_from_its_file_without_the_final_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    (tmp_path / "pw").write_text("file-password-42\r\n", encoding="utf-8")
    settings = load_settings(
        {
            **HOME,
            "MAILROOM_JMAP_TOKEN_FILE": str(tmp_path / "token"),
            "MAILROOM_CARDDAV_PASSWORD_FILE": str(tmp_path / "pw"),
            "MAILROOM_CARDDAV_USERNAME": "ann",
        }
    )
    creds = settings.credentials()
    assert creds.jmap_token == TOKEN
    assert creds.carddav_password == "file-password-42"
    assert TOKEN not in repr(creds)


def test_a_credential_file_with_more_whitespace_is_refused_naming_the_file_variable(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n\n", encoding="utf-8")
    (line,) = problems_of({**HOME, "MAILROOM_JMAP_TOKEN_FILE": str(tmp_path / "token")})
    assert line.startswith("MAILROOM_JMAP_TOKEN_FILE has a space or line break")


def test_a_variable_and_its_file_both_set_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN, encoding="utf-8")
    env = {
        **HOME,
        "MAILROOM_JMAP_TOKEN": TOKEN,
        "MAILROOM_JMAP_TOKEN_FILE": str(tmp_path / "token"),
    }
    assert problems_of(env) == [
        "MAILROOM_JMAP_TOKEN and MAILROOM_JMAP_TOKEN_FILE are both set; keep one"
    ]


def test_a_misspelt_variable_is_warned_with_the_closest_name() -> None:
    said: list[str] = []
    load_settings(
        {**HOME, "MAILROOM_POL_INTERVAL": "5", "MAILROOM_ZZZ": "1", "MAILROOM_TEST_X": "1"},
        warn=said.append,
    )
    assert said == [
        "MAILROOM_POL_INTERVAL is not a mailroom setting; did you mean MAILROOM_POLL_INTERVAL?",
        "MAILROOM_ZZZ is not a mailroom setting; it is ignored",
    ]


def test_every_problem_comes_in_one_round(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "poll_interval: often\n"
        "categories: [{name: A, contact_type: robot}, {name: B, parent: C}]\n",
        encoding="utf-8",
    )
    lines = problems_of(
        {**HOME, "MAILROOM_CONFIG": str(config), "MAILROOM_CARDDAV_PASSWORD": " x-pass-1"},
        require=("jmap_token", "carddav_username", "carddav_password"),
    )
    assert lines[0].startswith("MAILROOM_JMAP_TOKEN is not set")
    assert lines[1].startswith("MAILROOM_CARDDAV_USERNAME is not set")
    assert lines[2].startswith("MAILROOM_CARDDAV_PASSWORD has a space or line break")
    assert any("poll_interval: Input should be a valid number" in line for line in lines)
    assert any("categories[0].contact_type" in line for line in lines)
    assert (
        "category 'B': parent 'C' is not a category; name an existing category or remove parent"
        in lines
    )
    assert len(lines) == 6


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    return subprocess.run(
        [sys.executable, "-m", "mailroom", *args],
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["check", "poll", "setup", "reset", "work", "run"])
def test_one_missing_credential_reads_the_same_in_every_command(
    command: str, tmp_path: Path
) -> None:
    done = cli(
        command,
        HOME=str(tmp_path),
        MAILROOM_JMAP_TOKEN=TOKEN,
        MAILROOM_CARDDAV_USERNAME="ann",
    )
    assert done.returncode == 78
    assert done.stderr.startswith(
        "config error: MAILROOM_CARDDAV_PASSWORD is not set; set it (or "
        "MAILROOM_CARDDAV_PASSWORD_FILE) to an app password"
    )
    assert len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


def test_two_thousand_chained_categories_validate_without_a_false_problem() -> None:
    chain = [category("C0"), *(category(f"C{i}", parent=f"C{i - 1}") for i in range(1, 2000))]
    assert category_problems(chain) == []
    looped = [category("C0", parent="C1999"), *chain[1:]]
    (line,) = category_problems(looped)
    assert line == (
        "categories form a parent cycle: 'C0' -> 'C1999' -> 'C1998' -> 'C1997' -> 'C1996' "
        "-> 'C1995' -> ... -> 'C1' -> 'C0' (2000 categories); break the cycle"
    )


def test_two_thousand_chained_categories_sharing_one_group_load_and_route_as_one() -> None:
    cats = [
        category("C0", contact_group="Shared"),
        *(category(f"C{i}", parent=f"C{i - 1}", contact_group="Shared") for i in range(1, 2000)),
    ]
    walker = ancestry(cats)
    assert walker.visits == 2000  # the walk reaches each category exactly once
    assert walker.depth("C1999") == 1999
    assert walker.is_ancestor("C0", "C1999")
    assert not walker.is_ancestor("C1999", "C0")
    settings = Settings(categories=cats)
    assert len(settings.categories) == 2000
    assert [c.name for c in settings.chain("C3")] == ["C3", "C2", "C1", "C0"]
    (route,) = routing(cats, screener_mailbox="Screener").routes
    assert (route.group, route.category) == ("Shared", "C0")  # the shallowest holder


def test_a_shared_group_off_the_chain_is_named_in_at_most_a_bounded_number_of_lines() -> None:
    cats = [category(f"S{i}", contact_group="Shared") for i in range(50)]
    lines = category_problems(cats)
    assert len(lines) == GROUP_PAIRS_SHOWN + 1
    assert lines[0].startswith("categories 'S0' and 'S1' share the contact group 'Shared'")
    assert lines[-1].startswith("contact group 'Shared': more categories share it")
