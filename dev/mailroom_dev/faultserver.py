"""A scripted JMAP session + EventSource server on 127.0.0.1, for listener tests.

``GET /jmap/session`` answers a session document whose ``eventSourceUrl`` is a
relative template pointing back at this server (``/events?types={types}&...``),
or null. Each EventSource connection plays the next :class:`Play` of the script
(the last one repeats): an HTTP status with no stream, or a 200 ``text/event-stream``
whose chunks are written one by one, after which the server closes the connection
(``then="close"``, delimited by close like Cyrus) or holds it silently open
(``then="stall"``) until the test releases it or the server stops. Every request
is recorded (path, query, headers) so tests can check what the listener sent.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx

ACCOUNT = "acct1"
TOKEN = "fault-token"
EVENTS_TEMPLATE = "/events?types={types}&closeafter={closeafter}&ping={ping}"


@dataclass(frozen=True)
class Play:
    """One EventSource connection's behaviour."""

    status: int = 200
    chunks: tuple[bytes, ...] = ()
    then: Literal["close", "stall"] = "close"
    headers: tuple[tuple[str, str], ...] = ()
    # -- SSE faults: after the chunks, before `then`
    flood: int = 0  # this many bytes of one line that never ends (written 64 KiB at a time)
    trickle: bytes = b""  # written one byte at a time, TRICKLE_PAUSE apart, over and over


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names


def state_event(changed: dict[str, str], event_id: str | None = None) -> bytes:
    """An RFC 8620 state event for the test account, as Cyrus sends it."""
    data = json.dumps({"@type": "StateChange", "changed": {ACCOUNT: changed}})
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: state\ndata: {data}\n\n".encode()


PING = b'event: ping\ndata: {"interval":30}\n\n'
TRICKLE_PAUSE = 0.005  # seconds between the bytes of a trickling stream (the server's pace)
FLOOD_CHUNK = b"x" * 65536


class Served:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port), served by a thread of its own:
    what each scripted server here runs on."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"


