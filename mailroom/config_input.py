"""Configuration input, read and first checked before pydantic sees it.

The config file is read through ``paths.read_small_file`` (a regular file under a
size cap); YAML nesting and aliases are capped from the event stream before any
object is built; JSON in a variable is size-capped and parsed once to catch depth
bombs. Each function returns problem lines (or raises ``ConfigError``); none prints.
The checks of credentials, URLs, secret files and the rest every process reads are in
``mailroom.procsettings``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailroom.errors import ConfigError
from mailroom.paths import read_small_file
from mailroom.redaction import clip

if TYPE_CHECKING:
    import yaml

CONFIG_FILE_LIMIT = 256 * 1024  # bytes; 2,000 categories written out take about 100 KB
VARIABLE_LIMIT = 256 * 1024
NESTING_LIMIT = 16  # the config's deepest real nesting is 3 (categories, a category, a key)
ALIAS_LIMIT = 100
# Variables mailroom's tools read (not settings): no "unknown variable" warning.
OTHER_VARIABLES = ("MAILROOM_CONFIG", "MAILROOM_VENV", "MAILROOM_DEMO_", "MAILROOM_TEST_")


def unknown_variable_warnings(environ: Mapping[str, str], known: Sequence[str]) -> list[str]:
    """A line per MAILROOM_* variable mailroom does not read, naming the closest one."""
    lines = []
    for name in sorted(environ):
        if not name.startswith("MAILROOM_") or name in known or name.startswith(OTHER_VARIABLES):
            continue
        short = {k.removeprefix("MAILROOM_"): k for k in known}
        close = difflib.get_close_matches(name.removeprefix("MAILROOM_"), short, n=1, cutoff=0.6)
        hint = f"; did you mean {short[close[0]]}?" if close else "; it is ignored"
        lines.append(f"{name} is not a mailroom setting{hint}")
    return lines


def json_problem(var: str, text: str) -> str | None:
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


# -- the config file ------------------------------------------------------------


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """The problem and its position, never the offending text (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"


def _check_shape(text: str, path: Path) -> None:
    """Refuse deep nesting, alias bombs and duplicate keys from the event stream,
    before anything is built."""
    import yaml

    depth = aliases = 0
    keys = _DuplicateKeys(path)
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        keys.see(event)
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
    if keys.problems:
        raise ConfigError(keys.problems)


class _DuplicateKeys:
    """A key written twice in one mapping (YAML would keep the last one, silently).

    Follows the events: each open mapping remembers its keys (plain scalars, with the
    line they are on) and whether the next node is a key or a value.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open: list[tuple[dict[str, int], list[bool]] | None] = []  # None: a sequence
        self.problems: list[str] = []

    def see(self, event: yaml.Event) -> None:
        import yaml  # loaded by the caller already: a lookup, not a load

        if isinstance(event, yaml.CollectionEndEvent):
            self.open.pop()
            return
        if not isinstance(event, yaml.NodeEvent):
            return
        top = self.open[-1] if self.open else None
        if top is not None:
            seen, expect_key = top
            if expect_key[0] and isinstance(event, yaml.ScalarEvent):
                self._key(seen, event)
            expect_key[0] = not expect_key[0]
        if isinstance(event, yaml.MappingStartEvent):
            self.open.append(({}, [True]))
        elif isinstance(event, yaml.SequenceStartEvent):
            self.open.append(None)

    def _key(self, seen: dict[str, int], event: yaml.ScalarEvent) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if event.value == "<<":  # a merge key may repeat
            return
        if event.value in seen:
            self.problems.append(
                f"{self.path}: the key {clip(event.value, 40)!r} at line {line} is already set "
                f"at line {seen[event.value]} of the same mapping; YAML would silently keep "
                "the last one. Remove one of them"
            )
        else:
            seen[event.value] = line


def read_yaml(path_text: str) -> dict[str, Any]:
    """The config file's mapping. PyYAML is imported here, when MAILROOM_CONFIG names a
    file, not with this module (0.9 MiB in every process that reads settings)."""
    import yaml

    path = Path(path_text).expanduser()
    try:
        text = read_small_file(path, CONFIG_FILE_LIMIT, what="config file")
        _check_shape(text, path)
        data = yaml.load(text, Loader=yaml.CSafeLoader)  # the C safe loader
    except FileNotFoundError:
        raise ConfigError(
            [
                f"MAILROOM_CONFIG names {path}, which does not exist; create it "
                "(`mailroom config --example > config.yaml` writes one) or unset "
                "MAILROOM_CONFIG to use the defaults"
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
