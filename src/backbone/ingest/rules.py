"""Validation rules beyond types and code sets, declared as data.

Each rule is SQL over the typed row (field names as columns); a row breaking it is
quarantined with the rule's name and a message a clerk understands. A rule that
depends on the school calendar names its bounds as ``{first_day_of_school_year}`` /
``{last_day_of_school_year}``; :func:`ranges` fills them in for the warehouse's
start month.
"""

from __future__ import annotations

from dataclasses import dataclass

from backbone.model.calendar import (
    school_year_first_day_sql,
    school_year_last_day_sql,
)

__all__ = [
    "DATE_ORDER",
    "RANGES",
    "REFERENCES",
    "RULE_HELP",
    "Range",
    "Reference",
    "ranges",
]


@dataclass(frozen=True)
class Range:
    condition: str
    """SQL that must hold (NULLs pass: missing values are the 'required' rule's job)."""
    message: str


RANGES: dict[str, dict[str, Range]] = {
    "partner_record": {
        "birth_date": Range(
            "birth_date BETWEEN make_date({earliest_birth_year}, 1, 1) AND current_date",
            "birth date is not plausible",
        ),
        "birth_year": Range(
            "birth_year BETWEEN {earliest_birth_year} AND year(current_date)",
            "birth year is not plausible",
        ),
        "birth_quarter": Range(
            "birth_quarter BETWEEN 1 AND 4", "birth quarter must be 1 to 4"
        ),
    },
    "enrollment": {
        "school_year": Range(
            "school_year BETWEEN 1900 AND 2200", "school year is out of range"
        ),
    },
    "attendance_event": {
        "event_date": Range(
            "event_date BETWEEN {first_day_of_school_year} AND {last_day_of_school_year}",
            "the date is outside the school year",
        ),
        "event_duration": Range(
            "event_duration > 0 AND event_duration <= 1",
            "event duration must be more than 0 and at most 1 day",
        ),
    },
    "attendance_period": {
        "days_enrolled": Range(
            "days_enrolled BETWEEN 0 AND 250", "days enrolled must be 0 to 250"
        ),
        "days_present": Range(
            "days_present BETWEEN 0 AND days_enrolled",
            "days present must be between 0 and days enrolled",
        ),
    },
    "course_transcript": {
        "final_numeric_grade_earned": Range(
            "final_numeric_grade_earned BETWEEN 0 AND 100",
            "a numeric grade must be 0 to 100",
        ),
        "attempted_credits": Range(
            "attempted_credits BETWEEN 0 AND 10", "credits must be 0 to 10"
        ),
        "earned_credits": Range(
            "earned_credits BETWEEN 0 AND attempted_credits OR attempted_credits IS NULL",
            "credits earned cannot exceed credits attempted",
        ),
    },
    "student_academic_record": {
        "session_gpa": Range("session_gpa BETWEEN 0 AND 5", "a GPA must be 0 to 5"),
        "cumulative_gpa": Range(
            "cumulative_gpa BETWEEN 0 AND 5", "a GPA must be 0 to 5"
        ),
    },
    "discipline_action": {
        "discipline_action_length": Range(
            "discipline_action_length BETWEEN 0 AND 365",
            "a discipline action lasts 0 to 365 days",
        ),
    },
    "program_attendance": {
        "hours": Range(
            "hours > 0 AND hours <= 24",
            "session hours must be more than 0 and at most 24",
        ),
    },
    "postsecondary_enrollment": {
        "term_gpa": Range("term_gpa BETWEEN 0 AND 4.5", "a term GPA must be 0 to 4.5"),
        "credits_attempted": Range(
            "credits_attempted BETWEEN 0 AND 40", "term credits must be 0 to 40"
        ),
    },
    "student_assessment": {
        "scale_score": Range(
            "scale_score BETWEEN 0 AND 10000", "scale score is out of range"
        ),
    },
}


