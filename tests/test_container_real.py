"""deploy/Dockerfile built and run: the image runs `mailroom run` against the real Cyrus,
answers its own HEALTHCHECK and triages a label.

Selected by the ``container`` marker, and skipped unless this machine can build and run
an image: ``buildah`` and ``podman`` on PATH and the base image present (no registry is
reached: ``dev/container/base.sh`` builds it, ``MAILROOM_TEST_CONTAINER_BASE`` names
another). The build is ``podman build --isolation chroot`` and the run ``buildah run
--isolation chroot`` on the host's network: both work without cgroups, namespaces or
raised rlimits, which ``podman run`` needs (see docs/decisions.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import free_port
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow, pytest.mark.container]
REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("MAILROOM_TEST_CONTAINER_BASE", "localhost/mailroom-base:bookworm")
IMAGE = "localhost/mailroom-screener:test"


def why_not() -> str | None:
    """Why no image can be built and run here, or None."""
    for tool in ("podman", "buildah"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman buildah debootstrap)"
    exists = subprocess.run(["podman", "image", "exists", BASE], check=False)
    if exists.returncode != 0:
        return f"no base image {BASE}: build it with dev/container/base.sh"
    return None


@pytest.fixture(scope="module")
def image() -> str:
    reason = why_not()
    if reason is not None:
        pytest.skip(reason)
    subprocess.run(
        [
            *("podman", "build", "--isolation", "chroot", "--format", "docker"),
            *("--network", "host", "--build-arg", f"BASE={BASE}"),
            *("-f", "deploy/Dockerfile", "-t", IMAGE, "."),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return IMAGE


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = f"mailroom-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["buildah", "from", "--name", name, image], check=True, capture_output=True)
    yield name
    subprocess.run(["buildah", "rm", name], check=False, capture_output=True)


def inspect(image: str, field: str) -> dict[str, Any]:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", f"{{{{json .{field}}}}}", image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def healthz(port: int) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())
    except (httpx.TransportError, ValueError):
        return {}


def in_container(name: str, env: dict[str, str], argv: list[str]) -> list[str]:
    flags = [f"--env={k}={v}" for k, v in env.items()]
    run = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    return [*run, *flags, name, "--", *argv]


@pytest.mark.timeout(900)
def test_the_image_runs_the_service_answers_its_healthcheck_and_triages(
    account: Account, image: str, container: str, tmp_path: Path
) -> None:
    conf = inspect(image, "Config")
    assert conf["Cmd"] == ["mailroom", "run"]
    assert conf["User"] == "mailroom"
    box = Box.create(account)
    port = free_port()
    env = {
        **account.env(),
        "MAILROOM_HEALTH_HOST": "127.0.0.1",  # the host's network: not every interface
        "MAILROOM_HEALTH_PORT": str(port),
        "MAILROOM_POLL_INTERVAL": "600",
    }
    log = tmp_path / "container.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            in_container(container, env, conf["Cmd"]),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: (
                healthz(port).get("eventsource", {}).get("status") == "connected"
                and healthz(port).get("last_poll_trigger") is not None
            ),
            "the container's service up: push connected, the startup pass done",
            180,
        )
        check = inspect(image, "HealthCheck")["Test"]  # ["CMD", "python", "-c", "..."]
        assert check[0] == "CMD"
        probe = subprocess.run(
            in_container(container, {"MAILROOM_HEALTH_PORT": str(port)}, check[1:]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        # the image's interpreters (not buildah's chroot helper, whose command line holds
        # the CMD): `mailroom run`, which is supervisord itself, and the three programs
        running = [p for p in in_image_processes() if p.startswith("/opt/mailroom/")]
        assert len(running) == 4, running
        assert sum("-m mailroom.run.runner " in p for p in running) == 1, running
        mail = box.deliver(from_addr="boxed@container.example", subject="from the image")
        box.label(mail, "@ToFeed")
        wait_until(lambda: box.where(mail) == {"Feed"}, "the label acted on", 120)
        assert box.groups_of("boxed@container.example") == {"Feed", "Mailroom"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
        print(log.read_text(errors="replace")[-4000:])
    # buildah ends when its child (`mailroom run`) took the signal; the programs follow
    wait_until(lambda: not in_image_processes(), "every process of the image to end", 90)
    assert in_image_processes() == []
    assert healthz(port) == {}


def in_image_processes() -> list[str]:
    """Command lines run from the image's venv (/opt/mailroom), anywhere on the host."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "/opt/mailroom/" in text:
            found.append(text)
    return found
