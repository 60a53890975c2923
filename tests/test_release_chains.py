"""The release gate against chains of overlapping releases, checked by an attacker
written apart from the gate.

Random sequences of counts go through the real gate on a small, randomized
population; afterwards an attacker reads the whole ledger (every cell's true value,
whether it was published, and the keyed persons it counted), splits the persons into
atoms (those counted by exactly the same cells), and with a linear programme over
the atoms' sizes (>= 0, continuous, as tau-ARGUS's audit) bounds every suppressed
small cell and every small atom from what was published: an interval narrower than
half the minimum cell size (rounded up) is a breach, and so is a small cell
published. Nothing of the gate's own audit is used: only what a release publishes
and what its ledger keeps. A refused release publishes nothing and is fine.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.optimize import linprog

from backbone import Warehouse
from backbone.engines import transaction
from backbone.errors import PolicyDenied
from tests.policy_fixtures import build, user

D1_MIN_CELL = 10  # what d1's agreement sets
D2_MIN_CELL = 11  # and d2's
SCHOOLS = ("S1", "S2")
GRADES = ("Ninth grade", "Tenth grade", "Eleventh grade")
FILTERS: dict[str, tuple[object, ...]] = {
    "school_id": ("S1", "S2", "T1"),
    "entry_grade_level": GRADES,
    "school_year": (2024, 2026),
}
BYS: tuple[list[str], ...] = ([], ["school_id"], ["entry_grade_level"], ["school_year"])
SEEDS = range(12)

Where = dict[str, list[object]]
CellKey = tuple[int, int]  # (release_id, cell)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chains") / "wh"
    build(path)
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh") as w:
        yield w


def _count(wh: Warehouse, by: list[str], where: Where | None = None) -> int | None:
    """The release's id, or None when the gate refuses it (nothing published)."""
    try:
        release = wh.access(user(wh, "d1.analyst"), "shared_measurement").count(
            "enrollment", by, where=where
        )
    except PolicyDenied:
        return None
    return release.release_id


def _randomize_d1(wh: Warehouse, rng: random.Random) -> None:
    """d1's 43 students get random years (2026, 2024 or both), schools and grades;
    d2's 30 students at T1 stay as they are."""
    rows: list[list[object]] = []
    for i in range(1, 44):
        years = [y for y, p in ((2026, 0.85), (2024, 0.3)) if rng.random() < p]
        for year in years or [rng.choice((2024, 2026))]:
            rows.append(
                [
                    f"d1-{i:02d}",
                    rng.choice(SCHOOLS),
                    date(year - 1, 8, 20),
                    rng.choice(GRADES),
                    year,
                ]
            )
    with transaction(wh._con):
        wh._con.execute(
            "DELETE FROM analytic.enrollment WHERE provider_partner_id = 'd1'"
        )
        wh._con.executemany(
            "INSERT INTO analytic.enrollment (provider_partner_id, student_local_id, "
            "school_id, entry_date, entry_grade_level, school_year, submission_id) "
            "VALUES ('d1', ?, ?, ?, ?, ?, 1)",
            rows,
        )


def _random_where(rng: random.Random) -> Where | None:
    if rng.random() < 0.25:
        return None
    keys = rng.sample(sorted(FILTERS), rng.randint(1, 2))
    return {
        k: rng.sample(list(FILTERS[k]), rng.randint(1, len(FILTERS[k]) - 1))
        for k in keys
    }


# --- the attacker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    label: str
    value: int
    published: bool
    threshold: int


@dataclass(frozen=True)
class Ledger:
    cells: dict[CellKey, Cell]
    members: dict[CellKey, frozenset[str]]  # the units each cell counted
    definitions: dict[int, dict[str, object]]

    def name(self, release: int) -> str:
        d = self.definitions[release]
        again = f" again as release {d['same_as']}" if "same_as" in d else ""
        return f"release {release} (by {d['by']} where {d['where']}{again})"


def _ledger(wh: Warehouse) -> Ledger:
    con = wh._con
    cells = {
        (int(r), int(c)): Cell(str(label), int(v), bool(p), int(t))
        for r, c, label, v, p, t in con.execute(
            "SELECT release_id, cell, label, value, published, threshold "
            "FROM gov.release_cell"
        ).fetchall()
    }
    members: dict[CellKey, set[str]] = defaultdict(set)
    for r, c, unit in con.execute(
        "SELECT release_id, cell, unit FROM gov.release_member"
    ).fetchall():
        members[(int(r), int(c))].add(str(unit))
    definitions = {
        int(r): json.loads(d)
        for r, d in con.execute(
            "SELECT release_id, definition FROM gov.release"
        ).fetchall()
    }
    # a table released again as it was ("same_as" an earlier release) keeps no
    # members of its own: its cells counted the earlier table's cells' persons
    for release, definition in sorted(definitions.items()):
        earlier = definition.get("same_as")
        if earlier is None:
            continue
        cell_of = {c.label: k for k, c in cells.items() if k[0] == earlier}
        for key, cell in cells.items():
            if key[0] == release:
                assert key not in members, key
                assert cells[cell_of[cell.label]].value == cell.value, key
                members[key] = members[cell_of[cell.label]]
    return Ledger(cells, {k: frozenset(v) for k, v in members.items()}, definitions)


