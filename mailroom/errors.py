"""Every error mailroom raises, in one tree.

::

    MailroomError
    ├── ConfigError            invalid or missing configuration (exit 78)
    │   └── LockTaken          another process holds a lock mailroom takes (run.pidlock)
    ├── SetupNeededError       a mailbox or contact group is missing: run `mailroom setup --apply`
    ├── TransportError         the server could not be reached, or timed out (retryable)
    │   ├── ServerTooSlow      no whole answer within the request's deadline
    │   └── ResponseTooLarge   an answer over the size cap
    ├── AuthError              the server rejected the credentials (401/403)
    ├── ServerError            HTTP 429/5xx from a server (retryable; may carry Retry-After)
    ├── JmapError              a JMAP answer that says something went wrong
    │   ├── JmapRequestError   the whole request was refused (RFC 8620 §3.6.1 problem details)
    │   ├── JmapMethodError    a method answered ["error", {"type": ...}] (§3.6.2)
    │   ├── JmapSetError       /set left entries in notCreated/notUpdated/notDestroyed
    │   └── MailboxGone        a mailbox a write was to put mail in no longer exists
    ├── CardDavError           a CardDAV answer with an unexpected status (status, href)
    │   └── PreconditionFailed 412: someone else changed the card; re-read and retry
    ├── VCardError             a vCard that cannot be read (malformed text from the server)
    ├── PushError              the EventSource stream failed
    └── PassStopped            a triage pass ended early on purpose; labels kept
        ├── PassDeadline       it ran past its deadline and was abandoned
        └── ServerNotAnswering a request timed out or the server said it is unavailable

Foreign exceptions (httpx, XML, vCard parsing) are translated once, at the client
boundary, with ``raise ... from exc``. Every message says what happened and what to
do, and never contains a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mailroom.redaction import clip, scrub

SERVER_TEXT_LIMIT = 200  # characters of any text a server sent that go into a message


class MailroomError(Exception):
    """Root of every error mailroom raises on purpose; its text never holds a secret."""

    def __str__(self) -> str:
        return scrub(super().__str__())


class ConfigError(MailroomError):
    """The configuration is invalid; ``problems`` lists every problem, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class LockTaken(ConfigError):
    """Another process holds a lock mailroom takes (``run.pidlock``): ``pid`` and
    ``state_dir`` name the holder as its lock file records it, ``todo`` says what to do.
    Two copies on one state dir or one account are a configuration mistake, so exit 78
    where nothing catches it (the account lock); `mailroom run` and the worker catch
    theirs and exit 1, as a second copy of a running program."""

    def __init__(self, what: str, todo: str, *, pid: str, state_dir: str | None = None) -> None:
        self.pid, self.state_dir, self.todo = pid, state_dir, todo
        super().__init__([f"{what}; {todo}"])


class SetupNeededError(MailroomError):
    """Something mailroom needs on the server does not exist yet."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} does not exist; run `mailroom setup --apply` to create it")


class TransportError(MailroomError):
    """The server could not be reached, or did not answer in time."""

    def __init__(self, service: str, url: str, reason: str) -> None:
        self.service = service
        self.url = url
        super().__init__(
            f"cannot reach the {service} server at {url} ({clip(reason, SERVER_TEXT_LIMIT)}); "
            "check the URL and your network, mailroom will retry"
        )


class ServerTooSlow(TransportError):
    """The server did not finish its answer within the request's deadline."""

    def __init__(self, service: str, url: str, deadline: float) -> None:
        super().__init__(service, url, "too slow")  # service and url, kept as there
        self.deadline = deadline
        MailroomError.__init__(
            self,
            f"the {service} server at {self.url} did not finish its answer within {deadline:g} s "
            "(it stalls or sends too slowly); mailroom dropped the request and will retry",
        )


class ResponseTooLarge(TransportError):
    """The server's answer is larger than mailroom accepts."""

    def __init__(self, service: str, url: str, limit: int) -> None:
        super().__init__(service, url, "too large")  # service and url, kept as there
        self.limit = limit
        MailroomError.__init__(
            self,
            f"the {service} server at {self.url} sent an answer over {_size(limit)}, "
            "more than mailroom accepts; check that the URL names the right server "
            "(a misbehaving server or proxy sends this); mailroom will retry",
        )


def _size(count: int) -> str:
    mib, rest = divmod(count, 1 << 20)
    return f"{mib} MiB" if mib and not rest else f"{count} bytes"


