"""Settings: credentials from the environment, the rest from YAML with env overrides.

``load_settings(environ)`` is the one reader of configuration; ``main`` calls it once
and passes the frozen ``Settings`` down. Precedence, highest first: a ``MAILROOM_*``
variable (``MAILROOM_POLL_INTERVAL=30`` overrides ``poll_interval``), a line of
``.env`` in the working directory (when ``cwd`` is given), the YAML file named by
``MAILROOM_CONFIG``, the defaults. Credentials, endpoints, ``state_dir`` and the
health address come from the environment only (``ENV_ONLY``), so that
``mailroom health``, which reads no YAML, sees what the other processes see; a
credential may instead be read from the file named by ``<VARIABLE>_FILE``.

Every problem is found in one round (``ConfigError.problems``, one line each), and
every credential read is handed to ``mailroom.redaction`` so no output can show it.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings import PydanticBaseSettingsSource as Source

from mailroom import redaction
from mailroom.categories import DEFAULT_CATEGORIES, Category, category_problems, chain
from mailroom.categories import expand_category as _expand
from mailroom.errors import ConfigError
from mailroom.paths import (
    DEFAULT_HEALTH_HOST,
    DEFAULT_HEALTH_PORT,
    default_state_dir,
    read_small_file,
    with_dotenv,
)

__all__ = ["ENV_ONLY", "Credentials", "Settings", "load_settings"]

ENV_ONLY = {
    "jmap_token": "MAILROOM_JMAP_TOKEN",
    "jmap_session_url": "MAILROOM_JMAP_SESSION_URL",
    "carddav_url": "MAILROOM_CARDDAV_URL",
    "carddav_username": "MAILROOM_CARDDAV_USERNAME",
    "carddav_password": "MAILROOM_CARDDAV_PASSWORD",
    "state_dir": "MAILROOM_STATE_DIR",
    "health_host": "MAILROOM_HEALTH_HOST",
    "health_port": "MAILROOM_HEALTH_PORT",
}
_SECRETS = frozenset({"jmap_token", "carddav_password"})
_CREDENTIALS = {
    "jmap_token": "an API token with read-write Email access "
    "(Fastmail: Settings > Privacy & Security > API tokens)",
    "carddav_username": "the account's login name (e.g. you@fastmail.com)",
    "carddav_password": "an app password with Contacts (CardDAV) access "
    "(Fastmail: Settings > Privacy & Security > App passwords)",
}
_URLS = ("jmap_session_url", "carddav_url")
CONFIG_FILE_LIMIT = 256 * 1024  # bytes; 2,000 categories written out take about 100 KB
SECRET_FILE_LIMIT = 16 * 1024
VARIABLE_LIMIT = 256 * 1024
NESTING_LIMIT = 16  # the config's deepest real nesting is 3 (categories, a category, a key)
ALIAS_LIMIT = 100
# Variables mailroom's tools read (not settings): no "unknown variable" warning.
OTHER_VARIABLES = ("MAILROOM_CONFIG", "MAILROOM_VENV", "MAILROOM_DEMO_", "MAILROOM_TEST_")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Categories = tuple[Annotated[Category, BeforeValidator(_expand)], ...]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Credentials:
    """The three credentials, checked and unwrapped; never shown by ``repr``."""

    jmap_token: str = field(repr=False)
    carddav_username: str
    carddav_password: str = field(repr=False)


class Settings(BaseSettings):
    """Everything mailroom is told, validated and frozen. Secrets are SecretStr."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_", env_ignore_empty=True, frozen=True, extra="forbid"
    )

    jmap_token: SecretStr | None = None
    jmap_session_url: Name = "https://api.fastmail.com/jmap/session"
    carddav_url: Name = "https://carddav.fastmail.com/"
    carddav_username: str | None = None
    carddav_password: SecretStr | None = None
    screener_mailbox: Name = "Screener"
    error_label: Name = "@MailroomError"
    warning_label: Name = "@MailroomWarning"
    warnings_enabled: bool = True
    provenance_group: Name = "Mailroom"
    categories: Categories = DEFAULT_CATEGORIES
    poll_interval: float = Field(60.0, ge=1, le=86400, allow_inf_nan=False)
    debounce_seconds: float = Field(3.0, ge=0, le=600, allow_inf_nan=False)
    state_dir: Annotated[Path, AfterValidator(lambda p: p.expanduser().absolute())] = Field(
        default_factory=lambda: default_state_dir(os.environ)
    )
    health_host: Name = DEFAULT_HEALTH_HOST
    health_port: int = Field(DEFAULT_HEALTH_PORT, ge=0, le=65535)
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = (
        "info"
    )
    log_format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: Source,
        env_settings: Source,
        dotenv_settings: Source,
        file_secret_settings: Source,
    ) -> tuple[Source, ...]:
        """``Settings(...)`` takes its arguments only: load_settings reads the environment."""
        return (init_settings,)

    @model_validator(mode="after")
    def _check_categories(self) -> Settings:
        problems = category_problems(self.categories)
        if problems:
            ctx = {"problems": tuple(problems), "summary": "; ".join(problems)}
            raise PydanticCustomError("category_rules", "{summary}", ctx)
        return self

    def chain(self, category_name: str) -> tuple[Category, ...]:
        """The category, then its parent, grandparent ... (KeyError for an unknown name)."""
        return chain(self.categories, category_name)

    def require_credentials(self) -> None:
        """Raise ConfigError naming every missing credential variable and what goes in it."""
        problems = missing_credentials(
            {f: getattr(self, f) for f in _CREDENTIALS}, tuple(_CREDENTIALS)
        )
        if problems:
            raise ConfigError(problems)

    def credentials(self) -> Credentials:
        """The three credentials, or ConfigError naming each one missing."""
        self.require_credentials()
        assert self.jmap_token is not None
        assert self.carddav_username is not None
        assert self.carddav_password is not None
        return Credentials(
            self.jmap_token.get_secret_value(),
            self.carddav_username,
            self.carddav_password.get_secret_value(),
        )


