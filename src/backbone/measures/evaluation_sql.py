"""Pure SQL builders for program evaluations: each student's school year as the
evaluation sees it, and each student's program participation and dosage.

They run in the release gate's locked database, over one table per input alias
(see :data:`INPUTS`): every row with its ``provider``, ``unit`` (the person, keyed
for the call) and ``record``. Nothing here reads a file or a connection.
"""

from __future__ import annotations

from datetime import date

from backbone.engines.sql import literal
from backbone.model.calendar import school_year_last_day_sql, school_year_sql
from backbone.model.descriptors import GRADE_LEVELS

__all__ = [
    "INPUTS",
    "OPTIONAL_INPUTS",
    "long_term_sql",
    "participation_sql",
    "person_years_sql",
]

# alias -> (entity, columns) the evaluation reads through the gate
INPUTS: dict[str, tuple[str, list[str]]] = {
    "participation": (
        "program_participation",
        ["program_id", "begin_date", "end_date"],
    ),
    "sessions": ("program_attendance", ["program_id", "event_date", "hours"]),
    "indicator": (
        "student_indicator",
        [
            "school_year",
            "as_of_date",
            "school_id",
            "grade_level",
            "last_enrolled_date",
            "days_enrolled",
            "days_absent",
            "suspensions",
            "sex",
            "race",
            "hispanic_latino_ethnicity",
            "economic_disadvantaged",
            "english_learner",
            "disability",
        ],
    ),
    "transcript": (
        "course_transcript",
        [
            "school_year",
            "final_numeric_grade_earned",
            "final_letter_grade_earned",
            "course_attempt_result",
        ],
    ),
    "academic": ("student_academic_record", ["school_year", "session_gpa"]),
    "assessment": (
        "student_assessment",
        ["school_year", "assessment_identifier", "academic_subject", "scale_score"],
    ),
    "graduation": ("graduation", ["graduation_date"]),
    "enrollment": ("enrollment", ["school_year", "entry_date", "exit_withdraw_type"]),
    "college": ("postsecondary_enrollment", ["term_begin_date"]),
}
# inputs an evaluation can do without (their outcomes are then left out, and why)
OPTIONAL_INPUTS = frozenset(
    {
        "sessions",
        "transcript",
        "academic",
        "assessment",
        "graduation",
        "enrollment",
        "college",
    }
)


# the subjects the ELA and math score outcomes are read from
OUTCOME_SUBJECTS = {
    "ela_score": ("English Language Arts", "Reading"),
    "math_score": ("Mathematics",),
}


# a test without a subject counts by its identifier
_IDENTIFIER_NAMES = {"ela_score": "ELA", "math_score": "MATH"}


def _subject_case(part: int) -> str:
    """WHEN clauses giving a test's outcome (``part`` 0) or its subject's rank
    among the outcome's subjects (1)."""
    whens = []
    for outcome, subjects in OUTCOME_SUBJECTS.items():
        for rank, subject in enumerate(subjects):
            value = literal(outcome) if part == 0 else str(rank)
            whens.append(f"WHEN academic_subject = {literal(subject)} THEN {value}")
        value = literal(outcome) if part == 0 else "0"
        whens.append(
            "WHEN academic_subject IS NULL AND upper(assessment_identifier) LIKE "
            f"{literal('%' + _IDENTIFIER_NAMES[outcome] + '%')} THEN {value}"
        )
    return " ".join(whens)


def assessment_scores_sql() -> str:
    """Per person and school year, the mean ELA and math scale scores from the
    ``assessment`` input: a reading benchmark stands in for ELA only when the
    student has no ELA score that year (their scales differ: never averaged
    together)."""
    return f"""
WITH tagged AS (
    SELECT unit, school_year, scale_score,
           CASE {_subject_case(0)} END AS outcome,
           CASE {_subject_case(1)} END AS preference
    FROM assessment
)
SELECT unit, school_year,
       avg(scale_score) FILTER (WHERE outcome = 'ela_score') AS ela_score,
       avg(scale_score) FILTER (WHERE outcome = 'math_score') AS math_score
FROM (
    SELECT * FROM tagged WHERE outcome IS NOT NULL
    QUALIFY preference = min(preference) OVER (PARTITION BY unit, school_year, outcome)
)
GROUP BY unit, school_year
"""


def _grade_case(column: str) -> str:
    whens = " ".join(f"WHEN {literal(name)} THEN {n}" for name, n in GRADE_LEVELS)
    return f"CASE {column} {whens} END"


def _school_year(column: str, start_month: int) -> str:
    return f"CAST({school_year_sql(column, start_month)} AS SMALLINT)"


