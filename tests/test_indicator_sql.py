"""The indicator SQL on the data partners really send: repeated spells, absences
on days a student was not enrolled, two events on one day, schools without a
calendar, term totals without absence counts, a mover's two terms, incident ids
reused by two schools. Each answer is worked out in the test's comment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from backbone import Warehouse
from backbone.governance.access import locked_connection
from backbone.measures.definitions import default_definitions
from backbone.measures.indicator_sql import components_sql, person_indicators_sql
from tests.early_warning_fixtures import calendar
from tests.policy_fixtures import _insert

START = date(2025, 8, 25)  # a Monday
CUT = date(2026, 6, 30)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.init(tmp_path / "wh") as w:
        rows = calendar(("S1", "S2"))  # 9 instructional days each
        _insert(w, "ref.calendar_date", rows)
        yield w


def _enrol(
    local: str,
    school: str,
    entry: date,
    exit_: date | None = None,
    provider: str = "d1",
    grade: str = "Ninth grade",
) -> dict[str, Any]:
    return {
        "provider_partner_id": provider,
        "student_local_id": local,
        "school_id": school,
        "entry_date": entry,
        "entry_grade_level": grade,
        "school_year": 2026,
        "exit_withdraw_date": exit_,
        "submission_id": 1,
    }


def _absence(
    local: str, day: str, duration: float = 1.0, category: str = "Unexcused Absence"
) -> dict[str, Any]:
    return {
        "provider_partner_id": "d1",
        "student_local_id": local,
        "school_id": "S1",
        "school_year": 2026,
        "event_date": date.fromisoformat(day),
        "attendance_event_category": category,
        "event_duration": duration,
        "submission_id": 1,
    }


def _components(wh: Warehouse) -> dict[str, dict[str, Any]]:
    sql, params = components_sql(
        default_definitions(),
        version=1,
        school_year=2026,
        start_month=7,
        year_begin=date(2025, 7, 1),
        cutoff=CUT,
        year_end=CUT,
    )
    table = wh._con.sql(sql, params=params).to_arrow_table()
    return {
        f"{r['provider_partner_id']}:{r['student_local_id']}": r
        for r in table.to_pylist()
    }


def _persons(
    components: dict[str, dict[str, Any]], person_of: dict[str, str]
) -> dict[str, dict[str, Any]]:
    rows = [
        {
            **r,
            "unit": person_of.get(key, key),
            "person_id": None,
            "student_local_id": None,
        }
        for key, r in components.items()
    ]
    con = locked_connection({"components": pa.Table.from_pylist(rows)})
    try:
        out = con.sql(person_indicators_sql(default_definitions())).to_arrow_table()
    finally:
        con.close()
    return {r["unit"]: r for r in out.to_pylist()}


def test_repeated_spells_count_each_day_once(wh: Warehouse) -> None:
    # the same spell sent twice, and one overlapping it: still 9 instructional days
    _insert(
        wh,
        "analytic.enrollment",
        [
            _enrol("a", "S1", START),
            _enrol("a", "S1", START + timedelta(days=3)),
        ],
    )
    wh._con.execute(
        "INSERT INTO analytic.enrollment (provider_partner_id, student_local_id, "
        "school_id, entry_date, entry_grade_level, school_year, submission_id) "
        "VALUES ('d1', 'a', 'S1', DATE '2025-08-25', 'Ninth grade', 2026, 2)"
    )
    assert _components(wh)["d1:a"]["days_enrolled"] == 9


def test_absences_count_only_on_enrolled_instructional_days_once_a_day(
    wh: Warehouse,
) -> None:
    # enrolled 08-25 .. 08-29 (5 days); absent 08-26 twice (one day), 08-27 half,
    # 08-30 and 09-02 (after leaving): 1.5 days absent
    _insert(wh, "analytic.enrollment", [_enrol("a", "S1", START, date(2025, 8, 29))])
    _insert(
        wh,
        "analytic.attendance_event",
        [
            _absence("a", "2025-08-26"),
            _absence("a", "2025-08-26", category="Excused Absence"),
            _absence("a", "2025-08-27", 0.5),
            _absence("a", "2025-08-30"),
            _absence("a", "2025-09-02"),
            _absence("a", "2025-08-28", category="Tardy"),
        ],
    )
    row = _components(wh)["d1:a"]
    assert (row["days_enrolled"], row["days_absent"]) == (5, 1.5)


def test_a_school_without_a_calendar_leaves_the_rate_unknown(wh: Warehouse) -> None:
    # 'm' has 3 absences at S9 (no calendar), then 4 clean days at S1 from 09-02:
    # not 25% but unknown; 'n' at S9 only: unknown, and never flagged for it
    _insert(
        wh,
        "analytic.enrollment",
        [
            _enrol("m", "S9", START, date(2025, 8, 29)),
            _enrol("m", "S1", date(2025, 9, 2)),
            _enrol("n", "S9", START),
        ],
    )
    _insert(
        wh,
        "analytic.attendance_event",
        [
            {**_absence("m", d), "school_id": "S9"}
            for d in ("2025-08-26", "2025-08-27", "2025-08-28")
        ],
    )
    persons = _persons(_components(wh), {})
    for key in ("d1:m", "d1:n"):
        assert persons[key]["days_enrolled"] is None
        assert persons[key]["attendance_rate"] is None
        assert persons[key]["attendance_level"] == 0


def test_term_totals_without_absence_counts_use_days_present(wh: Warehouse) -> None:
    # fall 90 enrolled, 81 present (9 absent); spring not ended by an in-year cutoff
    _insert(
        wh,
        "analytic.attendance_period",
        [
            {
                "provider_partner_id": "d5",
                "student_local_id": "t",
                "school_id": "P1",
                "school_year": 2026,
                "session_name": "Fall Semester",
                "period_begin_date": date(2025, 8, 25),
                "period_end_date": date(2026, 1, 20),
                "days_enrolled": 90,
                "days_present": 81,
                "submission_id": 1,
            },
            {
                "provider_partner_id": "d5",
                "student_local_id": "t",
                "school_id": "P1",
                "school_year": 2026,
                "session_name": "Spring Semester",
                "period_begin_date": date(2026, 1, 21),
                "period_end_date": date(2026, 6, 5),
                "days_enrolled": 90,
                "days_present": 90,
                "submission_id": 1,
            },
        ],
    )
    row = _components(wh)["d5:t"]
    assert (row["days_enrolled"], row["days_absent"]) == (180, 9)
    sql, params = components_sql(
        default_definitions(),
        version=1,
        school_year=2026,
        start_month=7,
        year_begin=date(2025, 7, 1),
        cutoff=date(2026, 3, 1),
        year_end=CUT,
    )
    early = {
        r["student_local_id"]: r
        for r in wh._con.sql(sql, params=params).to_arrow_table().to_pylist()
    }
    assert (early["t"]["days_enrolled"], early["t"]["days_absent"]) == (90, 9)


def _course(
    provider: str, local: str, term: str, subject: str, mark: float, earned: float
) -> dict[str, Any]:
    return {
        "provider_partner_id": provider,
        "student_local_id": local,
        "school_id": "S1",
        "school_year": 2026,
        "term": term,
        "course_code": f"{subject[:3]}-{term[:2]}",
        "academic_subject": subject,
        "earned_credits": earned,
        "final_numeric_grade_earned": mark,
        "submission_id": 1,
        "final_letter_grade_earned": "F" if earned == 0 else "B",
    }


def test_a_movers_two_terms_make_a_full_ninth_grade_year(wh: Warehouse) -> None:
    # fall in d1 (2.0 credits), spring in d2 (2.0 credits): two terms, 4 < 5
    # credits → off track; neither district's half alone would say so
    _insert(
        wh,
        "analytic.enrollment",
        [
            _enrol("v", "S1", START, date(2025, 8, 29)),
            _enrol("w", "S2", date(2025, 9, 2), provider="d2"),
        ],
    )
    _insert(
        wh,
        "analytic.course_transcript",
        [
            *(
                _course("d1", "v", "Fall Semester", s, 80, 0.5)
                for s in (
                    "English Language Arts",
                    "Mathematics",
                    "Science",
                    "Social Studies",
                )
            ),
            *(
                _course("d2", "w", "Spring Semester", s, 80, 0.5)
                for s in (
                    "English Language Arts",
                    "Mathematics",
                    "Science",
                    "Social Studies",
                )
            ),
        ],
    )
    persons = _persons(_components(wh), {"d1:v": "mover", "d2:w": "mover"})
    mover = persons["mover"]
    assert (mover["terms_completed"], mover["credits_earned"]) == (2, 4.0)
    assert mover["on_track_9"] is False


def test_incident_ids_are_per_school(wh: Warehouse) -> None:
    # two schools both number their incidents from 1: two incidents, not one
    _insert(wh, "analytic.enrollment", [_enrol("i", "S1", START)])
    _insert(
        wh,
        "analytic.discipline_incident",
        [
            {
                "provider_partner_id": "d1",
                "student_local_id": "i",
                "school_id": school,
                "incident_identifier": "1",
                "incident_date": date(2025, 9, 3),
                "behavior": "School Code of Conduct",
                "participation_code": "Perpetrator",
                "submission_id": 1,
            }
            for school in ("S1", "S2")
        ],
    )
    assert _components(wh)["d1:i"]["conduct_incidents"] == 2


def test_values_come_only_from_facts_the_provider_shares(wh: Warehouse) -> None:
    # d1's agreement shares enrollment but not discipline: its suspension of 'a'
    # never reaches the indicators (unknown, not 0: no discipline data is shared);
    # 'b' of d9, which shares nothing, gets no row
    _insert(
        wh,
        "analytic.enrollment",
        [_enrol("a", "S1", START), _enrol("b", "S1", START, provider="d9")],
    )
    _insert(
        wh,
        "analytic.discipline_action",
        [
            {
                "provider_partner_id": "d1",
                "student_local_id": "a",
                "discipline_action_identifier": "X",
                "discipline_date": date(2025, 9, 3),
                "discipline": "Out of School Suspension",
                "discipline_action_length": 3.0,
                "submission_id": 1,
            },
        ],
    )
    sql, params = components_sql(
        default_definitions(),
        version=1,
        school_year=2026,
        start_month=7,
        year_begin=date(2025, 7, 1),
        cutoff=CUT,
        year_end=CUT,
        providers=["d1"],
        sources={"enrollment": ["d1"]},
    )
    rows = wh._con.sql(sql, params=params).to_arrow_table().to_pylist()
    assert [
        (r["student_local_id"], r["days_enrolled"], r["suspension_days"]) for r in rows
    ] == [("a", 9, None)]
    everything, params = components_sql(
        default_definitions(),
        version=1,
        school_year=2026,
        start_month=7,
        year_begin=date(2025, 7, 1),
        cutoff=CUT,
        year_end=CUT,
    )
    shared = {
        r["student_local_id"]: r
        for r in wh._con.sql(everything, params=params).to_arrow_table().to_pylist()
    }
    assert shared["a"]["suspension_days"] == 3
