"""supervisord as `mailroom run` runs it: supervisord's own loop, in our process, with
the run's rules added.

``run_supervisord`` does what ``supervisor.supervisord.main`` does (options, then the
Supervisor's loop, again after a ``supervisorctl reload``), with ``RunSupervisor`` instead of
supervisord's Supervisor and ``RunOptions`` (a reload leaves the output copier's
descriptors open) instead of its ServerOptions. It adds three things:

- **Stop signals.** SIGINT, SIGTERM and SIGHUP (and SIGQUIT, as in supervisord) all
  stop everything (supervisord alone reloads its configuration on SIGHUP, which a
  closed terminal sends); the first one is recorded as what asked for the stop.
- **The output closed.** When the reader of our real stdout or stderr is gone
  (`mailroom run | tee log` after the tee was killed: a copy's write failed with EPIPE,
  or the pipe shows it), everything stops; asked once per turn of supervisord's loop
  (at least once a second). supervisord's fd 1 and 2 are the pipes
  ``mailroom.run.outpipes`` copies to the real ones.
- **The first spawn at once.** supervisord starts its programs after the first turn of
  its loop, whose ``poll()`` waits its full 1 s timeout when nothing is ready yet;
  ``RunSupervisor`` starts them before that first turn.

What ends the run for good (a program FATAL, or exited 78) is the plugin in
``mailroom.run.fatal``, which the packaged supervisord.conf loads. This module
runs in supervisord's process only: it imports supervisor, which `mailroom run`'s
configuration check never does.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Any, Protocol

from supervisor import supervisord
from supervisor.medusa import asyncore_25 as asyncore
from supervisor.options import ServerOptions
from supervisor.states import SupervisorStates

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # a terminal's, a service manager's
EXIT_SIGNALS = (*STOP_SIGNALS, signal.SIGQUIT)  # and supervisord's own third one


class Output(Protocol):
    """What the loop asks of the run's output each turn: has its reader gone?"""

    def closed(self) -> bool: ...


class PipedOutput(Output, Protocol):
    """The run's output as ``mailroom.run.outpipes.OutputPipes`` has it: also the
    descriptors a reload must leave open."""

    keep: frozenset[int]


class RunOptions(ServerOptions):  # type: ignore[misc]
    """supervisord's options; a reload (``supervisorctl reload``) closes the descriptors
    it leaked, from fd 5 up, as supervisord's does, but leaves ``keep`` open (the output
    copier's)."""

    keep: frozenset[int] = frozenset()

    def cleanup_fds(self) -> None:
        start = 5
        for fd in sorted(fd for fd in self.keep if start <= fd < self.minfds):
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, self.minfds)


class RunSupervisor(supervisord.Supervisor):  # type: ignore[misc]
    """supervisord's Supervisor with `mailroom run`'s rules (see the module's doc)."""

    def __init__(self, options: Any, output: Output) -> None:
        super().__init__(options)
        self.asked: str | None = None
        self._output = output

    def runforever(self) -> None:
        for group in sorted(self.process_groups.values()):
            group.transition()  # spawn now, not after the first poll's 1 s timeout
        super().runforever()

    def handle_signal(self) -> None:
        """One signal per turn of the loop, in the order they came, as supervisord's
        own ``handle_signal`` takes them; SIGHUP stops instead of reloading."""
        if self._output.closed():
            self._stop("output closed")
        sig = self.options.get_signal()
        if sig is None:
            return
        name = signal.Signals(sig).name
        if sig in EXIT_SIGNALS:
            self.options.logger.warn(f"received {name} indicating exit request")
            self._stop(name)
        elif sig == signal.SIGUSR2:  # as supervisord: reopen the log files
            self.options.logger.info(f"received {name} indicating log reopen request")
            self.options.reopenlogs()
            for group in self.process_groups.values():
                group.reopenlogs()
        else:  # SIGCHLD: the loop reaps each turn anyway
            self.options.logger.blather(f"received {name} indicating nothing")

    def _stop(self, why: str) -> None:
        """Stop everything (supervisord stops the programs, each within its
        stopwaitsecs); the first reason is kept, later requests change nothing."""
        if self.asked is None:
            self.asked = why
        self.options.mood = SupervisorStates.SHUTDOWN


def run_supervisord(args: Sequence[str], output: PipedOutput) -> str | None:
    """supervisord with ``args`` (its command line) until it ends; what asked it to
    stop (a signal's name, "output closed"), or None (supervisorctl shutdown, the
    FATAL plugin)."""
    first = True
    while True:
        options = RunOptions()
        options.keep = output.keep
        options.realize(list(args), doc=supervisord.__doc__)
        options.first, options.test = first, False
        run = RunSupervisor(options, output)
        with contextlib.suppress(asyncore.ExitNow):
            run.main()
        options.close_httpservers()
        options.close_logger()
        first = False
        if run.asked is not None or options.mood < SupervisorStates.RESTARTING:
            return run.asked