def ranges(
    entity: str, start_month: int, earliest_birth_year: int = 1900
) -> dict[str, Range]:
    """The range rules of ``entity``, school-year bounds filled in for
    ``start_month`` and birth dates' for ``earliest_birth_year``."""
    calendar = {
        "earliest_birth_year": str(int(earliest_birth_year)),
        "first_day_of_school_year": school_year_first_day_sql(
            "school_year", start_month
        ),
        "last_day_of_school_year": school_year_last_day_sql("school_year", start_month),
    }
    return {
        column: Range(rule.condition.format_map(calendar), rule.message)
        for column, rule in RANGES.get(entity, {}).items()
    }


# (earlier, later) date pairs per entity
DATE_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "enrollment": (("entry_date", "exit_withdraw_date"),),
    "attendance_period": (("period_begin_date", "period_end_date"),),
    "program_participation": (("begin_date", "end_date"),),
    "postsecondary_enrollment": (("term_begin_date", "term_end_date"),),
}


@dataclass(frozen=True)
class Reference:
    rule: str
    exists_sql: str
    """SQL over the typed row ``t`` and the provider ``{provider}``; true when it refers to something known."""
    message: str


_ENROLLED = (
    "EXISTS (SELECT 1 FROM analytic.enrollment e WHERE e.provider_partner_id = {provider} "
    "AND e.student_local_id = t.student_local_id AND e.school_id = t.school_id "
    "AND e.school_year = t.school_year)"
)
REFERENCES: dict[str, tuple[Reference, ...]] = {
    "enrollment": (
        Reference(
            "unknown_school",
            "EXISTS (SELECT 1 FROM ref.school s WHERE s.school_id = t.school_id)",
            "the school is not registered for this partner",
        ),
        Reference(
            "closed",
            "NOT EXISTS (SELECT 1 FROM ref.school s WHERE s.school_id = t.school_id "
            "AND s.closed_on < t.entry_date)",
            "the school had closed before this entry date",
        ),
    ),
    "attendance_event": (
        Reference(
            "unknown_enrollment",
            _ENROLLED,
            "no enrollment of this student in this school and school year has been loaded",
        ),
    ),
    "attendance_period": (
        Reference(
            "unknown_enrollment",
            _ENROLLED,
            "no enrollment of this student in this school and school year has been loaded",
        ),
    ),
    "program_participation": (
        Reference(
            "unknown_program",
            "EXISTS (SELECT 1 FROM ref.program p WHERE p.program_id = t.program_id)",
            "the program is not registered",
        ),
        Reference(
            "closed",
            "NOT EXISTS (SELECT 1 FROM ref.program p WHERE p.program_id = t.program_id "
            "AND p.closed_on < t.begin_date)",
            "the program had closed before this begin date",
        ),
    ),
    "program_attendance": (
        Reference(
            "unknown_program",
            "EXISTS (SELECT 1 FROM ref.program p WHERE p.program_id = t.program_id)",
            "the program is not registered",
        ),
    ),
    "postsecondary_enrollment": (
        Reference(
            "unknown_institution",
            "EXISTS (SELECT 1 FROM ref.postsecondary_institution i WHERE i.institution_id = t.institution_id)",
            "the institution is not registered",
        ),
    ),
}

RULE_HELP = {
    "required": "A value the warehouse needs is missing.",
    "invalid_date": "A date is not in the form the mapping declares.",
    "invalid_number": "A number could not be read.",
    "invalid_boolean": "A yes/no value could not be read.",
    "unknown_code": "A code is not in the feed's crosswalk or the canonical code set.",
    "out_of_range": "A value is outside what is possible.",
    "date_order": "An end date is before its start date.",
    "duplicate_in_file": "The same record appears more than once in the file.",
    "local_id_reused": "One local id is given to two different people in the file.",
    "duplicate_of_loaded": "The record was already loaded from an earlier submission.",
    "unknown_enrollment": "Attendance for a student with no enrollment in that school and year.",
    "outside_period": "A row dated in another school year than the file's (replace-period feeds).",
    "unknown_school": "A school the partner has not registered.",
    "unknown_program": "A program that is not registered.",
    "unknown_institution": "A college that is not registered.",
    "closed": "A record that starts after its school or program closed.",
}
