"""Program evaluation: the method against the simulation's planted truth over many
communities, and the statistics engine's speed on a large district.

1. ``SEEDS`` simulated communities of ``STUDENTS`` students: every program's
   difference-in-differences estimate on attendance and marks against the planted
   effect over exactly the participants it counted (coverage of the 95% intervals),
   and how often the programs without effect come out significant.
2. Matching and estimating on 300,000 candidate student-years with 6,000
   participants (the size of a large district's program).

Prints its figures last.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.planted_truth import evaluate_program, person_years

from backbone.measures import evaluation_stats as es

STUDENTS = 8000
SEEDS = range(100, 130)
PROGRAMS = (
    "PRG-MENTOR",
    "PRG-AFTER-E",
    "PRG-TUTOR",
    "PRG-ARTS",
    "PRG-READ",
    "PRG-COLLEGE",
)


def coverage() -> tuple[int, int, int, int, float]:
    inside = total = null_significant = nulls = 0
    start = time.perf_counter()
    for seed in SEEDS:
        years, participation = person_years(STUDENTS, seed)
        for program in PROGRAMS:
            for est, truth in evaluate_program(
                years, participation, program, 5
            ).values():
                assert est.ci_low is not None and est.ci_high is not None
                total += 1
                inside += est.ci_low <= truth <= est.ci_high
                if truth == 0.0:
                    nulls += 1
                    null_significant += not (est.ci_low <= 0.0 <= est.ci_high)
    return inside, total, null_significant, nulls, time.perf_counter() - start


def large_district() -> tuple[float, float, int]:
    rng = np.random.default_rng(7)
    n = 300_000
    u = rng.normal(size=n)
    x = u + rng.normal(scale=0.5, size=n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-4.2 + 0.8 * x)))
    frame = pd.DataFrame(
        {
            "unit": np.arange(n).astype(str),
            "treated": treated,
            "stratum": (rng.integers(0, 400, n)).astype(str),
            "x": x,
            "female": (rng.random(n) < 0.5).astype(float),
            "y_pre": u + rng.normal(size=n),
            "y_post": u + rng.normal(size=n) + 0.3 * treated,
        }
    )
    start = time.perf_counter()
    matched = es.match(frame, ["x", "female", "y_pre"])
    matching = time.perf_counter() - start
    start = time.perf_counter()
    est = es.estimate(matched, "y", ["x", "female"], baseline=True)
    estimating = time.perf_counter() - start
    assert est.effect is not None
    return matching, estimating, int(treated.sum())


def main() -> None:
    inside, total, null_sig, nulls, seconds = coverage()
    matching, estimating, n_treated = large_district()
    print(
        f"planted truth: {inside}/{total} 95% intervals held it "
        f"({100 * inside / total:.1f}%) over {len(SEEDS)} communities of "
        f"{STUDENTS:,} students in {seconds:.0f} s; programs without effect "
        f"significant in {null_sig}/{nulls} ({100 * null_sig / nulls:.1f}%, "
        "nominal 5%)"
    )
    print(
        f"large district: matched {n_treated:,} participants among 300,000 "
        f"student-years in {matching:.1f} s; one difference-in-differences "
        f"estimate in {estimating:.2f} s"
    )


if __name__ == "__main__":
    main()
