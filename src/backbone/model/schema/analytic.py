"""``analytic``: the canonical, longitudinal facts (Ed-Fi names and natural keys),
consent, and the derived early-warning indicators."""

from __future__ import annotations

from backbone.model.schema.core import _c, analytic_table

__all__ = [
    "ANALYTIC_TABLES",
    "CONSENT_TABLES",
    "DERIVED_FROM",
    "INDICATOR_TABLES",
    "PERIOD_SQL",
]

ANALYTIC_TABLES = (
    analytic_table(
        "demographics",
        (
            _c("as_of_date", "DATE", required=True),
            _c("sex", "VARCHAR", descriptor="SexDescriptor"),
            _c("hispanic_latino_ethnicity", "BOOLEAN"),
            _c("race", "VARCHAR", descriptor="RaceDescriptor"),
            _c("economic_disadvantaged", "BOOLEAN"),
            _c("english_learner", "BOOLEAN"),
            _c("disability", "BOOLEAN"),
        ),
        ("student_local_id", "as_of_date"),
        edfi="StudentEducationOrganizationAssociation",
        doc="Demographics as reported on a date (they change).",
    ),
    analytic_table(
        "enrollment",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("entry_date", "DATE", required=True),
            _c(
                "entry_grade_level",
                "VARCHAR",
                required=True,
                descriptor="GradeLevelDescriptor",
            ),
            _c("school_year", "SMALLINT", required=True),
            _c("entry_type", "VARCHAR"),
            _c("exit_withdraw_date", "DATE"),
            _c(
                "exit_withdraw_type", "VARCHAR", descriptor="ExitWithdrawTypeDescriptor"
            ),
            _c("class_of_school_year", "SMALLINT"),
        ),
        ("student_local_id", "school_id", "entry_date"),
        edfi="StudentSchoolAssociation",
    ),
    analytic_table(
        "attendance_event",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c("event_date", "DATE", required=True),
            _c(
                "attendance_event_category",
                "VARCHAR",
                required=True,
                descriptor="AttendanceEventCategoryDescriptor",
            ),
            _c("event_duration", "DECIMAL(3,2)", doc="1 = whole day, 0.5 = half"),
            _c("attendance_event_reason", "VARCHAR"),
        ),
        ("student_local_id", "school_id", "event_date", "attendance_event_category"),
        edfi="StudentSchoolAttendanceEvent",
        doc="Daily attendance events (absences, tardies) as Ed-Fi sends them.",
    ),
    analytic_table(
        "attendance_period",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c("session_name", "VARCHAR", required=True),
            _c("period_begin_date", "DATE"),
            _c("period_end_date", "DATE"),
            _c("days_enrolled", "DECIMAL(5,1)", required=True),
            _c("days_present", "DECIMAL(5,1)", required=True),
            _c("days_absent_excused", "DECIMAL(5,1)"),
            _c("days_absent_unexcused", "DECIMAL(5,1)"),
            _c("days_tardy", "DECIMAL(5,1)"),
        ),
        ("student_local_id", "school_id", "school_year", "session_name"),
        doc="Attendance totals per term, for partners that send no daily events.",
    ),
    analytic_table(
        "discipline_incident",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("incident_identifier", "VARCHAR", required=True),
            _c("incident_date", "DATE", required=True),
            _c("behavior", "VARCHAR", required=True, descriptor="BehaviorDescriptor"),
            _c(
                "participation_code",
                "VARCHAR",
                descriptor="DisciplineIncidentParticipationCodeDescriptor",
            ),
        ),
        ("student_local_id", "school_id", "incident_identifier", "behavior"),
        edfi="StudentDisciplineIncidentBehaviorAssociation",
        doc="A student's part in a discipline incident (incident facts denormalised).",
    ),
    analytic_table(
        "discipline_action",
        (
            _c("discipline_action_identifier", "VARCHAR", required=True),
            _c("discipline_date", "DATE", required=True),
            _c(
                "discipline",
                "VARCHAR",
                required=True,
                descriptor="DisciplineDescriptor",
            ),
            _c("discipline_action_length", "DECIMAL(5,1)", doc="days"),
            _c("responsibility_school_id", "VARCHAR"),
            _c("incident_identifier", "VARCHAR"),
        ),
        ("student_local_id", "discipline_action_identifier", "discipline_date"),
        edfi="DisciplineAction",
    ),
    analytic_table(
        "course_transcript",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c("term", "VARCHAR", required=True, descriptor="TermDescriptor"),
            _c("course_code", "VARCHAR", required=True),
            _c("course_title", "VARCHAR"),
            _c("academic_subject", "VARCHAR", descriptor="AcademicSubjectDescriptor"),
            _c(
                "course_attempt_result",
                "VARCHAR",
                descriptor="CourseAttemptResultDescriptor",
            ),
            _c("attempted_credits", "DECIMAL(4,2)"),
            _c("earned_credits", "DECIMAL(4,2)"),
            _c("final_letter_grade_earned", "VARCHAR"),
            _c("final_numeric_grade_earned", "DECIMAL(5,2)"),
            _c("when_taken_grade_level", "VARCHAR", descriptor="GradeLevelDescriptor"),
        ),
        ("student_local_id", "school_id", "school_year", "term", "course_code"),
        edfi="CourseTranscript",
        doc="Course marks per term: the course-performance facts.",
    ),
    analytic_table(
        "student_academic_record",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c("term", "VARCHAR", required=True, descriptor="TermDescriptor"),
            _c("session_attempted_credits", "DECIMAL(5,2)"),
            _c("session_earned_credits", "DECIMAL(5,2)"),
            _c("cumulative_earned_credits", "DECIMAL(5,2)"),
            _c("session_gpa", "DECIMAL(4,2)"),
            _c("cumulative_gpa", "DECIMAL(4,2)"),
        ),
        ("student_local_id", "school_id", "school_year", "term"),
        edfi="StudentAcademicRecord",
    ),
    analytic_table(
        "student_assessment",
        (
            _c("assessment_identifier", "VARCHAR", required=True),
            _c("academic_subject", "VARCHAR", descriptor="AcademicSubjectDescriptor"),
            _c("administration_date", "DATE", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c(
                "when_assessed_grade_level",
                "VARCHAR",
                descriptor="GradeLevelDescriptor",
            ),
            _c("scale_score", "DOUBLE"),
            _c("performance_level", "VARCHAR", descriptor="PerformanceLevelDescriptor"),
        ),
        ("student_local_id", "assessment_identifier", "administration_date"),
        edfi="StudentAssessment",
    ),
    analytic_table(
        "program_participation",
        (
            _c("program_id", "VARCHAR", required=True),
            _c("begin_date", "DATE", required=True),
            _c("end_date", "DATE"),
            _c("reason_exited", "VARCHAR", descriptor="ReasonExitedDescriptor"),
        ),
        ("student_local_id", "program_id", "begin_date"),
        edfi="StudentProgramAssociation",
    ),
    analytic_table(
        "program_attendance",
        (
            _c("program_id", "VARCHAR", required=True),
            _c("event_date", "DATE", required=True),
            _c(
                "attendance_event_category",
                "VARCHAR",
                required=True,
                descriptor="AttendanceEventCategoryDescriptor",
            ),
            _c("hours", "DECIMAL(4,2)", doc="dosage of the session"),
        ),
        ("student_local_id", "program_id", "event_date"),
        edfi="StudentProgramAttendanceEvent",
        doc="Program sessions attended: the dosage of community programs.",
    ),
    analytic_table(
        "graduation",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("graduation_date", "DATE", required=True),
            _c("diploma_type", "VARCHAR", descriptor="DiplomaTypeDescriptor"),
            _c("class_of_school_year", "SMALLINT"),
        ),
        ("student_local_id", "school_id"),
        edfi="Diploma",
        doc="Diplomas awarded; other exits are enrollment.exit_withdraw_type.",
    ),
    analytic_table(
        "postsecondary_enrollment",
        (
            _c("institution_id", "VARCHAR", required=True),
            _c("term_name", "VARCHAR", required=True, doc="e.g. Fall 2025"),
            _c("term_begin_date", "DATE", required=True),
            _c("term_end_date", "DATE"),
            _c("enrollment_status", "VARCHAR", doc="Full-time / Part-time"),
            _c("credits_attempted", "DECIMAL(5,2)"),
            _c("credits_earned", "DECIMAL(5,2)"),
            _c("term_gpa", "DECIMAL(4,2)"),
        ),
        ("student_local_id", "institution_id", "term_begin_date"),
        doc="College terms enrolled, with credits and GPA.",
    ),
    analytic_table(
        "postsecondary_event",
        (
            _c("event_date", "DATE", required=True),
            _c(
                "postsecondary_event_category",
                "VARCHAR",
                required=True,
                descriptor="PostSecondaryEventCategoryDescriptor",
            ),
            _c("institution_id", "VARCHAR"),
            _c("degree_type", "VARCHAR", doc="for College Degree Received"),
        ),
        ("student_local_id", "postsecondary_event_category", "event_date"),
        edfi="PostSecondaryEvent",
        doc="Remedial enrollment, degrees and other college events.",
    ),
)

