"""The name of every file mailroom keeps in its state dir, and of the account locks: once.

The programs share only ``MAILROOM_STATE_DIR``; each file in it is named here and
nowhere else (``paths`` says where the state dir is, ``run.statefiles`` how a status
file is written). Imports nothing, so every layer and every process may import it,
health and the lifeline included.
"""

# The status documents (run.statefiles): one per program, read by health.
LISTENER_FILE = "listener.json"
WORKER_FILE = "worker.json"
# Why `mailroom run` stopped for good (run.fatal), cleared by the next run.
STOPPED_FILE = "stopped.json"
# Senders' failed passes in a row (triage.strikes), kept across restarts.
STRIKES_FILE = "strikes.json"
# The worker's wake socket: the listener sends to it (service.wake).
WAKE_SOCKET = "wake.sock"
# supervisord's control socket and pid file, as the packaged supervisord.conf names them.
SUPERVISOR_SOCKET = "supervisor.sock"
SUPERVISORD_PID = "supervisord.pid"
# The packaged supervisord.conf, copied into the state dir when the package is zipped.
SUPERVISORD_CONF = "supervisord.conf"
# The locks (run.pidlock): one `mailroom run`, one worker per state dir.
RUN_LOCK = "run.lock"
WORKER_LOCK = "worker.lock"
# Each program's last start, for the restart back-off (run.lifeline): ``.worker.starts``.
STARTS_SUFFIX = ".starts"

# The account locks (run.accountlock), outside the state dir: one worker per account.
ACCOUNT_LOCK_DIR = (".local", "state", "mailroom-accounts")  # under the home
ACCOUNT_LOCK_TMP_PREFIX = "mailroom-"  # /tmp/mailroom-<uid> when there is no usable home


def starts_name(program: str) -> str:
    """The restart back-off record of ``program`` (a hidden file)."""
    return f".{program}{STARTS_SUFFIX}"


def account_lock_name(digest: str) -> str:
    """The account lock file for an account's ``digest`` (never a credential)."""
    return f"account-{digest}.lock"
