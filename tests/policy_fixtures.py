"""A small partnership whose every answer is worked out by hand, for the policy tests.

Partners: the backbone ``b0``; districts ``d1`` (40 students) and ``d2`` (30
students); a mentoring club ``c1`` whose agreement rests on families' consent; a
funder ``f1``; a university research group ``r1``.

- d1's students are ``d1-01`` … ``d1-43``, persons 1-43; ``d1-01`` … ``d1-40`` are
  enrolled in 2026 at school S1 (``d1-01`` … ``d1-30``, odd numbers in ninth grade) or
  S2 (``d1-31`` … ``d1-40``); ``d1-01`` … ``d1-05`` and ``d1-41`` … ``d1-43`` (who left)
  were enrolled at S1 in 2024, a year outside the agreements' population. Demographics
  cover the 40 current students; English learners are ``d1-01`` … ``d1-03`` (3
  students: a cell below every minimum).
- d2's students are ``d2-01`` … ``d2-30``, persons 101-130, all at school T1 in 2026.
- c1's participants ``c1-1`` … ``c1-6`` are persons 1-6 (d1 students) and ``c1-7`` …
  ``c1-10`` are persons 101-104 (d2 students). Consent: ``c1-1`` … ``c1-8`` granted for
  until withdrawn, ``c1-9`` granted then denied, ``c1-10`` never asked.
- The clock stands at 2026-03-02 (school year 2026).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from backbone import Warehouse
from backbone.governance import Principal, Role
from backbone.partners import Partner
from backbone.partners.agreements.document import parse_document

NOW = datetime(2026, 3, 2, 9, 0)

PARTNERS = (
    Partner("b0", "Backbone", "backbone"),
    Partner("d1", "District One", "school_district"),
    Partner("d2", "District Two", "school_district"),
    Partner("c1", "Mentoring Club", "community_organization"),
    Partner("f1", "Fund", "funder"),
    Partner("r1", "University Lab", "research"),
)

_IDENTITY = [
    "local_id",
    "first_name",
    "last_surname",
    "birth_date",
    "address",
    "school_id",
]


def _fields(names: list[str], restricted: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "classification": "restricted" if n in restricted else "confidential",
        }
        for n in names
    ]


def _common(provider: str) -> dict[str, Any]:
    return {
        "tier": "dsa",
        "status": "active",
        "effective_from": "2024-07-01",
        "effective_to": "2027-06-30",
        "parties": {"provider": provider, "recipient": "b0"},
        "retention": {"destroy_after_days": 30},
        "breach": {"notify_within_hours": 72},
        "signatories": [
            {"partner": provider, "name": "Head", "signed": "2024-06-01"},
            {"partner": "b0", "name": "Director", "signed": "2024-06-02"},
        ],
    }


def district_agreement(provider: str, min_cell: int) -> dict[str, Any]:
    other = "d2" if provider == "d1" else "d1"
    return {
        **_common(provider),
        "agreement_id": f"DSA-{provider.upper()}",
        "title": f"{provider} and the backbone",
        "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
        "purposes": [
            {"id": "early_warning", "description": "Students at risk."},
            {"id": "shared_measurement", "description": "Benchmarks."},
            {"id": "program_evaluation", "description": "Program outcomes."},
            {"id": "research", "description": "An approved study."},
        ],
        "datasets": [
            {
                "entity": "partner_record",
                "fields": _fields(_IDENTITY, ("birth_date", "address")),
            },
            {
                "entity": "enrollment",
                "fields": _fields(
                    ["school_id", "entry_date", "entry_grade_level", "school_year"]
                ),
            },
            {
                "entity": "demographics",
                "fields": _fields(["as_of_date", "english_learner"]),
            },
        ],
        "population": {"school_years": [2025, 2026, 2027]},
        "recipients": [
            {
                "partner": "b0",
                "roles": ["steward_admin", "steward_analyst"],
                "access": "identified",
                "operations": [
                    "row_level_view",
                    "link",
                    "aggregate",
                    "export_microdata",
                ],
            },
            {
                "partner": other,
                "access": "aggregate",
                "operations": ["aggregate"],
                "purposes": ["shared_measurement"],
            },
            {
                "partner": "f1",
                "access": "aggregate",
                "operations": ["aggregate"],
                "purposes": ["program_evaluation"],
            },
            {
                "partner": "r1",
                "roles": ["researcher"],
                "access": "pseudonymous",
                "operations": ["row_level_view", "export_microdata", "aggregate"],
                "purposes": ["research"],
            },
            {
                "partner": "c1",
                "access": "pseudonymous",
                "operations": ["row_level_view"],
                "purposes": ["early_warning"],
            },
        ],
        "linkage": {"allowed": True, "linkable_with": [other, "c1"]},
        "publication": {
            "min_cell_size": min_cell,
            # hand-worked answers over a few rows: a history shared by two will do
            "extract_k": 2,
            "dp_budget": {"epsilon": 1.0},
            # d2 codes rates above 95% and below 5%; d1 publishes them as they are
            **(
                {"top_bottom_coding": {"top_percent": 95, "bottom_percent": 5}}
                if provider == "d2"
                else {}
            ),
        },
    }


def club_agreement() -> dict[str, Any]:
    return {
        **_common("c1"),
        "agreement_id": "DSA-C1",
        "title": "Mentoring club and the backbone",
        "legal_basis": {"basis": "consent"},
        "purposes": [
            {"id": "early_warning", "description": "Show schools who is served."},
            {"id": "program_evaluation", "description": "Program outcomes."},
        ],
        "datasets": [
            {"entity": "partner_record", "fields": _fields(_IDENTITY)},
            {
                "entity": "program_participation",
                "fields": _fields(["program_id", "begin_date"]),
            },
            {
                "entity": "consent",
                "fields": _fields(
                    ["consent_scope", "consent_status", "decision_date", "school_year"]
                ),
            },
        ],
        "population": {"consent_required": True},
        "recipients": [
            {
                "partner": "b0",
                "access": "identified",
                "operations": ["row_level_view", "link", "aggregate"],
            },
            {
                "partner": "d1",
                "access": "pseudonymous",
                "operations": ["row_level_view"],
                "purposes": ["early_warning"],
            },
            {
                "partner": "d2",
                "access": "pseudonymous",
                "operations": ["row_level_view"],
                "purposes": ["early_warning"],
            },
        ],
        "linkage": {"allowed": True, "linkable_with": ["d1", "d2"]},
        "publication": {"min_cell_size": 10, "extract_k": 2},
    }


def _insert(wh: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    wh._con.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        f"({', '.join('?' for _ in columns)})",
        [[r[c] for c in columns] for r in rows],
    )


def _student(partner: str, local: str, person: int) -> dict[str, Any]:
    return {
        "partner_id": partner,
        "local_id": local,
        "first_name": f"First{person}",
        "last_surname": f"Last{person}",
        "birth_date": date(2010, 1, 1 + person % 28),
        "address": f"{person} Main St",
        "school_id": None,
        "submission_id": 1,
    }


def insert_persons(
    wh: Warehouse, persons: dict[tuple[str, str], int], at: datetime = NOW
) -> None:
    """Each (partner, local id) record, linked to its person id."""
    _insert(
        wh,
        "identity.partner_record",
        [_student(p, lid, n) for (p, lid), n in persons.items()],
    )
    _insert(
        wh,
        "identity.person",
        [{"person_id": n, "created_at": at} for n in sorted(set(persons.values()))],
    )
    _insert(
        wh,
        "identity.record_person",
        [
            {
                "partner_id": p,
                "local_id": lid,
                "person_id": n,
                "method": "deterministic",
                "linked_at": at,
            }
            for (p, lid), n in persons.items()
        ],
    )


class Clock:
    """A clock a test moves by hand (``clock.now += timedelta(...)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(path: Path, clock: Callable[[], datetime] = lambda: NOW) -> None:
    """Create the partnership's warehouse at ``path`` (closed afterwards)."""
    with Warehouse.init(path, clock=clock) as wh:
        with wh.session() as s:
            for p in PARTNERS:
                wh.partners.add(s, p)
            for doc in (
                district_agreement("d1", 10),
                district_agreement("d2", 11),
                club_agreement(),
            ):
                wh.agreements.add_document(
                    s, parse_document(copy.deepcopy(doc), source="test")
                )
        d1 = [f"d1-{i:02d}" for i in range(1, 44)]
        d2 = [f"d2-{i:02d}" for i in range(1, 31)]
        c1 = [f"c1-{i}" for i in range(1, 11)]
        persons = {
            **{("d1", lid): i for i, lid in enumerate(d1, start=1)},
            **{("d2", lid): 100 + i for i, lid in enumerate(d2, start=1)},
            **{
                ("c1", lid): (i if i <= 6 else 94 + i)
                for i, lid in enumerate(c1, start=1)
            },
        }
        insert_persons(wh, persons)
        enrollment = [
            {
                "provider_partner_id": "d1",
                "student_local_id": lid,
                "school_id": "S1" if i <= 30 else "S2",
                "entry_date": date(2025, 8, 20),
                "entry_grade_level": "Ninth grade" if i % 2 else "Tenth grade",
                "school_year": 2026,
                "submission_id": 1,
            }
            for i, lid in enumerate(d1[:40], start=1)
        ]
        enrollment += [
            {
                "provider_partner_id": "d1",
                "student_local_id": lid,
                "school_id": "S1",
                "entry_date": date(2023, 8, 20),
                "entry_grade_level": "Seventh grade",
                "school_year": 2024,
                "submission_id": 1,
            }
            for lid in [*d1[:5], *d1[40:]]
        ]
        enrollment += [
            {
                "provider_partner_id": "d2",
                "student_local_id": lid,
                "school_id": "T1",
                "entry_date": date(2025, 8, 21),
                "entry_grade_level": "Ninth grade",
                "school_year": 2026,
                "submission_id": 2,
            }
            for lid in d2
        ]
        _insert(wh, "analytic.enrollment", enrollment)
        _insert(
            wh,
            "analytic.demographics",
            [
                {
                    "provider_partner_id": "d1",
                    "student_local_id": lid,
                    "as_of_date": date(2025, 10, 1),
                    "english_learner": i <= 3,
                    "submission_id": 1,
                }
                for i, lid in enumerate(d1[:40], start=1)
            ],
        )
        _insert(
            wh,
            "analytic.program_participation",
            [
                {
                    "provider_partner_id": "c1",
                    "student_local_id": lid,
                    "program_id": "MENTOR",
                    "begin_date": date(2025, 9, 15),
                    "submission_id": 3,
                }
                for lid in c1
            ],
        )
        consent = [
            {
                "provider_partner_id": "c1",
                "student_local_id": lid,
                "consent_scope": "all",
                "consent_status": "granted",
                "decision_date": date(2025, 9, 1),
                "school_year": None,  # until withdrawn
                "submission_id": 4,
            }
            for lid in c1[:9]
        ]
        consent.append(
            {
                **consent[-1],
                "consent_status": "denied",
                "decision_date": date(2026, 1, 10),
            }
        )
        _insert(wh, "analytic.consent", consent)
        with wh.session() as setup:
            steward = wh.users.add(
                setup, "steward", partner="b0", role=Role.steward_admin
            )
        with wh.session(steward) as s:
            for user_id, partner, role in (
                ("analyst", "b0", Role.steward_analyst),
                ("d1.analyst", "d1", Role.partner_analyst),
                ("d1.uploader", "d1", Role.partner_uploader),
                ("d2.analyst", "d2", Role.partner_analyst),
                ("c1.analyst", "c1", Role.partner_analyst),
                ("f1.viewer", "f1", Role.funder_viewer),
                ("r1.researcher", "r1", Role.researcher),
            ):
                wh.users.add(s, user_id, partner=partner, role=role)


def user(wh: Warehouse, user_id: str) -> Principal:
    return wh.users.get(user_id)
