"""College-going outcomes of high-school graduates as SQL built by a pure function
(DuckDB dialect; sqlglot translates it for Spark), in the manner of the National
Student Clearinghouse's StudentTracker for High Schools reports.

:func:`graduate_outcomes_sql` runs in the release gate's locked database, over one
table per entity named by the entity (``graduation``, ``postsecondary_enrollment``,
``postsecondary_event``, ``demographics``; each with ``provider``, ``unit`` and
``record`` before the canonical columns) and the reference table
``postsecondary_institution``. It returns, for every graduate, the person's values
beside every record that made them, so the gate can count persons per group and
know whose data each count rests on.

The measures follow NSC's Basic Packet (enrollment in the first fall, within the
first year and within two years of high school; the first institution's level and
control; persistence to a second year; completion) and its Demographic Packet
breakdowns (sex, race/ethnicity, economic disadvantage, disability, English
learner); remediation is the SLDS feedback-report measure (see
``/work/shared/reference/domain.md`` §3). Each outcome is ``'yes'`` / ``'no'``, or
NULL where the person is outside its denominator or its window has not yet elapsed
on the day the data are read (*censored*): a class whose fall has not come is
neither enrolled nor not enrolled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from backbone.model.calendar import school_year_sql

__all__ = [
    "COLLEGE_MEASURES",
    "DEGREE_LEVELS",
    "DEMOGRAPHIC_COLUMNS",
    "CollegeMeasure",
    "college_measures",
    "graduate_outcomes_column_names",
    "graduate_outcomes_sql",
]


@dataclass(frozen=True)
class CollegeMeasure:
    """An outcome column: what it says and whom it is a share of."""

    label: str
    denominator: str


DEFAULT_DEGREE_YEARS = 6
_MARKER = re.compile("\x00([0-9]+)\x00")

# the person's demographics (NSC Demographic Packet), with their SQL types
DEMOGRAPHIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sex", "VARCHAR"),
    ("race", "VARCHAR"),
    ("hispanic_latino_ethnicity", "BOOLEAN"),
    ("economic_disadvantaged", "BOOLEAN"),
    ("english_learner", "BOOLEAN"),
    ("disability", "BOOLEAN"),
)

# degree_level: (rank, label, substrings of a lower-cased degree_type), highest first
DEGREE_LEVELS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (4, "Master's or higher", ("doctor", "master", "professional")),
    (3, "Bachelor's", ("bachelor",)),
    (2, "Associate's", ("associate",)),
    (1, "Certificate", ("certificate",)),
)
UNKNOWN_DEGREE_LEVEL = "Unknown"

REMEDIAL_ELA = "Remedial Enrollment - ELA"
REMEDIAL_MATH = "Remedial Enrollment - Math"
DEGREE_RECEIVED = "College Degree Received"


def _degree_years(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        raise ValueError(f"degree_years must be a whole number from 1 to 20: {value!r}")
    return value


def college_measures(
    degree_years: int = DEFAULT_DEGREE_YEARS,
) -> Mapping[str, CollegeMeasure]:
    """The outcome columns of :func:`graduate_outcomes_sql`, in output order, each
    with a short label and its denominator (the persons with a non-NULL value)."""
    n = _degree_years(degree_years)
    return MappingProxyType(
        {
            "enrolled_first_fall": CollegeMeasure(
                "Enrolled in college the fall after high school",
                "of graduates whose first fall has passed",
            ),
            "enrolled_year_one": CollegeMeasure(
                "Enrolled in college within a year of graduating",
                "of graduates a year or more out",
            ),
            "enrolled_year_two": CollegeMeasure(
                "Enrolled in college within two years of graduating",
                "of graduates two years or more out",
            ),
            "first_level": CollegeMeasure(
                "Level of the first college (four-year / two-year)",
                "of graduates enrolled within the first year",
            ),
            "first_control": CollegeMeasure(
                "Control of the first college (public / private)",
                "of graduates enrolled within the first year",
            ),
            "persisted": CollegeMeasure(
                "Persisted to a second fall",
                "of graduates enrolled in the first fall",
            ),
            "remedial_ela": CollegeMeasure(
                "Took remedial English within two years",
                "of graduates enrolled within the first year",
            ),
            "remedial_math": CollegeMeasure(
                "Took remedial math within two years",
                "of graduates enrolled within the first year",
            ),
            f"degree_within_{n}": CollegeMeasure(
                f"Earned a college degree within {n} years",
                f"of graduates {n} years or more out",
            ),
            "degree_level": CollegeMeasure(
                f"Highest degree earned within {n} years",
                f"of graduates who earned a degree within {n} years",
            ),
        }
    )


COLLEGE_MEASURES: Mapping[str, CollegeMeasure] = college_measures()


def graduate_outcomes_column_names(
    degree_years: int = DEFAULT_DEGREE_YEARS,
) -> tuple[str, ...]:
    """The columns :func:`graduate_outcomes_sql` returns, in order."""
    return (
        "provider",
        "unit",
        "record",
        "high_school_id",
        "class_of",
        "graduation_date",
        *college_measures(degree_years),
        *(c for c, _ in DEMOGRAPHIC_COLUMNS),
    )


def graduate_outcomes_sql(
    as_of: date,
    *,
    start_month: int,
    degree_years: int = DEFAULT_DEGREE_YEARS,
    demographics: bool = True,
) -> tuple[str, list[object]]:
    """One row per (provider, unit, record) that made a graduate's values, with the
    person's values repeated on each: the query the release gate runs to count
    graduates' college outcomes as known on ``as_of``.

    Columns: ``provider, unit, record, high_school_id, class_of (SMALLINT),
    graduation_date``, the outcomes of :data:`COLLEGE_MEASURES` (VARCHAR; the
    degree column is ``degree_within_{degree_years}``), then ``sex, race,
    hispanic_latino_ethnicity, economic_disadvantaged, english_learner,
    disability``.

    **Graduates.** A person (``unit``) with a ``graduation`` row dated on or before
    ``as_of``. With several, the earliest ``graduation_date`` is the graduation (ties:
    provider, then record) and only that row is the person's graduation record:
    ``high_school_id`` is its ``school_id``; ``class_of`` its
    ``class_of_school_year``, else the school year its date falls in (school years
    start in ``start_month``; with July, June 2025 is 2025 and August 2025 is 2026). Below, *g* is that date. Only college
    terms and events dated strictly after *g* count (a term begun in high school is
    dual enrollment, not college-going), from any provider of the person. Persons
    without a graduation never appear.

    **Windows** (a window has *elapsed* when ``as_of`` is after its last day; until
    then the outcome is NULL, out of the denominator):

    - ``enrolled_first_fall``: a term whose [begin, end] touches Aug 15 – Oct 31 of
      the fall after graduation (NSC's "first fall": a term touching that window; a
      term without an end counts if it begins in it). That fall is the one of *g*'s
      calendar year, or of the next year for a graduate after Oct 31 (mid-year).
      NULL before Nov 1.
    - ``enrolled_year_one`` / ``enrolled_year_two``: a term beginning in
      (*g*, *g* + 365 days] / (*g*, *g* + 730 days] (cumulative, as NSC's "within
      the first year / two years after high school"). NULL until elapsed.
    - ``first_level`` / ``first_control``: the ``postsecondary_institution`` level
      ('Four-year' / 'Two-year') and control ('Public' / 'Private') of the
      earliest-beginning term within year one (ties: four-year, then public, then
      institution id), both from that one term; 'Unknown' if the institution or its
      value is not in the reference table; NULL unless ``enrolled_year_one`` is yes.
    - ``persisted``: of first-fall enrollees only (else NULL), a term at any
      institution beginning Aug 1 – Dec 31 of the next year (NSC's persistence to
      a second year). NULL until Dec 31 of that year has passed.
    - ``remedial_ela`` / ``remedial_math``: of year-one enrollees only (else NULL),
      a 'Remedial Enrollment - ELA' / '- Math' event in (*g*, *g* + 730 days]. NULL
      until elapsed.
    - ``degree_within_N`` (N = ``degree_years``; default 6, the span NSC's
      completion figures use): a 'College Degree Received' event in
      (*g*, *g* + N years] (a 'Certification Received' event is not a degree), of
      all graduates; NULL until elapsed. ``degree_level``: when it is yes, the
      highest level among those events' ``degree_type`` — "Master's or higher",
      "Bachelor's", "Associate's", 'Certificate' (by the words
      doctor/master/professional, bachelor, associate, certificate) — or 'Unknown'
      if no type says; else NULL.

    **Demographics**: each column is the latest non-NULL value reported on or before
    *g* (by ``as_of_date``; ties: provider, then record), so a partner that does not
    share a column never blanks another's; NULL if none. With ``demographics=False``
    (no ``demographics`` table in the session) they are all NULL.

    **Records returned** (each once): the graduation row; every term row inside a
    window whose outcome is not NULL (first fall, year one, year two, the
    persistence fall); every remedial or degree event row inside a window whose
    outcome is not NULL; and each demographics row that gave a value. A censored
    window's rows made no value and are left out; a 'no' rests on the graduation
    record alone.
    """
    n = _degree_years(degree_years)
    values: list[object] = []

    def param(value: object) -> str:
        # a marker, turned into a positional ? in text order at the end
        values.append(value)
        return f"\x00{len(values) - 1}\x00"

    def matches(words: tuple[str, ...]) -> str:
        return " OR ".join(
            "lower(v.degree_type) LIKE " + param("%" + w + "%") for w in words
        )

    degree_rank = " ".join(
        f"WHEN {matches(words)} THEN {rank}" for rank, _label, words in DEGREE_LEVELS
    )
    degree_label = " ".join(
        f"WHEN {rank} THEN {param(label)}" for rank, label, _words in DEGREE_LEVELS
    )

    if demographics:
        demo_ctes = [
            """
dsrc AS (
    SELECT d.*
    FROM demographics d
    JOIN g ON g.unit = d.unit AND d.as_of_date <= g.gd
)"""
        ]
        for col, _type in DEMOGRAPHIC_COLUMNS:
            demo_ctes.append(
                f"""
dm_{col} AS (
    SELECT unit, provider, record, {col} AS v
    FROM (
        SELECT unit, provider, record, {col},
               row_number() OVER (PARTITION BY unit
                                  ORDER BY as_of_date DESC, provider, record) AS rn
        FROM dsrc WHERE {col} IS NOT NULL
    ) ranked
    WHERE rn = 1
)"""
            )
        demo_with = "," + ",".join(demo_ctes)
        demo_select = ", ".join(f"dm_{c}.v AS {c}" for c, _ in DEMOGRAPHIC_COLUMNS)
        demo_join = "\n".join(
            f"LEFT JOIN dm_{c} ON dm_{c}.unit = o.unit" for c, _ in DEMOGRAPHIC_COLUMNS
        )
        demo_used = "".join(
            f"\n    UNION SELECT provider, unit, record FROM dm_{c}"
            for c, _ in DEMOGRAPHIC_COLUMNS
        )
    else:
        demo_with = ""
        demo_select = ", ".join(
            f"CAST(NULL AS {t}) AS {c}" for c, t in DEMOGRAPHIC_COLUMNS
        )
        demo_join = ""
        demo_used = ""

    as_of_param = param(as_of)
    ela, math, degree = (
        param(REMEDIAL_ELA),
        param(REMEDIAL_MATH),
        param(DEGREE_RECEIVED),
    )
    unknown = param(UNKNOWN_DEGREE_LEVEL)
    degree_col = f"degree_within_{n}"

    sql = f"""
WITH
cfg AS (
    SELECT CAST({as_of_param} AS DATE) AS as_of
),
ranked_grad AS (
    SELECT gr.provider, gr.unit, gr.record, gr.school_id, gr.graduation_date,
           gr.class_of_school_year,
           row_number() OVER (PARTITION BY gr.unit
                              ORDER BY gr.graduation_date, gr.provider, gr.record) AS rn
    FROM graduation gr CROSS JOIN cfg
    WHERE gr.graduation_date <= cfg.as_of
),
g0 AS (
    SELECT unit, provider AS g_provider, record AS g_record,
           school_id AS high_school_id, graduation_date AS gd,
           CAST(coalesce(class_of_school_year,
                         {school_year_sql("graduation_date", start_month)})
                AS SMALLINT) AS class_of,
           -- the fall after graduation: this year's, or next year's after Oct 31
           year(graduation_date)
               + CASE WHEN month(graduation_date) >= 11 THEN 1 ELSE 0 END AS fall_year
    FROM ranked_grad
    WHERE rn = 1
),
g AS (
    SELECT g0.*, cfg.as_of,
           make_date(fall_year, 8, 15) AS fall_begin,
           make_date(fall_year, 10, 31) AS fall_end,
           make_date(fall_year + 1, 8, 1) AS persist_begin,
           make_date(fall_year + 1, 12, 31) AS persist_end,
           CAST(gd + INTERVAL 365 DAY AS DATE) AS y1_end,
           CAST(gd + INTERVAL 730 DAY AS DATE) AS y2_end,
           CAST(gd + INTERVAL {n} YEAR AS DATE) AS degree_end
    FROM g0 CROSS JOIN cfg
),
terms AS (
    SELECT e.provider, e.unit, e.record, e.institution_id,
           e.term_begin_date AS begin_date,
           coalesce(i.level, {unknown}) AS level,
           coalesce(i.control, {unknown}) AS control,
           e.term_begin_date > g.gd AND e.term_begin_date <= g.fall_end
               AND coalesce(e.term_end_date, e.term_begin_date) >= g.fall_begin
               AS in_fall,
           e.term_begin_date > g.gd AND e.term_begin_date <= g.y1_end AS in_y1,
           e.term_begin_date > g.gd AND e.term_begin_date <= g.y2_end AS in_y2,
           e.term_begin_date > g.gd
               AND e.term_begin_date BETWEEN g.persist_begin AND g.persist_end
               AS in_persist
    FROM postsecondary_enrollment e
    JOIN g ON g.unit = e.unit
    LEFT JOIN postsecondary_institution i ON i.institution_id = e.institution_id
),
term_flags AS (
    SELECT unit,
           max(CASE WHEN in_fall THEN 1 ELSE 0 END) AS any_fall,
           max(CASE WHEN in_y1 THEN 1 ELSE 0 END) AS any_y1,
           max(CASE WHEN in_y2 THEN 1 ELSE 0 END) AS any_y2,
           max(CASE WHEN in_persist THEN 1 ELSE 0 END) AS any_persist
    FROM terms
    GROUP BY unit
),
first_college AS (
    SELECT unit, level, control
    FROM (
        SELECT unit, level, control,
               row_number() OVER (
                   PARTITION BY unit
                   ORDER BY begin_date,
                            CASE level WHEN 'Four-year' THEN 0
                                       WHEN 'Two-year' THEN 1 ELSE 2 END,
                            CASE control WHEN 'Public' THEN 0
                                         WHEN 'Private' THEN 1 ELSE 2 END,
                            institution_id) AS rn
        FROM terms
        WHERE in_y1
    ) ranked
    WHERE rn = 1
),
events AS (
    SELECT v.provider, v.unit, v.record,
           v.postsecondary_event_category = {ela}
               AND v.event_date > g.gd AND v.event_date <= g.y2_end AS rem_ela,
           v.postsecondary_event_category = {math}
               AND v.event_date > g.gd AND v.event_date <= g.y2_end AS rem_math,
           v.postsecondary_event_category = {degree}
               AND v.event_date > g.gd AND v.event_date <= g.degree_end AS deg,
           CASE {degree_rank} ELSE 0 END AS degree_rank
    FROM postsecondary_event v
    JOIN g ON g.unit = v.unit
),
event_flags AS (
    SELECT unit,
           max(CASE WHEN rem_ela THEN 1 ELSE 0 END) AS any_ela,
           max(CASE WHEN rem_math THEN 1 ELSE 0 END) AS any_math,
           max(CASE WHEN deg THEN 1 ELSE 0 END) AS any_degree,
           max(CASE WHEN deg THEN degree_rank END) AS top_degree
    FROM events
    GROUP BY unit
),
enrolled AS (
    SELECT g.*,
           CASE WHEN g.as_of <= g.fall_end THEN NULL
                WHEN coalesce(tf.any_fall, 0) = 1 THEN 'yes' ELSE 'no'
           END AS enrolled_first_fall,
           CASE WHEN g.as_of <= g.y1_end THEN NULL
                WHEN coalesce(tf.any_y1, 0) = 1 THEN 'yes' ELSE 'no'
           END AS enrolled_year_one,
           CASE WHEN g.as_of <= g.y2_end THEN NULL
                WHEN coalesce(tf.any_y2, 0) = 1 THEN 'yes' ELSE 'no'
           END AS enrolled_year_two,
           coalesce(tf.any_persist, 0) AS any_persist,
           coalesce(ef.any_ela, 0) AS any_ela,
           coalesce(ef.any_math, 0) AS any_math,
           coalesce(ef.any_degree, 0) AS any_degree,
           ef.top_degree
    FROM g
    LEFT JOIN term_flags tf ON tf.unit = g.unit
    LEFT JOIN event_flags ef ON ef.unit = g.unit
),
outcomes AS (
    SELECT e.unit, e.g_provider, e.g_record, e.high_school_id, e.class_of,
           e.gd AS graduation_date,
           e.enrolled_first_fall, e.enrolled_year_one, e.enrolled_year_two,
           CASE WHEN e.enrolled_year_one = 'yes' THEN fc.level END AS first_level,
           CASE WHEN e.enrolled_year_one = 'yes' THEN fc.control END AS first_control,
           CASE WHEN e.enrolled_first_fall IS NULL OR e.enrolled_first_fall <> 'yes'
                     OR e.as_of <= e.persist_end THEN NULL
                WHEN e.any_persist = 1 THEN 'yes' ELSE 'no'
           END AS persisted,
           CASE WHEN e.enrolled_year_one IS NULL OR e.enrolled_year_one <> 'yes'
                     OR e.as_of <= e.y2_end THEN NULL
                WHEN e.any_ela = 1 THEN 'yes' ELSE 'no'
           END AS remedial_ela,
           CASE WHEN e.enrolled_year_one IS NULL OR e.enrolled_year_one <> 'yes'
                     OR e.as_of <= e.y2_end THEN NULL
                WHEN e.any_math = 1 THEN 'yes' ELSE 'no'
           END AS remedial_math,
           CASE WHEN e.as_of <= e.degree_end THEN NULL
                WHEN e.any_degree = 1 THEN 'yes' ELSE 'no'
           END AS {degree_col},
           CASE WHEN e.as_of <= e.degree_end OR e.any_degree = 0 THEN NULL
                ELSE CASE e.top_degree {degree_label} ELSE {unknown} END
           END AS degree_level
    FROM enrolled e
    LEFT JOIN first_college fc ON fc.unit = e.unit
){demo_with},
used AS (
    SELECT g_provider AS provider, unit, g_record AS record FROM outcomes
    UNION
    SELECT t.provider, t.unit, t.record
    FROM terms t JOIN outcomes o ON o.unit = t.unit
    WHERE (t.in_fall AND o.enrolled_first_fall IS NOT NULL)
       OR (t.in_y1 AND o.enrolled_year_one IS NOT NULL)
       OR (t.in_y2 AND o.enrolled_year_two IS NOT NULL)
       OR (t.in_persist AND o.persisted IS NOT NULL)
    UNION
    SELECT v.provider, v.unit, v.record
    FROM events v JOIN outcomes o ON o.unit = v.unit
    WHERE (v.rem_ela AND o.remedial_ela IS NOT NULL)
       OR (v.rem_math AND o.remedial_math IS NOT NULL)
       OR (v.deg AND o.{degree_col} IS NOT NULL){demo_used}
)
SELECT u.provider, u.unit, u.record,
       o.high_school_id, o.class_of, o.graduation_date,
       o.enrolled_first_fall, o.enrolled_year_one, o.enrolled_year_two,
       o.first_level, o.first_control, o.persisted,
       o.remedial_ela, o.remedial_math, o.{degree_col}, o.degree_level,
       {demo_select}
FROM used u
JOIN outcomes o ON o.unit = u.unit
{demo_join}
"""
    params: list[object] = []

    def positional(m: re.Match[str]) -> str:
        params.append(values[int(m.group(1))])
        return "?"

    return _MARKER.sub(positional, sql.strip()), params
