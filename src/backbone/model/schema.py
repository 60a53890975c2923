"""The canonical model, declared as data.

Tables live in four DuckDB schemas so that identifying data stays apart from analysis:

* ``ops``       – the warehouse's own bookkeeping (meta, migrations, submissions);
* ``ref``       – partners, schools, programs, initiatives, institutions, descriptors;
* ``identity``  – what partners sent to identify a person, and the linked persons;
* ``analytic``  – the canonical, longitudinal facts (Ed-Fi names and natural keys).

Analytic rows name their subject by ``(provider_partner_id, student_local_id)``, the
partner's own id; ``identity.record_person`` maps that pair to a linked person, so
re-linking never rewrites facts. Every analytic row carries its provider and the
submission it came from (lineage). DDL is produced by pure functions below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ID_SEQUENCES",
    "SCHEMAS",
    "Column",
    "IdSequence",
    "Table",
    "create_sequence_sql",
    "create_table_sql",
]

SCHEMAS = ("ops", "ref", "identity", "analytic")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    descriptor: str | None = None
    """Ed-Fi descriptor whose code values this column holds (canonical, not local)."""
    doc: str = ""
    default: str | None = None
    """SQL default expression, where a migration gave the column one."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    doc: str = ""
    edfi: str | None = None
    """The Ed-Fi entity this table mirrors, where there is one."""
    person_level: bool = field(default=False)
    """Rows describe one person; reads go through the policy layer."""
    derived: bool = field(default=False)
    """Computed by the warehouse from partners' facts, never submitted."""

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


def create_table_sql(table: Table, *, enforce_key: bool = True) -> str:
    """``CREATE TABLE`` for one table (DuckDB dialect; sqlglot translates it).

    ``enforce_key=False`` leaves the natural key to validation: bulk loads into a
    table with a large composite primary-key index are many times slower.
    """
    lines = []
    for column in table.columns:
        null = "" if column.nullable else " NOT NULL"
        default = "" if column.default is None else f" DEFAULT {column.default}"
        lines.append(f"    {column.name} {column.type}{null}{default}")
    if table.primary_key and enforce_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE {table.qualified_name} (\n{body}\n)"


def _c(
    name: str,
    type_: str,
    *,
    required: bool = False,
    descriptor: str | None = None,
    doc: str = "",
    default: str | None = None,
) -> Column:
    return Column(
        name,
        type_,
        nullable=not required,
        descriptor=descriptor,
        doc=doc,
        default=default,
    )


def _lineage() -> tuple[Column, ...]:
    return (
        _c("provider_partner_id", "VARCHAR", required=True, doc="who sent the row"),
        _c("submission_id", "BIGINT", required=True, doc="the submission it came from"),
    )


def _student() -> Column:
    return _c(
        "student_local_id",
        "VARCHAR",
        required=True,
        doc="the provider's own id for the person; see identity.record_person",
    )


def analytic_table(
    name: str,
    columns: Iterable[Column],
    primary_key: Iterable[str],
    *,
    edfi: str | None = None,
    doc: str = "",
    person_level: bool = True,
    derived: bool = False,
) -> Table:
    """An analytic table: lineage columns first, then the facts."""
    lead = (*_lineage()[:1], _student()) if person_level else _lineage()[:1]
    return Table(
        "analytic",
        name,
        (*lead, *columns, _lineage()[1]),
        ("provider_partner_id", *primary_key),
        doc=doc,
        edfi=edfi,
        person_level=person_level,
        derived=derived,
    )


# --- ops ------------------------------------------------------------------------

OPS_TABLES = (
    Table(
        "ops",
        "meta",
        (_c("key", "VARCHAR", required=True), _c("value", "VARCHAR")),
        ("key",),
        doc="Warehouse facts: schema_version, created_at, created_by.",
    ),
    Table(
        "ops",
        "schema_migration",
        (
            _c("version", "INTEGER", required=True),
            _c("description", "VARCHAR", required=True),
            _c("applied_at", "TIMESTAMP", required=True),
            _c("backbone_version", "VARCHAR", required=True),
        ),
        ("version",),
        doc="Every migration applied to this warehouse, in order.",
    ),
    Table(
        "ops",
        "submission",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("feed", "VARCHAR", required=True),
            _c("file_name", "VARCHAR", required=True),
            _c("sha256", "VARCHAR", required=True, doc="checksum of the raw file"),
            _c("size_bytes", "BIGINT", required=True),
            _c("raw_path", "VARCHAR", required=True, doc="path under raw/"),
            _c("received_at", "TIMESTAMP", required=True),
            _c("status", "VARCHAR", required=True),
            _c("rows_read", "BIGINT"),
            _c("rows_loaded", "BIGINT"),
            _c("rows_quarantined", "BIGINT"),
            _c("note", "VARCHAR"),
        ),
        ("submission_id",),
        doc="One row per file a partner submitted; counts reconcile.",
    ),
)

