"""Which of a partner's records open others' facts about their person.

A record grants its partner sight of what other partners hold about the person it
links to only when the partner's own facts back it (an enrollment, a service, a
score: :data:`~backbone.governance.policy.CORROBORATING`), or when a steward
admin confirmed, with a reason, that the partner really serves that person (a
roster sent before its first facts). A record nothing backs is *unbacked*: a
false roster line typed in about someone else's student opens nothing, and a run
linking many of them raises an alert (:data:`UNSERVED_ALERT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backbone.engines import Connection
from backbone.errors import NotFoundError, UserError
from backbone.governance.policy import corroborated_records_sql
from backbone.session import Session

__all__ = [
    "UNSERVED_ALERT",
    "Confirmation",
    "Holdings",
    "Unbacked",
    "confirm_held",
    "unbacked_counts",
    "unbacked_records",
    "withdraw_held",
]

# A few unbacked records of a partner are a roster sent before its enrollments;
# this many in one link run are a roster of children it does not serve (a
# mistake, or a try at others' data), recorded as an alert for the steward.
UNSERVED_ALERT = 10
# a steward reads at most this many unbacked records at a time
LISTED_AT_MOST = 1000

_UNBACKED = (
    "FROM identity.record_person rp "
    "WHERE EXISTS (SELECT 1 FROM identity.record_person o WHERE o.person_id = "
    "rp.person_id AND o.partner_id <> rp.partner_id) "
    f"AND (rp.partner_id, rp.local_id) NOT IN ({corroborated_records_sql()})"
)


@dataclass(frozen=True)
class Unbacked:
    """A partner's record linked to a person other partners hold, that nothing
    of its own backs."""

    partner_id: str
    local_id: str
    person_id: int
    others: tuple[str, ...]
    """The partners that also hold the person."""
    submission_id: int | None
    """The submission the record came in, for asking the partner about it."""


@dataclass(frozen=True)
class Confirmation:
    """A steward admin's word that a partner serves the person of its record."""

    partner_id: str
    local_id: str
    confirmed_by: str
    confirmed_at: datetime
    reason: str


@dataclass(frozen=True)
class Holdings:
    """What the steward admin decides on: the records waiting, and the
    confirmations in force."""

    waiting: list[Unbacked]
    confirmed: list[Confirmation]


def unbacked_counts(con: Connection) -> tuple[tuple[str, int], ...]:
    """Per partner, how many of its records are unbacked."""
    rows = con.execute(
        f"SELECT rp.partner_id, count(*) {_UNBACKED} "
        "GROUP BY rp.partner_id ORDER BY rp.partner_id"
    ).fetchall()
    return tuple((str(p), int(n)) for p, n in rows)


def unbacked_records(s: Session, partner: str | None = None) -> Holdings:
    """The unbacked records and the confirmations (of one partner, or all), at
    most :data:`LISTED_AT_MOST` of each: a steward admin's read, audited in the
    unit of work."""
    what = (
        f"unbacked and confirmed records of {partner}"
        if partner
        else "unbacked and confirmed records"
    )
    s.require("administer", f"read {what}", action="read")
    only = " AND rp.partner_id = ?" if partner else ""
    rows = s.con.execute(
        "SELECT rp.partner_id, rp.local_id, rp.person_id, "
        "(SELECT list(DISTINCT o.partner_id ORDER BY o.partner_id) FROM "
        "identity.record_person o WHERE o.person_id = rp.person_id AND "
        "o.partner_id <> rp.partner_id), "
        "(SELECT max(pr.submission_id) FROM identity.partner_record pr WHERE "
        "pr.partner_id = rp.partner_id AND pr.local_id = rp.local_id) "
        f"{_UNBACKED}{only} ORDER BY rp.partner_id, rp.local_id LIMIT ?",
        [*([partner] if partner else []), LISTED_AT_MOST],
    ).fetchall()
    found = [
        Unbacked(str(p), str(local), int(person), tuple(others or ()), submission)
        for p, local, person, others, submission in rows
    ]
    confirmed = [
        Confirmation(*row)
        for row in s.con.execute(
            "SELECT partner_id, local_id, confirmed_by, confirmed_at, reason FROM "
            f"gov.held_confirmation{' WHERE partner_id = ?' if partner else ''} "
            "ORDER BY partner_id, local_id LIMIT ?",
            [*([partner] if partner else []), LISTED_AT_MOST],
        ).fetchall()
    ]
    s.record(
        "read",
        what,
        providers=tuple(
            sorted({u.partner_id for u in found} | {c.partner_id for c in confirmed})
        ),
        rows=len(found) + len(confirmed),
    )
    return Holdings(found, confirmed)


def _known_record(con: Connection, partner: str, local_id: str) -> None:
    found = con.execute(
        "SELECT 1 FROM identity.record_person WHERE partner_id = ? AND local_id = ?",
        [partner, local_id],
    ).fetchone()
    if found is None:
        raise NotFoundError(
            f"{partner} has no linked record {local_id!r}; `backbone link unbacked "
            f"--partner {partner}` lists the records waiting for a confirmation."
        )


def confirm_held(
    s: Session, partner: str, local_id: str, reason: str, now: datetime
) -> None:
    """A steward admin confirms that ``partner`` serves the person of its record
    ``local_id``: the record opens others' facts as if the partner's own facts
    backed it. Audited in the unit of work, with the reason."""
    what = f"confirmed that {partner} serves the person of its record {local_id}"
    who = s.require("administer", what, action="holding", providers=(partner,))
    if not reason.strip():
        raise UserError(
            "say what shows that the partner serves this person (a signed "
            "enrollment form, a call with its coordinator): the reason is kept."
        )
    _known_record(s.con, partner, local_id)
    s.con.execute(
        "INSERT INTO gov.held_confirmation (partner_id, local_id, confirmed_by, "
        "confirmed_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner_id, "
        "local_id) DO UPDATE SET confirmed_by = excluded.confirmed_by, "
        "confirmed_at = excluded.confirmed_at, reason = excluded.reason",
        [partner, local_id, who.user_id, now, reason.strip()],
    )
    s.record("holding", what, providers=(partner,), reason=reason.strip())


def withdraw_held(s: Session, partner: str, local_id: str, reason: str) -> bool:
    """Undo a confirmation (the record opens nothing again until the partner's
    own facts back it); whether there was one. Audited, with the reason."""
    what = f"withdrew the confirmation of {partner}'s record {local_id}"
    s.require("administer", what, action="holding", providers=(partner,))
    if not reason.strip():
        raise UserError("say why the confirmation ends: the reason is kept.")
    found = s.con.execute(
        "DELETE FROM gov.held_confirmation WHERE partner_id = ? AND local_id = ? "
        "RETURNING 1",
        [partner, local_id],
    ).fetchall()
    s.record(
        "holding",
        what if found else f"{what}: there was none",
        providers=(partner,),
        reason=reason.strip(),
    )
    return bool(found)
