"""College-going reports for high schools, through the release gate: the shape of
the National Student Clearinghouse's StudentTracker for High Schools (rows by high
school and graduating class, with the community's margins), from the college
agency's records linked to the districts' graduates.

Each measure of :data:`~backbone.measures.college_sql.COLLEGE_MEASURES` is one
rate release (:meth:`Access.count_derived`): its denominator is the graduates
with a value (``'yes'`` / ``'no'``, or a level or control), its numerator those
matching :data:`NUMERATORS`. The person-level outcomes are
:func:`~backbone.measures.college_sql.graduate_outcomes_sql`, run unchanged in
the gate's locked database; this module only adds each graduate's high-school
name and district (from the reference table ``school``) and picks the measure.

A *Basic Packet* is ``by=("high_school", "class_of")``; a *Demographic Packet*
the same with a demographic column, e.g. ``by=("class_of", "sex")``. Reading
needs aggregates of ``graduation`` and ``postsecondary_enrollment`` for the
reader's purpose (``college_outcomes`` for a district, ``shared_measurement``
for the steward's community report); ``postsecondary_event`` (remediation,
degrees) and ``demographics`` are optional: a reader not given them gets those
measures or columns left out, and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.errors import PolicyDenied, UserError
from backbone.governance.access import Access
from backbone.governance.policy import Grant
from backbone.governance.release import TOTAL, Release
from backbone.measures.college_sql import (
    DEFAULT_DEGREE_YEARS,
    DEGREE_LEVELS,
    DEMOGRAPHIC_COLUMNS,
    college_measures,
    graduate_outcomes_sql,
)

if TYPE_CHECKING:
    from backbone.measures.charts import Chart

__all__ = [
    "COLLEGE_DIMENSIONS",
    "NUMERATORS",
    "ClassSeries",
    "CollegeGoing",
    "CollegeReport",
    "MeasureRelease",
    "college_release",
    "college_report",
    "college_units_sql",
    "input_refusal",
    "numerators",
]

# What a college table may be cut or filtered by (person-level values).
COLLEGE_DIMENSIONS = (
    "high_school",
    "high_school_id",
    "district",
    "class_of",
    *(c for c, _ in DEMOGRAPHIC_COLUMNS),
)
_DEMOGRAPHIC = frozenset(c for c, _ in DEMOGRAPHIC_COLUMNS)
# Measures that need the college agency's events (remediation, degrees).
_EVENT_MEASURES = ("remedial_ela", "remedial_math", "degree_within_", "degree_level")

REQUIRED_INPUTS: dict[str, tuple[str, list[str]]] = {
    "graduation": (
        "graduation",
        ["school_id", "graduation_date", "class_of_school_year"],
    ),
    "postsecondary_enrollment": (
        "postsecondary_enrollment",
        ["institution_id", "term_begin_date", "term_end_date"],
    ),
}
EVENT_INPUT: tuple[str, list[str]] = (
    "postsecondary_event",
    ["event_date", "postsecondary_event_category", "degree_type"],
)
DEMOGRAPHICS_INPUT: tuple[str, list[str]] = (
    "demographics",
    ["as_of_date", *(c for c, _ in DEMOGRAPHIC_COLUMNS)],
)

# An event table with nothing in it, for measures that do not read events (so
# that the graduate query runs unchanged without reading the agency's events).
_NO_EVENTS = """postsecondary_event AS (
    SELECT CAST(NULL AS VARCHAR) AS provider, CAST(NULL AS VARCHAR) AS unit,
           CAST(NULL AS VARCHAR) AS record, CAST(NULL AS DATE) AS event_date,
           CAST(NULL AS VARCHAR) AS postsecondary_event_category,
           CAST(NULL AS VARCHAR) AS institution_id,
           CAST(NULL AS VARCHAR) AS degree_type
    WHERE false
),"""


def numerators(
    degree_years: int = DEFAULT_DEGREE_YEARS,
) -> Mapping[str, tuple[str, ...]]:
    """The values each measure's rate counts (its numerator)."""
    return MappingProxyType(
        {
            "enrolled_first_fall": ("yes",),
            "enrolled_year_one": ("yes",),
            "enrolled_year_two": ("yes",),
            # a rate of four-year colleges among year-one enrollees (the rest
            # are two-year, or a college not in the reference table)
            "first_level": ("Four-year",),
            "first_control": ("Public",),
            "persisted": ("yes",),
            "remedial_ela": ("yes",),
            "remedial_math": ("yes",),
            f"degree_within_{degree_years}": ("yes",),
            # bachelor's or higher among degree earners
            "degree_level": tuple(
                label for rank, label, _ in DEGREE_LEVELS if rank >= 3
            ),
        }
    )


