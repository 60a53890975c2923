"""Disclosure control for published counts: suppression, interval audit, rate coding.

Pure maths on NumPy arrays; no database access. The release gate builds the arrays
from the warehouse and the release ledger, calls :func:`protect`, and refuses or
publishes.

One model covers a single table and a stack of overlapping releases. The counted
units (persons) fall into *atoms*: groups of units with the same membership in every
cell under consideration. A 0/1 matrix ``M`` (cells × atoms) says which atoms each
cell sums, so the cell values are ``M @ atom_counts``. An attacker knows the values
of the published cells and that atoms are ≥ 0 (and, conservatively, the cells whose
true value is 0: zeros are often structural). With a linear programme he can then
bound any linear combination of atoms: a suppressed cell, or one atom such as
"the ELL students at school X" when n(X)=25 and n(X, not ELL)=22 are both out.

A *target* (a suppressed cell, or an atom) with true value ``0 < v < threshold`` is
*exposed* when its feasible interval ``[lo, hi]`` is narrower than its protection
width. The default protection is ``ceil(threshold / 2)``: with the common minimum
cell size 10, the attacker's range for a small count must span at least 5 values
(a suppressed 3 might be anything in [0, 5] or wider), so he cannot tell which
small number it is; a wider rule suppresses far more of a table with margins.
Callers may pass their own widths.

The intervals are those of the continuous LP relaxation, as in τ-ARGUS's audit and
sdcTable's ``attack()``. Limits: only cells and atoms are targets. A union of
atoms that is neither (say "ELL at school X" when another release also splits
ELL students by grade) and is pinned to a value between the protection width and
the threshold is not flagged; pinned below the protection width it is, through
its atoms, whose intervals then lie inside [0, that value].

How :func:`protect` finds a pattern: primary suppression, then (for tables) the
classic line rule, then the LP audit, suppressing for each exposure the smallest
cell its bound rests on, until the audit is clean. Suppressing more only widens
intervals, so each round re-checks just the targets found exposed. Most targets
are proven safe without an LP of their own (see ``_audit``).

Bad input (shapes, negative counts, a non-0/1 ``M``) raises ``ValueError``.

Public functions: :func:`feasible_intervals`, :func:`audit`, :func:`protect`,
:func:`table_membership`, :func:`table_lines`, :func:`protect_table`,
:func:`code_rates`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from scipy import sparse  # type: ignore[import-untyped, unused-ignore]
from scipy.optimize import linprog  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "Exposure",
    "ProtectedTable",
    "Protection",
    "RateCodes",
    "audit",
    "code_rates",
    "feasible_intervals",
    "protect",
    "protect_table",
    "table_lines",
    "table_membership",
]

Bools: TypeAlias = NDArray[np.bool_]
Floats: TypeAlias = NDArray[np.float64]
Ints: TypeAlias = NDArray[np.int64]
Label: TypeAlias = tuple[int | None, ...]

# HiGHS works in floating point; counts are integers, so this is far below a unit.
_TOL = 1e-6
# at most this many "spread" LPs before exact per-target LPs (see _audit)
_SPREAD_ROUNDS = 12
_SPREAD_MIN = 10  # fewer open targets than this go straight to exact LPs
# this many open targets or more are spread in _SPREAD_PARTS LPs, on threads
_SPREAD_SPLIT_MIN = 1000
_SPREAD_PARTS = 4
_SPREAD_THREADS = 2
_IPM_MIN_ATOMS = 2000  # spread LPs this wide go to the interior point method


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Exposure:
    """A count an attacker can pin down too narrowly.

    ``kind`` is ``"cell"`` (``index`` is a row of ``M``) or ``"atom"`` (a column).
    """

    kind: Literal["cell", "atom"]
    index: int
    value: float
    lo: float
    hi: float
    protection: float
    why: str


@dataclass(frozen=True, eq=False)
class Protection:
    """The outcome of :func:`protect`, one entry per cell (row of ``M``).

    ``intervals`` is (cells × 2): the attacker's [lo, hi] for every suppressed
    new cell under the final publication; NaN for published cells, earlier
    releases' cells, and everything when refused. When ``refused`` is true every
    new cell is suppressed and the caller must refuse the release; ``exposures``
    then says what could not be protected.
    """

    suppressed: Bools
    primary: Bools
    refused: bool
    exposures: tuple[Exposure, ...]
    intervals: Floats

    @property
    def published(self) -> Bools:
        return ~self.suppressed


@dataclass(frozen=True, eq=False)
class ProtectedTable:
    """A 1-D or 2-D table with margins after :func:`protect_table`.

    ``values``, ``suppressed``, ``primary``, ``lo`` and ``hi`` have the shape of the
    table with margins: ``(k + 1,)`` with the total last, or ``(r + 1, c + 1)``
    with row totals in the last column, column totals in the last row and the
    grand total at ``[r, c]``. ``lo``/``hi`` are NaN for published cells.
    """

    values: Ints
    suppressed: Bools
    primary: Bools
    lo: Floats
    hi: Floats
    refused: bool
    exposures: tuple[Exposure, ...]
    labels: tuple[Label, ...]

    def display(self, mark: str = "*") -> NDArray[np.str_]:
        """The values as strings, suppressed ones replaced by ``mark``."""
        shown = self.values.astype(np.str_)
        return np.where(self.suppressed, mark, shown)


@dataclass(frozen=True, eq=False)
class RateCodes:
    """Display strings for rates, and which were suppressed."""

    text: NDArray[np.str_]
    suppressed: Bools


# ------------------------------------------------------------------- input checking


def _membership(m: npt.ArrayLike) -> Bools:
    arr = np.asarray(m)
    if arr.ndim != 2:
        raise ValueError(f"M must be a 2-D cells × atoms matrix; got {arr.ndim} dims.")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("M must contain only 0 and 1 (or False and True).")
    return arr.astype(bool)


def _counts(x: npt.ArrayLike, n: int, what: str) -> Floats:
    """A length-n non-negative vector; one number is repeated."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},); got {arr.shape}.")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{what} must be finite and non-negative.")
    return arr


