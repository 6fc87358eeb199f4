"""The ``mailroom`` command: one ``main(argv)``, every subcommand imported when it runs.

Importing this module is cheap (the error tree; argparse when a command is parsed).
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
from mailroom.version import version

TYPE_CHECKING = False  # typing's own flag, without importing typing (see docs/performance.md)
if TYPE_CHECKING:
    import argparse
    from typing import Any

EX_CONFIG = 78
EX_INTERRUPTED = 130
ALL_CREDENTIALS = ("jmap_token", "carddav_username", "carddav_password")
# command -> the credentials it cannot start without (checked with the rest of the config)
REQUIRES: dict[str, tuple[str, ...]] = {
    "poll": ALL_CREDENTIALS,
    "setup": ALL_CREDENTIALS,
    "check": ALL_CREDENTIALS,
    "reset": ALL_CREDENTIALS,
    "work": ALL_CREDENTIALS,
    "run": ALL_CREDENTIALS,  # refused before supervisord starts, not FATAL programs after
}
LEAN = ("health", "listen")  # run without argparse and without pydantic
REPORTS = ("setup", "check", "reset")  # print their own report: info logs would interleave

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
NO_SETTINGS = ("demo", "config", "completion")  # run without loading the configuration
EPILOG = (
    "Configuration: the environment, else ./.env (mode 0600), holds MAILROOM_JMAP_TOKEN, "
    "MAILROOM_CARDDAV_USERNAME and MAILROOM_CARDDAV_PASSWORD; MAILROOM_CONFIG names a YAML "
    "file (`mailroom config --example` prints a documented one)."
)
EXIT_CODES = (
    "Exit codes: 0 done (check: all good; status: running); 1 an error or a problem "
    "found, said in one line; 2 wrong usage; 3 (status) nothing runs; 78 a configuration "
    "error (one `config error:` line per problem; restarting will not help); 130 "
    "interrupted (Ctrl-C)."
)


def _version_action() -> type[argparse.Action]:
    """--version, computed only when asked for (importlib.metadata is not free)."""
    import argparse

    class VersionAction(argparse.Action):
        def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

        def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
            print(f"mailroom {version()}")
            parser.exit()

    return VersionAction


def build_parser() -> argparse.ArgumentParser:
    import argparse  # here, not at the top: `mailroom health` never parses with it
    import textwrap

    parser = argparse.ArgumentParser(
        prog="mailroom",
        description="HEY's Screener for Fastmail (JMAP + CardDAV).",
        epilog="\n\n".join(textwrap.fill(text, 79) for text in (EPILOG, EXIT_CODES)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_version_action(), help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, text) in COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text, epilog=EPILOG)
        add_arguments = _ARGUMENTS.get(name)
        if add_arguments is not None:
            add_arguments(command)
    return parser


def _apply_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--apply", action="store_true", help="make the changes (default: only show the plan)"
    )


def _reset_arguments(reset: argparse.ArgumentParser) -> None:
    _apply_argument(reset)
    reset.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (for scripts)"
    )


def _status_arguments(status: argparse.ArgumentParser) -> None:
    status.add_argument(
        "--supervisor-socket",
        metavar="PATH",
        help="ask the supervisord on this control socket (a system one running the "
        "deploy snippet's mailroom group) instead of looking in the usual places",
    )


def _config_arguments(config: argparse.ArgumentParser) -> None:
    which = config.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--example", action="store_true", help="print the documented example config.yaml"
    )
    which.add_argument(
        "--has-account",
        action="store_true",
        help="exit 0 when a JMAP token is set (environment or ./.env), else 1",
    )


def _completion_arguments(completion: argparse.ArgumentParser) -> None:
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))


def _demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--once", action="store_true", help="show one triage, then stop")
    actions = demo.add_subparsers(
        dest="demo_action", metavar="[label ADDRESS LABEL | send ADDRESS SUBJECT]"
    )
    label = actions.add_parser("label", help="put a triage label on mail in the running demo")
    label.add_argument("address", help="the sender whose newest email gets the label")
    label.add_argument("label", help="the triage label, e.g. @ToFeed")
    send = actions.add_parser("send", help="deliver a new email to the running demo")
    send.add_argument("address", help="the sender of the new email")
    send.add_argument("subject", help="its subject")


def _demo_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"once": True} if args.once else {}
    if args.demo_action == "label":
        options["label"] = (args.address, args.label)
    if args.demo_action == "send":
        options["send_mail"] = (args.address, args.subject)
    return options


# The commands that take arguments of their own, and what adds them.
_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "setup": _apply_argument,
    "reset": _reset_arguments,
    "demo": _demo_arguments,
    "status": _status_arguments,
    "config": _config_arguments,
    "completion": _completion_arguments,
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


def _run_lean(command: str) -> int:
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


def _run(args: argparse.Namespace) -> int:
    module_name, function, _ = COMMANDS[args.command]
    if args.command in LEAN:
        return _run_lean(args.command)
    from mailroom.logs import configure_logging

    if args.command in NO_SETTINGS:
        return _run_without_settings(args)
    from pathlib import Path

    from mailroom.config import load_settings

    settings = load_settings(cwd=Path.cwd(), require=REQUIRES.get(args.command, ()))
    level = settings.log_level
    if args.command in REPORTS and level == "info":  # their table says it; no log between
        level = "warning"
    configure_logging(level, settings.log_format)
    entry = load_entry(module_name, function)
    if args.command == "setup":
        return entry(settings, apply=args.apply)
    if args.command == "reset":
        return entry(settings, apply=args.apply, yes=args.yes)
    if args.command == "status" and args.supervisor_socket:
        return entry(settings, supervisor_socket=Path(args.supervisor_socket))
    return entry(settings)


def _run_without_settings(args: argparse.Namespace) -> int:
    module_name, function, _ = COMMANDS[args.command]
    if args.command == "completion":  # shtab: imported only here (see docs/decisions.md)
        print(load_entry(module_name, function)(build_parser(), shell=args.shell), end="")
        return 0
    if args.command == "config":
        return load_entry(module_name, function)(example=args.example, account=args.has_account)
    from mailroom.logs import configure_logging

    configure_logging("info", "console")  # as the demo's service logs: one format
    return load_entry(module_name, function)(**_demo_options(args))


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
        return guarded(words[0], lambda: _run_lean(words[0]))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    return guarded(args.command, lambda: _run(args))