NUMERATORS = numerators()


def _needs_events(measure: str) -> bool:
    return any(measure.startswith(m) for m in _EVENT_MEASURES)


def input_refusal(access: Access, entity: str) -> str | None:
    """Why no provider gives the reader aggregates of ``entity`` for its purpose,
    or None when at least one does. A question to the policy layer only: nothing
    is read and nothing released."""
    answers = access.grants(entity, "aggregate")
    if any(isinstance(a, Grant) for a in answers):
        return None
    if not answers:
        return "no partner has sent such data"
    return "; ".join(f"{a.provider}: {a.reason}" for a in answers)


def college_units_sql(
    as_of: date,
    measure: str,
    *,
    start_month: int,
    degree_years: int = DEFAULT_DEGREE_YEARS,
    demographics: bool = False,
    events: bool = True,
) -> tuple[str, list[object]]:
    """For the release gate: every graduate with a value of ``measure`` on
    ``as_of``, beside each record that made it (as
    :func:`graduate_outcomes_sql` returns them), with ``high_school`` (the
    school's name in ``school``; with the id when two schools share a name; the id
    when the school is not in the reference), ``district`` (the school's owner,
    else the graduation record's provider) and ``school_year`` (the class).

    With ``events=False`` no ``postsecondary_event`` input is read (an empty one
    stands in); with ``demographics=False`` the demographic columns are NULL.
    """
    if measure not in college_measures(degree_years):
        raise UserError(
            f"unknown college measure {measure!r}; use one of "
            f"{', '.join(college_measures(degree_years))}."
        )
    inner, params = graduate_outcomes_sql(
        as_of,
        start_month=start_month,
        degree_years=degree_years,
        demographics=demographics,
    )
    demo = "".join(f", o.{c}" for c, _ in DEMOGRAPHIC_COLUMNS)
    sql = f"""
WITH {"" if events else _NO_EVENTS}
graduates AS (
{inner}
),
graduated_by AS (
    SELECT o.unit, min(o.provider) AS provider
    FROM graduates o
    JOIN graduation gr
      ON gr.provider = o.provider AND gr.unit = o.unit AND gr.record = o.record
    GROUP BY o.unit
),
names AS (
    SELECT school_id, partner_id,
           CASE WHEN count(*) OVER (PARTITION BY name) > 1
                THEN name || ' (' || school_id || ')' ELSE name END AS label
    FROM school
)
SELECT o.provider, o.unit, o.record, o.high_school_id,
       coalesce(n.label, o.high_school_id) AS high_school,
       coalesce(n.partner_id, gb.provider) AS district,
       o.class_of, o.class_of AS school_year{demo},
       o.{measure}
FROM graduates o
LEFT JOIN names n ON n.school_id = o.high_school_id
LEFT JOIN graduated_by gb ON gb.unit = o.unit
WHERE o.{measure} IS NOT NULL
"""
    return sql, params


@dataclass(frozen=True)
class MeasureRelease:
    """One measure of a college report: its release, or why there is none."""

    measure: str
    label: str
    denominator: str
    counts: tuple[str, ...]
    """the values its rate counts (e.g. ``yes``, ``Four-year``)"""
    release: Release | None
    left_out: Mapping[str, str] = field(default_factory=dict)
    """inputs the reader was not given for this measure, and why"""
    refused: str | None = None
    """why the gate refused the release (nothing was released), if it did"""

    @property
    def release_id(self) -> int | None:
        return self.release.release_id if self.release else None

    @property
    def table(self) -> pa.Table | None:
        """The dimensions, ``persons`` (the denominator), ``matching``, ``rate``
        (coded text), ``rate_value`` (a fraction, null where the text is suppressed
        or coded) and ``note``; ``(all)`` on the margins."""
        return self.release.table if self.release else None