def _breaches(ledger: Ledger, d2_units: frozenset[str]) -> list[str]:
    """What the attacker narrows below its protection, and each published small cell."""
    cells, members = ledger.cells, ledger.members
    for key, cell in cells.items():  # the attacker's premise: one unit, one person
        assert cell.value == len(members.get(key, ())), (key, cell)
    memberships: dict[str, set[CellKey]] = defaultdict(set)
    for key, units in members.items():
        for unit in units:
            memberships[unit].add(key)
    atoms: dict[frozenset[CellKey], list[str]] = defaultdict(list)
    for unit, keys in memberships.items():
        atoms[frozenset(keys)].append(unit)
    atom_keys = list(atoms)
    column = {a: j for j, a in enumerate(atom_keys)}
    incidence = np.zeros((len(cells), len(atom_keys)))
    row = {key: i for i, key in enumerate(cells)}
    for a in atom_keys:
        for key in a:
            incidence[row[key], column[a]] = 1.0
    # what the attacker knows: every published cell, and every empty one
    known = [k for k, c in cells.items() if c.published or c.value == 0]
    a_eq = incidence[[row[k] for k in known]]
    b_eq = np.array([float(cells[k].value) for k in known])

    def interval(objective: npt.NDArray[np.float64]) -> tuple[float, float]:
        ends = []
        for sign in (1.0, -1.0):
            res = linprog(
                sign * objective,
                A_eq=a_eq if len(known) else None,
                b_eq=b_eq if len(known) else None,
                bounds=(0, None),
                method="highs",
            )
            if res.status == 3:  # unbounded (above: sizes are >= 0)
                ends.append(math.inf)
                continue
            assert res.status == 0, res.message
            ends.append(sign * res.fun)
        return ends[0], ends[1]

    def name(key: CellKey) -> str:
        return f"release {key[0]} cell {cells[key].label}"

    found: list[str] = []
    for key, cell in cells.items():
        if not 0 < cell.value < cell.threshold:
            continue
        if cell.published:
            found.append(f"published small cell {cell.value}: {name(key)}")
            continue
        lo, hi = interval(incidence[row[key]])
        if hi - lo < math.ceil(cell.threshold / 2) - 1e-6:
            found.append(
                f"suppressed cell {cell.value} narrowed to [{lo:g}, {hi:g}] "
                f"(threshold {cell.threshold}): {name(key)}"
            )
    for a, persons in atoms.items():
        threshold = D2_MIN_CELL if d2_units.intersection(persons) else D1_MIN_CELL
        if len(persons) >= threshold:
            continue
        objective = np.zeros(len(atom_keys))
        objective[column[a]] = 1.0
        lo, hi = interval(objective)
        if hi - lo < math.ceil(threshold / 2) - 1e-6:
            found.append(
                f"{len(persons)} persons counted by exactly "
                f"{[name(k) for k in sorted(a)]} narrowed to [{lo:g}, {hi:g}] "
                f"(threshold {threshold})"
            )
    return found


def _units(ledger: Ledger, release_id: int, label: str = '["(all)"]') -> frozenset[str]:
    """The persons a release's cell counted."""
    return next(
        ledger.members.get(key, frozenset())
        for key, cell in ledger.cells.items()
        if key[0] == release_id and cell.label == label
    )


def _report(ledger: Ledger, found: list[str]) -> str:
    releases = "\n".join(f"  {ledger.name(r)}" for r in sorted(ledger.definitions))
    return "releases:\n" + releases + "\nbreaches:\n" + "\n".join(found)


# --- the tests ------------------------------------------------------------------------


def _chain(wh: Warehouse) -> tuple[int | None, int | None, int | None]:
    """X counts d2's 30 students (b), Y those and d1's 33 ever at S1 (a + b), Z d1's
    30 at S1 in 2026 (a' in a): Y - X - Z would be the 3 who left."""
    x = _count(wh, [], {"school_id": ["T1"]})
    y = _count(wh, [], {"school_id": ["S1", "T1"]})
    z = _count(wh, [], {"school_id": ["S1"], "school_year": [2026]})
    return x, y, z


def test_a_chain_of_three_releases_does_not_give_away_the_difference(
    wh: Warehouse,
) -> None:
    x, y, z = _chain(wh)
    assert x is not None and y is not None and z is not None
    ledger = _ledger(wh)
    # X's 30 persons are d2's (only d2 has school T1)
    found = _breaches(ledger, _units(ledger, x))
    assert not found, _report(ledger, found)
    (x_cell, y_cell, z_cell) = (ledger.cells[(r, 0)] for r in (x, y, z))
    assert (x_cell.value, y_cell.value, z_cell.value) == (30, 63, 30)
    assert x_cell.published and y_cell.published
    assert not z_cell.published, "Y - X - Z would publish the 3 who left"


