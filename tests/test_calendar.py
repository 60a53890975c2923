"""The school calendar: Python and SQL agree for every start month, and a school
year is a contiguous run of days named by the calendar year it ends in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbone.ingest.rules import ranges
from backbone.model.calendar import (
    ON_TIME_GRACE_MONTHS,
    check_start_month,
    on_time_deadline,
    on_time_deadline_sql,
    school_year_bounds,
    school_year_first_day_sql,
    school_year_label,
    school_year_label_sql,
    school_year_last_day_sql,
    school_year_of,
    school_year_sql,
)

MONTHS = range(1, 13)
DAYS = st.dates(min_value=date(1000, 1, 1), max_value=date(9998, 12, 31))


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as c:
        yield c


@pytest.mark.parametrize("start", MONTHS)
@settings(max_examples=40, deadline=None)
@given(days=st.lists(DAYS, min_size=1, max_size=40))
def test_python_and_sql_agree(
    con: duckdb.DuckDBPyConnection, start: int, days: list[date]
) -> None:
    rows = con.execute(
        f"""
        SELECT d, {school_year_sql("d", start)} AS y,
               {school_year_sql("CAST(d AS TIMESTAMP) + INTERVAL 23 HOUR", start)} AS ts_y,
               {school_year_first_day_sql(school_year_sql("d", start), start)} AS first,
               {school_year_last_day_sql(school_year_sql("d", start), start)} AS last,
               {school_year_label_sql(school_year_sql("d", start), start)} AS label
        FROM unnest(CAST(? AS DATE[])) t(d)
        """,
        [days],
    ).fetchall()
    for day, year, ts_year, first, last, label in rows:
        assert year == ts_year == school_year_of(day, start)
        assert (first, last) == school_year_bounds(year, start)
        assert label == school_year_label(year, start)


@pytest.mark.parametrize("start", MONTHS)
@given(day=DAYS)
def test_a_day_lies_within_its_school_year(start: int, day: date) -> None:
    first, last = school_year_bounds(school_year_of(day, start), start)
    assert first <= day <= last
    assert first.day == 1 and first.month == start
    # named by the calendar year the school year ends in
    assert last.year == school_year_of(day, start)


@pytest.mark.parametrize("start", MONTHS)
@given(year=st.integers(min_value=1001, max_value=9998))
def test_consecutive_school_years_are_adjacent(start: int, year: int) -> None:
    first, last = school_year_bounds(year, start)
    next_first, _ = school_year_bounds(year + 1, start)
    assert last + timedelta(days=1) == next_first
    assert (last - first).days + 1 in (365, 366)
    assert school_year_of(first, start) == school_year_of(last, start) == year
    assert school_year_of(first - timedelta(days=1), start) == year - 1


@pytest.mark.parametrize("start", MONTHS)
@given(year=st.integers(min_value=1001, max_value=9998))
def test_label(start: int, year: int) -> None:
    label = school_year_label(year, start)
    if start == 1:
        assert label == str(year)
    else:
        assert re.fullmatch(r"\d{4}-\d{2}", label)
        assert label == f"{year - 1}-{str(year)[-2:]}"


@pytest.mark.parametrize(
    ("day", "start", "year"),
    [
        (date(2025, 6, 30), 7, 2025),
        (date(2025, 7, 1), 7, 2026),
        (date(2025, 8, 1), 7, 2026),
        (date(2025, 12, 31), 1, 2025),
        (date(2025, 1, 1), 1, 2025),
        (date(2025, 8, 31), 9, 2025),
        (date(2025, 9, 1), 9, 2026),
        (date(2025, 11, 30), 12, 2025),
        (date(2025, 12, 1), 12, 2026),
        (date(2024, 2, 29), 3, 2024),
    ],
)
def test_hand_worked_days(day: date, start: int, year: int) -> None:
    assert school_year_of(day, start) == year


@pytest.mark.parametrize("start", MONTHS)
@settings(max_examples=30, deadline=None)
@given(years=st.lists(st.integers(min_value=1001, max_value=9990), min_size=1))
def test_on_time_deadline_is_the_summer_after_the_class_year(
    con: duckdb.DuckDBPyConnection, start: int, years: list[int]
) -> None:
    rows = con.execute(
        f"SELECT y, {on_time_deadline_sql('y', start)} "
        "FROM unnest(CAST(? AS INTEGER[])) t(y)",
        [years],
    ).fetchall()
    for year, in_sql in rows:
        deadline = on_time_deadline(year, start)
        assert in_sql == deadline
        # after the class's last school year, within the grace months, and the
        # last day of a month
        _, last = school_year_bounds(year, start)
        assert last < deadline <= last + timedelta(days=31 * ON_TIME_GRACE_MONTHS)
        assert (deadline + timedelta(days=1)).day == 1


def test_hand_worked_on_time_deadlines() -> None:
    # July start: summer graduates through Aug 31 of the class year count
    assert on_time_deadline(2026, 7) == date(2026, 8, 31)
    # a calendar-year school year: through the end of February after it
    assert on_time_deadline(2025, 1) == date(2026, 2, 28)
    assert on_time_deadline(2024, 9) == date(2024, 10, 31)


def test_hand_worked_bounds_and_labels() -> None:
    assert school_year_bounds(2026, 7) == (date(2025, 7, 1), date(2026, 6, 30))
    assert school_year_label(2026, 7) == "2025-26"
    assert school_year_label(2000, 7) == "1999-00"
    assert school_year_bounds(2025, 1) == (date(2025, 1, 1), date(2025, 12, 31))
    assert school_year_label(2025, 1) == "2025"
    assert school_year_bounds(2024, 3) == (date(2023, 3, 1), date(2024, 2, 29))


def test_sql_on_null_and_timestamps(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        f"SELECT {school_year_sql('NULL::DATE', 7)}, "
        f"{school_year_sql('$1', 7)}, {school_year_last_day_sql('NULL', 7)}",
        [datetime(2025, 7, 1, 0, 0, 1)],
    ).fetchone()
    assert row == (None, 2026, None)


@pytest.mark.parametrize("bad", [0, 13, -1, "7", "7) OR (1=1", 7.0, True, None])
def test_start_month_is_a_month_number(bad: object) -> None:
    with pytest.raises(ValueError, match="start month"):
        check_start_month(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start month"):
        school_year_sql("d", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "day", "school_year", "inside"),
    [
        (7, date(2025, 8, 15), 2026, True),
        (7, date(2025, 6, 30), 2026, False),
        (9, date(2025, 8, 15), 2026, False),  # still 2024-25's summer
        (9, date(2025, 8, 15), 2025, True),
        (1, date(2025, 12, 31), 2025, True),
        (1, date(2025, 12, 31), 2026, False),
    ],
)
def test_attendance_must_lie_in_its_school_year(
    con: duckdb.DuckDBPyConnection,
    start: int,
    day: date,
    school_year: int,
    inside: bool,
) -> None:
    rule = ranges("attendance_event", start)["event_date"]
    holds = con.execute(
        f"SELECT {rule.condition} FROM (SELECT ?::DATE AS event_date, "
        "?::SMALLINT AS school_year)",
        [day, school_year],
    ).fetchone()
    assert holds == (inside,)