# --- ref ------------------------------------------------------------------------

PARTNER_KINDS = (
    "school_district",
    "community_organization",
    "higher_education_agency",
    "government_agency",
    "funder",
    "research",
    "backbone",
)

REF_TABLES = (
    Table(
        "ref",
        "partner",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("name", "VARCHAR", required=True),
            _c("kind", "VARCHAR", required=True, doc=" / ".join(PARTNER_KINDS)),
            _c("ed_org_id", "BIGINT", doc="Ed-Fi EducationOrganizationId, if any"),
            _c("parent_partner_id", "VARCHAR"),
            _c("created_at", "TIMESTAMP", required=True),
        ),
        ("partner_id",),
        doc="Organizations of the partnership.",
    ),
    Table(
        "ref",
        "school",
        (
            _c("school_id", "VARCHAR", required=True, doc="warehouse-wide school id"),
            _c("partner_id", "VARCHAR", required=True, doc="owning district or CBO"),
            _c("local_school_code", "VARCHAR", required=True),
            _c("name", "VARCHAR", required=True),
            _c("school_level", "VARCHAR", doc="Elementary / Middle / High / Site"),
            _c("lowest_grade_level", "VARCHAR", descriptor="GradeLevelDescriptor"),
            _c("highest_grade_level", "VARCHAR", descriptor="GradeLevelDescriptor"),
            _c("ed_org_id", "BIGINT"),
        ),
        ("school_id",),
        doc="Schools and sites owned by partners.",
        edfi="School",
    ),
    Table(
        "ref",
        "program",
        (
            _c("program_id", "VARCHAR", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("program_name", "VARCHAR", required=True),
            _c("program_type", "VARCHAR", descriptor="ProgramTypeDescriptor"),
        ),
        ("program_id",),
        doc="Programs run by community organizations or districts.",
        edfi="Program",
    ),
    Table(
        "ref",
        "initiative",
        (
            _c("initiative_id", "VARCHAR", required=True),
            _c("funder_partner_id", "VARCHAR", required=True),
            _c("name", "VARCHAR", required=True),
            _c("begin_date", "DATE"),
            _c("end_date", "DATE"),
            _c("description", "VARCHAR"),
            _c("target_outcomes", "VARCHAR[]", doc="outcome codes the funder tracks"),
            _c("min_sessions", "INTEGER", doc="least sessions to count as served"),
            _c("min_hours", "DOUBLE", doc="least hours to count as served"),
            _c("definition", "VARCHAR", doc="the initiative's YAML as last set"),
        ),
        ("initiative_id",),
        doc="A funder's initiative; groups programs.",
    ),
    Table(
        "ref",
        "initiative_program",
        (
            _c("initiative_id", "VARCHAR", required=True),
            _c("program_id", "VARCHAR", required=True),
        ),
        ("initiative_id", "program_id"),
    ),
    Table(
        "ref",
        "postsecondary_institution",
        (
            _c("institution_id", "VARCHAR", required=True),
            _c("name", "VARCHAR", required=True),
            _c("level", "VARCHAR", doc="Two-year / Four-year"),
            _c("control", "VARCHAR", doc="Public / Private"),
            _c("state", "VARCHAR"),
        ),
        ("institution_id",),
        edfi="PostSecondaryInstitution",
    ),
    Table(
        "ref",
        "descriptor",
        (
            _c("descriptor_name", "VARCHAR", required=True),
            _c("code_value", "VARCHAR", required=True),
            _c("namespace", "VARCHAR", required=True),
            _c("short_description", "VARCHAR"),
            _c("ordinal", "SMALLINT", doc="sort order; grade levels: K = 0"),
        ),
        ("descriptor_name", "code_value"),
        doc="Canonical code values (Ed-Fi descriptors and Backbone's own).",
        edfi="Descriptor",
    ),
    Table(
        "ref",
        "descriptor_map",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("descriptor_name", "VARCHAR", required=True),
            _c("local_code_value", "VARCHAR", required=True),
            _c("code_value", "VARCHAR", required=True),
        ),
        ("partner_id", "descriptor_name", "local_code_value"),
        doc="A partner's local code -> canonical code (Ed-Fi AMT DescriptorMap).",
    ),
)

