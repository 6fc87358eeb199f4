"""Settings: credentials from the environment, the rest from YAML with env overrides.

``load_settings(environ)`` is the one reader of configuration; ``main`` calls it once
and passes the frozen ``Settings`` down. Precedence, highest first: a ``MAILROOM_*``
variable (``MAILROOM_POLL_INTERVAL=30`` overrides ``poll_interval``), the YAML file
named by ``MAILROOM_CONFIG``, the defaults. Credentials, endpoints, ``state_dir`` and
the health address come from the environment only (``ENV_ONLY``), so that
``mailroom health``, which reads no YAML, sees what the other processes see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

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
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError
from pydantic_settings import PydanticBaseSettingsSource as Source

from mailroom.categories import (  # re-exported: config is where callers look
    DEFAULT_CATEGORIES,
    Category,
    ContactType,
    category,
    category_problems,
    derived_fields,
    expand_category,
)
from mailroom.errors import ConfigError
from mailroom.service.paths import default_state_dir  # the one default, shared with health

__all__ = [
    "DEFAULT_CATEGORIES",
    "ENV_ONLY",
    "Category",
    "ContactType",
    "Settings",
    "category",
    "category_problems",
    "default_state_dir",
    "derived_fields",
    "expand_category",
    "load_settings",
]

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

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Categories = tuple[Annotated[Category, BeforeValidator(expand_category)], ...]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


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
    poll_interval: float = Field(60.0, gt=0)
    debounce_seconds: float = Field(3.0, ge=0)
    state_dir: Annotated[Path, AfterValidator(lambda p: p.expanduser().absolute())] = Field(
        default_factory=lambda: default_state_dir(os.environ)
    )
    health_host: Name = "127.0.0.1"
    health_port: int = Field(8080, ge=0, le=65535)
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
        """The category, then its parent, grandparent ... (validation rules out cycles)."""
        by_name = {c.name: c for c in self.categories}
        found: list[Category] = []
        name: str | None = category_name
        while name is not None:
            if name not in by_name:
                raise KeyError(f"no category named {name!r}")
            found.append(by_name[name])
            name = by_name[name].parent
        return tuple(found)

    def category_for_label(self, label: str) -> Category | None:
        return next((c for c in self.categories if c.label == label), None)

    def require_credentials(self) -> None:
        """Raise ConfigError naming every missing credential variable and what goes in it."""
        missing = [
            f"{ENV_ONLY[field]} is not set; set it to {what}"
            for field, what in _CREDENTIALS.items()
            if not _filled(getattr(self, field))
        ]
        if missing:
            raise ConfigError(missing)


def _filled(value: SecretStr | str | None) -> bool:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return bool(text and text.strip())


# -- loading ---------------------------------------------------------------------------


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Field values from MAILROOM_* (and PORT), and which variable each came from."""
    try:
        values = dict(_EnvironSource(environ)())
    except SettingsError as exc:
        field = str(exc).split('"')[1] if '"' in str(exc) else "categories"
        raise ConfigError(
            [
                f"MAILROOM_{field.upper()}: not valid JSON; write a JSON list such as "
                '["Feed", {"name": "Jail", "add_to_inbox": false}], or set it in the config file'
            ]
        ) from exc
    sources = {field: f"MAILROOM_{field.upper()}" for field in values}
    if "health_port" not in values and environ.get("PORT"):
        values["health_port"], sources["health_port"] = environ["PORT"], "PORT"
    return values, sources


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """The problem and its position, never the offending text (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"


def _read_yaml(path_text: str) -> dict[str, Any]:
    path = Path(path_text).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [
                f"MAILROOM_CONFIG names {path}, which does not exist; create it "
                "(see config.yaml.example) or unset MAILROOM_CONFIG to use the defaults"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            [f"cannot read the config file {path} ({reason}); make it a readable UTF-8 file"]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({_yaml_reason(exc)}); fix it"]) from exc
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
    field = str(loc[0]) if loc else ""
    where = sources[field] + _key_path(loc[1:]) if field in sources else _key_path(loc)
    prefix = "" if field in sources else f"{config}: "
    return [f"{prefix}{where}: {_what(err)}"]


def _problems(
    exc: ValidationError, values: Mapping[str, Any], sources: Mapping[str, str], config: str
) -> list[str]:
    """One line per pydantic error, plus the category rules if pydantic never ran them."""
    errors = exc.errors()
    lines = [line for err in errors for line in _describe(err, sources, config)]
    if not any(e["type"] == "category_rules" or e["loc"][:1] == ("categories",) for e in errors):
        raw = values.get("categories", DEFAULT_CATEGORIES)
        lines += category_problems(TypeAdapter(Categories).validate_python(raw))
    return lines


_FILE_KEYS = [name for name in Settings.model_fields if name not in ENV_ONLY]


def _file_values(from_file: Mapping[Any, Any], config: str) -> tuple[dict[str, Any], list[str]]:
    """The keys the file may set, and one problem per key it may not."""
    problems = [
        f"{config}: {key} is not read from the config file; set {ENV_ONLY[key]} "
        "in the environment instead"
        if key in ENV_ONLY
        else f"{config}: {key}: unknown key; expected one of: {', '.join(_FILE_KEYS)}"
        for key in from_file
        if key not in _FILE_KEYS
    ]
    return {k: v for k, v in from_file.items() if k in _FILE_KEYS}, problems


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment (default os.environ) and MAILROOM_CONFIG; ConfigError lists
    every problem found, one line each."""
    environ = os.environ if environ is None else environ
    config = environ.get("MAILROOM_CONFIG", "")
    from_file, problems = _file_values(_read_yaml(config) if config else {}, config)
    from_env, sources = _env_values(environ)
    values = from_file | from_env
    values.setdefault("state_dir", default_state_dir(environ))
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems += _problems(exc, values, sources, config or "config")
    if problems:
        raise ConfigError(problems)
    return settings