def _mask(x: npt.ArrayLike, n: int, what: str) -> Bools:
    arr = np.asarray(x)
    if arr.shape != (n,) or arr.dtype != np.bool_:
        raise ValueError(f"{what} must be a boolean array of shape ({n},).")
    return arr.copy()


def _atom_max(m: Bools, per_cell: Floats) -> Floats:
    """Per atom, the largest per-cell figure among the cells containing it (0 if none)."""
    if m.shape[0] == 0:
        return np.zeros(m.shape[1])
    # the first containing cell in descending order of the figure, without an
    # atoms × cells float temporary
    order = np.argsort(-per_cell, kind="stable")
    hits = m[order]
    first = hits.argmax(axis=0)
    out: Floats = np.where(hits.any(axis=0), per_cell[order][first], 0.0)
    return out


@dataclass(frozen=True, eq=False)
class _Rules:
    """Minimum size and protection width, per cell and per atom."""

    thr: Floats
    prot: Floats
    atom_thr: Floats
    atom_prot: Floats


def _rules(
    mm: Bools,
    thresholds: npt.ArrayLike,
    protection: npt.ArrayLike | None,
    atom_thresholds: npt.ArrayLike | None,
) -> _Rules:
    n_cells, n_atoms = mm.shape
    thr = _counts(thresholds, n_cells, "thresholds")
    atom_thr = (
        _atom_max(mm, thr)
        if atom_thresholds is None
        else _counts(atom_thresholds, n_atoms, "atom_thresholds")
    )
    if protection is None:
        return _Rules(thr, np.ceil(thr / 2.0), atom_thr, np.ceil(atom_thr / 2.0))
    prot = _counts(protection, n_cells, "protection")
    return _Rules(thr, prot, atom_thr, _atom_max(mm, prot))


# ------------------------------------------------------------------ interval LPs


def _solve(
    c: Floats,
    a_eq: sparse.csr_array | None,
    b_eq: Floats | None,
    bounds: Floats,
    a_ub: sparse.csr_array | None = None,
    b_ub: Floats | None = None,
    *,
    presolve: bool = True,
    method: Literal["highs", "highs-ds", "highs-ipm"] = "highs",
) -> tuple[str, float, Floats, Floats]:
    """linprog (HiGHS): status word, optimum, point, duals of the equality rows.
    HiGHS's numerical trouble on one algorithm (status 4) is met by solving again
    with the others before giving up: the same LP, so the same answer."""
    tries = [(method, presolve), ("highs-ds", not presolve), ("highs-ipm", presolve)]
    for how, pre in tries:
        res = linprog(
            c,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=bounds,
            method=how,
            options={"presolve": pre},
        )
        if res.status in (0, 2, 3):
            break
    if res.status == 3:
        return "unbounded", -math.inf, np.zeros(0), np.zeros(0)
    if res.status == 2:
        raise ValueError(
            "The published values are inconsistent with non-negative atoms; "
            "check that values equal M @ atom_counts."
        )
    if res.status != 0:  # pragma: no cover - HiGHS numerical trouble
        raise RuntimeError(f"The interval LP failed: {res.message}")
    x = np.asarray(res.x, dtype=np.float64)
    duals = np.asarray(res.eqlin.marginals, dtype=np.float64)
    return "optimal", float(res.fun), x, duals


def feasible_intervals(
    m: npt.ArrayLike,
    values: npt.ArrayLike,
    published: npt.ArrayLike,
    targets: npt.ArrayLike,
) -> tuple[Floats, Floats]:
    """For each target row, min and max of ``target · x`` an attacker can derive.

    The attacker knows ``M[published] @ x == values[published]`` and ``x ≥ 0``
    (exactly that: unlike :func:`audit`, suppressed zeros are not assumed known).
    ``targets`` is (t × atoms), e.g. suppressed cells' rows of ``M`` or unit
    vectors for single atoms; a 1-D array is one target. Unbounded sides are ±inf.

    This is the plain two-LPs-per-target reference; :func:`audit` and
    :func:`protect` get the same answers faster, and tests check one against
    the other.
    """
    mm = _membership(m)
    n_cells, n_atoms = mm.shape
    vals = _counts(values, n_cells, "values")
    pub = _mask(published, n_cells, "published")
    t = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    if t.ndim != 2 or t.shape[1] != n_atoms:
        raise ValueError(f"targets must have {n_atoms} columns (one per atom).")
    a = sparse.csr_array(mm[pub].astype(np.float64)) if pub.any() else None
    b = vals[pub] if pub.any() else None
    bounds = np.column_stack([np.zeros(n_atoms), np.full(n_atoms, np.inf)])
    lo, hi = np.empty(t.shape[0]), np.empty(t.shape[0])
    for i, row in enumerate(t):
        status, low, _, _ = _solve(row, a, b, bounds)
        lo[i] = low if status == "optimal" else -math.inf
        status, high, _, _ = _solve(-row, a, b, bounds)
        hi[i] = -high if status == "optimal" else math.inf
    return lo, hi


