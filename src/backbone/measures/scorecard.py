"""The partnership's shared-measurement scorecard, and each partner's "what we get"
page for its board.

**Scorecard.** A small set of community indicators, measured the same way for
every district, each a rate release by school year and district: every row is a
district beside the community (the gate's ``(all)`` margin), and a student who
attended two districts counts once in the community, in the district attended
last. What each indicator counts is in its ``definition``; in short:

- ``chronic_absence``: of students with a known attendance rate in the school
  year's year-end early-warning snapshot (the latest snapshot for a year under
  way), those below the *current* indicator definitions' chronic threshold, days
  and absences added up across districts first (:func:`derived_units_sql`);
- ``on_track_9``: of first-time ninth graders (ninth grade in no earlier
  snapshot) with a full year of terms, those on track by the definitions' rule;
- ``graduation_4yr``: of the cohort expected to graduate with the class of the
  year (the ``class_of_school_year`` of the student's latest enrollment that has
  one, else the first ninth-grade year + 3), those with a diploma by Aug 31 of
  that year; students whose last enrollment ended in a transfer (out of the
  community: no later enrollment anywhere) or death, without a diploma, are
  left out of the cohort; a class is shown once its Aug 31 has passed;
- ``college_first_fall`` / ``college_persistence``: of the class's graduates, as
  :mod:`backbone.measures.college` counts them (NSC's first fall; persistence
  of first-fall enrollees to a second fall), by the high school's district;
- ``k_readiness``: of children with a kindergarten-entry (readiness) assessment
  in the year (an identifier or subject naming one: KRA / KEA / KEI, or
  "kindergarten" or a kindergarten assessment with "readiness" / "ready" /
  "entry"), those whose first such result's performance level is a ready one
  (:data:`READY_LEVELS`). Where no such assessment exists it says "no data".

An indicator the reader's purpose does not reach is marked refused with the
reason; the rest stand.

The SQL is in :mod:`backbone.measures.scorecard_sql`; each partner's "what we
get" page in :mod:`backbone.measures.what_we_get`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.errors import PolicyDenied, UserError
from backbone.governance.access import Access
from backbone.governance.release import TOTAL, Release
from backbone.measures.college import college_release
from backbone.measures.indicator_sql import COMPONENT_COLUMNS
from backbone.measures.indicators import Snapshot
from backbone.measures.scorecard_sql import (
    LEAVER_EXITS,
    READY_LEVELS,
    chronic_absence_sql,
    graduation_sql,
    k_readiness_sql,
    on_track_sql,
)

if TYPE_CHECKING:
    from backbone.measures.stages import MeasureStages

__all__ = [
    "INDICATORS",
    "LEAVER_EXITS",
    "NO_DATA",
    "READY_LEVELS",
    "REFUSED",
    "RELEASED",
    "Grid",
    "GridCell",
    "GridRow",
    "IndicatorResult",
    "Scorecard",
    "chronic_absence_sql",
    "graduation_sql",
    "k_readiness_sql",
    "on_track_sql",
    "scorecard",
]

RELEASED = "released"
NO_DATA = "no data"
REFUSED = "refused"

BY = ("school_year", "district")
INDICATOR_ENTITY = "student_indicator"


@dataclass(frozen=True)
class IndicatorSpec:
    code: str
    label: str
    definition: str


INDICATORS: Mapping[str, IndicatorSpec] = MappingProxyType(
    {
        s.code: s
        for s in (
            IndicatorSpec(
                "chronic_absence",
                "Chronic absence",
                "Students whose attendance rate in the school year (year-end "
                "early-warning snapshot; days absent, excused and unexcused, over "
                "instructional days enrolled, added up across every district "
                "attended) is below {chronic:.0%}, of students with a known rate.",
            ),
            IndicatorSpec(
                "on_track_9",
                "9th-grade on track",
                "First-time ninth graders who end the year with at least "
                "{credits:g} credits and at most {fails} failed core semester "
                "course(s), of first-time ninth graders with a full year of terms.",
            ),
            IndicatorSpec(
                "graduation_4yr",
                "Four-year graduation",
                "Students of the class expected to graduate in the year (latest "
                "enrollment's class of, else first ninth-grade year + 3) with a "
                "diploma by August 31 of it; students who transferred out of the "
                "community (or died) without a diploma are not in the cohort.",
            ),
            IndicatorSpec(
                "college_first_fall",
                "College enrollment, first fall",
                "High-school graduates of the class enrolled in college in the fall "
                "after graduating (a term touching Aug 15 - Oct 31), of the class's "
                "graduates, by the high school's district.",
            ),
            IndicatorSpec(
                "college_persistence",
                "College persistence",
                "First-fall college enrollees of the class enrolled again in a fall "
                "term (Aug 1 - Dec 31) of the next year, at any college.",
            ),
            IndicatorSpec(
                "k_readiness",
                "Kindergarten readiness",
                "Children whose first kindergarten-entry (readiness) assessment of "
                "the year reached a ready performance level, of children assessed.",
            ),
        )
    }
)


# --- results ----------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorResult:
    code: str
    label: str
    definition: str
    status: str
    """``released``, ``no data`` or ``refused``"""
    release: Release | None = None
    note: str = ""
    """why there is no data, or why the reader was refused"""

    @property
    def release_id(self) -> int | None:
        return self.release.release_id if self.release else None

    @property
    def table(self) -> pa.Table | None:
        """``school_year``, ``district`` (``(all)``: the community), ``persons``,
        ``matching``, ``rate`` (coded text), ``rate_value`` (the rate as a
        fraction, null where the text is suppressed or coded) and ``note``."""
        return self.release.table if self.release else None

    def cell(
        self, school_year: int | str, district: str = TOTAL
    ) -> dict[str, Any] | None:
        """The row of one school year (or ``(all)``) and district (or ``(all)``)."""
        if self.release is None:
            return None
        for row in self.release.table.to_pylist():
            if row.get("school_year") == str(school_year) and row.get("district") == (
                district
            ):
                return dict(row)
        return None


@dataclass(frozen=True)
class GridCell:
    """One released rate: its text as the gate coded it ("" where nothing was
    released for the year) and its value as a fraction (None where the text is
    suppressed, coded or empty)."""

    text: str
    value: float | None


@dataclass(frozen=True)
class GridRow:
    district: str
    """the district's id, or ``(all)`` for the community"""
    name: str
    """the district's name, or ``community``"""
    cells: tuple[GridCell, ...]
    """one per year of the grid"""


