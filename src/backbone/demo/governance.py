"""The demo partnership's paperwork: agreements (with a history), feeds, commitments
and a funder's data-use request, as the steward would hold them.

:func:`write_governance_files` writes the agreement and request documents into the
community folder (deterministic: fixed dates); :func:`record_governance` records them
in a warehouse and adds feeds, commitments and reviews dated relative to ``today``, so
that some commitments are overdue whenever the demo runs.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from backbone.demo.community import (
    CBOS,
    COLLEGE_AGENCY,
    DISTRICTS,
    FUNDERS,
    PROGRAMS,
)
from backbone.partners.feeds import Feed

if TYPE_CHECKING:
    from backbone.governance import Principal
    from backbone.session import Session
    from backbone.warehouse import Warehouse

__all__ = ["record_governance", "write_governance_files"]

STEWARD = "b00-backbone"

DISTRICT_DATASETS: dict[str, list[str]] = {
    "partner_record": [
        "local_id",
        "first_name",
        "middle_name",
        "last_surname",
        "birth_date",
        "birth_sex",
        "address",
        "postal_code",
        "state_student_id",
        "school_id",
    ],
    "demographics": [
        "as_of_date",
        "sex",
        "hispanic_latino_ethnicity",
        "race",
        "economic_disadvantaged",
        "english_learner",
        "disability",
    ],
    "enrollment": [
        "school_id",
        "entry_date",
        "entry_grade_level",
        "school_year",
        "exit_withdraw_date",
        "exit_withdraw_type",
        "class_of_school_year",
    ],
    "attendance_event": [
        "school_id",
        "school_year",
        "event_date",
        "attendance_event_category",
    ],
    "attendance_period": [
        "school_id",
        "school_year",
        "session_name",
        "days_enrolled",
        "days_present",
        "days_absent_excused",
        "days_absent_unexcused",
    ],
    "discipline_incident": [
        "school_id",
        "incident_identifier",
        "incident_date",
        "behavior",
    ],
    "discipline_action": [
        "discipline_action_identifier",
        "discipline_date",
        "discipline",
        "discipline_action_length",
    ],
    "course_transcript": [
        "school_id",
        "school_year",
        "term",
        "course_code",
        "academic_subject",
        "course_attempt_result",
        "attempted_credits",
        "earned_credits",
        "final_letter_grade_earned",
        "final_numeric_grade_earned",
    ],
    "student_academic_record": [
        "school_year",
        "term",
        "session_gpa",
        "cumulative_gpa",
        "cumulative_earned_credits",
    ],
    "student_assessment": [
        "assessment_identifier",
        "academic_subject",
        "administration_date",
        "school_year",
        "scale_score",
        "performance_level",
    ],
    "graduation": [
        "school_id",
        "graduation_date",
        "diploma_type",
        "class_of_school_year",
    ],
    # early-warning values the steward derives from the facts above
    "student_indicator": [],
}
CBO_DATASETS = {
    "partner_record": [
        "local_id",
        "first_name",
        "middle_name",
        "last_surname",
        "birth_date",
        "birth_sex",
        "address",
        "postal_code",
        "school_name",
    ],
    "program_participation": ["program_id", "begin_date", "end_date"],
    "program_attendance": ["program_id", "event_date", "hours"],
    # whether (and how much) a student is served, in the early-warning values
    "student_indicator": [],
}
CONSENT_FIELDS = [
    "consent_scope",
    "consent_status",
    "decision_date",
    "school_year",
    "expiration_date",
]
COLLEGE_DATASETS = {
    "partner_record": [
        "local_id",
        "first_name",
        "middle_name",
        "last_surname",
        "birth_date",
        "birth_sex",
        "school_name",
    ],
    "postsecondary_enrollment": [
        "institution_id",
        "term_name",
        "term_begin_date",
        "enrollment_status",
        "credits_attempted",
        "credits_earned",
        "term_gpa",
    ],
    "postsecondary_event": [
        "event_date",
        "postsecondary_event_category",
        "institution_id",
        "degree_type",
    ],
}


def _all_fields(entity: str) -> list[str]:
    """Every field of a canonical entity except the ones Backbone fills itself."""
    from backbone.ingest.mapping import IMPLICIT
    from backbone.partners.agreements.document import SHAREABLE

    return [c.name for c in SHAREABLE[entity].columns if c.name not in IMPLICIT]


def _datasets(spec: dict[str, list[str]]) -> list[dict[str, Any]]:
    def cls(field: str) -> str:
        return (
            "restricted"
            if field in ("birth_date", "address", "state_student_id")
            else "confidential"
        )

    # the demo's partners share every field of the entities they agreed to share
    return [
        {
            "entity": e,
            "fields": [{"name": f, "classification": cls(f)} for f in _all_fields(e)],
        }
        for e in spec
    ]


def _common(provider: str, signed: str) -> dict[str, Any]:
    return {
        "contacts": {
            "privacy": {
                "name": "Privacy Officer",
                "email": f"privacy@{provider}.example.org",
            }
        },
        "publication": {
            "min_cell_size": 10,
            "complementary_suppression": True,
            "top_bottom_coding": {"top_percent": 95, "bottom_percent": 5},
        },
        "security": {
            "encryption_at_rest": True,
            "mfa_required": True,
            "storage_location": "US",
        },
        "retention": {
            "destroy_after_days": 365,
            "destruction_method": "secure deletion",
            "certificate_required": True,
        },
        "breach": {
            "notify_within_hours": 72,
            "notify_parties": [provider, STEWARD],
            "incident_contact": f"security@{provider}.example.org",
        },
        "termination": {
            "notice_days": 90,
            "on_termination": "revoke_immediately",
            "destroy_within_days": 30,
        },
        "signatories": [
            {
                "partner": provider,
                "name": "Superintendent or Director",
                "signed": signed,
            },
            {"partner": STEWARD, "name": "Executive Director", "signed": signed},
        ],
    }


def _district_agreement(d_id: str, name: str, last_year: int) -> dict[str, Any]:
    others = [d.partner_id for d in DISTRICTS if d.partner_id != d_id]
    return {
        "agreement_id": f"DSA-{d_id.split('-')[0].upper()}",
        "title": f"Data-sharing agreement: {name} and the Community Backbone",
        "tier": "dsa",
        "status": "active",
        "effective_from": "2020-07-01",
        "effective_to": f"{last_year + 3}-06-30",
        "parties": {"provider": d_id, "recipient": STEWARD},
        "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
        "purposes": [
            {
                "id": "early_warning",
                "description": "Identify, segment and track students' risk factors across districts.",
            },
            {
                "id": "shared_measurement",
                "description": "Community indicators and cross-district benchmarks.",
            },
            {
                "id": "program_evaluation",
                "description": "Outcomes of community programs against a comparison group.",
            },
            {
                "id": "initiative_outcomes",
                "description": "Funders see aggregate outcomes of the initiatives they fund.",
            },
        ],
        "datasets": _datasets(DISTRICT_DATASETS),
        "population": {"school_years": list(range(2021, 2028))},
        "recipients": [
            {
                "partner": STEWARD,
                "roles": ["steward_admin", "steward_analyst"],
                "access": "identified",
                "operations": [
                    "row_level_view",
                    "link",
                    "aggregate",
                    "export_microdata",
                ],
            },
            *(
                {
                    "partner": o,
                    "access": "aggregate",
                    "operations": ["aggregate"],
                    "purposes": ["shared_measurement"],
                }
                # other districts, the community organizations and the college
                # agency see the community's indicators (aggregates only)
                for o in [*others, *(c.partner_id for c in CBOS), COLLEGE_AGENCY[0]]
            ),
            *(
                {
                    "partner": f,
                    "access": "aggregate",
                    "operations": ["aggregate"],
                    "purposes": ["initiative_outcomes"],
                }
                for f, *_ in FUNDERS
            ),
        ],
        "linkage": {
            "allowed": True,
            "linkable_with": [
                *others,
                *(c.partner_id for c in CBOS),
                COLLEGE_AGENCY[0],
            ],
            "method": "clear_text",
            "keys_retention_days": 365,
        },
        "redisclosure": "aggregate_public_with_rules",
        **_common(d_id, "2020-06-15"),
    }


def _cbo_agreement(
    c_id: str,
    name: str,
    *,
    agreement_id: str,
    start: str,
    end: str | None,
    consent: bool,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "agreement_id": agreement_id,
        "title": f"Data-sharing agreement: {name} and the Community Backbone",
        "tier": "dsa",
        "status": "active",
        "effective_from": start,
        "parties": {"provider": c_id, "recipient": STEWARD},
        "legal_basis": {"basis": "consent" if consent else "contract"},
        "purposes": [
            {
                "id": "program_evaluation",
                "description": "Participants' outcomes against a comparison group.",
            },
            {
                "id": "early_warning",
                "description": "Show schools which at-risk students are already served.",
            },
            {
                "id": "initiative_outcomes",
                "description": "Funders of our programs see their aggregate outcomes.",
            },
        ],
        "datasets": _datasets(
            {
                **CBO_DATASETS,
                **({"consent": CONSENT_FIELDS} if consent else {}),
            }
        ),
        "population": {"consent_required": consent},
        "recipients": [
            {
                "partner": STEWARD,
                "access": "identified",
                "operations": ["row_level_view", "link", "aggregate"],
            },
            *(
                {
                    "partner": d.partner_id,
                    "access": "pseudonymous",
                    "operations": ["row_level_view", "aggregate"],
                    "purposes": ["early_warning"],
                }
                for d in DISTRICTS
            ),
            *(
                {
                    "partner": f,
                    "access": "aggregate",
                    "operations": ["aggregate"],
                    "purposes": ["initiative_outcomes"],
                }
                for f in _funders_of(c_id)
            ),
        ],
        "linkage": {
            "allowed": True,
            "linkable_with": [d.partner_id for d in DISTRICTS],
            # linkage keys (e.g. privacy-preserving encodings) go once linked
            "keys_retention_days": 0,
        },
        **_common(c_id, start),
    }
    if end:
        doc["effective_to"] = end
    return doc


def _funders_of(partner: str) -> list[str]:
    """The funders paying for any of a community organization's programs."""
    runs = {p.program_id for p in PROGRAMS if p.partner_id == partner}
    return [
        f
        for f, _, inits in FUNDERS
        if any(runs & set(programs) for _, _, programs in inits)
    ]