class AuthError(MailroomError):
    """The server refused our credentials."""

    def __init__(self, service: str, status: int, hint: str) -> None:
        self.service = service
        self.status = status
        super().__init__(f"the {service} server rejected the credentials (HTTP {status}); {hint}")


class ServerError(MailroomError):
    """The server answered 429 or 5xx: a passing fault, worth retrying later."""

    def __init__(
        self, service: str, status: int, url: str, retry_after: float | None = None
    ) -> None:
        self.service = service
        self.status = status
        self.url = url
        self.retry_after = retry_after
        super().__init__(
            f"the {service} server answered HTTP {status} for {clip(url, SERVER_TEXT_LIMIT)}; "
            "will retry"
        )


class JmapError(MailroomError):
    """A JMAP answer that reports a failure."""


class JmapRequestError(JmapError):
    """The JMAP server refused the whole request (a problem-details document)."""

    def __init__(self, status: int, problem_type: str, detail: str) -> None:
        self.status = status
        self.problem_type = problem_type
        super().__init__(
            f"JMAP request refused (HTTP {status}, {clip(problem_type, 80)}): "
            + clip(detail, SERVER_TEXT_LIMIT)
        )


class JmapMethodError(JmapError):
    """A method call answered with an ``error`` invocation."""

    def __init__(self, method: str, error_type: str, description: str = "") -> None:
        self.method = method
        self.error_type = error_type
        self.description = description
        extra = f": {clip(description, SERVER_TEXT_LIMIT)}" if description else ""
        super().__init__(f"{method} failed with {clip(error_type, 80)}{extra}")


class JmapSetError(JmapError):
    """A /set call did not do everything asked; ``failures`` maps id -> SetError."""

    def __init__(self, method: str, failures: Mapping[str, Mapping[str, object]]) -> None:
        self.method = method
        self.failures = dict(failures)
        first_id, first = next(iter(self.failures.items()))
        said = f"{first.get('type', '?')} {first.get('description', '')}".rstrip()
        super().__init__(
            f"{method} refused {len(self.failures)} change(s), e.g. {clip(first_id, 80)}: "
            + clip(said, SERVER_TEXT_LIMIT)
        )


class MailboxGone(JmapError):
    """Mailboxes a filing write was to put mail in do not exist (any more)."""

    def __init__(self, mailbox_ids: Iterable[str]) -> None:
        self.mailbox_ids = frozenset(mailbox_ids)
        shown = ", ".join(clip(m, 80) for m in sorted(self.mailbox_ids))
        super().__init__(
            f"mailbox(es) {shown} no longer exist; no mail was moved into them. "
            "Restore the mailbox or run `mailroom setup --apply`"
        )


class CardDavError(MailroomError):
    """A CardDAV request answered with a status we did not expect."""

    def __init__(self, status: int, href: str, what: str) -> None:
        self.status = status
        self.href = href
        super().__init__(
            f"CardDAV {what} of {clip(href, SERVER_TEXT_LIMIT)} failed with HTTP {status}"
        )


class PreconditionFailed(CardDavError):
    """HTTP 412: the card changed (or exists) since we read it."""

    def __init__(self, href: str) -> None:
        super().__init__(412, href, "conditional write")


class VCardError(MailroomError):
    """A vCard could not be parsed; the card is left alone."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"cannot read a vCard ({clip(reason, SERVER_TEXT_LIMIT)}); "
            "fix or delete the card in your address book"
        )


class PushError(MailroomError):
    """The EventSource stream could not be opened or broke."""


class PassStopped(MailroomError):
    """A triage pass ended early on purpose, between two requests; no sender is to blame.

    Labelled senders not yet done keep their label and the next pass retries them; the
    pass is reported as failed (the worker's failure count, back-off and Retry-After).
    """

    retry_after: float | None = None


class PassDeadline(PassStopped):
    """A triage pass ran past its deadline; it was abandoned between two requests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the triage pass was still running after {seconds:g} s and was abandoned; "
            "labelled senders not yet done keep their label and the next pass retries them"
        )


class ServerNotAnswering(PassStopped):
    """A request of the pass timed out, or the server said it is unavailable (429/502/503/504).

    The pass sends nothing more and ends: the same server would keep every other
    sender waiting as long. ``retry_after`` is the server's ``Retry-After``, if any.
    """

    def __init__(self, cause: MailroomError) -> None:
        self.cause = cause
        self.retry_after = getattr(cause, "retry_after", None)
        super().__init__(
            f"{cause}; the triage pass stopped sending and ended. Labelled senders keep "
            "their label and the next pass retries them"
        )
