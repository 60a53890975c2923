"""Releasing with suppression: a table's cells are protected against it and every
earlier release they overlap (:mod:`backbone.governance.disclosure` decides),
then recorded."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from backbone.engines import arrow, register, scratch, unregister
from backbone.governance.audit import canonical_json
from backbone.governance.policy import Grant
from backbone.governance.release import partition
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
        from backbone.governance.disclosure import protect

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
            unit_min = arrow(
                local,
                "SELECT p.unit, max(m.min_cell) AS min_cell FROM pairs p "
                "JOIN min_cell m USING (provider) GROUP BY p.unit",
            )
            new_pairs = arrow(local, "SELECT unit, cell FROM new_pairs")
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
        # the earlier releases, as the audit state kept between them: the new
        # cells over the partition they refine, with the component they reach
        partition.current(self._con, access._keys.derive("ledger"))
        n_new = len(labels)
        refined = partition.refine(self._con, new_pairs, n_new, unit_min)
        values = refined.values
        all_thresholds = np.concatenate([thresholds, refined.row_thresholds])
        if coding is not None:
            _force_coded(labels, values, all_thresholds, coding)
        if refined.in_span().all():
            return self._public_already(
                access,
                definition,
                grants,
                labels,
                values[:n_new],
                all_thresholds[:n_new],
                thresholds,
                new_members,
                refined,
            )
        new_cells = np.zeros(values.size, dtype=bool)
        new_cells[:n_new] = True
        prior_published = np.zeros(values.size, dtype=bool)
        prior_published[n_new : n_new + refined.n_known] = True
        # the audit needs no database: the file is handed back to other processes
        # meanwhile, and the ledger checked afterwards (a release recorded, or a
        # link changed, in between means auditing again, this time holding it)
        ledger_before = self._ledger_state() if hand_back else None
        with self._hand_back() if hand_back else nullcontext(False) as handed:
            result = protect(
                refined.m,
                refined.counts,
                all_thresholds,
                new_cells=new_cells,
                prior_published=prior_published,
                complementary=True,
                atom_thresholds=refined.atom_thresholds(thresholds),
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
        return self._recorded(
            access,
            definition,
            grants,
            labels,
            values[:n_new],
            result.suppressed[:n_new],
            result.primary[:n_new],
            thresholds,
            new_members,
            refined,
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
        refined: partition.Refined,
    ) -> Protected:
        """A table every cell of which is zero or a linear combination of cells
        published earlier (a margin of a table published in full, the same cells
        over other filters, a difference of two tables): its values are public
        already, so publishing them tells an attacker nothing he could not work
        out, and no LP is needed. Small cells are suppressed all the same
        (``coded``: the thresholds with a rate's top and bottom coding)."""
        primary = (values > 0) & (values < coded)
        definition["in_span"] = True
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
            refined,
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
        refined: partition.Refined,
    ) -> Protected:
        """The table's decisions recorded in the ledger (with its audit entry),
        and the audit state kept with them, in the same unit of work."""
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
            keep=lambda release_id: refined.save(
                self._con, release_id, ~suppressed, thresholds
            ),
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