@dataclass(frozen=True, eq=False)
class _Bound:
    value: float
    certificate: Bools  # over cells: known cells with a non-zero dual


class _System:
    """The attacker's knowledge, reduced: known rows ``A x = b``, ``x ≥ 0``.

    Known zero cells fix their atoms at 0 (columns dropped); atoms in no known
    cell are unconstrained (a target touching one is unbounded); identical rows
    are kept once. Done once here, this lets every LP skip HiGHS's presolve,
    which otherwise costs most of the time of each solve on ledger-sized systems.
    """

    def __init__(self, m: Bools, values: Floats, known: Bools) -> None:
        n_cells = m.shape[0]
        zero = known & (values == 0)
        fixed = m[zero].any(axis=0)
        self.free = ~m[known].any(axis=0)
        self.cols = np.flatnonzero(~self.free & ~fixed)
        live = np.flatnonzero(known & (values > 0))
        a = m[np.ix_(live, self.cols)]
        uniq, first, group = np.unique(
            a, axis=0, return_index=True, return_inverse=True
        )
        self.rows = live[first]
        # each kept row stands for all its duplicates when naming a certificate
        self.twins = np.zeros((first.size, n_cells), dtype=bool)
        self.twins[group.ravel(), live] = True
        self.a = sparse.csr_array(uniq.astype(np.float64))
        self.b = values[self.rows]
        self.n_cells = n_cells
        # implied caps (an atom is at most any known cell containing it): the same
        # feasible set, but they keep the witness LPs bounded
        if self.rows.size:
            order = np.argsort(self.b, kind="stable")
            hits = uniq[order]
            self.cap = np.where(
                hits.any(axis=0), self.b[order][hits.argmax(axis=0)], np.inf
            )
        else:
            self.cap = np.full(self.cols.size, np.inf)
        self._highs: Any = None  # the exact bounds' model, made once

    def _warm(self, cost: Floats) -> tuple[str, float, Floats]:
        """min cost·x over the known rows, x ≥ 0: one HiGHS model for all of this
        system's exact bounds, only its costs changed between them, so each solve
        starts from the last optimal basis (still feasible: the constraints do not
        change), by the primal simplex (a cost change leaves the basis primal
        feasible; dual simplex would start over). From scratch through linprog
        each took ~45 ms on a 390 × 583 system (bench/release.py), most of a
        release's time; warm, ~8 ms.

        The model is SciPy's own HiGHS (the one ``linprog`` runs), through its
        binding: ``linprog`` cannot keep a model between solves, and the
        separate ``highspy`` package prints a banner on stdout."""
        from scipy.optimize._highspy import _core as highspy

        h = self._highs
        if h is None:
            h = highspy._Highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("presolve", "off")
            h.setOptionValue("simplex_strategy", 4)  # primal
            lp = highspy.HighsLp()
            n, rows = self.cols.size, self.a.shape[0]
            a = sparse.csc_array(self.a)
            lp.num_col_, lp.num_row_ = n, rows
            lp.col_cost_ = np.zeros(n)
            lp.col_lower_ = np.zeros(n)
            lp.col_upper_ = np.full(n, highspy.kHighsInf)
            lp.row_lower_ = self.b.astype(np.float64)
            lp.row_upper_ = self.b.astype(np.float64)
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = a.indptr.astype(np.int32)
            lp.a_matrix_.index_ = a.indices.astype(np.int32)
            lp.a_matrix_.value_ = a.data.astype(np.float64)
            h.passModel(lp)
            self._highs = h
        n = self.cols.size
        h.changeColsCost(n, np.arange(n, dtype=np.int32), cost.astype(np.float64))
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:  # pragma: no cover
            return "unbounded", -math.inf, np.zeros(self.a.shape[0])
        if status == highspy.HighsModelStatus.kInfeasible:
            raise ValueError(
                "The published values are inconsistent with non-negative atoms; "
                "check that values equal M @ atom_counts."
            )
        if status != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
            raise RuntimeError(
                f"The interval LP failed: {h.modelStatusToString(status)}"
            )
        fun = float(h.getInfo().objective_function_value)
        return "optimal", fun, np.asarray(h.getSolution().row_dual, dtype=np.float64)

    def unbounded(self, targets: sparse.csr_array) -> Bools:
        """Targets touching an unconstrained atom: their interval is infinite."""
        if not self.free.any():
            return np.zeros(targets.shape[0], dtype=bool)
        return np.asarray((abs(targets[:, np.flatnonzero(self.free)]).sum(axis=1)) > 0)

    def _bounds(self, upper: Floats) -> Floats:
        return np.column_stack([np.zeros(self.cols.size), upper])

    def bound(self, target: Floats, sense: Literal[1, -1]) -> _Bound:
        """Exact min (sense=1) or max (sense=-1) of target·x, with its certificate."""
        none = np.zeros(self.n_cells, dtype=bool)
        if (sense * target[self.free] < 0).any():
            return _Bound(-sense * math.inf, none)
        c = target[self.cols]
        if not c.any():
            return _Bound(0.0, none)
        if self.rows.size == 0:  # only x ≥ 0: min is 0 for c ≥ 0, else unbounded
            if (sense * c < 0).any():
                return _Bound(-sense * math.inf, none)
            return _Bound(0.0, none)
        status, fun, duals = self._warm(sense * c)
        if status == "unbounded":  # pragma: no cover - cols are all constrained
            return _Bound(-sense * math.inf, none)
        used = np.abs(duals) > _TOL
        certificate = np.asarray(self.twins[used].any(axis=0), dtype=bool)
        return _Bound(sense * fun, certificate)

    def spread(
        self,
        targets: sparse.csr_array,
        floor: Floats,
        ceiling: Floats,
        gain: Floats,
        up: bool,
    ) -> Floats:
        """One feasible point moving many targets by up to ``gain`` each, at once.

        Up: maximise Σ s_i/gain_i with s_i ≤ t_i·x − floor_i and s_i ≤ gain_i
        (down: s_i ≤ ceiling_i − t_i·x). The cap makes the LP spread its effort
        over the targets instead of driving a few to extremes. Returns t·x.

        Most targets are single atoms. Such a target's constraint is written into
        its atom's column instead of a row of its own: up, x_a = floor + s + e
        with s ≤ gain and e ≥ 0 the rest; down, x_a = ceiling − s − e. The feasible
        x and the optimum are the same, but the LP keeps only the known cells (and
        the multi-atom targets) as rows, so its basis stays small.
        """
        k, n = targets.shape[0], self.cols.size
        if n == 0 or self.rows.size == 0:
            return np.zeros(k)
        t = sparse.csr_array(targets[:, self.cols])
        sign = 1.0 if up else -1.0
        anchor = floor if up else ceiling
        # single-atom targets, one per atom, become split columns
        counts = np.diff(t.indptr)
        firsts = t.indptr[:-1]
        single = counts == 1
        single[single] = t.data[firsts[single]] == 1.0
        atom = np.full(k, -1, dtype=np.int64)
        atom[single] = t.indices[firsts[single]]
        _, first = np.unique(atom[single], return_index=True)
        split = np.flatnonzero(single)[first]
        split_atom = atom[split]
        rows = np.setdiff1d(np.arange(k), split)
        m = split.size
        keep = np.setdiff1d(np.arange(n), split_atom)
        # x = S z + x0, z = (kept atoms, s of split targets, e of split targets)
        width = keep.size + 2 * m
        s_rows = np.concatenate([keep, split_atom, split_atom])
        s_cols = np.arange(width)
        s_vals = np.concatenate([np.ones(keep.size), np.full(2 * m, sign)])
        subst = sparse.csr_array((s_vals, (s_rows, s_cols)), shape=(n, width))
        x0 = np.zeros(n)
        x0[split_atom] = anchor[split]
        cap = self.cap[split_atom]
        g = gain[split]
        if up:
            room = cap - anchor[split]  # how far above the floor x_a may go
            s_lo, s_hi = -anchor[split], np.minimum(g, room)
            e_hi = np.maximum(0.0, room - g)
        else:
            s_lo, s_hi = anchor[split] - cap, np.minimum(g, anchor[split])
            e_hi = np.maximum(0.0, anchor[split] - g)
        a_eq = sparse.csr_array(self.a @ subst)
        b_eq = self.b - self.a @ x0
        # the other targets keep a row each: s_r ≤ ±(t_r·x − anchor_r)
        r = rows.size
        a_ub: sparse.csr_array | None = None
        b_ub: Floats | None = None
        if r:
            tr = sparse.csr_array(t[rows] @ subst)
            a_ub = sparse.hstack([-sign * tr, sparse.eye(r)], format="csr")
            b_ub = -sign * (anchor[rows] - t[rows] @ x0)
            a_eq = sparse.hstack(
                [a_eq, sparse.csr_array((a_eq.shape[0], r))], format="csr"
            )
        lower = np.concatenate(
            [np.zeros(keep.size), s_lo, np.zeros(m), np.full(r, -np.inf)]
        )
        upper = np.concatenate([self.cap[keep], s_hi, e_hi, gain[rows]])
        c = np.concatenate(
            [np.zeros(keep.size), -1.0 / g, np.zeros(m), -1.0 / gain[rows]]
        )
        bounds = np.column_stack([lower, upper])
        _, _, z, _ = _solve(
            c,
            a_eq,
            b_eq,
            bounds,
            a_ub,
            b_ub,
            presolve=False,
            # few rows (the known cells), many columns (atoms): the interior point
            # method with its crossover (a vertex, as exact as simplex's) is 1.6x
            # faster there (the demo's scorecard table, 7,965 atoms: 33 vs 64 s of
            # spread LPs); on small systems its crossover can stall for minutes
            # (bench/release.py, 583 atoms), where simplex takes milliseconds
            method="highs-ipm" if n >= _IPM_MIN_ATOMS else "highs",
        )
        x = subst @ z[:width] + x0
        return np.asarray(t @ x, dtype=np.float64)


