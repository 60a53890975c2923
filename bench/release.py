"""Benchmark: the release gate's disclosure maths (suppression plus LP interval audit).

Part 1 protects one 2-D table with margins: students by school × grade for 40
schools and 6 grades, with realistic sizes (four tiny schools, a dozen thin
grades elsewhere).
Part 2 is ledger-like: 30 overlapping releases over 20,000 students with random
attributes (counts by school, by grade, school × grade, filtered by ELL, special
education, free lunch, last year's and this year's enrolment...). Students are
grouped into atoms by their membership signature across every cell (np.unique
over the packed bits). The 29 earlier releases are protected together first (the
ledger as it stands, clean against itself); then the newest, free-lunch students
by school × grade with margins, is protected against them, their status fixed.
Prints, last: cells, atoms, suppressed, seconds.

    .venv/bin/python bench/release.py [--units N] [--seed S]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backbone.governance.disclosure import protect, protect_table, table_lines

SCHOOLS = 40
GRADES = 6
MIN_CELL = 10
Mask = NDArray[np.bool_]


def school_sizes(rng: np.random.Generator) -> NDArray[np.float64]:
    """Relative school sizes: mostly 300-600 students, a few very small schools."""
    sizes = rng.uniform(300, 600, SCHOOLS)
    sizes[rng.choice(SCHOOLS, 4, replace=False)] = rng.uniform(15, 45, 4)
    return sizes / sizes.sum()


def one_table(rng: np.random.Generator) -> dict[str, float]:
    p = school_sizes(rng)
    grade_p = np.array([0.18, 0.18, 0.17, 0.17, 0.15, 0.15])
    counts = rng.multinomial(14_000, np.outer(p, grade_p).ravel()).reshape(SCHOOLS, 6)
    # and a dozen thin grades elsewhere (a program starting, a grade phasing out)
    thin = rng.choice(counts.size, 12, replace=False)
    counts.ravel()[thin] = rng.integers(1, MIN_CELL, 12)
    start = time.perf_counter()
    table = protect_table(counts, min_cell_size=MIN_CELL)
    seconds = time.perf_counter() - start
    return {
        "cells": table.values.size,
        "small": int(table.primary.sum()),
        "suppressed": int(table.suppressed.sum()),
        "refused": table.refused,
        "seconds": seconds,
    }


@dataclass(frozen=True)
class Release:
    name: str
    cells: list[Mask]  # one mask over units per cell
    lines: list[list[int]]  # additive lines, as cell indices within the release


def by(groups: NDArray[np.int64], k: int, where: Mask, name: str) -> Release:
    """One 1-D count table (k cells and a total) of the units in ``where``."""
    cells = [where & (groups == g) for g in range(k)]
    cells.append(where.copy())
    return Release(name, cells, [[k, *range(k)]])


def cross(a: NDArray[np.int64], ka: int, b: NDArray[np.int64], kb: int, where: Mask,
          name: str) -> Release:  # fmt: skip
    """A 2-D table with margins, cells in table_membership's order."""
    cells = [where & (a == i) & (b == j) for i in range(ka) for j in range(kb)]
    cells += [where & (a == i) for i in range(ka)]
    cells += [where & (b == j) for j in range(kb)]
    cells.append(where.copy())
    return Release(name, cells, table_lines((ka, kb)))


def ledger(units: int, rng: np.random.Generator) -> list[Release]:
    school = rng.choice(SCHOOLS, units, p=school_sizes(rng))
    grade = rng.integers(0, GRADES, units)
    ell = rng.random(units) < 0.12
    sped = rng.random(units) < 0.14
    frl = rng.random(units) < 0.5
    female = rng.random(units) < 0.49
    # year over year: most students were there last year, some left, some are new
    this_year = rng.random(units) < 0.9
    last_year = np.where(this_year, rng.random(units) < 0.88, True)
    everyone = np.ones(units, dtype=bool)
    two = female.astype(np.int64)
    specs: list[Callable[[], Release]] = [
        lambda: by(school, SCHOOLS, this_year, "school"),
        lambda: by(grade, GRADES, this_year, "grade"),
        lambda: cross(school, SCHOOLS, grade, GRADES, last_year, "school×grade 2023"),
        lambda: by(school, SCHOOLS, last_year, "school 2023"),
        lambda: by(grade, GRADES, this_year & ell, "grade, ELL"),
        lambda: by(school, SCHOOLS, this_year & frl, "school, FRL"),
        lambda: by(grade, GRADES, this_year & sped, "grade, SPED"),
        lambda: by(school, SCHOOLS, this_year & ~ell, "school, not ELL"),
        lambda: by(grade, GRADES, last_year & frl, "grade, FRL 2023"),
        lambda: by(two, 2, this_year, "sex"),
        lambda: by(school, SCHOOLS, last_year & ~sped, "school, not SPED 2023"),
        lambda: by(grade, GRADES, this_year & female, "grade, female"),
        lambda: by(school, SCHOOLS, this_year & ~frl, "school, not FRL"),
        lambda: by(grade, GRADES, last_year & ell, "grade, ELL 2023"),
        lambda: by(two, 2, this_year & sped, "sex, SPED"),
        lambda: by(grade, GRADES, this_year & last_year, "grade, stayed"),
        lambda: by(school, SCHOOLS, last_year & ~this_year, "school, left"),
        lambda: by(grade, GRADES, this_year & ~last_year, "grade, new"),
        lambda: by(two, 2, this_year & frl, "sex, FRL"),
        lambda: by(grade, GRADES, everyone, "grade, ever"),
        lambda: by(two, 2, last_year & ell, "sex, ELL 2023"),
        lambda: by(grade, GRADES, this_year & ~sped, "grade, not SPED"),
        lambda: by(two, 2, this_year & ~ell & frl, "sex, FRL not ELL"),
        lambda: by(grade, GRADES, last_year & female, "grade, female 2023"),
        lambda: by(two, 2, last_year, "sex 2023"),
        lambda: by(grade, GRADES, last_year & sped, "grade, SPED 2023"),
        lambda: by(two, 2, this_year & ~frl, "sex, not FRL"),
        lambda: by(grade, GRADES, this_year & frl & ell, "grade, FRL and ELL"),
        lambda: by(two, 2, last_year & sped & frl, "sex, SPED and FRL 2023"),
        # the newest: this year's free-lunch students by school × grade, whose
        # row totals were published before ("school, FRL")
        lambda: cross(school, SCHOOLS, grade, GRADES, this_year & frl, "FRL"),
    ]
    return [spec() for spec in specs]


