"""HTTP faults shared by the JMAP and CardDAV clients, translated once into errors.py.

A connection problem or timeout is a ``TransportError``; a request past its deadline a
``ServerTooSlow``, an answer over the size cap a ``ResponseTooLarge`` (both bounds come
from httpbounds.py); 401/403 an ``AuthError`` with the service's hint; 429 and 5xx a
``ServerError`` carrying ``Retry-After``. What a status means beyond that is the
protocol's business, so each client finishes the job.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from mailroom.errors import (
    AuthError,
    MailroomError,
    ResponseTooLarge,
    ServerError,
    ServerTooSlow,
    TransportError,
)
from mailroom.httpbounds import (
    BodyTooLarge,
    Clock,
    DeadlineExceeded,
    HttpLimits,
    budget,
    read_body,
    settled,
)

DEFAULT_LIMITS = HttpLimits()


def send(
    http: httpx.Client,
    service: str,
    method: str,
    url: str,
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    clock: Clock = time.monotonic,
    **kwargs: Any,
) -> httpx.Response:
    """One request, read whole within ``limits``; transport failures become errors.py's."""
    with budget(limits, clock) as spent:
        try:
            with http.stream(method, url, **kwargs) as response:
                return settled(response, read_body(response, spent))
        except BodyTooLarge as exc:
            raise ResponseTooLarge(service, url, exc.limit) from exc
        except DeadlineExceeded as exc:
            raise ServerTooSlow(service, url, limits.deadline) from exc
        except httpx.TimeoutException as exc:
            if spent.expired():
                raise ServerTooSlow(service, url, limits.deadline) from exc
            raise TransportError(service, url, f"timed out: {type(exc).__name__}") from exc
        except httpx.RequestError as exc:
            raise TransportError(service, url, f"{type(exc).__name__}: {exc}") from exc


def common_fault(
    response: httpx.Response, service: str, auth_hint: str, *, now: datetime | None = None
) -> MailroomError | None:
    """The error for a status every HTTP service means the same by, else None."""
    status = response.status_code
    if status in (401, 403):
        return AuthError(service, status, auth_hint)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), now or datetime.now(UTC)
        )
        return ServerError(service, status, str(response.request.url), retry_after)
    return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
