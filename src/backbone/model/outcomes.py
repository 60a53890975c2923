"""The codes of the outcomes an initiative may target (measured by
``measures.initiatives.OUTCOMES``, which keeps their labels and units): here, low in
the layers, so that the directory format and the command line can check a code
without loading the measures. ``tests/test_startup.py`` keeps the two the same."""

from __future__ import annotations

__all__ = ["OUTCOME_CODES"]

OUTCOME_CODES = (
    "attendance_rate",
    "suspended",
    "course_mark",
    "pass_rate",
    "gpa",
    "ela_score",
    "math_score",
    "graduated",
    "college_enrolled",
)