# ------------------------------------------------------------------------ the audit


@dataclass(frozen=True, eq=False)
class _Finding:
    exposure: Exposure
    certificate: Bools  # over cells: the known cells the narrow bounds rest on


@dataclass(frozen=True, eq=False)
class _Targets:
    rows: sparse.csr_array  # targets × atoms
    truth: Floats
    protection: Floats
    describe: list[tuple[Literal["cell", "atom"], int]]

    def subset(self, keep: Sequence[int]) -> _Targets:
        idx = np.asarray(keep, dtype=np.int64)
        return _Targets(
            sparse.csr_array(self.rows[idx]),
            self.truth[idx],
            self.protection[idx],
            [self.describe[i] for i in idx],
        )


def _targets(
    m: Bools, atom_counts: Floats, values: Floats, suppressed: Bools, rules: _Rules
) -> _Targets:
    """Suppressed small cells, plus small atoms that are not already such a cell."""
    cells = np.flatnonzero(suppressed & (values > 0) & (values < rules.thr))
    atoms = (atom_counts > 0) & (atom_counts < rules.atom_thr)
    # an atom that is itself a targeted one-atom cell would be checked twice
    single = cells[m[cells].sum(axis=1) == 1]
    atoms[m[single].argmax(axis=1)] = False
    atom_idx = np.flatnonzero(atoms)
    unit = sparse.csr_array(
        (np.ones(atom_idx.size), (np.arange(atom_idx.size), atom_idx)),
        shape=(atom_idx.size, m.shape[1]),
    )
    return _Targets(
        rows=sparse.csr_array(
            sparse.vstack([sparse.csr_array(m[cells].astype(np.float64)), unit])
        ),
        truth=np.concatenate([values[cells], atom_counts[atom_idx]]),
        protection=np.concatenate([rules.prot[cells], rules.atom_prot[atom_idx]]),
        describe=[("cell", int(i)) for i in cells]
        + [("atom", int(a)) for a in atom_idx],
    )


