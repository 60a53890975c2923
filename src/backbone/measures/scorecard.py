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

**What we get.** :func:`what_we_get` writes one partner's findings as sentences
with released numbers: what the partnership shows it that its own records could
not. Every number is a release of the gate under the reader's purpose; a finding
the reader is refused says so instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.errors import PolicyDenied, UserError
from backbone.governance.access import Access
from backbone.governance.policy import Grant
from backbone.governance.release import TOTAL, Release
from backbone.measures.college import college_release
from backbone.measures.definitions import Definitions
from backbone.measures.indicator_sql import COMPONENT_COLUMNS, derived_units_sql
from backbone.measures.indicators import Snapshot
from backbone.model.calendar import school_year_label

if TYPE_CHECKING:
    from backbone.warehouse import Warehouse

__all__ = [
    "INDICATORS",
    "LEAVER_EXITS",
    "NO_DATA",
    "READY_LEVELS",
    "REFUSED",
    "RELEASED",
    "Finding",
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
    "what_we_get",
]

RELEASED = "released"
NO_DATA = "no data"
REFUSED = "refused"

BY = ("school_year", "district")
INDICATOR_ENTITY = "student_indicator"
# Last exits that take a student out of the graduation cohort (no diploma, no
# later enrollment in the community): as the adjusted cohort graduation rate.
LEAVER_EXITS = ("Transferred", "Died")
# Performance levels of a kindergarten-entry assessment that mean ready
# (compared lower-cased).
READY_LEVELS = (
    "demonstrating readiness",
    "ready",
    "kindergarten ready",
    "ready to learn",
    "proficient",
    "advanced",
    "meets expectations",
    "exceeds expectations",
)
# A kindergarten-entry or readiness assessment, by its identifier or subject.
K_ACRONYM = r"(^|[^a-z])(kra|kea|kei|kri)([^a-z]|$)"
K_WORD = r"kindergarten"
READY_WORD = r"readiness|ready|entry"
NO_DIPLOMA = "no community high-school diploma"


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


# --- the SQL (pure) ---------------------------------------------------------------


def _same_definitions(
    d: Definitions, snapshots: Sequence[Snapshot]
) -> dict[int, Definitions]:
    # every snapshot judged by today's definitions: one scorecard, one yardstick
    return {s.definition_version: d for s in snapshots}


def chronic_absence_sql(d: Definitions, snapshots: Sequence[Snapshot]) -> str:
    """Over the gate's ``units`` (student_indicator rows): each enrolled person's
    ``chronically_absent`` ('yes' / 'no') per snapshot, by ``school_year`` and
    ``district``, beside every record that made it; persons with no known
    attendance rate are not in it."""
    base = derived_units_sql(
        _same_definitions(d, snapshots),
        [(s.school_year, s.as_of) for s in snapshots],
        ["school_year", "district", "attendance_rate", "attendance_level"],
    )
    return (
        "SELECT provider, unit, record, CAST(school_year AS SMALLINT) AS school_year, "
        "district, CASE WHEN attendance_level = 2 THEN 'yes' ELSE 'no' END "
        f"AS chronically_absent FROM ({base}) d WHERE attendance_rate IS NOT NULL"
    )


def on_track_sql(
    d: Definitions, snapshots: Sequence[Snapshot]
) -> tuple[str, list[object]]:
    """Over ``units``: first-time ninth graders' ``on_track`` ('yes' / 'no') by the
    definitions' rule, per snapshot. A ninth grader in an earlier snapshot (a
    repeater) is not a first-time one."""
    base = derived_units_sql(
        _same_definitions(d, snapshots),
        [(s.school_year, s.as_of) for s in snapshots],
        ["school_year", "district", "grade_level", "on_track_9"],
    )
    grade = d.on_track_9.grade_level
    sql = f"""
WITH rows_ AS ({base}),
ninth AS (SELECT DISTINCT unit, school_year FROM rows_ WHERE grade_level = ?)
SELECT r.provider, r.unit, r.record, CAST(r.school_year AS SMALLINT) AS school_year,
       r.district, CASE WHEN r.on_track_9 THEN 'yes' ELSE 'no' END AS on_track
FROM rows_ r
WHERE r.grade_level = ? AND r.on_track_9 IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ninth e
                  WHERE e.unit = r.unit AND e.school_year < r.school_year)
"""
    return sql, [grade, grade]


