"""Settings: the policy (categories, labels, intervals, routing) from YAML with env
overrides, over the values every process reads.

``load_settings(environ)`` is the one reader of configuration; ``main`` calls it once
and passes the frozen ``Settings`` down. ``mailroom.procsettings`` reads the environment
(``.env``, ``*_FILE``, names folded) and checks what every process reads: credentials,
endpoints, ``state_dir`` and the health address (environment only: ``ENV_ONLY``) and the
log settings; ``Settings`` embeds them (``Settings.process``, the record the listener
runs on) and pydantic checks the policy.
Precedence, highest first: a ``MAILROOM_*`` variable (``MAILROOM_POLL_INTERVAL=30``
overrides ``poll_interval``), a credential's ``<VARIABLE>_FILE``, a line of ``.env`` in
the working directory (when ``cwd`` is given), the YAML file named by
``MAILROOM_CONFIG``, the defaults. Every problem is found in one round
(``ConfigError.problems``, one line each), and every credential read is handed to
``mailroom.redaction`` so no output can show it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    InstanceOf,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings import PydanticBaseSettingsSource as Source

from mailroom.categories import DEFAULT_CATEGORIES, Category, category_problems, chain
from mailroom.categories import expand_category as _expand
from mailroom.config_input import json_problem, read_yaml, unknown_variable_warnings
from mailroom.errors import ConfigError
from mailroom.procsettings import (
    CREDENTIAL_VARIABLES,
    DEFAULT_CARDDAV_URL,
    ENV_ONLY,
    Environment,
    ProcessSettings,
    checked_values,
    missing_credentials,
    process_settings,
    read_environment,
)
from mailroom.redaction import Secret

__all__ = ["ENV_ONLY", "Credentials", "Settings", "load_settings"]

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

    # What every process reads (the state dir, the JMAP session URL and token, the
    # health address, the log settings), embedded as procsettings made it; the CardDAV
    # endpoint and credentials (the worker's alone) are checked there too and taken here
    # as they are. The rest is the policy, pydantic's to check.
    process: InstanceOf[ProcessSettings] = Field(default_factory=lambda: process_settings({}))
    carddav_url: str = DEFAULT_CARDDAV_URL
    carddav_username: str | None = None
    carddav_password: SecretStr | None = None
    screener_mailbox: Name = "Screener"
    error_label: Name = "@MailroomError"
    warning_label: Name = "@MailroomWarning"
    warnings_enabled: bool = True
    provenance_group: Name = "Mailroom"
    categories: Categories = DEFAULT_CATEGORIES
    poll_interval: float = Field(60.0, ge=1, le=86400, allow_inf_nan=False)
    debounce_seconds: float = Field(0.5, ge=0, le=600, allow_inf_nan=False)
    # What the worker does with new mail (routing/arrivals.py): judge it and log the
    # misrouted ("audit"), also move it where the routing model puts it ("enforce"), or
    # read no new mail ("off").
    routing: Annotated[Literal["audit", "enforce", "off"], BeforeValidator(_lower)] = "audit"

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

    @property
    def state_dir(self) -> Path:
        return Path(self.process.state_dir)

    @property
    def jmap_session_url(self) -> str:
        return self.process.jmap_session_url

    @property
    def jmap_token(self) -> Secret | None:
        return self.process.jmap_token

    @property
    def health_host(self) -> str:
        return self.process.health_host

    @property
    def health_port(self) -> int:
        return self.process.health_port

    @property
    def log_level(self) -> str:
        return self.process.log_level

    @property
    def log_format(self) -> str:
        return self.process.log_format

    def chain(self, category_name: str) -> tuple[Category, ...]:
        """The category, then its parent, grandparent ... (KeyError for an unknown name)."""
        return chain(self.categories, category_name)

    def require_credentials(self) -> None:
        """Raise ConfigError naming every missing credential variable and what goes in it."""
        values = {name: _reveal(getattr(self, name)) for name in CREDENTIAL_VARIABLES}
        problems = missing_credentials(values, tuple(CREDENTIAL_VARIABLES))
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


def _reveal(value: Secret | SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, Secret | SecretStr) else value


# -- the environment: .env, *_FILE, unknown names ----------------------------------------


def known_variables() -> list[str]:
    names = [f"MAILROOM_{name.upper()}" for name in (*_POLICY_FIELDS, *ProcessSettings._fields)]
    return [*names, *(f"{var}_FILE" for var in CREDENTIAL_VARIABLES.values())]


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


def _policy_values(env: Environment) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The policy's field values from the MAILROOM_* variables (the process settings are
    procsettings' to read), which variable each came from, problems."""
    var, values = "MAILROOM_CATEGORIES", env.values
    problem = json_problem(env.source(var), values[var]) if var in values else None
    given = {k: v for k, v in values.items() if not (problem and k == var)}
    given.pop("MAILROOM_PROCESS", None)  # a field of ours, not a variable
    found = _EnvironSource(given)()
    policy = {k: v for k, v in found.items() if k not in PROCESS_FIELDS}
    sources = {name: f"MAILROOM_{name.upper()}" for name in policy}
    return policy, sources, [problem] if problem else []


# -- the config file ---------------------------------------------------------------------


_POLICY_FIELDS = [name for name in Settings.model_fields if name != "process"]
_FILE_KEYS = [
    *(name for name in _POLICY_FIELDS if name not in ENV_ONLY and name != "routing"),
    "log_level",
    "log_format",
    "routing",
]
PROCESS_FIELDS = (*ENV_ONLY, "log_level", "log_format")


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
    return err["msg"] + (f" (got {value!r})" if shown else "")  # credentials never get here


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
    env = read_environment(environ, cwd=cwd, secrets=CREDENTIAL_VARIABLES)
    for line in unknown_variable_warnings(env.variables, known_variables()):
        warn(line)
    config = env.values.get("MAILROOM_CONFIG", "")
    try:
        from_file, key_problems = _file_values(read_yaml(config) if config else {}, config)
    except ConfigError as exc:
        from_file, key_problems = {}, exc.problems
    process, found = checked_values(env, require=require, from_file=from_file, config=config)
    from_env, sources, env_problems = _policy_values(env)
    problems = [*env.problems, *key_problems, *env_problems, *found]
    values = {k: v for k, v in from_file.items() if k not in PROCESS_FIELDS} | from_env
    values["process"] = process_settings(process)
    values |= {
        k: v.get_secret_value() if isinstance(v, Secret) else v
        for k, v in process.items()
        if k in _POLICY_FIELDS  # the CardDAV endpoint and credentials
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems += _problems(exc, values, sources, config or "config")
    if problems:
        raise ConfigError(problems)
    return settings
