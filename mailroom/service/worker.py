"""`mailroom work`: the only process that triages.

It holds ``STATE_DIR/worker.lock`` (two workers would race), binds the wake socket,
runs a catch-up pass, then loops: wait for a wake or the fallback timer, pass. The
decisions (echo rule, coalescing with a minimum spacing, fallback) are in ``debounce``;
this module is the loop around an injected ``pass_fn(trigger) -> PassReport``. Wakes that came in
while a pass ran are drained as soon as it returns, so that they are known to have
arrived before its last write returned (the echo rule for long writes).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from mailroom.errors import LockTaken, MailroomError
from mailroom.paths import ensure_state_dir
from mailroom.run import accountlock, pidlock
from mailroom.run.statefiles import (
    HEARTBEAT_SECONDS,
    StatusFile,
    error_summary,
    iso,
    read_status,
    stamp,
    stamped,
)
from mailroom.run.stopping import stop_signals
from mailroom.service import debounce
from mailroom.service.wake import Wake, WakeReceiver
from mailroom.statenames import STRIKES_FILE, WAKE_SOCKET, WORKER_FILE, WORKER_LOCK
from mailroom.triage.report import PassReport
from mailroom.version import version

if TYPE_CHECKING:
    from mailroom.config import Settings

MAX_CONSECUTIVE_FAILURES = 10
# passes_held: push passes whose news waited for the spacing (debounce_seconds) to end;
# emails_moved, senders_failed, senders_parked: summed over the passes (for /metrics)
COUNTERS = (
    "passes",
    "failures",
    "wakes",
    "echoes_skipped",
    "seen_skipped",
    "passes_held",
    "emails_moved",
    "senders_failed",
    "senders_parked",
)
PassFn = Callable[[str], PassReport]
PARKED_KEPT = 20  # worker.json keeps the newest parked senders, a restart included
log = structlog.get_logger("mailroom.worker")


class WakeSource(Protocol):
    def wait(self, timeout: float) -> list[Wake]: ...
    def drain(self) -> list[Wake]: ...
    def interrupt(self) -> None: ...


class Worker:
    """The loop; ``run()`` returns the exit code, ``stop()`` ends it after the pass in flight."""

    def __init__(
        self,
        pass_fn: PassFn,
        wakes: WakeSource,
        status: StatusFile,
        *,
        poll_interval: float,
        debounce_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._pass_fn, self._wakes, self._status = pass_fn, wakes, status
        self._clock, self._wall = clock, wall
        self._timer = debounce.Timer(poll_interval, debounce_seconds, last_pass_at=clock())
        self._last: PassReport | None = None
        self._failures_in_a_row = 0
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._tallies: dict[str, dict[str, int]] = {"passes_by_trigger": {}, "triaged": {}}
        self._stopping = False
        self._stopped_by: str | None = None  # the signal that asked, logged by run()
        self._parked = parked_entries(status.snapshot().get("parked"), (), 0.0)

    def stop(self, signal_name: str | None = None) -> None:
        """End the loop after the pass in flight. Safe in a signal handler: it sets two
        fields and sends one datagram, and never logs (a handler that logs waits forever
        for the logger's lock when the signal interrupted a log line's write)."""
        self._stopped_by = signal_name
        self._stopping = True
        self._wakes.interrupt()

    def run(self) -> int:
        self._status.update(status="running", counters=dict(self._counters))
        self._pass("startup")
        while not self._stopping:
            if self._failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                log.error("worker_giving_up", consecutive_failures=self._failures_in_a_row)
                return 1
            self._step()
        if self._stopped_by is not None:
            log.info("worker_stopping", signal=self._stopped_by)
        log.info("worker_stopped")
        return 0

    def _step(self) -> None:
        wakes = self._wakes.wait(self._timer.deadline() - self._clock())
        if wakes:
            self._take(wakes)
        trigger = self._timer.due(self._clock())
        if trigger is not None and not self._stopping:
            self._pass(trigger)

    def _take(self, wakes: list[Wake], *, during_last: bool = False) -> None:
        verdicts = [debounce.classify(w, self._last, during_last=during_last) for w in wakes]
        for verdict, w in zip(verdicts, wakes, strict=True):
            if verdict != "news":
                log.debug("wake_skipped", verdict=verdict, changed=dict(w.changed))
        self._counters["wakes"] += len(wakes)
        self._counters["echoes_skipped"] += verdicts.count("echo")
        self._counters["seen_skipped"] += verdicts.count("seen")
        self._timer = self._timer.on_wakes(verdicts, self._clock())
        self._status.update(counters=dict(self._counters))

    def _pass(self, trigger: str) -> None:
        with structlog.contextvars.bound_contextvars(trigger=trigger):
            if self._timer.collapsed > 1:
                log.debug("debounce_collapsed", wakes=self._timer.collapsed)
            if trigger == "push" and self._timer.held():
                self._counters["passes_held"] += 1
            started = self._clock()
            passed = False
            wait: float | None = None  # the server's Retry-After
            try:
                report = self._pass_fn(trigger)
            except LockTaken:
                raise  # a second worker on this account: exit 78, as a config error
            except Exception as exc:  # any other failed pass is counted and retried
                wait = debounce.retry_after(exc)
                self._failed(exc, wait)
            else:
                self._passed(report)
                passed = True
            finally:
                self._timer = self._timer.after_pass(started, self._clock(), wait=wait)
            during = self._wakes.drain()  # queued before the pass's last write returned
            if during:
                self._take(during, during_last=passed)

    def _passed(self, report: PassReport) -> None:
        self._last = report
        self._failures_in_a_row = 0
        self._counters["passes"] += 1
        self._counters["emails_moved"] += report.emails_moved
        self._counters["senders_failed"] += report.failures
        self._counters["senders_parked"] += len(report.parked)
        tally(self._tallies["passes_by_trigger"], [(report.trigger, 1)])
        tally(self._tallies["triaged"], report.triaged)
        now = self._wall()
        self._parked = parked_entries(self._parked, report.parked, now)
        self._status.update(
            **stamp("last_successful_poll", now),
            last_poll_trigger=report.trigger,
            consecutive_failures=0,
            last_error=None,
            counters=dict(self._counters),
            parked=self._parked,
            **({} if report.routing is None else {"routing": dict(report.routing)}),
            **{k: dict(v) for k, v in self._tallies.items()},
        )

    def _failed(self, exc: Exception, retry_after: float | None = None) -> None:
        self._failures_in_a_row += 1
        self._counters["failures"] += 1
        log.error(
            "pass_failed",
            error=error_summary(exc),
            error_type=type(exc).__name__,
            consecutive_failures=self._failures_in_a_row,
            retry_after=retry_after,
            exc_info=not isinstance(exc, MailroomError),
        )
        self._status.update(
            consecutive_failures=self._failures_in_a_row,
            last_error=error_summary(exc),
            counters=dict(self._counters),
        )


def tally(counts: dict[str, int], items: Sequence[tuple[str, int]]) -> None:
    """Add ``items`` (name, count) to ``counts``: worker.json's passes_by_trigger and
    triaged (senders by category), which /metrics exposes as labelled counters."""
    for name, count in items:
        counts[name] = counts.get(name, 0) + count


def parked_entries(previous: object, parked: Sequence[str], now: float) -> list[dict[str, str]]:
    """worker.json's ``parked``: the newest PARKED_KEPT parked senders, oldest first (pure).

    ``parked`` is a pass report's ``"address: reason"`` lines; a sender parked again
    moves to the end with its new reason. Malformed entries of ``previous`` are dropped.
    """
    fields = ("sender", "reason", "parked_at")
    kept = [
        {k: e[k] for k in fields}
        for e in (previous if isinstance(previous, list) else [])
        if isinstance(e, dict) and all(isinstance(e.get(k), str) for k in fields)
    ]
    for line in parked:
        sender, _, reason = line.partition(": ")
        kept = [e for e in kept if e["sender"] != sender]
        kept.append({"sender": sender, "reason": reason, "parked_at": iso(now)})
    return kept[-PARKED_KEPT:]


def initial_status(
    previous: Mapping[str, Any] | None, *, poll_interval: float, now: float
) -> dict[str, Any]:
    """A new worker.json; the last successful pass of a previous worker carries over."""
    before = previous or {}
    return {
        "status": "starting",
        "pid": os.getpid(),
        **stamp("started_at", now),
        "poll_interval": poll_interval,
        "last_successful_poll": before.get("last_successful_poll"),
        "last_successful_poll_epoch": stamped(before, "last_successful_poll"),
        "last_poll_trigger": before.get("last_poll_trigger"),
        "consecutive_failures": 0,
        "last_error": None,
        "counters": dict.fromkeys(COUNTERS, 0),
        "passes_by_trigger": {},
        "triaged": {},
        "parked": parked_entries(before.get("parked"), (), now),
        "routing": before.get("routing"),  # where judging new mail resumes (routing/arrivals)
        "version": version(),
    }


def main(settings: Settings) -> int:
    """`mailroom work`: the real pass function, wired to the loop."""
    from mailroom.clients import open_clients
    from mailroom.routing.arrivals import ArrivalRouter
    from mailroom.triage.engine import Triager

    settings.require_credentials()
    with open_clients(settings) as (jmap, carddav):
        ensure_state_dir(settings.state_dir)
        kept = settings.state_dir / STRIKES_FILE  # strikes outlive a restart
        triager = Triager(settings, jmap, carddav, strikes_file=kept)  # keeps mailbox ids
        previous = read_status(settings.state_dir / WORKER_FILE)
        router = ArrivalRouter(settings, jmap, carddav, triager, previous=previous)
        # one triaging worker per account, however spelled: locked at the first pass
        locked = accountlock.locked(router.run_pass, lambda: jmap.session, settings.state_dir)
        return serve(
            locked,
            settings.state_dir,
            poll_interval=settings.poll_interval,
            debounce_seconds=settings.debounce_seconds,
        )


def serve(
    pass_fn: PassFn, state_dir: Path, *, poll_interval: float, debounce_seconds: float
) -> int:
    """Lock, socket, status file, heartbeat and signals around a ``Worker``."""
    ensure_state_dir(state_dir)
    try:
        lock = pidlock.take(state_dir / WORKER_LOCK, state_dir, lambda h: _second(state_dir, h))
    except LockTaken as taken:
        log.error("worker_already_running", lock=str(state_dir / WORKER_LOCK), pid=taken.pid)
        return pidlock.refuse("work", taken)
    with lock:
        path = state_dir / WORKER_FILE
        status = StatusFile(
            path, initial_status(read_status(path), poll_interval=poll_interval, now=time.time())
        )
        receiver = WakeReceiver(state_dir / WAKE_SOCKET)
        worker = Worker(
            pass_fn,
            receiver,
            status,
            poll_interval=poll_interval,
            debounce_seconds=debounce_seconds,
        )
        log.info("worker_started", state_dir=str(state_dir), poll_interval=poll_interval)
        try:
            with stop_signals(worker.stop), _heartbeat(status):
                return worker.run()
        finally:
            receiver.close()
            status.update(status="stopped")


def _second(state_dir: Path, holder: pidlock.Holder) -> LockTaken:
    """Another worker holds STATE_DIR/worker.lock."""
    return LockTaken(
        f"another mailroom worker (pid {holder.pid}) holds {state_dir / WORKER_LOCK}",
        "two workers would race. Stop it first, or give this one its own MAILROOM_STATE_DIR.",
        pid=holder.pid,
        state_dir=holder.state_dir,
    )


@contextmanager
def _heartbeat(status: StatusFile) -> Iterator[None]:
    """Refresh the status file every HEARTBEAT_SECONDS, even during a long pass."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            status.beat()

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
