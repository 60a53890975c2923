"""Submit every file the demo community sent, in the order partners would send them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from backbone.demo.community import CBOS, COLLEGE_AGENCY, DISTRICTS
from backbone.demo.mappings import descriptor_maps

if TYPE_CHECKING:
    from backbone.governance import Principal
    from backbone.warehouse import Warehouse

__all__ = [
    "IngestSummary",
    "Loads",
    "RefusedColumns",
    "ingest_community",
    "submission_plan",
]

EDFI_ORDER = (
    "students",
    "studentEducationOrganizationAssociations",
    "studentSchoolAssociations",
    "studentDisciplineIncidentBehaviorAssociations",
    "disciplineActions",
    "courseTranscripts",
    "studentAcademicRecords",
    "studentAssessments",
)
DISTRICT_ORDER = (
    "students",
    "enrollments",
    "discipline",
    "courses",
    "gpa",
    "assessments",
    "graduates",
)


@dataclass(frozen=True)
class Loads:
    """What submissions loaded: files, and rows read, loaded and quarantined."""

    files: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0

    def __add__(self, other: Loads) -> Loads:
        return Loads(
            self.files + other.files,
            self.rows_read + other.rows_read,
            self.rows_loaded + other.rows_loaded,
            self.rows_quarantined + other.rows_quarantined,
        )


@dataclass(frozen=True)
class RefusedColumns:
    """A submission whose columns no mapping declared: refused, never stored."""

    submission_id: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class IngestSummary:
    by_partner: dict[str, Loads] = field(default_factory=dict)
    """each partner's submissions, in the order they were sent"""
    refused_columns: tuple[RefusedColumns, ...] = ()

    @property
    def total(self) -> Loads:
        return sum(self.by_partner.values(), Loads())

    @property
    def submissions(self) -> int:
        return self.total.files

    @property
    def rows_read(self) -> int:
        return self.total.rows_read

    @property
    def rows_loaded(self) -> int:
        return self.total.rows_loaded

    @property
    def rows_quarantined(self) -> int:
        return self.total.rows_quarantined


def submission_plan(community: Path) -> list[tuple[str, str, Path]]:
    """(partner, feed, file) in the order partners send them."""
    plan: list[tuple[str, str, Path]] = []
    partners = community / "partners"
    for d in DISTRICTS:
        for year in sorted((partners / d.partner_id).iterdir()):
            files = sorted(year.iterdir())
            if d.file_format == "edfi-json":
                for stem in EDFI_ORDER:
                    plan += [
                        (d.partner_id, "student-records", f)
                        for f in files
                        if f.stem == stem
                    ]
                plan += [
                    (d.partner_id, "attendance", f)
                    for f in files
                    if f.stem == "studentSchoolAttendanceEvents"
                ]
            elif d.file_format == "xlsx":
                plan += [(d.partner_id, "student-records", f) for f in files]
                plan += [(d.partner_id, "attendance", f) for f in files]
            else:
                for stem in DISTRICT_ORDER:
                    plan += [
                        (d.partner_id, "student-records", f)
                        for f in files
                        if f.stem == stem
                    ]
                plan += [
                    (d.partner_id, "attendance", f)
                    for f in files
                    if f.stem.startswith("attendance")
                ]
    for c in CBOS:
        files = sorted((partners / c.partner_id).iterdir())
        rosters = [
            f for f in files if f.name.startswith(("roster", "advisees", "mentoring"))
        ]
        sessions = [f for f in files if f.name.startswith(("sessions", "meetings"))]
        plan += [(c.partner_id, "rosters", f) for f in rosters + sessions]
    agency = COLLEGE_AGENCY[0]
    for year in sorted((partners / agency).iterdir()):
        for stem in ("students", "terms", "events"):
            plan += [
                (agency, "college-records", f)
                for f in sorted(year.iterdir())
                if f.stem == stem
            ]
    return plan


def ingest_community(
    wh: Warehouse,
    community: Path,
    on: date,
    progress: Callable[[str], None] | None = None,
    uploaders: dict[str, Principal] | None = None,
    steward: Principal | None = None,
) -> IngestSummary:
    """Every file, uploaded by its partner's uploader (created if not given); the
    steward admin records the partners' code maps."""
    if uploaders is None:
        from backbone.demo.users import create_demo_users

        users = create_demo_users(wh)
        uploaders, steward = users.uploaders, users.steward
    steward = steward or wh.users.get("steward")
    say = progress or (lambda _m: None)
    target = wh.path / "mappings"
    for source in (community / "mappings").rglob("*.yaml"):
        dest = target / source.relative_to(community / "mappings")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    with wh.session(steward) as s:
        for (partner, descriptor), codes in descriptor_maps().items():
            wh.descriptor_maps.set(s, partner, descriptor, codes)
    by_partner: dict[str, Loads] = {}
    refused: list[RefusedColumns] = []
    for partner, feed, path in submission_plan(community):
        say(f"{partner}: {path.name}")
        with wh.session(uploaders[partner]) as s:
            results = wh.ingest.submit(s, partner, feed, [path], on=on)
        for result in results:
            by_partner[partner] = by_partner.get(partner, Loads()) + Loads(
                1, result.rows_read, result.rows_loaded, result.rows_quarantined
            )
            if result.undeclared or result.dropped:
                refused.append(
                    RefusedColumns(
                        result.submission_id,
                        (*result.undeclared, *result.dropped),
                    )
                )
    return IngestSummary(by_partner, tuple(refused))
