"""``ref``: partners, schools, programs, initiatives, institutions, descriptors,
the calendar, and partners' contacts."""

from __future__ import annotations

from backbone.model.schema.core import Table, _c

__all__ = ["CALENDAR_TABLES", "CONTACT_TABLES", "PARTNER_KINDS", "REF_TABLES"]

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
            _c("closed_on", "DATE", doc="last day open; added by migration 11"),
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
            _c("closed_on", "DATE", doc="last day it ran; added by migration 11"),
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

# Added by migration 3 (with gov.RECORD_TABLES): partners' contacts.
CONTACT_TABLES = (
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
)
