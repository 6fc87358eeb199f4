"""`mailroom health`: GET /healthz and GET /metrics from the two status files.

Standard library only, and nothing heavy is imported (no pydantic, httpx, structlog,
mailroom.config): it starts in milliseconds and keeps answering whatever the other
processes do. It reads its address and the state dir through
``mailroom.procsettings`` (the same rules as every process) and the poll interval from
worker.json.

Built for probes in bulk: a listen backlog of ``BACKLOG`` connections (the standard
library's 5 turned away most of 1,000 concurrent probes), a thread per connection, and
a connection that sends nothing for ``IDLE_TIMEOUT`` seconds is closed, so idle
connections do not hold threads. HTTP is ``mailroom.service.tinyhttp``, not
``http.server`` (which imports ``ssl`` and ``email``: 8 MiB of resident memory).

HTTP 200 while the worker's last successful pass is younger than 2 x poll_interval;
503 ("failing", with a ``reason``) at once when the server refused the credentials,
when the worker has had no successful pass since it started and STARTUP_GRACE is
past, or when the last one is older than that. Push being down keeps 200 (the
fallback timer still triages) but shows in the body as "degraded", with its reason.
GET /metrics is the same documents in Prometheus's text format (``metrics``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from mailroom.errors import AuthError, ConfigError
from mailroom.paths import StrPath
from mailroom.procsettings import health_address, read_environment, state_dir
from mailroom.run.statefiles import STALE_AFTER_SECONDS, read_status, seconds, stamped, utc_stamp
from mailroom.run.stopping import stop_signals
from mailroom.service import metrics
from mailroom.service.metrics import Doc
from mailroom.service.tinyhttp import TinyHTTPServer
from mailroom.statenames import LISTENER_FILE, WORKER_FILE

Body = dict[str, object]  # a JSON answer, or a section of one
DEFAULT_POLL_INTERVAL = 60.0
EX_CONFIG = 78
BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
IDLE_TIMEOUT = 5.0  # seconds a connection may stay silent before it is closed
# A worker with no successful pass since it started is failing once this is past
# (docs/decisions.md: a start-up pass takes 0.15 s idle, a few seconds with a backlog).
STARTUP_GRACE = 30.0
_WORKER_FIELDS = ("pid", "started_at", "poll_interval", "consecutive_failures", "last_error")
_EVENTSOURCE_FIELDS = ("connected_since", "last_event_at", "reconnect_count", "last_error")


def evaluate(worker_doc: Doc, listener_doc: Doc, now: float) -> tuple[int, Body]:
    """The HTTP status and JSON body for GET /healthz, from the two documents (pure)."""
    worker = _worker(worker_doc, now)
    eventsource = _eventsource(listener_doc, now)
    last = stamped(worker_doc or {}, "last_successful_poll")
    failing = _failing(worker_doc, worker, eventsource, now)
    degraded = _degraded(worker, eventsource, _poll_interval(worker_doc))
    body = {
        "status": "failing" if failing else "degraded" if degraded else "ok",
        "reason": failing or degraded,
        "last_poll_age_seconds": None if last is None else round(now - last, 1),
        "last_poll_trigger": None if last is None else (worker_doc or {}).get("last_poll_trigger"),
        "worker": worker,
        "eventsource": eventsource,
        "parked": _parked(worker_doc),
        "routing": _routing(worker_doc),
    }
    return (503 if failing else 200), body


def _failing(worker_doc: Doc, worker: Body, eventsource: Body, now: float) -> str | None:
    """Why the service is failing (503), or None. In this order: the server refused the
    credentials (the worker's last pass, or the listener while not connected: at once);
    no worker status; no successful pass since the worker started, past STARTUP_GRACE;
    the last successful pass older than 2 x poll_interval."""
    doc = worker_doc or {}
    refused = _auth_error(worker["last_error"] if worker["consecutive_failures"] else None)
    if refused is None and eventsource["status"] not in ("connected", "down"):
        refused = _auth_error(eventsource["last_error"])
    if refused is not None:
        return f"authentication failed: {refused}"
    started = stamped(doc, "started_at")
    last = stamped(doc, "last_successful_poll")
    if started is None and last is None:
        return "no worker status: worker.json is missing or unreadable (is the worker running?)"
    if last is None or (started is not None and last < started):
        age = now - (started if started is not None else now)
        if age < STARTUP_GRACE:
            return None
        error = worker["last_error"]
        return f"no successful pass since the worker started {age:.0f} s ago" + (
            f"; last error: {error}" if error else ""
        )
    interval = _poll_interval(worker_doc)
    if now - last >= 2 * interval:
        return (
            f"the last successful pass was {now - last:.0f} s ago "
            f"(failing past twice the poll interval, {2 * interval:.0f} s)"
        )
    return None


def _auth_error(error: object) -> str | None:
    """The message of an ``AuthError: ...`` summary (status.error_summary), else None."""
    prefix = AuthError.__name__ + ": "
    if isinstance(error, str) and error.startswith(prefix):
        return error.removeprefix(prefix)
    return None


def _degraded(worker: Body, eventsource: Body, interval: float) -> str | None:
    """Why a passing service is degraded (the worker's process or push is down, its
    last pass failed), or None: all is well."""
    if worker["status"] != "up":
        return "the worker is down (its heartbeat is stale or it stopped)"
    failures = worker["consecutive_failures"]
    if isinstance(failures, int) and not isinstance(failures, bool) and failures > 0:
        return f"the last {failures} pass(es) failed (retried): {worker['last_error']}"
    if eventsource["status"] != "connected":
        return (
            f"push is {eventsource['status']}: mail is triaged on the fallback timer "
            f"(every {interval:.0f} s) until it reconnects"
        )
    return None


def _poll_interval(doc: Doc) -> float:
    value = (doc or {}).get("poll_interval")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_POLL_INTERVAL


def _heartbeat_age(doc: Doc, now: float) -> float | None:
    beat = seconds((doc or {}).get("heartbeat"))
    return None if beat is None else round(now - beat, 1)


def _alive(doc: Doc, now: float) -> bool:
    age = _heartbeat_age(doc, now)
    return age is not None and age <= STALE_AFTER_SECONDS


def _worker(doc: Doc, now: float) -> Body:
    up = _alive(doc, now) and (doc or {}).get("status") != "stopped"
    out: Body = {"status": "up" if up else "down"}
    out["heartbeat_age_seconds"] = _heartbeat_age(doc, now)
    out.update({k: (doc or {}).get(k) for k in _WORKER_FIELDS})
    counters = (doc or {}).get("counters")
    out["counters"] = counters if isinstance(counters, dict) else None
    return out


def _parked(doc: Doc) -> list[dict[str, str]]:
    """The senders the worker parked (newest last), as worker.json lists them."""
    entries = (doc or {}).get("parked")
    fields = ("sender", "reason", "parked_at")
    return [
        {k: e[k] for k in fields}
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and all(isinstance(e.get(k), str) for k in fields)
    ]


def _routing(doc: Doc) -> Body | None:
    """What the worker made of new mail since it started, as worker.json holds it."""
    section = (doc or {}).get("routing")
    return section if isinstance(section, dict) else None


def _eventsource(doc: Doc, now: float) -> Body:
    status = (doc or {}).get("status") if _alive(doc, now) else "down"
    out: Body = {"status": status if isinstance(status, str) else "down"}
    out.update({k: (doc or {}).get(k) for k in _EVENTSOURCE_FIELDS})
    out["heartbeat_age_seconds"] = _heartbeat_age(doc, now)
    return out


def answer(state_dir: StrPath, path: str, now: float) -> tuple[int, Body]:
    """Read the status files and answer GET /healthz (404 for any other path)."""
    if _path_of(path) != "/healthz":
        return 404, {"error": "not found; try GET /healthz or GET /metrics"}
    return evaluate(*_documents(state_dir), now)


def respond(state_dir: StrPath, target: str, now: float) -> tuple[int, str, bytes]:
    """(status, content type, body) for one request target: /healthz or /metrics."""
    if _path_of(target) == "/metrics":  # 200 whatever the verdict: a scrape reads it
        worker, listener = _documents(state_dir)
        text = metrics.render(worker, listener, evaluate(worker, listener, now))
        return 200, metrics.CONTENT_TYPE, text.encode()
    code, body = answer(state_dir, target, now)
    return code, "application/json", json.dumps(body, indent=2).encode() + b"\n"


def _documents(state_dir: StrPath) -> tuple[Doc, Doc]:
    worker = read_status(os.path.join(state_dir, WORKER_FILE))
    return worker, read_status(os.path.join(state_dir, LISTENER_FILE))


def _path_of(target: str) -> str:
    """The path of a request target, as ``urlsplit`` reads it (imported only for an
    absolute-form or otherwise unusual target: it costs health 0.9 MiB)."""
    if target.startswith("/") and not target.startswith("//") and target.isprintable():
        return target.split("#", 1)[0].split("?", 1)[0]
    from urllib.parse import urlsplit

    return urlsplit(target).path


def make_server(
    state_dir: StrPath, host: str, port: int, *, idle_timeout: float = IDLE_TIMEOUT
) -> TinyHTTPServer:
    """The /healthz server, bound and listening (OSError when the address is taken)."""

    def reply(method: str, target: str) -> tuple[int, str, bytes]:
        return respond(state_dir, target, time.time())

    return TinyHTTPServer((host, port), reply, backlog=BACKLOG, idle_timeout=idle_timeout)


def _say(event: str, level: str = "info", **fields: object) -> None:
    """One JSON log line on stdout, shaped like the other processes' lines."""
    line = {"timestamp": utc_stamp(time.time()), "level": level, "event": event, **fields}
    sys.stdout.write(json.dumps(line) + "\n")  # one write: supervisord interleaves output
    sys.stdout.flush()


def main() -> int:
    """`mailroom health`: serve GET /healthz until SIGTERM or SIGINT."""
    env = read_environment(cwd=os.getcwd())  # as the other programs read it, .env too
    try:
        if env.problems:
            raise ConfigError(list(env.problems))
        host, port = health_address(env)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    folder = state_dir(env)
    try:
        server = make_server(folder, host, port)
    except OSError as exc:
        print(f"mailroom health: cannot listen on {host}:{port} ({exc})", file=sys.stderr)
        return 1

    def stop(signal_name: str) -> None:  # shutdown() waits for serve_forever: not here
        threading.Thread(target=server.shutdown, daemon=True).start()

    with server, stop_signals(stop):
        bound_port = server.server_address[1]
        _say("health_listening", host=host, port=bound_port, state_dir=folder)
        server.serve_forever(poll_interval=0.5)
    _say("health_stopped")
    return 0
