"""Benchmark: the release gate's cost as its ledger grows, the old gate beside the new.

A one-district warehouse (tests/policy_fixtures' partners and d1 agreement, its
population widened to six school years) enrols ``--persons`` persons, one
enrollment row each with a random school (26, three of them tiny), school year
(2021-2026) and entry grade (9-12). Then a ledger of overlapping releases goes
through the real gate, ``wh.access(steward, "shared_measurement").count(
"enrollment", by, where=...)``, ``by`` among [], [school_id], [entry_grade_level],
[school_year] and random filters on the three fields; every release's wall and
CPU time (of this process, HiGHS's threads included) is recorded, and so is a
refusal. At R = 30, 300 and 1,000 releases one new 189-cell rate table in the
scorecard's shape (ninth graders among 8 schools' students by year and school:
63 labels x persons, matching, the rest) is protected on a copy of the warehouse,
so the ledger itself goes on unchanged.

Each configuration (persons x gate) runs in its own process, one after another,
with the same seed, hence the same population and the same requests. The new gate
is this working tree's ``src``; the old one is ``--old-commit`` checked out in a
temporary git worktree (removed afterwards). A configuration starts no new release
or rate table past ``--budget`` seconds, and is stopped at ``--budget`` plus
``--grace`` when one release is still running; the tables say where each stopped.
Prints, last: time per release as the ledger grows, then per persons and R the
median and last CPU seconds per release, the rate table's CPU seconds and the
releases refused, new gate beside old.

    .venv/bin/python bench/release.py [--persons 20000 200000] [--releases 1000]
        [--budget 600] [--grace 300] [--old-commit 84ab762] [--seed 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 9, 0)
SCHOOLS = tuple(f"S{i:02d}" for i in range(1, 27))
TINY_SCHOOLS = 3
YEARS = tuple(range(2021, 2027))
GRADES = ("Ninth grade", "Tenth grade", "Eleventh grade", "Twelfth grade")
FILTERS: dict[str, tuple[object, ...]] = {
    "school_id": SCHOOLS,
    "entry_grade_level": GRADES,
    "school_year": YEARS,
}
BYS: tuple[list[str], ...] = ([], ["school_id"], ["entry_grade_level"], ["school_year"])
RATE_SCHOOLS = list(SCHOOLS[:8])  # (6 years + all) x (8 schools + all) = 63 labels
SHOWN_AT = (1, 10, 30, 100, 300, 1000)
RATE_AT = (30, 300, 1000)


# --- one configuration, in its own process ----------------------------------------


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def build(path: Path, persons: int, seed: int) -> None:
    """The district's warehouse at ``path`` (closed afterwards)."""
    import numpy as np
    import pyarrow as pa
    from tests.policy_fixtures import PARTNERS, district_agreement

    from backbone import Warehouse
    from backbone.governance import Role
    from backbone.partners.agreements.document import parse_document

    rng = np.random.default_rng(seed)
    size = rng.uniform(0.5, 1.5, len(SCHOOLS))
    size[-TINY_SCHOOLS:] = rng.uniform(0.005, 0.02, TINY_SCHOOLS)
    school = rng.choice(len(SCHOOLS), persons, p=size / size.sum())
    year = rng.integers(0, len(YEARS), persons)
    grade = rng.choice(len(GRADES), persons, p=[0.3, 0.26, 0.23, 0.21])
    ids = np.arange(1, persons + 1)
    local = [f"d1-{i:07d}" for i in ids]
    agreement = copy.deepcopy(district_agreement("d1", 10))
    agreement["population"] = {"school_years": list(YEARS)}
    tables = {
        "identity.partner_record": pa.table(
            {
                "partner_id": ["d1"] * persons,
                "local_id": local,
                "first_name": [f"First{i}" for i in ids],
                "last_surname": [f"Last{i}" for i in ids],
                "birth_date": [date(2008 + i % 6, 1 + i % 12, 1 + i % 28) for i in ids],
                "address": [f"{i} Main St" for i in ids],
                "submission_id": [1] * persons,
            }
        ),
        "identity.person": pa.table({"person_id": ids, "created_at": [NOW] * persons}),
        "identity.record_person": pa.table(
            {
                "partner_id": ["d1"] * persons,
                "local_id": local,
                "person_id": ids,
                "method": ["deterministic"] * persons,
                "linked_at": [NOW] * persons,
            }
        ),
        "analytic.enrollment": pa.table(
            {
                "provider_partner_id": ["d1"] * persons,
                "student_local_id": local,
                "school_id": [SCHOOLS[s] for s in school],
                "entry_date": [date(YEARS[y] - 1, 8, 20) for y in year],
                "entry_grade_level": [GRADES[g] for g in grade],
                "school_year": [YEARS[y] for y in year],
                "submission_id": [1] * persons,
            }
        ),
    }
    with Warehouse.init(path, clock=lambda: NOW) as wh:
        with wh.session() as s:
            for partner in PARTNERS:
                wh.partners.add(s, partner)
            wh.agreements.add_document(s, parse_document(agreement, source="bench"))
        for name, rows in tables.items():
            wh._con.register("bench_rows", rows)
            wh._con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM bench_rows")
            wh._con.unregister("bench_rows")
        with wh.session() as setup:
            wh.users.add(setup, "steward", partner="b0", role=Role.steward_admin)


