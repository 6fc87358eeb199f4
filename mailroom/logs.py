"""Logging, configured once in ``main``: JSON lines off a terminal, pretty on one.

Modules log with ``structlog.get_logger()`` and short snake_case event names, data in
keyword arguments (``log.info("poll_completed", trigger="push", emails_moved=3)``).
Timestamps are ISO 8601 UTC. Libraries that use the standard ``logging`` module are
rendered the same way, from WARNING up. Secrets are kept out two ways before a line is
written: any key that names a secret (token, password, authorization, ...) and any
``Bearer``/``Basic`` value is replaced by ``[redacted]``, and the rendered line (its
exception text included) goes through ``mailroom.redaction.scrub``, which blanks every
credential value ``load_settings`` read, whatever carried it. A string value longer
than ``VALUE_LIMIT`` characters is cut (a server's error text may be megabytes).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from mailroom.errors import ConfigError
from mailroom.logthrottle import Throttle
from mailroom.procsettings import LOG_FORMATS, LOG_LEVELS
from mailroom.redaction import REDACTED, scrub

VALUE_LIMIT = 2000
_SENSITIVE_KEY = re.compile(r"token|passw|authoriz|secret|api_?key|cookie|credential", re.I)
_SENSITIVE_VALUE = re.compile(r"^\s*(bearer|basic)\s+\S", re.I)
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_LEVELS = {name: getattr(logging, name.upper()) for name in LOG_LEVELS}


def redact(value: Any) -> Any:
    """``value`` with every secret-named key and every credential-looking string masked."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if type(value) is tuple:  # exc_info among them: keep the type
        return tuple(redact(v) for v in value)
    if isinstance(value, str) and _SENSITIVE_VALUE.match(value):
        return REDACTED
    if isinstance(value, str) and len(value) > VALUE_LIMIT:
        return value[:VALUE_LIMIT] + f"… ({len(value) - VALUE_LIMIT} more characters)"
    return value


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask secrets; put timestamp, level and event first for the reader."""
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    return {**head, **redact(event_dict)}


def _snake_case_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Event names are snake_case; any other text is kept in ``message``."""
    event = event_dict.get("event")
    if isinstance(event, str) and not _SNAKE_CASE.fullmatch(event):
        event_dict["message"] = event
        event_dict["event"] = re.sub(r"[^a-z0-9]+", "_", event.lower()).strip("_")[:48] or "log"
    return event_dict


def _renderer(fmt: str, stream: TextIO) -> Processor:
    on_tty = bool(getattr(stream, "isatty", None) and stream.isatty())
    if fmt == "console" or (fmt == "auto" and on_tty):
        # plain tracebacks: a rich one would print local variables, secrets among them
        return structlog.dev.ConsoleRenderer(
            colors=on_tty, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer(sort_keys=False)


def _scrubbed(renderer: Processor) -> Processor:
    """``renderer``, with every remembered secret blanked out of the finished line."""

    def render(logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        return scrub(str(renderer(logger, name, event_dict)))

    return render


def _shared(fmt: str) -> list[Processor]:
    renderer_prep: list[Processor] = [structlog.processors.format_exc_info] if fmt == "json" else []
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _snake_case_event,
        *renderer_prep,
        _redact,
    ]


def _route_stdlib(level: int, shared: list[Processor], renderer: Processor, stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING))


def configure_logging(level: str, fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog (and stdlib logging) to write ``level`` and above to ``stream``
    (default stderr): JSON lines when ``fmt`` is json, or auto and not on a terminal."""
    if level.lower() not in _LEVELS or fmt not in LOG_FORMATS:
        raise ConfigError(
            [
                f"log_level {level!r} / log_format {fmt!r}: use "
                "debug|info|warning|error and auto|json|console"
            ]
        )
    stream = sys.stderr if stream is None else stream
    plain = _renderer(fmt, stream)
    shared = _shared("json" if isinstance(plain, structlog.processors.JSONRenderer) else "console")
    renderer = _scrubbed(plain)
    number = _LEVELS[level.lower()]
    structlog.configure(
        processors=[*shared, Throttle(), renderer],  # Throttle: floods of one warning
        wrapper_class=structlog.make_filtering_bound_logger(number),
        # one write per line (message and newline together): supervisord interleaves the
        # programs' output, and print() under PYTHONUNBUFFERED writes the newline apart
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(number, shared, renderer, stream)
