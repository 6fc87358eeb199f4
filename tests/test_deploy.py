"""The deployment files in deploy/, and the package: each checked as far as this machine allows.

There is no container engine here (no docker, podman or buildah installed): the image is
not built. The Dockerfile and compose.yaml are parsed for the settings they must
carry, and the Dockerfile's HEALTHCHECK command is run against a real `mailroom
health`. The systemd unit goes through `systemd-analyze verify`. The supervisor
snippet runs under a real supervisord in test_deploy_real.py.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mailroom.run.statefiles import stamp, write_status
from mailroom_dev.servicebox import free_port
from mailroom_dev.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def env_of_dockerfile() -> dict[str, str]:
    found: dict[str, str] = {}
    for args in instruction("ENV"):
        found.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return found


def test_the_image_is_slim_runs_mailroom_run_as_a_user_with_the_state_dir_a_volume() -> None:
    assert instruction("FROM") == ["${BASE}"]  # a build argument: a local base where no
    (base,) = instruction("ARG")  # registry can be reached (dev/container/base.sh)
    assert base == "BASE=python:3.11-slim"
    assert instruction("CMD") == ['["mailroom", "run"]']
    (user,) = instruction("USER")
    assert user not in ("root", "0")
    env = env_of_dockerfile()
    assert env["MAILROOM_HEALTH_HOST"] == "0.0.0.0"  # noqa: S104 - inside the container
    assert json.loads(instruction("VOLUME")[0]) == [env["MAILROOM_STATE_DIR"]]
    assert instruction("EXPOSE") == [env["MAILROOM_HEALTH_PORT"]]


def healthcheck_argv() -> list[str]:
    (args,) = instruction("HEALTHCHECK")
    assert "--interval=" in args
    return list(json.loads(args[args.index("CMD") + 3 :]))


@pytest.fixture
def health_process() -> Iterator[tuple[int, Path]]:
    """A real `mailroom health` on a free port over an empty state dir."""
    with tempfile.TemporaryDirectory(prefix="mrd", dir="/tmp") as d:
        port = free_port()
        env = {**os.environ, "MAILROOM_STATE_DIR": d, "MAILROOM_HEALTH_PORT": str(port)}
        proc = subprocess.Popen([sys.executable, "-m", "mailroom", "health"], env=env)
        try:
            yield port, Path(d)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def answer(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_the_healthcheck_passes_on_200_and_fails_on_503(health_process: tuple[int, Path]) -> None:
    port, state_dir = health_process
    argv = [sys.executable if a == "python" else a for a in healthcheck_argv()]
    env = {**os.environ, "MAILROOM_HEALTH_PORT": str(port)}

    def check() -> int:
        return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode

    wait_until(lambda: answer(port) == 503, "health to answer 503 (no worker yet)", 30)
    assert check() == 1
    now = time.time()
    worker = {"pid": 1, "status": "running", **stamp("started_at", now), "heartbeat": now}
    write_status(state_dir / "worker.json", worker)
    assert check() == 0


def test_compose_builds_the_image_with_the_state_volume_and_an_init() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["mailroom"]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["init"] is True
    state = env_of_dockerfile()["MAILROOM_STATE_DIR"]
    assert service["volumes"] == [f"mailroom-state:{state}"]
    assert "mailroom-state" in compose["volumes"]
    assert service["env_file"] == "mailroom.env"
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    assert service["stop_grace_period"] == "90s"  # above the worker's 60 s stopwaitsecs
    example = (DEPLOY / "mailroom.env.example").read_text()
    for name in ("MAILROOM_JMAP_TOKEN", "MAILROOM_CARDDAV_USERNAME", "MAILROOM_CARDDAV_PASSWORD"):
        assert f"\n{name}=\n" in example


# -- systemd ------------------------------------------------------------------------------
def unit() -> configparser.RawConfigParser:
    parsed = configparser.RawConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read(DEPLOY / "systemd" / "mailroom.service")
    return parsed


def test_the_unit_runs_mailroom_run_with_its_state_dir_restarts_and_hardening() -> None:
    service = unit()["Service"]
    assert service["ExecStart"] == "/usr/local/bin/mailroom run"
    assert service["EnvironmentFile"] == "/etc/mailroom/mailroom.env"
    assert service["StateDirectory"] == "mailroom"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"
    assert service["KillMode"] == "mixed"
    for setting in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "DynamicUser"):
        assert service[setting] == "yes"
    assert service["ProtectSystem"] == "strict"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's `mailroom`
    mailroom = Path(sys.executable).parent / "mailroom"
    text = (DEPLOY / "systemd" / "mailroom.service").read_text()
    assert text.count("ExecStart=/usr/local/bin/mailroom run\n") == 1
    (tmp_path / "mailroom.service").write_text(
        text.replace("ExecStart=/usr/local/bin/mailroom", f"ExecStart={mailroom}")
    )
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mailroom.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


# -- the supervisor snippet -----------------------------------------------------------------
def snippet() -> configparser.RawConfigParser:
    parsed = configparser.RawConfigParser()
    parsed.read(DEPLOY / "supervisor" / "mailroom.conf")
    return parsed


def test_the_snippet_is_a_group_of_prefixed_programs_without_a_supervisord_section() -> None:
    conf = snippet()
    commands = {
        "mailroom-listener": "listen",
        "mailroom-worker": "work",
        "mailroom-health": "health",
    }
    programs = list(commands)
    assert conf["group:mailroom"]["programs"] == ",".join(programs)
    assert sorted(s for s in conf.sections() if s.startswith("program:")) == sorted(
        f"program:{p}" for p in programs
    )
    assert not [s for s in conf.sections() if s.split(":")[0] in ("supervisord", "eventlistener")]
    for p in programs:
        section = conf[f"program:{p}"]
        assert section["command"] == f"mailroom-lifeline {commands[p]}"
        assert (section["exitcodes"], section["startsecs"]) == ("78", "0")
        assert (section["stopasgroup"], section["killasgroup"]) == ("true", "true")


# -- the package --------------------------------------------------------------------------
@pytest.mark.slow
def test_the_wheel_is_mailroom_screener_with_the_commands_and_the_conf(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("mailroom_screener-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(info).decode()
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "mailroom/supervisord.conf" in names
    assert "mailroom/config.yaml.example" in names  # `mailroom config --example`
    # only the product: not the harness (dev/mailroom_dev), the tests or the benches
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"mailroom"}, packages
    assert not [n for n in names if n.endswith(".sh")]
    assert "Name: mailroom-screener" in metadata
    assert "Classifier: License :: OSI Approved :: MIT License" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    for script in ("mailroom = mailroom.cli:main", "mailroom-lifeline = "):
        assert script in entry_points


def test_the_snippet_runs_as_a_dedicated_user_with_the_credentials_in_one_env_file() -> None:
    conf = snippet()
    text = (DEPLOY / "supervisor" / "mailroom.conf").read_text()
    for p in ("mailroom-listener", "mailroom-worker", "mailroom-health"):
        section = conf[f"program:{p}"]
        assert section["user"] == "mailroom"
        assert section["directory"] == "/etc/mailroom"  # mailroom reads ./.env there
        assert section["environment"] == 'MAILROOM_STATE_DIR="/var/lib/mailroom"'
    assert "install -o mailroom -g mailroom -m 0600 /dev/null /etc/mailroom/.env" in text


def test_git_and_the_image_build_ignore_the_env_files() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", ".env", "deploy/mailroom.env", ".venv/x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert ignored == [".env", "deploy/mailroom.env", ".venv/x"]
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", "deploy/mailroom.env.example"],
        cwd=REPO,
        check=False,
    )
    assert kept.returncode == 1  # the example stays tracked
    dockerignore = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "deploy/mailroom.env", "**/*.env"} <= set(dockerignore)
