"""GET /metrics: the status files in the Prometheus text exposition format (0.0.4).

Pure and standard library only: health serves it. ``prometheus-client`` would do the
formatting, but importing it takes health from 12 to 24 MiB resident (it imports
``http.server``, ``wsgiref``, ``urllib.request`` and with them ``ssl`` and ``email``:
docs/decisions.md), so the few lines of the format are written here, and the tests
read the output back with ``prometheus_client``'s own parser.

Everything comes from worker.json and listener.json as health reads them, plus
health's verdict: counters are the worker's since it started (a restart starts them
from zero, which Prometheus's ``rate`` and ``increase`` take as a reset), except the
EventSource's reconnects, which carry over a listener's restart. A field missing from
a status file (an older worker, a torn file) leaves its metric out; routing verdicts
appear once worker.json has a ``routing`` object.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

Fields = Mapping[str, object]  # JSON: a status file as read_status reads it, or a body
Doc = Fields | None
Sample = tuple[dict[str, str], float]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "mailroom_"
HEALTH_STATES = ("ok", "degraded", "failing")
EVENTSOURCE_STATES = (
    "connected",
    "connecting",
    "disconnected",
    "not_available",
    "not_started",
    "down",
)
ROUTING_VERDICTS = ("routed", "misrouted", "not_screened")
# worker.json's "counters" -> (metric, help)
WORKER_COUNTERS = (
    ("failures", "pass_failures_total", "Triage passes that failed (retried later)."),
    ("emails_moved", "emails_moved_total", "Emails triage moved to their category's mailbox."),
    ("senders_failed", "sender_failures_total", "Senders that failed in a pass (kept labelled)."),
    ("senders_parked", "senders_parked_total", "Senders parked with the error label."),
    ("wakes", "wakes_total", "Wakes the worker received from the listener."),
    ("passes_held", "passes_held_total", "Push passes held for the spacing between passes."),
)


def render(worker_doc: Doc, listener_doc: Doc, verdict: tuple[int, Fields]) -> str:
    """The exposition for one scrape. ``verdict`` is health's (status, body) for the
    same documents at the same instant, so /metrics and /healthz always agree."""
    worker = worker_doc or {}
    listener = listener_doc or {}
    code, body = verdict
    out: list[str] = []
    _family(
        out,
        "build_info",
        "gauge",
        "The mailroom version the worker runs.",
        [({"version": _text(worker.get("version")) or "unknown"}, 1)],
    )
    _family(
        out,
        "ready",
        "gauge",
        "1 while GET /healthz answers 200 (ready), else 0.",
        [({}, 1 if code == 200 else 0)],
    )
    status = body.get("status")
    _family(
        out,
        "health_status",
        "gauge",
        "GET /healthz's status: 1 for the current one.",
        [({"status": s}, 1 if s == status else 0) for s in HEALTH_STATES],
    )
    _worker(out, worker, body)
    _eventsource(out, listener, body)
    routing = worker.get("routing")
    if isinstance(routing, dict):
        _routing(out, routing)
    return "".join(out)


def _worker(out: list[str], worker: Fields, body: Fields) -> None:
    by_trigger = _counts(worker.get("passes_by_trigger"))
    if by_trigger is not None:
        _family(
            out,
            "passes_total",
            "counter",
            "Triage passes completed, by what started them.",
            [({"trigger": t}, n) for t, n in by_trigger],
        )
    triaged = _counts(worker.get("triaged"))
    if triaged is not None:
        _family(
            out,
            "senders_triaged_total",
            "counter",
            "Senders triaged, by category.",
            [({"category": c}, n) for c, n in triaged],
        )
    counters = worker.get("counters")
    counters = counters if isinstance(counters, dict) else {}
    for key, name, text in WORKER_COUNTERS:
        _one(out, name, "counter", text, _number(counters.get(key)))
    skipped = [
        ({"reason": reason}, value)
        for reason, key in (("echo", "echoes_skipped"), ("seen", "seen_skipped"))
        if (value := _number(counters.get(key))) is not None
    ]
    if skipped:
        _family(
            out,
            "wakes_skipped_total",
            "counter",
            "Wakes that started no pass: the pass's own writes (echo) or already seen.",
            skipped,
        )
    _worker_gauges(out, worker, body)


def _worker_gauges(out: list[str], worker: Fields, body: Fields) -> None:
    parked = body.get("parked")
    _one(
        out,
        "parked_senders",
        "gauge",
        "Senders parked now (worker.json keeps the newest).",
        len(parked) if isinstance(parked, list) else None,
    )
    _one(
        out,
        "consecutive_pass_failures",
        "gauge",
        "Failed passes since the last good one.",
        _number(worker.get("consecutive_failures")),
    )
    _one(
        out,
        "last_pass_age_seconds",
        "gauge",
        "Seconds since the last successful pass.",
        _number(body.get("last_poll_age_seconds")),
    )
    _one(
        out,
        "poll_interval_seconds",
        "gauge",
        "The worker's fallback poll interval.",
        _number(worker.get("poll_interval")),
    )
    up = _inner(body, "worker", "status")
    _one(out, "worker_up", "gauge", "1 while the worker's heartbeat is fresh.", int(up == "up"))


def _eventsource(out: list[str], listener: Fields, body: Fields) -> None:
    state = _inner(body, "eventsource", "status")
    _family(
        out,
        "eventsource_state",
        "gauge",
        "The push listener's state: 1 for the current one.",
        [({"state": s}, 1 if s == state else 0) for s in EVENTSOURCE_STATES],
    )
    _one(
        out,
        "eventsource_reconnects_total",
        "counter",
        "EventSource reconnects after the first.",
        _number(listener.get("reconnect_count")),
    )
    _one(
        out,
        "eventsource_wakes_dropped_total",
        "counter",
        "Wakes the listener could not hand to the worker.",
        _number(listener.get("wakes_dropped")),
    )


def _routing(out: list[str], routing: Fields) -> None:
    mode = _text(routing.get("mode"))
    if mode:
        _family(
            out,
            "routing_mode_info",
            "gauge",
            "How the server routes a triaged sender's mail.",
            [({"mode": mode}, 1)],
        )
    verdicts = [
        ({"verdict": v}, n) for v in ROUTING_VERDICTS if (n := _number(routing.get(v))) is not None
    ]
    if verdicts:
        _family(
            out,
            "routing_verdicts_total",
            "counter",
            "New mail checked against the routing rules, by verdict.",
            verdicts,
        )
    _one(
        out,
        "routing_moved_total",
        "counter",
        "Misrouted emails moved where they belong.",
        _number(routing.get("moved")),
    )


def _one(out: list[str], name: str, kind: str, text: str, value: float | None) -> None:
    if value is not None:
        _family(out, name, kind, text, [({}, value)])


def _family(out: list[str], name: str, kind: str, text: str, samples: Iterable[Sample]) -> None:
    """One metric family: its HELP and TYPE lines, then one line per sample."""
    full = PREFIX + name
    out.append(f"# HELP {full} {_escape(text)}\n# TYPE {full} {kind}\n")
    for labels, value in samples:
        pairs = ",".join(f'{k}="{_escape(v, quote=True)}"' for k, v in labels.items())
        out.append(f"{full}{{{pairs}}} {_value(value)}\n" if pairs else f"{full} {_value(value)}\n")


def _escape(text: str, *, quote: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _inner(doc: Fields, section: str, key: str) -> object:
    """``doc[section][key]``, or None where either is missing."""
    inner = doc.get(section)
    return inner.get(key) if isinstance(inner, Mapping) else None


def _number(value: object) -> float | None:
    """A finite, non-negative number from a status file, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.isprintable() else None


def _counts(value: object) -> list[tuple[str, float]] | None:
    """A ``{name: count}`` object as sorted pairs (bad entries dropped), else None."""
    if not isinstance(value, dict):
        return None
    pairs = [(k, n) for k, v in value.items() if _text(k) and (n := _number(v)) is not None]
    return sorted(pairs)
