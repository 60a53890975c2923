"""The partner registry: organizations and what they own (schools, programs).

A *directory* is the steward's description of the community as JSON: partners,
schools, programs, funders' initiatives, college institutions, school years and
instructional calendars. ``backbone demo`` writes one; :meth:`import_directory`
loads it in one transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.model.schema import PARTNER_KINDS
from backbone.session import Session

__all__ = [
    "PARTNER_ID",
    "Contact",
    "DirectoryImport",
    "Partner",
    "PartnerRegistry",
    "Program",
    "School",
]

PARTNER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    kind: str
    ed_org_id: int | None = None


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    role: str | None = None

    @classmethod
    def parse(cls, text: str) -> Contact:
        """``"Name, role, email"`` or ``"Name, email"`` as typed on the command line."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) == 2 and "@" in parts[1]:
            return cls(parts[0], parts[1])
        if len(parts) == 3 and "@" in parts[2]:
            return cls(parts[0], parts[2], parts[1] or None)
        raise UserError(
            f"Contact {text!r} should read 'Name, role, email' (role optional), "
            "e.g. 'Ana Ruiz, data manager, ana@district.org'."
        )


@dataclass(frozen=True)
class School:
    """A school or site a partner owns."""

    school_id: str
    """``partner/local code``"""
    name: str
    level: str | None


@dataclass(frozen=True)
class Program:
    program_id: str
    name: str
    program_type: str | None


