"""The shared-measurement scorecard's SQL: pure builders over the gate's derived
inputs (see :mod:`backbone.measures.scorecard` for what each indicator counts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from backbone.measures.definitions import Definitions
from backbone.measures.indicator_sql import derived_units_sql
from backbone.measures.indicators import Snapshot
from backbone.model.calendar import on_time_deadline_sql

__all__ = [
    "LEAVER_EXITS",
    "READY_LEVELS",
    "chronic_absence_sql",
    "graduation_sql",
    "k_readiness_sql",
    "on_track_sql",
]

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
    start_month: int,
    ninth_grade: str = "Ninth grade",
    leavers: Sequence[str] = LEAVER_EXITS,
) -> tuple[str, list[object]]:
    """Over ``enrollment`` and ``graduation``: each cohort member's ``graduated``
    ('yes' by the class's on-time deadline, :func:`on_time_deadline` — Aug 31 of
    the class year with a July start — else 'no') by ``school_year`` (the class)
    and ``district`` (of the latest enrollment), beside every enrollment record
    of the person and the diplomas that made a yes. Classes whose deadline is not
    before ``as_of`` are not judged yet."""
    class_deadline = on_time_deadline_sql(
        "coalesce(x.stated, x.from_ninth)", start_month
    )
    cohort_deadline = on_time_deadline_sql("c.school_year", start_month)
    sql = f"""
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
                    <= {class_deadline}, false)
               AS on_time
    FROM expected x
    JOIN last_spell l USING (unit)
    LEFT JOIN diploma d USING (unit)
    WHERE coalesce(x.stated, x.from_ninth) IS NOT NULL
      AND {class_deadline} < CAST(? AS DATE)
      AND NOT (d.graduation_date IS NULL
               AND coalesce(list_contains(?, l.exit_withdraw_type), false))
)
SELECT s.provider, s.unit, s.record, c.school_year, c.district,
       CASE WHEN c.on_time THEN 'yes' ELSE 'no' END AS graduated
FROM cohort c JOIN spells s USING (unit)
UNION
SELECT g.provider, g.unit, g.record, c.school_year, c.district, 'yes'
FROM cohort c JOIN graduation g USING (unit)
WHERE c.on_time AND g.graduation_date <= {cohort_deadline}
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
