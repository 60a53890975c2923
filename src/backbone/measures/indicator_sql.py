"""Early-warning indicators as SQL built by pure functions (DuckDB dialect; sqlglot
translates it for Spark).

Two steps, so that linking and the agreements stay in charge:

1. :func:`components_sql` reduces each provider's facts to one row per record
   (provider, local id), school year and snapshot day: days enrolled and absent,
   suspensions, incidents, marks, failures, credits, GPA, demographics, programs.
   Stored in ``analytic.student_indicator``; re-linking never rewrites it.
2. :func:`person_indicators_sql` combines the components a reader may see per
   person (a student who moved districts mid-year counts across both) and turns
   them into indicator values, levels (0 on track, 1 warning, 2 at risk) and the
   ABC tier, with the thresholds of the definitions version the snapshot used.

Names come from the canonical model; configured values (codes, cut points) are
parameters or validated numbers.
"""

from __future__ import annotations

from datetime import date

from backbone.engines.sql import literal
from backbone.measures.definitions import Definitions

__all__ = [
    "COMPONENT_COLUMNS",
    "LEVELS",
    "TIERS",
    "components_sql",
    "derived_units_sql",
    "person_indicators_sql",
    "persons_sql",
]

LEVELS = ("on track", "warning", "at risk")
TIERS = ("on track", "watch", "high risk")
# analytic.student_indicator's columns after the record key, in table order
COMPONENT_COLUMNS = (
    "school_year",
    "as_of_date",
    "definition_version",
    "school_id",
    "grade_level",
    "last_enrolled_date",
    "days_enrolled",
    "days_absent",
    "suspensions",
    "suspension_days",
    "conduct_incidents",
    "state_offenses",
    "ela_mark_total",
    "ela_marks",
    "math_mark_total",
    "math_marks",
    "ela_math_fails",
    "core_course_fails",
    "course_fails",
    "terms_completed",
    "credits_earned",
    "cumulative_credits",
    "gpa",
    "gpa_date",
    "sex",
    "race",
    "hispanic_latino_ethnicity",
    "economic_disadvantaged",
    "english_learner",
    "disability",
    "programs",
    "program_hours",
)


def _num(value: float) -> str:
    """A validated number as a SQL literal: a cut point reads as written (``0.9``)."""
    return repr(float(value))