def _college_agreement(version: int, last_year: int) -> dict[str, Any]:
    a_id, a_name = COLLEGE_AGENCY
    doc: dict[str, Any] = {
        "agreement_id": "DSA-A01",
        "title": f"Data-sharing agreement: {a_name} and the Community Backbone",
        "tier": "dsa",
        "status": "active",
        "effective_from": "2021-07-01",
        "effective_to": f"{last_year + 3}-06-30",
        "parties": {"provider": a_id, "recipient": STEWARD},
        "legal_basis": {
            "basis": "ferpa_audit_eval",
            "citation": "34 CFR 99.31(a)(3), 99.35",
        },
        "purposes": [
            {
                "id": "shared_measurement",
                "description": "Community college-going indicators.",
                "activity_description": "Annual community indicator report on postsecondary enrollment.",
            },
        ],
        "datasets": _datasets(COLLEGE_DATASETS),
        "recipients": [
            {
                "partner": STEWARD,
                "access": "identified",
                "operations": ["row_level_view", "aggregate"],
            },
        ],
        "linkage": {"allowed": False},
        "redisclosure": "aggregate_public_with_rules",
        **_common(a_id, "2021-06-20"),
    }
    if version == 2:
        doc["purposes"].append(
            {
                "id": "college_outcomes",
                "description": "Link districts' graduates to college records to report outcomes by high school.",
                "activity_description": "High-school feedback reports: enrollment, persistence, remediation, degrees.",
            }
        )
        doc["purposes"].append(
            {
                "id": "program_evaluation",
                "description": "College enrollment of community programs' participants against a comparison group.",
                "activity_description": "Evaluate community programs: participants' college enrollment against matched non-participants.",
            }
        )
        doc["recipients"][0]["operations"] = ["row_level_view", "link", "aggregate"]
        doc["recipients"] += [
            {
                "partner": d.partner_id,
                "access": "aggregate",
                "operations": ["aggregate"],
                "purposes": ["college_outcomes", "shared_measurement"],
            }
            for d in DISTRICTS
        ]
        doc["linkage"] = {
            "allowed": True,
            "linkable_with": [d.partner_id for d in DISTRICTS],
            "method": "clear_text",
            "keys_retention_days": 180,
        }
        doc["signatories"] = [{**s, "signed": "2023-12-01"} for s in doc["signatories"]]
    return doc


