"""A minimal HTTP/1.0 server for GET and HEAD, over ``socketserver`` (standard library).

Why not ``http.server``: it imports ``http.client``, which imports ``ssl`` and the
``email`` package, about 8 MiB of resident memory for a process that answers one
path with a small JSON document. This module reads the request line and the headers
(and ignores the headers), calls ``answer(method, target)`` and writes one response,
then closes the connection, as ``http.server`` does for HTTP/1.0.

A listen backlog of ``request_queue_size`` connections, a thread per connection
(daemon threads), and a per-socket timeout: a connection that stays silent (or
trickles its headers) for ``timeout`` seconds is closed, so it holds no thread.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import time
from collections.abc import Callable

MAX_LINE = 65536
MAX_HEADERS = 100
SERVER_NAME = f"mailroom-health Python/{sys.version.split()[0]}"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
}

# (method, target) -> (status, content type, body)
Answer = Callable[[str, str], tuple[int, str, bytes]]


class _Refused(Exception):
    """A request this server will not serve: its status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def read_request(readline: Callable[[int], bytes]) -> tuple[str, str]:
    """(method, target) of one request, read by ``readline`` (the request's file's);
    its headers are read and dropped."""
    line = readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise _Refused(414, "request line too long")
    words = line.decode("iso-8859-1").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise _Refused(400, "malformed request line")
    for _ in range(MAX_HEADERS + 1):
        header = readline(MAX_LINE + 1)
        if header in (b"\r\n", b"\n", b""):
            return words[0], words[1]
        if len(header) > MAX_LINE:
            raise _Refused(431, "header line too long")
    raise _Refused(431, "too many headers")


def response(status: int, content_type: str, body: bytes, *, send_body: bool) -> bytes:
    """One HTTP/1.0 response, headers and (unless for HEAD) body."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    head = (
        f"HTTP/1.0 {status} {REASONS.get(status, '')}\r\n"
        f"Server: {SERVER_NAME}\r\n"
        f"Date: {date}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (body if send_body else b"")


class _Handler(socketserver.StreamRequestHandler):
    server: TinyHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # per read and write

    def handle(self) -> None:
        try:
            method, target = read_request(self.rfile.readline)
        except _Refused as refused:
            body = f'{{"error": "{refused}"}}\n'.encode()
            self.wfile.write(response(refused.status, "application/json", body, send_body=True))
            return
        if method not in ("GET", "HEAD"):
            body = b'{"error": "only GET and HEAD"}\n'
            self.wfile.write(response(501, "application/json", body, send_body=True))
            return
        status, content_type, body = self.server.answer(method, target)
        self.wfile.write(response(status, content_type, body, send_body=method == "GET"))


class TinyHTTPServer(socketserver.ThreadingTCPServer):
    """Bound and listening once constructed (OSError when the address is taken)."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], answer: Answer, *, backlog: int, idle_timeout: float
    ) -> None:
        self.request_queue_size = backlog
        self.idle_timeout = idle_timeout
        self.answer = answer
        super().__init__(address, _Handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away or timed out: not worth a traceback each
        super().handle_error(request, client_address)
