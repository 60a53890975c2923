"""The demo community: who is in it and how each partner exports its data.

Everything here is fixed; only the students are random. Eight districts each have
their own student information system "dialect" (file type, encoding, delimiter, date
format, column names and local codes); community organizations, a college-data agency
and two funders complete the partnership.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CBOS",
    "COLLEGE_AGENCY",
    "DISTRICTS",
    "FUNDERS",
    "INITIATIVE_TARGETS",
    "INSTITUTIONS",
    "PROGRAMS",
    "Cbo",
    "District",
    "Program",
]


@dataclass(frozen=True)
class District:
    partner_id: str
    name: str
    ed_org_id: int
    share: float
    """Share of the community's students living in the district."""
    schools: tuple[int, int, int]
    """Number of elementary (K-5), middle (6-8) and high (9-12) schools."""
    poverty: float
    """Share of students economically disadvantaged."""
    risk_shift: float
    """District-level shift of students' latent risk."""
    file_format: str
    """edfi-json | csv | xlsx | parquet | jsonl"""
    attendance: str
    """daily (absence and tardy events) | term (per-term totals)"""
    encoding: str = "utf-8"
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"
    sends_state_id: bool = True
    upper_case_names: bool = False
    ascii_names: bool = False
    decimal_comma: bool = False
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    """descriptor -> canonical code value -> the district's local code"""
    columns: dict[str, str] = field(default_factory=dict)
    """canonical column -> the district's column name (the same name in every file)"""
    id_prefix: str = ""
    id_digits: int = 6
    style: str = "snake"
    """How other column names are written: snake, pascal, upper, title, camel."""
    bools: tuple[str, str] = ("Y", "N")
    grade_style: str = "int"
    """int (0-12), two ('KG', '01'..'12') or k ('K', '1'..'12')"""


