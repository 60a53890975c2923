"""The partner registry: organizations and what they own (schools, programs).

A *directory* is the steward's description of the partnership (YAML or JSON,
:mod:`backbone.partners.directory`): partners, schools, programs, funders'
initiatives, college institutions, school years and instructional calendars.
``backbone partner import`` and the demo load one with :meth:`import_directory`,
in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.model.schema import PARTNER_KINDS
from backbone.partners.directory import (
    Calendar,
    Directory,
    check_directory,
    find_directory,
    read_directory,
)
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
    closed_on: date | None = None
    """its last day, once closed"""


@dataclass(frozen=True)
class Program:
    program_id: str
    name: str
    program_type: str | None
    closed_on: date | None = None


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
    descriptor_codes: int = 0
    already_registered: int = 0
    """items whose id was registered before (left as they were)"""

    def counts(self) -> dict[str, int]:
        """``{"partners": 3, ...}``: what was registered, for a summary line."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "already_registered"
        }

    def __str__(self) -> str:
        said = ", ".join(
            f"{n} {name.replace('_', ' ')}" for name, n in self.counts().items()
        )
        if self.already_registered:
            said += (
                f" ({self.already_registered} already registered, left as they were)"
            )
        return said


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
            School(*r)
            for r in self._con.execute(
                "SELECT school_id, name, school_level, closed_on FROM ref.school "
                "WHERE partner_id = ? "
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
            Program(*r)
            for r in self._con.execute(
                "SELECT program_id, program_name, program_type, closed_on FROM ref.program "
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
        """Register everything a partnership directory (a file, or a folder holding
        one: :mod:`backbone.partners.directory`) describes, in one transaction;
        returns counts. What is already registered under the same id is left as it
        is and counted apart, so a directory can be imported again after new
        schools, programs or years were added to it."""
        s.require("administer", f"import the directory {path.name}", action="partner")
        path = find_directory(path)
        doc = read_directory(path)
        return self._register(s, doc, f"imported the directory {path.name}", path)

    def register_entries(
        self, s: Session, entries: dict[str, Any], what: str
    ) -> DirectoryImport:
        """Register entries given one by one (a command's options, in the directory
        format: ``{"schools": [{...}]}``), checked as a directory is; an entry whose
        id is registered already is refused, not left as it was."""
        s.require("administer", what, action="partner")
        doc = check_directory(entries)
        done = self._register(s, doc, what, None)
        if done.already_registered:
            raise UserError(
                f"Cannot {what}: it is registered already (`backbone partner show` "
                "lists what a partner has). Nothing was changed."
            )
        return done

    def _register(
        self, s: Session, doc: Directory, what: str, path: Path | None
    ) -> DirectoryImport:
        con = s.con
        now = s.clock().replace(tzinfo=None)
        with transaction(con):
            fresh = _unregistered(con, doc, replace_maps=path is None)
            _check_references(con, doc, path)
            for p in fresh.partners:
                self._add(
                    con,
                    Partner(p.partner_id, p.name, p.kind, p.ed_org_id),
                    tuple(Contact(c.name, c.email, c.role) for c in p.contacts),
                    created_at=now,
                )
            _insert(con, "ref.school", fresh.schools)
            _insert(con, "ref.program", fresh.programs)
            _insert(con, "ref.initiative", fresh.initiatives, skip=("program_ids",))
            _insert_rows(
                con,
                "ref.initiative_program",
                ("initiative_id", "program_id"),
                [
                    (i.initiative_id, p)
                    for i in fresh.initiatives
                    for p in i.program_ids
                ],
            )
            _insert(con, "ref.postsecondary_institution", fresh.institutions)
            _insert(con, "ref.school_year", fresh.school_years)
            # a partner's code for a canonical value may be corrected: replaced
            for m in fresh.descriptor_maps:
                con.execute(
                    "INSERT OR REPLACE INTO ref.descriptor_map VALUES (?, ?, ?, ?)",
                    [m.partner_id, m.descriptor_name, m.local_code_value, m.code_value],
                )
            done = DirectoryImport(
                partners=len(fresh.partners),
                schools=len(fresh.schools),
                programs=len(fresh.programs),
                initiatives=len(fresh.initiatives),
                institutions=len(fresh.institutions),
                school_years=len(fresh.school_years),
                calendar_dates=_insert_calendars(con, doc.calendars),
                descriptor_codes=len(fresh.descriptor_maps),
                already_registered=_size(doc) - _size(fresh),
            )
            s.record(
                "partner",
                f"{what}: {done}",
                providers=tuple(
                    sorted(
                        {p.partner_id for p in doc.partners}
                        | {x.partner_id for x in doc.schools}
                        | {x.partner_id for x in doc.programs}
                        | {x.partner_id for x in doc.descriptor_maps}
                    )
                ),
            )
        return done

    def rename(self, s: Session, kind: str, item_id: str, name: str) -> str:
        """A school's, site's or program's new name (its id, and every row that
        names it, stay); returns the old name."""
        table, id_column, name_column = _NAMED[kind]
        s.require("administer", f"rename {kind} {item_id}", action="partner")
        if not name.strip():
            raise UserError(f"Give the {kind}'s new name.")
        old = self._owned(s.con, kind, item_id)
        s.con.execute(
            f"UPDATE {table} SET {name_column} = ? WHERE {id_column} = ?",
            [name.strip(), item_id],
        )
        s.record(
            "partner",
            f"renamed {kind} {item_id}: {old[1]!r} -> {name.strip()!r}",
            providers=(old[0],),
        )
        return str(old[1])

    def close(self, s: Session, kind: str, item_id: str, on: date) -> None:
        """A school, site or program closed after ``on`` (its last day): its rows
        stay; a record dated after it is quarantined (``closed``)."""
        table, id_column, _ = _NAMED[kind]
        s.require("administer", f"close {kind} {item_id}", action="partner")
        owner, _, closed = self._owned(s.con, kind, item_id)
        s.con.execute(
            f"UPDATE {table} SET closed_on = ? WHERE {id_column} = ?", [on, item_id]
        )
        s.record(
            "partner",
            f"closed {kind} {item_id} after {on.isoformat()}"
            + (f" (was {closed.isoformat()})" if closed else ""),
            providers=(owner,),
        )

    def _owned(self, con: Connection, kind: str, item_id: str) -> tuple[Any, ...]:
        table, id_column, name_column = _NAMED[kind]
        row = con.execute(
            f"SELECT partner_id, {name_column}, closed_on FROM {table} "
            f"WHERE {id_column} = ?",
            [item_id],
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"No {kind} {item_id!r}; `backbone partner show PARTNER` lists a "
                f"partner's schools and programs."
                + (
                    " A school's id is partner/code, e.g. d1/63."
                    if kind == "school"
                    else ""
                )
            )
        return tuple(row)


# what rename and close change: table, id column, name column
_NAMED = {
    "school": ("ref.school", "school_id", "name"),
    "program": ("ref.program", "program_id", "program_name"),
}


def _size(doc: Directory) -> int:
    return (
        len(doc.partners)
        + len(doc.schools)
        + len(doc.programs)
        + len(doc.initiatives)
        + len(doc.institutions)
        + len(doc.school_years)
        + len(doc.descriptor_maps)
    )


def _ids(con: Connection, sql: str) -> set[Any]:
    return {r[0] for r in con.execute(sql).fetchall()}


def _unregistered(
    con: Connection, doc: Directory, *, replace_maps: bool = False
) -> Directory:
    """The directory without what is already registered under the same id."""
    partners = _ids(con, "SELECT partner_id FROM ref.partner")
    schools = _ids(con, "SELECT school_id FROM ref.school")
    programs = _ids(con, "SELECT program_id FROM ref.program")
    initiatives = _ids(con, "SELECT initiative_id FROM ref.initiative")
    institutions = _ids(con, "SELECT institution_id FROM ref.postsecondary_institution")
    years = _ids(con, "SELECT school_year FROM ref.school_year")
    # a map of a code already mapped: a directory leaves it as it is (a steward's
    # correction by command stands); the command replaces it unless it is the same
    maps = {
        tuple(row[: 4 if replace_maps else 3])
        for row in con.execute(
            "SELECT partner_id, descriptor_name, local_code_value, code_value "
            "FROM ref.descriptor_map"
        ).fetchall()
    }
    return doc.model_copy(
        update={
            "partners": [p for p in doc.partners if p.partner_id not in partners],
            "schools": [x for x in doc.schools if x.school_id not in schools],
            "programs": [x for x in doc.programs if x.program_id not in programs],
            "initiatives": [
                x for x in doc.initiatives if x.initiative_id not in initiatives
            ],
            "institutions": [
                x for x in doc.institutions if x.institution_id not in institutions
            ],
            "school_years": [x for x in doc.school_years if x.school_year not in years],
            "descriptor_maps": [
                x
                for x in doc.descriptor_maps
                if (
                    x.partner_id,
                    x.descriptor_name,
                    x.local_code_value,
                    x.code_value,
                )[: 4 if replace_maps else 3]
                not in maps
            ],
        }
    )


def _check_references(con: Connection, doc: Directory, path: Path | None) -> None:
    """Every partner, school and program a directory names exists in it or in the
    warehouse."""
    kinds = dict(con.execute("SELECT partner_id, kind FROM ref.partner").fetchall())
    kinds |= {p.partner_id: p.kind for p in doc.partners}
    schools = _ids(con, "SELECT school_id FROM ref.school") | {
        x.school_id for x in doc.schools
    }
    programs = _ids(con, "SELECT program_id FROM ref.program") | {
        x.program_id for x in doc.programs
    }

    def fail(where: str, message: str) -> None:
        if path is None:
            raise UserError(f"{where}: {message}. Nothing was registered.")
        raise InputFileError(f"{where}: {message}. Nothing was registered.", path=path)

    owners = [("schools", i, x.partner_id) for i, x in enumerate(doc.schools)]
    owners += [("programs", i, x.partner_id) for i, x in enumerate(doc.programs)]
    owners += [
        ("descriptor_maps", i, x.partner_id) for i, x in enumerate(doc.descriptor_maps)
    ]
    for key, i, owner in owners:
        if owner not in kinds:
            fail(f"{key}[{i}].partner_id", f"no partner {owner!r}")
    for i, ini in enumerate(doc.initiatives):
        if kinds.get(ini.funder_partner_id) is None:
            fail(
                f"initiatives[{i}].funder_partner_id",
                f"no partner {ini.funder_partner_id!r}",
            )
        for program in ini.program_ids:
            if program not in programs:
                fail(f"initiatives[{i}].program_ids", f"no program {program!r}")
    years = _ids(con, "SELECT school_year FROM ref.school_year") | {
        y.school_year for y in doc.school_years
    }
    for i, cal in enumerate(doc.calendars):
        for school in cal.school_ids:
            if school not in schools:
                fail(f"calendars[{i}].school_ids", f"no school {school!r}")
        if cal.school_year not in years:
            fail(
                f"calendars[{i}].school_year",
                f"school year {cal.school_year} is not registered; add it under "
                "school_years",
            )


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


def _insert(
    con: Connection,
    table: str,
    items: Sequence[BaseModel],
    *,
    skip: tuple[str, ...] = (),
) -> None:
    """Rows of a ``ref`` table from directory items (their fields are its columns)."""
    if not items:
        return
    columns = tuple(c for c in type(items[0]).model_fields if c not in skip)
    _insert_rows(
        con, table, columns, [tuple(getattr(x, c) for c in columns) for x in items]
    )


def _insert_rows(
    con: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    if rows:
        placeholders = ", ".join("?" for _ in columns)
        con.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
            [list(r) for r in rows],
        )


def _insert_calendars(con: Connection, calendars: Sequence[Calendar]) -> int:
    """Each calendar's instructional days for each of its schools; a day already
    registered for a school is kept, not doubled."""
    total = 0
    for cal in calendars:
        days = cal.days()
        added = con.execute(
            """
            INSERT INTO ref.calendar_date
            SELECT s.school_id, d.date, $year, true
            FROM (SELECT unnest($schools::VARCHAR[]) AS school_id) s,
                 (SELECT unnest($days::DATE[]) AS date) d
            WHERE NOT EXISTS (SELECT 1 FROM ref.calendar_date c
                              WHERE c.school_id = s.school_id AND c.date = d.date)
            RETURNING 1
            """,
            {"year": cal.school_year, "schools": cal.school_ids, "days": days},
        ).fetchall()
        total += len(added)
    return total
