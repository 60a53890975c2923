"""Benchmark: generate the demo community for 120,000 students x 6 school years.

Prints wall time and peak memory (resident set of this process and its children,
which includes DuckDB's native memory) last. Target on the 2-core, 24 GB machine:
under 2 minutes and under 4 GB.

    .venv/bin/python bench/generate.py [--students N] [--years Y] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from backbone.demo import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=120_000)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="backbone-bench-"))
    started = time.perf_counter()
    summary = generate(out, students=args.students, years=args.years, seed=args.seed)
    elapsed = time.perf_counter() - started
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    if args.out is None:
        shutil.rmtree(out)
    print(f"students              {summary.students:,}")
    print(f"school years          {len(summary.school_years)}")
    print(f"files written         {summary.files} ({summary.bytes / 1e9:.2f} GB)")
    for name, rows in summary.rows.items():
        print(f"rows {name:<17}{rows:>12,}")
    print(f"wall time             {elapsed:.1f} s   (target < 120 s)")
    print(f"peak memory           {peak_kb / 1024**2:.2f} GB (target < 4 GB)")


if __name__ == "__main__":
    main()
