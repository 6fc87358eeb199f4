"""httpbounds + httpfaults.send: the deadline and the size cap, on a fake clock and
httpx.MockTransport (the socket side is tested against tests/faultserver.py)."""

from __future__ import annotations

import gzip
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest

from mailroom.errors import ResponseTooLarge, ServerTooSlow
from mailroom.httpbounds import (
    MIB,
    BodyTooLarge,
    BoundedTransport,
    Budget,
    DeadlineExceeded,
    HttpLimits,
    budget,
    new_client,
    shared_ssl_context,
)
from mailroom.httpfaults import send
from mailroom.service.stream import EventStream


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LIMITS = HttpLimits(read=30, deadline=60, max_body=1000)


def test_a_timeout_is_shortened_to_the_time_left() -> None:
    clock = FakeClock()
    spent = Budget(LIMITS, clock)
    assert spent.bound(30) == 30
    clock.now += 45
    assert spent.bound(30) == 15
    assert spent.bound(None) == 15
    clock.now += 15
    assert spent.expired()
    with pytest.raises(DeadlineExceeded):
        spent.bound(30)


def test_received_bytes_over_the_cap_raise() -> None:
    spent = Budget(LIMITS, FakeClock())
    spent.count(600)
    spent.count(400)
    assert spent.received == 1000
    with pytest.raises(BodyTooLarge) as caught:
        spent.count(1)
    assert caught.value.limit == 1000


def test_the_budget_is_current_only_inside_its_block() -> None:
    from mailroom import httpbounds

    with budget(LIMITS, FakeClock()) as spent:
        assert httpbounds._bound(30) == 30
        assert httpbounds._CURRENT.get() is spent
    assert httpbounds._bound(30) == 30
    assert httpbounds._CURRENT.get() is None


class SlowStream(httpx.SyncByteStream):
    """Yields ``chunks`` chunks of 10 bytes, the clock advancing ``step`` s before each."""

    def __init__(self, clock: FakeClock, chunks: int, step: float) -> None:
        self.clock, self.chunks, self.step = clock, chunks, step
        self.yielded = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.clock.now += self.step
            self.yielded += 1
            yield b"x" * 10


def mock_client(handler: httpx.MockTransport) -> httpx.Client:
    return new_client(LIMITS, handler)


def test_a_body_still_arriving_at_the_deadline_is_server_too_slow() -> None:
    clock = FakeClock()
    stream = SlowStream(clock, chunks=100, step=1.0)
    http = mock_client(httpx.MockTransport(lambda r: httpx.Response(200, stream=stream)))
    with pytest.raises(ServerTooSlow) as caught:
        send(http, "JMAP", "GET", "https://jmap.example/s", limits=LIMITS, clock=clock)
    assert stream.yielded == 60  # the chunk that arrived at the deadline was the last read
    assert caught.value.url == "https://jmap.example/s"
    assert "within 60 s" in str(caught.value)


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    stream = SlowStream(FakeClock(), chunks=200, step=0)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "2000"}, stream=stream)

    with pytest.raises(ResponseTooLarge) as caught:
        send(
            mock_client(httpx.MockTransport(handler)),
            "CardDAV",
            "GET",
            "https://d/x",
            limits=LIMITS,
        )
    assert stream.yielded == 0
    assert caught.value.limit == 1000
    assert "sent an answer over 1000 bytes, more than mailroom accepts" in str(caught.value)


def test_an_undeclared_body_over_the_cap_stops_at_the_cap() -> None:
    stream = SlowStream(FakeClock(), chunks=200, step=0)
    http = mock_client(httpx.MockTransport(lambda r: httpx.Response(200, stream=stream)))
    with pytest.raises(ResponseTooLarge):
        send(http, "CardDAV", "GET", "https://d/x", limits=LIMITS)
    assert stream.yielded == 101  # 1,010 bytes: over the cap of 1,000


def test_a_compressed_bomb_is_capped_on_its_decoded_size() -> None:
    bomb = gzip.compress(b"\0" * (64 * MIB))
    assert len(bomb) < 100 * 1024  # small on the wire, 64 MiB decoded

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb)

    limits = HttpLimits(max_body=1 * MIB)
    with pytest.raises(ResponseTooLarge):
        send(
            new_client(limits, httpx.MockTransport(handler)),
            "JMAP",
            "GET",
            "https://j/",
            limits=limits,
        )


def test_an_answer_within_the_bounds_comes_back_whole_and_readable() -> None:
    payload = b'{"apiUrl": "/api"}'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jmap":
            return httpx.Response(302, headers={"Location": "/session"})
        headers = {"Content-Encoding": "gzip", "ETag": '"e1"'}
        return httpx.Response(200, headers=headers, content=gzip.compress(payload))

    http = new_client(HttpLimits(), httpx.MockTransport(handler))
    url = "https://jmap.example/.well-known/jmap"
    response = send(http, "JMAP", "GET", url, follow_redirects=True)
    assert response.json() == {"apiUrl": "/api"}
    assert response.content == payload
    assert response.headers["ETag"] == '"e1"'
    assert "Content-Encoding" not in response.headers
    assert str(response.url) == "https://jmap.example/session"
    assert [r.status_code for r in response.history] == [302]


def test_every_bounded_transport_and_the_event_stream_share_one_verifying_tls_context() -> None:
    """One CA bundle loaded per process, and certificates still verified."""
    context = shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    first, second = BoundedTransport(), BoundedTransport()
    pools = [first._pool, second._pool]  # httpx keeps its pool there
    assert all(pool._ssl_context is context for pool in pools)
    stream = EventStream("token", connect_timeout=1.0, read_timeout=1.0, stop=threading.Event())
    try:
        transport = stream.client._transport
        assert isinstance(transport, httpx.HTTPTransport)
        assert transport._pool._ssl_context is context
    finally:
        stream.client.close()