def person_years_sql() -> str:
    """One row per person and school year they were enrolled (year-end values):
    school, grade, attendance rate (%), suspended (0/1), mean course mark, courses
    passed (%), GPA, ELA (or reading) and math scale scores, and demographics
    as 0/1.

    A student at two schools in a year (a mover) is one row: days and absences
    add up; the school and grade are those of the latest enrollment. The year's
    values come from its latest snapshot (the year end once the year is over).
    """
    return f"""
WITH ind AS (
    SELECT * FROM indicator
    QUALIFY as_of_date = max(as_of_date) OVER (PARTITION BY record, school_year)
),
years AS (
    SELECT unit, school_year,
           arg_max(school_id, coalesce(last_enrolled_date, as_of_date)) AS school_id,
           arg_max({_grade_case("grade_level")},
                   coalesce(last_enrolled_date, as_of_date)) AS grade,
           -- a year with a record at a school without a calendar: days unknown
           -- (its absences would otherwise count against the others' days)
           CASE WHEN bool_and(days_enrolled IS NOT NULL) THEN sum(days_enrolled) END
               AS days_enrolled,
           CASE WHEN bool_and(days_enrolled IS NOT NULL) THEN sum(days_absent) END
               AS days_absent,
           sum(suspensions) AS suspensions,
           max(CASE WHEN sex = 'Female' THEN 1 WHEN sex = 'Male' THEN 0 END) AS female,
           max(CAST(economic_disadvantaged AS INTEGER)) AS economic_disadvantaged,
           max(CAST(english_learner AS INTEGER)) AS english_learner,
           max(CAST(disability AS INTEGER)) AS disability,
           max(CAST(hispanic_latino_ethnicity AS INTEGER)) AS hispanic,
           max(CASE WHEN race IS NULL THEN NULL
                    WHEN race = 'White' THEN 0 ELSE 1 END) AS race_not_white
    FROM ind
    -- enrolled that year: days counted from the school's calendar, or a school
    -- with no calendar (days unknown: no attendance rate, other outcomes stand)
    WHERE days_enrolled > 0 OR (days_enrolled IS NULL AND school_id IS NOT NULL)
    GROUP BY unit, school_year
),
courses AS (
    SELECT unit, school_year,
           avg(final_numeric_grade_earned) AS course_mark,
           100.0 * avg(CASE WHEN coalesce(course_attempt_result = 'Fail', false)
                              OR coalesce(final_letter_grade_earned = 'F', false)
                            THEN 0 ELSE 1 END) AS pass_rate
    FROM transcript GROUP BY unit, school_year
),
gpas AS (
    SELECT unit, school_year, avg(session_gpa) AS gpa
    FROM academic GROUP BY unit, school_year
),
tests AS (
{assessment_scores_sql()}
)
SELECT y.unit, y.school_year, y.school_id, s.partner_id AS district, y.grade,
       -- unknown (NULL) without absences or a calendar: least() skips a NULL
       CASE WHEN y.days_absent IS NOT NULL AND y.days_enrolled > 0
            THEN 100.0 * (1 - least(y.days_absent, y.days_enrolled) / y.days_enrolled)
       END AS attendance_rate,
       -- unknown (NULL) when no partner sends discipline for the student
       CASE WHEN y.suspensions > 0 THEN 1.0
            WHEN y.suspensions IS NOT NULL THEN 0.0 END AS suspended,
       c.course_mark, c.pass_rate, g.gpa, t.ela_score, t.math_score,
       y.female, y.economic_disadvantaged, y.english_learner, y.disability,
       y.hispanic, y.race_not_white
FROM years y
LEFT JOIN school s ON s.school_id = y.school_id
LEFT JOIN courses c USING (unit, school_year)
LEFT JOIN gpas g USING (unit, school_year)
LEFT JOIN tests t USING (unit, school_year)
ORDER BY y.unit, y.school_year
"""


def assessment_subjects_sql() -> str:
    """The canonical subjects the assessments sent carry (NULL for tests sent
    without one): a closed list of labels, never counts or a partner's own test
    names, to say why a score outcome found nothing."""
    return "SELECT DISTINCT academic_subject AS subject FROM assessment ORDER BY 1"


def participation_sql(start_month: int) -> str:
    """One row per person, program and school year of participation (the year
    a spell began): sessions attended (distinct days with attendance inside the
    spell — from its first day to its last, or to the end of that school year
    when it has none) and hours; NULL when the program sends no attendance."""
    begin_year = _school_year("begin_date", start_month)
    return f"""
WITH spells AS (
    SELECT unit, program_id, begin_date,
           coalesce(end_date, {school_year_last_day_sql(begin_year, start_month)})
               AS end_date,
           {begin_year} AS school_year
    FROM participation
),
attended AS (
    SELECT s.unit, s.program_id, s.school_year,
           count(DISTINCT a.event_date) AS sessions, sum(a.hours) AS hours
    FROM spells s
    JOIN sessions a ON a.unit = s.unit AND a.program_id = s.program_id
     AND a.event_date BETWEEN s.begin_date AND s.end_date
    GROUP BY ALL
)
SELECT DISTINCT s.unit, s.program_id, s.school_year,
       CAST(a.sessions AS DOUBLE) AS sessions, CAST(a.hours AS DOUBLE) AS hours
FROM spells s LEFT JOIN attended a USING (unit, program_id, school_year)
ORDER BY unit, program_id, school_year
"""


def long_term_sql(as_of: date, start_month: int) -> tuple[str, list[object]]:
    """Per person: the first diploma's date, whether they left the community
    schools without one (their last enrollment a transfer), and the first college
    term's start — for on-time graduation and college enrollment, which the caller
    judges against each student's expected class."""
    last_year = _school_year("entry_date", start_month)
    sql = f"""
WITH diplomas AS (
    SELECT unit, min(graduation_date) AS graduation_date FROM graduation
    WHERE graduation_date <= ? GROUP BY unit
),
last_spell AS (
    SELECT unit, arg_max(exit_withdraw_type, entry_date) AS last_exit,
           max({last_year}) AS last_year
    FROM enrollment GROUP BY unit
),
terms AS (
    SELECT c.unit, min(c.term_begin_date) AS first_term
    FROM college c JOIN diplomas d USING (unit)
    WHERE c.term_begin_date >= d.graduation_date - INTERVAL 120 DAY
      AND c.term_begin_date <= ?
    GROUP BY c.unit
)
SELECT coalesce(d.unit, l.unit) AS unit, d.graduation_date,
       coalesce(l.last_exit = 'Transferred', false) AND d.graduation_date IS NULL
           AS left_community,
       t.first_term
FROM diplomas d
FULL JOIN last_spell l USING (unit)
LEFT JOIN terms t ON t.unit = coalesce(d.unit, l.unit)
"""
    return sql, [as_of, as_of]
