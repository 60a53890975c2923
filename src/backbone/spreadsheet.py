"""Cells a spreadsheet would run: text written to a CSV file for people to open is
never taken for a formula (CSV injection: ``=HYPERLINK(...)``, ``@SUM(...)``)."""

from __future__ import annotations

import re

__all__ = ["RISKY_START", "formula_safe"]

RISKY_START = r"^[=+\-@\t\r]"
"""What a formula starts with, as a regular expression (for a whole column at once)"""
_RISKY = re.compile(RISKY_START)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def formula_safe(text: str) -> str:
    """``text``, with a leading apostrophe when a spreadsheet would read it as a
    formula; a number (``-5``, ``+1.5e3``) stays a number."""
    if _RISKY.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text