def graduation_sql(
    as_of: date,
    *,
    ninth_grade: str = "Ninth grade",
    leavers: Sequence[str] = LEAVER_EXITS,
) -> tuple[str, list[object]]:
    """Over ``enrollment`` and ``graduation``: each cohort member's ``graduated``
    ('yes' by Aug 31 of the class year, else 'no') by ``school_year`` (the class)
    and ``district`` (of the latest enrollment), beside every enrollment record
    of the person and the diplomas that made a yes. Classes whose Aug 31 is not
    before ``as_of`` are not judged yet."""
    sql = """
WITH spells AS (
    SELECT provider, unit, record, school_year, entry_date, entry_grade_level,
           exit_withdraw_date, exit_withdraw_type, class_of_school_year,
           row_number() OVER (PARTITION BY unit
                              ORDER BY entry_date DESC,
                                       exit_withdraw_date DESC NULLS FIRST,
                                       provider, record) AS latest
    FROM enrollment
),
expected AS (
    SELECT unit,
           arg_max(class_of_school_year, entry_date)
               FILTER (WHERE class_of_school_year IS NOT NULL) AS stated,
           min(school_year) FILTER (WHERE entry_grade_level = ?) + 3 AS from_ninth
    FROM spells GROUP BY unit
),
last_spell AS (
    SELECT unit, provider AS district, exit_withdraw_type FROM spells WHERE latest = 1
),
diploma AS (
    SELECT unit, min(graduation_date) AS graduation_date FROM graduation GROUP BY unit
),
cohort AS (
    SELECT x.unit, CAST(coalesce(x.stated, x.from_ninth) AS SMALLINT) AS school_year,
           l.district,
           coalesce(d.graduation_date
                    <= make_date(coalesce(x.stated, x.from_ninth), 8, 31), false)
               AS on_time
    FROM expected x
    JOIN last_spell l USING (unit)
    LEFT JOIN diploma d USING (unit)
    WHERE coalesce(x.stated, x.from_ninth) IS NOT NULL
      AND make_date(coalesce(x.stated, x.from_ninth), 8, 31) < CAST(? AS DATE)
      AND NOT (d.graduation_date IS NULL
               AND coalesce(list_contains(?, l.exit_withdraw_type), false))
)
SELECT s.provider, s.unit, s.record, c.school_year, c.district,
       CASE WHEN c.on_time THEN 'yes' ELSE 'no' END AS graduated
FROM cohort c JOIN spells s USING (unit)
UNION
SELECT g.provider, g.unit, g.record, c.school_year, c.district, 'yes'
FROM cohort c JOIN graduation g USING (unit)
WHERE c.on_time AND g.graduation_date <= make_date(c.school_year, 8, 31)
"""
    return sql, [ninth_grade, as_of, list(leavers)]


def k_readiness_sql(
    ready_levels: Sequence[str] = READY_LEVELS,
) -> tuple[str, list[object]]:
    """Over ``units`` (student_assessment rows): each child's first
    kindergarten-entry result of a school year, ``ready`` ('yes' / 'no'), by
    ``school_year`` and ``district`` (the assessment's provider)."""
    text = (
        "lower(coalesce(assessment_identifier, '') || ' ' || "
        "coalesce(academic_subject, ''))"
    )
    sql = f"""
WITH k AS (
    SELECT provider, unit, record, school_year, administration_date, performance_level
    FROM units
    WHERE performance_level IS NOT NULL
      AND (regexp_matches({text}, ?)
           OR ((regexp_matches({text}, ?)
                OR coalesce(when_assessed_grade_level = 'Kindergarten', false))
               AND regexp_matches({text}, ?)))
),
firsts AS (
    SELECT *, row_number() OVER (PARTITION BY unit, school_year
                                 ORDER BY administration_date, provider, record) AS n
    FROM k
)
SELECT provider, unit, record, CAST(school_year AS SMALLINT) AS school_year,
       provider AS district,
       CASE WHEN list_contains(?, lower(trim(performance_level))) THEN 'yes'
            ELSE 'no' END AS ready
FROM firsts WHERE n = 1
"""
    return sql, [K_ACRONYM, K_WORD, READY_WORD, [v.lower() for v in ready_levels]]


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


