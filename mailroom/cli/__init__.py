"""The ``mailroom`` command: one ``main(argv)``, every subcommand imported when it runs.

Importing this package is cheap (the error tree); the commands are parsed in
``mailroom.cli.args``, which imports argparse.
The two long-running programs that need little are dispatched before argparse
(``LEAN``): ``mailroom health`` imports no pydantic, httpx or structlog, and
``mailroom listen`` reads its settings through ``procsettings`` without pydantic. A
command whose module is missing fails with a clear message when it is run, not when
the CLI is imported.

Exit codes: what the command returns; 78 (EX_CONFIG) for a configuration problem, one
``config error:`` line each on stderr, every command alike; 1 for any other expected
error, one line; 130 on Ctrl-C. Unexpected exceptions (bugs) keep their traceback.
Everything written to stdout and stderr passes through ``redaction.scrub``, so no
credential reaches the terminal or a log, whatever printed it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from mailroom.errors import ConfigError, MailroomError

EX_CONFIG = 78
EX_INTERRUPTED = 130
LEAN = ("health", "listen")  # run without argparse and without pydantic

# command -> (module, function, help); the modules are imported only when used.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "poll": ("mailroom.ops.poll", "main", "run one triage pass now, then exit"),
    "setup": ("mailroom.ops.setup", "main", "create the mailboxes and contact groups needed"),
    "check": ("mailroom.ops.check", "main", "check the config, the credentials and the server"),
    "reset": ("mailroom.ops.reset", "main", "undo what mailroom did to mail and contacts"),
    "listen": ("mailroom.service.listener", "main", "the push listener process (EventSource)"),
    "work": ("mailroom.service.worker", "main", "the worker process: triage on push and timer"),
    "health": ("mailroom.service.health", "main", "the health endpoint (GET /healthz)"),
    "run": ("mailroom.run.supervise", "main", "run everything under supervisord (foreground)"),
    "status": (
        "mailroom.ops.status",
        "main",
        "what runs (mailroom run, the demo, a system supervisord): programs and /healthz",
    ),
    "demo": ("mailroom.ops.demo", "main", "a local demo against Cyrus on loopback"),
    "config": ("mailroom.ops.config_cmd", "main", "print the example config; is an account set"),
    "completion": ("shtab", "complete", "print a shell completion script (bash, zsh, tcsh)"),
}


def load_entry(module_name: str, function: str) -> Callable[..., int]:
    """The entry point ``module_name.function``; MailroomError if it is not there."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise  # a dependency of that module is missing: a real failure, keep it
        raise MailroomError(
            f"{module_name} is missing from this installation; reinstall mailroom"
        ) from exc
    entry = getattr(module, function, None)
    if not callable(entry):
        raise MailroomError(f"{module_name} has no {function}(); reinstall mailroom")
    return entry  # type: ignore[no-any-return]


def guarded(command: str, call: Callable[[], int | None]) -> int:
    """Run ``call``; map expected errors to one line on stderr and an exit code."""
    try:
        code = call()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EX_INTERRUPTED
    except ConfigError as exc:
        for problem in exc.problems or [str(exc)]:
            print(f"config error: {problem}", file=sys.stderr)
        return EX_CONFIG
    except MailroomError as exc:
        print(f"mailroom {command}: {exc}", file=sys.stderr)
        return 1
    return 0 if code is None else int(code)


def run_lean(command: str) -> int:
    """`mailroom health` or `mailroom listen`, importing only what that program uses."""
    module_name, function, _ = COMMANDS[command]
    if command == "health":  # reads its own few variables
        return load_entry(module_name, function)()
    import os

    from mailroom.logs import configure_logging
    from mailroom.procsettings import load_process_settings

    settings = load_process_settings(cwd=os.getcwd())
    configure_logging(settings.log_level, settings.log_format)
    return load_entry(module_name, function)(settings)


def scrub_output() -> None:
    """Route stdout and stderr through ``redaction.scrub`` (once per process)."""
    from mailroom.redaction import ScrubbingStream

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, ScrubbingStream):
            setattr(sys, name, ScrubbingStream(stream))


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mailroom`` console script; returns the process exit code."""
    scrub_output()
    words = list(sys.argv[1:] if argv is None else argv)
    if len(words) == 1 and words[0] in LEAN:  # before argparse
        return guarded(words[0], lambda: run_lean(words[0]))
    from mailroom.cli.args import run  # argparse: every other command

    return run(words)
