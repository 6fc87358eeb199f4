"""JMAP Sieve (RFC 9661, and Cyrus's earlier ``…/ns/jmap/sieve``): build/parse pairs and
a thin shell over ``JmapClient``.

Scripts are blobs: a script is uploaded (``application/sieve``), validated with
``SieveScript/validate``, then created or updated by ``SieveScript/set`` with that
blobId; ``onSuccessActivateScript`` makes one script the single active one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.errors import JmapError
from mailroom.jmap import methods
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Session
from mailroom.jmap.session import CORE

RFC_SIEVE = "urn:ietf:params:jmap:sieve"
CYRUS_SIEVE = "https://cyrusimap.org/ns/jmap/sieve"
SIEVE_TYPE = "application/sieve"


@dataclass(frozen=True, slots=True)
class SieveScript:
    id: str
    name: str
    blob_id: str
    is_active: bool


def sieve_capability(session: Session) -> str | None:
    """The Sieve capability the session offers (the RFC's first), or None."""
    return next((c for c in (RFC_SIEVE, CYRUS_SIEVE) if c in session.capabilities), None)


# -- build/parse pairs -------------------------------------------------------------------


def sieve_script_get(account_id: str, *, call_id: str = "sg") -> methods.Invocation:
    return ("SieveScript/get", {"accountId": account_id, "ids": None}, call_id)


def parse_sieve_script_get(args: Mapping[str, Any]) -> list[SieveScript]:
    items = args.get("list")
    if not isinstance(items, list):
        raise JmapError(
            "the SieveScript/get answer has no 'list'; the server's answer is malformed"
        )
    return [
        SieveScript(
            id=str(item["id"]),
            name=str(item.get("name") or ""),
            blob_id=str(item["blobId"]),
            is_active=bool(item.get("isActive")),
        )
        for item in items
    ]


def sieve_script_validate(
    account_id: str, blob_id: str, *, call_id: str = "sv"
) -> methods.Invocation:
    return ("SieveScript/validate", {"accountId": account_id, "blobId": blob_id}, call_id)


def parse_sieve_script_validate(args: Mapping[str, Any]) -> str | None:
    """None when the script is valid; else the server's reason."""
    error = args.get("error")
    if not error:
        return None
    return str(error.get("description") or error.get("type") or "invalid").strip()


def sieve_script_set(
    account_id: str,
    *,
    create: Mapping[str, Mapping[str, str]] | None = None,
    update: Mapping[str, Mapping[str, str]] | None = None,
    destroy: Sequence[str] = (),
    activate: str | None = None,
    deactivate: bool = False,
    capability: str = RFC_SIEVE,
    call_id: str = "ss",
) -> methods.Invocation:
    """``activate``: the id (or ``#creation id``) to make active once the rest succeeded;
    ``deactivate``: leave no script active. RFC 9661 §2.2 says so with
    ``onSuccessDeactivateScript: true``; Cyrus's earlier draft (its own capability)
    with ``onSuccessActivateScript: null`` and refuses the RFC's argument."""
    args: dict[str, Any] = {"accountId": account_id}
    if create:
        args["create"] = {cid: dict(props) for cid, props in create.items()}
    if update:
        args["update"] = {sid: dict(patch) for sid, patch in update.items()}
    if destroy:
        args["destroy"] = list(destroy)
    if activate is not None:
        args["onSuccessActivateScript"] = activate
    if deactivate and capability == RFC_SIEVE:
        args["onSuccessDeactivateScript"] = True
    elif deactivate:
        args["onSuccessActivateScript"] = None
    return ("SieveScript/set", args, call_id)


# -- the shell ---------------------------------------------------------------------------


class SieveScripts:
    """The account's Sieve scripts over one ``JmapClient``."""

    def __init__(self, jmap: JmapClient, capability: str) -> None:
        self._jmap = jmap
        self._capability = capability
        self._using = (CORE, capability)

    def _call(self, inv: methods.Invocation) -> dict[str, Any]:
        (answer,) = self._jmap.call([inv], using=self._using)
        return methods.raise_for_invocation(answer, inv[0])

    @property
    def _account(self) -> str:
        return self._jmap.session.account_id

    def list(self) -> list[SieveScript]:
        return parse_sieve_script_get(self._call(sieve_script_get(self._account)))

    def text(self, script: SieveScript) -> str:
        raw = self._jmap.download(script.blob_id, type=SIEVE_TYPE, name=f"{script.name}.sieve")
        return raw.decode("utf-8", errors="replace")

    def upload_valid(self, name: str, text: str) -> str:
        """Upload ``text`` and have the server validate it; its blobId."""
        blob_id = self._jmap.upload(text.encode(), SIEVE_TYPE)
        why = parse_sieve_script_validate(self._call(sieve_script_validate(self._account, blob_id)))
        if why is not None:
            raise JmapError(f"the server refused the Sieve script {name!r}: {why}")
        return blob_id

    def set(self, **changes: Any) -> dict[str, str]:
        """One SieveScript/set; {creation id: new id}. A refused entry raises."""
        inv = sieve_script_set(self._account, capability=self._capability, **changes)
        args = self._call(inv)
        return methods.parse_set("SieveScript/set", args).created