def _funder_agreement(last_year: int) -> dict[str, Any]:
    funder = FUNDERS[0][0]
    return {
        "agreement_id": "DUL-F01-EASTSIDE",
        "title": "Data-use license: Every Day Counts outcomes for the United Community Fund",
        "tier": "dul",
        "status": "active",
        "effective_from": "2024-07-01",
        "effective_to": f"{last_year + 1}-01-15",
        "parties": {
            "provider": "c02-eastside",
            "recipient": STEWARD,
            "licensees": [funder],
        },
        "legal_basis": {"basis": "contract"},
        "purposes": [
            {
                "id": "initiative_outcomes",
                "description": "Funder's view of the outcomes of the programs it funds.",
            }
        ],
        "datasets": _datasets(
            {
                "program_participation": ["program_id", "begin_date", "end_date"],
                "program_attendance": ["program_id", "event_date", "hours"],
            }
        ),
        "recipients": [
            {"partner": funder, "access": "aggregate", "operations": ["aggregate"]}
        ],
        "redisclosure": "aggregate_public_with_rules",
        **{
            **_common("c02-eastside", "2024-06-10"),
            "signatories": [
                {"partner": "c02-eastside", "name": "Director", "signed": "2024-06-10"},
                {
                    "partner": STEWARD,
                    "name": "Executive Director",
                    "signed": "2024-06-10",
                },
                {"partner": funder, "name": "Program Officer", "signed": "2024-06-12"},
            ],
        },
    }


