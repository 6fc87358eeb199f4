"""Load on a health server: many connections at once (tests/test_health.py, bench/bounds.py)."""

from __future__ import annotations

import selectors
import socket


def request_all(port: int, count: int) -> list[bytes]:
    """Open ``count`` connections at once, then send each a GET /healthz; the answers."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(count)]
    answers = {sock: b"" for sock in socks}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_count = count
        while open_count:
            events = selector.select(timeout=60)
            if not events:
                raise AssertionError(f"{open_count} connections still unanswered after 60 s")
            for key, _ in events:
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                data = ready.recv(65536)
                answers[ready] += data
                if not data:
                    selector.unregister(ready)
                    ready.close()
                    open_count -= 1
    return list(answers.values())