@dataclass(frozen=True)
class DirectoryImport:
    """What a community directory registered: how many of each."""

    partners: int
    schools: int
    programs: int
    initiatives: int
    institutions: int
    school_years: int
    calendar_dates: int

    def counts(self) -> dict[str, int]:
        """``{"partners": 3, ...}`` in the order above, for a summary line."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        return ", ".join(
            f"{n} {name.replace('_', ' ')}" for name, n in self.counts().items()
        )


class PartnerRegistry:
    """Partners and what they own, in ``ref``."""

    def __init__(self, con: Connection) -> None:
        self._con = con

    def add(
        self,
        s: Session,
        partner: Partner,
        contacts: tuple[Contact, ...] = (),
        schools: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Register a partner with its contacts and (code, name) schools or sites: the
        steward admin's, audited."""
        s.require(
            "administer", f"register partner {partner.partner_id}", action="partner"
        )
        self._add(s.con, partner, contacts, created_at=s.clock().replace(tzinfo=None))
        for code, name in schools:
            self._add_school(s.con, partner.partner_id, code, name)
        s.record(
            "partner",
            f"registered {partner.partner_id} ({partner.kind}) with "
            f"{len(contacts)} contacts and {len(schools)} schools or sites",
            providers=(partner.partner_id,),
        )

    def _add(
        self,
        con: Connection,
        partner: Partner,
        contacts: tuple[Contact, ...],
        *,
        created_at: datetime,
    ) -> None:
        if not PARTNER_ID.fullmatch(partner.partner_id):
            raise UserError(
                f"Partner id {partner.partner_id!r} must be 1-64 letters, digits, '.', '_' or "
                "'-', starting with a letter or digit (e.g. d09-eastfield)."
            )
        if not partner.name.strip():
            raise UserError("Give the partner's name (--name).")
        if partner.kind not in PARTNER_KINDS:
            raise UserError(
                f"Partner kind {partner.kind!r} is not known; use one of "
                f"{', '.join(PARTNER_KINDS)}."
            )
        if _partner(con, partner.partner_id) is not None:
            raise UserError(
                f"A partner with id {partner.partner_id!r} already exists; "
                "choose another id."
            )
        con.execute(
            "INSERT INTO ref.partner VALUES (?, ?, ?, ?, NULL, ?)",
            [
                partner.partner_id,
                partner.name,
                partner.kind,
                partner.ed_org_id,
                created_at,
            ],
        )
        for contact in contacts:
            self._add_contact(con, partner.partner_id, contact)

    def add_contact(self, s: Session, partner_id: str, contact: Contact) -> None:
        s.require("administer", f"add a contact to {partner_id}", action="partner")
        self._add_contact(s.con, partner_id, contact)
        s.record(
            "partner",
            f"contact {contact.email} of {partner_id}",
            providers=(partner_id,),
        )

    def _add_contact(self, con: Connection, partner_id: str, contact: Contact) -> None:
        _known(con, partner_id)
        if "@" not in contact.email:
            raise UserError(f"{contact.email!r} is not an email address.")
        con.execute(
            "INSERT OR REPLACE INTO ref.partner_contact VALUES (?, ?, ?, ?)",
            [partner_id, contact.name, contact.role, contact.email],
        )

    def contacts(self, partner_id: str) -> list[Contact]:
        rows = self._con.execute(
            "SELECT name, email, role FROM ref.partner_contact WHERE partner_id = ? "
            "ORDER BY name",
            [partner_id],
        ).fetchall()
        return [Contact(*r) for r in rows]

    def schools(self, partner_id: str) -> list[School]:
        """The schools and sites a partner owns, by id."""
        return [
            School(r[0], r[1], r[2])
            for r in self._con.execute(
                "SELECT school_id, name, school_level FROM ref.school WHERE partner_id = ? "
                "ORDER BY school_id",
                [partner_id],
            ).fetchall()
        ]

    def add_school(
        self,
        s: Session,
        partner_id: str,
        local_code: str,
        name: str,
        level: str | None = None,
    ) -> str:
        """A school or site a partner owns; returns its id."""
        s.require("administer", f"add a school to {partner_id}", action="partner")
        school_id = self._add_school(s.con, partner_id, local_code, name, level)
        s.record("partner", f"school {school_id} ({name})", providers=(partner_id,))
        return school_id

    def _add_school(
        self,
        con: Connection,
        partner_id: str,
        local_code: str,
        name: str,
        level: str | None = None,
    ) -> str:
        _known(con, partner_id)
        if not local_code.strip() or not name.strip():
            raise UserError(
                f"A school of {partner_id} needs a code and a name, e.g. "
                "'HS01=Eastfield High School'."
            )
        school_id = f"{partner_id}/{local_code}"
        if con.execute(
            "SELECT 1 FROM ref.school WHERE school_id = ?", [school_id]
        ).fetchone():
            raise UserError(
                f"{partner_id} already has a school or site {local_code!r}."
            )
        con.execute(
            "INSERT INTO ref.school (school_id, partner_id, local_school_code, name, "
            "school_level) VALUES (?, ?, ?, ?, ?)",
            [school_id, partner_id, local_code, name, level],
        )
        return school_id

    def programs(self, partner_id: str) -> list[Program]:
        """The programs a partner runs, by id."""
        return [
            Program(r[0], r[1], r[2])
            for r in self._con.execute(
                "SELECT program_id, program_name, program_type FROM ref.program "
                "WHERE partner_id = ? ORDER BY program_id",
                [partner_id],
            ).fetchall()
        ]

    def get_or_none(self, partner_id: str) -> Partner | None:
        return _partner(self._con, partner_id)

    def get(self, partner_id: str) -> Partner:
        return _known(self._con, partner_id)

    def list(self) -> list[Partner]:
        rows = self._con.execute(
            "SELECT partner_id, name, kind, ed_org_id FROM ref.partner "
            "ORDER BY kind, partner_id"
        ).fetchall()
        return [Partner(*row) for row in rows]

    def import_directory(self, s: Session, path: Path) -> DirectoryImport:
        """Register everything a community directory file describes; returns counts."""
        s.require("administer", f"import the directory {path.name}", action="partner")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputFileError(
                f"cannot read the directory ({exc}).", path=path
            ) from None
        counts: dict[str, int] = {}
        con = s.con
        now = s.clock().replace(tzinfo=None)
        with transaction(con):
            for p in _items(doc, "partners", path):
                self._add(
                    con,
                    Partner(p["partner_id"], p["name"], p["kind"], p.get("ed_org_id")),
                    tuple(Contact(**c) for c in p.get("contacts", [])),
                    created_at=now,
                )
            counts["partners"] = len(doc["partners"])
            _insert(
                con,
                "ref.school",
                doc.get("schools", []),
                (
                    "school_id",
                    "partner_id",
                    "local_school_code",
                    "name",
                    "school_level",
                    "lowest_grade_level",
                    "highest_grade_level",
                    "ed_org_id",
                ),
            )
            counts["schools"] = len(doc.get("schools", []))
            _insert(
                con,
                "ref.program",
                doc.get("programs", []),
                (
                    "program_id",
                    "partner_id",
                    "program_name",
                    "program_type",
                ),
            )
            counts["programs"] = len(doc.get("programs", []))
            initiatives = doc.get("initiatives", [])
            _insert(
                con,
                "ref.initiative",
                initiatives,
                (
                    "initiative_id",
                    "funder_partner_id",
                    "name",
                    "begin_date",
                    "end_date",
                    "description",
                    "target_outcomes",
                    "min_sessions",
                    "min_hours",
                ),
            )
            links = [
                {"initiative_id": i["initiative_id"], "program_id": p}
                for i in initiatives
                for p in i.get("program_ids", [])
            ]
            _insert(
                con, "ref.initiative_program", links, ("initiative_id", "program_id")
            )
            counts["initiatives"] = len(initiatives)
            _insert(
                con,
                "ref.postsecondary_institution",
                doc.get("institutions", []),
                (
                    "institution_id",
                    "name",
                    "level",
                    "control",
                    "state",
                ),
            )
            counts["institutions"] = len(doc.get("institutions", []))
            _insert(
                con,
                "ref.school_year",
                doc.get("school_years", []),
                (
                    "school_year",
                    "description",
                    "begin_date",
                    "end_date",
                ),
            )
            counts["school_years"] = len(doc.get("school_years", []))
            counts["calendar_dates"] = _insert_calendars(con, doc.get("calendars", []))
            done = DirectoryImport(**counts)
            s.record(
                "partner",
                f"imported the directory {path.name}: {done}",
                providers=tuple(p["partner_id"] for p in doc["partners"]),
            )
        return done


