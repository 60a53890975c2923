"""The partnership directory: one file (YAML or JSON) describing the partnership —
partners, schools and sites, programs, funders' initiatives, college institutions,
school years and instructional calendars — read and checked here, before anything
is registered, so every mistake is reported with its file and field.

The format is documented in docs/PARTNERSHIP.md; ``backbone partner import`` reads
it, and ``backbone demo`` writes one (``community.json``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from backbone.errors import InputFileError, UserError
from backbone.model.descriptors import descriptor_value_problem
from backbone.model.outcomes import OUTCOME_CODES
from backbone.model.schema import PARTNER_KINDS
from backbone.yamltext import read_yaml

__all__ = [
    "DIRECTORY_NAMES",
    "Calendar",
    "DescriptorMapItem",
    "Directory",
    "InstitutionItem",
    "ProgramItem",
    "SchoolItem",
    "SchoolYearItem",
    "calendar_dates_from_file",
    "check_directory",
    "find_directory",
    "read_directory",
]

# the names `backbone partner import DIR` looks for, in this order
DIRECTORY_NAMES = (
    "partnership.yaml",
    "partnership.yml",
    "partnership.json",
    "community.json",
)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Id = Annotated[str, Field(min_length=1, max_length=128)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactItem(_Item):
    name: Id
    email: Id
    role: str | None = None


class PartnerItem(_Item):
    partner_id: Id
    name: Id
    kind: str
    ed_org_id: int | None = None
    contacts: list[ContactItem] = []

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        if kind not in PARTNER_KINDS:
            raise ValueError(
                f"kind {kind!r} is not known; use one of {', '.join(PARTNER_KINDS)}"
            )
        return kind


class SchoolItem(_Item):
    partner_id: Id
    local_school_code: Id
    name: Id
    school_level: str | None = None
    lowest_grade_level: str | None = None
    highest_grade_level: str | None = None
    ed_org_id: int | None = None
    school_id: str | None = None
    """``partner/code`` (the default); given, it must be exactly that."""

    @field_validator("lowest_grade_level", "highest_grade_level")
    @classmethod
    def _grade(cls, value: str | None) -> str | None:
        problem = value and descriptor_value_problem("GradeLevelDescriptor", value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _id(self) -> SchoolItem:
        expected = f"{self.partner_id}/{self.local_school_code}"
        if self.school_id is None:
            self.school_id = expected
        elif self.school_id != expected:
            raise ValueError(
                f"school_id {self.school_id!r} must be partner_id/local_school_code "
                f"({expected!r}), or left out"
            )
        return self


class ProgramItem(_Item):
    program_id: Id
    partner_id: Id
    program_name: Id
    program_type: str | None = None

    @field_validator("program_type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        problem = value and descriptor_value_problem("ProgramTypeDescriptor", value)
        if problem:
            raise ValueError(problem)
        return value


class InitiativeItem(_Item):
    initiative_id: Id
    funder_partner_id: Id
    name: Id
    begin_date: date | None = None
    end_date: date | None = None
    description: str | None = None
    target_outcomes: list[str] = []
    min_sessions: int | None = Field(default=None, ge=0)
    min_hours: float | None = Field(default=None, ge=0)
    program_ids: list[Id] = []

    @field_validator("target_outcomes")
    @classmethod
    def _known_outcomes(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in OUTCOME_CODES]
        if bad:
            raise ValueError(
                f"unknown outcome {bad[0]!r}; use one of {', '.join(OUTCOME_CODES)} "
                "(composites are defined with `backbone outcomes initiative set`)"
            )
        return value


class InstitutionItem(_Item):
    institution_id: Id
    name: Id
    level: str | None = None
    control: str | None = None
    state: str | None = None


class SchoolYearItem(_Item):
    school_year: int = Field(ge=1900, le=2200, description="the ending year: 2026")
    begin_date: date
    end_date: date
    description: str | None = None

    @model_validator(mode="after")
    def _dates(self) -> SchoolYearItem:
        if self.end_date <= self.begin_date:
            raise ValueError("end_date must be after begin_date")
        if self.description is None:
            self.description = f"{self.school_year - 1}-{self.school_year % 100:02d}"
        return self


class Calendar(_Item):
    """The instructional days of some schools in one school year: listed, or made
    from the first and last day, the weekdays taught and the holidays."""

    school_year: int = Field(ge=1900, le=2200)
    school_ids: list[Id] = Field(min_length=1)
    instructional_dates: list[date] | None = None
    first_day: date | None = None
    last_day: date | None = None
    weekdays: list[str] = ["mon", "tue", "wed", "thu", "fri"]
    holidays: list[date | str] = []
    """dates, or ranges written ``2025-12-22..2026-01-02``"""

    @model_validator(mode="after")
    def _one_way(self) -> Calendar:
        listed = self.instructional_dates is not None
        made = self.first_day is not None or self.last_day is not None
        if listed == made:
            raise ValueError(
                "give either instructional_dates, or first_day and last_day "
                "(with weekdays and holidays)"
            )
        if made and (self.first_day is None or self.last_day is None):
            raise ValueError("give both first_day and last_day")
        if made and self.last_day < self.first_day:  # type: ignore[operator]
            raise ValueError("last_day is before first_day")
        bad = [d for d in self.weekdays if d.lower()[:3] not in _WEEKDAYS]
        if bad:
            raise ValueError(f"weekdays {bad} are not mon, tue, … sun")
        self.days()  # holidays parse
        return self

    def days(self) -> list[date]:
        """The instructional dates, in order."""
        if self.instructional_dates is not None:
            return sorted(set(self.instructional_dates))
        assert self.first_day is not None and self.last_day is not None
        off: set[date] = set()
        for h in self.holidays:
            off |= set(_holiday(h))
        taught = {_WEEKDAYS.index(d.lower()[:3]) for d in self.weekdays}
        n = (self.last_day - self.first_day).days + 1
        every = (self.first_day + timedelta(days=i) for i in range(n))
        return [d for d in every if d.weekday() in taught and d not in off]


def _holiday(h: date | str) -> list[date]:
    if isinstance(h, date):
        return [h]
    first, sep, last = h.partition("..")
    try:
        a = date.fromisoformat(first.strip())
        b = date.fromisoformat(last.strip()) if sep else a
    except ValueError:
        raise ValueError(
            f"holiday {h!r} is not a date or a range like 2025-12-22..2026-01-02"
        ) from None
    if b < a:
        raise ValueError(f"holiday range {h!r} ends before it starts")
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


class DescriptorMapItem(_Item):
    """A partner's local code for a canonical one (``F`` is ``Female``), used by
    every mapping of that partner that reads the descriptor."""

    partner_id: Id
    descriptor_name: Id
    local_code_value: Id
    code_value: Id

    @model_validator(mode="after")
    def _known(self) -> DescriptorMapItem:
        problem = descriptor_value_problem(self.descriptor_name, self.code_value)
        if problem:
            raise ValueError(problem)
        return self


class Directory(_Item):
    partners: list[PartnerItem] = []
    schools: list[SchoolItem] = []
    programs: list[ProgramItem] = []
    initiatives: list[InitiativeItem] = []
    institutions: list[InstitutionItem] = []
    school_years: list[SchoolYearItem] = []
    calendars: list[Calendar] = []
    descriptor_maps: list[DescriptorMapItem] = []

    @model_validator(mode="after")
    def _unique(self) -> Directory:
        ids: dict[str, list[Any]] = {
            "partners": [x.partner_id for x in self.partners],
            "schools": [x.school_id for x in self.schools],
            "programs": [x.program_id for x in self.programs],
            "initiatives": [x.initiative_id for x in self.initiatives],
            "institutions": [x.institution_id for x in self.institutions],
            "school_years": [x.school_year for x in self.school_years],
        }
        for key, values in ids.items():
            seen: set[Any] = set()
            for i, value in enumerate(values):
                if value in seen:
                    raise ValueError(f"{key}[{i}]: {value!r} appears twice")
                seen.add(value)
        return self


def calendar_dates_from_file(path: Path) -> list[date]:
    """Instructional dates listed in a file, one a line (ISO, ``2025-09-02``); a
    first line that is not a date is a header; a CSV's first column is read."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the calendar ({exc}).", path=path) from None
    days: list[date] = []
    for number, line in enumerate(lines, start=1):
        text = line.split(",")[0].strip().strip('"')
        if not text:
            continue
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            if number == 1:
                continue  # a header
            raise InputFileError(
                f"{text!r} is not a date like 2025-09-02; list one instructional "
                "day a line.",
                path=path,
                row=number,
            ) from None
    if not days:
        raise InputFileError("lists no instructional day.", path=path)
    return days


