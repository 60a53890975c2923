"""Releasing with suppression: a table's cells are protected against it and every
earlier release they overlap (:mod:`backbone.governance.disclosure` decides),
then recorded."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbone.engines import arrow, register, scratch, unregister
from backbone.governance.audit import canonical_json
from backbone.governance.policy import Grant
from backbone.governance.release.cells import _rates, _table, cell_pairs_sql
from backbone.governance.release.ledger import Ledger, Protected
from backbone.governance.release.results import Release

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["Suppression"]


class Suppression(Ledger):
    """The release gate's suppression path."""

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
        *,
        hand_back: bool = True,
    ) -> Protected:
        """Suppress the cells ``pairs_sql`` forms over the locked ``rows`` (as
        (unit, record, provider, label)) against this table and every earlier
        release they overlap, and record them in the ledger. ``coding``: a rate's
        top and bottom coding (its ``#`` and ``!`` cells are protected with it)."""
        # SciPy's LP solver
        from backbone.governance.disclosure import protect, sums_of_published

        min_cell = pa.table(
            {
                "provider": [g.provider for g in grants],
                "min_cell": [g.min_cell_size for g in grants],
            }
        )
        sql = pairs_sql
        local = scratch()
        try:
            register(local, "rows_arrow", rows)
            local.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
            unregister(local, "rows_arrow")
            local.execute(f"CREATE TABLE pairs AS {sql}", params)
            local.execute(
                "CREATE TABLE cells AS SELECT label, "
                "CAST(row_number() OVER (ORDER BY label) - 1 AS INTEGER) AS cell "
                "FROM (SELECT DISTINCT label FROM pairs)"
            )
            # the strictest minimum of the providers whose data is in each cell
            register(local, "min_cell", min_cell)
            thresholds_t = arrow(
                local,
                "SELECT c.cell, c.label, max(m.min_cell) AS threshold FROM pairs p "
                "JOIN cells c USING (label) JOIN min_cell m USING (provider) "
                "GROUP BY c.cell, c.label ORDER BY c.cell",
            )
            local.execute(
                "CREATE TABLE new_pairs AS SELECT DISTINCT unit, cell FROM pairs "
                "JOIN cells USING (label)"
            )
            new_members = arrow(
                local,
                "SELECT DISTINCT cell, unit, record FROM pairs JOIN cells "
                "USING (label) ORDER BY cell, unit, record",
            )
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
            # Past the capacity the audit's cost has no useful bound: refuse, on
            # public figures only (the sizes of the tables already released)
            capacity = self._audit_capacity
            if capacity:
                before = self._released_cells(definition, grants)
                if before >= capacity:
                    raise access._deny(
                        "release",
                        what,
                        f"{before} cells of this data were already released with "
                        "suppression, the gate's audit capacity "
                        f"(governance.audit_capacity = {capacity}); publish it by "
                        "differential privacy (the agreements' publication.method) "
                        "instead",
                        providers=sorted({g.provider for g in grants}),
                    )
            # earlier releases that counted any of the same persons or records
            prior = self._prior(new_members, access._keys.derive("ledger"))
            register(local, "prior_pairs", prior["pairs"])
            register(local, "prior_cells", prior["cells"])
            register(local, "now_of", prior["now_of"])
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
            # each cell's persons as one fingerprint: a new cell with an earlier
            # cell's exact persons adds nothing to what that cell's status says
            seen = arrow(
                local,
                """
                WITH new_sig AS (
                    SELECT cell, sha256(string_agg(unit, ',' ORDER BY unit)) AS sig,
                           count(*) AS persons
                    FROM new_pairs GROUP BY cell),
                old_sig AS (
                    SELECT o.g, any_value(o.published) AS published,
                           sha256(string_agg(DISTINCT u.unit, ',' ORDER BY u.unit)) AS sig
                    FROM prior_units u JOIN old_cells o USING (release_id, cell)
                    GROUP BY o.g)
                SELECT n.cell, n.persons, count(o.g) > 0 AS matched,
                       coalesce(bool_or(o.published), false) AS published
                FROM new_sig n LEFT JOIN old_sig o USING (sig)
                GROUP BY n.cell, n.persons ORDER BY n.cell
                """,
            )
            atoms_t = arrow(
                local,
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
                """,
            )
            old = arrow(
                local,
                "SELECT threshold, published, release_id FROM old_cells ORDER BY g",
            )
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
        if seen.num_rows == n_new and all(seen.column("matched").to_pylist()):
            return self._seen_before(
                access,
                definition,
                grants,
                labels,
                thresholds,
                seen,
                new_members,
                coding,
            )
        n_cells = n_new + old.num_rows
        M = np.zeros((n_cells, atoms_t.num_rows), dtype=np.int64)
        cell_lists = atoms_t.column("cells").combine_chunks()
        M[
            pc.list_flatten(cell_lists).to_numpy(),
            pc.list_parent_indices(cell_lists).to_numpy(),
        ] = 1
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
        values = M @ atom_counts
        tables = np.concatenate(
            [
                np.full(n_new, -1, dtype=np.int64),
                np.asarray(old.column("release_id").to_pylist(), dtype=np.int64),
            ]
        )
        if sums_of_published(M, atom_counts, new_cells, prior_published, tables)[
            :n_new
        ].all():
            return self._public_already(
                access,
                definition,
                grants,
                labels,
                values[:n_new],
                all_thresholds[:n_new],
                thresholds,
                new_members,
            )
        atom_min = np.asarray(atoms_t.column("min_cell").to_pylist(), dtype=np.int64)
        inherited = np.where(M.astype(bool), all_thresholds[:, None], 0).max(axis=0)
        atom_thresholds = np.where(atom_min >= 0, atom_min, inherited)
        # the audit needs no database: the file is handed back to other processes
        # meanwhile, and the ledger checked afterwards (a release recorded, or a
        # link changed, in between means auditing again, this time holding it)
        ledger_before = self._ledger_state() if hand_back else None
        with self._hand_back() if hand_back else nullcontext(False) as handed:
            result = protect(
                M,
                atom_counts,
                all_thresholds,
                new_cells=new_cells,
                prior_published=prior_published,
                complementary=True,
                atom_thresholds=atom_thresholds,
            )
        if handed and self._ledger_state() != ledger_before:
            return self._protect(
                access,
                definition,
                grants,
                what,
                rows,
                pairs_sql,
                params,
                coding,
                hand_back=False,
            )
        if result.refused:
            raise access._deny(
                "release",
                what,
                "no suppression pattern protects every small group against this "
                "table and the earlier releases it overlaps; nothing was released",
                providers=sorted({g.provider for g in grants}),
                agreements=sorted({g.agreement for g in grants if g.agreement}),
            )
        n = len(labels)
        return self._recorded(
            access,
            definition,
            grants,
            labels,
            values[:n],
            result.suppressed[:n],
            result.primary[:n],
            thresholds,
            new_members,
        )

    def _public_already(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        labels: list[str],
        values: np.ndarray[Any, Any],
        coded: np.ndarray[Any, Any],
        thresholds: np.ndarray[Any, Any],
        members: pa.Table,
    ) -> Protected:
        """A table every cell of which is zero or a sum of cells one earlier table
        published (a margin of it, say): its values are public already, so
        publishing them tells an attacker nothing he could not work out, and no
        LP is needed. Small cells are suppressed all the same (``coded``: the
        thresholds with a rate's top and bottom coding)."""
        primary = (values > 0) & (values < coded)
        definition["sums_of_published"] = True
        return self._recorded(
            access,
            definition,
            grants,
            labels,
            values,
            primary,
            primary,
            thresholds,
            members,
        )

    def _seen_before(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        labels: list[str],
        thresholds: np.ndarray[Any, Any],
        seen: pa.Table,
        members: pa.Table,
        coding: tuple[float | None, float | None] | None,
    ) -> Protected:
        """A table every cell of which counts exactly the persons of a cell
        already in the ledger (a subset of an earlier table, or it again over
        other filters): no LP. A cell published before is published again (it
        tells no one anything new) unless it is small now; every other cell is
        suppressed, as it was. What is published is then a subset of what was,
        so every earlier guarantee still holds."""
        values = np.asarray(seen.column("persons").to_pylist(), dtype=np.int64)
        coded = thresholds.copy()
        if coding is not None:
            _force_coded(labels, values, coded, coding)
        primary = (values > 0) & (values < coded)
        published_before = np.asarray(seen.column("published").to_pylist(), dtype=bool)
        suppressed = primary | ~published_before
        definition["seen_before"] = True
        return self._recorded(
            access,
            definition,
            grants,
            labels,
            values,
            suppressed,
            primary,
            thresholds,
            members,
        )

    def _recorded(
        self,
        access: Access,
        definition: dict[str, Any],
        grants: list[Grant],
        labels: list[str],
        values: np.ndarray[Any, Any],
        suppressed: np.ndarray[Any, Any],
        primary: np.ndarray[Any, Any],
        thresholds: np.ndarray[Any, Any],
        members: pa.Table,
    ) -> Protected:
        """The table's decisions recorded in the ledger (with its audit entry)."""
        release_id = self._record(
            access,
            definition,
            grants,
            "suppression",
            labels,
            values,
            suppressed,
            thresholds,
            members,
            None,
        )
        return Protected(release_id, labels, values, suppressed, primary, thresholds)


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