def _request() -> dict[str, Any]:
    funder = FUNDERS[1][0]
    return {
        "request_id": "REQ-2026-07",
        "requester": funder,
        "title": "College and Career Ready: outcomes of College Bound Advising",
        "purpose": {
            "id": "initiative_outcomes",
            "description": "Compare college enrollment of advised students with similar non-participants.",
        },
        "data": [
            {
                "provider": "c04-collegebound",
                "entity": "program_participation",
                "fields": ["program_id", "begin_date", "end_date"],
                "level": "aggregate",
            },
            {
                "provider": COLLEGE_AGENCY[0],
                "entity": "postsecondary_enrollment",
                "fields": ["institution_id", "term_begin_date", "enrollment_status"],
                "level": "aggregate",
            },
            {
                "provider": "d02-riverside",
                "entity": "graduation",
                "fields": ["school_id", "graduation_date", "class_of_school_year"],
                "level": "aggregate",
            },
        ],
        "begin": "2027-01-01",
        "end": "2029-06-30",
        "audience": ["City Foundation program officers", "City Foundation board"],
        "publication": "An annual public brief with counts of 10 or more and rates coded above 95% and below 5%.",
    }


def _dump(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )


def write_governance_files(out: Path, last_year: int = 2026) -> list[Path]:
    """Agreement documents (and the amendment and request) under ``out/agreements``."""
    folder = out / "agreements"
    written = []
    for d in DISTRICTS:
        doc = _district_agreement(d.partner_id, d.name, last_year)
        written.append(folder / f"{doc['agreement_id']}.yaml")
        _dump(doc, written[-1])
    for c in CBOS:
        consent = c.partner_id == "c01-brightfutures"
        aid = f"DSA-{c.partner_id.split('-')[0].upper()}"
        start = "2023-07-01" if c.partner_id == "c03-stepup" else "2020-07-01"
        written.append(folder / f"{aid}.yaml")
        _dump(
            _cbo_agreement(
                c.partner_id,
                c.name,
                agreement_id=aid,
                start=start,
                end=None,
                consent=consent,
            ),
            written[-1],
        )
    pilot = _cbo_agreement(
        "c03-stepup",
        "Step Up Tutoring (pilot)",
        agreement_id="DSA-C03-PILOT",
        start="2020-07-01",
        end="2023-06-30",
        consent=False,
    )
    written.append(folder / "DSA-C03-PILOT.yaml")
    _dump(pilot, written[-1])
    written.append(folder / "DSA-A01.yaml")
    _dump(_college_agreement(1, last_year), written[-1])
    written.append(folder / "amendments" / "DSA-A01-v2.yaml")
    _dump(_college_agreement(2, last_year), written[-1])
    written.append(folder / "DUL-F01-EASTSIDE.yaml")
    _dump(_funder_agreement(last_year), written[-1])
    written.append(out / "requests" / "REQ-2026-07.yaml")
    _dump(_request(), written[-1])
    return written


