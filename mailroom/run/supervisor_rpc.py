"""supervisord's XML-RPC interface from the standard library alone.

``supervisor.xmlrpc`` pulls in much of supervisor (about 10 MiB per process), which
`mailroom status` and the harness do not need: ``xmlrpc.client`` over the unix
socket is enough. The project's one supervisord client: `mailroom status`, the test
and bench harness (``mailroom_dev.servicebox``) and the tests all ask through ``rpc``.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()  # nothing listens there (or no permission): no socket left open
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def make_connection(self, host: tuple[str, dict[str, str]] | str) -> http.client.HTTPConnection:
        """One connection, reused for the next call and closed by ``close()`` (as the
        standard library's own transport keeps it), never one per call left open."""
        connection = self._connection[1]
        if connection is None:
            connection = _UnixConnection(self._path)
            self._connection = (host, connection)
        return connection


def server_proxy(url: str) -> Any:
    """supervisord's XML-RPC interface at SUPERVISOR_SERVER_URL (``unix://...`` or http)."""
    if url.startswith("unix://"):
        path = url.removeprefix("unix://")
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(path))
    return xmlrpc.client.ServerProxy(url.rstrip("/") + "/RPC2")


@contextmanager
def rpc(socket_path: Path) -> Iterator[Any]:
    """A proxy for supervisord's XML-RPC interface on a unix socket, closed after."""
    proxy = server_proxy(f"unix://{socket_path}")
    with proxy:
        yield proxy
