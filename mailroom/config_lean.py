"""Settings read with the standard library only: the checks every reader of settings
applies, and the listener's loader.

The checks are the one definition of each rule, called by ``mailroom.config`` (the
pydantic path every other command takes) and by ``load_listener_settings`` alike:
credentials are printable ASCII with no whitespace at either end, URLs parse, are
http(s) with a host and carry no ``user:pass@``, secret files are regular files
under ``SECRET_FILE_LIMIT``, the state dir is a directory. Every credential read
(and any URL's userinfo) is handed to ``mailroom.redaction`` before it can be printed.

``load_listener_settings`` reads only what `mailroom listen` uses (the JMAP session
URL, the token, the state dir, the log level and format) from the same sources with
the same precedence as ``mailroom.config.load_settings``: a ``MAILROOM_*`` variable
(``<VARIABLE>_FILE`` for the token), a line of ``cwd/.env``, then for the log
settings the YAML file named by ``MAILROOM_CONFIG``, then the defaults. It checks
what it reads and nothing else: the worker reads and validates everything (see
docs/decisions.md). pydantic is never imported here; PyYAML only when
``MAILROOM_CONFIG`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailroom import redaction
from mailroom.errors import ConfigError
from mailroom.paths import default_state_dir, read_small_file, with_dotenv

__all__ = ["ListenerSettings", "load_listener_settings"]

SECRET_FILE_LIMIT = 16 * 1024
DEFAULT_JMAP_SESSION_URL = "https://api.fastmail.com/jmap/session"
DEFAULT_CARDDAV_URL = "https://carddav.fastmail.com/"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
CREDENTIAL_VARIABLES = {
    "jmap_token": "MAILROOM_JMAP_TOKEN",
    "carddav_username": "MAILROOM_CARDDAV_USERNAME",
    "carddav_password": "MAILROOM_CARDDAV_PASSWORD",
}
CREDENTIAL_HINTS = {
    "jmap_token": "an API token with read-write Email access "
    "(Fastmail: Settings > Privacy & Security > API tokens)",
    "carddav_username": "the account's login name (e.g. you@fastmail.com)",
    "carddav_password": "an app password with Contacts (CardDAV) access "
    "(Fastmail: Settings > Privacy & Security > App passwords)",
}
SECRETS = ("jmap_token", "carddav_password")
URLS = ("jmap_session_url", "carddav_url")


# -- the rules ------------------------------------------------------------------------


def credential_problem(var: str, text: str) -> str | None:
    """Whitespace around a credential is refused, not stripped: it is a paste accident."""
    if text != text.strip():
        return (
            f"{var} has a space or line break at its start or end (a common paste or "
            "`echo >` accident); remove it"
        )
    if not all(" " < ch < "\x7f" for ch in text):
        return f"{var} holds a character that is not printable ASCII; paste it again"
    return None


def url_problem(var: str, text: str) -> str | None:
    """None for an http(s) URL with a host and no ``user:pass@``, else what is wrong.
    A space at the end is allowed (the value is then stripped); not at the start."""
    try:
        url = urlsplit(text)
        port = url.port  # ValueError when not a number or out of range
        if port == 0 or not text.isprintable() or text[:1].isspace() or " " in url.netloc:
            raise ValueError(text)
    except ValueError:
        return f"{var} is not a URL; write it like https://host/path"
    if url.username or url.password:
        return (
            f"{var} holds a user name or password before the host (user:pass@); remove it, "
            "credentials go in MAILROOM_JMAP_TOKEN and MAILROOM_CARDDAV_USERNAME/PASSWORD"
        )
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"{var} must be an http(s) URL with a host, like https://host/path"
    return None


def state_dir_problem(path: str | Path) -> str | None:
    if os.path.exists(path) and not os.path.isdir(path):
        return f"MAILROOM_STATE_DIR: {path} is not a directory; name one"
    return None


def missing_credentials(values: Mapping[str, str | None], wanted: Collection[str]) -> list[str]:
    """One line per credential in ``wanted`` that ``values`` lacks (or holds only blanks)."""
    return [
        f"{var} is not set; set it (or {var}_FILE) to {CREDENTIAL_HINTS[name]}"
        for name, var in CREDENTIAL_VARIABLES.items()
        if name in wanted and not (values.get(name) or "").strip()
    ]


def read_secret_files(
    environ: Mapping[str, str], variables: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """``environ`` with each ``<VARIABLE>_FILE`` read in (``variables``: field -> variable),
    the variable each field came from, and the problems. A file's one final newline is
    the file's, not the secret's."""
    env, sources, problems = dict(environ), {}, []
    for name, var in variables.items():
        path = environ.get(f"{var}_FILE", "")
        if not path:
            continue
        if environ.get(var):
            problems.append(f"{var} and {var}_FILE are both set; keep one")
            continue
        try:
            text = read_small_file(Path(path), SECRET_FILE_LIMIT, what=f"{var}_FILE")
        except FileNotFoundError:
            problems.append(f"{var}_FILE names {path}, which does not exist; fix the path")
            continue
        except ConfigError as exc:
            problems += exc.problems
            continue
        env[var] = text.removesuffix("\n").removesuffix("\r")
        sources[name] = f"{var}_FILE"
    return env, sources, problems


def remember_secrets(values: Mapping[str, Any]) -> None:
    """Hand every credential (and URL userinfo) to redaction before anything can print it."""
    redaction.remember(*(values.get(n) for n in SECRETS if isinstance(values.get(n), str)))
    for name in URLS:
        text = values.get(name)
        if isinstance(text, str) and "@" in text:
            userinfo = text.split("//", 1)[-1].split("/", 1)[0].rpartition("@")[0]
            redaction.remember(userinfo, *userinfo.split(":", 1))
    user, password = values.get("carddav_username"), values.get("carddav_password")
    if isinstance(user, str) and isinstance(password, str):
        redaction.remember_basic(user, password)


def raw_problems(values: dict[str, Any], sources: Mapping[str, str]) -> list[str]:
    """Check credentials, URLs and the state dir as given; drop each bad value."""
    problems: dict[str, str | None] = {}
    for name in CREDENTIAL_VARIABLES:
        if isinstance(values.get(name), str):
            problems[name] = credential_problem(sources.get(name, name), values[name])
    for name in URLS:
        if isinstance(values.get(name), str):
            problems[name] = url_problem(sources.get(name, name), values[name])
    if isinstance(values.get("state_dir"), str | Path):
        problems["state_dir"] = state_dir_problem(values["state_dir"])
    for name in [n for n, p in problems.items() if p]:
        del values[name]
    return [p for p in problems.values() if p]


# -- the listener's settings ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """What `mailroom listen` is told, checked; the token is never shown by ``repr``."""

    jmap_session_url: str
    jmap_token: str = field(repr=False)
    state_dir: Path
    log_level: str = "info"
    log_format: str = "auto"


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``MAILROOM_*`` values by lower-cased field name, empty ones ignored (as pydantic
    reads them: names are case-insensitive, the last spelling wins)."""
    found = {k.lower(): v for k, v in environ.items() if v != ""}
    return {k.removeprefix("mailroom_"): v for k, v in found.items() if k.startswith("mailroom_")}