@dataclass(frozen=True)
class ClassSeries:
    measure: str
    label: str
    values: tuple[float | None, ...]
    """the released rate (a fraction) per graduating class; None where it is
    suppressed, coded or not yet observable"""


@dataclass(frozen=True)
class CollegeGoing:
    """The community's released rates by graduating class, one series per measure
    (the margins over every other dimension)."""

    classes: tuple[str, ...]
    series: tuple[ClassSeries, ...]

    def chart(self) -> Chart:
        """The line chart of :func:`backbone.measures.charts.college_going`."""
        from backbone.measures.charts import college_going

        return college_going(
            "College going by graduating class (the community)",
            [f"Class of {c}" for c in self.classes],
            [
                (s.label, [None if v is None else 100 * v for v in s.values])
                for s in self.series
            ],
            notes="Released rates of the community's graduates (all high schools), "
            "as the Clearinghouse reports them; a gap is suppressed, coded, or not "
            "yet observable.",
        )


@dataclass(frozen=True)
class CollegeReport:
    as_of: date
    purpose: str
    by: tuple[str, ...]
    where: Mapping[str, tuple[str, ...]]
    measures: Mapping[str, MeasureRelease]
    left_out: Mapping[str, str]
    """every input left out of any measure, and why"""

    def going_by_class(self) -> CollegeGoing | None:
        """The community's rates by graduating class; None unless the report is cut
        by ``class_of`` and released something."""
        if "class_of" not in self.by:
            return None
        per_measure: list[tuple[MeasureRelease, dict[str, float | None]]] = []
        for m in self.measures.values():
            if m.table is None:
                continue
            per_measure.append(
                (
                    m,
                    {
                        str(r["class_of"]): r.get("rate_value")
                        for r in m.table.to_pylist()
                        if r.get("class_of") not in (None, TOTAL)
                        and all(r.get(d) == TOTAL for d in self.by if d != "class_of")
                    },
                )
            )
        classes = sorted({c for _, values in per_measure for c in values})
        if not classes or not per_measure:
            return None
        return CollegeGoing(
            tuple(classes),
            tuple(
                ClassSeries(m.measure, m.label, tuple(values.get(c) for c in classes))
                for m, values in per_measure
            ),
        )

    def table(self) -> pa.Table:
        """All released measures in one long table: ``measure``, ``label``, the
        dimensions, ``persons``, ``matching``, ``rate`` (text), ``rate_value`` (a
        fraction, null where the text is suppressed or coded), ``note``."""
        rows: list[dict[str, Any]] = []
        for m in self.measures.values():
            if m.table is None:
                continue
            for r in m.table.to_pylist():
                rows.append({"measure": m.measure, "label": m.label, **r})
        columns = [
            "measure",
            "label",
            *self.by,
            "persons",
            "matching",
            "rate",
            "rate_value",
            "note",
        ]
        if not self.by:
            columns.insert(2, "group")
        return pa.table(
            {c: pa.array([r.get(c) for r in rows], _type(c)) for c in columns}
        )


def _type(column: str) -> pa.DataType:
    if column == "rate_value":
        return pa.float64()
    return pa.int64() if column in ("persons", "matching") else pa.string()


def _check_names(by: Sequence[str], where: Mapping[str, Sequence[object]]) -> None:
    for name in (*by, *where):
        if name not in COLLEGE_DIMENSIONS:
            raise UserError(
                f"cannot cut college outcomes by {name!r}; use "
                f"{', '.join(COLLEGE_DIMENSIONS)}."
            )