def record_governance(
    wh: Warehouse, community: Path, today: date, by: Principal | None = None
) -> dict[str, int]:
    """Record the paperwork in a warehouse whose partners are registered, through
    sessions like any other write, so every agreement, approval, feed, commitment,
    request and review leaves its audit entry. ``by`` is the steward admin who
    records it; without one the warehouse must have no user yet (the demo records
    its paperwork while setting the warehouse up)."""
    folder = community / "agreements"
    counts = {
        "agreements": 0,
        "agreement versions": 0,
        "feeds": 0,
        "commitments": 0,
        "requests": 0,
    }
    with wh.session(by) as s:
        for path in sorted(folder.glob("*.yaml")):
            wh.agreements.add(s, path)
            counts["agreements"] += 1
        wh.agreements.amend(
            s,
            "DSA-A01",
            folder / "amendments" / "DSA-A01-v2.yaml",
            effective=date(2024, 1, 1),
            summary="Add the college-outcomes purpose and linkage with the districts' graduates.",
        )
        # each party's signature, recorded by the steward on its behalf
        wh.agreements.approve(
            s,
            "DSA-A01",
            COLLEGE_AGENCY[0],
            on=date(2023, 12, 1),
            title="Agency Director",
        )
        wh.agreements.approve(
            s, "DSA-A01", STEWARD, on=date(2023, 12, 4), title="Executive Director"
        )
    counts["agreement versions"] = len(wh.agreements.all_versions())

    with wh.session(by) as s:
        counts["feeds"] = _record_feeds(wh, s)
    with wh.session(by) as s:
        _record_commitments(wh, s, today)
    counts["commitments"] = len(wh.commitments.list(on=today, open_only=False))

    with wh.session(by) as s:
        request = wh.requests.file(
            s,
            community / "requests" / "REQ-2026-07.yaml",
            on=today - timedelta(days=21),
        )
        # the providers' reviews, recorded by the steward on their behalf
        wh.requests.review(
            s,
            request.request_id,
            provider="c04-collegebound",
            decision="approve",
            fit=4,
            protections=3,
            minimum_necessary=4,
            on=today - timedelta(days=14),
            comments="Exactly what our funder needs; aggregate only.",
        )
        wh.requests.review(
            s,
            request.request_id,
            provider=COLLEGE_AGENCY[0],
            decision="approve_with_conditions",
            fit=3,
            protections=3,
            minimum_necessary=3,
            on=today - timedelta(days=7),
            conditions="Report institution types, not institution names.",
        )
    counts["requests"] = 1
    return counts


