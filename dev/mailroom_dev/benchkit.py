"""What the bench scripts share: a Cyrus for the run, a prepared account, request
counting, forced session limits, medians and tables.

The server is the test Cyrus (``mailroom_dev.realserver``): reused when it runs,
started (and stopped again at the end) when it does not. Each scenario gets a
brand-new account prepared by `mailroom setup --apply`, so runs never see each other's
mail. Filling and waiting for the search index are ``realserver.messages``,
``realserver.imap_append``, ``triagebox.fill_screener`` and
``realserver.wait_searchable_counts``, shared with the tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import httpx

from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Session
from mailroom.jmap.session import CORE
from mailroom.logs import configure_logging
from mailroom.triage.engine import Triager
from mailroom.triage.report import PassReport
from mailroom_dev.realserver import (
    Account,
    CyrusServer,
    cyrus_settings,
    new_account,
    start_cyrus,
    stop_cyrus,
)
from mailroom_dev.triagebox import Box


@contextlib.contextmanager
def cyrus() -> Iterator[CyrusServer]:
    """The test Cyrus; stopped at the end only if this process started it."""
    configure_logging("warning", "console", sys.stderr)  # the tables own stdout
    server = start_cyrus(cyrus_settings(os.environ))
    try:
        yield server
    finally:
        if server.started_here:
            stop_cyrus(server)


def prepared_box(server: CyrusServer) -> Box:
    """A brand-new account after `mailroom setup --apply` (its output swallowed)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return Box.create(new_account(server))


# ---------------------------------------------------------------- acting as the user


def label(account: Account, labels: Mapping[str, str]) -> None:
    """Add each email (id -> label mailbox name) to its label, in one Email/set."""
    ids = account.mailbox_ids()
    update = {eid: {f"mailboxIds/{ids[name]}": True} for eid, name in labels.items()}
    result = account.call("Email/set", {"update": update})
    if len(result.get("updated") or {}) != len(update):
        raise RuntimeError(f"labelling failed: {result.get('notUpdated')}")


# ---------------------------------------------------------------- measuring


class SessionLimits(httpx.BaseTransport):
    """Rewrites the core limits of the JMAP session document the client reads, so the
    whole client (engine chunking included) sees e.g. maxObjectsInGet/Set = 500."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "GET" or "json" not in response.headers.get("content-type", ""):
            return response
        data = json.loads(response.read())
        response.close()
        core = (data.get("capabilities") or {}).get(CORE)
        if isinstance(core, dict):
            core.update(maxObjectsInGet=self.limit, maxObjectsInSet=self.limit)
        drop = {"content-length", "content-encoding", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
        return httpx.Response(
            response.status_code, headers=headers, content=json.dumps(data).encode()
        )

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True, slots=True)
class Measured:
    jmap: int  # JMAP HTTP requests of the pass
    carddav: int  # CardDAV HTTP requests of the pass
    seconds: float
    report: PassReport


class Bench:
    """A Triager on its own clients, counting each pass's requests."""

    def __init__(self, box: Box, transport: httpx.BaseTransport | None = None) -> None:
        self.jmap, self.carddav = box.clients(transport)
        self.triager = Triager(box.settings, self.jmap, self.carddav)

    def run(self) -> Measured:
        jmap, carddav = self.jmap.requests_made, self.carddav.requests_made
        started = time.perf_counter()
        report = self.triager.run_pass("bench")
        seconds = time.perf_counter() - started
        if not report.ok:
            raise RuntimeError(f"the pass failed for {report.failures} senders")
        return Measured(
            self.jmap.requests_made - jmap, self.carddav.requests_made - carddav, seconds, report
        )

    @property
    def session(self) -> Session:
        return self.jmap.session

    def close(self) -> None:
        self.jmap.close()
        self.carddav.close()


def limits(session: Session) -> str:
    return (
        f"maxObjectsInGet={session.max_objects_in_get} "
        f"maxObjectsInSet={session.max_objects_in_set} "
        f"maxCallsInRequest={session.max_calls_in_request}"
    )


def server_limits(server: CyrusServer) -> str:
    """The limits the server advertises (read as a throwaway account)."""
    account = new_account(server)
    try:
        with JmapClient(account.session_url, account.token) as client:
            return limits(client.session)
    finally:
        account.close()


def chunks(n: int, size: int) -> int:
    return math.ceil(n / size)


# ---------------------------------------------------------------- printing


def spread(values: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    """``median [min-max]`` of the runs (just the value for one run)."""
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{med:.{digits}f} {unit}".strip()
    return f"{med:.{digits}f} {unit} [{min(values):.{digits}f}-{max(values):.{digits}f}]".strip()


def count(values: Sequence[int]) -> str:
    """Request counts are deterministic; show a range only if they varied."""
    if min(values) == max(values):
        return str(values[0])
    return f"{statistics.median(values):g} [{min(values)}-{max(values)}]"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]