def college_release(
    access: Access,
    measure: str,
    *,
    as_of: date,
    by: Sequence[str],
    where: Mapping[str, Sequence[object]] | None = None,
    degree_years: int = DEFAULT_DEGREE_YEARS,
    demographics: bool = False,
) -> Release:
    """One measure as a rate release (see :func:`college_units_sql`; ``by`` may
    also name ``school_year``, the class). Event measures read the agency's
    events; the others do not. ``demographics`` reads them as an optional input."""
    events = _needs_events(measure)
    inputs = dict(REQUIRED_INPUTS)
    optional: list[str] = []
    if events:
        inputs["postsecondary_event"] = EVENT_INPUT
    if demographics:
        inputs["demographics"] = DEMOGRAPHICS_INPUT
        optional.append("demographics")
    sql, params = college_units_sql(
        as_of,
        measure,
        start_month=access.school_year_start_month,
        degree_years=degree_years,
        demographics=demographics,
        events=events,
    )
    counts = numerators(degree_years)[measure]
    info = college_measures(degree_years)[measure]
    return access.count_derived(
        "graduation",
        (),
        sql,
        list(by),
        params=params,
        where=dict(where or {}),
        numerator={measure: list(counts)},
        definition={
            "measure": f"college:{measure}",
            "label": info.label,
            "denominator": info.denominator,
            "as_of": as_of.isoformat(),
        },
        inputs=inputs,
        optional=optional,
    )


def college_report(
    access: Access,
    *,
    as_of: date,
    by: Sequence[str] = ("high_school", "class_of"),
    measures: Sequence[str] | None = None,
    where: Mapping[str, Sequence[object]] | None = None,
    degree_years: int = DEFAULT_DEGREE_YEARS,
) -> CollegeReport:
    """Graduates' college outcomes as known on ``as_of``, one rate release per
    measure, by up to two of :data:`COLLEGE_DIMENSIONS` with their margins
    (``(all)``: every school of a class is the community).

    ``by=("high_school", "class_of")`` (the default) shows the schools by name;
    ``high_school_id`` gives their ids. Refused outright (PolicyDenied) when the
    reader may not aggregate graduates or college enrollment for its purpose. A
    measure needing the agency's events, when they are not shared with the reader,
    is left out (no release; ``left_out`` says why); demographics not shared come
    out NULL. A release the gate refuses (no suppression pattern protects the
    table against earlier releases) is noted on its measure, the rest stand.
    """
    where = dict(where or {})
    _check_names(by, where)
    known = college_measures(degree_years)
    chosen = list(measures) if measures is not None else list(known)
    bad = [m for m in chosen if m not in known]
    if bad:
        raise UserError(
            f"unknown college measure {bad[0]!r}; use one of {', '.join(known)}."
        )
    if not chosen:
        raise UserError("name at least one college measure.")
    demographic = bool(_DEMOGRAPHIC & {*by, *where})
    required = {
        alias: why
        for alias, (entity, _) in REQUIRED_INPUTS.items()
        if (why := input_refusal(access, entity)) is not None
    }
    events_refused = input_refusal(access, EVENT_INPUT[0])
    demographics_refused = (
        input_refusal(access, DEMOGRAPHICS_INPUT[0]) if demographic else None
    )
    results: dict[str, MeasureRelease] = {}
    left_out: dict[str, str] = {}
    released = False
    for measure in chosen:
        info = known[measure]
        counts = numerators(degree_years)[measure]
        missing: dict[str, str] = {}
        if demographics_refused is not None:
            missing["demographics"] = demographics_refused
        if _needs_events(measure) and events_refused is not None and not required:
            # without the events every enrollee would read as "no": leave it out
            missing["postsecondary_event"] = events_refused
            left_out.update(missing)
            results[measure] = MeasureRelease(
                measure, info.label, info.denominator, counts, None, missing
            )
            continue
        try:
            release = college_release(
                access,
                measure,
                as_of=as_of,
                by=by,
                where=where,
                degree_years=degree_years,
                demographics=demographic,
            )
        except PolicyDenied as denied:
            if required and not released:
                raise  # the reader may not have these figures at all
            results[measure] = MeasureRelease(
                measure,
                info.label,
                info.denominator,
                counts,
                None,
                missing,
                str(denied),
            )
            continue
        released = True
        left_out.update(missing)
        results[measure] = MeasureRelease(
            measure, info.label, info.denominator, counts, release, missing
        )
    return CollegeReport(
        as_of,
        access.purpose,
        tuple(by),
        MappingProxyType({k: tuple(str(v) for v in vs) for k, vs in where.items()}),
        MappingProxyType(results),
        MappingProxyType(left_out),
    )