def _record_feeds(wh: Warehouse, s: Session) -> int:
    """The datasets every data partner sends; returns how many."""
    feeds = 0
    for d in DISTRICTS:
        aid = f"DSA-{d.partner_id.split('-')[0].upper()}"
        attendance = (
            "attendance_event" if d.attendance == "daily" else "attendance_period"
        )
        wh.feeds.add(
            s,
            Feed(
                d.partner_id,
                "attendance",
                (attendance,),
                "monthly" if d.attendance == "daily" else "term",
                aid,
                "Attendance for the school year to date",
                date(2020, 9, 1),
            ),
        )
        wh.feeds.add(
            s,
            Feed(
                d.partner_id,
                "student-records",
                (
                    "partner_record",
                    "demographics",
                    "enrollment",
                    "discipline_incident",
                    "discipline_action",
                    "course_transcript",
                    "student_academic_record",
                    "student_assessment",
                    "graduation",
                ),
                "term",
                aid,
                "Rosters, enrollment, discipline, marks, tests and graduates",
                date(2020, 9, 1),
            ),
        )
        feeds += 2
    for c in CBOS:
        aid = f"DSA-{c.partner_id.split('-')[0].upper()}"
        consent = ("consent",) if c.partner_id == "c01-brightfutures" else ()
        wh.feeds.add(
            s,
            Feed(
                c.partner_id,
                "rosters",
                (
                    "partner_record",
                    "program_participation",
                    "program_attendance",
                    *consent,
                ),
                "term",
                aid,
                "Program rosters and session attendance",
                date(2023, 9, 1),
            ),
        )
        feeds += 1
    wh.feeds.add(
        s,
        Feed(
            COLLEGE_AGENCY[0],
            "college-records",
            ("partner_record", "postsecondary_enrollment", "postsecondary_event"),
            "yearly",
            "DSA-A01",
            "Graduates' college terms and events",
            date(2021, 9, 1),
        ),
    )
    return feeds + 1


def _record_commitments(wh: Warehouse, s: Session, today: date) -> None:
    """Promises from the fall partner meeting (some overdue whenever the demo runs)
    and their progress, reported by the steward for their owners."""
    book = wh.commitments
    meeting = today - timedelta(days=55)
    grad = book.add(
        s,
        "Collect the high schools' graduate lists for the college match",
        owner="d02-riverside",
        owner_person="M. Alvarez (data manager)",
        counterpart=COLLEGE_AGENCY[0],
        due=today - timedelta(days=25),
        made_on=meeting,
        context="Fall partner meeting",
    )
    book.update(
        s,
        grad.commitment_id,
        on=today - timedelta(days=30),
        note="Assumed the college agency was collecting them.",
    )
    book.add(
        s,
        "Send the corrected 2025-26 enrollment workbook",
        owner="d05-oakdale",
        owner_person="J. Chen",
        counterpart=STEWARD,
        due=today - timedelta(days=9),
        made_on=meeting,
        context="Fall partner meeting",
    )
    roster = book.add(
        s,
        "Share the new mentoring roster template with all mentors",
        owner="c01-brightfutures",
        owner_person="T. Brooks",
        counterpart=STEWARD,
        due=today - timedelta(days=3),
        made_on=meeting,
        context="Fall partner meeting",
    )
    book.update(
        s,
        roster.commitment_id,
        on=today - timedelta(days=10),
        status="in_progress",
        note="Template drafted.",
    )
    book.add(
        s,
        "Draft the chronic-absence section of the community scorecard",
        owner=STEWARD,
        owner_person="Data steward",
        counterpart=None,
        due=today + timedelta(days=14),
        made_on=meeting,
        context="Fall partner meeting",
    )
    signed = book.add(
        s,
        "Countersign the amended college-agency agreement",
        owner=STEWARD,
        owner_person="Executive Director",
        counterpart=COLLEGE_AGENCY[0],
        due=date(2023, 12, 15),
        made_on=date(2023, 11, 20),
        context="Agreement review",
    )
    book.update(
        s,
        signed.commitment_id,
        on=date(2023, 12, 4),
        status="done",
        note="Signed; version 2 in force.",
    )
