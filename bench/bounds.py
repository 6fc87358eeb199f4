"""What the bounds of issue 11 cost and what they buy, on loopback (no Cyrus needed).

    .venv/bin/python bench/bounds.py [--runs 200] [--probes 1000] [--warnings 100000]

1. A request through ``httpfaults.send`` (deadline backend, body read within the cap,
   response rebuilt) against a plain ``httpx.Client.request``, same local server, for
   a 1 KB and a 1 MiB body: median ms per request and the ratio.
2. ``mailroom health`` (a real process) hit by ``--probes`` connections at once: how
   many were answered and how long until the last answer.
3. ``--warnings`` (100,000) identical warnings through ``configure_logging``: lines
   written, seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import structlog

from mailroom.httpbounds import HttpLimits, new_client
from mailroom.httpfaults import send
from mailroom.logs import configure_logging
from mailroom_dev.probes import request_all

REPO = Path(__file__).resolve().parents[1]
BODIES = {"1 KB": b"x" * 1024, "1 MiB": b"x" * (1 << 20)}


def _server() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else 40 ms of delayed ACK per small answer

        def do_GET(self) -> None:
            body = BODIES["1 MiB" if self.path == "/big" else "1 KB"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _paired(a: Callable[[], object], b: Callable[[], object], runs: int) -> list[float]:
    """Median ms of ``a``, of ``b``, and the median of the per-pair ratios b/a: the two
    alternate, so a shared machine's drift hits both alike."""
    a(), b()  # a connection in each pool first
    pairs = [(_timed(a), _timed(b)) for _ in range(runs)]
    return [
        statistics.median(x for x, _ in pairs) * 1000,
        statistics.median(y for _, y in pairs) * 1000,
        statistics.median(y / x for x, y in pairs),
    ]


def requests(runs: int) -> None:
    server = _server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    plain, bounded = httpx.Client(), new_client(HttpLimits())
    print("| body | plain httpx (median ms) | bounded send (median ms) | median ratio |")
    print("|---|---|---|---|")
    for label, path in (("1 KB", "/small"), ("1 MiB", "/big")):
        url = base + path
        a, b, ratio = _paired(
            partial(plain.get, url), partial(send, bounded, "JMAP", "GET", url), runs
        )
        print(f"| {label} | {a:.2f} | {b:.2f} | {ratio:.2f} |")
    plain.close()
    bounded.close()
    server.shutdown()


def health(probes: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "PYTHONPATH": str(REPO), "MAILROOM_STATE_DIR": state}
        env["MAILROOM_HEALTH_PORT"] = "0"
        code = "from mailroom.service.health import main; raise SystemExit(main())"
        child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None
            port = json.loads(child.stdout.readline())["port"]
            start = time.perf_counter()
            answers = request_all(port, probes)
            took = time.perf_counter() - start
        finally:
            child.terminate()
            child.wait(10)
    answered = sum(a.startswith(b"HTTP/1.0 ") for a in answers)
    print(f"health: {answered} of {probes} concurrent probes answered, the last after {took:.2f} s")


def logs(count: int) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = structlog.get_logger()
    start = time.perf_counter()
    for _ in range(count):
        log.warning("eventsource_bad_event", event_id=None, reason="data is not JSON")
    took = time.perf_counter() - start
    lines = len(stream.getvalue().splitlines())
    print(f"logs: {count:,} identical warnings -> {lines} line(s) in {took:.2f} s")
    structlog.reset_defaults()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="requests per body size")
    parser.add_argument("--probes", type=int, default=1000, help="concurrent health probes")
    parser.add_argument("--warnings", type=int, default=100_000, help="identical warnings")
    args = parser.parse_args(argv)
    requests(args.runs)
    health(args.probes)
    logs(args.warnings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