def random_request(rng: Any) -> tuple[list[str], dict[str, list[object]] | None]:
    by = rng.choice(BYS)
    if rng.random() < 0.25:
        return by, None
    keys = rng.sample(sorted(FILTERS), rng.randint(1, 2))
    return by, {
        k: sorted(rng.sample(list(FILTERS[k]), rng.randint(1, len(FILTERS[k]) - 1)))
        for k in keys
    }


def _timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s, the release or None when the gate refused it)"""
    from backbone.errors import PolicyDenied

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = run()
    except PolicyDenied:
        result = None
    return time.perf_counter() - wall, time.process_time() - cpu, result


def configuration(persons: int, releases: int, budget: float, seed: int) -> None:
    """Build, then grow the ledger; one JSON line per event on stdout."""
    import random

    import backbone
    from backbone import Warehouse

    _emit({"event": "code", "path": str(Path(backbone.__file__).parents[1])})
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="backbone-bench-release-") as tmp:
        path = Path(tmp) / "wh"
        started = time.perf_counter()
        build(path, persons, seed)
        _emit({"event": "built", "seconds": time.perf_counter() - started})
        started = time.perf_counter()  # the budget counts the gate only
        wh = Warehouse.open(path, clock=lambda: NOW)
        try:
            for r in range(1, releases + 1):
                if time.perf_counter() - started > budget:
                    _emit({"event": "stopped", "after": r - 1, "why": "budget"})
                    return
                by, where = random_request(rng)
                access = wh.access(wh.users.get("steward"), "shared_measurement")
                wall, cpu, release = _timed(
                    lambda access=access, by=by, where=where: access.count(
                        "enrollment", by, where=where
                    )
                )
                _emit(
                    {
                        "event": "release",
                        "r": r,
                        "wall": wall,
                        "cpu": cpu,
                        "refused": release is None,
                    }
                )
                if r in RATE_AT:
                    if time.perf_counter() - started > budget:
                        _emit({"event": "stopped", "after": r, "why": "budget"})
                        return
                    wh.close()
                    _emit({"event": "rate", "r": r, **_rate_table(path, Path(tmp))})
                    wh = Warehouse.open(path, clock=lambda: NOW)
        finally:
            wh.close()


def _rate_table(path: Path, tmp: Path) -> dict[str, Any]:
    """The scorecard-shaped rate table, protected on a copy of the warehouse."""
    from backbone import Warehouse

    copied = tmp / "copy"
    shutil.copytree(path, copied)
    try:
        with Warehouse.open(copied, clock=lambda: NOW) as wh:
            steward = wh.users.get("steward")
            wall, cpu, release = _timed(
                lambda: wh.access(steward, "shared_measurement").rate(
                    "enrollment",
                    ["school_year", "school_id"],
                    {"entry_grade_level": ["Ninth grade"]},
                    where={"school_id": RATE_SCHOOLS},
                )
            )
    finally:
        shutil.rmtree(copied)
    return {
        "wall": wall,
        "cpu": cpu,
        "cells": None if release is None else release.cells,
        "suppressed": None if release is None else release.suppressed,
    }


# --- the driver: every configuration, then the tables -----------------------------


@dataclass
class Run:
    persons: int
    gate: str
    build_s: float = 0.0
    releases: list[dict[str, Any]] = field(default_factory=list)
    rates: dict[int, dict[str, Any]] = field(default_factory=dict)
    stopped: str = ""


def run_configuration(
    src: Path, gate: str, persons: int, args: argparse.Namespace
) -> Run:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{REPO}"}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--configuration",
        "--persons",
        str(persons),
        "--releases",
        str(args.releases),
        "--budget",
        str(args.budget),
        "--seed",
        str(args.seed),
    ]
    run = Run(persons, gate)
    print(f"-- {gate} gate, {persons:,} persons ({src})", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, env=env, stdout=out, cwd=REPO)
        try:
            child.wait(timeout=args.budget + args.grace + 600)  # 600: the build
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            run.stopped = "killed: one release ran past the budget"
        out.seek(0)
        for line in out:
            record = json.loads(line)
            if record["event"] == "code" and Path(record["path"]) != src:
                raise SystemExit(f"{gate} gate ran {record['path']}, not {src}")
            if record["event"] == "built":
                run.build_s = record["seconds"]
            elif record["event"] == "release":
                run.releases.append(record)
            elif record["event"] == "rate":
                run.rates[record["r"]] = record
            elif record["event"] == "stopped":
                run.stopped = f"budget spent after {record['after']} releases"
    if child.returncode not in (0, -9) and not run.stopped:
        run.stopped = f"failed (exit {child.returncode})"
    done = len(run.releases)
    print(
        f"   built in {run.build_s:.0f} s; {done} releases"
        f"{'; ' + run.stopped if run.stopped else ''}",
        file=sys.stderr,
        flush=True,
    )
    return run


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary(runs: dict[tuple[int, str], Run], persons: list[int]) -> list[str]:
    gates = ("new", "old")
    lines = [
        "time per release as the ledger grows (CPU s / wall s of release R)",
        f"{'persons':>8} {'R':>5} " + " ".join(f"{g + ' cpu/wall':>16}" for g in gates),
    ]
    for p in persons:
        for r in SHOWN_AT:
            cols = []
            for g in gates:
                run = runs.get((p, g))
                if run is None or len(run.releases) < r:
                    cols.append(f"{'-':>16}")
                else:
                    rec = run.releases[r - 1]
                    cols.append(f"{_s(rec['cpu']) + ' / ' + _s(rec['wall']):>16}")
            lines.append(f"{p:>8,} {r:>5} " + " ".join(cols))
    lines += [
        "",
        "per release over the first R (CPU s): median, last; 189-cell rate table "
        "at R (CPU s, suppressed); releases refused",
        f"{'persons':>8} {'R':>5} | {'new med':>7} {'last':>6} {'rate':>7} "
        f"{'supp':>4} {'ref':>4} | {'old med':>7} {'last':>6} {'rate':>7} "
        f"{'supp':>4} {'ref':>4}",
    ]
    for p in persons:
        for r in RATE_AT:
            cols = []
            for g in gates:
                run = runs.get((p, g))
                if run is None or len(run.releases) < r:
                    cols.append(f"{'-':>7} {'-':>6} {'-':>7} {'-':>4} {'-':>4}")
                    continue
                cpu = [rec["cpu"] for rec in run.releases[:r]]
                refused = sum(rec["refused"] for rec in run.releases[:r])
                rate = run.rates.get(r)
                cols.append(
                    f"{_s(statistics.median(cpu)):>7} {_s(cpu[-1]):>6} "
                    f"{_s(rate['cpu'] if rate else None):>7} "
                    f"{rate['suppressed'] if rate else '-'!s:>4} {refused:>4}"
                )
            lines.append(f"{p:>8,} {r:>5} | " + " | ".join(cols))
    lines.append("")
    for (p, g), run in sorted(runs.items()):
        rates = {r: rec["cells"] for r, rec in run.rates.items()}
        lines.append(
            f"{g} gate, {p:,} persons: built in {run.build_s:.0f} s, "
            f"{len(run.releases)} releases ({run.stopped or 'all done'}); "
            f"rate table cells {rates or '-'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=600.0, help="s per config")
    parser.add_argument("--grace", type=float, default=300.0)
    parser.add_argument("--old-commit", default="84ab762", help="'' for none")
    parser.add_argument("--old-max-persons", type=int, default=None,
                        help="run the old gate only for persons <= this")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--configuration", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.configuration:
        configuration(args.persons[0], args.releases, args.budget, args.seed)
        return
    runs: dict[tuple[int, str], Run] = {}
    old_tree = Path(tempfile.mkdtemp(prefix="backbone-bench-old-")) / "tree"
    if args.old_commit:
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old_tree), args.old_commit],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    try:
        for persons in args.persons:
            runs[persons, "new"] = run_configuration(REPO / "src", "new", persons, args)
            if args.old_commit and (
                args.old_max_persons is None or persons <= args.old_max_persons
            ):
                runs[persons, "old"] = run_configuration(
                    old_tree / "src", "old", persons, args
                )
    finally:
        if args.old_commit:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_tree)],
                cwd=REPO,
                check=False,
            )
            shutil.rmtree(old_tree.parent, ignore_errors=True)
    print("\n".join(summary(runs, args.persons)))


if __name__ == "__main__":
    main()
