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
# a confirmation's reason: a sentence
MAX_REASON = 500

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
    # each partner's disclosure report counts the rows that showed its data: its
    # own records, and the persons it was named as also holding
    by_provider: dict[str, int] = {}
    for shown in (
        *(u.partner_id for u in found),
        *(c.partner_id for c in confirmed),
        *(other for u in found for other in u.others),
    ):
        by_provider[shown] = by_provider.get(shown, 0) + 1
    s.record(
        "read",
        what,
        providers=tuple(sorted(by_provider)),
        rows=len(found) + len(confirmed),
        detail={"rows_by_provider": dict(sorted(by_provider.items()))},
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
            f"{partner} has no linked record {local_id!r}; the unbacked records "
            "(`backbone link unbacked`, or the web site's Unbacked records page) "
            "list the records waiting for a confirmation."
        )
    return int(found[0])


def _reason(text: str, ask: str) -> str:
    """The reason given, as kept: said, and short (a sentence, not a file)."""
    kept = text.strip()
    if not kept:
        raise UserError(ask)
    if len(kept) > MAX_REASON:
        raise UserError(
            f"the reason is {len(kept):,} characters; say it in at most "
            f"{MAX_REASON}, and without names (it is kept in the audit log)."
        )
    return kept


def confirm_held(
    s: Session, partner: str, local_id: str, reason: str, now: datetime
) -> None:
    """A steward admin confirms that ``partner`` serves the person of its record
    ``local_id``: the record opens others' facts as if the partner's own facts
    backed it, while it stays linked to that person. Audited in the unit of
    work with the reason and the person (local ids stay out of the log: it is
    shown to every provider named in it)."""
    who = s.require(
        "administer",
        f"confirm that {partner} serves the person of one of its records",
        action="holding",
        providers=(partner,),
    )
    kept = _reason(
        reason,
        "say what shows that the partner serves this person (a signed "
        "enrollment form, a call with its coordinator): the reason is kept.",
    )
    person = _linked_person(s.con, partner, local_id)
    s.con.execute(
        "INSERT INTO gov.held_confirmation (partner_id, local_id, person_id, "
        "confirmed_by, confirmed_at, reason) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
        "(partner_id, local_id) DO UPDATE SET person_id = excluded.person_id, "
        "confirmed_by = excluded.confirmed_by, confirmed_at = excluded.confirmed_at, "
        "reason = excluded.reason",
        [partner, local_id, person, who.user_id, now, kept],
    )
    s.record(
        "holding",
        f"confirmed that {partner} serves person {person}",
        providers=(partner,),
        reason=kept,
    )


def withdraw_held(s: Session, partner: str, local_id: str, reason: str) -> bool:
    """Undo a confirmation (the record opens nothing again until the partner's
    own facts back it); whether there was one. Audited, with the reason."""
    s.require(
        "administer",
        f"withdraw a confirmation that {partner} serves a person",
        action="holding",
        providers=(partner,),
    )
    kept = _reason(reason, "say why the confirmation ends: the reason is kept.")
    found = s.con.execute(
        "DELETE FROM gov.held_confirmation WHERE partner_id = ? AND local_id = ? "
        "RETURNING person_id",
        [partner, local_id],
    ).fetchall()
    s.record(
        "holding",
        f"withdrew the confirmation that {partner} serves person {found[0][0]}"
        if found
        else f"withdrew a confirmation of {partner}'s: there was none",
        providers=(partner,),
        reason=kept,
    )
    return bool(found)
