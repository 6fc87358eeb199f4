"""`mailroom run`'s stdout and stderr as pipes of its own, copied to the real ones by a
thread of the same process.

supervisord reopens ``/dev/stdout`` (``/proc/self/fd/1``) for each program's
``stdout_logfile``. Reopened, a regular file gets a description of its own at offset 0:
`mailroom run > run.log` had supervisord's own lines (written through fd 1, at the
shell's offset) overwrite the programs' lines. And a pipe that belongs to another user
cannot be reopened at all: a container's stdout, made by root, under ``USER mailroom``
(EACCES, every program FATAL). ``piped_output`` puts a pipe of ours on fd 1 and one on
fd 2 before supervisord starts: any reopening opens our pipe (ours, so allowed; a pipe,
so no offset), and every writer in the process (supervisord's lines, the programs' lines
it relays, a traceback) goes through it in the order written. A thread copies each pipe
to the descriptor fd 1 or fd 2 was (the shell's file, the terminal, the container's
pipe), one write after the other, so a file opened without O_APPEND fills in order.

The copier is a thread, not supervisord's loop: supervisord writes a program's output
(up to 128 KiB a read) to the pipe in its loop, so a reader in that same loop would
deadlock on a full pipe; the thread drains it whatever supervisord does. It is safe
across supervisord's fork: it only ever waits in ``poll``, ``read`` or ``write`` (the
GIL released, no Python lock held, nothing buffered), and the children close every
descriptor above 2 and exec at once. It blocks every signal (the kernel then delivers
them to the main thread, whose poll they wake). A write that fails (the reader of our
stdout is gone: EPIPE, since Python ignores SIGPIPE) marks the output closed
(``closed()``, which supervisord's loop asks each turn to stop everything) and from then
on the copier reads and drops, so supervisord never blocks on a pipe nobody empties.
``OutputWatch`` sees a closed FIFO even while nothing is written (an idle service).

On leaving ``piped_output`` fd 1 and fd 2 are put back, then the thread copies what is
still in the pipes (every line written before, the last ones included) and ends: the
runner's own last line comes after them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STREAMS = (1, 2)
CHUNK = 65536
PIPE_GONE = select.POLLERR | select.POLLHUP
S_IFIFO, S_IFMT = 0o010000, 0o170000
DRAIN_SECONDS = 10.0  # at the end, for a reader still there but not reading


class OutputWatch:
    """``fds`` that are pipes: ``closed()`` once the reader of one is gone."""

    def __init__(self, fds: tuple[int, ...] = STREAMS) -> None:
        self._poller = select.poll()
        self._fds: set[int] = set()
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_mode & S_IFMT == S_IFIFO:
                    self._poller.register(fd, 0)  # no events asked: only POLLERR/POLLHUP come
                    self._fds.add(fd)

    def closed(self) -> bool:
        if not self._fds:
            return False
        gone = [fd for fd, events in self._poller.poll(0) if events & PIPE_GONE]
        for fd in gone:
            self._poller.unregister(fd)
            self._fds.discard(fd)
        return bool(gone)


class Copier:
    """Each pipe's data to its descriptor (``copies``: read end -> where), until
    ``stop`` is readable; then what is left in the pipes, and the end."""

    def __init__(self, copies: dict[int, int], stop: int) -> None:
        self.copies = dict(copies)
        self.stop = stop
        self.broken = False  # a write failed: the output is closed, the rest is dropped

    def run(self) -> None:
        poller = select.poll()
        for fd in (*self.copies, self.stop):
            poller.register(fd, select.POLLIN)
        live = dict(self.copies)
        while True:
            for fd, _ in poller.poll():
                if fd == self.stop:
                    for pipe in live:
                        self.drain(pipe)
                    return
                if not self.copy(fd):  # EOF: every write end closed
                    poller.unregister(fd)
                    del live[fd]

    def copy(self, pipe: int) -> bool:
        """One read from ``pipe`` written whole to its descriptor; False at EOF."""
        data = os.read(pipe, CHUNK)
        if data and not self.broken:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.copies[pipe], view) :]
            except OSError:
                self.broken = True
        return bool(data)

    def drain(self, pipe: int) -> None:
        """What ``pipe`` holds now, up to empty (its write ends may still be open)."""
        os.set_blocking(pipe, False)
        with contextlib.suppress(BlockingIOError):
            while self.copy(pipe):
                pass


class OutputPipes:
    """fd 1 and fd 2 on pipes of ours, copied to what they were (see the module's doc)."""

    def __init__(self, copier: Copier, originals: tuple[int, ...], stop_w: int) -> None:
        self._copier = copier
        self._originals = originals
        self._stop_w = stop_w
        self._watch = OutputWatch(originals)
        self.keep = frozenset((*copier.copies, *originals, copier.stop, stop_w))
        """Our descriptors: supervisord must leave them open when it reloads."""

    def closed(self) -> bool:
        """The reader of our real stdout or stderr is gone."""
        return self._copier.broken or self._watch.closed()


@contextmanager
def piped_output() -> Iterator[OutputPipes]:
    """fd 1 and fd 2 as pipes copied to the real ones until the block ends; then every
    line written reaches them before anything written after the block."""
    copies: dict[int, int] = {}  # read end -> original
    stream_of: dict[int, int] = {}  # original -> 1 or 2
    for fd in STREAMS:
        try:
            original = os.dup(fd)  # close-on-exec: the programs never get it
        except OSError:
            continue  # closed: left as it is
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.dup2(write_end, fd)
        os.close(write_end)
        copies[read_end] = original
        stream_of[original] = fd
    stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
    copier = Copier(copies, stop_r)
    thread = threading.Thread(target=copier.run, name="output-copier", daemon=True)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread.start()  # with every signal blocked: they go to the main thread
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        yield OutputPipes(copier, tuple(stream_of), stop_w)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for original, fd in stream_of.items():
            os.dup2(original, fd)  # our pipe's write end at fd closed: nothing more comes
        os.write(stop_w, b"x")
        thread.join(DRAIN_SECONDS)
        if not thread.is_alive():
            for fd in (*copies, *stream_of, stop_r, stop_w):
                os.close(fd)
