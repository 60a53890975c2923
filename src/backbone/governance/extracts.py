"""Pseudonymous extracts that cannot be joined or singled out.

A pseudonym hides who a person is, but not what their rows say: a person whose
history (the schools, years, grades and dates of their enrollments; their
demographics) no one else shares is singled out by it, and two recipients holding
the same person's rows under different pseudonyms can join them on it. So before a
pseudonymous extract leaves, every pseudonym's *signature* (the distinct
quasi-identifying values of its rows) must be shared by at least ``k`` pseudonyms
(the agreement's ``publication.extract_k``). Dates are coarsened, for the whole
extract, to the finest of day, month or school year at which no signature is rarer
than ``k``; at school year, the persons still rarer are withheld. What was done is
reported to the reader and kept in the audit entry.

Row order is a random permutation per release: the order rows happen to be stored
in is the same for every reader, and would pair two readers' pseudonyms by
position. Pages of one release share its seed (carried in the API's cursor).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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

# what, besides dates, says who a person is when combined: where and when they
# were (school, program, institution, year, grade, term) and their demographics
_QI_NAMES = frozenset(
    {
        "provider_partner_id",
        "school_id",
        "responsibility_school_id",
        "program_id",
        "institution_id",
        "school_year",
        "class_of_school_year",
        "entry_grade_level",
        "when_taken_grade_level",
        "when_assessed_grade_level",
        "grade_level",
        "term",
        "term_name",
        "session_name",
        "entry_type",
        "exit_withdraw_type",
        "reason_exited",
        "diploma_type",
        "degree_type",
        "enrollment_status",
        "postsecondary_event_category",
        "sex",
        "birth_sex",
        "race",
        "hispanic_latino_ethnicity",
        "economic_disadvantaged",
        "english_learner",
        "disability",
        "birth_year",
        "postal_code",
    }
)
LEVELS = ("day", "month", "school year")


def quasi_identifiers(table: pa.Table) -> tuple[list[str], list[str]]:
    """The columns of ``table`` that single a person out in combination: (the
    named ones, the dates)."""
    named, dates = [], []
    for name, kind in zip(table.column_names, table.schema.types, strict=True):
        if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            dates.append(name)
        elif name in _QI_NAMES:
            named.append(name)
    return named, dates


@dataclass(frozen=True)
class ExtractProtection:
    """What was done to a pseudonymous extract before it left."""

    k: int
    persons: int
    """pseudonyms in the extract as read"""
    dates_as: str
    """day, month or school year"""
    withheld_persons: int
    withheld_rows: int
    quasi_identifiers: tuple[str, ...]

    def note(self) -> str:
        coarse = (
            ""
            if self.dates_as == "day"
            else f"dates are given as their {self.dates_as}; "
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


def signature_sql(
    named: Sequence[str], dates: Sequence[str], level: str, start_month: int
) -> str:
    """Per pseudonym, its signature and how many pseudonyms share it (over the
    table ``t``, whose rows carry a ``pseudonym``)."""
    parts = [f"coalesce(CAST({ident(c)} AS VARCHAR), '')" for c in named]
    parts += [f"coalesce({_coarse(c, level, start_month)}, '')" for c in dates]
    row = f"concat_ws(chr(31), {', '.join(parts)})" if parts else "''"
    return (
        "WITH per AS (SELECT pseudonym, string_agg(DISTINCT r, chr(30) ORDER BY r) "
        f"AS signature FROM (SELECT pseudonym, {row} AS r FROM t "
        "WHERE pseudonym IS NOT NULL) GROUP BY pseudonym) "
        "SELECT pseudonym, count(*) OVER (PARTITION BY signature) AS shared FROM per"
    )


def protect_extract(
    table: pa.Table, k: int, start_month: int
) -> tuple[pa.Table, ExtractProtection | None]:
    """``table`` with its pseudonymous rows made k-anonymous in their
    quasi-identifiers (rows of identified access, with a ``person_id`` and no
    ``pseudonym``, pass unchanged), and what was done; None when it has no
    pseudonymous rows."""
    if "pseudonym" not in table.column_names or table.num_rows == 0:
        return table, None
    con: Connection = scratch()
    try:
        return _protect(con, table, k, start_month)
    finally:
        con.close()


def _protect(
    con: Connection, table: pa.Table, k: int, start_month: int
) -> tuple[pa.Table, ExtractProtection | None]:
    named, dates = quasi_identifiers(table)
    with registered(con, t=table):
        persons = int(
            con.execute(
                "SELECT count(DISTINCT pseudonym) FROM t WHERE pseudonym IS NOT NULL"
            ).fetchone()[0]  # type: ignore[index]
        )
        if persons == 0:
            return table, None
        levels = LEVELS if dates else LEVELS[:1]
        for level in levels:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE rare AS SELECT pseudonym FROM "
                f"({signature_sql(named, dates, level, start_month)}) WHERE shared < ?",
                [k],
            )
            withheld = int(con.execute("SELECT count(*) FROM rare").fetchone()[0])  # type: ignore[index]
            if not withheld:
                break
        select = [
            (
                f"CASE WHEN pseudonym IS NULL THEN CAST({ident(c)} AS VARCHAR) "
                f"ELSE {_coarse(c, level, start_month)} END AS {ident(c)}"
                if c in dates and level != "day"
                else ident(c)
            )
            for c in table.column_names
        ]
        kept = arrow(
            con,
            f"SELECT {', '.join(select)} FROM t "
            "WHERE pseudonym IS NULL OR pseudonym NOT IN (SELECT pseudonym FROM rare)",
        )
    protection = ExtractProtection(
        k=k,
        persons=persons,
        dates_as=level,
        withheld_persons=withheld,
        withheld_rows=table.num_rows - kept.num_rows,
        quasi_identifiers=(*named, *dates),
    )
    return kept, protection


def new_seed() -> int:
    """A release's own random order."""
    return secrets.randbits(63)


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    """``table``'s rows in the random order of ``seed``: first put in an order of
    their own values (so that the same rows and seed give the same order, page
    after page), then permuted."""
    if table.num_rows < 2:
        return table
    import pyarrow.compute as pc

    keys = [
        (c, "ascending")
        for c, t in zip(table.column_names, table.schema.types, strict=True)
        if not (pa.types.is_nested(t) or pa.types.is_binary(t))
    ]
    if keys:
        table = table.take(pc.sort_indices(table, sort_keys=keys))
    order = np.random.default_rng(seed).permutation(table.num_rows)
    return table.take(pa.array(order))
