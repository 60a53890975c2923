"""Early-warning indicator definitions: versioned configuration.

The defaults ship as ``stock/indicators.yaml``; a partnership records its own with
``backbone indicators definitions set FILE``. Every version is kept in
``gov.indicator_definition`` (never overwritten) and every computed value names
the version it used, so a roster from last spring can still be explained after the
cut points change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backbone.engines import Connection
from backbone.engines.sql import literal
from backbone.errors import InputFileError, UserError
from backbone.model.calendar import in_earlier_calendar_year, school_year_last_day_sql
from backbone.model.descriptors import GRADE_LEVELS
from backbone.session import Session
from backbone.yamltext import read_yaml

__all__ = [
    "DefinitionStore",
    "DefinitionVersion",
    "Definitions",
    "DefinitionsInUse",
    "default_definitions",
    "parse_definitions",
]

GRADE_NAMES = tuple(name for name, _ in GRADE_LEVELS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attendance(_Strict):
    absence_categories: tuple[str, ...] = ("Excused Absence", "Unexcused Absence")
    warning_below: float = Field(0.95, gt=0, le=1)
    chronic_below: float = Field(0.90, gt=0, le=1)
    severe_below: float = Field(0.80, gt=0, le=1)
    chronic_days: float = Field(15, gt=0)
    chronic_days_calendar: int = Field(180, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Attendance:
        if not self.severe_below <= self.chronic_below <= self.warning_below:
            raise ValueError(
                "attendance cut points must satisfy severe_below <= chronic_below "
                "<= warning_below"
            )
        return self


class Behavior(_Strict):
    suspension_disciplines: tuple[str, ...]
    suspension_days_at_risk: float = Field(1, gt=0)
    conduct_behaviors: tuple[str, ...]
    state_offense_behaviors: tuple[str, ...]
    participation_codes: tuple[str, ...] = ("Perpetrator",)
    incidents_warning: int = Field(2, ge=1)
    incidents_at_risk: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Behavior:
        if self.incidents_warning > self.incidents_at_risk:
            raise ValueError("incidents_warning must not exceed incidents_at_risk")
        return self


class Course(_Strict):
    ela_subjects: tuple[str, ...]
    math_subjects: tuple[str, ...]
    core_subjects: tuple[str, ...]
    failing_letters: tuple[str, ...] = ("F",)
    mark_warning_below: float = 72
    mark_at_risk_below: float = 65
    core_fails_warning: int = Field(1, ge=1)
    core_fails_at_risk: int = Field(2, ge=1)
    gpa_warning_below: float = 2.5
    gpa_at_risk_at_or_below: float = 2.0
    term_ends: dict[str, str]
    terms_per_year: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _valid(self) -> Course:
        if self.mark_at_risk_below > self.mark_warning_below:
            raise ValueError("mark_at_risk_below must not exceed mark_warning_below")
        if self.core_fails_warning > self.core_fails_at_risk:
            raise ValueError("core_fails_warning must not exceed core_fails_at_risk")
        if self.gpa_at_risk_at_or_below > self.gpa_warning_below:
            raise ValueError(
                "gpa_at_risk_at_or_below must not exceed gpa_warning_below"
            )
        for term, end in self.term_ends.items():
            try:
                month, day = (int(p) for p in end.split("-"))
                datetime(2000, month, day)
            except ValueError:
                raise ValueError(
                    f"term_ends[{term}] must be a month-day such as 01-31, not {end!r}"
                ) from None
        return self


class OnTrack9(_Strict):
    grade_level: str = "Ninth grade"
    min_credits: float = Field(5.0, ge=0)
    max_core_semester_fails: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _grade(self) -> OnTrack9:
        if self.grade_level not in GRADE_NAMES:
            raise ValueError(
                f"unknown grade level {self.grade_level!r}; use an Ed-Fi name such "
                "as 'Ninth grade'"
            )
        return self


class Credits(_Strict):
    required_by_end_of_grade: dict[str, float]

    @model_validator(mode="after")
    def _grades(self) -> Credits:
        unknown = set(self.required_by_end_of_grade) - set(GRADE_NAMES)
        if unknown:
            raise ValueError(
                f"unknown grade level {sorted(unknown)[0]!r}; use Ed-Fi names such "
                "as 'Ninth grade'"
            )
        return self


class Tiers(_Strict):
    watch_min_points: int = Field(2, ge=1, le=6)
    high_risk_min_points: int = Field(4, ge=1, le=6)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if self.watch_min_points > self.high_risk_min_points:
            raise ValueError("watch_min_points must not exceed high_risk_min_points")
        return self


class Definitions(_Strict):
    name: str
    attendance: Attendance
    behavior: Behavior
    course: Course
    on_track_9: OnTrack9
    credits: Credits
    tiers: Tiers

    def term_end_sql(self, term_column: str, year_column: str, start_month: int) -> str:
        """SQL for the day a term's marks are final: its month-day in the school
        year (placed in a calendar year by :mod:`backbone.model.calendar`); a term
        with no configured end counts at the end of the school year."""
        cases = " ".join(
            f"WHEN {term_column} = {literal(term)} THEN make_date("
            f"{year_column} - {int(in_earlier_calendar_year(int(end[:2]), start_month))}, "
            f"{int(end[:2])}, {int(end[3:])})"
            for term, end in self.course.term_ends.items()
        )
        fallback = school_year_last_day_sql(year_column, start_month)
        return f"(CASE {cases} ELSE {fallback} END)" if cases else fallback


def parse_definitions(text: str, source: str = "definitions") -> Definitions:
    """The definitions in ``text`` (YAML), or a UserError naming what is wrong."""
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise InputFileError(f"{source}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{source}: expected a mapping of sections.")
    try:
        return Definitions.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise InputFileError(
            f"{source}: {where}: {first['msg']}. Fix it and record it again "
            f"({len(exc.errors())} problem(s) in all)."
        ) from None


def default_text() -> str:
    return (
        resources.files("backbone.measures")
        .joinpath("stock/indicators.yaml")
        .read_text(encoding="utf-8")
    )


def default_definitions() -> Definitions:
    return parse_definitions(default_text(), "stock/indicators.yaml")


DEFAULTS_BY = "backbone defaults"


@dataclass(frozen=True)
class DefinitionVersion:
    """One version of the definitions, as ``history`` lists it."""

    version: int
    recorded_at: datetime | None
    """None: the shipped defaults, in use but not recorded yet."""
    recorded_by: str
    note: str | None


@dataclass(frozen=True)
class DefinitionsInUse:
    """The definitions computations use now, and the version that names them."""

    version: int
    definitions: Definitions


class DefinitionStore:
    """``wh.indicators.definitions``: every version kept, the latest in use.

    Reading never writes: before anything is recorded, the shipped defaults are
    version 1. The first write that needs a stored version (computing indicators,
    recording new definitions) records them as version 1 in its own unit of work, so
    every stored value names a version that is kept."""

    def __init__(self, con: Connection, clock: Callable[[], datetime]) -> None:
        self._con = con
        self._clock = clock

    def current(self) -> DefinitionsInUse:
        """The version in use (the shipped defaults as version 1 until one is
        recorded)."""
        return _latest(self._con)

    def get(self, version: int) -> Definitions:
        return parse_definitions(self.text(version), f"version {version}")

    def text(self, version: int | None = None) -> str:
        if version is None:
            version = self.current().version
        row = self._con.execute(
            "SELECT document FROM gov.indicator_definition WHERE version = ?",
            [version],
        ).fetchone()
        if row is not None:
            return str(row[0])
        if version == 1 and _stored_latest(self._con) is None:
            return default_text()
        raise UserError(
            f"no indicator definitions version {version}; "
            "`backbone indicators definitions history` shows them."
        )

    def history(self) -> list[DefinitionVersion]:
        rows = self._con.execute(
            "SELECT version, recorded_at, recorded_by, note "
            "FROM gov.indicator_definition ORDER BY version"
        ).fetchall()
        if not rows:
            return [DefinitionVersion(1, None, DEFAULTS_BY, "shipped defaults")]
        return [
            DefinitionVersion(int(v), at, str(by), note) for v, at, by, note in rows
        ]

    def _for_write(self, s: Session) -> DefinitionsInUse:
        """The version a write in ``s`` uses (computing indicators, which is
        authorized and audited itself); the shipped defaults are recorded as
        version 1 first when nothing is recorded yet, as part of that write."""
        _record_defaults(s.con, s.clock())
        return _latest(s.con)

    def record(self, s: Session, text: str, *, note: str | None = None) -> int:
        """Record ``text`` (validated) as a new version: a steward admin's, audited.
        The same document as the latest is not a new version. Later computations
        use it; values already computed keep theirs."""
        who = s.require(
            "administer", "record indicator definitions", action="definitions"
        )
        parse_definitions(text)
        con, now = s.con, s.clock()
        _record_defaults(con, now)
        checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
        latest = _stored_latest(con)
        assert latest is not None  # the defaults at least
        if latest[1] == checksum:
            version = latest[0]
            s.record(
                "definitions",
                f"indicator definitions version {version} (the same as in use)",
                detail={"version": version, "checksum": checksum, "note": note},
            )
            return version
        version = latest[0] + 1
        con.execute(
            "INSERT INTO gov.indicator_definition VALUES (?, ?, ?, ?, ?, ?)",
            [version, text, checksum, now, who.user_id, note],
        )
        s.record(
            "definitions",
            f"indicator definitions version {version}",
            detail={"version": version, "checksum": checksum, "note": note},
        )
        return version

    def record_file(self, s: Session, path: Path, *, note: str | None = None) -> int:
        """Record the definitions in a YAML file (see :meth:`record`)."""
        s.require("administer", "record indicator definitions", action="definitions")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read it ({exc.strerror}).") from None
        except UnicodeDecodeError:
            raise InputFileError(
                f"{path}: not UTF-8 text; save it as UTF-8 YAML and record it again."
            ) from None
        parse_definitions(text, str(path))
        return self.record(s, text, note=note)


def _stored_latest(con: Connection) -> tuple[int, str] | None:
    """(version, checksum) of the latest recorded version, if any."""
    row = con.execute(
        "SELECT version, checksum FROM gov.indicator_definition "
        "ORDER BY version DESC LIMIT 1"
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _latest(con: Connection) -> DefinitionsInUse:
    row = con.execute(
        "SELECT version, document FROM gov.indicator_definition "
        "ORDER BY version DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return DefinitionsInUse(1, default_definitions())
    return DefinitionsInUse(
        int(row[0]), parse_definitions(str(row[1]), f"version {row[0]}")
    )


def _record_defaults(con: Connection, now: datetime) -> bool:
    """Record the shipped defaults as version 1 if nothing is recorded yet (inside
    the caller's transaction); whether it did."""
    if _stored_latest(con) is not None:
        return False
    text = default_text()
    con.execute(
        "INSERT INTO gov.indicator_definition VALUES (1, ?, ?, ?, ?, NULL)",
        [text, hashlib.sha256(text.encode("utf-8")).hexdigest(), now, DEFAULTS_BY],
    )
    return True
