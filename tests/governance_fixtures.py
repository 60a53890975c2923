"""Small, hand-written partnership used by the agreement and partner tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from backbone import Warehouse
from backbone.partners import Partner

PARTNERS = (
    Partner("b0", "Backbone", "backbone"),
    Partner("d1", "District One", "school_district"),
    Partner("d2", "District Two", "school_district"),
    Partner("c1", "Youth Club", "community_organization"),
    Partner("a1", "College Agency", "higher_education_agency"),
    Partner("f1", "Fund", "funder"),
)

BASE: dict[str, Any] = {
    "agreement_id": "DSA-D1",
    "title": "District One and the Backbone",
    "tier": "dsa",
    "status": "active",
    "effective_from": "2024-07-01",
    "effective_to": "2027-06-30",
    "parties": {"provider": "d1", "recipient": "b0"},
    "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
    "purposes": [
        {"id": "early_warning", "description": "Identify students at risk."},
        {"id": "program_evaluation", "description": "Evaluate programs."},
    ],
    "datasets": [
        {
            "entity": "attendance_event",
            "fields": [{"name": "event_date"}, {"name": "attendance_event_category"}],
        },
        {
            "entity": "enrollment",
            "fields": [{"name": "school_id"}, {"name": "entry_date"}],
        },
    ],
    "recipients": [
        {
            "partner": "b0",
            "roles": ["steward_admin"],
            "access": "identified",
            "operations": ["row_level_view", "link", "aggregate"],
        },
        {
            "partner": "c1",
            "access": "pseudonymous",
            "operations": ["row_level_view"],
            "purposes": ["early_warning"],
        },
        {
            "partner": "f1",
            "access": "aggregate",
            "operations": ["aggregate"],
            "purposes": ["program_evaluation"],
        },
    ],
    "linkage": {"allowed": True, "linkable_with": ["c1"]},
    "publication": {"min_cell_size": 10},
    "retention": {"destroy_after_days": 365},
    "breach": {"notify_within_hours": 72},
    "termination": {"notice_days": 90},
    "signatories": [
        {"partner": "d1", "name": "Superintendent", "signed": "2024-06-01"},
        {"partner": "b0", "name": "Director", "signed": "2024-06-02"},
    ],
}


def agreement(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def register_partners(wh: Warehouse) -> None:
    with wh.session() as s:
        for p in PARTNERS:
            wh.partners.add(s, p)