def missing_credentials(values: Mapping[str, Any], wanted: Collection[str]) -> list[str]:
    """One line per credential in ``wanted`` that ``values`` lacks."""
    return [
        f"{ENV_ONLY[name]} is not set; set it (or {ENV_ONLY[name]}_FILE) to {what}"
        for name, what in _CREDENTIALS.items()
        if name in wanted and not _filled(values.get(name))
    ]


def _filled(value: SecretStr | str | None) -> bool:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return bool(text and text.strip())


# -- the environment: .env, *_FILE, unknown names ----------------------------------------


def known_variables() -> list[str]:
    names = [f"MAILROOM_{name.upper()}" for name in Settings.model_fields]
    return [*names, *(f"{ENV_ONLY[c]}_FILE" for c in _CREDENTIALS)]


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """A line per MAILROOM_* variable mailroom does not read, naming the closest one."""
    known = known_variables()
    lines = []
    for name in sorted(environ):
        if not name.startswith("MAILROOM_") or name in known or name.startswith(OTHER_VARIABLES):
            continue
        short = {k.removeprefix("MAILROOM_"): k for k in known}
        close = difflib.get_close_matches(name.removeprefix("MAILROOM_"), short, n=1, cutoff=0.6)
        hint = f"; did you mean {short[close[0]]}?" if close else "; it is ignored"
        lines.append(f"{name} is not a mailroom setting{hint}")
    return lines