@dataclass(frozen=True)
class Grid:
    """An indicator's rates as a grid: the community first, then each district,
    one column per school year (as released, ``(all)`` left out)."""

    code: str
    label: str
    release_id: int
    years: tuple[str, ...]
    rows: tuple[GridRow, ...]


@dataclass(frozen=True)
class Scorecard:
    as_of: date
    purpose: str
    years: tuple[int, ...] | None
    districts: Mapping[str, str]
    """district id -> name"""
    indicators: tuple[IndicatorResult, ...]

    def indicator(self, code: str) -> IndicatorResult:
        for result in self.indicators:
            if result.code == code:
                return result
        raise UserError(
            f"the scorecard has no indicator {code!r}; it has "
            f"{', '.join(r.code for r in self.indicators)}."
        )

    def grid(self, code: str) -> Grid | None:
        """One indicator as districts by school years; None when it has no release."""
        result = self.indicator(code)
        if result.release is None:
            return None
        rows = result.release.table.to_pylist()
        years = sorted({str(r["school_year"]) for r in rows} - {TOTAL})
        index = {(str(r["school_year"]), str(r["district"])): r for r in rows}
        districts = sorted(
            {str(r["district"]) for r in rows}, key=lambda d: (d != TOTAL, d)
        )
        return Grid(
            result.code,
            result.label,
            result.release.release_id,
            tuple(years),
            tuple(
                GridRow(
                    d,
                    "community" if d == TOTAL else self.districts.get(d, d),
                    tuple(_grid_cell(index.get((y, d))) for y in years),
                )
                for d in districts
            ),
        )

    def table(self) -> pa.Table:
        """Every indicator in one long table (one row per indicator without data,
        with its status and note)."""
        rows: list[dict[str, Any]] = []
        for r in self.indicators:
            base = {"indicator": r.code, "label": r.label, "status": r.status}
            if r.table is None or r.table.num_rows == 0:
                rows.append({**base, "note": r.note})
                continue
            for cell in r.table.to_pylist():
                district = cell.get("district")
                rows.append(
                    {
                        **base,
                        **cell,
                        "district_name": "community"
                        if district == TOTAL
                        else self.districts.get(str(district), district),
                    }
                )
        types = {
            "indicator": pa.string(),
            "label": pa.string(),
            "school_year": pa.string(),
            "district": pa.string(),
            "district_name": pa.string(),
            "persons": pa.int64(),
            "matching": pa.int64(),
            "rate": pa.string(),
            "rate_value": pa.float64(),
            "status": pa.string(),
            "note": pa.string(),
        }
        return pa.table(
            {c: pa.array([row.get(c) for row in rows], t) for c, t in types.items()}
        )


def _grid_cell(row: Mapping[str, Any] | None) -> GridCell:
    if row is None:
        return GridCell("", None)
    return GridCell(str(row.get("rate") or ""), row.get("rate_value"))


