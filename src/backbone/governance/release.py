"""The release gate: every aggregate leaves through here, and is remembered.

A release counts persons per group of one entity. The gate

1. reads the permitted rows through the policy layer (``aggregate`` operation) into
   a locked in-memory database, each person as a keyed hash (the *unit*);
2. forms the table's cells with their margins (1 or 2 dimensions) as sets of units;
3. takes every earlier release that counted any of the same units from the ledger,
   and groups all units into *atoms* by which cells, old and new, they belong to;
4. suppresses cells (primary: 0 < n < the strictest minimum cell size of the
   providers in the cell; complementary until a linear-programming interval audit
   of every small cell and atom is clean, earlier releases included, which stops
   differencing within a table and across releases);
5. records the release, its cells and their units in the ledger, and the audit log.

With ``epsilon`` the counts are released with differential privacy instead
(OpenDP), charged to each provider agreement's budget; a table once released one
way is never released the other way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from backbone.engines.duckdb import next_id
from backbone.engines.sql import ident, literal
from backbone.errors import PolicyDenied, UserError
from backbone.governance.audit import AuditEntry, AuditLog, canonical_json
from backbone.governance.policy import (
    ENTITIES,
    IDENTIFYING,
    Grant,
    permitted_rows_sql,
    subject_columns,
)
from backbone.partners.agreements.document import AccessLevel

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = [
    "Derived",
    "PublishedStatistic",
    "Release",
    "ReleaseGate",
    "Statistic",
    "StatisticsRelease",
    "cell_pairs_sql",
]

MAX_DIMENSIONS = 2
# A record's keyed hash (the same construction as pseudonyms, over the record key).
RECORD_HASH = (
    "substr(sha256(? || sha256(? || 'record:' || {provider} || ':' || {local})), 1, 20)"
)
DP_DELTA = 1e-7
TOTAL = "(all)"
# Reference tables a derivation may read beside its inputs (no person in them).
REFERENCE_TABLES = (
    "school",
    "program",
    "initiative",
    "initiative_program",
    "postsecondary_institution",
)
_ARROW_TYPES: dict[str, pa.DataType] = {
    "DATE": pa.date32(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True)
class Release:
    release_id: int
    table: pa.Table
    """One row per cell: the dimensions (``(all)`` on a margin), ``persons`` (null
    when suppressed) and ``note``."""
    cells: int
    suppressed: int
    agreements: tuple[str, ...]
    mode: str
    epsilon: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class Statistic:
    """A statistic a derivation computed, and the cells (groups of persons) it
    was computed from."""

    key: dict[str, str]
    cells: tuple[str, ...]
    values: dict[str, Any]


@dataclass(frozen=True)
class Derived:
    """What a derivation returns to the gate: who is in each cell, and the
    statistics of those cells."""

    members: pa.Table
    """(label, unit): the persons each cell counted"""
    statistics: list[Statistic]


@dataclass(frozen=True)
class PublishedStatistic:
    key: dict[str, str]
    persons: dict[str, int | None]
    """each cell it counted, with its persons (None when suppressed)"""
    values: dict[str, Any] | None
    """None when suppressed"""
    note: str


@dataclass(frozen=True)
class StatisticsRelease:
    release_id: int
    statistics: list[PublishedStatistic]
    cells: int
    suppressed: int
    agreements: tuple[str, ...]
    left_out: dict[str, str]
    """inputs the reader may not aggregate, and why"""


@dataclass(frozen=True)
class Protected:
    """A table's cells after suppression, as recorded in the ledger."""

    release_id: int
    labels: list[str]
    values: np.ndarray[Any, Any]
    suppressed: np.ndarray[Any, Any]
    primary: np.ndarray[Any, Any]
    """suppressed for being small (the rest of ``suppressed`` protects them)"""
    thresholds: np.ndarray[Any, Any]


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


