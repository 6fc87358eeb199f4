"""`mailroom status`: what runs, each program's state and the /healthz summary.

It looks for every supervisord that runs mailroom, in this order: `mailroom run`'s on
the configured state dir, the demo's (``mailroom demo`` runs `mailroom run` on its own
state dir), and a system supervisord with the deploy snippet's ``mailroom`` group on
its well-known control socket (Debian's ``/run/supervisor.sock``, supervisord's sample
``/tmp/supervisor.sock``), or on ``--supervisor-socket PATH`` alone when given. Each is
asked over XML-RPC (``run.supervisor_rpc``, the project's one client: no
supervisorctl text to parse, no supervisord config to pass), and the /healthz answer
is computed from its state dir's status files as the health process does (no port to
know). ``render`` is pure; ``main`` does the I/O. Exit 0 when everything found runs and
health is 200; 3 when mailroom is not running anywhere (as ``systemctl status``
does); 1 otherwise.
"""

from __future__ import annotations

import http.client
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailroom.errors import MailroomError
from mailroom.run.statefiles import read_status
from mailroom.run.supervisor_rpc import rpc
from mailroom.service import health
from mailroom.statenames import SUPERVISOR_SOCKET, WORKER_FILE

if TYPE_CHECKING:
    from mailroom.config import Settings

EX_NOT_RUNNING = 3
# A system supervisord: where Debian's package and supervisord's sample config put the
# control socket (/var/run is a link to /run on Debian), and the deploy snippet's group
# and state dir (deploy/supervisor/mailroom.conf).
WELL_KNOWN_SOCKETS = (Path("/run/supervisor.sock"), Path("/tmp/supervisor.sock"))
SNIPPET_GROUP = "mailroom"
SNIPPET_STATE_DIR = Path("/var/lib/mailroom")


@dataclass(frozen=True, slots=True)
class Program:
    """One program as supervisord reports it."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None
    description: str  # supervisord's own: "pid 42, uptime 0:01:02", "Exited too quickly"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a supervisord running mailroom may answer."""

    kind: str  # "run" (the configured state dir), "demo", "system"
    socket: Path
    state_dirs: tuple[Path, ...]  # whose status files give /healthz: the first with any


@dataclass(frozen=True, slots=True)
class Found:
    """A supervisord that answered, with mailroom's programs under it."""

    place: Place
    pid: int
    programs: tuple[Program, ...]
    state_dir: Path


class NotRunning(MailroomError):
    """No supervisord answers on a control socket."""


def parse_programs(infos: Sequence[Mapping[str, Any]]) -> list[Program]:
    """getAllProcessInfo's answer as Programs, by name."""
    found = [
        Program(
            name=str(i["name"]) if i.get("group") == i.get("name") else f"{i['group']}:{i['name']}",
            state=str(i.get("statename", "UNKNOWN")),
            pid=int(i.get("pid") or 0) or None,
            description=str(i.get("description", "")),
        )
        for i in infos
    ]
    return sorted(found, key=lambda p: p.name)


def programs(socket_path: Path) -> tuple[int, list[Program]]:
    """supervisord's pid and its programs; NotRunning when nothing answers."""
    try:
        with rpc(socket_path) as proxy:
            pid = int(proxy.supervisor.getPID())
            return pid, parse_programs(proxy.supervisor.getAllProcessInfo())
    except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
        raise NotRunning(f"no supervisord answers on {socket_path} ({exc})") from exc


def places(state_dir: Path, demo_state_dir: Path, supervisor_socket: Path | None) -> list[Place]:
    """Where to look, in order (pure): ``supervisor_socket`` alone when given."""
    system_dirs = tuple(dict.fromkeys((state_dir, SNIPPET_STATE_DIR)))
    if supervisor_socket is not None:
        return [Place("system", supervisor_socket, system_dirs)]
    found = [Place("run", state_dir / SUPERVISOR_SOCKET, (state_dir,))]
    if demo_state_dir != state_dir:
        found.append(Place("demo", demo_state_dir / SUPERVISOR_SOCKET, (demo_state_dir,)))
    found += [Place("system", s, system_dirs) for s in WELL_KNOWN_SOCKETS]
    return found


