"""What ends `mailroom run` for good: a plugin inside supervisord, not a process.

supervisord alone keeps running when a program goes FATAL, so systemd or a platform
would see a live service while nothing triages. The packaged supervisord.conf loads
this module into supervisord itself through its plugin hook
(``[rpcinterface:mailroom]``, ``supervisor.rpcinterface_factory =
mailroom.run.fatal:make_rpcinterface``; never in the system include snippet), and
``FatalWatch`` subscribes to supervisord's own ``PROCESS_STATE_FATAL`` and
``PROCESS_STATE_EXITED`` events, in its process: no event-listener interpreter (14 MiB),
no protocol, no XML-RPC round trip. A program that is FATAL (it could not be started)
or that exited with an expected code (78, a configuration error: not restarted) will
not come back, so the watch writes the reason to ``STATE_DIR/stopped.json``, logs it
through supervisord's logger and sets supervisord's mood to SHUTDOWN (what
``supervisorctl shutdown`` does). `mailroom run` then prints that reason as one line and
exits non-zero; a supervisord started by hand with the packaged conf stops the same way.

The decision is pure (``verdict``); ``FatalWatch`` is the shell around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mailroom.procsettings import read_environment, state_dir
from mailroom.run.statefiles import read_status, write_status
from mailroom.statenames import STOPPED_FILE

EX_CONFIG = 78
EXITED_78 = "exited with status 78 (a configuration error, its message is above)"


class Stopped(NamedTuple):
    """Why `mailroom run` stopped everything: the program, a reason line, the exit code.
    (Not a dataclass: dataclasses imports inspect, ast and dis, 0.8 MiB in `mailroom
    run`'s process, where supervisord loads this module; typing is loaded there already.)"""

    program: str
    reason: str
    exit_code: int

    def line(self) -> str:
        return f"mailroom run: {self.program} {self.reason}; everything was stopped"


def verdict(event: str, body: Mapping[str, str], info: Mapping[str, Any]) -> Stopped | None:
    """A Stopped when ``event`` leaves a program down for good, else None.

    ``info`` holds the process's ``exitstatus`` and ``spawnerr`` as supervisord has them.
    """
    program = body.get("processname", "?")
    if event == "PROCESS_STATE_EXITED" and body.get("expected") == "1":
        status = int(info.get("exitstatus") or 0)
        if status == EX_CONFIG:
            return Stopped(program, EXITED_78, EX_CONFIG)
        return Stopped(program, "exited and will not be restarted (its lines are above)", 1)
    if event == "PROCESS_STATE_FATAL":
        why = str(info.get("spawnerr") or "it exited too quickly, see its lines above")
        return Stopped(program, f"could not be started ({why})", 1)
    return None


def read_stopped(state_dir: Path) -> Stopped | None:
    """The reason the watch left in ``state_dir``, if any."""
    doc = read_status(state_dir / STOPPED_FILE)
    if not doc:
        return None
    try:
        return Stopped(str(doc["program"]), str(doc["reason"]), int(str(doc["exit_code"])))
    except (KeyError, TypeError, ValueError):
        return None


def make_rpcinterface(supervisord: Any, **config: str) -> FatalWatch:
    """supervisord's plugin hook: called at its start (and after a reload) with the
    Supervisor itself, once per control server; one watch per Supervisor."""
    watch = getattr(supervisord, "mailroom_fatal_watch", None)
    if not isinstance(watch, FatalWatch):
        watch = FatalWatch(supervisord, Path(state_dir(read_environment())))
        supervisord.mailroom_fatal_watch = watch
    return watch


class FatalWatch:
    """Subscribed to supervisord's process events; ends supervisord when a program is
    down for good. Its XML-RPC namespace (``mailroom``) has no methods."""

    def __init__(self, supervisord: Any, state_dir: Path) -> None:
        from supervisor import events  # supervisord's own, already loaded in its process

        self._supervisord = supervisord
        self._state_dir = state_dir
        self._name_of = events.getEventNameByType
        self._done = False  # the first program down for good is the reason; the rest follow it
        events.subscribe(events.ProcessStateFatalEvent, self._on_event)
        events.subscribe(events.ProcessStateExitedEvent, self._on_event)

    def _on_event(self, event: Any) -> None:
        if self._done:
            return
        process = event.process
        body = {
            "processname": str(process.config.name),
            "groupname": str(process.group.config.name if process.group else ""),
            "expected": "1" if getattr(event, "expected", False) else "0",
        }
        info = {"exitstatus": process.exitstatus, "spawnerr": process.spawnerr}
        stopped = verdict(str(self._name_of(type(event))), body, info)
        if stopped is None:
            return
        self._done = True
        write_status(self._state_dir / STOPPED_FILE, stopped._asdict())
        options = self._supervisord.options
        options.logger.critical(stopped.line())
        from supervisor.states import SupervisorStates

        options.mood = SupervisorStates.SHUTDOWN
