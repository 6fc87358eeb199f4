"""The commands parsed with argparse (everything but the two lean programs, which
``mailroom.cli.main`` dispatches before this module is imported), and run."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mailroom import cli
from mailroom.cli import COMMANDS, LEAN, guarded, run_lean
from mailroom.version import version

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
REPORTS = ("setup", "check", "reset")  # print their own report: info logs would interleave
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

    class VersionAction(argparse.Action):
        def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

        def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
            print(f"mailroom {version()}")
            parser.exit()

    return VersionAction


def build_parser() -> argparse.ArgumentParser:
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


def _run(args: argparse.Namespace) -> int:
    module_name, function, _ = COMMANDS[args.command]
    if args.command in LEAN:
        return run_lean(args.command)
    from mailroom.logs import configure_logging

    if args.command in NO_SETTINGS:
        return _run_without_settings(args)
    from mailroom.config import load_settings

    settings = load_settings(cwd=Path.cwd(), require=REQUIRES.get(args.command, ()))
    level = settings.log_level
    if args.command in REPORTS and level == "info":  # their table says it; no log between
        level = "warning"
    configure_logging(level, settings.log_format)
    entry = cli.load_entry(module_name, function)
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
        print(cli.load_entry(module_name, function)(build_parser(), shell=args.shell), end="")
        return 0
    if args.command == "config":
        return cli.load_entry(module_name, function)(example=args.example, account=args.has_account)
    from mailroom.logs import configure_logging

    configure_logging("info", "console")  # as the demo's service logs: one format
    return cli.load_entry(module_name, function)(**_demo_options(args))


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` and run the command; its exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    return guarded(args.command, lambda: _run(args))
