"""What each partner's system knows, in canonical terms, before its dialect.

Builds DuckDB tables of the facts each partner would export (``x_students``,
``x_enrollments``, ...), keyed by the partner's own ids. :mod:`backbone.demo.writers`
then renders them in each partner's dialect.
"""

from __future__ import annotations

import pyarrow as pa

from backbone.demo.calendar import SCHOOL_YEAR_START_MONTH
from backbone.demo.community import DISTRICTS, INSTITUTIONS, PROGRAMS, schools
from backbone.engines import Connection, create_table_as, ident, registered
from backbone.model.calendar import school_year_sql
from backbone.model.descriptors import GRADE_LEVELS

__all__ = ["build_exports"]


def _dimension(con: Connection, name: str, table: pa.Table) -> None:
    """A small lookup table of the community's, made from Arrow."""
    source = f"{name}_arrow"
    with registered(con, **{source: table}):
        create_table_as(
            con, ident(name), f"SELECT * FROM {ident(source)}", replace=True
        )


def build_exports(con: Connection) -> None:
    """Create the canonical export tables from the simulation and partner records."""
    school_rows = schools()
    _dimension(
        con,
        "school_dim",
        pa.table(
            {
                "school": [s["key"] for s in school_rows],
                "school_local": [s["local_school_code"] for s in school_rows],
                "school_name": [s["name"] for s in school_rows],
            }
        ),
    )
    _dimension(
        con,
        "district_dim",
        pa.table(
            {
                "district": list(range(len(DISTRICTS))),
                "partner_id": [d.partner_id for d in DISTRICTS],
            }
        ),
    )
    _dimension(
        con,
        "grade_dim",
        pa.table(
            {
                "grade": [g for _, g in GRADE_LEVELS],
                "grade_level": [n for n, _ in GRADE_LEVELS],
            }
        ),
    )
    _dimension(
        con,
        "program_dim",
        pa.table(
            {
                "program_id": [p.program_id for p in PROGRAMS],
                "program_name": [p.name for p in PROGRAMS],
                "cbo": [p.partner_id for p in PROGRAMS],
            }
        ),
    )
    _dimension(
        con,
        "institution_dim",
        pa.table(
            {
                "institution_id": [i[0] for i in INSTITUTIONS],
                "institution_name": [i[1] for i in INSTITUTIONS],
            }
        ),
    )

    con.execute(
        """
        CREATE OR REPLACE TABLE seg AS
        SELECT s.*, dd.partner_id, pr.local_id, sd.school_local, sd.school_name,
               gd.grade_level
        FROM segments s
        JOIN district_dim dd USING (district)
        JOIN partner_record pr ON pr.partner_id = dd.partner_id
                               AND pr.person_key = s.person_key
        JOIN school_dim sd USING (school)
        JOIN grade_dim gd USING (grade)
        """
    )
    # One roster row per student and year in each district: identity + demographics
    # as of the first enrolment that year. Economic status changes now and then.
    con.execute(
        """
        CREATE OR REPLACE TABLE x_students AS
        SELECT s.partner_id, s.school_year, s.local_id, pr.state_student_id,
               pr.first_name, pr.middle_name, pr.last_surname, pr.generation_code_suffix,
               pr.birth_date, p.sex, p.race, p.hispanic,
               (p.economic_disadvantaged <> (hash(s.person_key, s.school_year) % 100 < 6))
                   AS economic_disadvantaged,
               p.english_learner AND s.grade < 6 + (p.person_key % 7) AS english_learner,
               p.disability, pr.address, pr.postal_code, s.school_local, s.grade,
               s.grade_level, s.entry_date AS as_of_date
        FROM (SELECT * FROM seg
              QUALIFY row_number() OVER (
                  PARTITION BY partner_id, person_key, school_year ORDER BY entry_day) = 1) s
        JOIN partner_record pr ON pr.partner_id = s.partner_id AND pr.person_key = s.person_key
        JOIN persons p ON p.person_key = s.person_key
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_enrollments AS
        SELECT partner_id, school_year, local_id, school_local, entry_date, grade,
               grade_level,
               CASE WHEN exit_type = 'End of school year' AND school_year = (SELECT max(school_year) FROM segments)
                    THEN NULL ELSE exit_date END AS exit_date,
               CASE WHEN exit_type = 'End of school year' AND school_year = (SELECT max(school_year) FROM segments)
                    THEN NULL ELSE exit_type END AS exit_type,
               school_year - grade + 12 AS class_of
        FROM seg
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_attendance AS
        SELECT s.partner_id, s.school_year, s.local_id, s.school_local, a.event_date,
               a.category
        FROM attendance_events a JOIN seg s USING (segment)
        """
    )
    # Per-term totals, for districts that send no daily events.
    con.execute(
        """
        CREATE OR REPLACE TABLE x_attendance_terms AS
        WITH terms AS (
            SELECT * FROM (VALUES ('Fall Semester', 0, 90), ('Spring Semester', 90, 180))
                t(term, lo, hi)
        ), spans AS (
            SELECT s.*, t.term, greatest(s.entry_day, t.lo) AS b, least(s.exit_day, t.hi) AS e
            FROM seg s, terms t
            WHERE greatest(s.entry_day, t.lo) < least(s.exit_day, t.hi)
        ), ev AS (
            SELECT sp.segment, sp.term,
                   count(*) FILTER (WHERE a.category = 'Excused Absence') AS exc,
                   count(*) FILTER (WHERE a.category = 'Unexcused Absence') AS unx,
                   count(*) FILTER (WHERE a.category = 'Tardy') AS tdy
            FROM spans sp JOIN attendance_events a
              ON a.segment = sp.segment AND a.day_index >= sp.b AND a.day_index < sp.e
            GROUP BY ALL
        )
        SELECT sp.partner_id, sp.school_year, sp.local_id, sp.school_local, sp.term,
               sp.entry_date AS _entry, sp.b, sp.e,
               (sp.e - sp.b)::DOUBLE AS days_enrolled,
               (sp.e - sp.b - coalesce(exc, 0) - coalesce(unx, 0))::DOUBLE AS days_present,
               coalesce(exc, 0)::DOUBLE AS days_excused,
               coalesce(unx, 0)::DOUBLE AS days_unexcused,
               coalesce(tdy, 0)::DOUBLE AS days_tardy,
               sp.district, sp.year_index
        FROM spans sp LEFT JOIN ev USING (segment, term)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_discipline AS
        SELECT s.partner_id, s.school_year, s.local_id, s.school_local,
               upper(substr(s.partner_id, 1, 3)) || '-' || s.school_year || '-'
                   || lpad((row_number() OVER (PARTITION BY s.partner_id, s.school_year
                            ORDER BY d.incident_date, s.local_id))::VARCHAR, 5, '0')
                   AS incident_id,
               d.incident_date, d.behavior,
               'A' || lpad((row_number() OVER (PARTITION BY s.partner_id, s.school_year
                            ORDER BY d.incident_date, s.local_id))::VARCHAR, 6, '0')
                   AS action_id,
               d.discipline AS action, d.length_days AS action_days
        FROM discipline d JOIN seg s USING (segment)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_courses AS
        SELECT s.partner_id, s.school_year, s.local_id, s.school_local, m.term,
               m.course_prefix || lpad(s.grade::VARCHAR, 2, '0') AS course_code,
               m.course_title || ' ' || s.grade AS course_title,
               m.academic_subject, m.numeric_grade,
               CASE WHEN m.numeric_grade >= 90 THEN 'A' WHEN m.numeric_grade >= 80 THEN 'B'
                    WHEN m.numeric_grade >= 70 THEN 'C' WHEN m.numeric_grade >= 60 THEN 'D'
                    ELSE 'F' END AS letter_grade,
               CASE WHEN m.numeric_grade >= 60 THEN 'Pass' ELSE 'Fail' END AS result,
               CASE WHEN s.grade >= 9 THEN 0.5 END AS credits_attempted,
               CASE WHEN s.grade >= 9 THEN (CASE WHEN m.numeric_grade >= 60 THEN 0.5 ELSE 0 END)
               END AS credits_earned,
               s.grade, s.grade_level, s.person_key
        FROM marks m JOIN seg s USING (segment)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_gpa AS
        WITH t AS (
            SELECT partner_id, school_year, local_id, school_local, term,
                   avg(CASE letter_grade WHEN 'A' THEN 4 WHEN 'B' THEN 3 WHEN 'C' THEN 2
                       WHEN 'D' THEN 1 ELSE 0 END) AS term_gpa,
                   sum(credits_attempted) AS att, sum(credits_earned) AS earned
            FROM x_courses WHERE grade >= 9 GROUP BY ALL
        )
        SELECT *,
               round(avg(term_gpa) OVER w, 2) AS cumulative_gpa,
               sum(earned) OVER w AS cumulative_credits
        FROM t
        WINDOW w AS (PARTITION BY partner_id, local_id ORDER BY school_year, term
                     ROWS UNBOUNDED PRECEDING)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_assessments AS
        SELECT s.partner_id, s.school_year, s.local_id,
               CASE a.academic_subject WHEN 'Mathematics' THEN 'STATE-MATH'
                    ELSE 'STATE-ELA' END || '-G' || s.grade AS assessment_id,
               a.academic_subject, a.administration_date, s.grade, s.grade_level,
               a.scale_score, a.performance_level
        FROM assessments a JOIN seg s USING (segment)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_graduates AS
        SELECT s.partner_id, s.school_year, s.local_id, s.school_local,
               s.exit_date AS graduation_date,
               CASE WHEN avg_mark >= 88 THEN 'Endorsed/advanced diploma'
                    ELSE 'Regular diploma' END AS diploma_type,
               s.school_year AS class_of
        FROM seg s
        LEFT JOIN (SELECT partner_id, local_id, avg(numeric_grade) AS avg_mark
                   FROM x_courses GROUP BY ALL) m USING (partner_id, local_id)
        WHERE s.exit_type = 'Graduated'
        """
    )
    # community programs: roster per participation, sessions
    con.execute(
        """
        CREATE OR REPLACE TABLE x_roster AS
        SELECT pd.cbo AS partner_id, pa.school_year, pr.local_id, pr.first_name,
               pr.middle_name, pr.last_surname, pr.birth_date, p.sex,
               s.grade, s.school_name, pa.program_id, pd.program_name,
               pa.begin_date, pa.end_date, pr.address, pr.postal_code, pa.participation
        FROM participation pa
        JOIN program_dim pd USING (program_id)
        JOIN partner_record pr ON pr.partner_id = pd.cbo AND pr.person_key = pa.person_key
        JOIN persons p ON p.person_key = pa.person_key
        JOIN (SELECT person_key, school_year, arg_min(grade, entry_day) AS grade,
                     arg_min(school_name, entry_day) AS school_name
              FROM seg GROUP BY ALL) s
          ON s.person_key = pa.person_key AND s.school_year = pa.school_year
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_sessions AS
        SELECT r.partner_id, r.school_year, r.local_id, r.program_id, ps.event_date,
               ps.hours
        FROM program_sessions ps JOIN x_roster r USING (participation)
        """
    )
    # college agency: students (graduates who enrolled), terms, events
    # the agency counts academic years as the community's school years
    con.execute(
        f"""
        CREATE OR REPLACE TABLE x_college_terms AS
        SELECT pr.local_id, c.institution_id, i.institution_name, c.term_name,
               c.term_begin_date, c.term_end_date, c.enrollment_status,
               c.credits_attempted, c.credits_earned, c.term_gpa,
               {school_year_sql("c.term_begin_date", SCHOOL_YEAR_START_MONTH)} AS academic_year
        FROM college c
        JOIN partner_record pr ON pr.kind = 'agency' AND pr.person_key = c.person_key
        JOIN institution_dim i USING (institution_id)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE x_college_students AS
        SELECT pr.local_id, pr.first_name, pr.middle_name, pr.last_surname,
               pr.birth_date, pr.sex, g.school_name AS high_school,
               cs.graduation_year AS hs_graduation_year,
               min(t.academic_year) AS academic_year
        FROM college_students cs
        JOIN partner_record pr ON pr.kind = 'agency' AND pr.person_key = cs.person_key
        JOIN (SELECT person_key, arg_max(school_name, school_year) AS school_name
              FROM seg WHERE grade = 12 GROUP BY ALL) g ON g.person_key = cs.person_key
        JOIN x_college_terms t ON t.local_id = pr.local_id
        GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE x_college_events AS
        WITH firsts AS (
            SELECT local_id, institution_id, min(term_begin_date) AS first_term,
                   max(term_end_date) AS last_term, min(academic_year) AS academic_year
            FROM x_college_terms GROUP BY ALL
        )
        SELECT f.local_id, f.institution_id, f.first_term AS event_date,
               'Remedial Enrollment - ELA' AS category, NULL AS degree_type, f.academic_year
        FROM college_students cs
        JOIN partner_record pr ON pr.kind = 'agency' AND pr.person_key = cs.person_key
        JOIN firsts f ON f.local_id = pr.local_id
        WHERE cs.remedial_ela
        UNION ALL
        SELECT f.local_id, f.institution_id, f.first_term, 'Remedial Enrollment - Math',
               NULL, f.academic_year
        FROM college_students cs
        JOIN partner_record pr ON pr.kind = 'agency' AND pr.person_key = cs.person_key
        JOIN firsts f ON f.local_id = pr.local_id
        WHERE cs.remedial_math
        UNION ALL
        SELECT f.local_id, f.institution_id, (f.last_term + INTERVAL 7 DAY)::DATE,
               'College Degree Received',
               CASE WHEN cs.four_year THEN 'Bachelor''s degree' ELSE 'Associate''s degree' END,
               {school_year_sql("f.last_term", SCHOOL_YEAR_START_MONTH)}
        FROM college_students cs
        JOIN partner_record pr ON pr.kind = 'agency' AND pr.person_key = cs.person_key
        JOIN firsts f ON f.local_id = pr.local_id
        WHERE cs.degree
          AND cs.start_year + CASE WHEN cs.four_year THEN 4 ELSE 2 END
              <= (SELECT max(school_year) FROM segments)
        """
    )