# --- identity -------------------------------------------------------------------

IDENTITY_TABLES = (
    Table(
        "identity",
        "partner_record",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c(
                "identification_system",
                "VARCHAR",
                descriptor="StudentIdentificationSystemDescriptor",
            ),
            _c("first_name", "VARCHAR"),
            _c("middle_name", "VARCHAR"),
            _c("last_surname", "VARCHAR"),
            _c("generation_code_suffix", "VARCHAR"),
            _c("birth_date", "DATE"),
            _c("birth_sex", "VARCHAR", descriptor="SexDescriptor"),
            _c("address", "VARCHAR"),
            _c("postal_code", "VARCHAR"),
            _c("state_student_id", "VARCHAR"),
            _c("school_id", "VARCHAR", doc="school last seen with, if any"),
            _c("submission_id", "BIGINT", required=True),
            _c(
                "school_name",
                "VARCHAR",
                doc="the school the person attends (or attended), as the partner names it",
            ),
        ),
        ("partner_id", "local_id"),
        doc="The identifying fields a partner sent for its local id (PII).",
        person_level=True,
    ),
    Table(
        "identity",
        "person",
        (
            _c("person_id", "BIGINT", required=True),
            _c("created_at", "TIMESTAMP", required=True),
            _c("retired_at", "TIMESTAMP", doc="when a merge or a purge retired the id"),
            _c("merged_into", "BIGINT", doc="the person a retired id was merged into"),
        ),
        ("person_id",),
        doc="A linked person: every record of one student, across partners.",
    ),
    Table(
        "identity",
        "record_person",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c("person_id", "BIGINT", required=True),
            _c(
                "method", "VARCHAR", required=True, doc="deterministic / model / review"
            ),
            _c("linked_at", "TIMESTAMP", required=True),
        ),
        ("partner_id", "local_id"),
        doc="Which person each partner record belongs to.",
        person_level=True,
    ),
)

# --- analytic -------------------------------------------------------------------

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

# Added by migration 2.
CALENDAR_TABLES = (
    Table(
        "ref",
        "school_year",
        (
            _c("school_year", "SMALLINT", required=True, doc="ending year: 2026"),
            _c("description", "VARCHAR", required=True, doc="2025-26"),
            _c("begin_date", "DATE", required=True),
            _c("end_date", "DATE", required=True),
        ),
        ("school_year",),
        edfi="SchoolYearType",
    ),
    Table(
        "ref",
        "calendar_date",
        (
            _c("school_id", "VARCHAR", required=True),
            _c("date", "DATE", required=True),
            _c("school_year", "SMALLINT", required=True),
            _c("is_instructional_day", "BOOLEAN", required=True),
        ),
        ("school_id", "date"),
        edfi="CalendarDate",
        doc="Instructional days per school, for attendance rates from events.",
    ),
)

ALL_TABLES: tuple[Table, ...] = (
    *OPS_TABLES,
    *REF_TABLES,
    *IDENTITY_TABLES,
    *ANALYTIC_TABLES,
    *CALENDAR_TABLES,
)


def table(qualified_name: str) -> Table:
    """Look a table up by ``schema.name``."""
    for t in ALL_TABLES:
        if t.qualified_name == qualified_name:
            return t
    raise KeyError(qualified_name)


