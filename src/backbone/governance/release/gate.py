"""The release gate itself: it reads the permitted units, derives and counts, and
sends each table down the suppression or the differential-privacy path."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from backbone.engines import Connection, arrow, register
from backbone.engines.sql import ident
from backbone.errors import PolicyDenied, UserError
from backbone.governance.audit import AuditLog
from backbone.governance.policy import (
    ENTITIES,
    Grant,
    permitted_rows_sql,
    subject_columns,
)
from backbone.governance.release.cells import RECORD_HASH, _table_definition
from backbone.governance.release.privacy import DifferentialPrivacy
from backbone.governance.release.results import (
    Derived,
    PublishedStatistic,
    Release,
    Statistic,
    StatisticsRelease,
)
from backbone.governance.release.suppression import Suppression
from backbone.partners.agreements.document import AccessLevel

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["REFERENCE_TABLES", "ReleaseGate"]

# Reference tables a derivation may read beside its inputs (no person in them).
REFERENCE_TABLES = (
    "school",
    "program",
    "initiative",
    "initiative_program",
    "postsecondary_institution",
)


class ReleaseGate(Suppression, DifferentialPrivacy):
    def __init__(
        self,
        con: Connection,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        audit_capacity: int = 0,
        hand_back: Callable[[], AbstractContextManager[bool]] | None = None,
    ) -> None:
        self._con = con
        self._audit = audit
        self._clock = clock
        self._audit_capacity = audit_capacity
        self._hand_back = hand_back or (lambda: nullcontext(False))

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
                arrow(self._con, f"SELECT {select} FROM ({sql})", [key, key, *params])
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
        private = _private(grants)
        if private and epsilon is None:
            if numerator is not None:
                raise _by_privacy_only(access, f"rate of {entity}", private)
            epsilon = min(g.private_epsilon for g in private)  # type: ignore[type-var]
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
        if _private(grants):
            raise _by_privacy_only(access, f"count of {entity}", _private(grants))
        if refused:
            definition["left_out"] = refused
        con = self._locked(tables)
        try:
            # the derivation needs only the locked copy: the warehouse file is
            # handed back to other processes meanwhile
            with self._hand_back():
                rows = arrow(con, derive_sql, params)
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
        derive: Callable[[Connection], Derived],
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
        if _private(grants):
            raise _by_privacy_only(
                access,
                f"statistics: {definition.get('name', 'unnamed')}",
                _private(grants),
            )
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
            # matching and statistics need only the locked copy of the inputs: the
            # warehouse file is handed back to other processes while they run
            with self._hand_back():
                derived = derive(con)
            register(con, "members", derived.members.select(["label", "unit"]))
            union = _every_unit_sql(tables)
            pairs = arrow(
                con,
                f"SELECT DISTINCT u.unit, u.record, u.provider, m.label "
                f"FROM members m JOIN ({union}) u USING (unit)",
            )
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
                # empty, typed as the entity's own columns (a number stays a
                # number: an average over it is NULL, not a type error)
                cols = ", ".join(ident(c) for c in columns)
                units = arrow(
                    self._con,
                    f"SELECT CAST(NULL AS VARCHAR) AS provider, {cols}, "
                    "CAST(NULL AS VARCHAR) AS unit, CAST(NULL AS VARCHAR) AS record "
                    f"FROM {ENTITIES[entity].qualified_name} WHERE false",
                )
                used = []
                refused[alias] = str(denied)
            tables[alias] = units
            grants.extend(used)
        return tables, grants, refused

    def _locked(self, tables: dict[str, pa.Table]) -> Connection:
        """A locked database of the inputs and the reference tables a measure
        needs (schools, programs, initiatives, colleges: no person in them)."""
        from backbone.governance.access import locked_connection

        reference = {
            name: arrow(self._con, f"SELECT * FROM ref.{name}")
            for name in REFERENCE_TABLES
        }
        return locked_connection({**reference, **tables})

    @staticmethod
    def _check_strays(
        con: Connection, rows: pa.Table, tables: dict[str, pa.Table]
    ) -> None:
        register(con, "derived", rows)
        union = _every_unit_sql(tables)
        strays = con.execute(
            f"SELECT count(*) FROM derived d WHERE NOT EXISTS (SELECT 1 FROM "
            f"({union}) u WHERE u.unit = d.unit AND u.record = d.record "
            "AND u.provider = d.provider)"
        ).fetchall()[0]
        if strays and strays[0]:
            raise ValueError("a derivation returned units it was not given")


def _private(grants: Sequence[Grant]) -> list[Grant]:
    """The grants whose agreements publish by differential privacy."""
    return [g for g in grants if g.private_epsilon is not None]


def _by_privacy_only(
    access: Access, what: str, private: Sequence[Grant]
) -> PolicyDenied:
    names = sorted({g.agreement for g in private if g.agreement})
    return access._deny(
        "release",
        what,
        f"{', '.join(names)} publish{'es' if len(names) == 1 else ''} by "
        "differential privacy (publication.method): only noisy counts of that data "
        "leave, not rates, derived measures or statistics",
        agreements=names,
    )


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