def _from_files(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """``environ`` with each ``<CREDENTIAL>_FILE`` read in, which variable each came
    from, and the problems. A file's one final newline is the file's, not the secret's."""
    env, sources, problems = dict(environ), {}, []
    for name in _CREDENTIALS:
        var = ENV_ONLY[name]
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


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


def _json_problem(var: str, text: str) -> str | None:
    hint = (
        'write a JSON list such as ["Feed", {"name": "Jail", "add_to_inbox": false}], '
        "or set it in the config file"
    )
    if len(text) > VARIABLE_LIMIT:
        return f"{var}: longer than {VARIABLE_LIMIT:,} characters; {hint}"
    try:
        json.loads(text)
    except RecursionError:
        return f"{var}: nested too deeply; {hint}"
    except ValueError:
        return f"{var}: not valid JSON; {hint}"
    return None


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Field values from MAILROOM_* (and PORT), which variable each came from, problems."""
    bad = {
        var: problem
        for var in ("MAILROOM_CATEGORIES",)
        if environ.get(var) and (problem := _json_problem(var, environ[var]))
    }
    values = dict(_EnvironSource({k: v for k, v in environ.items() if k not in bad})())
    sources = {name: f"MAILROOM_{name.upper()}" for name in values}
    if "health_port" not in values and environ.get("PORT"):
        values["health_port"], sources["health_port"] = environ["PORT"], "PORT"
    return values, sources, list(bad.values())


# -- the config file ---------------------------------------------------------------------


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """The problem and its position, never the offending text (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"


def _check_shape(text: str, path: Path) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before anything is built."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > NESTING_LIMIT:
                raise ConfigError(
                    [f"{path}: nested more than {NESTING_LIMIT} levels deep; flatten it"]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > ALIAS_LIMIT:
                raise ConfigError([f"{path}: more than {ALIAS_LIMIT} aliases (*name); expand them"])


def _read_yaml(path_text: str) -> dict[str, Any]:
    path = Path(path_text).expanduser()
    try:
        text = read_small_file(path, CONFIG_FILE_LIMIT, what="config file")
        _check_shape(text, path)
        data = yaml.load(text, Loader=yaml.CSafeLoader)  # the C safe loader
    except FileNotFoundError:
        raise ConfigError(
            [
                f"MAILROOM_CONFIG names {path}, which does not exist; create it "
                "(see config.yaml.example) or unset MAILROOM_CONFIG to use the defaults"
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({_yaml_reason(exc)}); fix it"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"{path}: the top level must be a mapping of keys such as `poll_interval: 60`, "
                f"not a {type(data).__name__}"
            ]
        )
    return data


_FILE_KEYS = [name for name in Settings.model_fields if name not in ENV_ONLY]


def _file_values(from_file: Mapping[Any, Any], config: str) -> tuple[dict[str, Any], list[str]]:
    """The keys the file may set, and one problem per key it may not."""
    problems = [
        f"{config}: {key} is not read from the config file; set {ENV_ONLY[key]} "
        "in the environment instead"
        if key in ENV_ONLY
        else f"{config}: {str(key)[:60]}: unknown key; expected one of: {', '.join(_FILE_KEYS)}"
        for key in from_file
        if key not in _FILE_KEYS
    ]
    return {k: v for k, v in from_file.items() if k in _FILE_KEYS}, problems


# -- checks pydantic does not make ---------------------------------------------------------


def _credential_problem(var: str, text: str) -> str | None:
    """Whitespace around a credential is refused, not stripped: it is a paste accident."""
    if text != text.strip():
        return (
            f"{var} has a space or line break at its start or end (a common paste or "
            "`echo >` accident); remove it"
        )
    if not all(" " < ch < "\x7f" for ch in text):
        return f"{var} holds a character that is not printable ASCII; paste it again"
    return None


def _url_problem(var: str, text: str) -> str | None:
    try:
        url = httpx.URL(text)
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(url.port)
    except (httpx.InvalidURL, TypeError, ValueError):
        return f"{var} is not a URL; write it like https://host/path"
    if url.userinfo:
        return (
            f"{var} holds a user name or password before the host (user:pass@); remove it, "
            "credentials go in MAILROOM_JMAP_TOKEN and MAILROOM_CARDDAV_USERNAME/PASSWORD"
        )
    if url.scheme not in ("http", "https") or not url.host:
        return f"{var} must be an http(s) URL with a host, like https://host/path"
    return None


def _raw_problems(values: dict[str, Any], sources: Mapping[str, str]) -> list[str]:
    """Check credentials, URLs and the state dir as given; drop each bad value."""
    problems: dict[str, str | None] = {}
    for name in ("jmap_token", "carddav_username", "carddav_password"):
        if isinstance(values.get(name), str):
            problems[name] = _credential_problem(sources.get(name, name), values[name])
    for name in _URLS:
        if isinstance(values.get(name), str):
            problems[name] = _url_problem(sources.get(name, name), values[name])
    state = values.get("state_dir")
    if isinstance(state, str | Path) and os.path.exists(state) and not os.path.isdir(state):
        problems["state_dir"] = f"MAILROOM_STATE_DIR: {state} is not a directory; name one"
    for name in [n for n, p in problems.items() if p]:
        del values[name]
    return [p for p in problems.values() if p]


def _remember_secrets(values: Mapping[str, Any]) -> None:
    """Hand every credential (and URL userinfo) to redaction before anything can print it."""
    redaction.remember(*(values.get(n) for n in _SECRETS if isinstance(values.get(n), str)))
    for name in _URLS:
        text = values.get(name)
        if isinstance(text, str) and "@" in text:
            userinfo = text.split("//", 1)[-1].split("/", 1)[0].rpartition("@")[0]
            redaction.remember(userinfo, *userinfo.split(":", 1))
    user, password = values.get("carddav_username"), values.get("carddav_password")
    if isinstance(user, str) and isinstance(password, str):
        redaction.remember_basic(user, password)


# -- validation errors as lines ----------------------------------------------------------


def _key_path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _what(err: ErrorDetails) -> str:
    """What is wrong and what is expected; the offending value only when it is harmless."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        keys = Category.__dataclass_fields__ if "categories" in loc else _FILE_KEYS
        return f"unknown key; expected one of: {', '.join(keys)}"
    if kind == "dataclass_type":
        return "a category must be a name, or a mapping with at least `name:`"
    if kind == "missing":
        return "required"
    shown = isinstance(value, str | int | float | bool) and len(repr(value)) <= 60
    secret = bool(loc) and loc[0] in _SECRETS
    return err["msg"] + (f" (got {value!r})" if shown and not secret else "")


def _describe(err: ErrorDetails, sources: Mapping[str, str], config: str) -> list[str]:
    if err["type"] == "category_rules":
        return list(err.get("ctx", {})["problems"])
    loc = err["loc"]
    name = str(loc[0]) if loc else ""
    where = sources[name] + _key_path(loc[1:]) if name in sources else _key_path(loc)
    prefix = "" if name in sources else f"{config}: "
    return [f"{prefix}{where}: {_what(err)}"]


def _valid_categories(raw: Any) -> list[Category]:
    """The categories that pass on their own, so the rules run beside field errors."""
    items = raw if isinstance(raw, list | tuple) else []
    adapter = TypeAdapter(Annotated[Category, BeforeValidator(_expand)])
    found = []
    for item in items:
        try:
            found.append(adapter.validate_python(item))
        except ValidationError:
            continue
    return found


def _problems(
    exc: ValidationError, values: Mapping[str, Any], sources: Mapping[str, str], config: str
) -> list[str]:
    """One line per pydantic error, plus the category rules if pydantic never ran them."""
    errors = exc.errors()
    lines = [line for err in errors for line in _describe(err, sources, config)]
    if not any(e["type"] == "category_rules" for e in errors):
        raw = values.get("categories", DEFAULT_CATEGORIES)
        valid = _valid_categories(raw)
        if valid or not raw:
            lines += category_problems(valid)
    return lines


def _say_warning(line: str) -> None:
    import sys

    print(f"config warning: {line}", file=sys.stderr)


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    require: Collection[str] = (),
    warn: Callable[[str], None] = _say_warning,
) -> Settings:
    """Read the environment (default os.environ), ``cwd/.env`` when ``cwd`` is given, and
    MAILROOM_CONFIG. ``require`` names credentials that must be set. ConfigError lists
    every problem found, one line each; ``warn`` gets each unknown MAILROOM_* variable."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    try:
        environ = with_dotenv(environ, cwd) if cwd is not None else environ
    except ConfigError as exc:
        problems += exc.problems
    for line in unknown_variable_warnings(environ):
        warn(line)
    environ, file_sources, file_problems = _from_files(environ)
    problems += file_problems
    config = environ.get("MAILROOM_CONFIG", "")
    try:
        from_file, key_problems = _file_values(_read_yaml(config) if config else {}, config)
    except ConfigError as exc:
        from_file, key_problems = {}, exc.problems
    from_env, sources, env_problems = _env_values(environ)
    sources |= file_sources
    values = from_file | from_env
    _remember_secrets(values)
    problems += key_problems + env_problems + missing_credentials(values, require)
    problems += _raw_problems(values, sources)
    values.setdefault("state_dir", default_state_dir(environ))
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems += _problems(exc, values, sources, config or "config")
    if problems:
        raise ConfigError(problems)
    return settings