def _audit(system: _System, t: _Targets) -> list[_Finding]:
    """The exposed targets, with the known cells their narrow intervals rest on."""
    if t.truth.size == 0:
        return []
    targets, truth, prot = t.rows, t.truth, t.protection
    # Every feasible point x gives lo ≤ t·x ≤ hi, so the spread of t over feasible
    # points (the truth among them) is a lower bound on the interval width. A few
    # "spread" LPs push all unproven targets at once (one down, then up, gains
    # accumulating) and prove nearly all of them safe; the rest (mostly the truly
    # exposed) get their own exact LPs. A spread LP costs a few exact ones, so
    # rounds stop when they prove too few.
    safe = system.unbounded(targets)
    lo_seen, hi_seen = truth.copy(), truth.copy()
    for round_ in range(_SPREAD_ROUNDS):
        open_ = np.flatnonzero(~safe & (hi_seen - lo_seen < prot - _TOL))
        if open_.size < _SPREAD_MIN:
            break
        # One point cannot move every target of a cell at once (the cell's sum
        # holds them together), so many targets go in a few smaller spreads, each
        # its own feasible point: they prove more per round, and run side by
        # side (HiGHS releases the GIL). The split is seeded: same decisions.
        # (Pushing down is bounded by zero anyway: that round stays whole.)
        split = round_ > 0 and open_.size >= _SPREAD_SPLIT_MIN
        parts = _SPREAD_PARTS if split else 1
        rng = np.random.default_rng(round_)
        chunks = np.array_split(rng.permutation(open_), parts)

        def push(chunk: Ints, up: bool = round_ > 0) -> Floats:
            return system.spread(
                sparse.csr_array(targets[chunk]),
                lo_seen[chunk],
                hi_seen[chunk],
                prot[chunk],
                up=up,
            )

        if parts > 1:
            with ThreadPoolExecutor(_SPREAD_THREADS) as pool:
                moves = list(pool.map(push, chunks))
        else:
            moves = [push(chunks[0])]
        for chunk, moved in zip(chunks, moves, strict=True):
            lo_seen[chunk] = np.minimum(lo_seen[chunk], moved)
            hi_seen[chunk] = np.maximum(hi_seen[chunk], moved)
        proved = int((hi_seen[open_] - lo_seen[open_] >= prot[open_] - _TOL).sum())
        if round_ > 0 and proved < _SPREAD_MIN // 2:
            break
    safe |= hi_seen - lo_seen >= prot - _TOL

    nonneg = np.asarray(targets.min(axis=1).toarray()).ravel() >= 0
    findings: list[_Finding] = []
    for i in np.flatnonzero(~safe):
        row = np.asarray(targets[[i]].toarray()).ravel()
        hi = system.bound(row, -1)
        if hi.value - truth[i] >= prot[i] - _TOL:
            continue  # lo ≤ truth, so the width is at least hi - truth
        if nonneg[i] and lo_seen[i] <= _TOL:
            lo = _Bound(0.0, np.zeros(system.n_cells, dtype=bool))  # x ≥ 0 alone
        else:
            lo = system.bound(row, 1)
        if hi.value - lo.value >= prot[i] - _TOL:
            continue
        kind, index = t.describe[int(i)]
        why = (
            f"{kind} {index} (true {truth[i]:g}) can be pinned to "
            f"[{lo.value:g}, {hi.value:g}], width {hi.value - lo.value:g} < "
            f"protection {prot[i]:g}"
        )
        exposure = Exposure(
            kind, int(index), float(truth[i]), lo.value, hi.value, float(prot[i]), why
        )
        findings.append(_Finding(exposure, hi.certificate | lo.certificate))
    return findings