DISTRICTS: tuple[District, ...] = (
    District(
        "d01-northfield",
        "Northfield Public Schools",
        2550100,
        0.20,
        (6, 2, 2),
        0.38,
        0.0,
        "edfi-json",
        "daily",
        id_digits=6,
    ),
    District(
        "d02-riverside",
        "Riverside Unified School District",
        2550200,
        0.18,
        (5, 2, 2),
        0.62,
        0.35,
        "csv",
        "daily",
        style="snake",
        bools=("Y", "N"),
        grade_style="int",
        id_prefix="R",
        id_digits=7,
        codes={
            "AttendanceEventCategoryDescriptor": {
                "Unexcused Absence": "A",
                "Excused Absence": "AE",
                "Tardy": "T",
            },
            "SexDescriptor": {"Female": "F", "Male": "M"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "GRAD",
                "Dropout": "DROP",
                "Transferred": "TRAN",
                "End of school year": "EOY",
            },
        },
        columns={
            "local_id": "student_id",
            "state_id": "ssid",
            "first_name": "first_name",
            "middle_name": "middle_name",
            "last_name": "last_name",
            "birth_date": "dob",
            "school": "school_code",
            "date": "date",
        },
    ),
    District(
        "d03-lakeview",
        "Lakeview Community Schools",
        2550300,
        0.09,
        (3, 1, 1),
        0.30,
        -0.10,
        "csv",
        "daily",
        encoding="latin-1",
        delimiter=";",
        style="pascal",
        bools=("Yes", "No"),
        grade_style="k",
        date_format="%d.%m.%Y",
        decimal_comma=True,
        sends_state_id=False,
        id_prefix="LV",
        id_digits=5,
        codes={
            "AttendanceEventCategoryDescriptor": {
                "Unexcused Absence": "Unexcused",
                "Excused Absence": "Excused",
                "Tardy": "Late",
            },
            "SexDescriptor": {"Female": "W", "Male": "M"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "Graduate",
                "Dropout": "Withdrew",
                "Transferred": "Moved",
                "End of school year": "Year end",
            },
        },
        columns={
            "local_id": "PupilNo",
            "first_name": "Forename",
            "middle_name": "Middle",
            "last_name": "Surname",
            "birth_date": "BirthDate",
            "school": "SchoolNo",
            "date": "Date",
        },
    ),
    District(
        "d04-hillcrest",
        "Hillcrest School District",
        2550400,
        0.12,
        (4, 1, 1),
        0.45,
        0.15,
        "csv",
        "daily",
        delimiter="|",
        date_format="%m/%d/%Y",
        style="upper",
        bools=("1", "0"),
        grade_style="two",
        upper_case_names=True,
        ascii_names=True,
        id_digits=8,
        codes={
            "AttendanceEventCategoryDescriptor": {
                "Excused Absence": "1",
                "Unexcused Absence": "2",
                "Tardy": "3",
            },
            "SexDescriptor": {"Female": "2", "Male": "1"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "01",
                "Dropout": "03",
                "Transferred": "02",
                "End of school year": "99",
            },
        },
        columns={
            "local_id": "STU_ID",
            "state_id": "STATE_ID",
            "first_name": "FNAME",
            "middle_name": "MNAME",
            "last_name": "LNAME",
            "birth_date": "BDATE",
            "school": "BLDG",
            "date": "ATT_DATE",
        },
    ),
    District(
        "d05-oakdale",
        "Oakdale County Schools",
        2550500,
        0.06,
        (2, 1, 1),
        0.50,
        0.10,
        "xlsx",
        "term",
        sends_state_id=True,
        id_prefix="OC",
        id_digits=5,
        style="title",
        bools=("Yes", "No"),
        grade_style="k",
        codes={
            "SexDescriptor": {"Female": "Female", "Male": "Male"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "Graduated",
                "Dropout": "Dropped out",
                "Transferred": "Transferred out",
                "End of school year": "Promoted",
            },
        },
        columns={
            "local_id": "Student ID",
            "state_id": "State ID",
            "first_name": "First Name",
            "middle_name": "Middle Name",
            "last_name": "Last Name",
            "birth_date": "Date of Birth",
            "school": "School",
            "date": "Date",
        },
    ),
    District(
        "d06-pinecrest",
        "Pinecrest Independent School District",
        2550600,
        0.15,
        (4, 2, 1),
        0.25,
        -0.20,
        "parquet",
        "daily",
        id_prefix="P",
        id_digits=6,
        style="snake",
        bools=("true", "false"),
        grade_style="int",
        codes={
            "AttendanceEventCategoryDescriptor": {
                "Unexcused Absence": "UNX",
                "Excused Absence": "EXC",
                "Tardy": "TDY",
            },
            "SexDescriptor": {"Female": "F", "Male": "M"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "G",
                "Dropout": "D",
                "Transferred": "T",
                "End of school year": "E",
            },
        },
        columns={
            "local_id": "stu_num",
            "state_id": "state_stu_id",
            "first_name": "fname",
            "middle_name": "mname",
            "last_name": "lname",
            "birth_date": "birth_dt",
            "school": "sch_id",
            "date": "absence_dt",
        },
    ),
    District(
        "d07-maplevalley",
        "Maple Valley Schools",
        2550700,
        0.12,
        (4, 1, 1),
        0.35,
        0.05,
        "jsonl",
        "daily",
        date_format="%Y-%m-%dT00:00:00",
        sends_state_id=False,
        id_prefix="MV-",
        id_digits=6,
        style="camel",
        bools=("true", "false"),
        grade_style="int",
        codes={
            "AttendanceEventCategoryDescriptor": {
                "Unexcused Absence": "Absent - Unexcused",
                "Excused Absence": "Absent - Excused",
                "Tardy": "Tardy",
            },
            "SexDescriptor": {"Female": "female", "Male": "male"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "graduated",
                "Dropout": "dropped_out",
                "Transferred": "transferred",
                "End of school year": "promoted",
            },
        },
        columns={
            "local_id": "studentNumber",
            "first_name": "givenName",
            "middle_name": "middleName",
            "last_name": "familyName",
            "birth_date": "birthDate",
            "school": "schoolCode",
            "date": "eventDate",
        },
    ),
    District(
        "d08-cedarridge",
        "Cedar Ridge School District",
        2550800,
        0.08,
        (3, 1, 1),
        0.55,
        0.25,
        "csv",
        "term",
        encoding="utf-8-sig",
        delimiter="\t",
        date_format="%m/%d/%Y",
        id_prefix="CR",
        id_digits=6,
        style="title",
        bools=("Y", "N"),
        grade_style="two",
        codes={
            "SexDescriptor": {"Female": "F", "Male": "M"},
            "ExitWithdrawTypeDescriptor": {
                "Graduated": "W07",
                "Dropout": "W12",
                "Transferred": "W01",
                "End of school year": "W99",
            },
        },
        columns={
            "local_id": "Student Number",
            "state_id": "SASID",
            "first_name": "Student First",
            "middle_name": "Student Middle",
            "last_name": "Student Last",
            "birth_date": "Birthdate",
            "school": "Building",
            "date": "Date",
        },
    ),
)


