"""The school calendar: which school year a day belongs to, and a year's bounds.

A school year starts on the first day of ``calendar.school_year_start_month`` and
is named, as Ed-Fi names it, by the calendar year it ends in: with July as the start
month, 2025-07-01 to 2026-06-30 is school year 2026, shown as "2025-26". With
January it is one calendar year: 2025-01-01 to 2025-12-31 is school year 2025,
shown as "2025".

Every date-to-school-year rule of Backbone, in Python or in SQL, comes from here,
so the two can never disagree (``tests/test_calendar.py`` checks it for every start
month). The start month is a validated whole number inlined into the SQL, never
text from a user.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = [
    "ON_TIME_GRACE_MONTHS",
    "check_start_month",
    "in_earlier_calendar_year",
    "on_time_deadline",
    "on_time_deadline_sql",
    "school_year_bounds",
    "school_year_first_day_sql",
    "school_year_label",
    "school_year_label_sql",
    "school_year_last_day_sql",
    "school_year_of",
    "school_year_sql",
]


def check_start_month(start_month: int) -> int:
    """``start_month`` as a month number, or ValueError: it is inlined into SQL."""
    if isinstance(start_month, bool) or not isinstance(start_month, int):
        raise ValueError(
            f"a school year's start month is a whole number, not {start_month!r}"
        )
    if not 1 <= start_month <= 12:
        raise ValueError(f"a school year's start month is 1 to 12, not {start_month}")
    return start_month


def in_earlier_calendar_year(month: int, start_month: int) -> bool:
    """Whether days in ``month`` fall in the calendar year before the one their
    school year is named by (the months from the start month on, unless the school
    year is one calendar year)."""
    start = check_start_month(start_month)
    return start > 1 and month >= start


def school_year_of(day: date, start_month: int) -> int:
    """The school year ``day`` falls in, named by the calendar year it ends in."""
    return day.year + in_earlier_calendar_year(day.month, start_month)


def school_year_bounds(school_year: int, start_month: int) -> tuple[date, date]:
    """The first and last day of ``school_year``."""
    start = check_start_month(start_month)
    if start == 1:
        return date(school_year, 1, 1), date(school_year, 12, 31)
    return (
        date(school_year - 1, start, 1),
        date(school_year, start, 1) - timedelta(days=1),
    )


ON_TIME_GRACE_MONTHS = 2
"""A class graduates on time by the end of its last school year or in the months
right after it: the summer, whose graduates the federal adjusted cohort rate counts.
With a July start the class of 2026 is on time through 2026-08-31."""


def on_time_deadline(class_year: int, start_month: int) -> date:
    """The last day a student of the class of ``class_year`` (the school year they
    are expected to finish) can graduate and count as on time."""
    first_after = school_year_bounds(class_year + 1, start_month)[0]
    month = first_after.month - 1 + ON_TIME_GRACE_MONTHS
    year = first_after.year + month // 12
    return date(year, month % 12 + 1, 1) - timedelta(days=1)


def school_year_label(school_year: int, start_month: int) -> str:
    """How people write the year: "2025-26" for 2026, or "2026" when a school
    year is one calendar year (start month January)."""
    if check_start_month(start_month) == 1:
        return str(school_year)
    return f"{school_year - 1}-{school_year % 100:02d}"


# --- the same rules in SQL (DuckDB) --------------------------------------------------


def school_year_sql(date_expr: str, start_month: int) -> str:
    """SQL for the school year (INTEGER) of the DATE or TIMESTAMP ``date_expr``
    (an expression of the caller's making; NULL stays NULL). The expression is
    repeated: pass a column or a numbered parameter (``$1``), not ``?``."""
    start = check_start_month(start_month)
    if start == 1:
        return f"CAST(year({date_expr}) AS INTEGER)"
    return f"CAST(year({date_expr}) + CAST(month({date_expr}) >= {start} AS INTEGER) AS INTEGER)"


def school_year_first_day_sql(year_expr: str, start_month: int) -> str:
    """SQL for the first day (DATE) of the school year ``year_expr``."""
    start = check_start_month(start_month)
    year = f"CAST({year_expr} AS INTEGER)"
    return f"make_date({year}{' - 1' if start > 1 else ''}, {start}, 1)"


def school_year_last_day_sql(year_expr: str, start_month: int) -> str:
    """SQL for the last day (DATE) of the school year ``year_expr``."""
    start = check_start_month(start_month)
    year = f"CAST({year_expr} AS INTEGER)"
    if start == 1:
        return f"make_date({year}, 12, 31)"
    return f"CAST(make_date({year}, {start}, 1) - INTERVAL 1 DAY AS DATE)"


def school_year_label_sql(year_expr: str, start_month: int) -> str:
    """SQL for :func:`school_year_label` (VARCHAR) of the school year ``year_expr``."""
    y = f"CAST({year_expr} AS INTEGER)"
    if check_start_month(start_month) == 1:
        return f"CAST({y} AS VARCHAR)"
    return (
        f"CAST({y} - 1 AS VARCHAR) || '-' || lpad(CAST({y} % 100 AS VARCHAR), 2, '0')"
    )


def on_time_deadline_sql(year_expr: str, start_month: int) -> str:
    """SQL for :func:`on_time_deadline` (DATE) of the class year ``year_expr``
    (repeated once: pass a column or a numbered parameter)."""
    first_after = school_year_first_day_sql(f"({year_expr}) + 1", start_month)
    return (
        f"CAST({first_after} + INTERVAL {ON_TIME_GRACE_MONTHS} MONTH "
        "- INTERVAL 1 DAY AS DATE)"
    )
