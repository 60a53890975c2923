"""Starter agreements by legal basis: a document with every term its basis makes
mandatory (see :mod:`lint`), for a partnership to edit rather than write from
nothing. ``backbone init --template BASIS`` writes one beside a directory example.

A school district's agreement (the FERPA bases, school official, state law) shares
the district's student data; a community organization's (contract, consent) its
roster and programs. Every field of each entity is listed: delete what the partner
does not send or does not agree to share.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from backbone.model.schema import ALL_TABLES
from backbone.partners.agreements.document import AgreementDocument, LegalBasis

__all__ = ["DIRECTORY_EXAMPLE", "agreement_template"]

_DISTRICT = (
    "partner_record",
    "demographics",
    "enrollment",
    "attendance_event",
    "attendance_period",
    "discipline_incident",
    "discipline_action",
    "course_transcript",
    "student_academic_record",
    "student_assessment",
    "graduation",
    "student_indicator",
)
_ORGANIZATION = (
    "partner_record",
    "program_participation",
    "program_attendance",
    "consent",
)
# FERPA's directory information (34 CFR 99.3): names, date of birth, grade, dates
# of attendance, the school, degrees and awards. Nothing else may be shared on it.
_DIRECTORY_FIELDS = {
    "partner_record": (
        "local_id",
        "first_name",
        "middle_name",
        "last_surname",
        "birth_date",
        "school_id",
        "school_name",
    ),
    "enrollment": (
        "student_local_id",
        "school_id",
        "entry_date",
        "entry_grade_level",
        "school_year",
        "exit_withdraw_date",
    ),
    "graduation": ("student_local_id", "school_id", "graduation_date", "diploma_type"),
}
_CITATION = {
    LegalBasis.ferpa_studies: "34 CFR 99.31(a)(6)",
    LegalBasis.ferpa_audit_eval: "34 CFR 99.31(a)(3), 99.35",
    LegalBasis.school_official: "34 CFR 99.31(a)(1)",
    LegalBasis.state_law: "the state statute that permits the disclosure",
    LegalBasis.directory: "34 CFR 99.31(a)(11), 99.37",
}
# the implied columns every row carries, never a term of an agreement
_IMPLIED = {"provider_partner_id", "partner_id", "submission_id"}


def _fields(entity: str) -> list[dict[str, str]]:
    table = next(
        t
        for t in ALL_TABLES
        if t.name == entity and t.schema in ("analytic", "identity")
    )
    return [
        {"name": c.name, "classification": "confidential"}
        for c in table.columns
        if c.name not in _IMPLIED
    ]


def agreement_template(
    basis: LegalBasis,
    *,
    provider: str = "d01-district",
    recipient: str = "b00-backbone",
    today: date | None = None,
) -> dict[str, Any]:
    """A document for ``basis`` that parses and passes lint; edit it, then
    ``backbone agreement add``."""
    start = today or date.today()
    district = basis not in (LegalBasis.contract, LegalBasis.consent)
    entities: tuple[str, ...] = (
        tuple(_DIRECTORY_FIELDS)
        if basis is LegalBasis.directory
        else _DISTRICT
        if district
        else _ORGANIZATION
    )
    purposes: list[dict[str, str]] = [
        {
            "id": "early_warning",
            "description": "Identify, segment and track students' risk factors.",
        },
        {
            "id": "shared_measurement",
            "description": "Community indicators and benchmarks.",
        },
        {
            "id": "program_evaluation",
            "description": "Outcomes of programs against a comparison group.",
        },
    ]
    if basis is LegalBasis.ferpa_audit_eval:
        for p in purposes:
            p["activity_description"] = (
                "Evaluation of the partnership's education programs on behalf of "
                "the district (describe the programs and the questions asked)."
            )
    doc: dict[str, Any] = {
        "agreement_id": f"DSA-{provider.upper()}",
        "title": f"Data-sharing agreement: {provider} and {recipient}",
        "tier": "dsa",
        "status": "active",
        "effective_from": start.isoformat(),
        "effective_to": date(start.year + 3, 6, 30).isoformat(),
        "parties": {"provider": provider, "recipient": recipient},
        "legal_basis": {"basis": basis.value}
        | ({"citation": _CITATION[basis]} if basis in _CITATION else {}),
        "purposes": purposes,
        "datasets": [{"entity": e, "fields": _fields(e)} for e in entities],
        "population": {"consent_required": basis is LegalBasis.consent},
        "recipients": [
            {
                "partner": recipient,
                "roles": ["steward_admin", "steward_analyst"],
                "access": "identified",
                "operations": ["row_level_view", "link", "aggregate"],
            }
        ],
        "linkage": {"allowed": True},
        "redisclosure": "none",
        "publication": {"min_cell_size": 10},
        "security": {"encryption_at_rest": True, "mfa_required": True},
        "retention": {"destroy_after_days": 365},
        "breach": {"notify_within_hours": 72},
        "termination": {"notice_days": 90},
        # no signatories: each party approves it (`backbone agreement approve`)
    }
    if basis is LegalBasis.directory:
        for d in doc["datasets"]:
            keep = _DIRECTORY_FIELDS[d["entity"]]
            d["fields"] = [
                {"name": f["name"], "classification": "directory"}
                for f in d["fields"]
                if f["name"] in keep
            ]
    AgreementDocument.model_validate(doc)  # a template that does not parse is a bug
    return doc


def template_yaml(basis: LegalBasis, **names: Any) -> str:
    """The template as YAML, with a header saying what to do with it."""
    head = (
        f"# A starting point for a {basis.value} agreement: edit the parties, the\n"
        "# purposes and the fields the partner will really send, then\n"
        "#   backbone agreement lint FILE   and   backbone agreement add FILE,\n"
        "# then each party signs: backbone agreement approve ID --partner P\n"
    )
    return head + yaml.safe_dump(
        agreement_template(basis, **names), sort_keys=False, allow_unicode=True
    )


DIRECTORY_EXAMPLE = """\
# The partnership directory (docs/PARTNERSHIP.md): edit, then
#   backbone partner import partnership.yaml
partners:
  - {partner_id: b00-backbone, name: Our Backbone, kind: backbone}
  - partner_id: d01-district
    name: Our District
    kind: school_district
    contacts: [{name: Data Manager, email: data@district.example.org, role: data manager}]
  - {partner_id: f01-fund, name: Our Funder, kind: funder}
schools:
  - {partner_id: d01-district, local_school_code: "101", name: First High School,
     school_level: High}
programs: []
initiatives: []
institutions: []
school_years:
  - {school_year: 2026, begin_date: 2025-07-01, end_date: 2026-06-30}
calendars:
  - school_year: 2026
    school_ids: [d01-district/101]
    first_day: 2025-08-25
    last_day: 2026-06-05
    holidays: ["2025-11-27..2025-11-28", "2025-12-22..2026-01-02"]
"""