class ReleaseGate:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._con = con
        self._audit = audit
        self._clock = clock

    # --- reading the units -------------------------------------------------------

    def _units(
        self,
        access: Access,
        entity: str,
        columns: Sequence[str],
        *,
        partial: bool = False,
        refused: list[str] | None = None,
    ) -> tuple[pa.Table, list[Grant]]:
        """Each permitted row as (provider, ``columns``, unit, record): the unit a
        keyed hash of its person, the record one of its record. With ``partial``, a
        provider sharing only some of ``columns`` still counts, NULL for the rest
        (measures combine providers' rows per person)."""
        grants, refusals = access._admit("release", entity, "aggregate", None)
        if refused is not None:
            refused.extend(f"{r.provider}: {r.reason}" for r in refusals)
        provider_col, _ = subject_columns(entity)
        key = access._keys.derive("ledger")
        usable = [
            g
            for g in grants
            if (
                set(columns) & set(g.fields)
                if partial
                else set(columns) <= set(g.fields)
            )
        ]
        if not usable:
            raise access._deny(
                "release",
                f"count of {entity} by {', '.join(columns)}",
                "no provider shares those fields for aggregates",
            )
        _, local_col = subject_columns(entity)
        parts = []
        for g in usable:
            # every unit is a keyed hash of the person, whatever the access level,
            # and every record one of the record: the counts leave, the hashes stay
            # in the ledger (records, so that later links can be followed)
            unit_grant = replace(
                g,
                access=AccessLevel.aggregate,
                fields=(*g.fields, local_col)
                if local_col not in g.fields
                else g.fields,
            )
            sql, params = permitted_rows_sql(
                unit_grant,
                on=access.on,
                school_year=access._school_year,
                school_year_start_month=access.school_year_start_month,
                pseudonym_key=key,
            )
            types = {c.name: c.type for c in ENTITIES[entity].columns}
            select = ", ".join(
                [
                    f"{provider_col} AS provider",
                    *(
                        c if c in g.fields else f"CAST(NULL AS {types[c]}) AS {c}"
                        for c in columns
                    ),
                    "pseudonym AS unit",
                    f"{RECORD_HASH.format(provider=provider_col, local=local_col)} "
                    "AS record",
                ]
            )
            parts.append(
                self._con.sql(
                    f"SELECT {select} FROM ({sql})", params=[key, key, *params]
                ).to_arrow_table()
            )
        return pa.concat_tables(parts, promote_options="default"), usable

    # --- counting ----------------------------------------------------------------

    def count(
        self,
        access: Access,
        entity: str,
        by: list[str],
        where: dict[str, Sequence[object]],
        epsilon: float | None,
        numerator: dict[str, Sequence[object]] | None = None,
    ) -> Release:
        """Persons per group; with ``numerator``, also those of them matching it,
        and the rate (numerator and denominator cells protected together)."""
        if entity not in ENTITIES:
            raise UserError(f"unknown entity {entity!r}.")
        if epsilon is not None and not (math.isfinite(epsilon) and epsilon > 0):
            raise UserError(f"epsilon must be a number greater than 0, not {epsilon}.")
        columns = {c.name for c in ENTITIES[entity].columns}
        asked = [*by, *where, *(numerator or {})]
        bad = [c for c in asked if c not in columns]
        if bad:
            raise UserError(
                f"{entity} has no field {bad[0]!r}; its fields are {', '.join(sorted(columns))}."
            )
        definition = _table_definition(entity, by, where, numerator)
        if numerator is not None and epsilon is not None:
            raise UserError("rates are released with suppression, not with epsilon.")
        rows, grants = self._units(access, entity, sorted(set(asked)))
        if epsilon is not None:
            return self._dp(access, definition, rows, grants, by, where, epsilon)
        return self._suppressed(access, definition, rows, grants, by, where, numerator)

    def count_derived(
        self,
        access: Access,
        inputs: Mapping[str, tuple[str, Sequence[str]]],
        derive_sql: str,
        params: list[object],
        by: list[str],
        where: dict[str, Sequence[object]],
        numerator: dict[str, Sequence[object]] | None,
        definition: dict[str, Any],
        optional: Collection[str] = (),
    ) -> Release:
        """Persons per group of a measure derived per person from one or more
        entities (see :meth:`Access.count_derived`). The gate reads the units and
        the grants itself; the derivation only shapes them, and is checked: every
        unit, record and provider it returns is one it was given."""
        names = list(dict.fromkeys(e for e, _ in inputs.values()))
        entity = "+".join(names)
        definition = {
            **definition,
            **_table_definition(entity, by, where, numerator),
            "entities": names,
        }
        asked = [*by, *where, *(numerator or {})]
        tables, grants, refused = self._inputs(access, inputs, optional)
        if refused:
            definition["left_out"] = refused
        con = self._locked(tables)
        try:
            rows = con.sql(derive_sql, params=params).to_arrow_table()
            missing = {"provider", "unit", "record", *asked} - set(rows.column_names)
            if missing:
                raise UserError(f"cannot count by {sorted(missing)[0]!r}.")
            self._check_strays(con, rows, tables)
        finally:
            con.close()
        keep = ["provider", "unit", "record", *dict.fromkeys(asked)]
        return self._suppressed(
            access, definition, rows.select(keep), grants, by, where, numerator
        )

    def statistics(
        self,
        access: Access,
        inputs: Mapping[str, tuple[str, Sequence[str]]],
        derive: Callable[[duckdb.DuckDBPyConnection], Derived],
        definition: dict[str, Any],
        optional: Collection[str] = (),
    ) -> StatisticsRelease:
        """Statistics (means, effects) of groups of persons, through the gate.

        ``derive`` runs over a locked database of the permitted inputs (one table
        per alias, each row with its provider, unit and record) and returns the
        groups of persons (cells) and the statistics computed from them. The cells
        are protected exactly as counts are, earlier releases included (so a mean
        over a group one person larger than an earlier one is not published); a
        statistic is published only when every cell it is computed from is.
        """
        definition = {
            **definition,
            "inputs": {a: [e, sorted(c)] for a, (e, c) in sorted(inputs.items())},
            "entities": sorted({e for e, _ in inputs.values()}),
        }
        tables, grants, refused = self._inputs(access, inputs, optional)
        if "dp" in self._previous_modes(definition, grants):
            raise access._deny(
                "release",
                f"statistics: {definition.get('name', 'unnamed')}",
                "some of this data was released with differential privacy; "
                "releasing it suppressed as well would undo the noise",
            )
        if refused:
            definition["left_out"] = refused
        con = self._locked(tables)
        try:
            derived = derive(con)
            con.register("members", derived.members.select(["label", "unit"]))
            union = _every_unit_sql(tables)
            pairs = con.sql(
                f"SELECT DISTINCT u.unit, u.record, u.provider, m.label "
                f"FROM members m JOIN ({union}) u USING (unit)"
            ).to_arrow_table()
            lost = con.execute(
                f"SELECT count(*) FROM members m WHERE NOT EXISTS "
                f"(SELECT 1 FROM ({union}) u WHERE u.unit = m.unit)"
            ).fetchall()[0]
        finally:
            con.close()
        if lost and lost[0]:
            raise ValueError("a derivation returned units it was not given")
        what = f"statistics: {definition.get('name', 'unnamed')}"
        if not grants:
            raise access._deny("release", what, "no input was shared for aggregates")
        done = self._protect(
            access,
            definition,
            grants,
            what,
            pairs,
            "SELECT DISTINCT unit, record, provider, label FROM rows",
            [],
            None,
        )
        published = {
            lab: (None if sup else int(v))
            for lab, v, sup in zip(
                done.labels, done.values, done.suppressed, strict=True
            )
        }
        stats = []
        for st in derived.statistics:
            _check_values(st)
            unknown = [c for c in st.cells if c not in published]
            if unknown:
                raise ValueError(
                    f"statistic {st.key} names a cell with no one: {unknown[0]}"
                )
            shown = all(published[c] is not None for c in st.cells)
            stats.append(
                PublishedStatistic(
                    st.key,
                    {c: published[c] for c in st.cells},
                    dict(st.values) if shown else None,
                    ""
                    if shown
                    else "suppressed: a group it counts is too small "
                    "or would reveal another",
                )
            )
        return StatisticsRelease(
            done.release_id,
            stats,
            len(done.labels),
            int(done.suppressed.sum()),
            tuple(sorted({g.agreement for g in grants if g.agreement})),
            refused,
        )

    def _inputs(
        self,
        access: Access,
        inputs: Mapping[str, tuple[str, Sequence[str]]],
        optional: Collection[str],
    ) -> tuple[dict[str, pa.Table], list[Grant], dict[str, str]]:
        """Each input's permitted rows as units (one call of :meth:`_units` per
        entity); an optional input the reader may not aggregate is left empty,
        with the reason."""
        tables: dict[str, pa.Table] = {}
        grants: list[Grant] = []
        refused: dict[str, str] = {}
        for alias, (entity, columns) in inputs.items():
            if entity not in ENTITIES:
                raise UserError(f"unknown entity {entity!r}.")
            partly: list[str] = []
            try:
                units, used = self._units(
                    access, entity, columns, partial=True, refused=partly
                )
                if partly:
                    # some providers' rows are not in it: say whose, and why
                    refused[alias] = "partly: " + "; ".join(partly)
            except PolicyDenied as denied:
                if alias not in optional:
                    raise
                types = {c.name: c.type for c in ENTITIES[entity].columns}
                units = pa.table(
                    {
                        "provider": pa.array([], pa.string()),
                        **{
                            c: pa.array([], _ARROW_TYPES.get(types[c], pa.string()))
                            for c in columns
                        },
                        "unit": pa.array([], pa.string()),
                        "record": pa.array([], pa.string()),
                    }
                )
                used = []
                refused[alias] = str(denied)
            tables[alias] = units
            grants.extend(used)
        return tables, grants, refused

    def _locked(self, tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
        """A locked database of the inputs and the reference tables a measure
        needs (schools, programs, initiatives, colleges: no person in them)."""
        from backbone.governance.access import locked_connection

        reference = {
            name: self._con.sql(f"SELECT * FROM ref.{name}").to_arrow_table()
            for name in REFERENCE_TABLES
        }
        return locked_connection({**reference, **tables})

    @staticmethod
    def _check_strays(
        con: duckdb.DuckDBPyConnection, rows: pa.Table, tables: dict[str, pa.Table]
    ) -> None:
        con.register("derived", rows)
        union = _every_unit_sql(tables)
        strays = con.execute(
            f"SELECT count(*) FROM derived d WHERE NOT EXISTS (SELECT 1 FROM "
            f"({union}) u WHERE u.unit = d.unit AND u.record = d.record "
            "AND u.provider = d.provider)"
        ).fetchall()[0]
        if strays and strays[0]:
            raise ValueError("a derivation returned units it was not given")

    def _previous_modes(
        self, definition: dict[str, Any], grants: list[Grant]
    ) -> set[str]:
        """How earlier releases of the same entity with data of any of the same
        providers were made: one universe is released one way only, whatever the
        filters or dimensions (a noisy table and a suppressed one of overlapping
        cells can be combined)."""
        entities = sorted(
            {definition.get("entity", ""), *definition.get("entities", [])} - {""}
        )
        # a table of several entities names them all ("entities"); one of one
        # entity its "entity": either way, any shared entity counts
        return {
            r[0]
            for r in self._con.execute(
                "SELECT DISTINCT mode FROM gov.release "
                "WHERE (list_contains(?, json_extract_string(definition, '$.entity')) "
                "OR list_has_any(?, coalesce(CAST(json_extract(definition, "
                "'$.entities') AS VARCHAR[]), []))) "
                "AND list_has_any(CAST(json(providers) AS VARCHAR[]), ?)",
                [entities, entities, sorted({g.provider for g in grants})],
            ).fetchall()
        }

    def _suppressed(
        self,
        access: Access,
        definition: dict[str, Any],
        rows: pa.Table,
        grants: list[Grant],
        by: list[str],
        where: dict[str, Sequence[object]],
        numerator: dict[str, Sequence[object]] | None = None,
    ) -> Release:
        what = f"count of {definition['entity']} by {', '.join(by) or 'nothing'}"
        if "dp" in self._previous_modes(definition, grants):
            raise access._deny(
                "release",
                what,
                "this data was released with differential privacy; releasing it "
                "suppressed as well would undo the noise",
            )
        sql, params = cell_pairs_sql(by, where)
        if numerator is not None:
            # a rate's counts: those matching, and the rest, are cells as well,
            # so that neither can be read off the rate or worked out from margins
            num_sql, num_params = cell_pairs_sql(by, {**where, **numerator}, tag="#")
            rest_sql, rest_params = cell_pairs_sql(
                by, where, tag="!", exclude=numerator
            )
            sql = f"{sql} UNION ALL {num_sql} UNION ALL {rest_sql}"
            params = [*params, *num_params, *rest_params]
        coding = _coding(grants) if numerator is not None else None
        done = self._protect(
            access, definition, grants, what, rows, sql, params, coding
        )
        agreements = tuple(sorted({g.agreement for g in grants if g.agreement}))
        table = _table(by, done.labels, done.values, done.suppressed, done.primary)
        if numerator is not None and done.labels:
            table = _rates(by, table, done.labels, done.thresholds, _coding(grants))
        return Release(
            done.release_id,
            table,
            len(done.labels),
            int(done.suppressed.sum()),
            agreements,
            "suppression",
        )

    def _protect(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        what: str,
        rows: pa.Table,
        pairs_sql: str,
        params: list[object],
        coding: tuple[float | None, float | None] | None,
    ) -> Protected:
        """Suppress the cells ``pairs_sql`` forms over the locked ``rows`` (as
        (unit, record, provider, label)) against this table and every earlier
        release they overlap, and record them in the ledger. ``coding``: a rate's
        top and bottom coding (its ``#`` and ``!`` cells are protected with it)."""
        from backbone.governance.disclosure import protect  # SciPy's LP solver

        min_cell = pa.table(
            {
                "provider": [g.provider for g in grants],
                "min_cell": [g.min_cell_size for g in grants],
            }
        )
        sql = pairs_sql
        local = duckdb.connect(":memory:")
        try:
            local.register("rows_arrow", rows)
            local.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
            local.unregister("rows_arrow")
            local.execute(f"CREATE TABLE pairs AS {sql}", params)
            local.execute(
                "CREATE TABLE cells AS SELECT label, "
                "CAST(row_number() OVER (ORDER BY label) - 1 AS INTEGER) AS cell "
                "FROM (SELECT DISTINCT label FROM pairs)"
            )
            # the strictest minimum of the providers whose data is in each cell
            local.register("min_cell", min_cell)
            thresholds_t = local.sql(
                "SELECT c.cell, c.label, max(m.min_cell) AS threshold FROM pairs p "
                "JOIN cells c USING (label) JOIN min_cell m USING (provider) "
                "GROUP BY c.cell, c.label ORDER BY c.cell"
            ).to_arrow_table()
            local.execute(
                "CREATE TABLE new_pairs AS SELECT DISTINCT unit, cell FROM pairs "
                "JOIN cells USING (label)"
            )
            new_members = local.sql(
                "SELECT DISTINCT cell, unit, record FROM pairs JOIN cells "
                "USING (label) ORDER BY cell, unit, record"
            ).to_arrow_table()
            # the same cells of the same persons as an earlier release (an
            # evaluation run again on unchanged data): its decisions stand, and
            # showing them again reveals nothing new
            fingerprint = local.execute(
                "SELECT sha256(coalesce(string_agg(part, ';' ORDER BY part), '') || ?)"
                " FROM (SELECT DISTINCT c.label || '|' || p.unit || '|' || p.record "
                "|| '|' || t.threshold AS part FROM pairs p JOIN cells c USING (label)"
                " JOIN (SELECT c2.label, max(m.min_cell) AS threshold FROM pairs q "
                "JOIN cells c2 USING (label) JOIN min_cell m USING (provider) "
                "GROUP BY c2.label) t ON t.label = c.label)",
                [canonical_json({"coding": coding})],
            ).fetchall()[0][0]
            definition["fingerprint"] = fingerprint
            same = self._same_release(fingerprint)
            if same is not None:
                return self._repeat(access, definition, grants, same)
            # earlier releases that counted any of the same persons or records
            prior = self._prior(new_members, access._keys.derive("ledger"))
            local.register("prior_pairs", prior["pairs"])
            local.register("prior_cells", prior["cells"])
            local.register("now_of", prior["now_of"])
            n_new = thresholds_t.num_rows
            # one global cell number: this release's cells first, then earlier ones
            local.execute(
                "CREATE TABLE old_cells AS SELECT release_id, cell, threshold, published, "
                f"CAST({n_new} + row_number() OVER (ORDER BY release_id, cell) - 1 "
                "AS INTEGER) AS g FROM prior_cells"
            )
            # an atom's minimum is the strictest of its persons' providers (-1
            # when all its persons come from earlier releases only)
            # earlier releases keep the persons they counted; a record counted
            # before it was first linked is followed to its person now, unless
            # that would merge it with someone the release already counted
            local.execute(
                """
                CREATE TABLE prior_units AS
                WITH forward AS (
                    SELECT p.release_id, n.unit AS now_unit,
                           count(DISTINCT p.record) AS records
                    FROM prior_pairs p JOIN now_of n ON n.record = p.record
                    WHERE p.unit = p.record GROUP BY p.release_id, n.unit),
                safe AS (
                    SELECT f.release_id, f.now_unit FROM forward f
                    WHERE f.records = 1 AND NOT EXISTS (
                        SELECT 1 FROM prior_pairs q
                        WHERE q.release_id = f.release_id AND q.unit = f.now_unit))
                SELECT p.release_id, p.cell, coalesce(s.now_unit, p.unit) AS unit
                FROM prior_pairs p
                LEFT JOIN now_of n ON n.record = p.record AND p.unit = p.record
                LEFT JOIN safe s ON s.release_id = p.release_id AND s.now_unit = n.unit
                """
            )
            atoms_t = local.sql(
                """
                WITH every AS (
                    SELECT unit, cell AS g FROM new_pairs
                    UNION ALL
                    SELECT u.unit, o.g FROM prior_units u
                    JOIN old_cells o USING (release_id, cell)),
                unit_min AS (
                    SELECT p.unit, max(m.min_cell) AS min_cell FROM pairs p
                    JOIN min_cell m USING (provider) GROUP BY p.unit),
                signature AS (
                    SELECT unit, list_sort(list_distinct(list(g))) AS cells
                    FROM every GROUP BY unit)
                SELECT s.cells, count(*) AS units,
                       coalesce(max(u.min_cell), -1) AS min_cell
                FROM signature s LEFT JOIN unit_min u USING (unit)
                GROUP BY s.cells ORDER BY s.cells
                """
            ).to_arrow_table()
            old = local.sql(
                "SELECT threshold, published FROM old_cells ORDER BY g"
            ).to_arrow_table()
        finally:
            local.close()
        labels = thresholds_t.column("label").to_pylist()
        if not labels:
            # nobody matched: an empty table reveals no one (zeros are published)
            empty = np.zeros(0, dtype=np.int64)
            release_id = self._record(
                access,
                definition,
                grants,
                "suppression",
                [],
                empty,
                empty.astype(bool),
                empty,
                None,
                None,
            )
            return Protected(
                release_id, [], empty, empty.astype(bool), empty.astype(bool), empty
            )
        thresholds = np.asarray(
            thresholds_t.column("threshold").to_pylist(), dtype=np.int64
        )
        n_cells = n_new + old.num_rows
        M = np.zeros((n_cells, atoms_t.num_rows), dtype=np.int64)
        for j, cells in enumerate(atoms_t.column("cells").to_pylist()):
            M[cells, j] = 1
        atom_counts = np.asarray(atoms_t.column("units").to_pylist(), dtype=np.int64)
        all_thresholds = np.concatenate(
            [
                thresholds,
                np.asarray(old.column("threshold").to_pylist(), dtype=np.int64),
            ]
        )
        new_cells = np.zeros(n_cells, dtype=bool)
        new_cells[:n_new] = True
        prior_published = np.zeros(n_cells, dtype=bool)
        prior_published[n_new:] = np.asarray(
            old.column("published").to_pylist(), dtype=bool
        )
        if coding is not None:
            _force_coded(labels, M @ atom_counts, all_thresholds, coding)
        atom_min = np.asarray(atoms_t.column("min_cell").to_pylist(), dtype=np.int64)
        inherited = np.where(M.astype(bool), all_thresholds[:, None], 0).max(axis=0)
        atom_thresholds = np.where(atom_min >= 0, atom_min, inherited)
        result = protect(
            M,
            atom_counts,
            all_thresholds,
            new_cells=new_cells,
            prior_published=prior_published,
            complementary=True,
            atom_thresholds=atom_thresholds,
        )
        values = M @ atom_counts
        if result.refused:
            raise access._deny(
                "release",
                what,
                "no suppression pattern protects every small group against this "
                "table and the earlier releases it overlaps; nothing was released",
                providers=sorted({g.provider for g in grants}),
                agreements=sorted({g.agreement for g in grants if g.agreement}),
            )
        suppressed = result.suppressed[: len(labels)]
        release_id = self._record(
            access,
            definition,
            grants,
            "suppression",
            labels,
            values[: len(labels)],
            suppressed,
            thresholds,
            new_members,
            None,
        )
        return Protected(
            release_id,
            labels,
            values[: len(labels)],
            suppressed,
            result.primary[: len(labels)],
            thresholds,
        )

    def _same_release(self, fingerprint: str) -> int | None:
        row = self._con.execute(
            "SELECT min(release_id) FROM gov.release WHERE mode = 'suppression' "
            "AND json_extract_string(definition, '$.fingerprint') = ?",
            [fingerprint],
        ).fetchall()
        return int(row[0][0]) if row and row[0][0] is not None else None

    def _repeat(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        earlier: int,
    ) -> Protected:
        """Record a release of exactly an earlier one's cells with its decisions
        (a new disclosure, so a new ledger entry; its persons are the earlier
        release's, which the ledger already holds)."""
        cells = self._con.sql(
            "SELECT label, value, published, threshold FROM gov.release_cell "
            "WHERE release_id = ? ORDER BY cell",
            params=[earlier],
        ).to_arrow_table()
        labels = cells.column("label").to_pylist()
        values = np.asarray(cells.column("value").to_pylist(), dtype=np.int64)
        suppressed = ~np.asarray(cells.column("published").to_pylist(), dtype=bool)
        thresholds = np.asarray(cells.column("threshold").to_pylist(), dtype=np.int64)
        definition["same_as"] = earlier
        release_id = self._record(
            access,
            definition,
            grants,
            "suppression",
            labels,
            values,
            suppressed,
            thresholds,
            None,
            None,
        )
        primary = suppressed & (values > 0) & (values < thresholds)
        return Protected(release_id, labels, values, suppressed, primary, thresholds)

    def _prior(self, members: pa.Table, key: str) -> dict[str, pa.Table]:
        """Members and cells of every earlier release that counted any of the
        same persons or records, and the person each linked record belongs to now."""
        self._con.register("new_members", members)
        try:
            self._con.execute(
                "CREATE OR REPLACE TEMP TABLE hit AS SELECT DISTINCT m.release_id "
                "FROM gov.release_member m WHERE m.unit IN (SELECT unit FROM "
                "new_members) OR m.record IN (SELECT record FROM new_members)"
            )
            pairs = self._con.sql(
                "SELECT m.release_id, m.cell, m.unit, m.record FROM gov.release_member m "
                "JOIN hit USING (release_id)"
            ).to_arrow_table()
            cells = self._con.sql(
                "SELECT c.release_id, c.cell, c.threshold, c.published "
                "FROM gov.release_cell c JOIN hit USING (release_id)"
            ).to_arrow_table()
            self._con.execute("DROP TABLE hit")
        finally:
            self._con.unregister("new_members")
        # unlinked records are their own unit; linked ones are their person's
        now_of = self._con.sql(
            f"SELECT {RECORD_HASH.format(provider='partner_id', local='local_id')} "
            "AS record, substr(sha256(? || sha256(? || CAST(person_id AS VARCHAR))), "
            "1, 20) AS unit FROM identity.record_person",
            params=[key, key, key, key],
        ).to_arrow_table()
        return {"pairs": pairs, "cells": cells, "now_of": now_of}

    def _record(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        mode: str,
        labels: list[str],
        values: np.ndarray[Any, Any],
        suppressed: np.ndarray[Any, Any],
        thresholds: np.ndarray[Any, Any],
        pairs: pa.Table | None,
        epsilon: float | None,
    ) -> int:
        agreements = sorted({g.agreement for g in grants if g.agreement})
        providers = sorted({g.provider for g in grants})
        release_id = next_id(self._con, "gov.release_id_seq")
        self._con.execute(
            "INSERT INTO gov.release VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                release_id,
                self._clock(),
                access.principal.user_id,
                access.principal.partner_id,
                access.purpose,
                canonical_json(definition),
                ",".join(agreements),
                json.dumps(providers),
                mode,
                len(labels),
                int(suppressed.sum()),
                epsilon,
            ],
        )
        cells = pa.table(
            {
                "release_id": pa.array([release_id] * len(labels), pa.int64()),
                "cell": pa.array(range(len(labels)), pa.int32()),
                "label": pa.array(labels, pa.string()),
                "value": pa.array([int(v) for v in values], pa.int64()),
                "published": pa.array([not bool(s) for s in suppressed], pa.bool_()),
                "threshold": pa.array([int(t) for t in thresholds], pa.int32()),
            }
        )
        self._con.register("new_cells", cells)
        try:
            self._con.execute("INSERT INTO gov.release_cell SELECT * FROM new_cells")
        finally:
            self._con.unregister("new_cells")
        if pairs is not None and pairs.num_rows:
            self._con.register("members", pairs)
            try:
                self._con.execute(
                    "INSERT INTO gov.release_member "
                    "SELECT ?, CAST(cell AS INTEGER), unit, record FROM members",
                    [release_id],
                )
            finally:
                self._con.unregister("members")
        self._audit.append(
            AuditEntry(
                "release",
                access.principal.user_id,
                actor_partner=access.principal.partner_id,
                purpose=access.purpose,
                agreements=tuple(agreements),
                providers=tuple(providers),
                what=f"release {release_id}: {canonical_json(definition)}",
                cells=len(labels),
                suppressed=int(suppressed.sum()),
                epsilon=epsilon,
                reason="; ".join(g.reason for g in grants),
                detail={"mode": mode},
            )
        )
        return release_id

    # --- differential privacy ----------------------------------------------------

    def _dp(
        self,
        access: Access,
        definition: dict[str, Any],
        rows: pa.Table,
        grants: list[Grant],
        by: list[str],
        where: dict[str, Sequence[object]],
        epsilon: float,
    ) -> Release:
        from backbone.governance.dp import dp_counts

        what = (
            f"private count of {definition['entity']} by {', '.join(by) or 'nothing'}"
        )
        if epsilon <= 0:
            raise UserError("epsilon must be greater than 0.")
        if "suppression" in self._previous_modes(definition, grants):
            raise access._deny(
                "release",
                what,
                "this data was released with suppression; a noisy release of "
                "overlapping cells would let the two be combined",
            )
        for g in grants:
            if g.agreement is None:
                continue
            if g.dp_budget is None:
                raise access._deny(
                    "release",
                    what,
                    f"{g.agreement} sets no differential-privacy budget",
                    agreements=[g.agreement],
                )
            spent = self._spent(g.agreement.split("@")[0])
            if spent + epsilon > g.dp_budget + 1e-12:
                raise access._deny(
                    "release",
                    what,
                    f"{g.agreement}'s privacy budget is spent "
                    f"({spent:g} of {g.dp_budget:g}; this asks {epsilon:g})",
                    agreements=[g.agreement],
                )
        local = duckdb.connect(":memory:")
        try:
            local.register("rows_arrow", rows)
            filters, params = [], []
            for column, values in where.items():
                filters.append(f"list_contains(?, CAST({column} AS VARCHAR))")
                params.append([str(v) for v in values])
            cond = f"WHERE {' AND '.join(filters)}" if filters else ""
            dims = ", ".join(f"CAST({b} AS VARCHAR) AS {b}" for b in by)
            # each person is counted once, in one group, so one person's data
            # changes one count by one (the privacy unit)
            frame = local.sql(
                f"SELECT {dims or '1 AS _all'} FROM (SELECT *, row_number() OVER "
                f"(PARTITION BY unit ORDER BY {', '.join(by) or 'unit'}) AS k "
                f"FROM rows_arrow {cond}) WHERE k = 1",
                params=params,
            ).to_arrow_table()
        finally:
            local.close()
        result = dp_counts(frame, by or ["_all"], None, epsilon, DP_DELTA)
        table = result.table
        release_id = self._record(
            access,
            definition,
            grants,
            "dp",
            [json.dumps(r) for r in table.select(by or ["_all"]).to_pylist()],
            np.zeros(table.num_rows, dtype=np.int64),
            np.zeros(table.num_rows, dtype=bool),
            np.zeros(table.num_rows, dtype=np.int64),
            None,
            epsilon,
        )
        for g in grants:
            if g.agreement is not None:
                self._con.execute(
                    "INSERT INTO gov.dp_spend VALUES (?, ?, ?, ?, ?)",
                    [
                        g.agreement.split("@")[0],
                        release_id,
                        epsilon,
                        DP_DELTA,
                        self._clock(),
                    ],
                )
        return Release(
            release_id,
            table,
            table.num_rows,
            0,
            tuple(sorted({g.agreement for g in grants if g.agreement})),
            "dp",
            epsilon,
            result.accuracy,
        )

    def _spent(self, agreement_id: str) -> float:
        row = self._con.execute(
            "SELECT coalesce(sum(epsilon), 0) FROM gov.dp_spend WHERE agreement = ?",
            [agreement_id],
        ).fetchone()
        return float(row[0]) if row else 0.0

    def budget(self, agreement_id: str) -> float:
        """Epsilon spent so far under an agreement."""
        return self._spent(agreement_id)


