"""Resident memory of the idle service: every process `mailroom run` starts.

`mailroom run` serves a fresh account on the test Cyrus; once it is idle (health 200,
the EventSource connected, the start-up pass and the connect wake's pass done), the
script reads ``VmRSS`` from ``/proc/<pid>/status`` of `mailroom run`, of supervisord
(the same process since `mailroom run` runs supervisord's loop itself; a child of it
before) and of each program and event listener supervisord runs (pids from its
XML-RPC interface), --samples times, --every seconds apart. ``Pss``
(``/proc/<pid>/smaps_rollup``: shared pages divided among the processes that share
them) is printed next to it, since the three programs are Python interpreters that
share their libraries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path

from mailroom.run.supervisor_rpc import rpc
from mailroom.statenames import SUPERVISOR_SOCKET
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import CyrusServer
from mailroom_dev.servicebox import PROGRAMS, ServiceBox

KIB_PER_MIB = 1024


def kib(path: Path, field: str) -> int:
    """The ``field:`` value (in kB) of a /proc status-like file."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in {path}")


def sample(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    proc = Path("/proc") / str(pid)
    return kib(proc / "status", "VmRSS"), kib(proc / "smaps_rollup", "Pss")


def pids(svc: ServiceBox) -> dict[str, int]:
    """{process: pid} for every process of the service, each counted once."""
    assert svc.proc is not None
    supervisord = svc.supervisord_pid()
    if supervisord == svc.proc.pid:
        found = {"mailroom run = supervisord": supervisord}
    else:
        found = {"mailroom run": svc.proc.pid, "supervisord": supervisord}
    for program in sorted(PROGRAMS):
        pid = svc.pid_of(program)
        if pid is None:
            raise RuntimeError(f"{program} is not RUNNING")
        found[program] = pid
    with rpc(svc.state_dir / SUPERVISOR_SOCKET) as proxy:  # event listeners, if any
        for info in proxy.supervisor.getAllProcessInfo():
            if info["name"] not in PROGRAMS and info["pid"]:
                found[f"event listener {info['name']}"] = int(info["pid"])
    return found


def mib(values: Sequence[int]) -> str:
    med = statistics.median(values) / KIB_PER_MIB
    low, high = min(values) / KIB_PER_MIB, max(values) / KIB_PER_MIB
    return f"{med:.1f}" if low == high else f"{med:.1f} [{low:.1f}-{high:.1f}]"


def measure(server: CyrusServer, samples: int, every: float) -> None:
    box = prepared_box(server)
    with (
        redirect_stdout(sys.stderr),  # ServiceBox prints the service's log tail at the end
        ServiceBox.running(box, poll_interval=60, debounce_seconds=3) as svc,
    ):
        found = pids(svc)
        rss: dict[str, list[int]] = {name: [] for name in found}
        pss: dict[str, list[int]] = {name: [] for name in found}
        for i in range(samples):
            if i:
                time.sleep(every)
            for name, pid in found.items():
                r, p = sample(pid)
                rss[name].append(r)
                pss[name].append(p)
        status, _ = svc.healthz()
    rows = [[name, str(pid), mib(rss[name]), mib(pss[name])] for name, pid in found.items()]
    totals = [sum(col) for col in zip(*rss.values(), strict=True)]
    pss_totals = [sum(col) for col in zip(*pss.values(), strict=True)]
    rows.append(["all", "", mib(totals), mib(pss_totals)])
    table(
        f"Idle service memory, MiB: median [min-max] of {samples} samples {every:g} s apart "
        f"(healthz {status} at the end)",
        ["process", "pid", "RSS (VmRSS)", "PSS (smaps_rollup)"],
        rows,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=5, help="samples per process (5)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples (2)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with cyrus() as server:
        measure(server, args.samples, args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
