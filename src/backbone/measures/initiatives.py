"""Funders' initiatives: which programs a funder pays for, over which period, the
outcomes it tracks and the least dosage that counts as being served.

An initiative is a small YAML document (or the same through the CLI); setting it
replaces the initiative's row in ``ref.initiative`` and its programs, in one
transaction, keeping the YAML as set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.model.calendar import school_year_of
from backbone.session import Session
from backbone.yamltext import read_yaml

__all__ = ["OUTCOMES", "Composite", "Dosage", "Initiative", "Initiatives", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    code: str
    label: str
    unit: str
    """what an effect is measured in"""
    yearly: bool
    """measured every school year (so a baseline year exists), or once"""
    scale: float = 1.0
    """multiplies the per-student value (0/1 outcomes become percentages)"""


OUTCOMES: dict[str, Outcome] = {
    o.code: o
    for o in (
        Outcome("attendance_rate", "Attendance rate", "percentage points", True),
        Outcome(
            "suspended", "Suspended at least once", "percentage points", True, 100.0
        ),
        Outcome("course_mark", "Mean course mark", "points of 100", True),
        Outcome("pass_rate", "Courses passed", "percentage points", True),
        Outcome("gpa", "Grade point average", "GPA points", True),
        Outcome("ela_score", "ELA (or reading) test score", "scale-score points", True),
        Outcome("math_score", "Math test score", "scale-score points", True),
        Outcome("graduated", "Graduated on time", "percentage points", False, 100.0),
        Outcome(
            "college_enrolled",
            "Enrolled in college within a year of graduating",
            "percentage points",
            False,
            100.0,
        ),
    )
}


class Composite(BaseModel):
    """An outcome a funder defines as the sum or mean of measured ones (reading and
    math together), each student's from theirs, known only when all of them are."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    of: tuple[str, ...] = Field(min_length=2)
    combine: Literal["mean", "sum"] = "mean"

    def outcome(self) -> Outcome:
        parts = [OUTCOMES[c] for c in self.of]
        return Outcome(
            self.code,
            self.label,
            parts[0].unit,
            all(p.yearly for p in parts),
        )


class Dosage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sessions: int = Field(0, ge=0)
    hours: float = Field(0.0, ge=0)


