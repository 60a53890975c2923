"""DuckDB SQL as Spark SQL: the builders' one text, translated by sqlglot.

Pure (no Spark needed): :func:`to_spark` writes the parameters in as constants (Spark
Connect and a cluster's SQL take the text alone), renames the tables the statement
reads to the views a job registered, and translates strictly: a construct sqlglot
does not understand is an error here, never a text Spark would misread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ErrorLevel

from backbone.engines.sql import literal

__all__ = ["SPARK_FUNCTIONS", "in_steps", "tables_read", "to_spark"]

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


def _named_in_order(sql: str) -> tuple[str, int]:
    """``sql`` with its ``?`` markers renamed ``$__p0``, ``$__p1``, ... in the order
    they are written (the tokens', not the parse tree's, which puts a CTE or a
    LIMIT elsewhere); how many there were."""
    from sqlglot.dialects.duckdb import DuckDB

    holes = [t for t in DuckDB().tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    out, at = [], 0
    for n, token in enumerate(t for t in holes if t.text == "?"):
        out.append(sql[at : token.start])
        out.append(f"$__p{n}")
        at = token.end + 1
    out.append(sql[at:])
    return "".join(out), sum(1 for t in holes if t.text == "?")


def _bound(
    sql: str, params: Sequence[Any] | Mapping[str, Any] | None
) -> exp.Expression:
    """The statement parsed, its parameters written in (``?`` in order from a
    sequence, ``$name`` from a mapping)."""
    if isinstance(params, Mapping):
        named = dict(params)
    else:
        values = list(params or [])
        sql, count = _named_in_order(sql)
        if count != len(values):
            raise ValueError(
                f"{count} parameters in the SQL, {len(values)} given in order"
            )
        named = {f"__p{n}": v for n, v in enumerate(values)}
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    holes = list(tree.find_all(exp.Placeholder))
    missing = {str(h.this) for h in holes if h.this is not None} - set(named)
    if missing or any(h.this is None for h in holes):
        raise ValueError(f"parameters not given: {sorted(missing) or '?'}")
    for hole in holes:
        hole.replace(sqlglot.parse_one(_constant(named[str(hole.this)]), read="duckdb"))
    return cast(exp.Expression, tree)


def _renamed(tree: exp.Expression, tables: Mapping[str, str]) -> exp.Expression:
    """Each table of ``tables`` read by ``tree`` renamed (not a CTE of that name)."""
    defined = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = ".".join(p for p in (table.db, table.name) if p)
        if name in tables and not (not table.db and name in defined):
            # under its own name still, for the columns that name it (``t.x``)
            new = exp.to_table(tables[name])
            alias = table.alias or table.name
            new.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            table.replace(new)
    return tree


def _spark_text(tree: exp.Expression) -> str:
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


def to_spark(
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    tables: Mapping[str, str] | None = None,
) -> str:
    """One DuckDB statement as Spark SQL, its parameters written in (``?`` in order
    from a sequence, ``$name`` from a mapping), each table named in ``tables``
    (``schema.table`` or ``table``) renamed."""
    return _spark_text(_renamed(_bound(sql, params), tables or {}))


def in_steps(
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
    tables: Mapping[str, str],
    prefix: str,
) -> list[tuple[str | None, str, int]]:
    """A statement with a ``WITH`` as Spark SQL in steps: each CTE a view named
    ``<prefix>_<cte>`` (with how often later steps read it), then the statement
    reading them. Spark plans a CTE read twice twice, and a chain of them grows
    its plans beyond the driver's memory; a view kept once does not."""
    tree = _renamed(_bound(sql, params), tables)
    with_ = tree.args.get("with_") or tree.args.get("with")
    if not isinstance(tree, exp.Query) or with_ is None or not _splittable(with_):
        return [(None, _spark_text(tree), 0)]
    ctes = list(with_.expressions)
    tree.set("with_" if "with_" in tree.args else "with", None)
    views = {cte.alias_or_name: f"{prefix}_{cte.alias_or_name}" for cte in ctes}
    steps: list[tuple[str | None, exp.Expression]] = [
        (cte.alias_or_name, cte.this) for cte in ctes
    ]
    steps.append((None, tree))
    reads: dict[str, int] = dict.fromkeys(views, 0)
    out: list[tuple[str | None, exp.Expression]] = []
    for name, body in steps:
        for table in list(body.find_all(exp.Table)):
            if not table.db and not table.catalog and table.name in views:
                reads[table.name] += 1
                alias = table.alias or table.name
                new = exp.to_table(views[table.name])
                new.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
                table.replace(new)
        out.append((name, body))
    return [
        (views[name] if name else None, _spark_text(body), reads[name] if name else 0)
        for name, body in out
    ]


def _splittable(with_: exp.Expression) -> bool:
    """Whether a WITH's CTEs can become views of their own: not recursive, no
    column lists (``a(x, y)``), no WITH inside one (whose names could shadow
    another's), names distinct whatever their case."""
    ctes = list(with_.expressions)
    names = [cte.alias_or_name.lower() for cte in ctes]
    return not (
        with_.args.get("recursive")
        or len(set(names)) != len(names)
        or any(cte.args["alias"].columns for cte in ctes)
        or any(
            isinstance(node, exp.With)
            for cte in ctes
            for node in cte.this.find_all(exp.With)
        )
        or any(cte.alias_or_name != cte.alias_or_name.lower() for cte in ctes)
    )


def tables_read(sql: str) -> set[str]:
    """The tables (``schema.table`` or ``table``) a DuckDB statement reads, not
    counting the names it defines itself (CTEs)."""
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    defined = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = {".".join(p for p in (t.db, t.name) if p) for t in tree.find_all(exp.Table)}
    return {n for n in names if n not in defined}