def components_sql(
    d: Definitions,
    *,
    version: int,
    school_year: int,
    year_begin: date,
    cutoff: date,
    year_end: date | None = None,
    start_month: int,
    providers: list[str] | None = None,
    sources: dict[str, list[str]] | None = None,
) -> tuple[str, dict[str, object]]:
    """One row per record with facts in ``school_year`` up to ``cutoff`` (the
    snapshot day, or the year's last day): the query that fills
    ``analytic.student_indicator`` for one snapshot.

    Days enrolled are the school's instructional days from entry to exit (or the
    cutoff), repeated or overlapping spells at one school merged first, counted from
    a running total per school and day, so the cost is one equality join per
    enrollment rather than one row per enrolled day; a school without a calendar
    leaves them unknown (NULL), never zero. Days absent are excused and unexcused
    absences weighted by duration, only while the record was enrolled (first entry to
    last exit) and at most one a day; partners sending term totals count once a term
    has ended. Only ``providers`` (when given) get rows, each fed only by the
    facts ``sources`` says it shares (entity → providers), so a value never comes
    from data its provider's agreements keep back.
    """
    term_end = d.term_end_sql("term", "school_year", start_month)
    year_end = year_end or cutoff
    p: dict[str, object] = {}

    def param(value: object) -> str:
        # named, so a value used in several places is passed once (Spark's markers
        # are named too, ``:p1``; it has no numbered ones)
        name = f"p{len(p) + 1}"
        p[name] = value
        return f"${name}"

    y, begin, cut = param(school_year), param(year_begin), param(cutoff)
    absent_categories = param(list(d.attendance.absence_categories))
    providers_filter = (
        "true" if providers is None else f"list_contains({param(list(providers))}, r.p)"
    )

    def src(entity: str) -> str:
        """A source table, narrowed to the providers that share it (when given)."""
        if sources is None:
            return f"analytic.{entity}"
        allowed = param(list(sources.get(entity, ())))
        return (
            f"(SELECT * FROM analytic.{entity} "
            f"WHERE list_contains({allowed}, provider_partner_id))"
        )

    # what each entity's facts of this snapshot's year are (as its CTE reads them)
    in_year = {
        "attendance_event": f"school_year = {y}",
        "discipline_action": f"discipline_date BETWEEN {begin} AND {cut}",
        "discipline_incident": f"incident_date BETWEEN {begin} AND {cut}",
        "course_transcript": f"school_year = {y}",
    }

    def senders(entity: str) -> str:
        return (
            f"SELECT DISTINCT provider_partner_id FROM {src(entity)} AS senders "
            f"WHERE {in_year[entity]}"
        )

    def sent(entity: str, value: str) -> str:
        """A count that is 0 when a provider sent none of it that year, and
        unknown (NULL) when the provider sent no such data for the year at all (a
        feed it began later, or never): never a figure from data nobody sent."""
        return f"CASE WHEN r.p IN ({senders(entity)}) THEN coalesce({value}, 0) END"

    sql = f"""
WITH
absence_senders AS ({senders("attendance_event")}),
enr AS (
    SELECT provider_partner_id AS p, student_local_id AS s, school_id,
           entry_grade_level, entry_date,
           least(coalesce(exit_withdraw_date, {cut}), {cut}) AS last_day
    FROM {src("enrollment")} AS src_enrollment
    WHERE school_year = {y} AND entry_date <= {cut}
),
ordered AS (
    SELECT *, max(last_day) OVER (
               PARTITION BY p, s, school_id ORDER BY entry_date, last_day
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end
    FROM enr
),
merged AS (
    -- overlapping or repeated spells at one school are one spell: a day counts once
    SELECT p, s, school_id, min(entry_date) AS entry_date, max(last_day) AS last_day,
           arg_max(entry_grade_level, entry_date) AS entry_grade_level
    FROM (
        SELECT *, sum(CASE WHEN before_end IS NULL OR entry_date > before_end
                           THEN 1 ELSE 0 END) OVER (
                   PARTITION BY p, s, school_id ORDER BY entry_date, last_day
                   ROWS UNBOUNDED PRECEDING) AS island
        FROM ordered
    )
    GROUP BY p, s, school_id, island
),
cal AS (
    -- every day of the year so far at each school with a calendar, with the
    -- running count of instructional days up to it
    SELECT s.school_id, d.day AS date,
           coalesce(c.is_instructional_day, false) AS instructional,
           sum(CASE WHEN c.is_instructional_day THEN 1 ELSE 0 END)
               OVER (PARTITION BY s.school_id ORDER BY d.day) AS upto
    FROM (SELECT DISTINCT school_id FROM ref.calendar_date
          WHERE date BETWEEN {begin} AND {cut}
            AND school_id IN (SELECT school_id FROM merged)) s
    -- (the series unnested alone, then cast: Spark takes no generator in a CAST)
    CROSS JOIN (SELECT CAST(day AS DATE) AS day
                FROM (SELECT unnest(generate_series(CAST({begin} AS DATE),
                                                    CAST({cut} AS DATE),
                                                    INTERVAL 1 DAY)) AS day)) d
    LEFT JOIN ref.calendar_date c ON c.school_id = s.school_id AND c.date = d.day
),
spell AS (
    -- a school without a calendar has unknown days (NULL), not zero
    SELECT e.p, e.s, e.school_id, e.entry_grade_level, e.entry_date, e.last_day,
           CASE WHEN l.school_id IS NULL THEN NULL
                WHEN e.last_day < e.entry_date THEN 0
                ELSE l.upto - coalesce(f.upto, 0)
                     + CASE WHEN f.instructional THEN 1 ELSE 0 END
           END AS days
    FROM merged e
    LEFT JOIN cal l ON l.school_id = e.school_id AND l.date = e.last_day
    LEFT JOIN cal f ON f.school_id = e.school_id AND f.date = e.entry_date
),
enrolled AS (
    SELECT p, s,
           CASE WHEN bool_and(days IS NOT NULL) THEN sum(days) END AS days_enrolled,
           arg_max(school_id, entry_date) AS school_id,
           arg_max(entry_grade_level, entry_date) AS grade_level,
           max(last_day) AS last_enrolled_date
    FROM spell GROUP BY p, s
),
envelope AS (
    SELECT p, s, min(entry_date) AS first_day, max(last_day) AS last_day
    FROM merged GROUP BY p, s
),
absent AS (
    -- absences while the record was enrolled (first entry to last exit), at most
    -- one day absent per day however many events say so
    SELECT p, s, sum(duration) AS days_absent
    FROM (
        SELECT e.provider_partner_id AS p, e.student_local_id AS s, e.event_date,
               least(sum(coalesce(e.event_duration, 1)), 1) AS duration
        FROM {src("attendance_event")} e
        JOIN envelope v
          ON v.p = e.provider_partner_id AND v.s = e.student_local_id
        WHERE e.school_year = {y} AND e.event_date <= {cut}
          AND e.event_date BETWEEN v.first_day AND v.last_day
          AND list_contains({absent_categories}, e.attendance_event_category)
        GROUP BY e.provider_partner_id, e.student_local_id, e.event_date
    )
    GROUP BY p, s
),
period AS (
    -- partners that send term totals instead of daily events; a term counts
    -- once it has ended (one with no end date, once the year has)
    SELECT provider_partner_id AS p, student_local_id AS s,
           sum(days_enrolled) AS days_enrolled,
           sum(CASE WHEN days_absent_excused IS NULL AND days_absent_unexcused IS NULL
                    THEN greatest(days_enrolled - days_present, 0)
                    ELSE coalesce(days_absent_excused, 0)
                         + coalesce(days_absent_unexcused, 0) END) AS days_absent
    FROM {src("attendance_period")} AS src_attendance_period
    WHERE school_year = {y} AND coalesce(period_end_date, {param(year_end)}) <= {cut}
    GROUP BY p, s
),
susp AS (
    SELECT provider_partner_id AS p, student_local_id AS s,
           count(*) AS suspensions,
           sum(coalesce(discipline_action_length, 1)) AS suspension_days
    FROM {src("discipline_action")} AS src_discipline_action
    WHERE discipline_date BETWEEN {begin} AND {cut}
      AND list_contains({param(list(d.behavior.suspension_disciplines))}, discipline)
    GROUP BY p, s
),
incidents AS (
    SELECT provider_partner_id AS p, student_local_id AS s,
           count(DISTINCT school_id || ':' || incident_identifier) FILTER (
               WHERE list_contains({param(list(d.behavior.conduct_behaviors))}, behavior)
           ) AS conduct_incidents,
           count(DISTINCT school_id || ':' || incident_identifier) FILTER (
               WHERE list_contains({param(list(d.behavior.state_offense_behaviors))}, behavior)
           ) AS state_offenses
    FROM {src("discipline_incident")} AS src_discipline_incident
    WHERE incident_date BETWEEN {begin} AND {cut}
      AND (participation_code IS NULL
           OR list_contains({param(list(d.behavior.participation_codes))}, participation_code))
    GROUP BY p, s
),
marks AS (
    SELECT provider_partner_id AS p, student_local_id AS s, school_year, term,
           academic_subject, final_numeric_grade_earned AS mark, earned_credits,
           list_contains({param(list(d.course.ela_subjects))}, academic_subject) AS ela,
           list_contains({param(list(d.course.math_subjects))}, academic_subject) AS math,
           list_contains({param(list(d.course.core_subjects))}, academic_subject) AS core,
           coalesce(course_attempt_result = 'Fail', false)
               OR coalesce(list_contains({param(list(d.course.failing_letters))},
                                         final_letter_grade_earned), false) AS failed,
           {term_end} AS term_end
    FROM {src("course_transcript")} AS src_course_transcript
    WHERE school_year <= {y}
),
courses AS (
    SELECT p, s,
           sum(mark) FILTER (WHERE ela) AS ela_mark_total,
           count(mark) FILTER (WHERE ela) AS ela_marks,
           sum(mark) FILTER (WHERE math) AS math_mark_total,
           count(mark) FILTER (WHERE math) AS math_marks,
           count(*) FILTER (WHERE (ela OR math) AND failed) AS ela_math_fails,
           count(*) FILTER (WHERE core AND failed) AS core_course_fails,
           count(*) FILTER (WHERE failed) AS course_fails,
           count(DISTINCT term) AS terms_completed,
           sum(earned_credits) AS credits_earned
    FROM marks WHERE school_year = {y} AND term_end <= {cut}
    GROUP BY p, s
),
earned AS (
    SELECT p, s, sum(earned_credits) AS cumulative_credits
    FROM marks WHERE term_end <= {cut} GROUP BY p, s
),
record AS (
    SELECT provider_partner_id AS p, student_local_id AS s,
           arg_max(cumulative_gpa, term_end) AS gpa, max(term_end) AS gpa_date,
           arg_max(cumulative_earned_credits, term_end) AS cumulative_credits
    FROM (
        SELECT *, {d.term_end_sql("term", "school_year", start_month)} AS term_end
        FROM {src("student_academic_record")} AS src_student_academic_record WHERE school_year <= {y}
    )
    WHERE term_end <= {cut}
    GROUP BY p, s
),
demo AS (
    -- the latest report on or before the cutoff, else the earliest after it
    SELECT provider_partner_id AS p, student_local_id AS s,
           arg_max(sex, k) AS sex, arg_max(race, k) AS race,
           arg_max(hispanic_latino_ethnicity, k) AS hispanic_latino_ethnicity,
           arg_max(economic_disadvantaged, k) AS economic_disadvantaged,
           arg_max(english_learner, k) AS english_learner,
           arg_max(disability, k) AS disability
    FROM (
        SELECT *, CASE WHEN as_of_date <= {cut}
                       THEN date_diff('day', DATE '1900-01-01', as_of_date)
                       ELSE -date_diff('day', DATE '1900-01-01', as_of_date) END AS k
        FROM {src("demographics")} AS src_demographics
    )
    GROUP BY p, s
),
programs AS (
    SELECT provider_partner_id AS p, student_local_id AS s,
           count(DISTINCT program_id) AS programs
    FROM {src("program_participation")} AS src_program_participation
    WHERE begin_date <= {cut} AND coalesce(end_date, {cut}) >= {begin}
    GROUP BY p, s
),
hours AS (
    SELECT provider_partner_id AS p, student_local_id AS s,
           sum(hours) AS program_hours
    FROM {src("program_attendance")} AS src_program_attendance
    WHERE event_date BETWEEN {begin} AND {cut}
    GROUP BY p, s
),
records AS (
    SELECT p, s FROM enrolled UNION SELECT p, s FROM absent
    UNION SELECT p, s FROM period UNION SELECT p, s FROM susp
    UNION SELECT p, s FROM incidents UNION SELECT p, s FROM courses
    UNION SELECT p, s FROM programs UNION SELECT p, s FROM hours
)
SELECT r.p AS provider_partner_id, r.s AS student_local_id,
       CAST({y} AS SMALLINT) AS school_year, CAST({cut} AS DATE) AS as_of_date,
       CAST({param(version)} AS INTEGER) AS definition_version,
       e.school_id, e.grade_level, e.last_enrolled_date,
       CAST(coalesce(pe.days_enrolled, e.days_enrolled) AS DOUBLE) AS days_enrolled,
       CAST(CASE WHEN pe.p IS NOT NULL THEN pe.days_absent
                 WHEN e.p IS NOT NULL
                      AND r.p IN (SELECT provider_partner_id FROM absence_senders)
                     THEN coalesce(a.days_absent, 0)
                 ELSE a.days_absent END AS DOUBLE) AS days_absent,
       CAST({sent("discipline_action", "su.suspensions")} AS INTEGER) AS suspensions,
       CAST({sent("discipline_action", "su.suspension_days")} AS DOUBLE)
           AS suspension_days,
       CAST({sent("discipline_incident", "i.conduct_incidents")} AS INTEGER)
           AS conduct_incidents,
       CAST({sent("discipline_incident", "i.state_offenses")} AS INTEGER)
           AS state_offenses,
       CAST(c.ela_mark_total AS DOUBLE) AS ela_mark_total,
       CAST({sent("course_transcript", "c.ela_marks")} AS INTEGER) AS ela_marks,
       CAST(c.math_mark_total AS DOUBLE) AS math_mark_total,
       CAST({sent("course_transcript", "c.math_marks")} AS INTEGER) AS math_marks,
       CAST({sent("course_transcript", "c.ela_math_fails")} AS INTEGER)
           AS ela_math_fails,
       CAST({sent("course_transcript", "c.core_course_fails")} AS INTEGER)
           AS core_course_fails,
       CAST({sent("course_transcript", "c.course_fails")} AS INTEGER) AS course_fails,
       CAST({sent("course_transcript", "c.terms_completed")} AS INTEGER)
           AS terms_completed,
       CAST(c.credits_earned AS DOUBLE) AS credits_earned,
       CAST(coalesce(rc.cumulative_credits, ea.cumulative_credits) AS DOUBLE)
           AS cumulative_credits,
       CAST(rc.gpa AS DOUBLE) AS gpa, rc.gpa_date,
       dm.sex, dm.race, dm.hispanic_latino_ethnicity, dm.economic_disadvantaged,
       dm.english_learner, dm.disability,
       CAST(coalesce(pr.programs, 0) AS INTEGER) AS programs,
       CAST(coalesce(h.program_hours, 0) AS DOUBLE) AS program_hours
FROM records r
LEFT JOIN enrolled e ON e.p = r.p AND e.s = r.s
LEFT JOIN absent a ON a.p = r.p AND a.s = r.s
LEFT JOIN period pe ON pe.p = r.p AND pe.s = r.s
LEFT JOIN susp su ON su.p = r.p AND su.s = r.s
LEFT JOIN incidents i ON i.p = r.p AND i.s = r.s
LEFT JOIN courses c ON c.p = r.p AND c.s = r.s
LEFT JOIN earned ea ON ea.p = r.p AND ea.s = r.s
LEFT JOIN record rc ON rc.p = r.p AND rc.s = r.s
LEFT JOIN demo dm ON dm.p = r.p AND dm.s = r.s
LEFT JOIN programs pr ON pr.p = r.p AND pr.s = r.s
LEFT JOIN hours h ON h.p = r.p AND h.s = r.s
WHERE {providers_filter}
"""
    return sql.strip(), p


