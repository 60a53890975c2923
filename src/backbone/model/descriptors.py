"""Canonical code sets: Ed-Fi descriptor values, plus a few of Backbone's own.

Partners send local codes ('UX', '2', 'Unexcused'); ``ref.descriptor_map`` maps each
partner's local code to one of these canonical values. Ed-Fi sends descriptors as URIs
(``uri://ed-fi.org/AttendanceEventCategoryDescriptor#Unexcused Absence``), which
:func:`parse_descriptor_uri` splits.
"""

from __future__ import annotations

from typing import NamedTuple

from backbone.errors import UserError

__all__ = [
    "BACKBONE_NAMESPACE",
    "DESCRIPTORS",
    "EDFI_NAMESPACE",
    "GRADE_LEVELS",
    "DescriptorUri",
    "descriptor_rows",
    "descriptor_uri",
    "descriptor_value_problem",
    "grade_level_name",
    "parse_descriptor_uri",
]

EDFI_NAMESPACE = "uri://ed-fi.org"
BACKBONE_NAMESPACE = "uri://backbone.community"

# Grade levels in order; ordinal is the grade number (Kindergarten = 0).
GRADE_LEVELS: tuple[tuple[str, int], ...] = (
    ("Preschool/Prekindergarten", -1),
    ("Kindergarten", 0),
    ("First grade", 1),
    ("Second grade", 2),
    ("Third grade", 3),
    ("Fourth grade", 4),
    ("Fifth grade", 5),
    ("Sixth grade", 6),
    ("Seventh grade", 7),
    ("Eighth grade", 8),
    ("Ninth grade", 9),
    ("Tenth grade", 10),
    ("Eleventh grade", 11),
    ("Twelfth grade", 12),
    ("Postsecondary", 13),
)

# descriptor name -> (namespace, code values). Values are Ed-Fi's (Data Standard 5)
# where Ed-Fi ships them; Backbone's namespace marks the ones Ed-Fi leaves local.
DESCRIPTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AttendanceEventCategoryDescriptor": (
        EDFI_NAMESPACE,
        (
            "In Attendance",
            "Excused Absence",
            "Unexcused Absence",
            "Tardy",
            "Early departure",
            "Partial",
        ),
    ),
    "BehaviorDescriptor": (
        EDFI_NAMESPACE,
        ("State Offense", "School Violation", "School Code of Conduct", "Other"),
    ),
    "DisciplineDescriptor": (
        EDFI_NAMESPACE,
        (
            "Removal from Classroom",
            "In School Suspension",
            "Out of School Suspension",
            "Expulsion",
            "Expulsion with Services",
            "Community Service",
            "No action for incident",
            "Other",
        ),
    ),
    "DisciplineIncidentParticipationCodeDescriptor": (
        EDFI_NAMESPACE,
        ("Perpetrator", "Reporter", "Victim", "Witness"),
    ),
    "CourseAttemptResultDescriptor": (
        EDFI_NAMESPACE,
        ("Pass", "Fail", "Incomplete", "Withdrawn"),
    ),
    "ExitWithdrawTypeDescriptor": (
        EDFI_NAMESPACE,
        (
            "Graduated",
            "Dropout",
            "Transferred",
            "Completed",
            "Expelled",
            "No show",
            "End of school year",
            "Died",
            "Other",
        ),
    ),
    "GradeLevelDescriptor": (EDFI_NAMESPACE, tuple(n for n, _ in GRADE_LEVELS)),
    "SexDescriptor": (EDFI_NAMESPACE, ("Female", "Male", "Not Selected")),
    "RaceDescriptor": (
        EDFI_NAMESPACE,
        (
            "American Indian - Alaska Native",
            "Asian",
            "Black - African American",
            "Native Hawaiian - Pacific Islander",
            "White",
            "Two or more races",
            "Choose Not to Respond",
        ),
    ),
    "TermDescriptor": (
        EDFI_NAMESPACE,
        (
            "Fall Semester",
            "Spring Semester",
            "Summer Semester",
            "Year Round",
            "First Quarter",
            "Second Quarter",
            "Third Quarter",
            "Fourth Quarter",
        ),
    ),
    "AcademicSubjectDescriptor": (
        EDFI_NAMESPACE,
        (
            "English Language Arts",
            "Reading",
            "Writing",
            "Mathematics",
            "Science",
            "Social Studies",
            "Fine and Performing Arts",
            "World Languages",
            "Physical, Health, and Safety Education",
            "Career and Technical Education",
            "Other",
        ),
    ),
    "PerformanceLevelDescriptor": (
        EDFI_NAMESPACE,
        ("Advanced", "Proficient", "Basic", "Below Basic"),
    ),
    "PostSecondaryEventCategoryDescriptor": (
        EDFI_NAMESPACE,
        (
            "College Application",
            "College Acceptance",
            "College Enrollment",
            "Remedial Enrollment - ELA",
            "Remedial Enrollment - Math",
            "College Degree Received",
            "FAFSA Application",
            "College Exit Date",
            "Certification Received",
        ),
    ),
    "ProgramTypeDescriptor": (
        EDFI_NAMESPACE,
        (
            "Counseling Services",
            "Student Retention/Dropout Prevention",
            "Extended Day/Child Care Services",
            "College Preparatory",
            "Community Service Program",
            "Athletics",
            "Cocurricular Programs",
            "Remedial Education",
            "Other",
        ),
    ),
    "StudentIdentificationSystemDescriptor": (
        EDFI_NAMESPACE,
        ("State", "District", "Local", "School", "Student Number", "Federal", "Other"),
    ),
    "DiplomaTypeDescriptor": (
        EDFI_NAMESPACE,
        ("Regular diploma", "Endorsed/advanced diploma", "Alternative credential"),
    ),
    "ReasonExitedDescriptor": (
        BACKBONE_NAMESPACE,
        ("Completed program", "Withdrew", "Moved", "Other"),
    ),
}