def audit(
    m: npt.ArrayLike,
    atom_counts: npt.ArrayLike,
    published: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    protection: npt.ArrayLike | None = None,
    *,
    atom_thresholds: npt.ArrayLike | None = None,
) -> list[Exposure]:
    """Every small count an attacker can pin to an interval narrower than protection.

    Targets are the suppressed cells and the atoms with ``0 < v < threshold``.
    ``thresholds`` are per cell (or one number). An atom's threshold is
    ``atom_thresholds`` when given (e.g. the strictest minimum size among the
    providers of its persons), else the largest threshold of the cells containing
    it. ``protection`` is None (``ceil(threshold / 2)`` per target), one number,
    or per cell (an atom then takes the largest of its cells'). Cells whose true
    value is 0 count as known even when suppressed.
    """
    mm = _membership(m)
    n_cells, n_atoms = mm.shape
    counts = _counts(atom_counts, n_atoms, "atom_counts")
    pub = _mask(published, n_cells, "published")
    rules = _rules(mm, thresholds, protection, atom_thresholds)
    values = _values(mm, counts)
    t = _targets(mm, counts, values, ~pub, rules)
    return [f.exposure for f in _audit(_System(mm, values, pub | (values == 0)), t)]


def _values(mm: Bools, counts: Floats) -> Floats:
    return np.asarray(
        sparse.csr_array(mm.astype(np.float64)) @ counts, dtype=np.float64
    )


# ----------------------------------------------------------------------- protection


def _line_rule(
    lines: Sequence[Ints], values: Floats, suppressed: Bools, candidate: Bools
) -> None:
    """Classic rule, in place: no line may hold exactly one suppressed cell.

    Such a cell is its line's total minus the others. Suppress the line's smallest
    non-zero candidate (ties: lowest index, i.e. inner cells before margins).
    """
    changed = True
    while changed:
        changed = False
        for line in lines:
            if suppressed[line].sum() != 1:
                continue
            pool = line[candidate[line] & ~suppressed[line]]
            if pool.size:
                suppressed[pool[np.lexsort((pool, values[pool]))[0]]] = True
                changed = True


def _check_lines(mm: Bools, lines: Sequence[Sequence[int]]) -> list[Ints]:
    out = []
    for line in lines:
        idx = np.asarray(line, dtype=np.int64)
        if idx.size < 2 or (idx < 0).any() or (idx >= mm.shape[0]).any():
            raise ValueError(f"A line must list at least 2 cell indices; got {line}.")
        total, parts = mm[idx[0]].astype(int), mm[idx[1:]].astype(int).sum(axis=0)
        if not np.array_equal(total, parts):
            raise ValueError(
                f"Line {list(line)} is not additive: cell {idx[0]} must be the "
                "disjoint union of the other cells."
            )
        out.append(idx)
    return out


def protect(
    m: npt.ArrayLike,
    atom_counts: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    *,
    new_cells: npt.ArrayLike,
    prior_published: npt.ArrayLike,
    complementary: bool = True,
    protection: npt.ArrayLike | None = None,
    atom_thresholds: npt.ArrayLike | None = None,
    lines: Sequence[Sequence[int]] | None = None,
    intervals: bool = False,
) -> Protection:
    """Choose which new cells to suppress so no small count can be pinned down.

    Cells with ``new_cells`` False belong to earlier releases: their status is
    ``prior_published`` and cannot change. New cells with ``0 < v < threshold`` are
    suppressed (primary). With ``complementary`` (the default), further new cells
    are suppressed until :func:`audit` is clean: for each exposure, the smallest
    non-zero new published cell among those the attacker's bound rests on (the
    cells with non-zero duals in the interval LPs; merely overlapping the target
    is not enough: in [3, 50, 60 | 113] only 50, 60 or the total hide the 3,
    and the total would be the overlapping one). A zero cell, or a new cell equal
    to an earlier published one, is never chosen: it hides nothing. When an
    exposure rests only on cells that cannot be suppressed, no pattern can fix
    it: every new cell is suppressed and ``refused`` is set.

    ``complementary=False`` applies primary suppression only. That is unsafe
    whenever margins or earlier releases are published (a margin minus the other
    cells gives the small one back); it exists because an agreement may say so.

    ``thresholds``, ``protection`` and ``atom_thresholds`` are as in :func:`audit`.
    ``lines`` (optional) lists additive relations, each ``[total, part, ...]``;
    when given, the classic line rule runs first as a fast start and the LP
    audit then confirms. :func:`table_lines` gives them for a table.

    ``intervals``: also compute the attacker's interval of every suppressed new
    cell (two LPs each; the release gate does not need them, so they are off).
    """
    mm = _membership(m)
    n_cells, n_atoms = mm.shape
    counts = _counts(atom_counts, n_atoms, "atom_counts")
    new = _mask(new_cells, n_cells, "new_cells")
    prior_pub = _mask(prior_published, n_cells, "prior_published")
    rules = _rules(mm, thresholds, protection, atom_thresholds)
    checked_lines = _check_lines(mm, lines or [])
    values = _values(mm, counts)

    primary = new & (values > 0) & (values < rules.thr)
    suppressed = (~new & ~prior_pub) | primary
    if not complementary:
        return _finish(mm, values, new, suppressed, primary, False, (), intervals)

    # A zero is known, and a new cell identical to an earlier published cell is
    # known already: suppressing either protects nothing.
    _, group = np.unique(mm, axis=0, return_inverse=True)
    group = group.ravel()
    known_groups = np.unique(group[~new & prior_pub])
    candidate = new & (values > 0) & ~np.isin(group, known_groups)

    _line_rule(checked_lines, values, suppressed, candidate)
    t = _targets(mm, counts, values, suppressed, rules)
    pending = list(range(t.truth.size))
    while True:
        found = _audit(
            _System(mm, values, ~suppressed | (values == 0)), t.subset(pending)
        )
        if not found:
            return _finish(mm, values, new, suppressed, primary, False, (), intervals)
        # The certificate (the known cells with non-zero duals) proves the narrow
        # bound whatever else is published: it breaks only if one of its cells
        # is suppressed, so if none can be, the exposure can never be fixed.
        round_start = suppressed.copy()
        stuck: list[Exposure] = []
        for f in found:
            if (f.certificate & suppressed & ~round_start).any():
                continue  # already broken by this round's choices; re-check
            pool = np.flatnonzero(f.certificate & candidate & ~suppressed)
            if pool.size == 0:
                stuck.append(f.exposure)
                continue
            suppressed[pool[np.lexsort((pool, values[pool]))[0]]] = True
        if stuck:
            return _finish(
                mm, values, new, suppressed | new, primary, True, tuple(stuck), False
            )
        # Suppressing more only removes constraints, so intervals only widen and
        # complements (non-zero, ≥ threshold) are never targets: re-check only
        # the targets just found exposed.
        exposed = {(f.exposure.kind, f.exposure.index) for f in found}
        pending = [i for i in pending if t.describe[i] in exposed]