# Added by migration 6 (with gov.ACCESS_TABLES): consent decisions.
CONSENT_TABLES = (
    analytic_table(
        "consent",
        (
            _c("consent_scope", "VARCHAR", required=True, doc="a purpose id, or 'all'"),
            _c(
                "consent_status",
                "VARCHAR",
                required=True,
                doc="granted / denied / withdrawn",
            ),
            _c("decision_date", "DATE", required=True),
            _c("school_year", "SMALLINT", doc="the school year a grant covers"),
            _c("expiration_date", "DATE"),
        ),
        ("student_local_id", "consent_scope", "decision_date"),
        doc="Families' consent decisions, for agreements whose legal basis is consent.",
    ),
)

# Added by migration 7 (with gov.MODEL_TABLES): early-warning indicators.
INDICATOR_TABLES = (
    analytic_table(
        "student_indicator",
        (
            _c("school_year", "SMALLINT", required=True),
            _c("as_of_date", "DATE", required=True, doc="the snapshot's day"),
            _c(
                "definition_version",
                "INTEGER",
                required=True,
                doc="the indicator definitions version used",
            ),
            _c("school_id", "VARCHAR", doc="the latest school enrolled in"),
            _c("grade_level", "VARCHAR", descriptor="GradeLevelDescriptor"),
            _c("last_enrolled_date", "DATE"),
            _c("days_enrolled", "DOUBLE", doc="instructional days enrolled"),
            _c("days_absent", "DOUBLE", doc="excused + unexcused, by duration"),
            _c("suspensions", "INTEGER"),
            _c("suspension_days", "DOUBLE"),
            _c("conduct_incidents", "INTEGER", doc="code-of-conduct, as perpetrator"),
            _c("state_offenses", "INTEGER"),
            _c("ela_mark_total", "DOUBLE", doc="sum of ELA term marks"),
            _c("ela_marks", "INTEGER"),
            _c("math_mark_total", "DOUBLE"),
            _c("math_marks", "INTEGER"),
            _c("ela_math_fails", "INTEGER", doc="ELA or math terms failed"),
            _c("core_course_fails", "INTEGER", doc="core semester courses failed"),
            _c("course_fails", "INTEGER", doc="semester courses failed"),
            _c("terms_completed", "INTEGER"),
            _c("credits_earned", "DOUBLE", doc="this school year"),
            _c("cumulative_credits", "DOUBLE"),
            _c("gpa", "DOUBLE", doc="latest cumulative GPA"),
            _c("gpa_date", "DATE", doc="end of the term the GPA is from"),
            _c("sex", "VARCHAR", descriptor="SexDescriptor"),
            _c("race", "VARCHAR", descriptor="RaceDescriptor"),
            _c("hispanic_latino_ethnicity", "BOOLEAN"),
            _c("economic_disadvantaged", "BOOLEAN"),
            _c("english_learner", "BOOLEAN"),
            _c("disability", "BOOLEAN"),
            _c("programs", "INTEGER", doc="programs participated in"),
            _c("program_hours", "DOUBLE"),
        ),
        ("student_local_id", "school_year", "as_of_date"),
        doc="Early-warning components of one provider's record as of a day, "
        "combined per linked person when read (measures.indicators).",
        derived=True,
    ),
)

# Natural-key column and period (school year) of each analytic table, used by
# validation (duplicates) and by replace-period loads.
PERIOD_SQL: dict[str, str] = {
    "demographics": "as_of_date",
    "enrollment": "school_year",
    "attendance_event": "school_year",
    "attendance_period": "school_year",
    "discipline_incident": "incident_date",
    "discipline_action": "discipline_date",
    "course_transcript": "school_year",
    "student_academic_record": "school_year",
    "student_assessment": "school_year",
    "program_participation": "begin_date",
    "program_attendance": "event_date",
    "graduation": "graduation_date",
    "postsecondary_enrollment": "term_begin_date",
    "postsecondary_event": "event_date",
    "consent": "decision_date",
    "student_indicator": "school_year",
}
# Derived tables and the facts they are computed from: when a provider's facts are
# destroyed, what was derived from them goes too.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "student_indicator": (
        "enrollment",
        "attendance_event",
        "attendance_period",
        "discipline_incident",
        "discipline_action",
        "course_transcript",
        "student_academic_record",
        "demographics",
        "program_participation",
        "program_attendance",
    ),
}
