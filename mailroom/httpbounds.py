"""The bounds on every request of the JMAP and CardDAV clients: a total deadline, a size cap.

httpx bounds each connect, write and read, never a whole request: a server that sends one
byte every 20 s keeps a request going for ever, and one that sends a 10 GB body fills
memory. This module adds the two missing bounds, shared by both clients:

- a **deadline**: a request (redirects and body included) ends ``HttpLimits.deadline``
  seconds after it began. ``BoundedTransport`` runs httpx over ``DeadlineBackend``, an
  httpcore network backend that shortens every socket timeout to the time left, so even
  a read that would block ends at the deadline;
- a **size cap**: at most ``HttpLimits.max_body`` bytes are received on the socket per
  request, and at most that many bytes of decoded body are kept (a compressed bomb too).

``httpfaults.send`` opens a ``Budget`` around each request and translates the two
failures (``DeadlineExceeded``, ``BodyTooLarge``) into errors.py. Time is an input:
``Budget`` takes its clock, so tests step a fake one.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

MIB = 1 << 20
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long and how large one request may be (defaults: docs/decisions.md)."""

    connect: float = 10.0  # each connection attempt
    read: float = 30.0  # each socket read or write: a silent server
    deadline: float = 60.0  # the whole request: a trickling server
    max_body: int = 32 * MIB  # bytes received per request, and bytes of decoded body

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read, connect=self.connect)


class DeadlineExceeded(Exception):
    """The request's deadline passed (translated by httpfaults)."""


class BodyTooLarge(Exception):
    """The answer is larger than ``limit`` bytes (translated by httpfaults)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} bytes")


class Budget:
    """One request's deadline and byte allowance."""

    def __init__(self, limits: HttpLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.received = 0
        self._clock = clock
        self._ends = clock() + limits.deadline

    def remaining(self) -> float:
        return self._ends - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, timeout: float | None) -> float:
        """``timeout`` shortened to the time left; DeadlineExceeded when none is left."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded
        return left if timeout is None else min(timeout, left)

    def count(self, size: int) -> None:
        """Add ``size`` received bytes; BodyTooLarge once over the cap."""
        self.received += size
        if self.received > self.limits.max_body:
            raise BodyTooLarge(self.limits.max_body)


_CURRENT: ContextVar[Budget | None] = ContextVar("mailroom_http_budget", default=None)


@contextmanager
def budget(limits: HttpLimits, clock: Clock = time.monotonic) -> Iterator[Budget]:
    """The budget the socket reads and writes of this thread are held to, until exit."""
    spent = Budget(limits, clock)
    token = _CURRENT.set(spent)
    try:
        yield spent
    finally:
        _CURRENT.reset(token)


def _bound(timeout: float | None) -> float | None:
    spent = _CURRENT.get()
    return timeout if spent is None else spent.bound(timeout)


def read_body(response: httpx.Response, spent: Budget) -> bytes:
    """The decoded body of a streamed ``response``, held to ``spent``'s cap and deadline."""
    cap = spent.limits.max_body
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge(cap)  # refused before a byte of it is read
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(cap)
        if spent.expired():  # also where the socket is not ours (a proxy, a mock)
            raise DeadlineExceeded
        chunks.append(chunk)
    return b"".join(chunks)


_FRAMING = {"content-encoding", "content-length", "transfer-encoding"}


def settled(response: httpx.Response, body: bytes) -> httpx.Response:
    """A read response like ``response``, holding ``body`` (already decoded)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        history=response.history,
        extensions=response.extensions,
    )


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose timeouts end at the current budget's deadline, bytes counted."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, _bound(timeout))
        spent = _CURRENT.get()
        if spent is not None:
            spent.count(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bound(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, _bound(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


Options = Iterable[Any] | None


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own backend, its connections held to the current budget."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Options = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_tcp(host, port, _bound(timeout), local_address, socket_options)
        return _BoundedStream(inner)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Options = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_unix_socket(path, _bound(timeout), socket_options)
        return _BoundedStream(inner)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified), made once per process.

    Each context loads the CA bundle again (about 0.4-0.9 MiB resident each); an
    SSLContext may be shared by any number of connections and threads.
    """
    return httpx.create_ssl_context()


class BoundedTransport(httpx.HTTPTransport):
    """httpx's default transport, its connection pool on a ``DeadlineBackend``."""

    def __init__(self) -> None:
        super().__init__(verify=shared_ssl_context())
        pool = httpx.Limits()  # httpx's defaults, as HTTPTransport() sets them
        self._pool = httpcore.ConnectionPool(
            ssl_context=shared_ssl_context(),
            max_connections=pool.max_connections,
            max_keepalive_connections=pool.max_keepalive_connections,
            keepalive_expiry=pool.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )


def new_client(
    limits: HttpLimits, transport: httpx.BaseTransport | None = None, **kwargs: Any
) -> httpx.Client:
    """An httpx.Client for ``httpfaults.send``: bounded timeouts, ``BoundedTransport``."""
    return httpx.Client(
        transport=transport or BoundedTransport(), timeout=limits.timeout(), **kwargs
    )