def _finish(
    mm: Bools,
    values: Floats,
    new: Bools,
    suppressed: Bools,
    primary: Bools,
    refused: bool,
    exposures: tuple[Exposure, ...],
    with_intervals: bool,
) -> Protection:
    """The result; with ``with_intervals``, the attacker's interval for every
    suppressed new cell (NaN otherwise)."""
    intervals = np.full((mm.shape[0], 2), np.nan)
    cells = np.flatnonzero(suppressed & new) if with_intervals else np.zeros(0, int)
    if cells.size:
        system = _System(mm, values, ~suppressed | (values == 0))
        rows = mm[cells].astype(np.float64)
        intervals[cells, 0] = [system.bound(r, 1).value for r in rows]
        intervals[cells, 1] = [system.bound(r, -1).value for r in rows]
    return Protection(suppressed, primary, refused, exposures, intervals)


# --------------------------------------------------------------------------- tables


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if len(dims) not in (1, 2) or min(dims) < 1:
        raise ValueError(f"Only 1-D and 2-D tables of positive size; got {shape}.")
    return dims


def table_membership(shape: Sequence[int]) -> tuple[Bools, tuple[Label, ...]]:
    """Membership of a table with margins, the inner cells being the atoms.

    1-D ``(k,)``: cells are the k inner cells then the total, labels ``(i,)`` and
    ``(None,)``. 2-D ``(r, c)``: the r*c inner cells row by row, then the r row
    totals ``(i, None)``, the c column totals ``(None, j)`` and the grand total
    ``(None, None)``.
    """
    dims = _shape(shape)
    if len(dims) == 1:
        (k,) = dims
        m = np.vstack([np.eye(k, dtype=bool), np.ones((1, k), dtype=bool)])
        labels: list[Label] = [(i,) for i in range(k)] + [(None,)]
        return m, tuple(labels)
    r, c = dims
    grid = np.arange(r * c).reshape(r, c)
    rows = np.zeros((r, r * c), dtype=bool)
    rows[np.repeat(np.arange(r), c), grid.ravel()] = True
    cols = np.zeros((c, r * c), dtype=bool)
    cols[np.tile(np.arange(c), r), grid.ravel()] = True
    m = np.vstack([np.eye(r * c, dtype=bool), rows, cols, np.ones((1, r * c), bool)])
    labels = [(i, j) for i in range(r) for j in range(c)]
    labels += [(i, None) for i in range(r)] + [(None, j) for j in range(c)]
    labels.append((None, None))
    return m, tuple(labels)


def table_lines(shape: Sequence[int]) -> list[list[int]]:
    """The additive lines of :func:`table_membership`'s cells, each ``[total, parts...]``."""
    dims = _shape(shape)
    if len(dims) == 1:
        (k,) = dims
        return [[k, *range(k)]]
    r, c = dims
    grid = np.arange(r * c).reshape(r, c)
    row_total, col_total, grand = r * c, r * c + r, r * c + r + c
    lines = [[row_total + i, *grid[i].tolist()] for i in range(r)]
    lines += [[col_total + j, *grid[:, j].tolist()] for j in range(c)]
    lines.append([grand, *range(row_total, row_total + r)])
    lines.append([grand, *range(col_total, col_total + c)])
    return lines