@dataclass
class FaultServer:
    """Start with ``with FaultServer(script) as server:``; ``server.session_url``."""

    script: Sequence[Play] = (Play(then="stall"),)
    event_source: bool = True
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    flood_sent: int = 0  # bytes of flood lines the listener took before it hung up
    # JMAP API: method calls in, method responses out (see EndlessPages); None: 404.
    api: Callable[[list[list[Any]]], list[list[Any]]] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._release = threading.Event()
        self._served = Served(_handler_for(self))

    def __enter__(self) -> FaultServer:
        self._served.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._served.stop()

    @property
    def base_url(self) -> str:
        return self._served.origin

    @property
    def session_url(self) -> str:
        return f"{self.base_url}/jmap/session"

    def release_stalls(self) -> None:
        """End every stalled stream now (the server closes them)."""
        self._release.set()

    def stream_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == "/events"]

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` EventSource connections arrived (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.connections < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.connections} connections, expected {count}")
                self._lock.wait(left)

    def _next_play(self, seen: Seen) -> Play:
        with self._lock:
            self.seen.append(seen)
            index = min(self.connections, len(self.script) - 1)
            self.connections += 1
            self._lock.notify_all()
            return self.script[index]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def session_document(self) -> dict[str, Any]:
        return {
            "capabilities": {
                "urn:ietf:params:jmap:core": {
                    "maxObjectsInGet": 500,
                    "maxObjectsInSet": 500,
                    "maxCallsInRequest": 16,
                },
                "urn:ietf:params:jmap:mail": {},
            },
            "accounts": {ACCOUNT: {"name": "test", "isPersonal": True, "accountCapabilities": {}}},
            "primaryAccounts": {"urn:ietf:params:jmap:mail": ACCOUNT},
            "username": "test",
            "apiUrl": "/jmap/api",
            "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
            "uploadUrl": "/jmap/upload/{accountId}/",
            "eventSourceUrl": EVENTS_TEMPLATE if self.event_source else None,
            "state": "s1",
        }

    def stalled(self) -> Iterator[None]:
        """Yield every 50 ms until released or stopped (the handler keeps the socket open)."""
        while not self._release.wait(0.05):
            yield None


def _handler_for(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            seen = Seen(
                url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()}
            )
            if seen.headers.get("authorization") != f"Bearer {TOKEN}":
                server._record(seen)
                self._plain(401, b"unauthorized", [("WWW-Authenticate", 'Bearer realm="x"')])
            elif url.path == "/jmap/session":
                server._record(seen)
                body = json.dumps(server.session_document()).encode()
                self._plain(200, body, [("Content-Type", "application/json")])
            elif url.path == "/events":
                self._play(server._next_play(seen))
            else:
                server._record(seen)
                self._plain(404, b"not found", [])

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            seen = Seen(
                url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()}
            )
            server._record(seen)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if seen.headers.get("authorization") != f"Bearer {TOKEN}":
                self._plain(401, b"unauthorized", [("WWW-Authenticate", 'Bearer realm="x"')])
            elif url.path == "/jmap/api" and server.api is not None:
                answers = server.api(json.loads(body)["methodCalls"])
                out = json.dumps({"methodResponses": answers, "sessionState": "s1"}).encode()
                self._plain(200, out, [("Content-Type", "application/json")])
            else:
                self._plain(404, b"not found", [])

        def _plain(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _play(self, play: Play) -> None:
            if play.status != 200:
                self._plain(play.status, b"", list(play.headers))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            for name, value in play.headers:
                self.send_header(name, value)
            self.end_headers()
            try:
                for chunk in play.chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self._sse_faults(play)
                if play.then == "stall":
                    for _ in server.stalled():
                        pass
            except OSError:
                pass  # the listener went away

        def _sse_faults(self, play: Play) -> None:
            """A never-ending line, or a stream that trickles; OSError once the client left."""
            while server.flood_sent < play.flood:
                self.wfile.write(FLOOD_CHUNK)
                server.flood_sent += len(FLOOD_CHUNK)
            while play.trickle and not server._release.is_set():
                for byte in play.trickle:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    server._release.wait(TRICKLE_PAUSE)

    return Handler


# -- hostile answers: a trickling or an oversized body, for any method on any path --------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer. ``size`` bytes of body, with a Content-Length header or ended by
    the close; ``trickle`` > 0 sends it one byte per ``trickle`` seconds, from the status
    line on (``trickle_head``) or from the first body byte."""

    status: int = 200
    size: int = 0
    declare_length: bool = True
    trickle: float = 0.0
    trickle_head: bool = False
    content_type: str = "application/json"


MINIMAL_SESSION = {
    "capabilities": {"urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:mail": {}},
    "accounts": {ACCOUNT: {"name": "test", "isPersonal": True, "accountCapabilities": {}}},
    "primaryAccounts": {"urn:ietf:params:jmap:mail": ACCOUNT},
    "username": "test",
    "apiUrl": "/jmap/api",
    "downloadUrl": "/d/{accountId}/{blobId}/{name}?accept={type}",
    "uploadUrl": "/u/{accountId}/",
    "eventSourceUrl": None,
    "state": "s1",
}


@dataclass
class AnswerServer:
    """``answers`` maps a path to its Answer; ``GET /jmap/session`` not in it gets a
    minimal session document. ``requests`` counts the requests to the scripted paths,
    ``sent`` the bytes written to them before the client went away."""

    answers: dict[str, Answer]
    requests: int = 0
    sent: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._busy = 0
        self._stop = threading.Event()
        self._served = Served(_answer_handler(self))

    def __enter__(self) -> AnswerServer:
        self._served.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._served.stop()

    def url(self, path: str) -> str:
        return f"{self._served.origin}{path}"

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Block until every scripted answer has ended (the client closed or it was sent)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self._busy} answers still being sent")
                self._lock.wait(left)

    def _play(self, answer: Answer, sock: socket.socket) -> None:
        with self._lock:
            self.requests += 1
            self._busy += 1
        try:
            self._write_all(answer, sock)
        except OSError:
            pass  # the client gave up: what it got is counted
        finally:
            with self._lock:
                self._busy -= 1
                self._lock.notify_all()

    def _write_all(self, answer: Answer, sock: socket.socket) -> None:
        head = f"HTTP/1.0 {answer.status} Answer\r\nContent-Type: {answer.content_type}\r\n"
        if answer.declare_length:
            head += f"Content-Length: {answer.size}\r\n"
        head_bytes = (head + "\r\n").encode()
        if answer.trickle and answer.trickle_head:
            if self._trickle(head_bytes, answer.trickle, sock):
                return
        else:
            self._write(head_bytes, sock)
        if answer.trickle:
            self._trickle(b"x" * answer.size, answer.trickle, sock)
            return
        left = answer.size
        block = b"x" * 65536
        while left > 0 and not self._stop.is_set():
            self._write(block[:left], sock)
            left -= len(block)

    def _trickle(self, data: bytes, every: float, sock: socket.socket) -> bool:
        """Send ``data`` byte by byte; True when the client went away first."""
        for index in range(len(data)):
            self._write(data[index : index + 1], sock)
            if self._client_gone(sock, every):
                return True
        return False

    def _client_gone(self, sock: socket.socket, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the client closed (or the server stops)."""
        until = time.monotonic() + seconds
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            if select.select([sock], [], [], min(left, 0.05))[0]:
                return True  # the request was read whole: readable means closed
        return True

    def _write(self, data: bytes, sock: socket.socket) -> None:
        sock.sendall(data)
        with self._lock:
            self.sent += len(data)


def _answer_handler(server: AnswerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = urlsplit(self.path).path
            answer = server.answers.get(path)
            if answer is not None:
                server._play(answer, self.connection)
                return
            body = json.dumps(MINIMAL_SESSION).encode() if path == "/jmap/session" else b"{}"
            self.send_response(200 if path == "/jmap/session" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = _any

    return Handler


@dataclass
class EndlessPages:
    """A JMAP API that answers every Email/query with a full page, for ever.

    Mailbox/get lists ``mailboxes`` (names; "Inbox" gets role inbox); Email/get gives
    each id an email in the first mailbox, from nobody in particular.
    """

    mailboxes: Sequence[str]
    queries: int = 0

    def __call__(self, calls: list[list[Any]]) -> list[list[Any]]:
        answers: list[list[Any]] = []
        pages: dict[str, list[str]] = {}
        for name, args, call_id in calls:
            listed: list[dict[str, Any]]
            if name == "Mailbox/get":
                listed = [
                    {
                        "id": f"M{i}",
                        "name": n,
                        "parentId": None,
                        "role": n.lower() if n == "Inbox" else None,
                    }
                    for i, n in enumerate(self.mailboxes)
                ]
                answers.append([name, {"state": "m1", "list": listed, "notFound": []}, call_id])
            elif name == "Email/query":
                self.queries += 1
                start = int(args.get("position", 0))
                pages[call_id] = [f"E{start + i}" for i in range(int(args["limit"]))]
                page = {"ids": pages[call_id], "position": start, "queryState": "q1"}
                answers.append([name, page, call_id])
            elif name == "Email/get":
                ids = pages[args["#ids"]["resultOf"]]
                listed = [
                    {"id": i, "from": [{"email": "x@example.com"}], "mailboxIds": {"M0": True}}
                    for i in ids
                ]
                answers.append([name, {"state": "e1", "list": listed, "notFound": []}, call_id])
            else:
                answers.append(["error", {"type": "unknownMethod"}, call_id])
        return answers


# -- a real server behind a proxy that holds its writes ------------------------------------


@dataclass
class WriteHolder:
    """A proxy to a real JMAP server that forwards every request except those whose
    method calls include ``method``: those it holds without a byte of answer until the
    client gives up (``mode="hang"``), or answers ``503`` with ``Retry-After:
    retry_after`` (``mode="503"``). ``held`` counts them: the write attempts.

    ``with WriteHolder(upstream_session_url) as proxy:``; ``proxy.session_url``. The
    session's relative URLs bring the API requests back through the proxy.
    """

    upstream: str
    method: str = "Email/set"
    mode: Literal["hang", "503"] = "hang"
    retry_after: int = 120
    held: int = 0
    forwarded: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._http = httpx.Client(timeout=60.0)
        self._served = Served(_holder_handler(self))

    def __enter__(self) -> WriteHolder:
        self._served.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._served.stop()
        self._http.close()

    @property
    def session_url(self) -> str:
        return f"{self._served.origin}{urlsplit(self.upstream).path}"

    def holds(self, body: bytes) -> bool:
        try:
            calls = json.loads(body)["methodCalls"]
        except (ValueError, KeyError, TypeError):
            return False
        return any(call[0] == self.method for call in calls)

    def hold(self, sock: socket.socket) -> None:
        """Keep the connection open, silent, until the client closes it (or we stop)."""
        with self._lock:
            self.held += 1
        while not self._stop.is_set():
            if select.select([sock], [], [], 0.05)[0]:
                return  # the request was read whole: readable means closed

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        with self._lock:
            self.forwarded += 1
        split = urlsplit(self.upstream)
        url = f"{split.scheme}://{split.netloc}{path}"
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        return self._http.request(method, url, headers=keep, content=body)


def _holder_handler(server: WriteHolder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command == "POST" and server.holds(body):
                if server.mode == "hang":
                    server.hold(self.connection)
                    return
                with server._lock:
                    server.held += 1
                self.send_response(503)
                self.send_header("Retry-After", str(server.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = server.forward(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(answer.status_code)
            for name in ("Content-Type", "Location", "Retry-After"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _any

    return Handler
