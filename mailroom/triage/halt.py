"""When a pass stops at once: a request that timed out, or a server that is unavailable.

Per-sender isolation redoes a failed step for each sender on its own. Against a
server that does not answer, that multiplies the wait: an Email/set that never
answers cost three 30 s timeouts for one sender, and the whole pass deadline for 50.
So a timeout (any ``TransportError``) or an answer saying the server is unavailable
(429, 502, 503, 504) ends the pass instead, at the first one: nothing more is sent,
every labelled sender not yet done keeps its label, no sender gets a strike, and the
worker counts a failed pass and honours ``Retry-After`` (docs/decisions.md). Other
failures (a 500 on one sender's write, a refused patch) stay the sender's own.
"""

from __future__ import annotations

import structlog

from mailroom.errors import PassStopped, ServerError, ServerNotAnswering, TransportError

log = structlog.get_logger("mailroom.triage")

UNAVAILABLE = frozenset({429, 502, 503, 504})


def stopping(exc: BaseException) -> PassStopped | None:
    """The error that ends the pass for ``exc``; None when ``exc`` is the sender's own."""
    if isinstance(exc, PassStopped):
        return exc
    if isinstance(exc, TransportError) or (
        isinstance(exc, ServerError) and exc.status in UNAVAILABLE
    ):
        return ServerNotAnswering(exc)
    return None


def stop_if_unanswered(exc: BaseException) -> None:
    """Raise the pass-ending error for ``exc``, if it is one; else return."""
    stop = stopping(exc)
    if stop is None:
        return
    if stop is exc:
        raise stop
    log.error(
        "pass_stopped",
        error=str(exc),
        error_type=type(exc).__name__,
        retry_after=stop.retry_after,
    )
    raise stop from exc