def _table_positions(dims: tuple[int, ...]) -> tuple[Ints, ...]:
    """For each cell of table_membership, its index in the with-margins array."""
    if len(dims) == 1:
        return (np.arange(dims[0] + 1),)
    r, c = dims
    i = np.concatenate([np.repeat(np.arange(r), c), np.arange(r), np.full(c, r), [r]])
    j = np.concatenate([np.tile(np.arange(c), r), np.full(r, c), np.arange(c), [c]])
    return i.astype(np.int64), j.astype(np.int64)


def protect_table(
    counts: npt.ArrayLike,
    thresholds: npt.ArrayLike | None = None,
    *,
    min_cell_size: int = 10,
    complementary: bool = True,
    protection: float | None = None,
) -> ProtectedTable:
    """Suppress a 1-D or 2-D count table and its margins (see :func:`protect`).

    ``thresholds`` are per inner cell (same shape as ``counts``), e.g. the strictest
    minimum size of the providers behind each cell; by default ``min_cell_size``
    everywhere. A margin's threshold is the largest of its inner cells'.
    An inner cell is its own atom, so its own threshold applies to it.
    ``protection`` is one number for every cell; default ``ceil(threshold / 2)``.
    """
    inner = np.asarray(counts)
    dims = _shape(inner.shape)
    if not np.issubdtype(inner.dtype, np.integer) and not (
        np.issubdtype(inner.dtype, np.floating) and np.all(inner == np.round(inner))
    ):
        raise ValueError("counts must be whole numbers.")
    if (inner < 0).any():
        raise ValueError("counts must be non-negative.")
    m, labels = table_membership(dims)
    atoms = inner.ravel().astype(np.float64)
    thr_inner = (
        np.full(atoms.size, float(min_cell_size))
        if thresholds is None
        else _inner(thresholds, inner.shape, "thresholds")
    )
    thr = _atom_max(m.T, thr_inner)  # each cell: the max over its inner cells
    n = m.shape[0]
    result = protect(
        m,
        atoms,
        thr,
        new_cells=np.ones(n, dtype=bool),
        prior_published=np.zeros(n, dtype=bool),
        complementary=complementary,
        protection=protection,
        atom_thresholds=thr_inner,
        lines=table_lines(dims),
        intervals=True,
    )
    pos = _table_positions(dims)
    full = tuple(d + 1 for d in dims)

    def place(x: NDArray[np.generic], fill: object) -> NDArray[np.generic]:
        out = np.full(full, fill, dtype=x.dtype)
        out[pos] = x
        return out

    values = (m.astype(np.int64) @ inner.ravel().astype(np.int64)).astype(np.int64)
    return ProtectedTable(
        values=place(values, 0).astype(np.int64),
        suppressed=place(result.suppressed, False).astype(bool),
        primary=place(result.primary, False).astype(bool),
        lo=place(result.intervals[:, 0], np.nan).astype(np.float64),
        hi=place(result.intervals[:, 1], np.nan).astype(np.float64),
        refused=result.refused,
        exposures=result.exposures,
        labels=labels,
    )


def _inner(x: npt.ArrayLike, shape: tuple[int, ...], what: str) -> Floats:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(shape, arr)
    if arr.shape != shape:
        raise ValueError(
            f"{what} must be one number or have shape {shape}; got {arr.shape}."
        )
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{what} must be finite and non-negative.")
    return arr.ravel()


# ---------------------------------------------------------------------------- rates


def code_rates(
    numerators: npt.ArrayLike,
    denominators: npt.ArrayLike,
    *,
    threshold: float,
    top_percent: float | None = 95.0,
    bottom_percent: float | None = 5.0,
    decimals: int = 1,
) -> RateCodes:
    """Percentages for display, suppressed or top/bottom coded.

    A rate is ``"*"`` when its denominator is below ``threshold``, or when the
    numerator or the complement (denominator − numerator) is non-zero and below
    it: either count could then be read off the rate. Otherwise it is coded
    ``">95%"`` above ``top_percent``, ``"<5%"`` below ``bottom_percent`` (either
    may be None for no coding), else the percent rounded to ``decimals``.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.shape != den.shape:
        raise ValueError(
            f"numerators and denominators must have the same shape; got "
            f"{num.shape} and {den.shape}."
        )
    if (num < 0).any() or (den < 0).any() or not np.isfinite(num + den).all():
        raise ValueError("numerators and denominators must be finite and non-negative.")
    if (num > den).any():
        raise ValueError("A numerator is larger than its denominator.")
    if decimals < 0:
        raise ValueError("decimals must be 0 or more.")
    rest = den - num
    suppressed = (
        (den < threshold)
        | ((num > 0) & (num < threshold))
        | ((rest > 0) & (rest < threshold))
    )
    rate = 100.0 * num / np.where(den > 0, den, 1.0)
    text = np.char.mod(f"%.{decimals}f%%", rate).astype(np.str_)
    if bottom_percent is not None:
        text = np.where(rate < bottom_percent, f"<{bottom_percent:g}%", text)
    if top_percent is not None:
        text = np.where(rate > top_percent, f">{top_percent:g}%", text)
    text = np.where(suppressed, "*", text)
    return RateCodes(text=np.asarray(text, dtype=np.str_), suppressed=suppressed)