def atoms_of(cells: list[Mask]) -> tuple[Mask, NDArray[np.int64]]:
    """Group units by which cells they are in: (cells × atoms membership, sizes)."""
    signature = np.packbits(np.column_stack(cells), axis=1)
    _, first, sizes = np.unique(
        signature, axis=0, return_index=True, return_counts=True
    )
    member = np.column_stack(cells)[first].T  # cells × atoms
    keep = member.any(axis=0)  # units in no cell are in no statistic
    return member[:, keep], sizes[keep].astype(np.int64)


def ledger_run(units: int, rng: np.random.Generator) -> dict[str, float]:
    releases = ledger(units, rng)
    cells: list[Mask] = []
    starts: list[int] = []
    for release in releases:
        starts.append(len(cells))
        cells += release.cells
    t0 = time.perf_counter()
    m, counts = atoms_of(cells)
    t_atoms = time.perf_counter() - t0
    n = m.shape[0]
    thresholds = np.full(n, MIN_CELL)
    # The ledger as it stands: the earlier releases, protected together (each
    # release's own lines first, then the LP audit over all of them), so that
    # they are clean against each other before the newest one arrives.
    old = np.zeros(n, dtype=bool)
    old[: starts[-1]] = True
    old_lines = [
        [start + i for i in line]
        for release, start in zip(releases[:-1], starts[:-1], strict=True)
        for line in release.lines
    ]
    used = m[old].any(axis=0)
    t0 = time.perf_counter()
    before = protect(
        m[old][:, used],
        counts[used],
        MIN_CELL,
        new_cells=np.ones(int(old.sum()), dtype=bool),
        prior_published=np.zeros(int(old.sum()), dtype=bool),
        lines=old_lines,
    )
    t_old = time.perf_counter() - t0
    prior_published = np.zeros(n, dtype=bool)
    prior_published[old] = before.published
    new = np.zeros(n, dtype=bool)
    new[starts[-1] :] = True
    lines = [[starts[-1] + i for i in line] for line in releases[-1].lines]
    t0 = time.perf_counter()
    result = protect(
        m,
        counts,
        thresholds,
        new_cells=new,
        prior_published=prior_published,
        lines=lines,
    )
    seconds = time.perf_counter() - t0
    return {
        "releases": len(releases),
        "cells": n,
        "atoms": m.shape[1],
        "small_atoms": int(((counts > 0) & (counts < MIN_CELL)).sum()),
        "prior_suppressed": int((~prior_published & ~new).sum()),
        "prior_refused": before.refused,
        "prior_seconds": t_old,
        "new_cells": int(new.sum()),
        "primary": int(result.primary.sum()),
        "suppressed": int((result.suppressed & new).sum()),
        "refused": result.refused,
        "atoms_seconds": t_atoms,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    table = one_table(rng)
    led = ledger_run(args.units, rng)
    print(
        f"table: 40 schools × 6 grades, {table['cells']} cells with margins, "
        f"{table['small']} small, {table['suppressed']} suppressed"
        f"{' (refused)' if table['refused'] else ''}, {table['seconds']:.2f} s"
    )
    print(
        f"ledger: {led['releases']} releases over {args.units:,} units, "
        f"{led['cells']:,} cells, {led['atoms']:,} atoms ({led['small_atoms']:,} "
        f"small, grouped in {led['atoms_seconds']:.2f} s), "
        f"earlier releases protected together in {led['prior_seconds']:.1f} s "
        f"({led['prior_suppressed']} cells suppressed"
        f"{', refused' if led['prior_refused'] else ''}); newest release "
        f"{led['new_cells']} cells, {led['primary']} small, {led['suppressed']} "
        f"suppressed{' (refused)' if led['refused'] else ''}, {led['seconds']:.2f} s"
    )


if __name__ == "__main__":
    main()
