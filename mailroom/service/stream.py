"""One JMAP EventSource connection: the GET, its status, its events, its errors.

``EventStream.read`` opens the stream (with ``Last-Event-ID`` when resuming), checks the
answer (faults through ``httpfaults``, as for every other request), feeds the bytes to
the bounded ``sse.EventDecoder``, hands every event to a ``StreamHandler`` and returns
how the connection ended as a ``StreamEnd``. Foreign errors (httpx) become mailroom's
here, once. Besides the per-read timeout (a silent stream), a stream that completes no
event (a ping counts) within the read timeout is ended: a server trickling a byte now
and then would otherwise keep push "connected" but deaf. ``abort`` lets another thread
cut a read blocked for up to the read timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog

from mailroom import httpfaults
from mailroom.errors import MailroomError, PushError, TransportError
from mailroom.httpbounds import shared_ssl_context
from mailroom.service.backoff import StreamEnd
from mailroom.service.sse import Event, EventDecoder, Malformed, StateChange, decode_event, hints

log = structlog.get_logger("mailroom.listener")

SERVICE = "JMAP EventSource"
AUTH_HINT = "check MAILROOM_JMAP_TOKEN and restart; until then the listener retries every minute"

__all__ = ["AUTH_HINT", "EventStream", "StreamEnd", "StreamHandler", "safe_url"]


class StreamHandler(Protocol):
    """What the listener does with a connection's news, in the order it comes."""

    def opened(self, url: str, resumed: bool) -> None: ...

    def server_retry(self, retry_ms: int) -> None: ...

    def state_changed(self, change: StateChange) -> None: ...

    def event_seen(self) -> None: ...


def safe_url(url: str) -> str:
    """``url`` without any user:password part, fit for logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


class _Stale(Exception):
    """No complete event within the read timeout, though bytes kept coming."""


class EventStream:
    """The EventSource connections, one at a time; remembers the last event id."""

    def __init__(
        self,
        token: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop = stop
        self.read_timeout = read_timeout
        self.clock = clock
        self.last_event_id: str | None = None
        self.response: httpx.Response | None = None
        self._connected = False
        self._pinged = False
        self.delivered = False  # this connection brought a state change or a ping
        self.client = httpx.Client(
            verify=shared_ssl_context(),
            timeout=httpx.Timeout(connect_timeout, read=read_timeout),
            headers={"Authorization": f"Bearer {token}", "Cache-Control": "no-cache"},
        )

    def read(self, url: str, account_id: str, handler: StreamHandler) -> StreamEnd:
        """One connection, to its end."""
        self._connected = self._pinged = self.delivered = False
        timed_out = False
        error: MailroomError | None = None
        try:
            if not self._stream(url, account_id, handler):
                return StreamEnd(available=False)
        except (httpx.HTTPError, MailroomError, _Stale) as exc:
            timed_out = isinstance(exc, httpx.ReadTimeout)
            error = _translate(exc, safe_url(url), self.read_timeout)
        finally:
            self.response = None
        return StreamEnd(True, self._connected, self._pinged, timed_out, error, self.delivered)

    def abort(self) -> None:
        """Cut the connection in progress, if any (from another thread)."""
        response = self.response
        if response is not None:
            _abort(response)

    def close(self) -> None:
        self.client.close()

    def _stream(self, url: str, account_id: str, handler: StreamHandler) -> bool:
        # identity: a compressed stream could inflate a small read into a huge one
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        resumed = self.last_event_id is not None
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
            handler.opened(url, resumed)
            self._consume(response, account_id, handler)
        return True

    def _consume(self, response: httpx.Response, account_id: str, handler: StreamHandler) -> None:
        decoder = EventDecoder()
        alive_at = self.clock()
        for chunk in response.iter_bytes():
            events = decoder.feed(chunk)
            for event in events:
                self._handle(event, account_id, handler)
            now = self.clock()
            if events:
                alive_at = now
            elif now - alive_at > self.read_timeout:
                raise _Stale

    def _handle(self, event: Event, account_id: str, handler: StreamHandler) -> None:
        found = hints(event)
        self.last_event_id = found.event_id or self.last_event_id
        self._pinged = self._pinged or found.is_ping
        if found.retry_ms is not None:
            handler.server_retry(found.retry_ms)
        decoded = decode_event(event, account_id)
        if isinstance(decoded, Malformed):
            log.warning("eventsource_bad_event", event_id=decoded.event_id, reason=decoded.reason)
        elif isinstance(decoded, StateChange):
            handler.state_changed(decoded)
        self.delivered = self.delivered or found.is_ping or isinstance(decoded, StateChange)
        handler.event_seen()


def _translate(exc: Exception, url: str, read_timeout: float) -> MailroomError:
    """The one place foreign stream errors become mailroom's."""
    if isinstance(exc, MailroomError):
        return exc
    if isinstance(exc, _Stale):
        return PushError(
            f"the EventSource at {url} completed no event within the read timeout "
            f"({read_timeout:g} s) though bytes kept coming; reconnecting"
        )
    if isinstance(exc, httpx.ReadTimeout):
        return TransportError(SERVICE, url, "no data within the read timeout")
    return TransportError(SERVICE, url, str(exc) or type(exc).__name__)


def _raise_for_status(response: httpx.Response, url: str) -> None:
    fault = httpfaults.common_fault(response, SERVICE, AUTH_HINT)
    if fault is not None:
        raise fault
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if status != 200 or "text/event-stream" not in content_type:
        raise PushError(
            f"the EventSource at {url} answered HTTP {status} ({content_type or 'no type'}), "
            "not an event stream; check MAILROOM_JMAP_SESSION_URL"
        )


def _abort(response: httpx.Response) -> None:
    """Shut the response's socket down (from another thread): a blocked read returns now."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