# Added by migration 3: partners' contacts and the partnership's governance records.
GOVERNANCE_TABLES = (
    Table(
        "ref",
        "partner_contact",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("name", "VARCHAR", required=True),
            _c("role", "VARCHAR"),
            _c("email", "VARCHAR", required=True),
        ),
        ("partner_id", "email"),
        doc="People to talk to at each partner.",
    ),
    Table(
        "gov",
        "agreement_version",
        (
            _c("agreement_id", "VARCHAR", required=True),
            _c("version", "INTEGER", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c(
                "effective_from", "DATE", required=True, doc="when this version applies"
            ),
            _c("summary", "VARCHAR", required=True),
            _c(
                "change_class",
                "VARCHAR",
                required=True,
                doc="initial / widening / narrowing / neutral",
            ),
            _c(
                "status", "VARCHAR", required=True, doc="pending / approved / withdrawn"
            ),
            _c(
                "in_force_from",
                "DATE",
                doc="set once approved: effective date or last approval",
            ),
            _c("recorded_at", "TIMESTAMP", required=True),
            _c("sha256", "VARCHAR", required=True),
            _c("document", "VARCHAR", required=True, doc="the version's YAML text"),
        ),
        ("agreement_id", "version"),
        doc="Every version of every agreement; none is ever deleted.",
    ),
    Table(
        "gov",
        "agreement_approval",
        (
            _c("agreement_id", "VARCHAR", required=True),
            _c("version", "INTEGER", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("approved_by", "VARCHAR", required=True),
            _c("approved_on", "DATE", required=True),
            _c("recorded_at", "TIMESTAMP", required=True),
        ),
        ("agreement_id", "version", "partner_id"),
    ),
    Table(
        "gov",
        "commitment",
        (
            _c("commitment_id", "INTEGER", required=True),
            _c("title", "VARCHAR", required=True),
            _c("owner_partner_id", "VARCHAR", required=True),
            _c("owner_person", "VARCHAR"),
            _c("counterpart_partner_id", "VARCHAR"),
            _c("due_date", "DATE", required=True),
            _c(
                "status",
                "VARCHAR",
                required=True,
                doc="open / in_progress / done / dropped",
            ),
            _c("made_on", "DATE", required=True),
            _c("context", "VARCHAR", doc="where it was promised, e.g. a meeting"),
        ),
        ("commitment_id",),
        doc="Promises partners make to each other.",
    ),
    Table(
        "gov",
        "commitment_update",
        (
            _c("commitment_id", "INTEGER", required=True),
            _c("seq", "INTEGER", required=True),
            _c("updated_on", "DATE", required=True),
            _c("status", "VARCHAR", required=True),
            _c("due_date", "DATE", required=True),
            _c("note", "VARCHAR"),
            _c("by_person", "VARCHAR"),
        ),
        ("commitment_id", "seq"),
        doc="Dated history of every commitment.",
    ),
    Table(
        "gov",
        "feed",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("feed_id", "VARCHAR", required=True),
            _c("entities", "VARCHAR[]", required=True),
            _c("cadence", "VARCHAR", required=True, doc="monthly / term / yearly"),
            _c("agreement_id", "VARCHAR", required=True),
            _c("description", "VARCHAR"),
            _c("since", "DATE", required=True, doc="first period expected"),
            _c(
                "mode",
                "VARCHAR",
                default="'replace-period'",
                doc="replace-period / append (migration 4)",
            ),
        ),
        ("partner_id", "feed_id"),
        doc="The datasets each partner has agreed to send, and how often.",
    ),
    Table(
        "gov",
        "data_request",
        (
            _c("request_id", "VARCHAR", required=True),
            _c("requester_partner_id", "VARCHAR", required=True),
            _c("title", "VARCHAR", required=True),
            _c("filed_on", "DATE", required=True),
            _c(
                "status",
                "VARCHAR",
                required=True,
                doc="in_review / approved / declined",
            ),
            _c("document", "VARCHAR", required=True, doc="the request's YAML"),
            _c("draft_agreement_id", "VARCHAR"),
        ),
        ("request_id",),
        doc="Data-use requests: how a partnership grows.",
    ),
    Table(
        "gov",
        "request_review",
        (
            _c("request_id", "VARCHAR", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c("reviewer", "VARCHAR", required=True),
            _c("decision", "VARCHAR", required=True),
            _c("fit", "SMALLINT", required=True, doc="rubric 1-4: fit with the goals"),
            _c("protections", "SMALLINT", required=True, doc="rubric 1-4"),
            _c("minimum_necessary", "SMALLINT", required=True, doc="rubric 1-4"),
            _c("conditions", "VARCHAR"),
            _c("comments", "VARCHAR"),
            _c("reviewed_on", "DATE", required=True),
        ),
        ("request_id", "provider_partner_id"),
    ),
)

ALL_TABLES = (*ALL_TABLES, *GOVERNANCE_TABLES)


# Added by migration 4: what ingestion records.
INGEST_TABLES = (
    Table(
        "ops",
        "submission_target",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c("rows_in", "BIGINT", required=True),
            _c("rows_loaded", "BIGINT", required=True),
            _c("rows_quarantined", "BIGINT", required=True),
            _c(
                "rows_replaced",
                "BIGINT",
                required=True,
                doc="earlier rows this load replaced",
            ),
            _c(
                "periods",
                "SMALLINT[]",
                doc="school years replaced (feed mode replace-period)",
            ),
        ),
        ("submission_id", "entity"),
        doc="Per canonical entity a submission fed: rows in = loaded + quarantined.",
    ),
    Table(
        "ops",
        "quarantine",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c(
                "source_row",
                "BIGINT",
                required=True,
                doc="row number as the partner sees it",
            ),
            _c("rules", "VARCHAR[]", required=True),
            _c("messages", "VARCHAR[]", required=True),
            _c(
                "record",
                "JSON",
                required=True,
                doc="the row as sent, declared columns only",
            ),
        ),
        ("submission_id", "entity", "source_row"),
        doc="Rows refused, with every reason; exported, fixed and resubmitted.",
    ),
    Table(
        "ops",
        "replacement",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c("replaced_submission_id", "BIGINT", required=True),
            _c("rows", "BIGINT", required=True),
        ),
        ("submission_id", "entity", "replaced_submission_id"),
        doc="Which earlier submissions' rows a replace-period load replaced (their raw files keep them).",
    ),
    Table(
        "ops",
        "raw_decision",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("undeclared_columns", "VARCHAR[]", required=True),
            _c(
                "decision",
                "VARCHAR",
                doc="keep / purge; NULL while awaiting the steward",
            ),
            _c("reason", "VARCHAR"),
            _c("decided_by", "VARCHAR"),
            _c("decided_at", "TIMESTAMP"),
        ),
        ("submission_id",),
        doc="Raw files holding columns no agreement allows: kept or purged, and why.",
    ),
)

