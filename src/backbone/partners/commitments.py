"""Commitments: the promises partners make to each other, with a dated history.

Exists because two partners once left a meeting each believing the other would
collect the high schools' graduate lists, and a month passed before anyone noticed.
Every commitment has one owner (a partner and a person), a counterpart it is owed to,
and a due date; every change is a new dated row in its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from backbone.engines import Connection
from backbone.engines.duckdb import next_id, transaction
from backbone.errors import NotFoundError, UserError
from backbone.session import Session

__all__ = ["STATUSES", "Commitment", "CommitmentBook", "CommitmentUpdate"]

STATUSES = ("open", "in_progress", "done", "dropped")
OPEN = ("open", "in_progress")


@dataclass(frozen=True)
class Commitment:
    commitment_id: int
    title: str
    owner_partner_id: str
    owner_person: str | None
    counterpart_partner_id: str | None
    due_date: date
    status: str
    made_on: date
    context: str | None

    def overdue(self, on: date) -> bool:
        return self.status in OPEN and self.due_date < on

    def days_late(self, on: date) -> int:
        return (on - self.due_date).days


_COLUMNS = (
    "commitment_id, title, owner_partner_id, owner_person, counterpart_partner_id, "
    "due_date, status, made_on, context"
)


@dataclass(frozen=True)
class CommitmentUpdate:
    """One dated entry of a commitment's history."""

    on: date
    status: str
    due: date
    note: str | None
    by: str | None
    """the user who recorded it"""


class CommitmentBook:
    def __init__(self, con: Connection) -> None:
        self._con = con

    def add(
        self,
        s: Session,
        title: str,
        *,
        owner: str,
        due: date,
        made_on: date,
        owner_person: str | None = None,
        counterpart: str | None = None,
        context: str | None = None,
    ) -> Commitment:
        """Record a promise made between partners (a steward admin, who keeps the
        partnership's book of promises)."""
        s.require("administer", f"record a commitment of {owner}", action="commitment")
        con = s.con
        if not title.strip():
            raise UserError("Say what was promised (the commitment's title).")
        _partner(con, owner, "owner")
        _partner(con, counterpart, "counterpart")
        if counterpart == owner:
            raise UserError(
                "A commitment is owed to another partner; the counterpart cannot be the owner."
            )
        if due < made_on:
            raise UserError(
                f"The due date {due} is before the day it was made ({made_on})."
            )
        with transaction(con):
            cid = next_id(con, "gov.commitment_id_seq")
            con.execute(
                f"INSERT INTO gov.commitment ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                [cid, title, owner, owner_person, counterpart, due, made_on, context],
            )
            con.execute(
                "INSERT INTO gov.commitment_update VALUES (?, 1, ?, 'open', ?, ?, ?)",
                [cid, made_on, due, f"promised: {title}", owner_person],
            )
        s.record(
            "commitment",
            f"commitment #{cid}: {owner} will {title!r} by {due}",
            providers=tuple(p for p in (owner, counterpart) if p),
        )
        return _get(con, cid)

    def update(
        self,
        s: Session,
        commitment_id: int,
        *,
        on: date,
        status: str | None = None,
        due: date | None = None,
        note: str | None = None,
    ) -> Commitment:
        """Record progress on a commitment: a new dated entry in its history.

        The owner reports its own progress: an analyst of the owning partner, or a
        steward admin recording it on the owner's behalf (the one who keeps the
        book). The entry names the signed-in user as who reported it.
        """
        s.actor()  # who are you, before anything is looked up
        con = s.con
        current = _get(con, commitment_id)
        who = s.require(
            "act_for_partner",
            f"report progress on commitment #{commitment_id}",
            partner=current.owner_partner_id,
            action="commitment",
        )
        if status is not None and status not in STATUSES:
            raise UserError(f"Status {status!r} is not one of {', '.join(STATUSES)}.")
        if status is None and due is None and not note:
            raise UserError("Give a new --status, a new --due date or a --note.")
        new_status = status or current.status
        new_due = due or current.due_date
        if new_due < current.made_on:
            raise UserError(
                f"The due date {new_due} is before the day it was made ({current.made_on})."
            )
        with transaction(con):
            row = con.execute(
                "SELECT max(seq) + 1 FROM gov.commitment_update WHERE commitment_id = ?",
                [commitment_id],
            ).fetchone()
            assert row is not None
            con.execute(
                "INSERT INTO gov.commitment_update VALUES (?, ?, ?, ?, ?, ?, ?)",
                [commitment_id, row[0], on, new_status, new_due, note, who.user_id],
            )
            con.execute(
                "UPDATE gov.commitment SET status = ?, due_date = ? WHERE commitment_id = ?",
                [new_status, new_due, commitment_id],
            )
        s.record(
            "commitment",
            f"commitment #{commitment_id} {new_status}, due {new_due}"
            + (f": {note}" if note else ""),
            providers=(current.owner_partner_id,),
            on_behalf_of=(
                current.owner_partner_id
                if current.owner_partner_id != who.partner_id
                else None
            ),
        )
        return _get(con, commitment_id)

    def get(self, commitment_id: int) -> Commitment:
        return _get(self._con, commitment_id)

    def history(self, commitment_id: int) -> list[CommitmentUpdate]:
        """What happened to a commitment, oldest first."""
        self.get(commitment_id)
        return [
            CommitmentUpdate(*r)
            for r in self._con.execute(
                "SELECT updated_on, status, due_date, note, by_person FROM gov.commitment_update "
                "WHERE commitment_id = ? ORDER BY seq",
                [commitment_id],
            ).fetchall()
        ]

    def list(
        self,
        *,
        on: date,
        owner: str | None = None,
        counterpart: str | None = None,
        overdue: bool = False,
        open_only: bool = False,
    ) -> list[Commitment]:
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM gov.commitment ORDER BY due_date, commitment_id"
        ).fetchall()
        items = [Commitment(*r) for r in rows]
        if owner:
            items = [c for c in items if c.owner_partner_id == owner]
        if counterpart:
            items = [c for c in items if c.counterpart_partner_id == counterpart]
        if open_only:
            items = [c for c in items if c.status in OPEN]
        if overdue:
            items = [c for c in items if c.overdue(on)]
        return items


def _partner(con: Connection, partner_id: str | None, what: str) -> None:
    if partner_id is None:
        return
    if not con.execute(
        "SELECT 1 FROM ref.partner WHERE partner_id = ?", [partner_id]
    ).fetchone():
        raise UserError(
            f"Unknown {what} partner {partner_id!r}; `backbone partner list` shows them."
        )


def _get(con: Connection, commitment_id: int) -> Commitment:
    row = con.execute(
        f"SELECT {_COLUMNS} FROM gov.commitment WHERE commitment_id = ?",
        [commitment_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"No commitment {commitment_id}; `backbone commitment list` shows them."
        )
    return Commitment(*row)
