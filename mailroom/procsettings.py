"""The process settings: the environment read once, each of its rules defined once.

``read_environment`` reads the environment once: the variables, under them the
``MAILROOM_*`` and ``PORT`` lines of ``cwd/.env``, each ``<VARIABLE>_FILE`` asked for,
and the ``MAILROOM_*`` names folded (as pydantic-settings reads them: an empty value is
unset, the last spelling wins). The rules are here and nowhere else: credentials,
URLs, secret files, the port, the state dir, the log level and format. Every
credential read (and any URL's userinfo) is handed to ``mailroom.redaction`` first.

``checked_values`` applies the rules: the good values and one line per problem.
``load_process_settings`` makes the frozen ``ProcessSettings`` the listener runs on;
``config.load_settings`` takes the same values into ``Settings`` (pydantic: the
policy). Health, the lifeline and the FATAL watch use ``state_dir`` and
``health_address``. Precedence: a ``MAILROOM_*`` variable, ``<VARIABLE>_FILE``, a
``cwd/.env`` line, then for the log settings the file named by ``MAILROOM_CONFIG``,
then the defaults. Health imports this module, so it imports nothing costly (no
typing, dataclasses, pathlib or urllib: docs/decisions.md), and its two records are
named tuples, as frozen as a dataclass.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Collection, Mapping

from mailroom import redaction
from mailroom.errors import ConfigError
from mailroom.paths import read_small_file, with_dotenv
from mailroom.redaction import Secret

SECRET_FILE_LIMIT = 16 * 1024
DEFAULT_JMAP_SESSION_URL = "https://api.fastmail.com/jmap/session"
DEFAULT_CARDDAV_URL = "https://carddav.fastmail.com/"
DEFAULT_HEALTH_HOST = "127.0.0.1"
DEFAULT_HEALTH_PORT = 8080
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
# The settings read from the environment only (never from the config file).
ENV_ONLY = {
    **CREDENTIAL_VARIABLES,
    "jmap_session_url": "MAILROOM_JMAP_SESSION_URL",
    "carddav_url": "MAILROOM_CARDDAV_URL",
    "state_dir": "MAILROOM_STATE_DIR",
    "health_host": "MAILROOM_HEALTH_HOST",
    "health_port": "MAILROOM_HEALTH_PORT",
}
_LOGS = {"log_level": LOG_LEVELS, "log_format": LOG_FORMATS}


class Environment(namedtuple("Environment", ("variables", "values", "sources", "problems"))):
    """The environment as read once. ``variables``: every variable as given, ``.env``
    lines under them; ``values``: the ``MAILROOM_*`` ones by upper-case name, empty ones
    dropped, each ``*_FILE`` read in; ``sources``: the variable a value came from where it
    is not its own (``MAILROOM_JMAP_TOKEN_FILE``, or a spelling such as
    ``mailroom_jmap_token``); ``problems``: what could not be read."""

    __slots__ = ()

    variables: Mapping[str, str]
    values: Mapping[str, str]
    sources: Mapping[str, str]
    problems: tuple[str, ...]

    def source(self, name: str) -> str:
        """The variable ``name`` was read from: its own, its ``_FILE``, or as spelt."""
        return self.sources.get(name, name)


class ProcessSettings(
    namedtuple(
        "ProcessSettings",
        "state_dir jmap_session_url jmap_token health_host health_port log_level log_format",
    )
):
    """What every process is told, checked; the token never shows (``Secret``)."""

    __slots__ = ()

    state_dir: str
    jmap_session_url: str
    jmap_token: Secret | None
    health_host: str
    health_port: int
    log_level: str
    log_format: str


# -- reading ----------------------------------------------------------------------------


def read_environment(
    environ: Mapping[str, str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    secrets: Collection[str] = (),
) -> Environment:
    """The environment (default os.environ), over ``cwd/.env`` when ``cwd`` is given,
    with the ``<VARIABLE>_FILE`` of each credential named in ``secrets`` read in."""
    variables = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    if cwd is not None:
        try:
            variables = with_dotenv(variables, cwd)
        except ConfigError as exc:
            problems += exc.problems
    values: dict[str, str] = {}
    sources: dict[str, str] = {}  # the spelling given, where it is not the upper-case one
    for key, value in variables.items():
        name = key.upper()
        if name.startswith("MAILROOM_") and value != "":
            values[name] = value
            sources.pop(name, None)
            if key != name:
                sources[name] = key
    for var in (CREDENTIAL_VARIABLES[name] for name in secrets):
        problems += _read_secret_file(var, values, sources)
    return Environment(variables, values, sources, tuple(problems))


def _read_secret_file(var: str, values: dict[str, str], sources: dict[str, str]) -> list[str]:
    """``var`` from the file ``{var}_FILE`` names, when set, into ``values`` (its one final
    newline is the file's, not the secret's); the problems."""
    path = values.pop(f"{var}_FILE", "")
    if not path:
        return []
    if var in values:
        return [f"{var} and {var}_FILE are both set; keep one"]
    try:
        text = read_small_file(path, SECRET_FILE_LIMIT, what=f"{var}_FILE")
    except FileNotFoundError:
        return [f"{var}_FILE names {path}, which does not exist; fix the path"]
    except ConfigError as exc:
        return exc.problems
    values[var] = text.removesuffix("\n").removesuffix("\r")
    sources[var] = f"{var}_FILE"
    return []


# -- the rules --------------------------------------------------------------------------


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
    from urllib.parse import urlsplit  # here: health checks no URL (0.4 MiB)

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


def missing_credentials(values: Mapping[str, object], wanted: Collection[str]) -> list[str]:
    """One line per credential in ``wanted`` that ``values`` lacks (or holds only blanks)."""
    return [
        f"{var} is not set; set it (or {var}_FILE) to {CREDENTIAL_HINTS[name]}"
        for name, var in CREDENTIAL_VARIABLES.items()
        if name in wanted and not _present(values.get(name))
    ]


def _present(value: object) -> bool:
    if isinstance(value, Secret):
        value = value.get_secret_value()
    return isinstance(value, str) and bool(value.strip())


def parse_port(text: str, source: str) -> int:
    """A TCP port number (0-65535), else ConfigError naming ``source``."""
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) > 65535:
        raise ConfigError([f"{source}: {value[:20]!r} is not a port number; use 0-65535"])
    return int(value)


def health_address(env: Environment) -> tuple[str, int]:
    """(host, port): MAILROOM_HEALTH_PORT, else PORT (set by most platforms), else 8080;
    ConfigError naming the variable for a port that is not one."""
    host = env.values.get("MAILROOM_HEALTH_HOST") or DEFAULT_HEALTH_HOST
    if "MAILROOM_HEALTH_PORT" in env.values:
        return host, parse_port(env.values["MAILROOM_HEALTH_PORT"], "MAILROOM_HEALTH_PORT")
    if env.variables.get("PORT"):
        return host, parse_port(env.variables["PORT"], "PORT")
    return host, DEFAULT_HEALTH_PORT


def default_state_dir(variables: Mapping[str, str]) -> str:
    """``$XDG_STATE_HOME/mailroom``, else ``~/.local/state/mailroom`` (never the cwd)."""
    xdg = variables.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "mailroom")
    home = variables.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "state", "mailroom")


def state_dir(env: Environment) -> str:
    """``MAILROOM_STATE_DIR`` (``~`` expanded) when set, else the default; made absolute."""
    value = os.path.expanduser(env.values.get("MAILROOM_STATE_DIR", ""))
    value = value or default_state_dir(env.variables)
    return value if os.path.isabs(value) else os.path.join(os.getcwd(), value)


def state_dir_problem(path: str) -> str | None:
    if os.path.exists(path) and not os.path.isdir(path):
        return f"MAILROOM_STATE_DIR: {path} is not a directory; name one"
    return None


def choice_problem(where: str, value: object, choices: tuple[str, ...]) -> str | None:
    """None when ``value`` (any case, spaces around) is one of ``choices``, else the line."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text in choices:
        return None
    quoted = [repr(c) for c in choices]
    expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    shown = isinstance(value, str | int | float | bool) and len(repr(value)) <= 60
    return f"{where}: Input should be {expected}" + (f" (got {value!r})" if shown else "")