def find_directory(path: Path) -> Path:
    """The directory file itself, or the one inside a partnership folder."""
    if path.is_dir():
        for name in DIRECTORY_NAMES:
            if (path / name).is_file():
                return path / name
        raise InputFileError(
            f"no directory file in this folder; name it {DIRECTORY_NAMES[0]} "
            "(docs/PARTNERSHIP.md describes it).",
            path=path,
        )
    if not path.is_file():
        raise InputFileError("no such file or folder.", path=path)
    return path


def read_directory(path: Path) -> Directory:
    """Parse and check a directory file; every problem names the file and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the directory ({exc}).", path=path) from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else read_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputFileError(
            f"not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc}).",
            path=path,
        ) from None
    if not isinstance(doc, dict):
        raise InputFileError(
            "expected a mapping with partners, schools, programs, … "
            "(docs/PARTNERSHIP.md).",
            path=path,
        )
    return check_directory(doc, path)


def check_directory(doc: dict[str, Any], path: Path | None = None) -> Directory:
    """A directory from its parsed content (a file's, or a command's options),
    every problem named by field (and file)."""
    try:
        return Directory.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]
            ).lstrip(".")
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where or 'top level'}: {msg}")
        more = exc.error_count() - len(problems)
        message = (
            "; ".join(problems)
            + (f"; and {more} more" if more > 0 else "")
            + ". Nothing was registered."
        )
        if path is None:
            raise UserError(message) from None
        raise InputFileError(message, path=path) from None