def _level(at_risk: str, warning: str | None = None) -> str:
    if warning is None:
        return f"CASE WHEN {at_risk} THEN 2 ELSE 0 END"
    return f"CASE WHEN {at_risk} THEN 2 WHEN {warning} THEN 1 ELSE 0 END"


def person_indicators_sql(d: Definitions, components: str = "components") -> str:
    """Per person (``unit``), school year and snapshot day: the combined values,
    each indicator's level and the ABC tier, over a relation of components with a
    ``unit`` (one per person, whatever the provider), ``person_id`` and
    ``student_local_id`` (where the reader may know them). NULL values (no data)
    score no points."""
    a, b, c = d.attendance, d.behavior, d.course
    required = d.credits.required_by_end_of_grade
    order = list(required)
    # credits due now: last grade's requirement plus this grade's share so far
    due_cases = []
    for i, grade in enumerate(order):
        before = required[order[i - 1]] if i > 0 else 0.0
        due_cases.append(
            f"WHEN {literal(grade)} THEN {_num(before)} + "
            f"least(terms_completed, {c.terms_per_year}) / {_num(c.terms_per_year)} "
            f"* {_num(required[grade] - before)}"
        )
    credits_due = (
        f"CASE grade_level {' '.join(due_cases)} ELSE NULL END" if due_cases else "NULL"
    )
    nine = d.on_track_9
    return f"""
WITH combined AS (
    SELECT unit, max(person_id) AS person_id, school_year, as_of_date,
           max(definition_version) AS definition_version,
           -- the reader's own handles on the person: the records it may see
           list_sort(list(DISTINCT provider_partner_id || ':' || student_local_id)
               FILTER (WHERE student_local_id IS NOT NULL)) AS records,
           arg_max(provider_partner_id, last_enrolled_date)
               FILTER (WHERE last_enrolled_date IS NOT NULL) AS district,
           arg_max(school_id, last_enrolled_date)
               FILTER (WHERE last_enrolled_date IS NOT NULL) AS school_id,
           arg_max(grade_level, last_enrolled_date)
               FILTER (WHERE last_enrolled_date IS NOT NULL) AS grade_level,
           arg_max(sex, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE sex IS NOT NULL) AS sex,
           arg_max(race, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE race IS NOT NULL) AS race,
           arg_max(hispanic_latino_ethnicity, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE hispanic_latino_ethnicity IS NOT NULL)
               AS hispanic_latino_ethnicity,
           arg_max(economic_disadvantaged, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE economic_disadvantaged IS NOT NULL)
               AS economic_disadvantaged,
           arg_max(english_learner, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE english_learner IS NOT NULL) AS english_learner,
           arg_max(disability, coalesce(last_enrolled_date, DATE '1900-01-01'))
               FILTER (WHERE disability IS NOT NULL) AS disability,
           -- a record enrolled on days nobody can count leaves the rate unknown
           CASE WHEN bool_or(days_enrolled IS NULL AND last_enrolled_date IS NOT NULL)
                THEN NULL ELSE sum(days_enrolled) END AS days_enrolled,
           sum(days_absent) FILTER (WHERE days_enrolled IS NOT NULL) AS days_absent,
           sum(suspensions) AS suspensions,
           sum(suspension_days) AS suspension_days,
           sum(conduct_incidents) AS conduct_incidents,
           sum(state_offenses) AS state_offenses,
           sum(ela_mark_total) / nullif(sum(ela_marks), 0) AS ela_mark,
           sum(math_mark_total) / nullif(sum(math_marks), 0) AS math_mark,
           sum(ela_math_fails) AS ela_math_fails,
           sum(core_course_fails) AS core_course_fails,
           sum(course_fails) AS course_fails,
           -- a mover's fall in one district and spring in another are two terms
           -- (least() skips a NULL: no course data stays unknown, not a full year)
           CASE WHEN sum(terms_completed) IS NOT NULL
                THEN least(sum(terms_completed), {c.terms_per_year}) END
               AS terms_completed,
           sum(credits_earned) AS credits_earned,
           max(cumulative_credits) AS cumulative_credits,
           arg_max(gpa, gpa_date) FILTER (WHERE gpa IS NOT NULL) AS gpa,
           coalesce(sum(programs), 0) > 0 AS in_program,
           sum(program_hours) AS program_hours
    FROM {components}
    GROUP BY unit, school_year, as_of_date
),
valued AS (
    SELECT *,
           CASE WHEN days_enrolled > 0
                THEN greatest(0.0, 1 - days_absent / days_enrolled) END
               AS attendance_rate,
           {credits_due} AS credits_due
    FROM combined
),
levelled AS (
    SELECT *,
           {_level(f"attendance_rate < {_num(a.chronic_below)}", f"attendance_rate < {_num(a.warning_below)}")}
               AS attendance_level,
           coalesce(attendance_rate < {_num(a.severe_below)}, false) AS attendance_severe,
           {_level(f"days_absent >= {_num(a.chronic_days)}", f"days_enrolled > 0 AND days_absent / days_enrolled > {_num(a.chronic_days / a.chronic_days_calendar)}")}
               AS chronic_days_level,
           {_level(f"suspension_days >= {_num(b.suspension_days_at_risk)}")}
               AS suspension_level,
           {_level(f"conduct_incidents >= {b.incidents_at_risk} OR state_offenses > 0", f"conduct_incidents >= {b.incidents_warning}")}
               AS behavior_level,
           {_level(f"ela_math_fails > 0 OR least(ela_mark, math_mark) < {_num(c.mark_at_risk_below)}", f"least(ela_mark, math_mark) < {_num(c.mark_warning_below)}")}
               AS course_mark_level,
           {_level(f"core_course_fails >= {c.core_fails_at_risk}", f"core_course_fails >= {c.core_fails_warning}")}
               AS course_fail_level,
           {_level(f"gpa <= {_num(c.gpa_at_risk_at_or_below)}", f"gpa < {_num(c.gpa_warning_below)}")}
               AS gpa_level,
           CASE WHEN grade_level = {literal(nine.grade_level)}
                     AND terms_completed >= {c.terms_per_year}
                THEN coalesce(credits_earned, 0) >= {_num(nine.min_credits)}
                     AND core_course_fails <= {nine.max_core_semester_fails}
           END AS on_track_9,
           CASE WHEN credits_due IS NOT NULL AND cumulative_credits IS NOT NULL
                THEN cumulative_credits < credits_due END AS credits_behind
    FROM valued
),
pointed AS (
    SELECT *,
           attendance_level AS a_points,
           greatest(suspension_level, behavior_level) AS b_points,
           greatest(course_mark_level, course_fail_level, gpa_level,
                    CASE WHEN on_track_9 = false OR credits_behind THEN 2 ELSE 0 END)
               AS c_points
    FROM levelled
)
SELECT *,
       a_points + b_points + c_points AS points,
       CASE WHEN a_points + b_points + c_points >= {d.tiers.high_risk_min_points}
                THEN {literal(TIERS[2])}
            WHEN a_points + b_points + c_points >= {d.tiers.watch_min_points}
                THEN {literal(TIERS[1])}
            ELSE {literal(TIERS[0])} END AS tier,
       concat_ws('; ',
           CASE WHEN attendance_level > 0 THEN
               'attendance ' || CAST(round(100 * attendance_rate, 1) AS VARCHAR) || '%'
               || CASE WHEN attendance_severe THEN ' (severe)'
                       WHEN attendance_level = 2 THEN ' (chronic)' ELSE '' END END,
           CASE WHEN suspension_level > 0 THEN
               CAST(suspension_days AS VARCHAR) || ' day(s) suspended' END,
           CASE WHEN state_offenses > 0 THEN
               CAST(state_offenses AS VARCHAR) || ' state offense(s)' END,
           CASE WHEN behavior_level > 0 AND conduct_incidents > 0 THEN
               CAST(conduct_incidents AS VARCHAR) || ' conduct incident(s)' END,
           CASE WHEN course_mark_level > 0 THEN
               'ELA/math ' || CAST(round(least(ela_mark, math_mark), 0) AS VARCHAR)
               || CASE WHEN ela_math_fails > 0 THEN ' (F)' ELSE '' END END,
           CASE WHEN course_fail_level > 0 THEN
               CAST(core_course_fails AS VARCHAR) || ' core F' END,
           CASE WHEN gpa_level > 0 THEN 'GPA ' || CAST(gpa AS VARCHAR) END,
           CASE WHEN on_track_9 = false THEN 'off track in grade 9' END,
           CASE WHEN credits_behind THEN 'credits behind' END
       ) AS flags
FROM pointed
""".strip()