def remember_secrets(values: Mapping[str, str]) -> None:
    """Hand every credential (and URL userinfo) to redaction before anything can print it."""
    redaction.remember(*(values.get(n) for n in SECRETS))
    for name in URLS:
        text = values.get(name, "")
        if "@" in text:
            from urllib.parse import urlsplit  # here: only a URL with an @ is looked into

            try:
                userinfo = urlsplit(text).netloc.rpartition("@")[0]
            except ValueError:  # not a URL: refused by a line that does not show it
                continue
            redaction.remember(userinfo, *userinfo.split(":", 1))
    redaction.remember_basic(values.get("carddav_username"), values.get("carddav_password"))


# -- the values, checked -----------------------------------------------------------------


def checked_values(
    env: Environment,
    *,
    require: Collection[str] = (),
    from_file: Mapping[str, object] | None = None,
    config: str = "",
) -> tuple[dict[str, object], list[str]]:
    """The settings the environment holds (``ENV_ONLY``), and the log settings from it
    or from the config file's ``from_file`` (read from ``config``), each checked: the
    good values by field name (a credential as ``Secret``), and one line per problem
    (besides ``env.problems``, the caller's to report first). A value with a problem is
    left out."""
    raw = {name: env.values[var] for name, var in ENV_ONLY.items() if var in env.values}
    remember_secrets(raw)
    values, problems = _checked_credentials_and_urls(env, raw)
    problems[:0] = missing_credentials(raw, require)
    folder = state_dir(env)
    if problem := state_dir_problem(folder):
        problems.append(problem)
    else:
        values["state_dir"] = folder
    try:
        values["health_host"], values["health_port"] = health_address(env)
    except ConfigError as exc:
        problems += exc.problems
    for name, choices in _LOGS.items():
        var = f"MAILROOM_{name.upper()}"
        value: object
        if var in env.values:
            value, where = env.values[var], var
        elif from_file and name in from_file:
            value, where = from_file[name], f"{config}: {name}"
        else:
            continue
        if problem := choice_problem(where, value, choices):
            problems.append(problem)
        else:
            values[name] = str(value).strip().lower()
    return values, problems