def _partner(con: Connection, partner_id: str) -> Partner | None:
    row = con.execute(
        "SELECT partner_id, name, kind, ed_org_id FROM ref.partner "
        "WHERE partner_id = ?",
        [partner_id],
    ).fetchone()
    return Partner(*row) if row else None


def _known(con: Connection, partner_id: str) -> Partner:
    partner = _partner(con, partner_id)
    if partner is None:
        raise NotFoundError(
            f"No partner {partner_id!r}; `backbone info` lists the partners."
        )
    return partner


def _items(doc: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise InputFileError(f"expected a list under {key!r}.", path=path)
    return items


def _insert(
    con: Connection,
    table: str,
    items: list[dict[str, Any]],
    columns: tuple[str, ...],
) -> None:
    if not items:
        return
    placeholders = ", ".join("?" for _ in columns)
    con.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
        [[item.get(c) for c in columns] for item in items],
    )


def _insert_calendars(con: Connection, calendars: list[dict[str, Any]]) -> int:
    """Calendars come as (school ids, school year, instructional dates); expand them."""
    total = 0
    for cal in calendars:
        days = [date.fromisoformat(d) for d in cal["instructional_dates"]]
        con.execute(
            """
            INSERT INTO ref.calendar_date
            SELECT s.school_id, d.date, $year, true
            FROM (SELECT unnest($schools::VARCHAR[]) AS school_id) s,
                 (SELECT unnest($days::DATE[]) AS date) d
            """,
            {"year": cal["school_year"], "schools": cal["school_ids"], "days": days},
        )
        total += len(days) * len(cal["school_ids"])
    return total