def persons_sql(definitions: dict[int, Definitions], components: str) -> str:
    """Persons of every snapshot in ``components``, each evaluated with the
    definitions version its rows were computed with."""
    parts = [
        "SELECT * FROM ("
        + person_indicators_sql(
            d, f"(SELECT * FROM {components} WHERE definition_version = {int(v)})"
        )
        + ")"
        for v, d in sorted(definitions.items())
    ]
    return " UNION ALL BY NAME ".join(parts)


def derived_units_sql(
    definitions: dict[int, Definitions],
    snapshots: list[tuple[int, date]],
    dimensions: list[str],
    *,
    transitions: bool = False,
) -> str:
    """For the release gate, over its ``units`` (provider, unit, record and the
    component columns): each person's values (``dimensions``) beside every record
    that made them, in the given snapshots. With ``transitions`` (two snapshots),
    the dimensions are the person's tier at the first and at the second
    (``(absent)`` where it is in one only)."""
    keys = ", ".join(literal(f"{int(y)}@{d.isoformat()}") for y, d in snapshots)
    components = (
        "(SELECT *, provider AS provider_partner_id, "
        "CAST(NULL AS BIGINT) AS person_id, "
        "CAST(NULL AS VARCHAR) AS student_local_id FROM units "
        f"WHERE list_contains([{keys}], CAST(school_year AS VARCHAR) || '@' "
        "|| CAST(as_of_date AS VARCHAR)))"
    )
    # students: persons enrolled somewhere in the snapshot (a community
    # organization's participant with no enrollment is no school's student)
    persons = f"SELECT * FROM ({persons_sql(definitions, 'comps')}) WHERE district IS NOT NULL"
    if transitions:
        (y0, d0), (y1, d1) = snapshots
        picked = (
            "SELECT unit, "
            f"coalesce(max(tier) FILTER (WHERE school_year = {int(y0)} AND "
            f"as_of_date = {literal(d0)}), '(absent)') AS tier_before, "
            f"coalesce(max(tier) FILTER (WHERE school_year = {int(y1)} AND "
            f"as_of_date = {literal(d1)}), '(absent)') AS tier_after "
            "FROM persons GROUP BY unit"
        )
        return (
            f"WITH comps AS {components}, persons AS ({persons}), t AS ({picked}) "
            "SELECT DISTINCT c.provider, c.unit, c.record, t.tier_before, "
            "t.tier_after FROM comps c JOIN t USING (unit)"
        )
    select = "".join(f", p.{c}" for c in dimensions)
    return (
        f"WITH comps AS {components}, persons AS ({persons}) "
        f"SELECT DISTINCT c.provider, c.unit, c.record{select} FROM comps c "
        "JOIN persons p ON p.unit = c.unit AND p.school_year = c.school_year "
        "AND p.as_of_date = c.as_of_date"
    )