def _checked_credentials_and_urls(
    env: Environment, raw: Mapping[str, str]
) -> tuple[dict[str, object], list[str]]:
    """The credentials (the secret ones as ``Secret``) and URLs (stripped) of ``raw``
    that pass their rule, and a line for each that does not."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, text in raw.items():
        var = env.source(ENV_ONLY[name])
        if name in CREDENTIAL_VARIABLES:
            problem = credential_problem(var, text)
            value: object = Secret(text) if name in SECRETS else text
        elif name in URLS:
            problem, value = url_problem(var, text), text.strip()
        else:
            continue
        if problem:
            problems.append(problem)
        else:
            values[name] = value
    return values, problems


def load_process_settings(
    environ: Mapping[str, str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    require: Collection[str] = ("jmap_token",),
) -> ProcessSettings:
    """The process settings from the environment (default os.environ), ``cwd/.env`` when
    ``cwd`` is given and, for the log settings, MAILROOM_CONFIG's file; ConfigError lists
    every problem. Only what it reads is checked: the worker checks the rest."""
    env = read_environment(environ, cwd=cwd, secrets=("jmap_token",))
    from_file: dict[str, object] = {}
    config = env.values.get("MAILROOM_CONFIG", "")
    problems: list[str] = []  # the config file's
    if config:
        from mailroom.config_input import read_yaml  # PyYAML: only when there is a file

        try:
            from_file = read_yaml(config)
        except ConfigError as exc:
            problems += exc.problems
    values, found = checked_values(env, require=require, from_file=from_file, config=config)
    problems = [*env.problems, *problems, *found]
    if problems:
        raise ConfigError(problems)
    return process_settings(values)


def process_settings(values: Mapping[str, object]) -> ProcessSettings:
    """The record of ``checked_values``' good values (the defaults for what they lack):
    what the listener runs on, and what ``config.Settings`` embeds."""
    token = values.get("jmap_token")
    port = values.get("health_port", DEFAULT_HEALTH_PORT)
    assert isinstance(token, Secret | None)
    assert isinstance(port, int)
    folder = values.get("state_dir")
    return ProcessSettings(
        state_dir=str(folder) if folder is not None else state_dir(read_environment()),
        jmap_session_url=str(values.get("jmap_session_url", DEFAULT_JMAP_SESSION_URL)),
        jmap_token=token,
        health_host=str(values.get("health_host", DEFAULT_HEALTH_HOST)),
        health_port=port,
        log_level=str(values.get("log_level", "info")),
        log_format=str(values.get("log_format", "auto")),
    )
