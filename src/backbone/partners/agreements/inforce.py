"""The one rule for "the agreement in force on a day".

Two questions, answered only here (pure functions over recorded versions):

- **Which version is in force** on a day: the latest approved version whose
  in-force date has come. The registry settles that date (the version's effective
  date, every party's approval for a widening, never before the version it amends);
  pending and withdrawn versions are never in force.
- **Where that version stands** on the day: it *applies* when its document is
  active and the day lies within its term (``effective_from`` to ``effective_to``);
  otherwise it is suspended, terminated or a draft, has not begun, or has ended.

Reads, linking, submissions, retention, status reports and the CLI all ask these
two questions; each may care about a different part of the answer (retention keeps
a suspended agreement's data, a submission needs the agreement to apply), but
none decides it for itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from backbone.partners.agreements.document import AgreementDocument, Status

__all__ = [
    "Standing",
    "VersionState",
    "Versioned",
    "came_into_force",
    "end_of",
    "in_force_by_agreement",
    "refusal",
    "standing",
    "version_in_force",
]


class Versioned(Protocol):
    """A recorded version (``VersionRecord``, ``VersionView``)."""

    @property
    def agreement_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def in_force_from(self) -> date | None: ...
    @property
    def document(self) -> AgreementDocument: ...


V = TypeVar("V", bound=Versioned)


def came_into_force(versions: Iterable[V], on: date) -> list[V]:
    """The versions of one agreement in force at some time up to ``on``, oldest
    first: the last is the one in force on ``on``."""
    return sorted(
        (
            v
            for v in versions
            if v.status == "approved"
            and v.in_force_from is not None
            and v.in_force_from <= on
        ),
        key=lambda v: v.version,
    )


def version_in_force(versions: Iterable[V], on: date) -> V | None:
    """The version of one agreement in force on ``on``, or None."""
    history = came_into_force(versions, on)
    return history[-1] if history else None


def in_force_by_agreement(versions: Iterable[V], on: date) -> dict[str, V]:
    """The version in force on ``on`` of each agreement among ``versions`` (of any
    number of agreements), in the order the agreements first appear."""
    by_agreement: dict[str, list[V]] = {}
    for v in versions:
        by_agreement.setdefault(v.agreement_id, []).append(v)
    out: dict[str, V] = {}
    for agreement_id, history in by_agreement.items():
        current = version_in_force(history, on)
        if current is not None:
            out[agreement_id] = current
    return out


class Standing(StrEnum):
    """Where a version stands on a day."""

    none = "none in force"
    applies = "applies"
    inactive = "inactive"
    """the document is suspended, terminated or a draft"""
    not_started = "not started"
    ended = "ended"


def standing(doc: AgreementDocument, day: date) -> Standing:
    """Whether ``doc`` applies on ``day``, or why not (the status first)."""
    if doc.status is not Status.active:
        return Standing.inactive
    if day < doc.effective_from:
        return Standing.not_started
    if doc.effective_to is not None and day > doc.effective_to:
        return Standing.ended
    return Standing.applies


def refusal(doc: AgreementDocument, day: date) -> str | None:
    """Why ``doc`` does not apply on ``day``, in words, or None if it does."""
    match standing(doc, day):
        case Standing.inactive:
            return f"the agreement is {doc.status.value}"
        case Standing.not_started:
            return f"the agreement takes effect on {doc.effective_from}"
        case Standing.ended:
            return f"the agreement expired on {doc.effective_to}"
    return None


def end_of(version: Versioned) -> date | None:
    """When a version in force stops applying for good, or None while it has no end:
    a terminated version ends on the day it came into force (the termination's day),
    any other at the end of its term. A suspended version has not ended (its data
    stays); a version after its end has (retention destroys from that day)."""
    doc = version.document
    if doc.status is Status.terminated:
        return version.in_force_from or doc.effective_from
    return doc.effective_to


@dataclass(frozen=True)
class VersionState(Generic[V]):
    """The version of an agreement in force on ``day`` (None: none is) and where
    it stands; ``str()`` says it for people ("v2 in force", "v2 (ended ...)")."""

    version: V | None
    day: date

    @property
    def standing(self) -> Standing:
        if self.version is None:
            return Standing.none
        return standing(self.version.document, self.day)

    @property
    def applies(self) -> bool:
        """In force, active and within its term: data may flow under it."""
        return self.standing is Standing.applies

    @property
    def active(self) -> bool:
        """In force, and its document neither suspended, terminated nor a draft."""
        return (
            self.version is not None and self.version.document.status is Status.active
        )

    @property
    def in_term(self) -> bool:
        """In force, and the day within its term (whatever its status)."""
        return self.version is not None and self.version.document.in_term(self.day)

    @property
    def ended(self) -> bool:
        """In force, and its term ended before the day (whatever its status)."""
        if self.version is None:
            return False
        end = self.version.document.effective_to
        return end is not None and self.day > end

    def refusal(self) -> str | None:
        """Why nothing may flow under the version on the day, or None if it applies."""
        if self.version is None:
            return f"no version is in force on {self.day}"
        return refusal(self.version.document, self.day)

    def __str__(self) -> str:
        if self.version is None:
            return "none in force"
        doc = self.version.document
        v = f"v{self.version.version}"
        match self.standing:
            case Standing.inactive:
                return f"{v} ({doc.status.value})"
            case Standing.ended:
                return f"{v} (ended {doc.effective_to})"
            case Standing.not_started:
                return f"{v} (starts {doc.effective_from})"
        return f"{v} in force"
