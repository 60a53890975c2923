"""The decision the policy layer asks of the agreements.

Given who provides the data, who wants it (partner and role), which entity and
fields, for what purpose, which operation and on what day, :func:`decide` answers
allow or deny with the reason and the agreement version relied on. It is pure: the
agreement registry supplies the versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from backbone.partners.agreements.document import AgreementDocument, Operation
from backbone.partners.agreements.inforce import (
    Standing,
    refusal,
    standing,
    version_in_force,
)

__all__ = ["AccessRequest", "Decision", "VersionView", "decide"]


@dataclass(frozen=True)
class AccessRequest:
    provider: str
    recipient: str
    entity: str
    fields: tuple[str, ...]
    purpose: str
    operation: str
    on: date
    role: str | None = None
    link_with: str | None = None
    """For ``link``: the partner whose records would be joined with the provider's."""


@dataclass(frozen=True)
class VersionView:
    agreement_id: str
    version: int
    document: AgreementDocument
    status: str
    """pending | approved | withdrawn"""
    in_force_from: date | None
    awaiting: tuple[str, ...] = field(default=())
    """Parties whose approval a pending version still needs."""

    @property
    def ref(self) -> str:
        return f"{self.agreement_id}@{self.version}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    agreement: str | None = None
    """``agreement_id@version`` relied on (for a deny: the one that came closest)."""
    access: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


def _check(
    doc: AgreementDocument, req: AccessRequest
) -> tuple[int, str | None, str | None]:
    """(how far the request got, why it stopped or None, access level)."""
    term = standing(doc, req.on)
    if term is not Standing.applies:
        # a suspended agreement gets less far than one outside its dates
        return (0 if term is Standing.inactive else 1), refusal(doc, req.on), None
    recipient = next((r for r in doc.recipients if r.partner == req.recipient), None)
    if recipient is None:
        return 2, f"{req.recipient} is not a recipient", None
    if recipient.roles and req.role not in recipient.roles:
        return (
            3,
            (
                f"role {req.role or '(none)'} of {req.recipient} is not covered "
                f"(covered: {', '.join(recipient.roles)})"
            ),
            None,
        )
    # linking serves the agreement's purposes; what it needs is checked below
    if req.operation != Operation.link.value and (
        req.purpose not in doc.purpose_ids()
        or (recipient.purposes and req.purpose not in recipient.purposes)
    ):
        return 4, f"purpose {req.purpose!r} is not permitted", None
    dataset = doc.dataset(req.entity)
    if dataset is None:
        return 5, f"{req.entity} is not shared under it", None
    undeclared = sorted(set(req.fields) - dataset.field_names())
    if undeclared:
        return (
            6,
            f"field(s) {', '.join(undeclared)} of {req.entity} are not declared",
            None,
        )
    if req.operation not in {o.value for o in recipient.operations}:
        return (
            7,
            f"operation {req.operation!r} is not permitted for {req.recipient}",
            None,
        )
    if req.operation == Operation.link.value:
        if not doc.linkage.allowed:
            return 8, "linkage is not permitted", None
        # without a partner named, the question is whether it links at all
        if req.link_with is not None and req.link_with not in doc.linkage.linkable_with:
            return 8, f"linkage with {req.link_with} is not permitted", None
    return 9, None, recipient.access.value


def decide(request: AccessRequest, versions: Iterable[VersionView]) -> Decision:
    """Allow if any agreement of the provider in force that day allows; else the
    closest refusal, naming a pending version that would allow it."""
    by_agreement: dict[str, list[VersionView]] = {}
    for v in versions:
        if v.document.parties.provider == request.provider:
            by_agreement.setdefault(v.agreement_id, []).append(v)
    if not by_agreement:
        return Decision(
            False, f"no agreement covers data provided by {request.provider}"
        )
    best: tuple[int, Decision] | None = None
    for agreement_id in sorted(by_agreement):
        history = sorted(by_agreement[agreement_id], key=lambda v: v.version)
        pending = [v for v in history if v.status == "pending"]
        current = version_in_force(history, request.on)
        if current is not None:
            stage, why, access = _check(current.document, request)
            if why is None:
                return Decision(
                    True,
                    f"allowed by {current.ref}: purpose {request.purpose!r}, "
                    f"{access} access",
                    current.ref,
                    access,
                )
            reason = f"denied by {current.ref}: {why}"
        else:
            stage, reason = (
                -1,
                f"{agreement_id} has no version in force on {request.on}",
            )
        for p in pending:
            if _check(p.document, request)[1] is None:
                reason += (
                    f"; {p.ref} would allow it but awaits approval by "
                    f"{', '.join(p.awaiting) or 'the parties'}"
                )
                break
        decision = Decision(False, reason, current.ref if current else None)
        if best is None or stage > best[0]:
            best = (stage, decision)
    assert best is not None
    return best[1]