@dataclass(frozen=True)
class Program:
    program_id: str
    partner_id: str
    name: str
    program_type: str
    grades: tuple[int, int]
    districts: tuple[str, ...]
    """District partner ids whose students the program serves."""
    take_up: float
    """Baseline share of eligible students enrolling in a year."""
    targets_risk: float
    """How strongly enrolment follows latent risk (selection the evaluation must beat)."""
    sessions: int
    """Sessions offered per school year."""
    hours_per_session: float
    effect_attendance_pp: float
    """Planted effect on attendance rate, percentage points, at full dosage."""
    effect_marks: float
    """Planted effect on course marks (0-100 scale) at full dosage."""


PROGRAMS: tuple[Program, ...] = (
    Program(
        "PRG-MENTOR",
        "c01-brightfutures",
        "Bright Futures Mentoring",
        "Counseling Services",
        (6, 12),
        ("d02-riverside", "d04-hillcrest", "d08-cedarridge", "d01-northfield"),
        0.045,
        0.9,
        32,
        1.5,
        2.0,
        2.0,
    ),
    Program(
        "PRG-AFTER-E",
        "c02-eastside",
        "Eastside After-School Club",
        "Extended Day/Child Care Services",
        (1, 8),
        ("d02-riverside", "d04-hillcrest", "d05-oakdale"),
        0.07,
        0.4,
        140,
        2.0,
        1.5,
        0.0,
    ),
    Program(
        "PRG-ARTS",
        "c02-eastside",
        "Eastside Arts Studio",
        "Cocurricular Programs",
        (4, 12),
        ("d02-riverside", "d03-lakeview", "d06-pinecrest"),
        0.04,
        -0.2,
        60,
        2.0,
        0.0,
        0.0,
    ),
    Program(
        "PRG-TUTOR",
        "c03-stepup",
        "Step Up Math Tutoring",
        "Remedial Education",
        (3, 10),
        ("d01-northfield", "d06-pinecrest", "d07-maplevalley", "d03-lakeview"),
        0.05,
        0.7,
        48,
        1.0,
        0.0,
        4.0,
    ),
    Program(
        "PRG-READ",
        "c03-stepup",
        "Step Up Reading Buddies",
        "Remedial Education",
        (1, 5),
        ("d07-maplevalley", "d08-cedarridge"),
        0.05,
        0.5,
        48,
        1.0,
        0.0,
        0.0,
    ),
    Program(
        "PRG-COLLEGE",
        "c04-collegebound",
        "College Bound Advising",
        "College Preparatory",
        (10, 12),
        tuple(d.partner_id for d in DISTRICTS),
        0.06,
        -0.3,
        20,
        1.0,
        0.0,
        0.0,
    ),
)


@dataclass(frozen=True)
class Cbo:
    partner_id: str
    name: str
    file_format: str
    date_format: str
    delimiter: str = ","


CBOS: tuple[Cbo, ...] = (
    Cbo("c01-brightfutures", "Bright Futures Mentoring Network", "xlsx", "%m/%d/%Y"),
    Cbo("c02-eastside", "Eastside Youth Center", "csv", "%m/%d/%Y"),
    Cbo("c03-stepup", "Step Up Tutoring", "csv", "%Y-%m-%d", delimiter=";"),
    Cbo("c04-collegebound", "College Bound Alliance", "jsonl", "%Y-%m-%d"),
)

