"""Pseudonymous extracts that cannot be joined or singled out.

A pseudonym hides who a person is, but not what their rows say: a person whose
history (the schools, years, grades and dates of their enrollments, their scores,
their demographics) no one else shares is singled out by it, and two recipients
holding the same person's rows under different pseudonyms can join them on it. So
before a pseudonymous extract leaves, every pseudonym's *history* (all its rows'
values, every column but the keys, each row counted) must be shared by at least
``k`` pseudonyms (the agreement's ``publication.extract_k``). Dates are coarsened
and measures rounded, for the whole extract, to the finest of three levels (day
and exact; month and two significant digits; school year and one) at which no
history is rarer than ``k``; at the last, the persons still rarer are withheld.
Ids of records (a district's student id, an incident's id) are the same for every
recipient, so each recipient gets its own keyed token for them instead. What was
done is reported to the reader and kept in the audit entry. The check is per
extract: a recipient can still join its own extracts of several entities on its
pseudonyms (the agreement's redisclosure terms and the data-use request govern
that; README, Security).

Row order is a random permutation per release: the order rows happen to be stored
in is the same for every reader, and would pair two readers' pseudonyms by
position. Pages of one release share its seed (carried in the API's cursor).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from backbone.engines import Connection, arrow, registered, scratch
from backbone.engines.sql import ident
from backbone.model.calendar import school_year_sql

__all__ = [
    "DEFAULT_EXTRACT_K",
    "ExtractProtection",
    "new_seed",
    "protect_extract",
    "quasi_identifiers",
    "shuffled",
]

DEFAULT_EXTRACT_K = 5
"""An agreement that says nothing gets k = 5: a history shared by fewer than five
pseudonyms is too close to a person (the common floor for microdata; an agreement
may ask more, never less than 2)."""

# ids of a record rather than of a person, the same for every recipient: they
# would join two recipients' extracts row for row, so each recipient gets its own
# keyed token for them (and they take no part in a history)
_RECORD_IDS = ("student_local_id", "local_id", "state_student_id")
_KEYS = frozenset({"pseudonym", "person_id", "_backbone_provider"})
LEVELS = ("day", "month", "school year")


def _is_record_id(name: str) -> bool:
    return name in _RECORD_IDS or name.endswith("_identifier")


def _is_measure(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def quasi_identifiers(table: pa.Table) -> tuple[list[str], list[str], list[str]]:
    """The columns of ``table`` that single a person out in combination: every
    column but the keys and record ids, as (exact ones, dates, measures)."""
    exact, dates, measures = [], [], []
    for name, kind in zip(table.column_names, table.schema.types, strict=True):
        if name in _KEYS or _is_record_id(name):
            continue
        if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            dates.append(name)
        elif _is_measure(kind):
            measures.append(name)
        else:
            exact.append(name)
    return exact, dates, measures


@dataclass(frozen=True)
class ExtractProtection:
    """What was done to a pseudonymous extract before it left."""

    k: int
    persons: int
    """pseudonyms in the extract as read"""
    dates_as: str
    """day, month or school year (measures: exact, two or one significant digits)"""
    withheld_persons: int
    withheld_rows: int
    quasi_identifiers: tuple[str, ...]

    def note(self) -> str:
        digits = {"month": "two", "school year": "one"}.get(self.dates_as)
        coarse = (
            ""
            if digits is None
            else f"dates are given as their {self.dates_as} and measures to "
            f"{digits} significant digit{'s' if digits == 'two' else ''}; "
        )
        held = (
            f"{self.withheld_persons:,} of {self.persons:,} pseudonyms "
            f"({self.withheld_rows:,} rows) withheld, their histories shared by "
            f"fewer than {self.k}"
            if self.withheld_persons
            else f"every history is shared by at least {self.k} pseudonyms"
        )
        return f"Protected extract: {coarse}{held}; rows in random order."

    def as_detail(self) -> dict[str, object]:
        return {
            "k": self.k,
            "persons": self.persons,
            "dates_as": self.dates_as,
            "withheld_persons": self.withheld_persons,
            "withheld_rows": self.withheld_rows,
            "quasi_identifiers": list(self.quasi_identifiers),
        }


def _coarse(column: str, level: str, start_month: int) -> str:
    name = ident(column)
    if level == "day":
        return f"CAST({name} AS VARCHAR)"
    if level == "month":
        return f"strftime({name}, '%Y-%m')"
    return f"CAST({school_year_sql(name, start_month)} AS VARCHAR)"


def _rounded(column: str, level: str) -> str:
    """A measure at ``level``: exact, or to two or one significant digits (a
    score of 612.5 is 610, then 600): exact values would join two recipients'
    extracts as surely as an id."""
    name = ident(column)
    if level == "day":
        return name
    digits = 2 if level == "month" else 1
    x = f"CAST({name} AS DOUBLE)"
    return (
        f"CASE WHEN {x} IS NULL OR {x} = 0 OR NOT isfinite({x}) THEN {x} ELSE round({x}, "
        f"{digits - 1} - CAST(floor(log10(abs({x}))) AS INTEGER)) END"
    )


def _history_shared_sql(
    exact: Sequence[str],
    dates: Sequence[str],
    measures: Sequence[str],
    level: str,
    start_month: int,
) -> str:
    """Per pseudonym, how many pseudonyms share its history: its rows' quasi-
    identifying values at ``level``, every row counted (a person with fifty rows
    is not hidden among people with one), over the table ``t``."""
    parts = [f"coalesce(CAST({ident(c)} AS VARCHAR), '')" for c in exact]
    parts += [f"coalesce({_coarse(c, level, start_month)}, '')" for c in dates]
    parts += [f"coalesce(CAST({_rounded(c, level)} AS VARCHAR), '')" for c in measures]
    row = f"concat_ws(chr(31), {', '.join(parts)})" if parts else "''"
    return (
        "WITH per AS (SELECT pseudonym, string_agg(r, chr(30) ORDER BY r) "
        f"AS signature FROM (SELECT pseudonym, {row} AS r FROM t "
        "WHERE pseudonym IS NOT NULL) GROUP BY pseudonym) "
        "SELECT pseudonym, count(*) OVER (PARTITION BY signature) AS shared FROM per"
    )


def protect_extract(
    table: pa.Table, k: int, start_month: int, recipient_key: str
) -> tuple[pa.Table, ExtractProtection | None]:
    """``table`` with its pseudonymous rows made k-anonymous in their histories
    (rows of identified access, with a ``person_id`` and no ``pseudonym``, pass
    unchanged), record ids replaced by tokens keyed by ``recipient_key``, and
    what was done; None when it has no pseudonymous rows."""
    if "pseudonym" not in table.column_names or table.num_rows == 0:
        return table, None
    con: Connection = scratch()
    try:
        return _protect(con, table, k, start_month, recipient_key)
    finally:
        con.close()


def _protect(
    con: Connection, table: pa.Table, k: int, start_month: int, recipient_key: str
) -> tuple[pa.Table, ExtractProtection | None]:
    exact, dates, measures = quasi_identifiers(table)
    with registered(con, t=table):
        persons = int(
            con.execute(
                "SELECT count(DISTINCT pseudonym) FROM t WHERE pseudonym IS NOT NULL"
            ).fetchone()[0]  # type: ignore[index]
        )
        if persons == 0:
            return table, None
        levels = LEVELS if dates or measures else LEVELS[:1]
        for level in levels:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE rare AS SELECT pseudonym FROM "
                f"({_history_shared_sql(exact, dates, measures, level, start_month)}) "
                "WHERE shared < ?",
                [k],
            )
            withheld = int(con.execute("SELECT count(*) FROM rare").fetchone()[0])  # type: ignore[index]
            if not withheld:
                break
        select = []
        params: list[object] = []
        for c in table.column_names:
            name = ident(c)
            if _is_record_id(c):
                # the recipient's own token for the id (keyed SHA-256, in SQL)
                select.append(
                    f"CASE WHEN pseudonym IS NULL THEN CAST({name} AS VARCHAR) "
                    f"ELSE substr(sha256(? || CAST({name} AS VARCHAR)), 1, 24) END "
                    f"AS {name}"
                )
                params.append(recipient_key)
            elif c in dates and level != "day":
                select.append(
                    f"CASE WHEN pseudonym IS NULL THEN CAST({name} AS VARCHAR) "
                    f"ELSE {_coarse(c, level, start_month)} END AS {name}"
                )
            elif c in measures and level != "day":
                select.append(
                    f"CASE WHEN pseudonym IS NULL THEN CAST({name} AS DOUBLE) "
                    f"ELSE {_rounded(c, level)} END AS {name}"
                )
            else:
                select.append(name)
        kept = arrow(
            con,
            f"SELECT {', '.join(select)} FROM t "
            "WHERE pseudonym IS NULL OR pseudonym NOT IN (SELECT pseudonym FROM rare)",
            params,
        )
    protection = ExtractProtection(
        k=k,
        persons=persons,
        dates_as=level,
        withheld_persons=withheld,
        withheld_rows=table.num_rows - kept.num_rows,
        quasi_identifiers=(*exact, *dates, *measures),
    )
    return kept, protection


def new_seed() -> int:
    """A release's own random order."""
    return secrets.randbits(63)


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    """``table``'s rows in the random order of ``seed``: each row ranked by a hash
    of its values and the seed (the same rows and seed give the same order, page
    after page, whatever order they were read in; another seed, another order).
    One pass and a sort on one number: no per-row work in Python."""
    if table.num_rows < 2:
        return table
    con: Connection = scratch()
    try:
        with registered(con, t=table):
            return arrow(con, "SELECT * FROM t ORDER BY hash(t, ?::BIGINT)", [seed])
    finally:
        con.close()
