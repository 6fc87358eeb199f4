"""JMAP requests per idle hour besides the EventSource stream, counted by the server.

The whole service (`mailroom run`) serves a fresh account on the test Cyrus and nothing
happens for --window seconds. The requests are counted by Cyrus itself: its telemetry
(a raw log of every HTTP request of one user, switched on by creating
``<configdirectory>/log/<user>/``) is read at the start and at the end of the window,
so every request of the listener and the worker is seen, with nothing in between that
could miss one or add its own. This script makes no request of that user in the window.

The count is extrapolated to an hour (x 3600 / window). A pass with nothing labelled is
one JMAP request (bench/idle_pass.py); the worker's passes in the window (its log lines,
by trigger) are printed next to the server's count as a cross-check. Cyrus ends an
EventSource stream after about 300 s; the listener then connects again, resending
`Last-Event-ID`, and (since the server replays what it missed) wakes the worker for no
catch-up pass: the default window (330 s) holds one such recycle. One email is delivered
before the window opens, so that the listener holds an event id (Cyrus sends ids on
state events only; a service that has seen no change at all since it started has none
to resume from, and takes a catch-up pass per recycle).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import CyrusServer
from mailroom_dev.servicebox import ServiceBox
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

REQUEST_LINE = re.compile(
    rb"^<\d+<(GET|POST|PUT|DELETE|REPORT|PROPFIND|OPTIONS|HEAD) (\S+) HTTP/", re.MULTILINE
)
KINDS = {
    "stream": "GET /jmap/eventsource (the stream: connects)",
    "session": "GET /jmap/ (the session document)",
    "api": "POST /jmap/ (JMAP API requests)",
    "carddav": "CardDAV (/dav/...)",
    "other": "anything else",
}


def kind(method: bytes, path: bytes) -> str:
    if path.startswith(b"/jmap/eventsource"):
        return "stream"
    if path.startswith(b"/dav/"):
        return "carddav"
    if method == b"POST" and path.rstrip(b"/") == b"/jmap":
        return "api"
    if method == b"GET" and path.rstrip(b"/") in (b"/jmap", b"/.well-known/jmap"):
        return "session"
    return "other"


def count_requests(log_dir: Path) -> collections.Counter[str]:
    """Requests of the user so far, by kind, from every telemetry file of the user."""
    found: collections.Counter[str] = collections.Counter()
    for path in log_dir.iterdir():
        for match in REQUEST_LINE.finditer(path.read_bytes()):
            found[kind(match.group(1), match.group(2))] += 1
    return found


@contextmanager
def telemetry(server: CyrusServer, user: str) -> Iterator[Path]:
    """Cyrus logs every request of ``user`` while this directory exists (removed after)."""
    conf = server.dir / "conf"
    log_dir = conf / "log" / user
    log_dir.mkdir(parents=True)
    owner = conf.stat()
    for d in (log_dir.parent, log_dir):  # the server runs as the owner of its conf dir
        os.chown(d, owner.st_uid, owner.st_gid)
    try:
        yield log_dir
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def measure(server: CyrusServer, window: float, poll_interval: float) -> None:
    box = prepared_box(server)
    with (
        redirect_stdout(sys.stderr),  # ServiceBox prints the service's log tail at the end
        telemetry(server, box.account.username) as log_dir,
        ServiceBox.running(box, poll_interval=poll_interval, debounce_seconds=3) as svc,
    ):
        first_event(box, svc)
        mark, before = svc.mark(), count_requests(log_dir)
        started = time.monotonic()
        time.sleep(window)  # the idle window itself
        seconds = time.monotonic() - started
        after = count_requests(log_dir)
        triggers = collections.Counter(str(p.get("trigger")) for p in svc.passes(since=mark))
        reconnected = svc.log_events("eventsource_reconnected", mark)
        reconnects = len(reconnected)
        catch_ups = sum(1 for e in reconnected if e.get("catch_up"))
    report(after - before, triggers, reconnects, seconds, poll_interval)
    print(f"reconnects that woke the worker for a catch-up pass: {catch_ups} of {reconnects}")


def first_event(box: Box, svc: ServiceBox) -> None:
    """One email arrives before the window: the listener then holds an event id to resume
    from (Cyrus sends ids on state events only), as it does once any mail has come."""
    mark = svc.mark()
    box.deliver(from_addr="hello@idle.example", subject="before the idle window")
    wait_until(lambda: svc.listener_status().get("last_event_at"), "the delivery's state event")
    wait_until(lambda: svc.passes("push", mark), "the delivery's pass")
    time.sleep(5)  # past the debounce window: nothing pending when the window opens


def report(
    got: collections.Counter[str],
    triggers: collections.Counter[str],
    reconnects: int,
    seconds: float,
    poll_interval: float,
) -> None:
    per_hour = 3600 / seconds
    rows = [[text, str(got[k]), f"{got[k] * per_hour:.1f}"] for k, text in KINDS.items()]
    table(
        f"Idle service: requests counted by Cyrus over {seconds:.0f} s "
        f"(poll_interval {poll_interval:g} s, debounce 3 s, nothing labelled)",
        ["requests", "in the window", "per hour (x 3600 / window)"],
        rows,
    )
    besides = sum(got[k] for k in ("session", "api", "other"))
    print(
        f"\nJMAP requests besides the stream: {besides} in {seconds:.0f} s -> "
        f"{besides} x 3600 / {seconds:.0f} = {besides * per_hour:.1f} per idle hour"
    )
    passes = ", ".join(f"{n} {t}" for t, n in sorted(triggers.items())) or "none"
    print(
        f"cross-check: worker passes in the window: {passes} (x 1 JMAP request each when "
        f"idle = {sum(triggers.values())}); stream reconnects: {reconnects}"
    )
    fallback = 3600 / poll_interval
    print(
        f"model: one pass = 1 request; 3600 / poll_interval = {fallback:.0f} fallback passes "
        "an hour; Cyrus's ~12 stream recycles an hour are resumed with Last-Event-ID and "
        "bring no catch-up pass (a window holds a whole number of timer passes, so a short "
        "one rounds up or down)"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=330.0, help="idle seconds (330)")
    parser.add_argument(
        "--poll-interval", type=float, default=60.0, help="the worker's fallback timer (60)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with cyrus() as server:
        measure(server, args.window, args.poll_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