# --- the indicators ---------------------------------------------------------------


def _years_where(years: Sequence[int] | None) -> dict[str, Sequence[object]]:
    return {"school_year": [int(y) for y in years]} if years else {}


def _snapshots(
    wh: Warehouse, years: Sequence[int] | None, *, earlier_too: bool = False
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


def _no_data(spec: IndicatorSpec, definition: str, why: str) -> IndicatorResult:
    return IndicatorResult(spec.code, spec.label, definition, NO_DATA, None, why)


def chronic_absence_release(
    wh: Warehouse,
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
    version, current = wh.indicators.definitions.current()
    return access.count_derived(
        INDICATOR_ENTITY,
        COMPONENT_COLUMNS,
        chronic_absence_sql(current, snaps),
        list(by),
        where={**_years_where(years), **(where or {})},
        numerator={"chronically_absent": ["yes"]},
        definition={
            "measure": "scorecard:chronic_absence",
            "snapshots": [f"{s.school_year}@{s.as_of}" for s in snaps],
            "definitions": version,
        },
    )


def _chronic(
    wh: Warehouse, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["chronic_absence"]
    _, current = wh.indicators.definitions.current()
    definition = spec.definition.format(chronic=current.attendance.chronic_below)
    release = chronic_absence_release(wh, access, years=years)
    if release is None:
        return _no_data(spec, definition, "no early-warning snapshot for these years")
    return _released(spec, definition, release)


def _on_track(
    wh: Warehouse, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["on_track_9"]
    version, current = wh.indicators.definitions.current()
    rule = current.on_track_9
    definition = spec.definition.format(
        credits=rule.min_credits, fails=rule.max_core_semester_fails
    )
    snaps = _snapshots(wh, years, earlier_too=True)
    if not snaps:
        return _no_data(spec, definition, "no early-warning snapshot for these years")
    sql, params = on_track_sql(current, snaps)
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
            "definitions": version,
        },
    )
    return _released(spec, definition, release)


def _graduation(
    wh: Warehouse, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["graduation_4yr"]
    _, current = wh.indicators.definitions.current()
    sql, params = graduation_sql(access.on, ninth_grade=current.on_track_9.grade_level)
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
) -> Callable[[Warehouse, Access, Sequence[int] | None], IndicatorResult]:
    def build(
        wh: Warehouse, access: Access, years: Sequence[int] | None
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
    wh: Warehouse, access: Access, years: Sequence[int] | None
) -> IndicatorResult:
    spec = INDICATORS["k_readiness"]
    if not access.grants("student_assessment", "aggregate"):
        return _no_data(spec, spec.definition, "no assessment data in the warehouse")
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
    str, Callable[[Warehouse, Access, Sequence[int] | None], IndicatorResult]
] = {
    "chronic_absence": _chronic,
    "on_track_9": _on_track,
    "graduation_4yr": _graduation,
    "college_first_fall": _college("college_first_fall", "enrolled_first_fall"),
    "college_persistence": _college("college_persistence", "persisted"),
    "k_readiness": _k_readiness,
}


def _districts(wh: Warehouse) -> dict[str, str]:
    return {
        p.partner_id: p.name for p in wh.partners.list() if p.kind == "school_district"
    }


def scorecard(
    wh: Warehouse,
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
        try:
            results.append(_BUILDERS[code](wh, access, years))
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


# --- what we get ------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One sentence for a partner's board, with the releases its numbers are from."""

    topic: str
    text: str
    release_ids: tuple[int, ...] = ()
    refused: str | None = None
    """why the reader may not have this finding (then ``text`` says so)"""


def _year_label(wh: Warehouse, year: int | str) -> str:
    return school_year_label(int(year), wh.settings["calendar.school_year_start_month"])


def _count(value: int | None) -> str:
    return "a number too small to show" if value is None else f"{value:,}"


def _rate(row: Mapping[str, Any] | None) -> str:
    """A released rate as words: '40.0% (12 of 30)'."""
    if row is None:
        return "no one"
    rate, matching, persons = row.get("rate"), row.get("matching"), row.get("persons")
    if rate is None or rate == "*":
        return "not shown (a group too small to publish)"
    if matching is None or persons is None:
        return f"{rate}" + (f" of {persons:,}" if persons is not None else "")
    return f"{rate} ({matching:,} of {persons:,})"


def _grid_cell(row: Mapping[str, Any] | None) -> GridCell:
    if row is None:
        return GridCell("", None)
    return GridCell(str(row.get("rate") or ""), row.get("rate_value"))


def _row(release: Release, **dims: str) -> dict[str, Any] | None:
    for row in release.table.to_pylist():
        if all(row.get(k) == v for k, v in dims.items()):
            return dict(row)
    return None


def _year_window(wh: Warehouse, year: int) -> tuple[date, date]:
    return wh.indicators.year_bounds(year)


def _latest_snapshot(wh: Warehouse) -> Snapshot | None:
    snaps = [
        s
        for s in _snapshots(wh, None)
        if s.as_of == wh.indicators.year_bounds(s.school_year)[1]
    ] or _snapshots(wh, None)
    return snaps[-1] if snaps else None


def _refused(topic: str, what: str, why: str) -> Finding:
    return Finding(
        topic, f"{what} cannot be shown to you for this purpose: {why}.", (), why
    )


def _movers(wh: Warehouse, access: Access, partner: str, name: str) -> Finding:
    topic = "moves between districts"
    year = wh.indicators.school_year_of(access.on)
    districts = _districts(wh)
    others = [
        a
        for a in access.grants("enrollment", "aggregate")
        if a.provider != partner and a.provider in districts
    ]
    if others and not any(isinstance(a, Grant) for a in others):
        why = "; ".join(f"{a.provider}: {a.reason}" for a in others)
        return _refused(topic, "Moves to and from other community districts", why)
    sql = """
WITH e AS (SELECT * FROM enrollment WHERE school_year = ?),
mine AS (SELECT DISTINCT unit FROM e WHERE provider = ?),
spans AS (
    SELECT unit, arg_max(provider, entry_date) AS last_provider,
           count(*) FILTER (WHERE provider <> ?) AS elsewhere
    FROM e WHERE unit IN (SELECT unit FROM mine) GROUP BY unit
)
SELECT e.provider, e.unit, e.record,
       CASE WHEN s.elsewhere = 0 THEN 'stayed'
            WHEN s.last_provider <> ? THEN 'left for another district'
            ELSE 'came from another district' END AS mobility
FROM e JOIN spans s USING (unit)
"""
    release = access.count_derived(
        "enrollment",
        (),
        sql,
        ["mobility"],
        params=[year, partner, partner, partner],
        definition={"measure": "what_we_get:movers", "partner": partner, "year": year},
        inputs={"enrollment": ("enrollment", ["school_year", "entry_date"])},
    )
    total = _row(release, mobility=TOTAL)
    if total is None:
        return Finding(
            topic,
            f"{name} has no enrollment in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    came = _row(release, mobility="came from another district")
    left = _row(release, mobility="left for another district")
    text = (
        f"In {_year_label(wh, year)}, {name} enrolled {_count(total['persons'])} students; "
        f"{_count(came['persons'] if came else 0)} of them came from another "
        f"community district during the year and "
        f"{_count(left['persons'] if left else 0)} left for one, moves its own "
        "records cannot follow."
    )
    missing = [a.provider for a in others if not isinstance(a, Grant)]
    if missing:
        text += (
            f" (Moves involving {', '.join(missing)} are not counted: not shared "
            "with you for this purpose.)"
        )
    return Finding(topic, text, (release.release_id,))


def _served(wh: Warehouse, access: Access, partner: str, name: str) -> Finding:
    topic = "students served by community programs"
    year = wh.indicators.school_year_of(access.on)
    begin, end = _year_window(wh, year)
    sql = """
WITH students AS (
    SELECT provider, unit, record FROM enrollment WHERE school_year = ? AND provider = ?
),
served AS (
    SELECT provider, unit, record FROM participation
    WHERE provider <> ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
      AND unit IN (SELECT unit FROM students)
)
SELECT provider, unit, record,
       CASE WHEN unit IN (SELECT unit FROM served) THEN 'yes' ELSE 'no' END AS served
FROM students
UNION
SELECT provider, unit, record, 'yes' FROM served
"""
    release = access.count_derived(
        "enrollment",
        (),
        sql,
        [],
        params=[year, partner, partner, end, end, begin],
        numerator={"served": ["yes"]},
        definition={"measure": "what_we_get:served", "partner": partner, "year": year},
        inputs={
            "enrollment": ("enrollment", ["school_year"]),
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
        },
    )
    row = _row(release, group=TOTAL)
    if row is None:
        return Finding(
            topic,
            f"{name} has no enrollment in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    return Finding(
        topic,
        f"In {_year_label(wh, year)}, {_rate(row)} of {name}'s students took part in a "
        "community organization's program, from the organizations' own records.",
        (release.release_id,),
    )


def _graduates_college(
    wh: Warehouse, access: Access, partner: str, name: str
) -> Finding:
    topic = "graduates' college enrollment"
    release = college_release(
        access,
        "enrolled_first_fall",
        as_of=access.on,
        by=["class_of"],
        where={"district": [partner]},
    )
    classes = sorted(
        (r for r in release.table.to_pylist() if r["class_of"] != TOTAL),
        key=lambda r: int(r["class_of"]),
    )[-3:]
    if not classes:
        return Finding(
            topic,
            f"No class of {name}'s graduates has reached its first college fall yet.",
            (release.release_id,),
        )
    parts = "; ".join(f"class of {r['class_of']}: {_rate(r)}" for r in classes)
    return Finding(
        topic,
        f"Enrolled in college the fall after high school, from the college "
        f"agency's records linked to {name}'s graduates: {parts}.",
        (release.release_id,),
    )


def _chronic_beside(wh: Warehouse, access: Access, partner: str, name: str) -> Finding:
    topic = "chronic absence beside the community"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    release = chronic_absence_release(
        wh, access, years=[snap.school_year], by=["district"]
    )
    assert release is not None  # a snapshot exists
    mine = _row(release, district=partner)
    text = (
        f"In {_year_label(wh, snap.school_year)}, {_rate(mine)} of {name}'s students "
        "were chronically absent"
    )
    missing = _not_shared(access, INDICATOR_ENTITY, partner, _districts(wh))
    if missing is None:
        text += (
            f", beside {_rate(_row(release, district=TOTAL))} across the community "
            "(a student who attended two districts counts once, in the district "
            "attended last, with absences from both)."
        )
    elif missing:
        text += (
            f", beside {_rate(_row(release, district=TOTAL))} across the districts "
            f"that share with you for this purpose ({', '.join(missing)} do not)."
        )
    else:
        text += (
            "; the other districts do not share their figures with you for this "
            "purpose, so there is no community figure beside it."
        )
    return Finding(topic, text, (release.release_id,))


def _not_shared(
    access: Access, entity: str, partner: str, districts: Mapping[str, str]
) -> list[str] | None:
    """The other districts holding ``entity`` that do not give the reader
    aggregates of it for its purpose: None when all do, [] when none does."""
    others = [
        a
        for a in access.grants(entity, "aggregate")
        if a.provider != partner and a.provider in districts
    ]
    refused = [a.provider for a in others if not isinstance(a, Grant)]
    if not refused:
        return None
    return [] if len(refused) == len(others) else refused


def _community_chronic(
    wh: Warehouse, access: Access, partner: str, name: str
) -> Finding:
    topic = "chronic absence across the community"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    release = chronic_absence_release(
        wh, access, years=[snap.school_year], by=["district"]
    )
    assert release is not None  # a snapshot exists
    districts = _districts(wh)
    parts = "; ".join(
        f"{districts.get(r['district'], r['district'])} {_rate(r)}"
        for r in release.table.to_pylist()
        if r["district"] != TOTAL
    )
    return Finding(
        topic,
        f"In {_year_label(wh, snap.school_year)}, {_rate(_row(release, district=TOTAL))} "
        f"of the community's students were chronically absent"
        + (f" ({parts})" if parts else "")
        + "; every district measured the same way, each student counted once.",
        (release.release_id,),
    )


def _matched(wh: Warehouse, access: Access, partner: str, name: str) -> Finding:
    topic = "participants matched to district records"
    year = wh.indicators.school_year_of(access.on)
    begin, end = _year_window(wh, year)
    sql = """
WITH mine AS (
    SELECT provider, unit, record FROM participation
    WHERE provider = ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
),
known AS (SELECT DISTINCT unit FROM enrollment WHERE unit IN (SELECT unit FROM mine))
SELECT provider, unit, record,
       CASE WHEN unit IN (SELECT unit FROM known) THEN 'yes' ELSE 'no' END AS matched
FROM mine
UNION
SELECT provider, unit, record, 'yes' FROM enrollment
WHERE unit IN (SELECT unit FROM known)
"""
    release = access.count_derived(
        "program_participation",
        (),
        sql,
        [],
        params=[partner, end, end, begin],
        numerator={"matched": ["yes"]},
        definition={"measure": "what_we_get:matched", "partner": partner, "year": year},
        inputs={
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
            "enrollment": ("enrollment", ["school_year"]),
        },
    )
    row = _row(release, group=TOTAL)
    if row is None:
        return Finding(
            topic,
            f"{name} has no participants in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    return Finding(
        topic,
        f"In {_year_label(wh, year)}, {_rate(row)} of {name}'s participants were "
        "matched to a community district's enrollment records.",
        (release.release_id,),
    )


def _participants(
    wh: Warehouse, access: Access, partner: str, name: str, *, risk: bool
) -> Finding:
    topic = "participants' risk" if risk else "participants' attendance"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    version, current = wh.indicators.definitions.current()
    base = derived_units_sql(
        _same_definitions(current, [snap]),
        [(snap.school_year, snap.as_of)],
        ["attendance_rate", "attendance_level", "tier"],
    )
    begin, end = _year_window(wh, snap.school_year)
    value, cond = (
        ("CASE WHEN tier <> 'on track' THEN 'yes' ELSE 'no' END", "true")
        if risk
        else (
            "CASE WHEN attendance_level = 2 THEN 'yes' ELSE 'no' END",
            "attendance_rate IS NOT NULL",
        )
    )
    column = "at_risk" if risk else "chronically_absent"
    sql = f"""
WITH ind AS ({base}),
person AS (SELECT DISTINCT unit, {value} AS v FROM ind WHERE {cond}),
served AS (
    SELECT provider, unit, record FROM participation
    WHERE provider = ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
      AND unit IN (SELECT unit FROM person)
)
SELECT i.provider, i.unit, i.record,
       CASE WHEN i.unit IN (SELECT unit FROM served) THEN 'yes' ELSE 'no' END
           AS served,
       p.v AS {column}
FROM ind i JOIN person p USING (unit)
UNION
SELECT s.provider, s.unit, s.record, 'yes', p.v FROM served s JOIN person p USING (unit)
"""
    release = access.count_derived(
        INDICATOR_ENTITY,
        (),
        sql,
        ["served"],
        params=[partner, end, end, begin],
        numerator={column: ["yes"]},
        definition={
            "measure": f"what_we_get:participants_{column}",
            "partner": partner,
            "snapshot": f"{snap.school_year}@{snap.as_of}",
            "definitions": version,
        },
        inputs={
            "units": (INDICATOR_ENTITY, list(COMPONENT_COLUMNS)),
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
        },
    )
    served = _row(release, served="yes")
    others = _row(release, served="no")
    community = _row(release, served=TOTAL)
    what = (
        "were on the early-warning watch or high-risk tier"
        if risk
        else "were chronically absent"
    )
    return Finding(
        topic,
        f"In {_year_label(wh, snap.school_year)}, {_rate(served)} of {name}'s "
        f"participants enrolled in community schools {what}, beside "
        f"{_rate(others)} of students it did not serve and {_rate(community)} "
        "across the community.",
        (release.release_id,),
    )


def _feeder_schools(wh: Warehouse, access: Access, partner: str, name: str) -> Finding:
    topic = "high schools its students come from"
    sql = """
WITH mine AS (SELECT provider, unit, record FROM postsecondary_enrollment WHERE provider = ?),
diploma AS (
    SELECT provider, unit, record, school_id,
           row_number() OVER (PARTITION BY unit
                              ORDER BY graduation_date, provider, record) AS n
    FROM graduation WHERE unit IN (SELECT unit FROM mine)
),
names AS (
    SELECT school_id,
           CASE WHEN count(*) OVER (PARTITION BY name) > 1
                THEN name || ' (' || school_id || ')' ELSE name END AS label
    FROM school
),
school_of AS (
    SELECT d.provider, d.unit, d.record, coalesce(n.label, d.school_id) AS high_school
    FROM diploma d LEFT JOIN names n ON n.school_id = d.school_id WHERE d.n = 1
)
SELECT m.provider, m.unit, m.record, coalesce(s.high_school, ?) AS high_school
FROM mine m LEFT JOIN school_of s USING (unit)
UNION
SELECT provider, unit, record, high_school FROM school_of
"""
    release = access.count_derived(
        "postsecondary_enrollment",
        (),
        sql,
        ["high_school"],
        params=[partner, NO_DIPLOMA],
        definition={"measure": "what_we_get:feeder_schools", "partner": partner},
        inputs={
            "postsecondary_enrollment": (
                "postsecondary_enrollment",
                ["term_begin_date"],
            ),
            "graduation": ("graduation", ["school_id", "graduation_date"]),
        },
    )
    rows = release.table.to_pylist()
    total = _row(release, high_school=TOTAL)
    schools = sorted(
        (r for r in rows if r["high_school"] not in (TOTAL, NO_DIPLOMA)),
        key=lambda r: (-(r["persons"] or 0), r["high_school"]),
    )
    if total is None:
        return Finding(
            topic, f"{name} has sent no college enrollment yet.", (release.release_id,)
        )
    none = _row(release, high_school=NO_DIPLOMA)
    listed = ", ".join(f"{r['high_school']} {_count(r['persons'])}" for r in schools)
    return Finding(
        topic,
        f"Of the {_count(total['persons'])} students in {name}'s college records, "
        f"graduates of community high schools: {listed or 'none'}; "
        f"{_count(none['persons'] if none else 0)} have no community high-school "
        "diploma (or are not linked to one).",
        (release.release_id,),
    )


_FINDINGS: dict[
    str, tuple[tuple[str, Callable[[Warehouse, Access, str, str], Finding]], ...]
] = {
    "school_district": (
        ("moves between districts", _movers),
        ("students served by community programs", _served),
        ("graduates' college enrollment", _graduates_college),
        ("chronic absence beside the community", _chronic_beside),
    ),
    "community_organization": (
        ("participants matched to district records", _matched),
        (
            "participants' attendance",
            lambda wh, a, p, n: _participants(wh, a, p, n, risk=False),
        ),
        (
            "participants' risk",
            lambda wh, a, p, n: _participants(wh, a, p, n, risk=True),
        ),
    ),
    "higher_education_agency": (
        ("high schools its students come from", _feeder_schools),
    ),
}
_COMMUNITY = (("chronic absence across the community", _community_chronic),)


def what_we_get(wh: Warehouse, access: Access, partner_id: str) -> list[Finding]:
    """What the partnership shows ``partner_id`` that its own system could not,
    as sentences with released numbers for its board. Every number is a gated
    release under the reader's purpose; a finding the reader may not have says
    so, and the others still stand. Nothing person-level leaves."""
    partner = wh.partners.get(partner_id)
    findings = []
    for topic, build in _FINDINGS.get(partner.kind, _COMMUNITY):
        try:
            findings.append(build(wh, access, partner.partner_id, partner.name))
        except PolicyDenied as denied:
            findings.append(_refused(topic, topic[0].upper() + topic[1:], str(denied)))
    access.log(
        "publish",
        f"what we get: {partner.partner_id}",
        releases=[i for f in findings for i in f.release_ids],
        refused=[f.topic for f in findings if f.refused],
    )
    return findings