# --- the indicators ---------------------------------------------------------------


def _years_where(years: Sequence[int] | None) -> dict[str, Sequence[object]]:
    return {"school_year": [int(y) for y in years]} if years else {}


def _snapshots(
    wh: MeasureStages, years: Sequence[int] | None, *, earlier_too: bool = False
) -> list[Snapshot]:
    """Per school year its year-end snapshot, else its latest (a year under way);
    only ``years`` (with ``earlier_too``, every year up to the last of them)."""
    chosen: dict[int, Snapshot] = {}
    for snap in wh.indicators.snapshots():
        year_end = wh.indicators.year_bounds(snap.school_year)[1]
        have = chosen.get(snap.school_year)
        if (
            have is None
            or snap.as_of == year_end
            or (have.as_of != year_end and snap.as_of > have.as_of)
        ):
            chosen[snap.school_year] = snap
    keep = sorted(chosen)
    if years:
        last = max(years)
        keep = [y for y in keep if (y <= last if earlier_too else y in years)]
    return [chosen[y] for y in keep]


def _released(
    spec: IndicatorSpec, definition: str, release: Release
) -> IndicatorResult:
    if release.table.num_rows == 0:
        return IndicatorResult(
            spec.code,
            spec.label,
            definition,
            NO_DATA,
            release,
            "nobody in the data is counted by it for these years",
        )
    return IndicatorResult(spec.code, spec.label, definition, RELEASED, release)


# What each indicator is computed from: every group needs data of at least one of
# its entities, sent by some partner. Without it the indicator is left out and the
# missing feed named: a rate over nobody's data would be invented (a graduation
# rate of 0 % because no one sent diplomas).
# (The two read from the early-warning snapshots, where a value no partner sent is
# unknown: their release is then empty, and the missing feed is named with it.)
REQUIRES: Mapping[str, tuple[tuple[str, ...], ...]] = MappingProxyType(
    {
        "chronic_absence": (("attendance_event", "attendance_period"),),
        "on_track_9": (("course_transcript",),),
        "graduation_4yr": (("enrollment",), ("graduation",)),
        "college_first_fall": (("graduation",), ("postsecondary_enrollment",)),
        "college_persistence": (("graduation",), ("postsecondary_enrollment",)),
        "k_readiness": (("student_assessment",),),
    }
)


_FROM_SNAPSHOTS = frozenset({"chronic_absence", "on_track_9"})


def unsent(access: Access, requires: Sequence[tuple[str, ...]]) -> str | None:
    """Why a measure cannot be computed from what partners sent, or None."""
    missing = [
        " or ".join(group)
        for group in requires
        if not any(access.grants(entity, "aggregate") for entity in group)
    ]
    if not missing:
        return None
    return f"no partner has sent {', nor '.join(missing)}"


def _no_data(spec: IndicatorSpec, definition: str, why: str) -> IndicatorResult:
    return IndicatorResult(spec.code, spec.label, definition, NO_DATA, None, why)


def chronic_absence_release(
    wh: MeasureStages,
    access: Access,
    *,
    years: Sequence[int] | None = None,
    by: Sequence[str] = BY,
    where: Mapping[str, Sequence[object]] | None = None,
) -> Release | None:
    """The chronic-absence rate release (None when no snapshot was computed)."""
    snaps = _snapshots(wh, years)
    if not snaps:
        return None
    in_use = wh.indicators.definitions.current()
    return access.count_derived(
        INDICATOR_ENTITY,
        COMPONENT_COLUMNS,
        chronic_absence_sql(in_use.definitions, snaps),
        list(by),
        where={**_years_where(years), **(where or {})},
        numerator={"chronically_absent": ["yes"]},
        definition={
            "measure": "scorecard:chronic_absence",
            "snapshots": [f"{s.school_year}@{s.as_of}" for s in snaps],
            "definitions": in_use.version,
        },
    )