class Initiative(BaseModel):
    """One initiative as a funder defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    initiative_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    funder: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""
    begin: date | None = None
    end: date | None = None
    programs: tuple[str, ...] = Field(min_length=1)
    target_outcomes: tuple[str, ...] = ()
    min_dosage: Dosage = Field(default_factory=lambda: Dosage(sessions=0, hours=0.0))
    composite_outcomes: tuple[Composite, ...] = ()

    @model_validator(mode="after")
    def _known_outcomes(self) -> Initiative:
        codes = [c.code for c in self.composite_outcomes]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"composite_outcomes: {twice[0]!r} is defined twice")
        for c in self.composite_outcomes:
            if c.code in OUTCOMES:
                raise ValueError(
                    f"composite_outcomes: {c.code!r} has the name of a measured outcome"
                )
            bad = [o for o in c.of if o not in OUTCOMES]
            if bad:
                raise ValueError(
                    f"composite_outcomes: {c.code!r} names an unknown outcome {bad[0]!r}; use "
                    f"{', '.join(OUTCOMES)}"
                )
            units = {OUTCOMES[o].unit for o in c.of}
            scales = {OUTCOMES[o].scale for o in c.of}
            if len(units) > 1 or scales != {1.0}:
                raise ValueError(
                    f"composite_outcomes: {c.code!r} adds outcomes measured in different units "
                    f"({', '.join(sorted(units))}) or yes/no outcomes; combine scores "
                    "of one kind (e.g. ela_score and math_score)"
                )
        known = self.outcomes()
        bad = [v for v in self.target_outcomes if v not in known]
        if bad:
            raise ValueError(
                f"target_outcomes: unknown outcome {bad[0]!r}; use one of "
                f"{', '.join(known)} (or define it under composite_outcomes)"
            )
        return self

    def outcomes(self) -> dict[str, Outcome]:
        """Every outcome an evaluation of it estimates: the measured ones and its
        composites."""
        return OUTCOMES | {c.code: c.outcome() for c in self.composite_outcomes}

    def period_years(self, start_month: int) -> tuple[int | None, int | None]:
        """The first and last school years the period touches (None: open)."""

        def year(d: date | None) -> int | None:
            return None if d is None else school_year_of(d, start_month)

        return year(self.begin), year(self.end)


def _load(text: str, source: str) -> Initiative:
    try:
        data: Any = read_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot be read"
        raise InputFileError(
            f"{source}: not valid YAML{where}: {problem}. Fix it and set it again."
        ) from None
    if not isinstance(data, dict):
        raise InputFileError(f"{source}: an initiative is a mapping of fields.")
    try:
        return Initiative.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InputFileError(
            f"{source}: {f'field {where}: ' if where else ''}{message}. Fix it and "
            "set it again."
        ) from None


def _composites(definition: str | None) -> tuple[Composite, ...]:
    """The composites kept in an initiative's recorded definition (directory
    imports record none)."""
    data = read_yaml(definition) if definition else None
    if not isinstance(data, dict):
        return ()
    return tuple(
        Composite.model_validate(c) for c in data.get("composite_outcomes") or ()
    )


class Initiatives:
    """``wh.initiatives``: the funders' initiatives the warehouse knows."""

    def __init__(self, con: Connection) -> None:
        self._con = con

    def set(self, s: Session, initiative: Initiative) -> Initiative:
        """Record (or replace) an initiative: a steward admin's, audited. Its funder
        and programs must exist."""
        s.require(
            "administer",
            f"record initiative {initiative.initiative_id}",
            providers=(initiative.funder,),
            action="initiative",
        )
        con = s.con
        replaced = _exists(con, initiative.initiative_id)
        funder = con.execute(
            "SELECT kind FROM ref.partner WHERE partner_id = ?",
            [initiative.funder],
        ).fetchone()
        if funder is None:
            raise NotFoundError(f"no partner {initiative.funder!r}.")
        if str(funder[0]).lower() != "funder":
            raise UserError(f"{initiative.funder} is a {funder[0]}, not a funder.")
        known = {
            r[0]
            for r in con.execute(
                "SELECT program_id FROM ref.program WHERE list_contains(?, program_id)",
                [list(initiative.programs)],
            ).fetchall()
        }
        missing = [p for p in initiative.programs if p not in known]
        if missing:
            raise NotFoundError(
                f"no program {missing[0]!r}; `backbone partner import` adds programs."
            )
        if initiative.begin and initiative.end and initiative.end < initiative.begin:
            raise UserError("the initiative ends before it begins.")
        text = yaml.safe_dump(
            initiative.model_dump(mode="json"), sort_keys=False, allow_unicode=True
        )
        with transaction(con):
            con.execute(
                "DELETE FROM ref.initiative_program WHERE initiative_id = ?",
                [initiative.initiative_id],
            )
            con.execute(
                "DELETE FROM ref.initiative WHERE initiative_id = ?",
                [initiative.initiative_id],
            )
            con.execute(
                "INSERT INTO ref.initiative (initiative_id, funder_partner_id, name, "
                "begin_date, end_date, description, target_outcomes, min_sessions, "
                "min_hours, definition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    initiative.initiative_id,
                    initiative.funder,
                    initiative.name,
                    initiative.begin,
                    initiative.end,
                    initiative.description,
                    list(initiative.target_outcomes),
                    initiative.min_dosage.sessions,
                    initiative.min_dosage.hours,
                    text,
                ],
            )
            con.executemany(
                "INSERT INTO ref.initiative_program VALUES (?, ?)",
                [[initiative.initiative_id, p] for p in initiative.programs],
            )
            s.record(
                "initiative",
                f"{'replaced' if replaced else 'recorded'} initiative "
                f"{initiative.initiative_id} ({initiative.name}) of {initiative.funder}",
                providers=(initiative.funder,),
                detail={"programs": list(initiative.programs)},
            )
        return initiative

    def set_file(self, s: Session, path: Path) -> Initiative:
        """Record (or replace) the initiative a YAML file describes (see
        :meth:`set`)."""
        s.require(
            "administer", f"record the initiative in {path.name}", action="initiative"
        )
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputFileError(f"{path}: no such file.") from None
        except UnicodeDecodeError:
            raise InputFileError(f"{path}: not UTF-8 text; save it as UTF-8.") from None
        return self.set(s, _load(text, str(path)))

    def get(self, initiative_id: str) -> Initiative:
        row = self._con.execute(
            "SELECT initiative_id, funder_partner_id, name, description, begin_date, "
            "end_date, target_outcomes, min_sessions, min_hours, definition "
            "FROM ref.initiative "
            "WHERE initiative_id = ?",
            [initiative_id],
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no initiative {initiative_id!r}; `backbone outcomes initiative list` "
                "shows them."
            )
        programs = [
            r[0]
            for r in self._con.execute(
                "SELECT program_id FROM ref.initiative_program WHERE initiative_id = ? "
                "ORDER BY program_id",
                [initiative_id],
            ).fetchall()
        ]
        return Initiative(
            initiative_id=row[0],
            funder=row[1],
            name=row[2],
            description=row[3] or "",
            begin=row[4],
            end=row[5],
            programs=tuple(programs),
            target_outcomes=tuple(row[6] or ()),
            min_dosage=Dosage(sessions=row[7] or 0, hours=row[8] or 0.0),
            composite_outcomes=_composites(row[9]),
        )

    def list(self, funder: str | None = None) -> list[Initiative]:
        if (
            funder is not None
            and not self._con.execute(
                "SELECT 1 FROM ref.partner WHERE partner_id = ?", [funder]
            ).fetchone()
        ):
            raise NotFoundError(f"no partner {funder!r}.")
        ids = [
            r[0]
            for r in self._con.execute(
                "SELECT initiative_id FROM ref.initiative "
                "WHERE ? IS NULL OR funder_partner_id = ? ORDER BY initiative_id",
                [funder, funder],
            ).fetchall()
        ]
        return [self.get(i) for i in ids]


def _exists(con: Connection, initiative_id: str) -> bool:
    return (
        con.execute(
            "SELECT 1 FROM ref.initiative WHERE initiative_id = ?", [initiative_id]
        ).fetchone()
        is not None
    )
