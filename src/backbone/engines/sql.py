"""Quoting for SQL text: the one place that writes a name or a value into a statement.

Values belong in parameters (``?``); :func:`literal` is for the few places an engine
takes none (DDL, ``SET``, ``COPY`` options, a constant inside a reusable SQL builder).
Both follow ANSI quoting, which DuckDB and Spark (through sqlglot) share.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TypeAlias

__all__ = ["SqlValue", "ident", "literal", "qualified"]

SqlValue: TypeAlias = str | int | float | bool | date | datetime | None


def ident(name: str) -> str:
    """``name`` as a quoted identifier: ``a"b`` -> ``"a""b"``."""
    if not name:
        raise ValueError("an SQL identifier cannot be empty")
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """A dotted name with every part quoted: ``qualified("ops", "submission")``."""
    if not parts:
        raise ValueError("a qualified name needs at least one part")
    return ".".join(ident(part) for part in parts)


def literal(value: SqlValue) -> str:
    """``value`` as an SQL constant of its own type; anything else is a TypeError
    (never ``str()`` of an unknown object into SQL)."""
    # bool before int: True is an int
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal; pass it as a parameter")
        text = repr(value)
        # an exponent makes it a DOUBLE in DuckDB and Spark (``1.5`` alone is DECIMAL)
        return text if "e" in text else text + "e0"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("an SQL string cannot contain a NUL character")
        return "'" + value.replace("'", "''") + "'"
    # datetime before date: a datetime is a date
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(
                "give a naive UTC datetime; SQL timestamps here have no zone"
            )
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    raise TypeError(f"cannot write a {type(value).__name__} into SQL")