def _chronic(
    wh: MeasureStages, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["chronic_absence"]
    current = wh.indicators.definitions.current().definitions
    definition = spec.definition.format(chronic=current.attendance.chronic_below)
    release = chronic_absence_release(wh, access, years=years)
    if release is None:
        return _no_data(spec, definition, "no early-warning snapshot for these years")
    return _released(spec, definition, release)


def _on_track(
    wh: MeasureStages, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["on_track_9"]
    in_use = wh.indicators.definitions.current()
    rule = in_use.definitions.on_track_9
    definition = spec.definition.format(
        credits=rule.min_credits, fails=rule.max_core_semester_fails
    )
    snaps = _snapshots(wh, years, earlier_too=True)
    if not snaps:
        return _no_data(spec, definition, "no early-warning snapshot for these years")
    sql, params = on_track_sql(in_use.definitions, snaps)
    release = access.count_derived(
        INDICATOR_ENTITY,
        COMPONENT_COLUMNS,
        sql,
        list(BY),
        params=params,
        where=_years_where(years),
        numerator={"on_track": ["yes"]},
        definition={
            "measure": "scorecard:on_track_9",
            "snapshots": [f"{s.school_year}@{s.as_of}" for s in snaps],
            "definitions": in_use.version,
        },
    )
    return _released(spec, definition, release)


def _graduation(
    wh: MeasureStages, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["graduation_4yr"]
    current = wh.indicators.definitions.current().definitions
    sql, params = graduation_sql(
        access.on,
        start_month=access.school_year_start_month,
        ninth_grade=current.on_track_9.grade_level,
    )
    release = access.count_derived(
        "enrollment",
        (),
        sql,
        list(BY),
        params=params,
        where=_years_where(years),
        numerator={"graduated": ["yes"]},
        definition={"measure": "scorecard:graduation_4yr", "as_of": str(access.on)},
        inputs={
            "enrollment": (
                "enrollment",
                [
                    "school_year",
                    "entry_date",
                    "entry_grade_level",
                    "exit_withdraw_date",
                    "exit_withdraw_type",
                    "class_of_school_year",
                ],
            ),
            "graduation": ("graduation", ["graduation_date"]),
        },
    )
    return _released(spec, spec.definition, release)


def _college(
    code: str, measure: str
) -> Callable[[MeasureStages, Access, Sequence[int] | None], IndicatorResult]:
    def build(
        wh: MeasureStages, access: Access, years: Sequence[int] | None
    ) -> IndicatorResult:
        spec = INDICATORS[code]
        release = college_release(
            access,
            measure,
            as_of=access.on,
            by=BY,
            where=_years_where(years),
        )
        return _released(spec, spec.definition, release)

    return build


def _k_readiness(
    wh: MeasureStages, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["k_readiness"]
    sql, params = k_readiness_sql()
    release = access.count_derived(
        "student_assessment",
        [
            "assessment_identifier",
            "academic_subject",
            "administration_date",
            "school_year",
            "when_assessed_grade_level",
            "performance_level",
        ],
        sql,
        list(BY),
        params=params,
        where=_years_where(years),
        numerator={"ready": ["yes"]},
        definition={"measure": "scorecard:k_readiness"},
    )
    if release.table.num_rows == 0:
        return IndicatorResult(
            spec.code,
            spec.label,
            spec.definition,
            NO_DATA,
            release,
            "no kindergarten-entry (readiness) assessment in the data for these years",
        )
    return _released(spec, spec.definition, release)


_BUILDERS: dict[
    str, Callable[[MeasureStages, Access, Sequence[int] | None], IndicatorResult]
] = {
    "chronic_absence": _chronic,
    "on_track_9": _on_track,
    "graduation_4yr": _graduation,
    "college_first_fall": _college("college_first_fall", "enrolled_first_fall"),
    "college_persistence": _college("college_persistence", "persisted"),
    "k_readiness": _k_readiness,
}


def _districts(wh: MeasureStages) -> dict[str, str]:
    return {
        p.partner_id: p.name for p in wh.partners.list() if p.kind == "school_district"
    }


def scorecard(
    wh: MeasureStages,
    access: Access,
    *,
    years: Sequence[int] | None = None,
    indicators: Sequence[str] | None = None,
) -> Scorecard:
    """The community indicators (:data:`INDICATORS`, or those named) by school
    year and district, each district beside the community, as of the reader's
    day; ``years`` narrows them to those school years (a class for graduation
    and college: the class of the year). Each is one rate release through the
    gate under the reader's purpose; an indicator it refuses is marked so."""
    chosen = list(indicators) if indicators is not None else list(INDICATORS)
    bad = [c for c in chosen if c not in INDICATORS]
    if bad:
        raise UserError(
            f"unknown indicator {bad[0]!r}; use one of {', '.join(INDICATORS)}."
        )
    results = []
    for code in chosen:
        spec = INDICATORS[code]
        missing = unsent(access, REQUIRES[code])
        if missing and code not in _FROM_SNAPSHOTS:
            results.append(_no_data(spec, spec.definition, missing))
            continue
        try:
            result = _BUILDERS[code](wh, access, years)
            if missing and result.status == NO_DATA:
                result = replace(result, note=missing)
            results.append(result)
        except PolicyDenied as denied:
            results.append(
                IndicatorResult(
                    spec.code, spec.label, spec.definition, REFUSED, None, str(denied)
                )
            )
    return Scorecard(
        access.on,
        access.purpose,
        tuple(int(y) for y in years) if years else None,
        MappingProxyType(_districts(wh)),
        tuple(results),
    )
