"""A small partnership for the early-warning tests; every answer worked out by hand.

Partners (as in :mod:`policy_fixtures`): the backbone ``b0``, districts ``d1`` (min
cell 10) and ``d2`` (11), the mentoring club ``c1`` (consent), the funder ``f1``.
The clock stands at 2026-07-15: school year 2026 (2025-26) is over.

Calendar of schools S1 (d1) and T1 (d2): 2025-08-25 … 2025-09-05, weekdays
instructional except Labor Day (2025-09-01): 9 instructional days.

- ``a1`` (person 1, d1, S1, ninth grade): excused absence 08-26 (1.0), unexcused
  08-28 (0.5), a tardy 08-27 → 9 days, 1.5 absent, 83.3% (chronic, not severe);
  conduct incidents I1 (08-27) and I2 (09-02) as perpetrator → behaviour warning.
  A 2 + B 1 + C 0 = 3 → watch.
- ``a2`` (person 2) moved: d1 S1 08-25 … 08-29 (5 days, excused 08-27), then d2
  ``b2`` T1 from 09-02 (4 days, unexcused 09-03 and 09-04; out-of-school
  suspension of 2 days on 09-04) → 9 days, 3 absent, 66.7% (severe), suspended
  → 2 + 2 = 4 → high risk, last in d2 at T1. d1 alone sees 5 days, 1 absent
  (80%: chronic) and no suspension → watch.
- ``a3`` (person 3): present every day; a state offense (I3); courses: fall ELA 70,
  math 60 (D), science 50 (F, fail, no credit); spring ELA 60, math 80, science 75;
  GPA 2.10 then 1.90, cumulative credits 1.0 then 2.5 → ELA 65, math 70 (warning),
  1 core F (warning), GPA at risk, 2.5 credits (off track in grade 9, behind)
  → 0 + 2 + 2 = 4 → high risk.
- ``a4`` (person 4): present every day; a victim in I4 and removed from class
  (not a suspension) → on track; in c1's mentoring program (``k4``, consent given),
  which c1 shares with the districts pseudonymously (or, built with
  ``club_access="identified"``, identified).
- ``f01`` … ``f30`` (persons 11-40, d1 S1): present every day → on track.
- ``g01`` … ``g20`` (persons 101-120, d2 T1, tenth grade): one excused absence on
  08-26 → 88.9% → watch.

Year end, the steward sees 54 persons: 31 on track, 21 watch, 2 high risk.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from backbone import Warehouse
from backbone.governance import Role
from backbone.ingest.mapping import IMPLICIT
from backbone.partners.agreements.document import SHAREABLE, parse_document
from tests.policy_fixtures import (
    PARTNERS,
    _fields,
    _insert,
    club_agreement,
    district_agreement,
    insert_persons,
)

NOW = datetime(2026, 7, 15, 9, 0)
SHARED = (
    "attendance_event",
    "discipline_incident",
    "discipline_action",
    "course_transcript",
    "student_academic_record",
    "student_indicator",
)


def _dataset(entity: str) -> dict[str, Any]:
    names = [c.name for c in SHAREABLE[entity].columns if c.name not in IMPLICIT]
    return {"entity": entity, "fields": _fields(names)}


def _district(provider: str, min_cell: int) -> dict[str, Any]:
    doc = district_agreement(provider, min_cell)
    doc["datasets"] = [d for d in doc["datasets"] if d["entity"] != "demographics"] + [
        _dataset(e) for e in ("demographics", *SHARED)
    ]
    return doc


def _club(access: str) -> dict[str, Any]:
    doc = club_agreement()
    doc["datasets"].append(_dataset("student_indicator"))
    for recipient in doc["recipients"][1:]:
        recipient["access"] = access
    return doc


def calendar(schools: tuple[str, ...] = ("S1", "T1")) -> list[dict[str, Any]]:
    """2025-08-25 … 2025-09-05 at each school: 9 instructional days (weekdays
    but Labor Day)."""
    rows = []
    for school in schools:
        day = date(2025, 8, 25)
        while day <= date(2025, 9, 5):
            rows.append(
                {
                    "school_id": school,
                    "date": day,
                    "school_year": 2026,
                    "is_instructional_day": day.weekday() < 5
                    and day != date(2025, 9, 1),
                }
            )
            day += timedelta(days=1)
    return rows


def _enrolled(
    provider: str,
    local: str,
    school: str,
    entry: date,
    grade: str = "Ninth grade",
    exit_: date | None = None,
) -> dict[str, Any]:
    return {
        "provider_partner_id": provider,
        "student_local_id": local,
        "school_id": school,
        "entry_date": entry,
        "entry_grade_level": grade,
        "school_year": 2026,
        "exit_withdraw_date": exit_,
        "exit_withdraw_type": "Transferred" if exit_ else None,
        "submission_id": 1,
    }


def _absent(
    provider: str, local: str, school: str, day: str, category: str, duration: float
) -> dict[str, Any]:
    return {
        "provider_partner_id": provider,
        "student_local_id": local,
        "school_id": school,
        "school_year": 2026,
        "event_date": date.fromisoformat(day),
        "attendance_event_category": category,
        "event_duration": duration,
        "submission_id": 1,
    }


def _course(
    term: str, code: str, subject: str, mark: float, letter: str
) -> dict[str, Any]:
    failed = letter == "F"
    return {
        "provider_partner_id": "d1",
        "student_local_id": "a3",
        "school_id": "S1",
        "school_year": 2026,
        "term": term,
        "course_code": code,
        "academic_subject": subject,
        "course_attempt_result": "Fail" if failed else "Pass",
        "attempted_credits": 0.5,
        "earned_credits": 0.0 if failed else 0.5,
        "final_letter_grade_earned": letter,
        "final_numeric_grade_earned": mark,
        "submission_id": 1,
    }


def build(
    path: Path,
    clock: Callable[[], datetime] = lambda: NOW,
    *,
    club_access: str = "pseudonymous",
) -> None:
    """The warehouse at ``path``; ``club_access`` is how c1 shares with the
    districts (``identified`` lets schools see which of their students it serves)."""
    with Warehouse.init(path, clock=clock) as wh:
        with wh.session() as s:
            for p in PARTNERS:
                wh.partners.add(s, p)
            for doc in (_district("d1", 10), _district("d2", 11), _club(club_access)):
                wh.agreements.add_document(
                    s, parse_document(copy.deepcopy(doc), source="test")
                )
        fillers = [f"f{i:02d}" for i in range(1, 31)]
        watchers = [f"g{i:02d}" for i in range(1, 21)]
        persons = {
            ("d1", "a1"): 1,
            ("d1", "a2"): 2,
            ("d2", "b2"): 2,
            ("d1", "a3"): 3,
            ("d1", "a4"): 4,
            ("c1", "k4"): 4,
            **{("d1", f): 10 + i for i, f in enumerate(fillers, start=1)},
            **{("d2", g): 100 + i for i, g in enumerate(watchers, start=1)},
        }
        insert_persons(wh, persons, NOW)
        _insert(wh, "ref.calendar_date", calendar())
        start = date(2025, 8, 25)
        _insert(
            wh,
            "analytic.enrollment",
            [
                _enrolled("d1", "a1", "S1", start),
                _enrolled("d1", "a2", "S1", start, exit_=date(2025, 8, 29)),
                _enrolled("d2", "b2", "T1", date(2025, 9, 2)),
                _enrolled("d1", "a3", "S1", start),
                _enrolled("d1", "a4", "S1", start),
                *(_enrolled("d1", f, "S1", start) for f in fillers),
                *(_enrolled("d2", g, "T1", start, "Tenth grade") for g in watchers),
            ],
        )
        _insert(
            wh,
            "analytic.attendance_event",
            [
                _absent("d1", "a1", "S1", "2025-08-26", "Excused Absence", 1.0),
                _absent("d1", "a1", "S1", "2025-08-27", "Tardy", 1.0),
                _absent("d1", "a1", "S1", "2025-08-28", "Unexcused Absence", 0.5),
                _absent("d1", "a2", "S1", "2025-08-27", "Excused Absence", 1.0),
                _absent("d2", "b2", "T1", "2025-09-03", "Unexcused Absence", 1.0),
                _absent("d2", "b2", "T1", "2025-09-04", "Unexcused Absence", 1.0),
                *(
                    _absent("d2", g, "T1", "2025-08-26", "Excused Absence", 1.0)
                    for g in watchers
                ),
            ],
        )
        incident = {"provider_partner_id": "d1", "school_id": "S1", "submission_id": 1}
        _insert(
            wh,
            "analytic.discipline_incident",
            [
                {
                    **incident,
                    "student_local_id": "a1",
                    "incident_identifier": "I1",
                    "incident_date": date(2025, 8, 27),
                    "behavior": "School Code of Conduct",
                    "participation_code": "Perpetrator",
                },
                {
                    **incident,
                    "student_local_id": "a1",
                    "incident_identifier": "I2",
                    "incident_date": date(2025, 9, 2),
                    "behavior": "School Code of Conduct",
                    "participation_code": "Perpetrator",
                },
                {
                    **incident,
                    "student_local_id": "a3",
                    "incident_identifier": "I3",
                    "incident_date": date(2025, 9, 3),
                    "behavior": "State Offense",
                    "participation_code": "Perpetrator",
                },
                {
                    **incident,
                    "student_local_id": "a4",
                    "incident_identifier": "I4",
                    "incident_date": date(2025, 9, 3),
                    "behavior": "School Code of Conduct",
                    "participation_code": "Victim",
                },
            ],
        )
        _insert(
            wh,
            "analytic.discipline_action",
            [
                {
                    "provider_partner_id": "d2",
                    "student_local_id": "b2",
                    "discipline_action_identifier": "A1",
                    "discipline_date": date(2025, 9, 4),
                    "discipline": "Out of School Suspension",
                    "discipline_action_length": 2.0,
                    "submission_id": 1,
                },
                {
                    "provider_partner_id": "d1",
                    "student_local_id": "a4",
                    "discipline_action_identifier": "A2",
                    "discipline_date": date(2025, 9, 4),
                    "discipline": "Removal from Classroom",
                    "discipline_action_length": 1.0,
                    "submission_id": 1,
                },
            ],
        )
        _insert(
            wh,
            "analytic.course_transcript",
            [
                _course("Fall Semester", "ELA9", "English Language Arts", 70, "C"),
                _course("Fall Semester", "MAT9", "Mathematics", 60, "D"),
                _course("Fall Semester", "SCI9", "Science", 50, "F"),
                _course("Spring Semester", "ELA9", "English Language Arts", 60, "D"),
                _course("Spring Semester", "MAT9", "Mathematics", 80, "B"),
                _course("Spring Semester", "SCI9", "Science", 75, "C"),
            ],
        )
        record = {
            "provider_partner_id": "d1",
            "student_local_id": "a3",
            "school_id": "S1",
            "school_year": 2026,
            "submission_id": 1,
        }
        _insert(
            wh,
            "analytic.student_academic_record",
            [
                {
                    **record,
                    "term": "Fall Semester",
                    "cumulative_gpa": 2.10,
                    "cumulative_earned_credits": 1.0,
                },
                {
                    **record,
                    "term": "Spring Semester",
                    "cumulative_gpa": 1.90,
                    "cumulative_earned_credits": 2.5,
                },
            ],
        )
        _insert(
            wh,
            "analytic.demographics",
            [
                {
                    "provider_partner_id": "d1",
                    "student_local_id": lid,
                    "as_of_date": date(2025, 10, 1),
                    "sex": "Male" if lid == "a3" else "Female",
                    "submission_id": 1,
                }
                for lid in ("a1", "a2", "a3", "a4", *fillers)
            ],
        )
        _insert(
            wh,
            "analytic.program_participation",
            [
                {
                    "provider_partner_id": "c1",
                    "student_local_id": "k4",
                    "program_id": "MENTOR",
                    "begin_date": date(2025, 9, 1),
                    "submission_id": 3,
                }
            ],
        )
        _insert(
            wh,
            "analytic.consent",
            [
                {
                    "provider_partner_id": "c1",
                    "student_local_id": "k4",
                    "consent_scope": "all",
                    "consent_status": "granted",
                    "decision_date": date(2025, 8, 15),
                    "school_year": None,
                    "submission_id": 4,
                }
            ],
        )
        with wh.session() as setup:
            steward = wh.users.add(
                setup, "steward", partner="b0", role=Role.steward_admin
            )
        with wh.session(steward) as s:
            for user_id, partner, role in (
                ("analyst", "b0", Role.steward_analyst),
                ("d1.analyst", "d1", Role.partner_analyst),
                ("d2.analyst", "d2", Role.partner_analyst),
                ("f1.viewer", "f1", Role.funder_viewer),
            ):
                wh.users.add(s, user_id, partner=partner, role=role)
