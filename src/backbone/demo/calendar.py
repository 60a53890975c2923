"""Instructional calendars: 180 weekdays a year, with the usual breaks."""

from __future__ import annotations

import numpy as np

__all__ = ["INSTRUCTIONAL_DAYS", "SCHOOL_YEAR_START_MONTH", "instructional_calendar"]

INSTRUCTIONAL_DAYS = 180
SCHOOL_YEAR_START_MONTH = 7
"""The community's school years run July to June (the warehouse setting's default):
its files, mappings and initiatives are written for that calendar."""


def instructional_calendar(school_year: int, offset_days: int = 0) -> np.ndarray:
    """The 180 instructional dates of ``school_year`` (named by its ending year).

    School starts on the fourth Monday of August of the previous year (shifted by
    ``offset_days`` per district) and skips Thanksgiving Thursday and Friday, the
    winter break (Dec 22 - Jan 2) and a spring break week in mid-March.
    """
    begin = np.datetime64(f"{school_year - 1}-08-01")
    weekday = (begin.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    first_monday = begin + int((7 - weekday) % 7)
    start = first_monday + 21 + offset_days
    days = start + np.arange(320)
    dow = (days.view("int64") - 4) % 7
    weekdays = days[dow < 5]
    month_day = weekdays.astype("datetime64[D]")
    year = school_year - 1
    # Thanksgiving: fourth Thursday of November, and the Friday after it.
    nov1 = np.datetime64(f"{year}-11-01")
    nov1_dow = int((nov1.view("int64") - 4) % 7)
    thanksgiving = nov1 + int((3 - nov1_dow) % 7) + 21
    breaks = [
        (thanksgiving, thanksgiving + 1),
        (np.datetime64(f"{year}-12-22"), np.datetime64(f"{school_year}-01-02")),
        (np.datetime64(f"{school_year}-03-16"), np.datetime64(f"{school_year}-03-20")),
    ]
    keep = np.ones(len(month_day), dtype=bool)
    for lo, hi in breaks:
        keep &= ~((month_day >= lo) & (month_day <= hi))
    return month_day[keep][:INSTRUCTIONAL_DAYS]