COLLEGE_AGENCY = ("a01-regionalcollege", "Regional Higher Education Data Agency")

FUNDERS: tuple[tuple[str, str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    (
        "f01-unitedfund",
        "United Community Fund",
        (
            ("INIT-ATTEND", "Every Day Counts", ("PRG-MENTOR", "PRG-AFTER-E")),
            ("INIT-ACADEMIC", "Academic Boost", ("PRG-TUTOR", "PRG-READ")),
        ),
    ),
    (
        "f02-cityfoundation",
        "City Foundation for Youth",
        (
            ("INIT-ENRICH", "Enrichment for All", ("PRG-ARTS", "PRG-AFTER-E")),
            ("INIT-COLLEGE", "College and Career Ready", ("PRG-COLLEGE",)),
        ),
    ),
)
# what each initiative's funder tracks, and the least sessions that count as served
INITIATIVE_TARGETS: dict[str, tuple[tuple[str, ...], int]] = {
    "INIT-ATTEND": (("attendance_rate", "suspended"), 5),
    "INIT-ACADEMIC": (("course_mark", "math_score", "ela_score"), 5),
    "INIT-ENRICH": (("attendance_rate", "course_mark"), 5),
    "INIT-COLLEGE": (("college_enrolled", "graduated"), 3),
}

# institution id, name, level, control; the last column is its share of enrollees
INSTITUTIONS: tuple[tuple[str, str, str, str, float], ...] = (
    ("IPEDS-100001", "State University", "Four-year", "Public", 0.26),
    ("IPEDS-100002", "State University at Lakeshore", "Four-year", "Public", 0.14),
    ("IPEDS-100003", "Riverbend College", "Four-year", "Private", 0.07),
    ("IPEDS-100004", "St. Agnes University", "Four-year", "Private", 0.05),
    ("IPEDS-200001", "Metro Community College", "Two-year", "Public", 0.28),
    ("IPEDS-200002", "Valley Technical College", "Two-year", "Public", 0.14),
    ("IPEDS-200003", "Northland Community College", "Two-year", "Public", 0.06),
)


SCHOOL_NAMES = (
    "Lincoln",
    "Washington",
    "Roosevelt",
    "Jefferson",
    "Franklin",
    "Kennedy",
    "Madison",
    "Adams",
    "Hamilton",
    "Garfield",
    "Whitman",
    "Carver",
    "Douglass",
)
LEVELS = (("ES", "Elementary", 0, 5), ("MS", "Middle", 6, 8), ("HS", "High", 9, 12))


def school_key(district_index: int, level: int, number: int) -> int:
    """The simulation's school number (district, level, number within level)."""
    return district_index * 100 + level * 10 + number


def schools() -> list[dict[str, object]]:
    """Every district school: ids, the district's own code, name, grades."""
    from backbone.model.descriptors import grade_level_name

    out: list[dict[str, object]] = []
    for di, d in enumerate(DISTRICTS):
        town = d.name.split()[0]
        for level, (code, label, lo, hi) in enumerate(LEVELS):
            for k in range(d.schools[level]):
                if level == 0:
                    name = f"{SCHOOL_NAMES[(di * 3 + k) % len(SCHOOL_NAMES)]} Elementary School"
                else:
                    side = (
                        ("", " North", " South", " East")[k]
                        if d.schools[level] > 1
                        else ""
                    )
                    name = f"{town}{side} {label} School"
                local = (
                    str(d.ed_org_id * 100 + level * 10 + k + 1)
                    if d.file_format == "edfi-json"
                    else f"{code}{k + 1:02d}"
                )
                out.append(
                    {
                        "key": school_key(di, level, k),
                        "school_id": f"{d.partner_id}/{local}",
                        "partner_id": d.partner_id,
                        "local_school_code": local,
                        "name": name,
                        "school_level": label,
                        "lowest_grade_level": grade_level_name(lo),
                        "highest_grade_level": grade_level_name(hi),
                        "ed_org_id": d.ed_org_id * 100 + level * 10 + k + 1,
                    }
                )
    return out
