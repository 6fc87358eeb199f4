"""`mailroom config`: the packaged example configuration, and whether an account is set.

``--example`` prints ``config.yaml.example`` as it ships inside the package (an
installed mailroom has no checkout to look in): ``mailroom config --example >
config.yaml``. ``--has-account`` answers, by its exit code, whether a JMAP token is
configured, in the environment or in ``./.env`` (read by
``procsettings.read_environment``, the one reader every program uses): `make run`
(scripts/run.sh) runs the service when it is and the demo when it is not.
"""

from __future__ import annotations

import os
from importlib import resources

from mailroom.errors import ConfigError
from mailroom.procsettings import Environment, read_environment

EXAMPLE = "config.yaml.example"
TOKEN_VARIABLES = ("MAILROOM_JMAP_TOKEN", "MAILROOM_JMAP_TOKEN_FILE")
NO_ACCOUNT = 1  # --has-account: no token anywhere (not an error: the demo is the answer)


def example_text() -> str:
    return (resources.files("mailroom") / EXAMPLE).read_text(encoding="utf-8")


def has_account(env: Environment) -> bool:
    """A JMAP token (or its *_FILE) set, not empty, under any spelling of its name."""
    return any(name in env.values for name in TOKEN_VARIABLES)


def main(*, example: bool = False, account: bool = False) -> int:
    if example:
        print(example_text(), end="")
        return 0
    if account:  # a .env open to others is a ConfigError: exit 78, not the demo
        env = read_environment(cwd=os.getcwd())
        if env.problems:
            raise ConfigError(list(env.problems))
        return 0 if has_account(env) else NO_ACCOUNT
    raise AssertionError("the parser requires --example or --has-account")
