"""College reports, the shared-measurement scorecard and "what we get", on a small
partnership whose every answer is worked out by hand, through the real release
gate and real agreements.

Partners: the backbone ``b0``; districts ``d1`` (North High, HS1) and ``d2`` (South
High, HS2), minimum cell 10 each; the mentoring club ``c1``; the college agency
``a1``; the funder ``f1``. The clock stands at 2027-02-01 (school year 2027).

Agreements:

- each district shares enrollment, demographics, graduation, early-warning
  values and assessments with the steward; aggregates with the other district
  for ``shared_measurement``, with ``c1`` for ``program_evaluation`` and with
  ``a1`` for ``college_outcomes``;
- ``a1`` shares college terms and events with the steward (``DSA-A1``), and only
  its terms, as aggregates, with the districts for ``college_outcomes``
  (``DSA-A1-HS``): the districts never get remediation or degrees;
- ``c1`` shares its participants with the steward, and as aggregates with the
  districts for ``early_warning``.

Graduates (college):

- class of 2024 (2024-06-10), North High, persons 41-64: all at a two-year
  college (C2) in fall 2024, none the next fall; 41-52 took remedial math.
- class of 2025 (2025-06-10), North High, persons 1-40: 1-15 at a four-year
  (U4) in fall 2025 and again in fall 2026; 16-25 at C2 in fall 2025; 26-40 no
  college. Women 1-10 and 26-35, men 11-25 and 36-38; 39-40 gave no sex ("Not
  Selected"). South High, persons 101-120 (women 101-110): 101-110 at C2 in fall
  2025, none the next fall.
- class of 2026 (2026-06-05): North High 401-418 and 433 (on 2026-12-15: first
  fall not yet passed), South High 501-510 and 450; none in college.
- 801-812: college students with no community diploma.

Early-warning values, year end 2025-26 (100 days enrolled each), in blocks of at
least ten students alike in everything counted (the gate audits every group of
persons that several releases cut out, so smaller ones would be suppressed):

- d1 students 201-232: A = 201-212 first-time ninth graders, absent 15 (chronic),
  on track (6 credits, no F); B = 213-222 first-time ninth graders, absent 2, off
  track (3 credits, 2 core F); C = 223-232 absent 2, tenth graders but 231-232,
  ninth graders in 2024-25 too (repeaters: not first-time).
- d2 students 301-320, ninth grade: 301-310 absent 20 (chronic) and on track,
  311-320 never absent and off track.
- person 250 moved: a ninth grader with 50 days at d1 (4 absences, one term, 3
  credits), then 50 at d2 (8 absences, one term, 3 credits): 88%, chronic, on
  track, counted once, in d2 (alone, d1's share would be 92%).

Graduation cohort of 2026: d1 401-430 (401-418 graduated), 431-432 transferred out
(not in the cohort), 433 graduated after Aug 31; d2 501-520 (501-510 graduated);
450 moved from d1 to d2 and graduated there.

2026-27 enrollment: d1 201-232 all year, 601-610 left d1 for d2, 611-620 came
from d2. ``c1`` serves 201-222 (blocks A and B) and 701-710 (unmatched), since
2025-09-01.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from backbone import Warehouse
from backbone.errors import PolicyDenied, UserError
from backbone.governance import Role
from backbone.governance.release import TOTAL
from backbone.ingest.mapping import IMPLICIT
from backbone.measures.college import college_report
from backbone.measures.definitions import default_definitions
from backbone.measures.indicators import Snapshot
from backbone.measures.scorecard import (
    NO_DATA,
    REFUSED,
    RELEASED,
    GridCell,
    graduation_sql,
    k_readiness_sql,
    on_track_sql,
    scorecard,
)
from backbone.measures.what_we_get import what_we_get
from backbone.partners import Partner
from backbone.partners.agreements.document import SHAREABLE, parse_document
from tests.policy_fixtures import _common, _insert, insert_persons

NOW = datetime(2027, 2, 1, 9, 0)
TODAY = NOW.date()
D = date

# --- the partnership --------------------------------------------------------------

PARTNERS = (
    Partner("b0", "Backbone", "backbone"),
    Partner("d1", "District One", "school_district"),
    Partner("d2", "District Two", "school_district"),
    Partner("c1", "Mentoring Club", "community_organization"),
    Partner("a1", "College Agency", "higher_education_agency"),
    Partner("f1", "Fund", "funder"),
)


def _dataset(entity: str) -> dict[str, Any]:
    names = [c.name for c in SHAREABLE[entity].columns if c.name not in IMPLICIT]
    return {
        "entity": entity,
        "fields": [{"name": n, "classification": "confidential"} for n in names],
    }


def _purposes(*ids: str) -> list[dict[str, str]]:
    return [{"id": i, "description": f"{i} (test)"} for i in ids]


STEWARD = {
    "partner": "b0",
    "roles": ["steward_admin", "steward_analyst"],
    "access": "identified",
    "operations": ["row_level_view", "link", "aggregate"],
}


def _aggregate(partner: str, purpose: str) -> dict[str, Any]:
    return {
        "partner": partner,
        "access": "aggregate",
        "operations": ["aggregate"],
        "purposes": [purpose],
    }


def _district(provider: str) -> dict[str, Any]:
    other = "d2" if provider == "d1" else "d1"
    return {
        **_common(provider),
        "agreement_id": f"DSA-{provider.upper()}",
        "title": f"{provider} and the backbone",
        "legal_basis": {"basis": "ferpa_studies", "citation": "34 CFR 99.31(a)(6)"},
        "purposes": _purposes(
            "early_warning",
            "shared_measurement",
            "college_outcomes",
            "program_evaluation",
        ),
        "datasets": [
            _dataset(e)
            for e in (
                "partner_record",
                "enrollment",
                "demographics",
                "graduation",
                "student_indicator",
                "student_assessment",
            )
        ],
        "population": {"school_years": [2024, 2025, 2026, 2027]},
        "recipients": [
            STEWARD,
            _aggregate(other, "shared_measurement"),
            _aggregate("c1", "program_evaluation"),
            _aggregate("a1", "college_outcomes"),
        ],
        "linkage": {"allowed": True, "linkable_with": [other, "c1", "a1"]},
        "publication": {"min_cell_size": 10},
    }


def _agency() -> dict[str, Any]:
    return {
        **_common("a1"),
        "agreement_id": "DSA-A1",
        "title": "College agency and the backbone",
        "legal_basis": {"basis": "ferpa_audit_eval", "citation": "34 CFR 99.35"},
        "purposes": _purposes("shared_measurement", "college_outcomes"),
        "datasets": [
            _dataset(e)
            for e in (
                "partner_record",
                "postsecondary_enrollment",
                "postsecondary_event",
            )
        ],
        "recipients": [STEWARD],
        "linkage": {"allowed": True, "linkable_with": ["d1", "d2"]},
        "publication": {"min_cell_size": 10},
    }


def _agency_to_high_schools() -> dict[str, Any]:
    return {
        **_common("a1"),
        "agreement_id": "DSA-A1-HS",
        "title": "College enrollment for high-school feedback",
        "legal_basis": {"basis": "ferpa_audit_eval", "citation": "34 CFR 99.35"},
        "purposes": _purposes("college_outcomes"),
        "datasets": [_dataset("postsecondary_enrollment")],
        "recipients": [
            _aggregate("d1", "college_outcomes"),
            _aggregate("d2", "college_outcomes"),
        ],
        "publication": {"min_cell_size": 10},
    }


def _club() -> dict[str, Any]:
    return {
        **_common("c1"),
        "agreement_id": "DSA-C1",
        "title": "Mentoring club and the backbone",
        "legal_basis": {"basis": "contract"},
        "purposes": _purposes("early_warning", "program_evaluation"),
        "datasets": [_dataset("partner_record"), _dataset("program_participation")],
        "recipients": [
            STEWARD,
            _aggregate("d1", "early_warning"),
            _aggregate("d2", "early_warning"),
        ],
        "linkage": {"allowed": True, "linkable_with": ["d1", "d2"]},
        "publication": {"min_cell_size": 10},
    }


def _r(lo: int, hi: int) -> range:
    return range(lo, hi + 1)


def _grad(p: str, n: int, school: str, day: date, class_of: int) -> dict[str, Any]:
    return {
        "provider_partner_id": p,
        "student_local_id": f"g{n}",
        "school_id": school,
        "graduation_date": day,
        "diploma_type": "Regular",
        "class_of_school_year": class_of,
        "submission_id": 1,
    }


def _term(
    n: int, institution: str, name: str, begin: date, end: date
) -> dict[str, Any]:
    return {
        "provider_partner_id": "a1",
        "student_local_id": f"c{n}",
        "institution_id": institution,
        "term_name": name,
        "term_begin_date": begin,
        "term_end_date": end,
        "submission_id": 2,
    }


LAST_DAY = D(2026, 6, 15)
FALL24 = ("Fall 2024", D(2024, 8, 26), D(2024, 12, 13))
FALL25 = ("Fall 2025", D(2025, 8, 25), D(2025, 12, 15))
FALL26 = ("Fall 2026", D(2026, 8, 24), D(2026, 12, 14))


def _component(
    p: str,
    local: str,
    *,
    year: int = 2026,
    grade: str = "Ninth grade",
    days: float | None = 100.0,
    absent: float = 2.0,
    last: date = LAST_DAY,
    terms: int = 2,
    credits: float = 6.0,
    fails: int = 0,
) -> dict[str, Any]:
    return {
        "provider_partner_id": p,
        "student_local_id": local,
        "school_year": year,
        "as_of_date": D(year, 6, 30),
        "definition_version": 1,
        "school_id": "HS1" if p == "d1" else "HS2",
        "grade_level": grade,
        "last_enrolled_date": last,
        "days_enrolled": days,
        "days_absent": absent if days is not None else None,
        "suspensions": 0,
        "suspension_days": 0.0,
        "conduct_incidents": 0,
        "state_offenses": 0,
        "ela_marks": 0,
        "math_marks": 0,
        "ela_math_fails": 0,
        "core_course_fails": fails,
        "course_fails": fails,
        "terms_completed": terms,
        "credits_earned": credits,
        "programs": 0,
        "program_hours": 0.0,
        "submission_id": 0,
    }


def _enrolled(
    p: str,
    local: str,
    school: str,
    year: int,
    entry: date,
    *,
    grade: str = "Tenth grade",
    exit_: date | None = None,
    class_of: int | None = None,
) -> dict[str, Any]:
    return {
        "provider_partner_id": p,
        "student_local_id": local,
        "school_id": school,
        "entry_date": entry,
        "entry_grade_level": grade,
        "school_year": year,
        "exit_withdraw_date": exit_,
        "exit_withdraw_type": "Transferred" if exit_ else None,
        "class_of_school_year": class_of,
        "submission_id": 1,
    }


def build(path: Path) -> None:
    with Warehouse.init(path, clock=lambda: NOW) as wh:
        with wh.session() as s:
            for p in PARTNERS:
                wh.partners.add(s, p)
            for doc in (
                _district("d1"),
                _district("d2"),
                _agency(),
                _agency_to_high_schools(),
                _club(),
            ):
                wh.agreements.add_document(
                    s, parse_document(copy.deepcopy(doc), source="t")
                )
        persons: dict[tuple[str, str], int] = {}
        # graduates and college students
        for n in (*_r(1, 40), *_r(41, 64), *_r(401, 433)):
            persons[("d1", f"g{n}")] = n
        for n in (*_r(101, 120), *_r(501, 520)):
            persons[("d2", f"g{n}")] = n
        persons[("d1", "k450")] = persons[("d2", "g450")] = 450
        for n in (*_r(1, 25), *_r(41, 64), *_r(101, 110), *_r(801, 812)):
            persons[("a1", f"c{n}")] = n
        # early-warning students, movers, participants
        for n in (*_r(201, 232), 250):
            persons[("d1", f"e{n}")] = n
        for n in (*_r(301, 320), 250):
            persons[("d2", f"t{n}")] = n
        for n in _r(601, 620):
            persons[("d1", f"m{n}")] = persons[("d2", f"x{n}")] = n
        for n in (*_r(201, 222), *_r(701, 710)):
            persons[("c1", f"p{n}")] = n
        insert_persons(wh, persons, NOW)
        _insert(
            wh,
            "ref.school",
            [
                {"school_id": s, "partner_id": p, "local_school_code": s,
                 "name": name, "school_level": "High"}
                for s, p, name in (("HS1", "d1", "North High"), ("HS2", "d2", "South High"))
            ],
        )  # fmt: skip
        _insert(
            wh,
            "ref.postsecondary_institution",
            [
                {"institution_id": "U4", "name": "State U", "level": "Four-year",
                 "control": "Public", "state": "NY"},
                {"institution_id": "C2", "name": "County CC", "level": "Two-year",
                 "control": "Public", "state": "NY"},
            ],
        )  # fmt: skip
        _insert(
            wh,
            "analytic.graduation",
            [
                *(_grad("d1", n, "HS1", D(2024, 6, 10), 2024) for n in _r(41, 64)),
                *(_grad("d1", n, "HS1", D(2025, 6, 10), 2025) for n in _r(1, 40)),
                *(_grad("d2", n, "HS2", D(2025, 6, 10), 2025) for n in _r(101, 120)),
                *(_grad("d1", n, "HS1", D(2026, 6, 5), 2026) for n in _r(401, 418)),
                _grad("d1", 433, "HS1", D(2026, 12, 15), 2026),
                *(_grad("d2", n, "HS2", D(2026, 6, 5), 2026) for n in _r(501, 510)),
                _grad("d2", 450, "HS2", D(2026, 6, 5), 2026),
            ],
        )
        _insert(
            wh,
            "analytic.demographics",
            [
                {
                    "provider_partner_id": p,
                    "student_local_id": f"g{n}",
                    "as_of_date": D(2024, 10, 1),
                    "sex": sex,
                    "submission_id": 1,
                }
                for p, sex, people in (
                    ("d1", "Female", (*_r(1, 10), *_r(26, 35))),
                    ("d1", "Male", (*_r(11, 25), *_r(36, 38))),
                    ("d1", "Not Selected", _r(39, 40)),
                    ("d2", "Female", _r(101, 110)),
                    ("d2", "Male", _r(111, 120)),
                )
                for n in people
            ],
        )
        _insert(
            wh,
            "analytic.postsecondary_enrollment",
            [
                *(_term(n, "C2", *FALL24) for n in _r(41, 64)),
                *(_term(n, "U4", *FALL25) for n in _r(1, 15)),
                *(_term(n, "U4", *FALL26) for n in _r(1, 15)),
                *(_term(n, "C2", *FALL25) for n in (*_r(16, 25), *_r(101, 110))),
                *(_term(n, "U4", *FALL25) for n in _r(801, 812)),
            ],
        )
        _insert(
            wh,
            "analytic.postsecondary_event",
            [
                {
                    "provider_partner_id": "a1",
                    "student_local_id": f"c{n}",
                    "event_date": D(2024, 9, 15),
                    "postsecondary_event_category": "Remedial Enrollment - Math",
                    "institution_id": "C2",
                    "submission_id": 3,
                }
                for n in _r(41, 52)
            ],
        )
        _insert(
            wh,
            "analytic.student_indicator",
            [
                *(
                    _component(
                        "d1",
                        f"e{n}",
                        grade="Tenth grade" if 223 <= n <= 230 else "Ninth grade",
                        absent=15.0 if n <= 212 else 2.0,
                        credits=3.0 if 213 <= n <= 222 else 6.0,
                        fails=2 if 213 <= n <= 222 else 0,
                    )
                    for n in _r(201, 232)
                ),
                *(
                    _component(
                        "d2",
                        f"t{n}",
                        absent=20.0 if n <= 310 else 0.0,
                        credits=6.0 if n <= 310 else 3.0,
                        fails=0 if n <= 310 else 2,
                    )
                    for n in _r(301, 320)
                ),
                _component("d1", "e250", days=50.0, absent=4.0, terms=1,
                           credits=3.0, last=D(2025, 12, 20)),
                _component("d2", "t250", days=50.0, absent=8.0, terms=1, credits=3.0),
                # the repeaters' first ninth-grade year: no rate, half a year
                *(
                    _component("d1", f"e{n}", year=2025, days=None,
                               last=D(2025, 6, 10), terms=1)
                    for n in (231, 232)
                ),
            ],
        )  # fmt: skip
        y27 = D(2026, 8, 20)
        _insert(
            wh,
            "analytic.enrollment",
            [
                # 2026-27: stayed, left for d2, came from d2
                *(_enrolled("d1", f"e{n}", "HS1", 2027, y27) for n in _r(201, 232)),
                *(
                    _enrolled("d1", f"m{n}", "HS1", 2027, y27, exit_=D(2026, 11, 1))
                    for n in _r(601, 610)
                ),
                *(_enrolled("d2", f"x{n}", "HS2", 2027, D(2026, 11, 5)) for n in _r(601, 610)),
                *(
                    _enrolled("d2", f"x{n}", "HS2", 2027, y27, exit_=D(2026, 10, 1))
                    for n in _r(611, 620)
                ),
                *(_enrolled("d1", f"m{n}", "HS1", 2027, D(2026, 10, 5)) for n in _r(611, 620)),
                # the graduation cohort of 2026
                *(
                    _enrolled("d1", f"g{n}", "HS1", 2026, D(2025, 8, 20),
                              grade="Twelfth grade", class_of=2026)
                    for n in (*_r(401, 430), 433)
                ),
                *(
                    _enrolled("d1", f"g{n}", "HS1", 2026, D(2025, 8, 20),
                              grade="Twelfth grade", class_of=2026,
                              exit_=D(2025, 11, 1))
                    for n in (431, 432)
                ),
                *(
                    _enrolled("d2", f"g{n}", "HS2", 2026, D(2025, 8, 20),
                              grade="Twelfth grade", class_of=2026)
                    for n in _r(501, 520)
                ),
                _enrolled("d1", "k450", "HS1", 2026, D(2025, 8, 20),
                          grade="Twelfth grade", class_of=2026, exit_=D(2025, 12, 1)),
                _enrolled("d2", "g450", "HS2", 2026, D(2025, 12, 5),
                          grade="Twelfth grade", class_of=2026),
            ],
        )  # fmt: skip
        _insert(
            wh,
            "analytic.program_participation",
            [
                {
                    "provider_partner_id": "c1",
                    "student_local_id": f"p{n}",
                    "program_id": "MENTOR",
                    "begin_date": D(2025, 9, 1),
                    "submission_id": 4,
                }
                for n in (*_r(201, 222), *_r(701, 710))
            ],
        )
        # one assessment, and not a kindergarten-entry one
        _insert(
            wh,
            "analytic.student_assessment",
            [
                {
                    "provider_partner_id": "d1",
                    "student_local_id": "e201",
                    "assessment_identifier": "STATE-MATH-9",
                    "academic_subject": "Mathematics",
                    "administration_date": D(2026, 4, 15),
                    "school_year": 2026,
                    "when_assessed_grade_level": "Ninth grade",
                    "performance_level": "Proficient",
                    "submission_id": 1,
                }
            ],
        )
        with wh.session() as setup:
            steward = wh.users.add(
                setup, "steward", partner="b0", role=Role.steward_admin
            )
        with wh.session(steward) as s:
            for user_id, partner, role in (
                ("d1.analyst", "d1", Role.partner_analyst),
                ("d2.analyst", "d2", Role.partner_analyst),
                ("c1.analyst", "c1", Role.partner_analyst),
                ("a1.analyst", "a1", Role.partner_analyst),
                ("f1.viewer", "f1", Role.funder_viewer),
            ):
                wh.users.add(s, user_id, partner=partner, role=role)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("college") / "wh"
    build(path)
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=lambda: NOW) as w:
        yield w


def _as(wh: Warehouse, user: str, purpose: str) -> Any:
    return wh.access(wh.users.get(user), purpose)


def _cells(table: Any, *dims: str) -> dict[tuple[str, ...], tuple[Any, Any, Any]]:
    """{dimension values: (persons, matching, rate)}."""
    return {
        tuple(r[d] for d in dims): (r["persons"], r["matching"], r["rate"])
        for r in table.to_pylist()
    }


# --- the college report -------------------------------------------------------------


def test_basic_packet_by_high_school_and_class_worked_by_hand(wh: Warehouse) -> None:
    report = college_report(_as(wh, "steward", "college_outcomes"), as_of=TODAY)
    assert report.left_out == {}
    fall = report.measures["enrolled_first_fall"]
    assert fall.counts == ("yes",)
    # North High: 2024 all 24; 2025 25 of 40; 2026 none of 18 (433's first fall is
    # still to come). South High: 2025 10 of 20; 2026 none of 11 (with the mover).
    assert _cells(fall.table, "high_school", "class_of") == {
        ("North High", "2024"): (24, 24, "100.0%"),
        ("North High", "2025"): (40, 25, "62.5%"),
        ("North High", "2026"): (18, 0, "0.0%"),
        ("South High", "2025"): (20, 10, "50.0%"),
        ("South High", "2026"): (11, 0, "0.0%"),
        ("North High", TOTAL): (82, 49, "59.8%"),
        ("South High", TOTAL): (31, 10, "32.3%"),
        (TOTAL, "2024"): (24, 24, "100.0%"),
        (TOTAL, "2025"): (60, 35, "58.3%"),
        (TOTAL, "2026"): (29, 0, "0.0%"),
        (TOTAL, TOTAL): (113, 59, "52.2%"),
    }
    # persistence: of first-fall enrollees, a fall term the next year (2026 not yet)
    persisted = _cells(report.measures["persisted"].table, "high_school", "class_of")
    assert persisted[("North High", "2025")] == (25, 15, "60.0%")
    assert persisted[("South High", "2025")] == (10, 0, "0.0%")
    assert persisted[(TOTAL, "2025")] == (35, 15, "42.9%")
    assert persisted[("North High", "2024")] == (24, 0, "0.0%")
    # four-year colleges among year-one enrollees (year one of 2026 not yet over)
    level = _cells(report.measures["first_level"].table, "high_school", "class_of")
    assert level[("North High", "2025")] == (25, 15, "60.0%")
    assert level[(TOTAL, "2025")] == (35, 15, "42.9%")
    assert ("North High", "2026") not in level
    # remediation (two years out: the class of 2024 only), from the agency's events
    math = _cells(report.measures["remedial_math"].table, "high_school", "class_of")
    assert math[("North High", "2024")] == (24, 12, "50.0%")
    # six years have passed for no class: no degree figures, but a release
    degree = report.measures["degree_within_6"]
    assert degree.release is not None and degree.table is not None
    assert degree.table.num_rows == 0
    long = report.table()
    assert set(long.column("measure").to_pylist()) >= {"enrolled_first_fall"}
    assert long.column_names[:4] == ["measure", "label", "high_school", "class_of"]
    # the community's rates by class, as numbers for a chart (no text parsed)
    going = report.going_by_class()
    assert going is not None and going.classes == ("2024", "2025", "2026")
    first_fall = next(s for s in going.series if s.measure == "enrolled_first_fall")
    assert first_fall.values == (1.0, 35 / 60, 0.0)
    first_level = next(s for s in going.series if s.measure == "first_level")
    assert first_level.values == (0.0, 15 / 35, None)  # 2026: year one not over


def test_the_ledger_records_one_release_per_measure(wh: Warehouse) -> None:
    chosen = ["enrolled_first_fall", "persisted", "first_level"]
    report = college_report(
        _as(wh, "steward", "college_outcomes"),
        as_of=TODAY,
        measures=chosen,
        by=("high_school_id", "class_of"),
    )
    ids = [m.release_id for m in report.measures.values()]
    assert len(set(ids)) == 3 and None not in ids
    rows = wh._con.execute(
        "SELECT release_id, definition, purpose FROM gov.release "
        "WHERE list_contains(?, release_id) ORDER BY release_id",
        [ids],
    ).fetchall()
    measures = [json.loads(d)["measure"] for _, d, _ in rows]
    assert measures == [f"college:{m}" for m in chosen]
    assert {p for *_, p in rows} == {"college_outcomes"}
    definition = json.loads(rows[0][1])
    assert definition["numerator"] == {"enrolled_first_fall": ["yes"]}
    assert definition["by"] == ["high_school_id", "class_of"]
    # by id, the schools' ids show
    table = report.measures["enrolled_first_fall"].table
    assert table is not None
    assert set(table.column("high_school_id").to_pylist()) == {"HS1", "HS2", TOTAL}


def test_demographic_packet_suppresses_small_groups(wh: Warehouse) -> None:
    # the class of 2025: 20 of 30 women enrolled the first fall (1-10, 101-110),
    # 15 of 28 men (11-25); neither of the 2 who gave no sex
    report = college_report(
        _as(wh, "steward", "college_outcomes"),
        as_of=TODAY,
        by=("class_of", "sex"),
        measures=["enrolled_first_fall"],
        where={"class_of": [2025]},
    )
    table = report.measures["enrolled_first_fall"].table
    assert table is not None
    cells = _cells(table, "class_of", "sex")
    assert cells[("2025", "Not Selected")] == (None, None, "*")
    women, men = cells[("2025", "Female")], cells[("2025", "Male")]
    everyone = cells[("2025", TOTAL)]
    # the 2 cannot be worked out from the other groups and the total
    assert None in (women[0], men[0], everyone[0])
    assert women[0] == 30 or men[0] == 28  # the rest still shows
    notes = {r["note"] for r in table.to_pylist() if r["sex"] == "Not Selected"}
    assert notes == {"suppressed"}


def test_a_district_gets_its_own_schools_and_remediation_is_left_out(
    wh: Warehouse,
) -> None:
    report = college_report(_as(wh, "d1.analyst", "college_outcomes"), as_of=TODAY)
    fall = _cells(
        report.measures["enrolled_first_fall"].table, "high_school", "class_of"
    )
    # South High's graduates are d2's to share, and not for this purpose
    assert {k[0] for k in fall} == {"North High", TOTAL}
    assert fall[("North High", "2025")] == (40, 25, "62.5%")
    assert fall[(TOTAL, TOTAL)] == (82, 49, "59.8%")
    # the agency's events (remediation, degrees) are the steward's only
    for m in ("remedial_ela", "remedial_math", "degree_within_6", "degree_level"):
        assert report.measures[m].release is None
        assert "postsecondary_event" in report.measures[m].left_out
    assert "a1" in report.left_out["postsecondary_event"]


def test_a_reader_without_a_grant_is_refused(wh: Warehouse) -> None:
    with pytest.raises(PolicyDenied):
        college_report(_as(wh, "f1.viewer", "college_outcomes"), as_of=TODAY)
    assert wh.audit.entries()[-1]["decision"] == "deny"
    # under shared measurement, the agency gives a district nothing
    with pytest.raises(PolicyDenied):
        college_report(_as(wh, "d1.analyst", "shared_measurement"), as_of=TODAY)


def test_bad_requests_are_user_errors(wh: Warehouse) -> None:
    access = _as(wh, "steward", "college_outcomes")
    with pytest.raises(UserError, match="cannot cut"):
        college_report(access, as_of=TODAY, by=("student_local_id",))
    with pytest.raises(UserError, match="unknown college measure"):
        college_report(access, as_of=TODAY, measures=["dropped_out"])


# --- the scorecard ------------------------------------------------------------------


def test_scorecard_each_district_beside_the_community(wh: Warehouse) -> None:
    card = scorecard(wh, _as(wh, "steward", "shared_measurement"), years=[2025, 2026])
    assert card.districts == {"d1": "District One", "d2": "District Two"}
    chronic = card.indicator("chronic_absence")
    assert chronic.status == RELEASED and "90%" in chronic.definition
    # d1 12 of 32 (block A); d2 10 of 20 and the mover (88% across both) = 11 of
    # 21; the community 23 of 53: the mover once, not 54 records
    chronic_cells = _cells(chronic.table, "school_year", "district")
    assert chronic_cells[("2026", "d1")] == (32, 12, "37.5%")
    assert chronic_cells[("2026", "d2")] == (21, 11, "52.4%")
    assert chronic_cells[("2026", TOTAL)] == (53, 23, "43.4%")
    assert chronic.cell(2026) == {
        "school_year": "2026",
        "district": TOTAL,
        "persons": 53,
        "matching": 23,
        "rate": "43.4%",
        "rate_value": 23 / 53,
        "note": "",
    }
    # on track: first-time ninth graders (blocks A and B; the repeaters 231-232
    # are not first-time); in d2 the mover's two terms and 3 + 3 credits add up
    on_track = _cells(card.indicator("on_track_9").table, "school_year", "district")
    assert on_track[("2026", "d1")] == (22, 12, "54.5%")
    assert on_track[("2026", "d2")] == (21, 11, "52.4%")
    assert on_track[("2026", TOTAL)] == (43, 23, "53.5%")
    # four-year graduation, class of 2026: transfers out left out; the mover in d2
    grad = _cells(card.indicator("graduation_4yr").table, "school_year", "district")
    assert grad[("2026", "d1")] == (31, 18, "58.1%")
    assert grad[("2026", "d2")] == (21, 11, "52.4%")
    assert grad[("2026", TOTAL)] == (52, 29, "55.8%")
    # college, by class and the high school's district
    fall = _cells(card.indicator("college_first_fall").table, "school_year", "district")
    assert fall[("2025", "d1")] == (40, 25, "62.5%")
    assert fall[("2025", TOTAL)] == (60, 35, "58.3%")
    assert ("2024", "d1") not in fall  # outside the years asked
    persist = _cells(
        card.indicator("college_persistence").table, "school_year", "district"
    )
    assert persist[("2025", TOTAL)] == (35, 15, "42.9%")
    # no kindergarten-entry assessment: no data, not a failure
    k = card.indicator("k_readiness")
    assert (k.status, k.table is not None and k.table.num_rows) == (NO_DATA, 0)
    long = card.table()
    assert "community" in long.column("district_name").to_pylist()
    assert "no data" in long.column("status").to_pylist()
    # the grid a door renders: the community first, then each district by name
    grid = card.grid("chronic_absence")
    assert grid is not None and grid.years == ("2026",)
    assert [(r.district, r.name) for r in grid.rows] == [
        (TOTAL, "community"),
        ("d1", "District One"),
        ("d2", "District Two"),
    ]
    assert grid.rows[0].cells == (GridCell("43.4%", 23 / 53),)
    fall_grid = card.grid("college_first_fall")
    assert fall_grid is not None and "2025" in fall_grid.years
    d1 = next(r for r in fall_grid.rows if r.district == "d1")
    assert d1.cells[fall_grid.years.index("2025")] == GridCell("62.5%", 25 / 40)


def test_a_district_reads_the_scorecard_and_is_refused_college_figures(
    wh: Warehouse,
) -> None:
    card = scorecard(wh, _as(wh, "d1.analyst", "shared_measurement"), years=[2026])
    # d2 shares its early-warning values with d1 for shared measurement
    chronic = card.indicator("chronic_absence").cell(2026) or {}
    assert (chronic["persons"], chronic["matching"]) == (53, 23)
    for code in ("college_first_fall", "college_persistence"):
        result = card.indicator(code)
        assert result.status == REFUSED and "postsecondary_enrollment" in result.note
    assert card.indicator("graduation_4yr").status == RELEASED


def test_kindergarten_readiness_when_there_is_data(wh: Warehouse) -> None:
    kids = {("d1", f"y{n}"): n for n in _r(901, 922)}
    insert_persons(wh, kids, NOW)
    rows = [
        {
            "provider_partner_id": "d1",
            "student_local_id": f"y{n}",
            "assessment_identifier": "KRA",
            "academic_subject": None,
            "administration_date": D(2025, 9, 15),
            "school_year": 2026,
            "when_assessed_grade_level": "Kindergarten",
            "performance_level": "Demonstrating Readiness"
            if n <= 912
            else "Approaching Readiness",
            "submission_id": 1,
        }
        for n in _r(901, 922)
    ]
    # a kindergarten benchmark later in the year is no entry assessment
    rows.append({**rows[-1], "assessment_identifier": "KINDERGARTEN-MATH-BENCHMARK",
                 "administration_date": D(2026, 1, 15),
                 "performance_level": "Ready"})  # fmt: skip
    _insert(wh, "analytic.student_assessment", rows)
    card = scorecard(
        wh,
        _as(wh, "steward", "shared_measurement"),
        years=[2026],
        indicators=["k_readiness"],
    )
    k = card.indicator("k_readiness")
    assert k.status == RELEASED
    assert _cells(k.table, "school_year", "district")[("2026", "d1")] == (
        22,
        12,
        "54.5%",
    )
    with pytest.raises(UserError):
        card.indicator("chronic_absence")


# --- what we get --------------------------------------------------------------------


def test_what_a_district_gets(wh: Warehouse) -> None:
    found = {
        f.topic: f
        for f in what_we_get(wh, _as(wh, "d1.analyst", "shared_measurement"), "d1")
    }
    movers = found["moves between districts"]
    assert movers.refused is None and len(movers.release_ids) == 1
    assert "enrolled 52 students; 10 of them came from another" in movers.text
    assert "and 10 left for one" in movers.text
    chronic = found["chronic absence beside the community"]
    assert "37.5% (12 of 32) of District One's students" in chronic.text
    assert "43.4% (23 of 53) across the community" in chronic.text
    # the club and the agency share nothing with d1 for shared measurement
    assert found["students served by community programs"].refused
    assert "cannot be shown" in found["graduates' college enrollment"].text
    # under the purposes they do share for
    findings = what_we_get(wh, _as(wh, "d1.analyst", "early_warning"), "d1")
    movers, served, _college, chronic = findings
    assert movers.refused and not movers.release_ids  # d2 shares no enrollment
    assert served.refused is None
    assert "42.3% (22 of 52) of District One's students" in served.text
    assert "no community figure" in chronic.text
    published = wh.audit.entries()[-1]
    assert (published["action"], published["what"]) == ("publish", "what we get: d1")
    college = what_we_get(wh, _as(wh, "d1.analyst", "college_outcomes"), "d1")[2]
    assert "class of 2025: 62.5% (25 of 40)" in college.text
    assert "class of 2024: 100.0% (24 of 24)" in college.text


def test_what_a_community_organization_and_the_college_agency_get(
    wh: Warehouse,
) -> None:
    club = what_we_get(wh, _as(wh, "c1.analyst", "program_evaluation"), "c1")
    matched, attendance, risk = club
    assert "68.8% (22 of 32) of Mentoring Club's participants" in matched.text
    assert "54.5% (12 of 22) of Mentoring Club's participants" in attendance.text
    assert "beside 35.5% (11 of 31) of students it did not serve" in attendance.text
    assert "and 43.4% (23 of 53) across the community" in attendance.text
    # blocks A (chronic) and B (off track) are all on the watch tier
    assert "100.0% (22 of 22) of Mentoring Club's" in risk.text
    assert "beside 67.7% (21 of 31)" in risk.text and "81.1% (43 of 53)" in risk.text
    agency = what_we_get(wh, _as(wh, "a1.analyst", "college_outcomes"), "a1")
    (feeders,) = agency
    assert "Of the 71 students in College Agency's college records" in feeders.text
    assert "North High 49, South High 10; 12 have no community" in feeders.text
    # every number came through the gate, under the reader's purpose
    releases = wh._con.execute(
        "SELECT DISTINCT purpose, partner_id FROM gov.release"
    ).fetchall()
    assert set(releases) == {
        ("program_evaluation", "c1"),
        ("college_outcomes", "a1"),
    }


def test_a_funder_gets_the_community_figure(wh: Warehouse) -> None:
    (finding,) = what_we_get(wh, _as(wh, "f1.viewer", "shared_measurement"), "f1")
    # no agreement gives the funder early-warning values: said plainly
    assert finding.refused and "cannot be shown" in finding.text


# --- the SQL ------------------------------------------------------------------------


def test_sql_builders_take_values_as_parameters_and_translate_to_spark() -> None:
    d = default_definitions()
    snaps = [Snapshot(2026, D(2026, 6, 30), 1, 0)]
    for sql, params in (
        graduation_sql(TODAY, start_month=7),
        k_readiness_sql(),
        on_track_sql(d, snaps),
    ):
        assert sql.count("?") == len(params)
        assert "Transferred" not in sql and "Demonstrating" not in sql
        (spark,) = sqlglot.transpile(sql, read="duckdb", write="spark")
        assert spark


@pytest.mark.slow
def test_the_commands_print_released_tables_and_write_the_chart(
    built: Path, tmp_path: Path
) -> None:
    """`outcomes college`, `scorecard` and `what-we-get` as a person runs them."""
    from typer.testing import CliRunner

    from backbone.cli import app
    from tests.signin import steward_env

    path = tmp_path / "wh"
    shutil.copytree(built, path)
    with Warehouse.open(path, clock=lambda: NOW) as w:
        env = {**steward_env(w, "b0"), "COLUMNS": "250"}
    runner = CliRunner()
    college_args = [
        "outcomes",
        "college",
        "--by",
        "class_of",
        "--purpose",
        "shared_measurement",
        "--out",
        str(tmp_path / "charts"),
        "-w",
        str(path),
    ]
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "college-going.png").write_bytes(b"an earlier chart")
    refused = runner.invoke(app, college_args, env=env)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert (
        tmp_path / "charts" / "college-going.png"
    ).read_bytes() == b"an earlier chart"
    college = runner.invoke(app, [*college_args, "--force"], env=env)
    assert college.exit_code == 0, college.output
    assert "Enrolled" in college.output and "Release" in college.output
    assert "rate_value" not in college.output  # a person reads the coded text
    assert (tmp_path / "charts" / "college-going.png").exists()
    card = runner.invoke(app, ["outcomes", "scorecard", "-w", str(path)], env=env)
    assert card.exit_code == 0, card.output
    assert "community" in card.output
    got = runner.invoke(
        app, ["outcomes", "what-we-get", "d1", "-w", str(path)], env=env
    )
    assert got.exit_code == 0, got.output
    assert "What d1 gets" in got.output
    wrong = runner.invoke(
        app,
        ["outcomes", "college", "--by", "shoe_size", "-w", str(path)],
        env=env,
    )
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