def test_the_attacker_finds_the_chain_when_its_last_cell_is_published(
    wh: Warehouse,
) -> None:
    # the attacker must be able to fail: publish Z in this copy's ledger, as a gate
    # auditing only the releases that share a person with Z (Y, not X) did
    x, _, z = _chain(wh)
    assert x is not None and z is not None
    wh._con.execute(
        "UPDATE gov.release_cell SET published = true WHERE release_id = ?", [z]
    )
    ledger = _ledger(wh)
    found = _breaches(ledger, _units(ledger, x))
    assert any(f.startswith("3 persons") and "[3, 3]" in f for f in found), found


@pytest.mark.parametrize("seed", SEEDS)
def test_random_overlapping_releases_never_narrow_a_small_group(
    wh: Warehouse, seed: int
) -> None:
    rng = random.Random(seed)
    _randomize_d1(wh, rng)
    # d1's analyst sees d1's rows (minimum 10) and d2's (minimum 11); this release's
    # T1 cell tells the attacker which persons are d2's
    first = _count(wh, ["school_id"])
    assert first is not None
    thresholds = dict(
        wh._con.execute(
            "SELECT label, threshold FROM gov.release_cell WHERE release_id = ?",
            [first],
        ).fetchall()
    )
    assert thresholds == {
        '["(all)"]': D2_MIN_CELL,
        '["S1"]': D1_MIN_CELL,
        '["S2"]': D1_MIN_CELL,
        '["T1"]': D2_MIN_CELL,
    }
    for _ in range(rng.randint(6, 10)):
        _count(wh, rng.choice(BYS), _random_where(rng))
    ledger = _ledger(wh)
    d2_units = _units(ledger, first, '["T1"]')
    assert len(d2_units) == 30
    found = _breaches(ledger, d2_units)
    assert not found, f"seed {seed}\n" + _report(ledger, found)


def test_the_component_follows_chains_of_shared_persons_and_no_further() -> None:
    from backbone.governance.release.partition import _component

    # rows X = {b}, Y = {a, b}, Z = {c, d}, V = {d} over atoms a b c d (0-3); a
    # new table of a reaches Y (shares a) and X (shares b with Y), not Z or V
    rows = np.array([0, 1, 1, 2, 2, 3])
    atoms = np.array([1, 0, 1, 2, 3, 3])
    reach_rows, reach_atoms = _component(rows, atoms, 4, 4, np.array([0]))
    assert list(np.flatnonzero(reach_rows)) == [0, 1]
    assert list(np.flatnonzero(reach_atoms)) == [0, 1]
    reach_rows, _ = _component(rows, atoms, 4, 4, np.array([3]))
    assert list(np.flatnonzero(reach_rows)) == [2, 3]


def _kept_state(
    wh: Warehouse,
) -> tuple[set[frozenset[str]], npt.NDArray[np.float64], set[frozenset[str]]]:
    """The audit state as sets of units: the atoms, the rank of the known rows,
    and the targets (ids differ between a state kept and one rebuilt)."""
    con = wh._con
    unit_atom = dict(con.execute("SELECT unit, atom FROM gov.release_unit").fetchall())
    by_atom: dict[int, set[str]] = defaultdict(set)
    for unit, atom in unit_atom.items():
        by_atom[atom].add(unit)
    sizes = dict(con.execute("SELECT atom, units FROM gov.release_atom").fetchall())
    assert sizes == {a: len(u) for a, u in by_atom.items()}
    rows: dict[int, set[str]] = defaultdict(set)
    for row_id, atom in con.execute(
        "SELECT row_id, atom FROM gov.release_row"
    ).fetchall():
        rows[row_id] |= by_atom[atom]
    kinds = dict(
        con.execute("SELECT row_id, kind FROM gov.release_row_info").fetchall()
    )
    units = sorted(unit_atom)
    known = np.array(
        [[u in rows[r] for u in units] for r, k in kinds.items() if k == "known"],
        dtype=float,
    ).reshape(-1, len(units))
    targets = {frozenset(rows[r]) for r, k in kinds.items() if k == "target"}
    return {frozenset(u) for u in by_atom.values()}, known, targets


@pytest.mark.parametrize("seed", range(4))
def test_the_audit_state_kept_release_by_release_is_the_one_rebuilt_from_the_ledger(
    wh: Warehouse, seed: int
) -> None:
    from backbone.governance.release import partition

    rng = random.Random(seed)
    _randomize_d1(wh, rng)
    for _ in range(8):
        _count(wh, rng.choice(BYS), _random_where(rng))
    kept = _kept_state(wh)
    key = wh._warehouse_keys().derive("ledger")
    partition._rebuild(wh._con, key, partition._identity(wh._con))
    rebuilt = _kept_state(wh)
    assert kept[0] == rebuilt[0]  # the same atoms
    assert kept[2] == rebuilt[2]  # the same small suppressed cells
    # known rows: independent (as many as their rank), spanning the same space
    rank = np.linalg.matrix_rank
    assert rank(kept[1]) == len(kept[1]) == len(rebuilt[1]) > 0
    assert rank(np.vstack([kept[1], rebuilt[1]])) == len(kept[1])