def descriptor_value_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be a canonical value of descriptor ``name`` (None: it
    can), in words that say what to use instead."""
    if name not in DESCRIPTORS:
        return f"no descriptor {name!r}; use one of {', '.join(sorted(DESCRIPTORS))}"
    allowed = DESCRIPTORS[name][1]
    if value not in allowed:
        return f"{value!r} is not a {name} value; use one of {', '.join(allowed)}"
    return None


def descriptor_rows() -> list[tuple[str, str, str, str | None, int]]:
    """Rows of ``ref.descriptor``: (name, code_value, namespace, description, ordinal)."""
    grade_ordinal = dict(GRADE_LEVELS)
    rows: list[tuple[str, str, str, str | None, int]] = []
    for name, (namespace, values) in DESCRIPTORS.items():
        for position, value in enumerate(values):
            ordinal = (
                grade_ordinal[value] if name == "GradeLevelDescriptor" else position
            )
            rows.append((name, value, namespace, None, ordinal))
    return rows


def grade_level_name(grade: int) -> str:
    """The Ed-Fi grade-level descriptor for a grade number (Kindergarten = 0)."""
    for name, ordinal in GRADE_LEVELS:
        if ordinal == grade:
            return name
    raise ValueError(f"no grade level {grade}")


class DescriptorUri(NamedTuple):
    namespace: str
    descriptor_name: str
    code_value: str


def descriptor_uri(name: str, code_value: str, namespace: str | None = None) -> str:
    """``uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy``."""
    ns = namespace or DESCRIPTORS[name][0]
    return f"{ns}/{name}#{code_value}"


def parse_descriptor_uri(uri: str) -> DescriptorUri:
    """Split an Ed-Fi descriptor URI into namespace, descriptor name and code value."""
    head, sep, code = uri.partition("#")
    namespace, slash, name = head.rpartition("/")
    if not sep or not slash or not code or not name.endswith("Descriptor"):
        raise UserError(
            f"{uri!r} is not an Ed-Fi descriptor URI; expected the form "
            "'uri://namespace/NameDescriptor#Code Value'."
        )
    return DescriptorUri(namespace, name, code)