def _log_settings(from_env: Mapping[str, str], config: str) -> tuple[dict[str, str], list[str]]:
    """log_level and log_format: the environment over the config file; the problems."""
    from_file: dict[str, Any] = {}
    problems: list[str] = []
    if config:
        from mailroom.config_input import read_yaml  # PyYAML: only when there is a file

        try:
            from_file = read_yaml(config)
        except ConfigError as exc:
            problems += exc.problems
    values = {}
    for name, choices in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS)):
        if name in from_env:
            value, where = from_env[name], f"MAILROOM_{name.upper()}"
        elif name in from_file:
            value, where = from_file[name], f"{config}: {name}"
        else:
            continue
        text = value.strip().lower() if isinstance(value, str) else value
        if text in choices:
            values[name] = text
        else:
            shown = f" (got {value!r})" if isinstance(value, str) and len(value) <= 60 else ""
            problems.append(f"{where}: should be one of {', '.join(choices)}{shown}")
    return values, problems


def load_listener_settings(
    environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> ListenerSettings:
    """The listener's settings from the environment (default os.environ), ``cwd/.env``
    when ``cwd`` is given and MAILROOM_CONFIG; ConfigError lists every problem."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    try:
        environ = with_dotenv(environ, cwd) if cwd is not None else environ
    except ConfigError as exc:
        problems += exc.problems
    token_var = {"jmap_token": CREDENTIAL_VARIABLES["jmap_token"]}
    environ, sources, file_problems = read_secret_files(environ, token_var)
    problems += file_problems
    from_env = _environment(environ)
    values: dict[str, Any] = {
        k: from_env[k] for k in ("jmap_token", "jmap_session_url", "state_dir") if k in from_env
    }
    sources = {k: f"MAILROOM_{k.upper()}" for k in values} | sources
    remember_secrets(values)
    logs, log_problems = _log_settings(from_env, environ.get("MAILROOM_CONFIG", ""))
    problems += log_problems + missing_credentials(values, ("jmap_token",))
    problems += raw_problems(values, sources)
    if problems:
        raise ConfigError(problems)
    state = Path(values["state_dir"]) if "state_dir" in values else default_state_dir(environ)
    return ListenerSettings(
        jmap_session_url=values.get("jmap_session_url", DEFAULT_JMAP_SESSION_URL).strip(),
        jmap_token=values["jmap_token"],
        state_dir=state.expanduser().absolute(),  # as Settings.state_dir's validator does
        **logs,
    )
