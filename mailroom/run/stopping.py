"""How the three programs (listen, work, health) stop: SIGTERM or SIGINT, one way.

``stop_signals`` is a context: inside it SIGTERM (supervisord's ``stopsignal``, the
lifeline's parent-death signal) and SIGINT (Ctrl-C) set the Event it yields and call
``on_stop`` with the signal's name; the handlers in place before come back when it
ends. A handler runs in the main thread between two bytecodes, so ``on_stop`` must not
block or take a lock: it sets a flag, interrupts a wait, or starts a thread. Not even a
log line: the signal may have interrupted a log line's write, whose lock the main
thread holds (a worker stopped that way waited forever; see ``Worker.stop``). SIGHUP is
left as it is: under `mailroom run` supervisord (not the programs) gets a terminal's
hangup.

Standard library only (health imports it), and only what the programs already load.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _nothing(name: str) -> None:
    return None


@contextmanager
def stop_signals(on_stop: Callable[[str], None] = _nothing) -> Iterator[threading.Event]:
    """Until the block ends, SIGTERM and SIGINT set the yielded Event, then call
    ``on_stop(signal name)``."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        on_stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
