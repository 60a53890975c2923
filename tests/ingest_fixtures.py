"""A one-district warehouse ready to take submissions, with hand-checkable files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from backbone import Warehouse
from backbone.governance import Principal
from backbone.ingest import SubmissionResult
from backbone.partners import Partner
from backbone.partners.feeds import Feed

from .governance_fixtures import agreement, write
from .signin import steward

ENROLLMENT_FIELDS = [
    "school_id",
    "entry_date",
    "entry_grade_level",
    "school_year",
    "exit_withdraw_date",
    "exit_withdraw_type",
]
ATTENDANCE_FIELDS = [
    "school_id",
    "school_year",
    "event_date",
    "attendance_event_category",
    "event_duration",
]
RECORD_FIELDS = ["local_id", "first_name", "last_surname", "birth_date"]

MAPPINGS: dict[str, dict[str, Any]] = {
    "records": {
        "partner": "d1",
        "feed": "records",
        "files": [
            {
                "match": "students*",
                "entity": "partner_record",
                "columns": {
                    "local_id": "id",
                    "first_name": "first",
                    "last_surname": "last",
                    "birth_date": {"column": "dob", "date_format": "%m/%d/%Y"},
                    "middle_name": "middle",
                },
            },
            {
                "match": "enroll*",
                "entity": "enrollment",
                "columns": {
                    "student_local_id": "id",
                    "school_id": {"template": "{partner_id}/{school}"},
                    "entry_date": "entry",
                    "school_year": {"school_year_from": "entry"},
                    "entry_grade_level": {"column": "grade", "grade_level": True},
                    "exit_withdraw_date": "exit",
                    "exit_withdraw_type": {
                        "column": "why",
                        "codes": {"T": "Transferred", "G": "Graduated"},
                    },
                },
            },
        ],
    },
    "attendance": {
        "partner": "d1",
        "feed": "attendance",
        "files": [
            {
                "match": "*.csv",
                "entity": "attendance_event",
                "columns": {
                    "student_local_id": "id",
                    "school_id": {"template": "{partner_id}/{school}"},
                    "school_year": {"school_year_from": "date"},
                    "event_date": "date",
                    "attendance_event_category": {
                        "column": "code",
                        "codes": {
                            "U": "Unexcused Absence",
                            "E": "Excused Absence",
                            "T": "Tardy",
                        },
                    },
                    "event_duration": {"constant": 1},
                },
                "ignore": ["note"],
            }
        ],
    },
}


def make_warehouse(
    tmp_path: Path, *, fields: dict[str, list[str]] | None = None
) -> Warehouse:
    wh = Warehouse.init(tmp_path / "wh")
    for p in (
        Partner("b0", "Backbone", "backbone"),
        Partner("d1", "District One", "school_district"),
        Partner("c1", "Youth Club", "community_organization"),
        Partner("f1", "Fund", "funder"),
    ):
        with wh.session() as s:
            wh.partners.add(s, p)
    with wh.session() as s:
        wh.partners.add_school(s, "d1", "HS01", "One High", "High")
    shared = fields or {
        "partner_record": RECORD_FIELDS,
        "enrollment": ENROLLMENT_FIELDS,
        "attendance_event": ATTENDANCE_FIELDS,
    }
    doc = agreement(
        datasets=[
            {"entity": e, "fields": [{"name": f} for f in fs]}
            for e, fs in shared.items()
        ],
        effective_from="2024-07-01",
        effective_to="2027-06-30",
    )
    with wh.session() as s:  # no user yet: setting the warehouse up
        wh.agreements.add(s, write(tmp_path / "dsa.yaml", doc))
        wh.feeds.add(
            s,
            Feed(
                "d1",
                "records",
                ("partner_record", "enrollment"),
                "term",
                "DSA-D1",
                None,
                __import__("datetime").date(2024, 9, 1),
            ),
        )
        wh.feeds.add(
            s,
            Feed(
                "d1",
                "attendance",
                ("attendance_event",),
                "monthly",
                "DSA-D1",
                None,
                __import__("datetime").date(2024, 9, 1),
            ),
        )
    for feed, doc_ in MAPPINGS.items():
        path = wh.path / "mappings" / "d1" / f"{feed}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc_, sort_keys=False))
    return wh


def csv_file(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


ENROLLMENTS = """id,school,entry,grade,exit,why
S1,HS01,2025-08-25,9,,
S2,HS01,2025-08-25,09,2026-01-15,T
S3,HS01,2025-08-25,KG,,
S4,HS01,2025-08-25,10,2025-08-01,T
"""
# row 2: ok; 3: ok; 4: ok; 5: exit before entry
ATTENDANCE = """id,school,date,code,note
S1,HS01,2025-09-02,U,
S1,HS01,2025-09-03,E,
S1,HS01,2025-09-02,U,pasted twice
S2,HS01,2025-09-04,X,
S2,HS01,2025-13-40,U,
S9,HS01,2025-09-05,U,
S3,HS01,2026-08-01,T,
S3,,2025-09-08,T,
"""
# row 2 ok; 3 ok; 4 duplicate of row 2; 5 unknown code; 6 invalid date; 7 unknown enrollment;
# 8 dated in the next school year (2026-27), where S3 has no enrollment; 9 school missing
EXPECTED_ATTENDANCE = {
    4: ["duplicate_in_file"],
    5: ["unknown_code"],
    6: ["invalid_date"],
    7: ["unknown_enrollment"],
    8: ["unknown_enrollment"],
    9: ["required"],
}


def submit(
    wh: Warehouse,
    partner: str,
    feed: str,
    paths: list[Path],
    *,
    mode: str | None = None,
    on: date | None = None,
    principal: Principal | None = None,
) -> list[SubmissionResult]:
    """``wh.ingest.submit`` in a session of its own: as ``principal``; without one,
    as the steward admin once the warehouse has users, else as whoever set it up."""
    if principal is None and wh.users.count():
        principal = steward(wh, "b0")
    with wh.session(principal) as s:
        return wh.ingest.submit(s, partner, feed, paths, mode=mode, on=on)


def decide_raw(wh: Warehouse, submission_id: int, *, keep: bool, reason: str) -> str:
    """The steward admin's decision on a raw file holding refused columns."""
    with wh.session(steward(wh, "b0")) as s:
        return wh.ingest.decide_raw(s, submission_id, keep=keep, reason=reason)
