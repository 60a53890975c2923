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
    person_id: int
    confirmed_by: str
    confirmed_at: datetime
    reason: str
    holds: bool
    """False once the record links to another person (sent again for someone
    else, or its person merged): it then opens nothing, and waits again."""


@dataclass(frozen=True)
class Holdings:
    """What the steward admin decides on: the records waiting, and the
    confirmations made (each list at most :data:`LISTED_AT_MOST` long)."""

    waiting: list[Unbacked]
    waiting_total: int
    """how many wait in all"""
    confirmed: list[Confirmation]
    confirmed_total: int


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
    if (
        partner is not None
        and not s.con.execute(
            "SELECT 1 FROM ref.partner WHERE partner_id = ?", [partner]
        ).fetchone()
    ):
        raise NotFoundError(
            f"no partner {partner!r}; `backbone partner list` shows them."
        )
    only = " AND rp.partner_id = ?" if partner else ""
    asked = [partner] if partner else []
    waiting_total = s.con.execute(
        f"SELECT count(*) {_UNBACKED}{only}", asked
    ).fetchall()[0][0]
    rows = s.con.execute(
        "SELECT rp.partner_id, rp.local_id, rp.person_id, "
        "(SELECT list(DISTINCT o.partner_id ORDER BY o.partner_id) FROM "
        "identity.record_person o WHERE o.person_id = rp.person_id AND "
        "o.partner_id <> rp.partner_id), "
        "(SELECT max(pr.submission_id) FROM identity.partner_record pr WHERE "
        "pr.partner_id = rp.partner_id AND pr.local_id = rp.local_id) "
        f"{_UNBACKED}{only} ORDER BY rp.partner_id, rp.local_id LIMIT ?",
        [*asked, LISTED_AT_MOST],
    ).fetchall()
    found = [
        Unbacked(str(p), str(local), int(person), tuple(others or ()), submission)
        for p, local, person, others, submission in rows
    ]
    mine = " WHERE hc.partner_id = ?" if partner else ""
    confirmed_total = s.con.execute(
        f"SELECT count(*) FROM gov.held_confirmation hc{mine}", asked
    ).fetchall()[0][0]
    confirmed = [
        Confirmation(*row)
        for row in s.con.execute(
            "SELECT hc.partner_id, hc.local_id, hc.person_id, hc.confirmed_by, "
            "hc.confirmed_at, hc.reason, EXISTS (SELECT 1 FROM "
            "identity.record_person r WHERE r.partner_id = hc.partner_id AND "
            "r.local_id = hc.local_id AND r.person_id = hc.person_id) FROM "
            f"gov.held_confirmation hc{mine} ORDER BY hc.partner_id, hc.local_id "
            "LIMIT ?",
            [*asked, LISTED_AT_MOST],
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
    return Holdings(found, int(waiting_total), confirmed, int(confirmed_total))


def _linked_person(con: Connection, partner: str, local_id: str) -> int:
    found = con.execute(
        "SELECT person_id FROM identity.record_person WHERE partner_id = ? AND "
        "local_id = ?",
        [partner, local_id],
    ).fetchone()
    if found is None:
        raise NotFoundError(
            f"{partner} has no linked record {local_id!r}; `backbone link unbacked "
            f"--partner {partner}` lists the records waiting for a confirmation."
        )
    return int(found[0])


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
    person = _linked_person(s.con, partner, local_id)
    s.con.execute(
        "INSERT INTO gov.held_confirmation (partner_id, local_id, person_id, "
        "confirmed_by, confirmed_at, reason) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
        "(partner_id, local_id) DO UPDATE SET person_id = excluded.person_id, "
        "confirmed_by = excluded.confirmed_by, confirmed_at = excluded.confirmed_at, "
        "reason = excluded.reason",
        [partner, local_id, person, who.user_id, now, reason.strip()],
    )
    s.record(
        "holding",
        what,
        providers=(partner,),
        reason=reason.strip(),
        detail={"person": person},
    )


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