ALL_TABLES = (*ALL_TABLES, *INGEST_TABLES)


def _pair() -> tuple[Column, ...]:
    """A pair of partner records, ordered so (partner_id_l, local_id_l) sorts first."""
    return (
        _c("partner_id_l", "VARCHAR", required=True),
        _c("local_id_l", "VARCHAR", required=True),
        _c("partner_id_r", "VARCHAR", required=True),
        _c("local_id_r", "VARCHAR", required=True),
    )


# Added by migration 5: identity resolution.
LINKAGE_TABLES = (
    Table(
        "identity",
        "link_run",
        (
            _c("run_id", "BIGINT", required=True),
            _c("started_at", "TIMESTAMP", required=True),
            _c("finished_at", "TIMESTAMP", required=True),
            _c("records", "BIGINT", required=True),
            _c("pairs_scored", "BIGINT", required=True),
            _c("auto_links", "BIGINT", required=True),
            _c("deterministic_links", "BIGINT", required=True),
            _c("encoded_links", "BIGINT", required=True),
            _c("review_pairs", "BIGINT", required=True),
            _c("refused_by_constraints", "BIGINT", required=True),
            _c("persons", "BIGINT", required=True),
            _c("new_persons", "BIGINT", required=True),
            _c("merges", "BIGINT", required=True),
            _c("splits", "BIGINT", required=True),
            _c("auto_link_probability", "DOUBLE", required=True),
            _c("review_probability", "DOUBLE", required=True),
            _c("model_json", "VARCHAR", required=True, doc="the trained Splink model"),
        ),
        ("run_id",),
        doc="Each run of `backbone link`, with the model it trained.",
    ),
    Table(
        "identity",
        "link_edge",
        (
            *_pair(),
            _c("run_id", "BIGINT", required=True),
            _c(
                "method",
                "VARCHAR",
                required=True,
                doc="deterministic / model / encoded / review",
            ),
            _c("match_weight", "DOUBLE"),
            _c("match_probability", "DOUBLE", required=True),
            _c("decision", "VARCHAR", required=True, doc="link / review / refused"),
            _c("reason", "VARCHAR", doc="why a pair was refused"),
        ),
        ("partner_id_l", "local_id_l", "partner_id_r", "local_id_r"),
        doc="The evidence of the latest run: every pair linked, sent to review or refused.",
        person_level=True,
    ),
    Table(
        "identity",
        "review_decision",
        (
            *_pair(),
            _c("decision", "VARCHAR", required=True, doc="same / different"),
            _c("decided_by", "VARCHAR", required=True),
            _c("decided_at", "TIMESTAMP", required=True),
            _c("note", "VARCHAR"),
        ),
        ("partner_id_l", "local_id_l", "partner_id_r", "local_id_r"),
        doc="Clerical review: these override the model on every later run.",
        person_level=True,
    ),
    Table(
        "identity",
        "person_event",
        (
            _c("run_id", "BIGINT", required=True),
            _c("event", "VARCHAR", required=True, doc="merge / split / retire"),
            _c("person_id", "BIGINT", required=True),
            _c("other_person_id", "BIGINT"),
            _c("records", "BIGINT", required=True, doc="records that moved"),
            _c("evidence", "VARCHAR", required=True, doc="JSON: the pairs behind it"),
            _c("happened_at", "TIMESTAMP", required=True),
        ),
        (),
        doc="How persons changed between runs: merged, split or retired, with evidence.",
    ),
    Table(
        "identity",
        "encoding",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c("clk", "VARCHAR", required=True, doc="1024-bit Bloom filter, base64"),
            _c("linkage_project", "VARCHAR", required=True),
            _c("received_at", "TIMESTAMP", required=True),
        ),
        ("partner_id", "local_id"),
        doc="Privacy-preserving encodings a partner made with a secret we never hold (PII).",
        person_level=True,
    ),
)

