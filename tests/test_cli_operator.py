"""What an operator expects of the command: the example config shipped, completion, exit
codes in --help, and a version the changelog knows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.cli import main
from mailroom.config import load_settings
from mailroom.version import version

REPO = Path(__file__).resolve().parents[1]


def test_config_example_prints_the_packaged_file_which_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "--example"]) == 0
    text = capsys.readouterr().out
    assert text == (REPO / "mailroom" / "config.yaml.example").read_text()
    (tmp_path / "config.yaml").write_text(text)
    home = {"HOME": str(tmp_path)}
    assert load_settings({**home, "MAILROOM_CONFIG": str(tmp_path / "config.yaml")}) == (
        load_settings(home)
    )


def test_help_names_the_example_command_and_every_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "`mailroom config --example`" in out
    assert "config.yaml.example" not in out  # not a file an installed package has
    for code in ("0 done", "1 an error", "2 wrong usage", "78 a configuration error", "130"):
        assert code in out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_offer_the_commands(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in ("setup", "check", "run", "status", "demo", "config", "completion"):
        assert command in script


def test_the_bash_completion_script_is_valid_bash(tmp_path: Path) -> None:
    script = subprocess.run(
        [sys.executable, "-m", "mailroom", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "mailroom.bash").write_text(script)
    done = subprocess.run(["bash", "-n", str(tmp_path / "mailroom.bash")], check=False)
    assert done.returncode == 0


def test_the_changelog_has_the_version_mailroom_prints() -> None:
    assert f"## {version()} " in (REPO / "CHANGELOG.md").read_text()


def test_a_label_the_completion_cannot_know_is_still_refused_by_argparse() -> None:
    assert main(["completion", "fish"]) == 2
