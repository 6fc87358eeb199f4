"""The installed version of mailroom: ``mailroom --version``, worker.json, /metrics.

Standard library only, imported lazily (``importlib.metadata`` costs about 4 MiB of
resident memory: health never imports this module, it reads the version the worker
wrote into worker.json).
"""

from __future__ import annotations

DISTRIBUTION = "mailroom-screener"


def version() -> str:
    """The installed version, else the checkout's pyproject.toml version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text("utf-8"))["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"