ALL_TABLES = (*ALL_TABLES, *LINKAGE_TABLES)

# Added by migration 6: who may read, what they read, what was released and purged.
POLICY_TABLES = (
    Table(
        "gov",
        "principal",
        (
            _c("user_id", "VARCHAR", required=True),
            _c("display_name", "VARCHAR"),
            _c("partner_id", "VARCHAR", required=True),
            _c("role", "VARCHAR", required=True),
            _c(
                "password_hash", "VARCHAR", doc="argon2id; null until a password is set"
            ),
            _c("created_at", "TIMESTAMP", required=True),
            _c("created_by", "VARCHAR", required=True),
            _c("expires_on", "DATE", doc="no access after this day"),
            _c("training_until", "DATE", doc="confidentiality training valid until"),
            _c("disabled_at", "TIMESTAMP"),
            _c("disabled_reason", "VARCHAR"),
        ),
        ("user_id",),
        doc="Users: each belongs to one partner and has one role.",
    ),
    Table(
        "gov",
        "api_token",
        (
            _c(
                "token_id", "VARCHAR", required=True, doc="the public part of the token"
            ),
            _c("user_id", "VARCHAR", required=True),
            _c(
                "secret_hash",
                "VARCHAR",
                required=True,
                doc="SHA-256 of the secret part",
            ),
            _c("label", "VARCHAR"),
            _c("created_at", "TIMESTAMP", required=True),
            _c("expires_at", "TIMESTAMP"),
            _c("revoked_at", "TIMESTAMP"),
        ),
        ("token_id",),
        doc="API tokens; only a hash of the secret is kept.",
    ),
    Table(
        "gov",
        "audit_log",
        (
            _c("seq", "BIGINT", required=True),
            _c("entry", "VARCHAR", required=True, doc="canonical JSON of the event"),
            _c("prev_hash", "VARCHAR", required=True),
            _c("row_hash", "VARCHAR", required=True, doc="SHA-256(prev_hash || entry)"),
        ),
        (),
        doc="Append-only, hash-chained record of every read, export, upload, login, "
        "decision and purge.",
    ),
    Table(
        "gov",
        "release",
        (
            _c("release_id", "BIGINT", required=True),
            _c("released_at", "TIMESTAMP", required=True),
            _c("user_id", "VARCHAR", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("purpose", "VARCHAR", required=True),
            _c("definition", "VARCHAR", required=True, doc="JSON: the table asked for"),
            _c("agreements", "VARCHAR", required=True, doc="id@version relied on"),
            _c("providers", "VARCHAR", required=True, doc="JSON: whose data is in it"),
            _c("mode", "VARCHAR", required=True, doc="suppression / dp"),
            _c("cells", "INTEGER", required=True),
            _c("suppressed", "INTEGER", required=True),
            _c("epsilon", "DOUBLE"),
        ),
        ("release_id",),
        doc="The release ledger: every aggregate table that left the warehouse.",
    ),
    Table(
        "gov",
        "release_cell",
        (
            _c("release_id", "BIGINT", required=True),
            _c("cell", "INTEGER", required=True),
            _c(
                "label",
                "VARCHAR",
                required=True,
                doc="JSON: the cell's dimension values",
            ),
            _c("value", "BIGINT", required=True, doc="the true count"),
            _c("published", "BOOLEAN", required=True),
            _c("threshold", "INTEGER", required=True),
        ),
        ("release_id", "cell"),
        doc="Every cell of every release, published or suppressed.",
    ),
    Table(
        "gov",
        "release_member",
        (
            _c("release_id", "BIGINT", required=True),
            _c("cell", "INTEGER", required=True),
            _c(
                "unit",
                "VARCHAR",
                required=True,
                doc="keyed hash of the person counted, as linked at release time",
            ),
            _c("record", "VARCHAR", required=True, doc="keyed hash of the record"),
        ),
        (),
        doc="Who each released cell counted (keyed hashes), so that later releases "
        "are audited together with earlier ones.",
    ),
    Table(
        "gov",
        "dp_spend",
        (
            _c("agreement", "VARCHAR", required=True, doc="agreement id"),
            _c("release_id", "BIGINT", required=True),
            _c("epsilon", "DOUBLE", required=True),
            _c("delta", "DOUBLE", required=True),
            _c("spent_at", "TIMESTAMP", required=True),
        ),
        (),
        doc="Differential-privacy budget spent under each agreement.",
    ),
    Table(
        "gov",
        "purge",
        (
            _c("purge_id", "BIGINT", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c("agreement", "VARCHAR", required=True, doc="id@version that ended"),
            _c("due_on", "DATE", required=True),
            _c("purged_at", "TIMESTAMP", required=True),
            _c("rows_destroyed", "BIGINT", required=True),
            _c(
                "certificate",
                "VARCHAR",
                required=True,
                doc="JSON destruction certificate",
            ),
        ),
        ("purge_id",),
        doc="Destruction of a provider's data when its agreements ended.",
    ),
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

ALL_TABLES = (*ALL_TABLES, *POLICY_TABLES)

# Added by migration 7: early-warning indicators and the risk model.
MEASURE_TABLES = (
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
    Table(
        "gov",
        "indicator_definition",
        (
            _c("version", "INTEGER", required=True),
            _c("document", "VARCHAR", required=True, doc="the YAML as recorded"),
            _c("checksum", "VARCHAR", required=True),
            _c("recorded_at", "TIMESTAMP", required=True),
            _c("recorded_by", "VARCHAR", required=True),
            _c("note", "VARCHAR"),
        ),
        ("version",),
        doc="Every version of the early-warning indicator definitions.",
    ),
    Table(
        "gov",
        "risk_model",
        (
            _c("model_id", "INTEGER", required=True),
            _c("trained_at", "TIMESTAMP", required=True),
            _c("trained_by", "VARCHAR", required=True),
            _c("definition_version", "INTEGER", required=True),
            _c("best", "VARCHAR", required=True),
            _c("file", "VARCHAR", required=True, doc="under the warehouse's models/"),
            _c("checksum", "VARCHAR", required=True),
            _c("report", "VARCHAR", required=True, doc="JSON validation report"),
        ),
        ("model_id",),
        doc="Trained risk models and their validation on later cohorts.",
    ),
)

ALL_TABLES = (*ALL_TABLES, *MEASURE_TABLES)

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


@dataclass(frozen=True)
class IdSequence:
    """The sequence that numbers one table's id column. A sequence never hands out a
    number twice, even after the row is deleted or its transaction rolls back, and
    two writers can never draw the same one (``max() + 1`` could do all three)."""

    name: str
    """qualified, ``schema.name``: what :func:`backbone.engines.duckdb.next_id` takes"""
    table: str
    column: str


ID_SEQUENCES = (
    IdSequence("ops.submission_id_seq", "ops.submission", "submission_id"),
    IdSequence("identity.link_run_id_seq", "identity.link_run", "run_id"),
    IdSequence("identity.person_id_seq", "identity.person", "person_id"),
    IdSequence("gov.commitment_id_seq", "gov.commitment", "commitment_id"),
    IdSequence("gov.release_id_seq", "gov.release", "release_id"),
    IdSequence("gov.purge_id_seq", "gov.purge", "purge_id"),
    IdSequence("gov.risk_model_id_seq", "gov.risk_model", "model_id"),
)


def create_sequence_sql(sequence: IdSequence, start: int = 1) -> str:
    """``CREATE SEQUENCE`` for one id sequence, starting at ``start``."""
    return f"CREATE SEQUENCE {sequence.name} START WITH {int(start)}"
