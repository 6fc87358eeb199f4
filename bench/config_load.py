"""How fast a config is read, and how fast a bad one is refused.

In process: ``load_settings`` on N chained categories (each the parent of the next),
each with its own contact group and all sharing one (the 185 KB config of issue 18),
and on the same chain closed into one loop (a problem to report). As a real CLI:
`mailroom poll` on a 50 MB config file, on deeply nested YAML, on nested JSON in
MAILROOM_CATEGORIES and on /dev/zero, each refused with exit 78 (the whole process:
interpreter start-up included). Prints medians with [min-max]; asserts nothing
about time. No server is needed.

    .venv/bin/python bench/config_load.py [--chain 250,2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mailroom.config import load_settings
from mailroom.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

CREDENTIALS = {
    "MAILROOM_JMAP_TOKEN": "bench-token-0123456789",
    "MAILROOM_CARDDAV_USERNAME": "ann@example.com",
    "MAILROOM_CARDDAV_PASSWORD": "bench-password-42",
}


def figure(samples: list[float]) -> str:
    low, high = min(samples) * 1000, max(samples) * 1000
    return f"{statistics.median(samples) * 1000:8.1f} ms [{low:.1f}-{high:.1f}]"


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def chain_env(n: int, shape: str) -> dict[str, str]:
    cats: list[dict[str, str | None]] = [
        {"name": "C0", "parent": f"C{n - 1}" if shape == "one loop" else None}
    ]
    cats += [{"name": f"C{i}", "parent": f"C{i - 1}"} for i in range(1, n)]
    if shape == "one group":
        cats = [{**c, "contact_group": "Shared"} for c in cats]
    return {"HOME": "/tmp", "MAILROOM_CATEGORIES": json.dumps(cats)}


def load(env: dict[str, str]) -> None:
    with contextlib.suppress(ConfigError):
        load_settings(env, warn=lambda line: None)


def cli_refusal(env: dict[str, str]) -> float:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "poll"],
        env={**base, "HOME": "/tmp", "PYTHONPATH": str(REPO), **CREDENTIALS, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 78 or "Traceback" in done.stderr:
        raise SystemExit(f"expected exit 78 without a traceback, got {done.returncode}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", default="250,2000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("load_settings, chained categories (in process):")
    for n in (int(x) for x in args.chain.split(",")):
        for shape in ("valid", "one group", "one loop"):
            env = chain_env(n, shape)
            print(f"  {n:5d} {shape:9s} {figure(timed(args.runs, lambda e=env: load(e)))}")
    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.yaml"
        with big.open("wb") as f:
            f.truncate(50 * 1024 * 1024)
        nested = Path(d) / "nested.yaml"
        nested.write_text("a: " + "[" * 100_000, encoding="utf-8")
        cases = {
            "50 MB config file": {"MAILROOM_CONFIG": str(big)},
            "YAML nested 100,000 deep": {"MAILROOM_CONFIG": str(nested)},
            "JSON nested 100,000 deep": {"MAILROOM_CATEGORIES": "[" * 100_000},
            "/dev/zero as the config": {"MAILROOM_CONFIG": "/dev/zero"},
            "poll_interval of inf": {"MAILROOM_POLL_INTERVAL": "inf"},
        }
        print("`mailroom poll` refusing a bad config (whole process, exit 78):")
        for name, env in cases.items():
            print(f"  {name:26s} {figure([cli_refusal(env) for _ in range(args.runs)])}")


if __name__ == "__main__":
    main()
