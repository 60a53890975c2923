"""DuckDB SQL as Spark SQL: the builders' one text, translated by sqlglot.

Pure (no Spark needed): :func:`to_spark` writes the parameters in as constants (Spark
Connect and a cluster's SQL take the text alone), renames the tables the statement
reads to the views a job registered, and translates strictly: a construct sqlglot
does not understand is an error here, never a text Spark would misread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from backbone.engines.sql import literal

__all__ = ["SPARK_FUNCTIONS", "tables_read", "to_spark"]

# DuckDB functions with no Spark built-in of that name that sqlglot passes through,
# and the Spark functions a job registers for them (Splink's bundled similarity
# functions, under the name sqlglot writes)
SPARK_FUNCTIONS: Mapping[str, str] = {
    "JAROWINKLER_SIMILARITY": "uk.gov.moj.dash.linkage.JaroWinklerSimilarity",
}


def _constant(value: object) -> str:
    """A parameter as DuckDB SQL (a list as a list literal)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_constant(v) for v in value) + "]"
    if isinstance(value, (str, int, float, bool, date, datetime)) or value is None:
        return literal(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Spark as a parameter")


def to_spark(
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    tables: Mapping[str, str] | None = None,
) -> str:
    """One DuckDB statement as Spark SQL, its parameters written in (``?`` in order
    from a sequence, ``$name`` from a mapping), each table named in ``tables``
    (``schema.table`` or ``table``) renamed."""
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    holes = list(tree.find_all(exp.Placeholder, bfs=False))  # in written order
    if isinstance(params, Mapping):
        missing = {str(h.this) for h in holes} - set(params)
        if missing or any(h.this is None for h in holes):
            raise ValueError(f"parameters not given: {sorted(missing) or '?'}")
        values = [params[str(h.this)] for h in holes]
    else:
        values = list(params or [])
        if any(h.this is not None for h in holes) or len(holes) != len(values):
            raise ValueError(
                f"{len(holes)} parameters in the SQL, {len(values)} given in order"
            )
    for hole, value in zip(holes, values, strict=True):
        hole.replace(sqlglot.parse_one(_constant(value), read="duckdb"))
    if tables:
        # a name the statement defines itself (a CTE) is not an input
        defined = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            name = ".".join(p for p in (table.db, table.name) if p)
            if name in tables and not (not table.db and name in defined):
                alias = table.alias or (table.name if table.db else "")
                new = exp.to_table(tables[name])
                if alias:
                    new.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
                table.replace(new)
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE, pretty=False)


def tables_read(sql: str) -> set[str]:
    """The tables (``schema.table`` or ``table``) a DuckDB statement reads, not
    counting the names it defines itself (CTEs)."""
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    defined = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = {".".join(p for p in (t.db, t.name) if p) for t in tree.find_all(exp.Table)}
    return {n for n in names if n not in defined}
