"""Every error mailroom raises, in one tree.

::

    MailroomError
    ├── ConfigError            invalid or missing configuration (exit 78)
    ├── SetupNeededError       a mailbox or contact group is missing: run `mailroom setup --apply`
    ├── TransportError         the server could not be reached, or timed out (retryable)
    ├── AuthError              the server rejected the credentials (401/403)
    ├── ServerError            HTTP 429/5xx from a server (retryable; may carry Retry-After)
    ├── JmapError              a JMAP answer that says something went wrong
    │   ├── JmapRequestError   the whole request was refused (RFC 8620 §3.6.1 problem details)
    │   ├── JmapMethodError    a method answered ["error", {"type": ...}] (§3.6.2)
    │   └── JmapSetError       /set left entries in notCreated/notUpdated/notDestroyed
    ├── CardDavError           a CardDAV answer with an unexpected status (status, href)
    │   └── PreconditionFailed 412: someone else changed the card; re-read and retry
    ├── VCardError             a vCard that cannot be read (malformed text from the server)
    ├── PushError              the EventSource stream failed
    └── PassDeadline           a triage pass ran past its deadline and was abandoned

Foreign exceptions (httpx, XML, vCard parsing) are translated once, at the client
boundary, with ``raise ... from exc``. Every message says what happened and what to
do, and never contains a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class MailroomError(Exception):
    """Root of every error mailroom raises on purpose."""


class ConfigError(MailroomError):
    """The configuration is invalid; ``problems`` lists every problem, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


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
            f"cannot reach the {service} server at {url} ({reason}); "
            "check the URL and your network, mailroom will retry"
        )


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
        super().__init__(f"the {service} server answered HTTP {status} for {url}; will retry")


class JmapError(MailroomError):
    """A JMAP answer that reports a failure."""


class JmapRequestError(JmapError):
    """The JMAP server refused the whole request (a problem-details document)."""

    def __init__(self, status: int, problem_type: str, detail: str) -> None:
        self.status = status
        self.problem_type = problem_type
        super().__init__(f"JMAP request refused (HTTP {status}, {problem_type}): {detail}")


class JmapMethodError(JmapError):
    """A method call answered with an ``error`` invocation."""

    def __init__(self, method: str, error_type: str, description: str = "") -> None:
        self.method = method
        self.error_type = error_type
        self.description = description
        extra = f": {description}" if description else ""
        super().__init__(f"{method} failed with {error_type}{extra}")


class JmapSetError(JmapError):
    """A /set call did not do everything asked; ``failures`` maps id -> SetError."""

    def __init__(self, method: str, failures: Mapping[str, Mapping[str, Any]]) -> None:
        self.method = method
        self.failures = dict(failures)
        first_id, first = next(iter(self.failures.items()))
        super().__init__(
            f"{method} refused {len(self.failures)} change(s), e.g. {first_id}: "
            f"{first.get('type', '?')} {first.get('description', '')}".rstrip()
        )


class CardDavError(MailroomError):
    """A CardDAV request answered with a status we did not expect."""

    def __init__(self, status: int, href: str, what: str) -> None:
        self.status = status
        self.href = href
        super().__init__(f"CardDAV {what} of {href} failed with HTTP {status}")


class PreconditionFailed(CardDavError):
    """HTTP 412: the card changed (or exists) since we read it."""

    def __init__(self, href: str) -> None:
        super().__init__(412, href, "conditional write")


class VCardError(MailroomError):
    """A vCard could not be parsed; the card is left alone."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"cannot read a vCard ({reason}); fix or delete the card in your address book"
        )


class PushError(MailroomError):
    """The EventSource stream could not be opened or broke."""


def is_retryable(exc: BaseException) -> bool:
    """True when trying the same thing again later may succeed."""
    return isinstance(exc, TransportError | ServerError | PreconditionFailed)


class PassDeadline(MailroomError):
    """A triage pass ran past its deadline; it was abandoned between two requests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the triage pass was still running after {seconds:g} s and was abandoned; "
            "labelled senders not yet done keep their label and the next pass retries them"
        )