def mailroom_programs(place: Place, progs: Sequence[Program]) -> tuple[Program, ...]:
    """The programs that are mailroom's: all of `mailroom run`'s own supervisord, the
    snippet's group of a system supervisord (its other programs are not ours)."""
    if place.kind != "system":
        return tuple(progs)
    return tuple(p for p in progs if p.name.startswith(f"{SNIPPET_GROUP}:"))


def heading(found: Found) -> str:
    place = found.place
    if place.kind == "run":
        return f"mailroom on {found.state_dir}: supervisord pid {found.pid}"
    if place.kind == "demo":
        return f"mailroom demo on {found.state_dir}: supervisord pid {found.pid}"
    return (
        f"mailroom ({SNIPPET_GROUP}:*) under the supervisord on {place.socket}: "
        f"pid {found.pid}; status files in {found.state_dir}"
    )


def render(
    state_dir: Path, pid: int, progs: Sequence[Program], health_answer: tuple[int, dict[str, Any]]
) -> list[str]:
    """The lines `mailroom status` prints for `mailroom run` on ``state_dir``."""
    found = Found(Place("run", state_dir / SUPERVISOR_SOCKET, (state_dir,)), pid, (), state_dir)
    return [heading(found), *summary(progs, health_answer)]


def summary(progs: Sequence[Program], health_answer: tuple[int, dict[str, Any]]) -> list[str]:
    """The program lines and the /healthz summary."""
    code, body = health_answer
    width = max((len(p.name) for p in progs), default=0)
    lines = [f"  {p.name:<{width}}  {p.state:<8}  {p.description}".rstrip() for p in progs]
    age = body.get("last_poll_age_seconds")
    last = "no pass yet" if age is None else f"last pass {age:.0f} s ago"
    trigger = body.get("last_poll_trigger")
    lines.append(
        f"/healthz: {code} {body.get('status')}; {last}"
        + (f" ({trigger})" if trigger else "")
        + f"; worker {body.get('worker', {}).get('status')}"
        + f"; push {body.get('eventsource', {}).get('status')}"
    )
    if body.get("reason"):
        lines.append(f"  reason: {body['reason']}")
    for source in ("worker", "eventsource"):
        error = body.get(source, {}).get("last_error")
        if error:
            lines.append(f"  {source} last error: {error}")
    return lines


def exit_code(progs: Sequence[Program], health_code: int) -> int:
    running = bool(progs) and all(p.state == "RUNNING" for p in progs)
    return 0 if running and health_code == 200 else 1


def look(where: Sequence[Place]) -> tuple[list[Found], list[str]]:
    """The supervisords that run mailroom, and a note for each place that could not
    be asked though something is there (a socket without permission, a supervisord
    without the mailroom group)."""
    found: list[Found] = []
    notes: list[str] = []
    for place in where:
        try:
            pid, progs = programs(place.socket)
        except NotRunning as exc:
            if isinstance(exc.__cause__, PermissionError) or (
                place.kind == "system" and place.socket.exists()
            ):
                notes.append(str(exc))
            continue
        ours = mailroom_programs(place, progs)
        if not ours:
            notes.append(f"the supervisord on {place.socket} has no {SNIPPET_GROUP} group")
            continue
        dirs = place.state_dirs
        state_dir = next((d for d in dirs if read_status(d / WORKER_FILE) is not None), dirs[0])
        found.append(Found(place, pid, ours, state_dir))
    return found, notes


def main(settings: Settings, supervisor_socket: Path | None = None) -> int:
    """`mailroom status [--supervisor-socket PATH]`."""
    from mailroom.ops.demo import DEMO_DIR

    state_dir = settings.state_dir
    where = places(state_dir, DEMO_DIR / "state", supervisor_socket)
    found, notes = look(where)
    if not found:
        sockets = ", ".join(str(p.socket) for p in where)
        print(
            f"mailroom is not running on {state_dir}: no supervisord with mailroom's "
            f"programs answers on {sockets}"
            + "".join(f"; {note}" for note in notes)
            + "; start it with `mailroom run`"
        )
        return EX_NOT_RUNNING
    codes = []
    for each in found:
        answer = health.answer(each.state_dir, "/healthz", time.time())
        print("\n".join([heading(each), *summary(each.programs, answer)]))
        codes.append(exit_code(each.programs, answer[0]))
    sys.stdout.flush()
    return max(codes)
