"""One JMAP EventSource connection: the GET, its status, its events, its errors.

``EventStream.read`` opens the stream (with ``Last-Event-ID`` when resuming), checks the
answer, hands every event to a ``StreamHandler`` and returns how the connection ended
as a ``StreamEnd``. Foreign errors (httpx, httpx-sse) become mailroom's here, once.
``abort`` lets another thread cut a read blocked for up to the read timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from httpx_sse import EventSource, SSEError

from mailroom.errors import AuthError, MailroomError, PushError, ServerError, TransportError
from mailroom.service.sse import Malformed, StateChange, decode_event, hints

log = structlog.get_logger("mailroom.listener")

AUTH_HINT = "check MAILROOM_JMAP_TOKEN and restart; until then the listener retries every minute"


class StreamHandler(Protocol):
    """What the listener does with a connection's news, in the order it comes."""

    def opened(self, url: str) -> None: ...

    def server_retry(self, retry_ms: int) -> None: ...

    def state_changed(self, change: StateChange) -> None: ...

    def event_seen(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How one connection ended."""

    available: bool = True  # False: the server has no EventSource (HTTP 204)
    connected: bool = False  # the stream opened (200, text/event-stream)
    pinged: bool = False  # a ping arrived: the server keeps quiet streams alive
    timed_out: bool = False  # no data within the read timeout
    error: MailroomError | None = None


def safe_url(url: str) -> str:
    """``url`` without any user:password part, fit for logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


class EventStream:
    """The EventSource connections, one at a time; remembers the last event id."""

    def __init__(
        self, token: str, *, connect_timeout: float, read_timeout: float, stop: threading.Event
    ) -> None:
        self.stop = stop
        self.last_event_id: str | None = None
        self.response: httpx.Response | None = None
        self._connected = False
        self._pinged = False
        self.client = httpx.Client(
            timeout=httpx.Timeout(connect_timeout, read=read_timeout),
            headers={"Authorization": f"Bearer {token}", "Cache-Control": "no-cache"},
        )

    def read(self, url: str, account_id: str, handler: StreamHandler) -> StreamEnd:
        """One connection, to its end."""
        self._connected = self._pinged = False
        timed_out = False
        error: MailroomError | None = None
        try:
            if not self._stream(url, account_id, handler):
                return StreamEnd(available=False)
        except (httpx.HTTPError, SSEError, MailroomError) as exc:
            timed_out = isinstance(exc, httpx.ReadTimeout)
            error = _translate(exc, safe_url(url))
        finally:
            self.response = None
        return StreamEnd(True, self._connected, self._pinged, timed_out, error)

    def abort(self) -> None:
        """Cut the connection in progress, if any (from another thread)."""
        response = self.response
        if response is not None:
            _abort(response)

    def close(self) -> None:
        self.client.close()

    def _stream(self, url: str, account_id: str, handler: StreamHandler) -> bool:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        with self.client.stream("GET", url, headers=headers) as response:
            self.response = response
            if self.stop.is_set():
                return True
            if response.status_code == 204:
                return False
            _raise_for_status(response, safe_url(url))
            self._connected = True
            handler.opened(url)
            self._consume(EventSource(response), account_id, handler)
        return True

    def _consume(self, source: EventSource, account_id: str, handler: StreamHandler) -> None:
        for event in source.iter_sse():
            found = hints(event)
            self.last_event_id = found.event_id or self.last_event_id
            self._pinged = self._pinged or found.is_ping
            if found.retry_ms is not None:
                handler.server_retry(found.retry_ms)
            decoded = decode_event(event, account_id)
            if isinstance(decoded, Malformed):
                log.warning(
                    "eventsource_bad_event", event_id=decoded.event_id, reason=decoded.reason
                )
            elif isinstance(decoded, StateChange):
                handler.state_changed(decoded)
            handler.event_seen()


def _translate(exc: Exception, url: str) -> MailroomError:
    """The one place foreign stream errors become mailroom's."""
    if isinstance(exc, MailroomError):
        return exc
    if isinstance(exc, SSEError):
        return PushError(f"the EventSource stream at {url} is not SSE: {exc}")
    if isinstance(exc, httpx.ReadTimeout):
        return TransportError("JMAP EventSource", url, "no data within the read timeout")
    return TransportError("JMAP EventSource", url, str(exc) or type(exc).__name__)


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status in (401, 403):
        raise AuthError("JMAP EventSource", status, AUTH_HINT)
    if status == 429 or status >= 500:
        raise ServerError("JMAP EventSource", status, url, _retry_after(response))
    content_type = response.headers.get("content-type", "")
    if status != 200 or "text/event-stream" not in content_type:
        raise PushError(
            f"the EventSource at {url} answered HTTP {status} ({content_type or 'no type'}), "
            "not an event stream; check MAILROOM_JMAP_SESSION_URL"
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _abort(response: httpx.Response) -> None:
    """Shut the response's socket down (from another thread): a blocked read returns now."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
