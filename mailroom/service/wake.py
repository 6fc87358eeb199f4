"""The wake channel from the listener to the worker: a Unix datagram socket.

The worker binds ``STATE_DIR/wake.sock``; the listener sends one small JSON datagram
per state event. Sending never blocks and never raises: when the worker is absent
(no socket, connection refused) or its buffer is full, the wake is dropped and
counted, because the worker runs a catch-up pass whenever it starts.

Standard library only: the health process may import this package.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailroom.errors import ConfigError
from mailroom.paths import MAX_SOCKET_PATH

REASONS = frozenset({"state", "connect"})
_MAX_DATAGRAM = 65536


@dataclass(frozen=True, slots=True)
class Wake:
    """One reason to look at the mailbox: ``changed`` maps a type ("Email") to its new state."""

    changed: Mapping[str, str]
    reason: str  # "state": a StateChange event; "connect": the listener (re)connected


def encode_wake(w: Wake) -> bytes:
    return json.dumps({"changed": dict(w.changed), "reason": w.reason}).encode()


def decode_wake(data: bytes) -> Wake | None:
    """The wake in ``data``, or None when it is not a well-formed wake."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    changed, reason = doc.get("changed"), doc.get("reason")
    if reason not in REASONS or not isinstance(changed, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in changed.items()):
        return None
    return Wake(changed=changed, reason=reason)


class WakeSender:
    """Sends wakes to the worker's socket; never blocks, never raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def send(self, w: Wake) -> bool:
        """True when the worker's socket took the wake; False (and counted) when dropped."""
        try:
            self._sock.sendto(encode_wake(w), os.fsencode(self.path))
        except (OSError, ValueError):
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        self._sock.close()


class WakeReceiver:
    """The worker's end: binds the socket (replacing a stale one) and collects wakes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                [
                    f"the wake socket path {path} is longer than {MAX_SOCKET_PATH} bytes; "
                    "set MAILROOM_STATE_DIR to a shorter directory"
                ]
            )
        _remove_stale_socket(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(os.fsencode(path))
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, timeout: float) -> list[Wake]:
        """Block up to ``timeout`` seconds for a datagram, then drain.

        May return an empty list before the timeout when only malformed datagrams
        (or an ``interrupt()``) arrived: callers re-check their own deadlines.
        """
        readable, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        return self.drain() if readable else []

    def drain(self) -> list[Wake]:
        """Every wake already queued, without blocking."""
        wakes: list[Wake] = []
        while True:
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return wakes
            w = decode_wake(data)
            if w is not None:
                wakes.append(w)

    def interrupt(self) -> None:
        """Make a ``wait`` in progress return now (safe to call from a signal handler)."""
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", os.fsencode(self.path))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)


def _remove_stale_socket(path: Path) -> None:
    """Unlink a socket left behind by a previous worker; refuse any other file (a
    symbolic link among them: it is never followed) with a ConfigError."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError([f"{path} is not a socket; mailroom will not touch it. Remove it"])
    os.unlink(path)
