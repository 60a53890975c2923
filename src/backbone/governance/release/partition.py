"""What the audit keeps between releases, so that a release costs what it touches.

The ledger's suppressed releases are summed up in four tables, kept in step with
``gov.release`` in the same unit of work as each release:

- ``gov.release_unit``: every unit (a person, or a record not yet linked) any
  suppressed release counted, with its *atom*: the class of units counted in
  exactly the same cells (the characteristic partition of Malvestuto and
  Moscarini's incremental audit);
- ``gov.release_atom``: each atom's size and threshold (the strictest minimum
  cell size among its units' providers; see :meth:`Refined.atom_thresholds`);
- ``gov.release_row`` / ``gov.release_row_info``: earlier cells as sets of atoms,
  of two kinds only. *Known*: published non-zero cells, kept as a linearly
  independent set (a published cell in the span of those kept adds no equation
  an attacker could use, so it is dropped); *target*: suppressed cells with
  ``0 < value < threshold``, whose protection every later release must keep.
  Suppressed cells that are not small are neither (the audit ignores them).

A new table refines the partition only where its cells split an atom: a split
atom's children take its place in every row that held it (duplicating a column
keeps every linear relation between rows), so nothing is re-read from the
members of earlier releases. The audit then reads the connected component of
the new cells in the row-atom graph (the releases outside it constrain atoms
no target of this table shares; see docs/RELEASES.md).

When a link run changes who is who, the state is rebuilt once from
``gov.release_member`` (records counted before they were linked followed to
their person now, as the ledger always did), then kept incrementally again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbone.engines import Connection, arrow, register, registered, unregister
from backbone.engines.duckdb import transaction
from backbone.governance.release.cells import RECORD_HASH

__all__ = [
    "Refined",
    "current",
    "forwarded_units_sql",
    "in_span",
    "independent",
    "refine",
]

# numerical rank of 0/1 rows: pivots below this (relative) are zero
_RANK_TOL = 1e-7
# A row is "in the span" (publish with no LP) only when its residual off the
# known rows is below this, relative to its norm: a 0/1 row outside the span is off
# it by ~1/sqrt(atoms) or more, so a doubtful case goes to the audit. A candidate
# row is dropped as dependent only below the same bound: a spare dependent row
# kept costs the LP a little, a needed one dropped would be unsound.
_SPAN_TOL = 1e-9

STATE_TABLES = (
    "gov.release_unit",
    "gov.release_atom",
    "gov.release_row",
    "gov.release_row_info",
    "gov.release_audit_state",
)


def forwarded_units_sql() -> str:
    """Each earlier release's (release_id, cell, unit), over ``prior_pairs``
    (the members) and ``now_of`` (record, unit now): a record counted before it
    was first linked is followed to its person now, unless that would merge it
    with someone the same release already counted."""
    return """
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
        SELECT DISTINCT p.release_id, p.cell, coalesce(s.now_unit, p.unit) AS unit
        FROM prior_pairs p
        LEFT JOIN now_of n ON n.record = p.record AND p.unit = p.record
        LEFT JOIN safe s ON s.release_id = p.release_id AND s.now_unit = n.unit
        """


def _identity(con: Connection) -> str:
    """Who is who now, as a fingerprint: the state is rebuilt when it changes."""
    row = con.execute(
        "SELECT count(*) || ':' || coalesce(sum(hash(partner_id, local_id, "
        "person_id)), 0) FROM identity.record_person"
    ).fetchone()
    return str(row[0]) if row else ""


def _state(con: Connection) -> tuple[str, int, int, int] | None:
    row = con.execute(
        "SELECT identity, through_release, next_atom, next_row FROM gov.release_audit_state"
    ).fetchone()
    return (str(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else None


def _unfolded(con: Connection, through: int) -> int:
    """Suppressed releases with members recorded after the state was last kept
    (0 when it is in step)."""
    row = con.execute(
        "SELECT count(*) FROM gov.release WHERE release_id > ? "
        "AND mode = 'suppression' AND cells > 0 "
        "AND json_extract(definition, '$.same_as') IS NULL",
        [through],
    ).fetchone()
    return int(row[0]) if row else 0


def current(con: Connection, key: str) -> None:
    """Bring the audit state in step with the ledger and the links (rebuilding it
    when a link run changed who is who, or a release was recorded without it)."""
    state = _state(con)
    identity = _identity(con)
    if state is not None and state[0] == identity and not _unfolded(con, state[1]):
        return
    _rebuild(con, key, identity)


def _rebuild(con: Connection, key: str, identity: str) -> None:
    with transaction(con):
        _fold_all(con, key, identity)


def _fold_all(con: Connection, key: str, identity: str) -> None:
    for table in STATE_TABLES:
        con.execute(f"DELETE FROM {table}")
    con.execute("INSERT INTO gov.release_audit_state VALUES (?, 0, 0, 0)", [identity])
    now_of = arrow(
        con,
        f"SELECT {RECORD_HASH.format(provider='partner_id', local='local_id')} "
        "AS record, substr(sha256(? || sha256(? || CAST(person_id AS VARCHAR))), "
        "1, 20) AS unit FROM identity.record_person",
        [key, key, key, key],
    )
    with registered(con, now_of=now_of):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE prior_pairs AS "
            "SELECT release_id, cell, unit, record FROM gov.release_member"
        )
        try:
            units = arrow(
                con,
                f"SELECT * FROM ({forwarded_units_sql()}) "
                "ORDER BY release_id, cell, unit",
            )
        finally:
            con.execute("DROP TABLE IF EXISTS temp.prior_pairs")
    cells = arrow(
        con,
        "SELECT release_id, cell, published, threshold FROM gov.release_cell "
        "WHERE release_id IN (SELECT DISTINCT release_id FROM gov.release_member) "
        "ORDER BY release_id, cell",
    )
    # one release at a time, in order: the same steps a release takes (both
    # tables are sorted by release, so each release is a slice of them)
    ids = units.column("release_id").to_numpy()
    cell_ids = cells.column("release_id").to_numpy()
    for release_id in np.unique(ids):
        u0, u1 = (
            np.searchsorted(ids, release_id, side="left"),
            np.searchsorted(ids, release_id, side="right"),
        )
        c0, c1 = (
            np.searchsorted(cell_ids, release_id, side="left"),
            np.searchsorted(cell_ids, release_id, side="right"),
        )
        mine = units.slice(int(u0), int(u1 - u0)).select(["unit", "cell"])
        its = cells.slice(int(c0), int(c1 - c0))
        refined = refine(con, mine, int(c1 - c0), None)
        refined.save(
            con,
            int(release_id),
            its.column("published").to_numpy(zero_copy_only=False).astype(bool),
            its.column("threshold").to_numpy(zero_copy_only=False).astype(np.int64),
        )
    # releases with nothing to fold (empty tables, repeats) are in step too
    con.execute(
        "UPDATE gov.release_audit_state SET through_release = "
        "(SELECT coalesce(max(release_id), 0) FROM gov.release)"
    )


@dataclass
class Refined:
    """A new table's cells and the component of earlier cells they reach, over
    the atoms refined by the new cells. ``m``'s rows: the new cells, then the
    known rows, then the target rows; its columns: ``atoms`` (ids)."""

    m: np.ndarray[Any, Any]
    atoms: np.ndarray[Any, Any]
    counts: np.ndarray[Any, Any]
    inherited: np.ndarray[Any, Any]
    """per atom: its threshold as kept (a new part of a split atom: the parent's)"""
    atom_min: np.ndarray[Any, Any]
    """per atom: the strictest minimum among its units' providers in the new
    table (-1 for an atom none of whose units the new table counts)"""
    n_new: int
    row_ids: np.ndarray[Any, Any]
    """the stored rows (known, then targets) in ``m`` after the new cells"""
    row_thresholds: np.ndarray[Any, Any]
    n_known: int
    # what a release records, besides its decisions
    _moved: pa.Table = field(repr=False)  # (unit, atom): new or changed
    _splits: pa.Table = field(repr=False)  # (parent, child): child takes part of parent
    _vanished: np.ndarray[Any, Any] = field(repr=False)  # atoms left with no unit
    _next_atom: int = 0
    _next_row: int = 0
    _known_basis: np.ndarray[Any, Any] | None = field(default=None, repr=False)

    @property
    def values(self) -> np.ndarray[Any, Any]:
        return np.asarray(self.m.astype(np.int64) @ self.counts, dtype=np.int64)

    def atom_thresholds(self, thresholds: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Each atom's threshold: the strictest minimum among the providers of its
        units in any release that counted them (``thresholds``: the new cells').

        Kept per atom as releases come: in the new table, the units' providers'
        (``atom_min``) or, where those are not known (a state rebuilt from the
        ledger), the smallest threshold of a new cell counting it (a cell's is
        the strictest of its providers', so never below the atom's); a split
        atom's parts keep the parent's. Not the largest threshold of the cells
        counting it: a margin over several providers would raise a group of one
        provider above its own minimum, and its own published cell would then
        "pin" it."""
        new = self.m[: self.n_new]
        in_new = new.any(axis=0)
        cell_min = np.where(new, thresholds[: self.n_new, None], np.iinfo(np.int64).max)
        tau = np.where(
            self.atom_min >= 0,
            self.atom_min,
            cell_min.min(axis=0, initial=np.iinfo(np.int64).max),
        )
        return np.where(in_new, np.maximum(self.inherited, tau), self.inherited)

    def _basis(self) -> np.ndarray[Any, Any]:
        """An orthonormal basis of the known rows' span (computed once)."""
        if self._known_basis is None:
            known = self.m[self.n_new : self.n_new + self.n_known]
            self._known_basis = _orthonormal(known.astype(np.float64))
        return self._known_basis

    def in_span(self) -> np.ndarray[Any, Any]:
        """Per new cell: its value follows from the known rows (a zero, or a
        linear combination of published cells), so publishing it adds nothing."""
        known = self.m[self.n_new : self.n_new + self.n_known]
        return in_span(self.m[: self.n_new], known, self._basis())

    def save(
        self,
        con: Connection,
        release_id: int,
        published: np.ndarray[Any, Any],
        thresholds: np.ndarray[Any, Any],
    ) -> None:
        """Keep the refined partition and this table's rows (call inside the
        release's unit of work): its published non-zero cells that the known
        rows do not already span, and its small suppressed cells."""
        n = self.n_new
        values = self.values
        thresholds = np.array(thresholds, dtype=np.int64)
        with registered(con, moved=self._moved, splits=self._splits):
            con.execute(
                "DELETE FROM gov.release_unit WHERE unit IN (SELECT unit FROM moved)"
            )
            con.execute("INSERT INTO gov.release_unit SELECT unit, atom FROM moved")
            # a split atom's children join every row that held it
            con.execute(
                "INSERT INTO gov.release_row SELECT r.row_id, s.child "
                "FROM gov.release_row r JOIN splits s ON r.atom = s.parent"
            )
        if self._vanished.size:
            with registered(con, vanished=pa.table({"atom": self._vanished})):
                con.execute(
                    "DELETE FROM gov.release_row WHERE atom IN (SELECT atom FROM vanished)"
                )
        # the component's atoms with their sizes and thresholds now
        inherited = self.atom_thresholds(thresholds)
        atoms = pa.table(
            {
                "atom": pa.array(self.atoms, pa.int64()),
                "units": pa.array(self.counts, pa.int64()),
                "threshold": pa.array(inherited, pa.int32()),
            }
        )
        gone = np.concatenate([self.atoms, self._vanished])
        with registered(con, atoms_now=atoms, gone=pa.table({"atom": gone})):
            con.execute(
                "DELETE FROM gov.release_atom WHERE atom IN (SELECT atom FROM gone)"
            )
            con.execute("INSERT INTO gov.release_atom SELECT * FROM atoms_now")
        # this table's rows: new equations, and new small suppressed cells
        new = self.m[:n]
        known = self.m[n : n + self.n_known]
        candidates = np.flatnonzero(published & (values[:n] > 0))
        add_known = candidates[independent(known, new[candidates], self._basis())]
        small = np.flatnonzero(
            ~published & (values[:n] > 0) & (values[:n] < thresholds)
        )
        targets = self.m[n + self.n_known :]
        # a small cell already a target keeps one row, with the larger threshold
        existing = {row.tobytes(): i for i, row in enumerate(targets)}
        raise_to: dict[int, int] = {}
        add_target: list[int] = []
        seen: dict[bytes, int] = {}
        for i in small:  # one pass over the table's few small cells
            sig = new[i].tobytes()
            if sig in existing:
                j = existing[sig]
                row = int(self.row_ids[self.n_known + j])
                raise_to[row] = max(raise_to.get(row, 0), int(thresholds[i]))
            elif sig in seen:
                k = seen[sig]
                thresholds_k = max(int(thresholds[add_target[k]]), int(thresholds[i]))
                thresholds[add_target[k]] = thresholds_k
            else:
                seen[sig] = len(add_target)
                add_target.append(int(i))
        rows = np.concatenate([add_known, np.asarray(add_target, dtype=np.int64)])
        row_ids = self._next_row + np.arange(rows.size, dtype=np.int64)
        kinds = ["known"] * add_known.size + ["target"] * len(add_target)
        r_idx, a_idx = np.nonzero(new[rows]) if rows.size else (np.zeros(0, int),) * 2
        with registered(
            con,
            new_rows=pa.table(
                {
                    "row_id": pa.array(row_ids[r_idx], pa.int64()),
                    "atom": pa.array(self.atoms[a_idx], pa.int64()),
                }
            ),
            new_info=pa.table(
                {
                    "row_id": pa.array(row_ids, pa.int64()),
                    "kind": pa.array(kinds, pa.string()),
                    "threshold": pa.array(thresholds[rows], pa.int32()),
                }
            ),
        ):
            con.execute("INSERT INTO gov.release_row SELECT * FROM new_rows")
            con.execute("INSERT INTO gov.release_row_info SELECT * FROM new_info")
        for row, threshold in raise_to.items():
            con.execute(
                "UPDATE gov.release_row_info SET threshold = greatest(threshold, ?) "
                "WHERE row_id = ?",
                [threshold, row],
            )
        con.execute(
            "UPDATE gov.release_audit_state SET through_release = ?, next_atom = ?, "
            "next_row = ?",
            [release_id, self._next_atom, self._next_row + rows.size],
        )


def refine(
    con: Connection,
    pairs: pa.Table,
    n_cells: int,
    unit_min: pa.Table | None,
) -> Refined:
    """The new table's (unit, cell) ``pairs`` laid over the audit state: its
    cells and the component of earlier rows they reach, over atoms refined by
    the new cells. ``unit_min`` (unit, min_cell): the strictest minimum among
    each unit's providers in the new table."""
    state = _state(con)
    if state is None:  # pragma: no cover - current() runs first
        raise RuntimeError("the audit state was not brought in step")
    _, _, next_atom, next_row = state
    register(con, "new_pairs", pairs)
    register(
        con,
        "unit_min",
        unit_min
        if unit_min is not None
        else pa.table(
            {"unit": pa.array([], pa.string()), "min_cell": pa.array([], pa.int64())}
        ),
    )
    try:
        # each unit's atom before, and the new cells it is in
        con.execute(
            "CREATE OR REPLACE TEMP TABLE refine_sig AS "
            "SELECT p.unit, coalesce(any_value(a.atom), -1) AS old, "
            "list_sort(list(DISTINCT p.cell)) AS cells "
            "FROM new_pairs p LEFT JOIN gov.release_unit a USING (unit) GROUP BY p.unit"
        )
        groups = arrow(
            con,
            "SELECT s.old, s.cells, count(*) AS units, "
            "coalesce(max(u.min_cell), -1) AS min_cell "
            "FROM refine_sig s LEFT JOIN unit_min u USING (unit) "
            "GROUP BY s.old, s.cells ORDER BY s.old, s.cells",
        )
        touched = np.unique(groups.column("old").to_numpy())
        touched = touched[touched >= 0]
        with registered(con, touched=pa.table({"atom": touched})):
            before = arrow(
                con,
                "SELECT atom, units, threshold FROM gov.release_atom "
                "WHERE atom IN (SELECT atom FROM touched)",
            )
        rows = arrow(con, "SELECT row_id, atom FROM gov.release_row")
        info = arrow(con, "SELECT row_id, kind, threshold FROM gov.release_row_info")
        # the new groups: an atom all of whose units fall in one group keeps its id
        old = groups.column("old").to_numpy()
        size = groups.column("units").to_numpy().astype(np.int64)
        old_size = dict(
            zip(
                before.column("atom").to_pylist(),
                before.column("units").to_pylist(),
                strict=True,
            )
        )
        parts = np.bincount(
            np.searchsorted(touched, old[old >= 0]), minlength=touched.size
        )
        whole = np.zeros(old.size, dtype=bool)
        for i in np.flatnonzero(old >= 0):
            o = int(old[i])
            whole[i] = (
                parts[np.searchsorted(touched, o)] == 1 and size[i] == old_size[o]
            )
        gid = np.where(whole, old, -1)
        fresh = np.flatnonzero(~whole)
        gid[fresh] = next_atom + np.arange(fresh.size)
        next_atom += fresh.size
        left = {o: int(old_size[o]) for o in touched.tolist()}
        for i in fresh:
            if old[i] >= 0:
                left[int(old[i])] -= int(size[i])
        kept = set(gid.tolist())
        vanished = np.asarray(
            [o for o, n in left.items() if n == 0 and o not in kept], dtype=np.int64
        )
        remaining = {o: n for o, n in left.items() if n > 0 and o not in kept}
        splits = pa.table(
            {
                "parent": pa.array(old[fresh][old[fresh] >= 0], pa.int64()),
                "child": pa.array(gid[fresh][old[fresh] >= 0], pa.int64()),
            }
        )
        with registered(
            con,
            group_ids=pa.table(
                {
                    "old": pa.array(old, pa.int64()),
                    "cells": groups.column("cells"),
                    "atom": pa.array(gid, pa.int64()),
                }
            ),
        ):
            moved = arrow(
                con,
                "SELECT s.unit, g.atom FROM refine_sig s JOIN group_ids g "
                "ON g.old = s.old AND g.cells = s.cells WHERE g.atom <> s.old",
            )
    finally:
        con.execute("DROP TABLE IF EXISTS temp.refine_sig")
        unregister(con, "new_pairs")
        unregister(con, "unit_min")

    # the stored rows over refined atoms: a split parent's row gains its children
    r_row = rows.column("row_id").to_numpy()
    r_atom = rows.column("atom").to_numpy()
    if splits.num_rows:
        parent = splits.column("parent").to_numpy()
        child = splits.column("child").to_numpy()
        order = np.argsort(parent, kind="stable")
        parent, child = parent[order], child[order]
        lo = np.searchsorted(parent, r_atom, side="left")
        hits = np.searchsorted(parent, r_atom, side="right") - lo
        extra_row = np.repeat(r_row, hits)
        starts = np.repeat(lo, hits)
        offsets = np.arange(hits.sum()) - np.repeat(np.cumsum(hits) - hits, hits)
        extra_atom = child[starts + offsets]
        keep = ~np.isin(r_atom, vanished)
        r_row = np.concatenate([r_row[keep], extra_row])
        r_atom = np.concatenate([r_atom[keep], extra_atom])

    # the component: rows and atoms connected to the new cells' atoms (and to
    # what is left of an atom they split, whose size changes)
    left_over = np.asarray(sorted(remaining), dtype=np.int64)
    start = np.unique(np.concatenate([gid, left_over]))
    all_atoms = np.unique(np.concatenate([r_atom, start]))
    row_u, row_node = np.unique(r_row, return_inverse=True)
    reach_rows, reach_atoms = _component(
        row_node.ravel(),
        np.searchsorted(all_atoms, r_atom),
        row_u.size,
        all_atoms.size,
        np.searchsorted(all_atoms, start),
    )
    comp_atoms = all_atoms[reach_atoms]  # sorted
    comp_row_ids = row_u[reach_rows]
    # sizes and thresholds: the new groups' from them, the others' as stored
    counts = np.zeros(comp_atoms.size, dtype=np.int64)
    inherited = np.zeros(comp_atoms.size, dtype=np.int64)
    atom_min = np.full(comp_atoms.size, -1, dtype=np.int64)
    from_group = np.zeros(comp_atoms.size, dtype=bool)
    g_col = np.searchsorted(comp_atoms, gid)
    counts[g_col] = size
    atom_min[g_col] = groups.column("min_cell").to_numpy()
    from_group[g_col] = True
    parent_of = np.where(old >= 0, old, -1)  # a group's atom before (itself if kept)
    thr_before = dict(
        zip(
            before.column("atom").to_pylist(),
            before.column("threshold").to_pylist(),
            strict=True,
        )
    )
    inherited[g_col] = [thr_before.get(int(p), 0) for p in parent_of]
    others = comp_atoms[~from_group]
    with registered(con, wanted=pa.table({"atom": pa.array(others, pa.int64())})):
        stored = arrow(
            con,
            "SELECT atom, units, threshold FROM gov.release_atom "
            "WHERE atom IN (SELECT atom FROM wanted) ORDER BY atom",
        )
    o_col = np.searchsorted(comp_atoms, stored.column("atom").to_numpy())
    counts[o_col] = stored.column("units").to_numpy()
    inherited[o_col] = stored.column("threshold").to_numpy()
    if left_over.size:
        counts[np.searchsorted(comp_atoms, left_over)] = [
            remaining[int(o)] for o in left_over
        ]
    # m: the new cells, then the component's known rows, then its targets
    info_ids = info.column("row_id").to_numpy()
    info_order = np.argsort(info_ids)
    at = info_order[np.searchsorted(info_ids[info_order], comp_row_ids)]
    is_known = np.asarray(info.column("kind").to_pylist(), dtype=object)[at] == "known"
    order_ids = np.concatenate([comp_row_ids[is_known], comp_row_ids[~is_known]])
    row_thr = info.column("threshold").to_numpy()[at]
    row_thr = np.concatenate([row_thr[is_known], row_thr[~is_known]])
    m = np.zeros((n_cells + order_ids.size, comp_atoms.size), dtype=bool)
    cells_list = groups.column("cells").combine_chunks()
    m[
        pc.list_flatten(cells_list).to_numpy(),
        g_col[pc.list_parent_indices(cells_list).to_numpy()],
    ] = True
    if order_ids.size:
        sort_ids = np.argsort(order_ids)
        inside = np.isin(r_row, order_ids)
        pos = sort_ids[np.searchsorted(order_ids[sort_ids], r_row[inside])]
        m[n_cells + pos, np.searchsorted(comp_atoms, r_atom[inside])] = True
    return Refined(
        m=m,
        atoms=comp_atoms.astype(np.int64),
        counts=counts,
        inherited=inherited,
        atom_min=atom_min,
        n_new=n_cells,
        row_ids=order_ids,
        row_thresholds=row_thr.astype(np.int64),
        n_known=int(is_known.sum()),
        _moved=moved,
        _splits=splits,
        _vanished=vanished,
        _next_atom=next_atom,
        _next_row=next_row,
    )


def _component(
    row_node: np.ndarray[Any, Any],
    atom_node: np.ndarray[Any, Any],
    n_rows: int,
    n_atoms: int,
    start_atoms: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Rows and atoms connected to ``start_atoms`` in the bipartite row-atom
    graph: one pass of SciPy's connected components."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    n = n_rows + n_atoms + 1
    hub = n - 1  # the new table, joined to each of its atoms
    r = np.concatenate([row_node, np.full(start_atoms.size, hub)])
    c = np.concatenate([n_rows + atom_node, n_rows + start_atoms])
    graph = sparse.coo_array((np.ones(r.size, dtype=np.int8), (r, c)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    mine = label == label[hub]
    return mine[:n_rows], mine[n_rows : n_rows + n_atoms]


def _orthonormal(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An orthonormal basis (columns) of the span of ``rows``: a rank-revealing
    QR (column pivoting) of their transpose, a few times faster than an SVD."""
    from scipy.linalg import qr

    if not rows.size:
        return np.zeros((rows.shape[1], 0))
    q, r, _ = qr(rows.T.astype(np.float64), mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(
        (diag > _RANK_TOL * max(1.0, float(diag[0]) if diag.size else 1.0)).sum()
    )
    return np.asarray(q[:, :rank])


def in_span(
    new: np.ndarray[Any, Any],
    known: np.ndarray[Any, Any],
    orthonormal: np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Per ``new`` row (0/1 over atoms): empty (a zero), or a linear combination
    of the ``known`` rows, by its residual off their span."""
    rows = new.astype(np.float64)
    out = np.asarray(~rows.any(axis=1), dtype=bool)
    if not known.size:
        return out
    q = orthonormal if orthonormal is not None else _orthonormal(known)
    rest = rows - (rows @ q) @ q.T
    norms = np.linalg.norm(rest, axis=1)
    scale = np.maximum(1.0, np.linalg.norm(rows, axis=1))
    return np.asarray(out | (norms <= _SPAN_TOL * scale), dtype=bool)


def independent(
    basis: np.ndarray[Any, Any],
    candidates: np.ndarray[Any, Any],
    orthonormal: np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Which ``candidates`` rows to add to ``basis`` rows so that the span covers
    them all with no row redundant: the candidates' parts outside the basis's
    span, then a rank-revealing QR (column pivoting) among those."""
    from scipy.linalg import qr

    k = candidates.shape[0]
    if k == 0:
        return np.zeros(0, dtype=bool)
    cand = candidates.astype(np.float64)
    q = orthonormal if orthonormal is not None else _orthonormal(basis)
    rest = cand - (cand @ q) @ q.T if q.size else cand
    _, r, piv = qr(rest.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r)) if r.size else np.zeros(0)
    rank = int((diag > _SPAN_TOL * max(1.0, float(np.sqrt(cand.shape[1])))).sum())
    out = np.zeros(k, dtype=bool)
    out[piv[:rank]] = True
    return out
