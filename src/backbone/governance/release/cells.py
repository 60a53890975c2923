"""A release's cells: the table's shape (dimensions, filters, a rate's
condition), its cells with their margins as sets of units, and the table that
leaves, one row per cell."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from backbone.engines.sql import literal
from backbone.errors import UserError
from backbone.governance.policy import IDENTIFYING

__all__ = ["MAX_DIMENSIONS", "RECORD_HASH", "TOTAL", "cell_pairs_sql"]

MAX_DIMENSIONS = 2


# A record's keyed hash (the same construction as pseudonyms, over the record key).
RECORD_HASH = (
    "substr(sha256(? || sha256(? || 'record:' || {provider} || ':' || {local})), 1, 20)"
)


TOTAL = "(all)"


def cell_pairs_sql(
    by: Sequence[str],
    where: dict[str, Sequence[object]],
    tag: str | None = None,
    exclude: dict[str, Sequence[object]] | None = None,
) -> tuple[str, list[object]]:
    """(unit, cell label) pairs of a table with margins, over the locked ``rows``.

    Pure: names are checked by the caller against the canonical model; values are
    parameters. A margin is the union of its row's or column's units, so a person
    in two cells of a row is counted once in its total. ``tag`` prefixes the labels
    (a rate's numerator cells are ``#`` + the denominator's label, the rest ``!``);
    ``exclude`` keeps only rows that do not match it (the rest of a rate).
    """
    filters: list[str] = []
    params: list[object] = []
    for column, values in where.items():
        filters.append(f"list_contains(?, CAST({column} AS VARCHAR))")
        params.append([str(v) for v in values])
    if exclude:
        negated = []
        for column, values in exclude.items():
            negated.append(f"list_contains(?, CAST({column} AS VARCHAR))")
            params.append([str(v) for v in values])
        filters.append(f"NOT coalesce({' AND '.join(negated)}, false)")
    cond = f"WHERE {' AND '.join(filters)}" if filters else ""
    base = (
        f"SELECT DISTINCT unit, record, provider, {', '.join(by) or 'NULL AS _none'} "
        f"FROM rows {cond}"
    )
    labels = [f"CAST({b} AS VARCHAR)" for b in by]
    parts = []
    # inner cells, then each margin: a dimension replaced by the total
    for keep in _margins(len(by)):
        total = literal(TOTAL)
        cols = [lab if k else total for lab, k in zip(labels, keep, strict=True)]
        label = f"to_json([{', '.join(cols) or total}])"
        label = f"CAST({label} AS VARCHAR)"
        if tag:
            label = f"{literal(tag)} || {label}"
        parts.append(
            f"SELECT DISTINCT unit, record, provider, {label} AS label FROM base"
        )
    sql = f"SELECT * FROM (WITH base AS ({base}) " + " UNION ".join(parts) + ")"
    return sql, params


# Columns of the gate's own units: never a dimension or filter.
_BOOKKEEPING = frozenset({"provider", "unit", "record", "person_id", "pseudonym"})


def _table_definition(
    entity: str,
    by: Sequence[str],
    where: dict[str, Sequence[object]],
    numerator: dict[str, Sequence[object]] | None,
) -> dict[str, Any]:
    """The ledger's description of a table, once its shape is checked: nothing
    that identifies a person, at most two dimensions, each once, a rate with a
    condition."""
    asked = [*by, *where, *(numerator or {})]
    bad = [c for c in asked if c in IDENTIFYING or c in _BOOKKEEPING]
    if bad:
        raise UserError(
            f"{bad[0]} identifies a person; it cannot be a dimension or filter."
        )
    if len(by) > MAX_DIMENSIONS:
        raise UserError(
            f"a released table has at most {MAX_DIMENSIONS} dimensions; split it."
        )
    if len(set(by)) != len(by):
        raise UserError("each dimension may appear once.")
    definition: dict[str, Any] = {
        "entity": entity,
        "by": list(by),
        "where": {k: sorted(str(v) for v in vs) for k, vs in sorted(where.items())},
    }
    if numerator is not None:
        if not numerator:
            raise UserError("a rate needs a numerator condition (COLUMN=VALUE).")
        definition["numerator"] = {
            k: sorted(str(v) for v in vs) for k, vs in sorted(numerator.items())
        }
    return definition


def _margins(n: int) -> list[tuple[bool, ...]]:
    if n == 0:
        return [()]
    if n == 1:
        return [(True,), (False,)]
    return [(True, True), (True, False), (False, True), (False, False)]


def _rates(
    by: list[str],
    table: pa.Table,
    labels: list[str],
    thresholds: np.ndarray[Any, Any],
    coding: tuple[float | None, float | None],
) -> pa.Table:
    """One row per denominator cell: persons, of whom matching, the coded rate as
    text (suppressed when either count is, or when either could be read off the
    rate) and ``rate_value``, the same rate as a fraction (0 to 1) for a chart or
    an API, null wherever the text is suppressed or coded."""
    from backbone.governance.disclosure import code_rates

    persons = dict(zip(labels, table.column("persons").to_pylist(), strict=True))
    limit = dict(zip(labels, thresholds.tolist(), strict=True))
    rows = [lab for lab in labels if lab[0] not in "#!"]
    out = _table(by, [], np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    columns: dict[str, list[Any]] = {name: [] for name in out.column_names}
    columns["matching"], columns["rate"], columns["rate_value"] = [], [], []
    for lab in rows:
        decoded = json.loads(lab)
        for i, b in enumerate(by):
            columns[b].append(decoded[i])
        if not by:
            columns["group"].append(TOTAL)
        den, num = persons[lab], persons.get("#" + lab, 0)
        rest = persons.get("!" + lab, 0)
        columns["persons"].append(den)
        columns["matching"].append(num)
        if den is None or num is None or rest is None:
            columns["matching"][-1] = None
            columns["rate"].append("*")
            columns["rate_value"].append(None)
            columns["note"].append(SUPPRESSED)
            continue
        threshold = max(limit[lab], limit.get("#" + lab, 0))
        coded = code_rates(
            [num],
            [den],
            threshold=threshold,
            top_percent=coding[0],
            bottom_percent=coding[1],
        )
        text = str(coded.text[0])
        columns["rate"].append(text)
        # the number says no more than the text: none where the text is "*" or
        # coded (">95%"), else matching / persons, both of which are released
        shown = not coded.suppressed[0] and text[:1] not in "<>" and den > 0
        columns["rate_value"].append(num / den if shown else None)
        if text[:1] in "<>":
            # a coded rate beside its counts would be no coding at all
            columns["matching"][-1] = None
        columns["note"].append(SUPPRESSED if coded.suppressed[0] else "")
    return pa.table(
        {
            name: pa.array(values, pa.float64())
            if name == "rate_value"
            else pa.array(values)
            for name, values in columns.items()
        }
    )


# the note of a suppressed cell, whatever the reason (the reason would narrow it)
SUPPRESSED = "suppressed"


def _table(
    by: list[str],
    labels: list[str],
    values: np.ndarray[Any, Any],
    suppressed: np.ndarray[Any, Any],
    primary: np.ndarray[Any, Any],
) -> pa.Table:
    decoded = [json.loads(lab.lstrip("#!")) for lab in labels]
    columns: dict[str, Any] = {
        b: [d[i] for d in decoded] for i, b in enumerate(by)
    } or {"group": [TOTAL] * len(labels)}
    columns["persons"] = [
        None if s else int(v) for v, s in zip(values, suppressed, strict=True)
    ]
    # one word for every suppressed cell: "fewer than the minimum" beside
    # "suppressed to protect another cell" would tell which is which, and with the
    # total pin the small one to a narrower range than the gate protects
    columns["note"] = [SUPPRESSED if s else "" for s in suppressed]
    return pa.table(columns)
