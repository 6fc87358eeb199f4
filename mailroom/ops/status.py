"""`mailroom status`: each program's state and the /healthz summary.

It asks supervisord over its XML-RPC interface, through the control socket that
`mailroom run` keeps in STATE_DIR (``supervisor.xmlrpc.SupervisorTransport``: no
supervisorctl text to parse, no supervisord config to pass), and computes the
/healthz answer from the status files as the health process does (no port to know).
``render`` is pure; ``main`` does the I/O. Exit 0 when every program runs and health
is 200; 3 when mailroom is not running (as ``systemctl status`` does); 1 otherwise.
"""

from __future__ import annotations

import sys
import time
import xmlrpc.client
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailroom.errors import MailroomError
from mailroom.paths import SUPERVISOR_SOCKET
from mailroom.service import health

if TYPE_CHECKING:
    from mailroom.config import Settings

EX_NOT_RUNNING = 3
EVENT_LISTENERS = frozenset({"fatal"})  # supervisord's helpers, not mailroom's programs


@dataclass(frozen=True, slots=True)
class Program:
    """One program as supervisord reports it."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None
    description: str  # supervisord's own: "pid 42, uptime 0:01:02", "Exited too quickly"


class NotRunning(MailroomError):
    """No supervisord answers on the state dir's control socket."""


@contextmanager
def rpc(socket_path: Path) -> Iterator[Any]:
    """A proxy for supervisord's XML-RPC interface on a unix socket, closed after."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    try:
        yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    finally:
        transport.close()


def parse_programs(infos: Sequence[Mapping[str, Any]]) -> list[Program]:
    """getAllProcessInfo's answer as Programs, event listeners left out, by name."""
    found = [
        Program(
            name=str(i["name"]) if i.get("group") == i.get("name") else f"{i['group']}:{i['name']}",
            state=str(i.get("statename", "UNKNOWN")),
            pid=int(i.get("pid") or 0) or None,
            description=str(i.get("description", "")),
        )
        for i in infos
        if i.get("name") not in EVENT_LISTENERS
    ]
    return sorted(found, key=lambda p: p.name)


def programs(socket_path: Path) -> tuple[int, list[Program]]:
    """supervisord's pid and its programs; NotRunning when nothing answers."""
    try:
        with rpc(socket_path) as proxy:
            pid = int(proxy.supervisor.getPID())
            return pid, parse_programs(proxy.supervisor.getAllProcessInfo())
    except (OSError, xmlrpc.client.Error) as exc:
        raise NotRunning(f"no supervisord answers on {socket_path} ({exc})") from exc


def render(
    state_dir: Path, pid: int, progs: Sequence[Program], health_answer: tuple[int, dict[str, Any]]
) -> list[str]:
    """The lines `mailroom status` prints."""
    code, body = health_answer
    lines = [f"mailroom on {state_dir}: supervisord pid {pid}"]
    width = max((len(p.name) for p in progs), default=0)
    lines += [f"  {p.name:<{width}}  {p.state:<8}  {p.description}".rstrip() for p in progs]
    age = body.get("last_poll_age_seconds")
    last = "no pass yet" if age is None else f"last pass {age:.0f} s ago"
    trigger = body.get("last_poll_trigger")
    lines.append(
        f"/healthz: {code} {body.get('status')}; {last}"
        + (f" ({trigger})" if trigger else "")
        + f"; worker {body.get('worker', {}).get('status')}"
        + f"; push {body.get('eventsource', {}).get('status')}"
    )
    for source in ("worker", "eventsource"):
        error = body.get(source, {}).get("last_error")
        if error:
            lines.append(f"  {source} last error: {error}")
    return lines


def exit_code(progs: Sequence[Program], health_code: int) -> int:
    running = bool(progs) and all(p.state == "RUNNING" for p in progs)
    return 0 if running and health_code == 200 else 1


def main(settings: Settings) -> int:
    """`mailroom status` for ``settings.state_dir``."""
    state_dir = settings.state_dir
    try:
        pid, progs = programs(state_dir / SUPERVISOR_SOCKET)
    except NotRunning as exc:
        print(f"mailroom is not running on {state_dir}: {exc}; start it with `mailroom run`")
        return EX_NOT_RUNNING
    answer = health.answer(state_dir, "/healthz", time.time())
    print("\n".join(render(state_dir, pid, progs, answer)))
    sys.stdout.flush()
    return exit_code(progs, answer[0])
