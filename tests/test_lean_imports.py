"""What the listener, health and worker processes import, started the way supervisord
starts them (``mailroom-lifeline listen|health|work``, in one process): never pydantic in
the listener and health; no vCard or YAML library in a worker that has triaged nothing.

Each child replaces the program's serving loop by a probe that prints the heavy
modules already imported at that point (settings read, logging configured, the
program's module loaded) and stops, so nothing listens or connects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYDANTIC = ("pydantic", "pydantic_core", "pydantic_settings", "annotated_types")
PROBE = """
import sys
import mailroom.service.{module} as program
heavy = set(sys.argv[1].split(","))
def probe(*args, **kwargs):
    found = sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)
    print(" ".join(found) or "-", flush=True)
    raise SystemExit(0)
program.{entry} = probe
from mailroom.run.lifeline import main
sys.exit(main(["{command}"]))
"""


def run(command: str, heavy: tuple[str, ...], tmp_path: Path, *flags: str, **extra: str) -> str:
    module, entry = {
        "listen": ("listener", "serve"),
        "health": ("health", "make_server"),
        "work": ("worker", "serve"),  # past the settings, the clients and the Triager
    }[command]
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_") and k != "PORT"}
    environ = {
        **base,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "MAILROOM_STATE_DIR": str(tmp_path / "state"),
        "MAILROOM_JMAP_TOKEN": "lean-imports-token-0123",
        "MAILROOM_CARDDAV_USERNAME": "lean-imports-user",
        "MAILROOM_CARDDAV_PASSWORD": "lean-imports-password-0123",
        "MAILROOM_HEALTH_PORT": "0",
        **extra,
    }
    code = PROBE.format(module=module, entry=entry, command=command)
    done = subprocess.run(
        [sys.executable, *flags, "-c", code, ",".join(heavy)],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_listener_process_never_imports_pydantic(tmp_path: Path) -> None:
    assert run("listen", (*PYDANTIC, "mailroom.config", "yaml"), tmp_path) == "-"


def test_the_listener_reads_a_config_file_without_pydantic(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("log_level: debug\npoll_interval: 30\n", encoding="utf-8")
    heavy = (*PYDANTIC, "mailroom.config", "yaml")
    found = run("listen", heavy, tmp_path, MAILROOM_CONFIG=str(config))
    assert {m.split(".")[0] for m in found.split()} == {"yaml"}  # read for log_level only


@pytest.mark.parametrize("lean", [("argparse", "mailroom.config", "mailroom.procsettings")])
def test_neither_program_parses_arguments_or_loads_the_full_config(
    lean: tuple[str, ...], tmp_path: Path
) -> None:
    assert run("listen", lean, tmp_path) == "mailroom.procsettings"
    assert run("health", lean, tmp_path) == "mailroom.procsettings"


def test_the_health_process_imports_nothing_heavy(tmp_path: Path) -> None:
    heavy = (*PYDANTIC, "httpx", "structlog", "yaml", "vobject", "ssl", "_ssl", "asyncio")
    stdlib = ("email", "http", "argparse", "tempfile")  # http.server: ssl and email
    assert run("health", (*heavy, *stdlib, "mailroom.config"), tmp_path) == "-"


def test_health_and_the_lifeline_skip_typing_datetime_and_dataclasses(tmp_path: Path) -> None:
    """Each costs 0.5-1.6 MiB of resident memory; health needs none of them."""
    costly = ("typing", "datetime", "dataclasses", "inspect", "base64", "copy", "tempfile")
    assert run("health", costly, tmp_path) == "-"


def test_health_and_the_lifeline_skip_pathlib_and_urllib(tmp_path: Path) -> None:
    """1.9 MiB together. -S: no site-packages, so no editable-install finder, which
    imports pathlib itself (a regular install has none); health needs nothing there."""
    assert run("health", ("pathlib", "urllib", "ipaddress"), tmp_path, "-S") == "-"


def test_the_worker_loads_vcard_and_yaml_libraries_only_when_it_needs_them(
    tmp_path: Path,
) -> None:
    """vobject (with dateutil, six), nameparser and PyYAML: about 3.9 MiB an idle worker
    does without; the first contact written or a config file brings them in."""
    heavy = ("vobject", "nameparser", "dateutil", "six", "yaml")
    assert run("work", heavy, tmp_path) == "-"