def _every_unit_sql(tables: Mapping[str, pa.Table]) -> str:
    """Every (unit, record, provider) the gate gave a derivation."""
    return " UNION ".join(
        f"SELECT unit, record, provider FROM {ident(a)}" for a in tables
    )


def _check_values(statistic: Statistic) -> None:
    """A statistic is a few numbers and words, never rows: anything else is a
    derivation's mistake, refused before anything leaves."""
    for name, value in statistic.values.items():
        ok = value is None or isinstance(value, str | bool | int)
        if isinstance(value, float):
            ok = math.isfinite(value)
        if not ok or (isinstance(value, str) and len(value) > 200):
            raise ValueError(
                f"statistic {statistic.key}: {name} is not a single number or word"
            )


def _coding(grants: list[Grant]) -> tuple[float | None, float | None]:
    """The strictest top and bottom coding any provider's agreement asks for."""
    tops = [g.top_bottom[0] for g in grants if g.top_bottom]
    bottoms = [g.top_bottom[1] for g in grants if g.top_bottom]
    return (min(tops) if tops else None, max(bottoms) if bottoms else None)


def _force_coded(
    labels: list[str],
    values: np.ndarray[Any, Any],
    thresholds: np.ndarray[Any, Any],
    coding: tuple[float | None, float | None],
) -> None:
    """A rate that will be top or bottom coded must not show its counts: raise the
    thresholds of its matching and rest cells above their values (in place), so
    that suppression, complements included, treats them as small."""
    top, bottom = coding
    if top is None and bottom is None:
        return
    index = {lab: i for i, lab in enumerate(labels)}
    for lab, i in index.items():
        if lab[0] in "#!" or not values[i]:
            continue
        matching = values[index["#" + lab]] if "#" + lab in index else 0
        rate = 100.0 * matching / values[i]
        if (top is not None and rate > top) or (bottom is not None and rate < bottom):
            for part in ("#" + lab, "!" + lab):
                j = index.get(part)
                if j is not None and values[j] > 0:
                    thresholds[j] = max(int(thresholds[j]), int(values[j]) + 1)


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
            columns["note"].append("suppressed with its counts")
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
        columns["note"].append(
            "rate would reveal a small count" if coded.suppressed[0] else ""
        )
    return pa.table(
        {
            name: pa.array(values, pa.float64())
            if name == "rate_value"
            else pa.array(values)
            for name, values in columns.items()
        }
    )


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
    columns["note"] = [
        ("fewer than the minimum" if p else "suppressed to protect another cell")
        if s
        else ""
        for s, p in zip(suppressed, primary, strict=True)
    ]
    return pa.table(columns)
