"""Benchmark: what it costs to start the command (issue 15: under 0.5 s of CPU each).

Runs ``backbone --help``, ``backbone info`` and one listing of each stage on a
fresh warehouse (where the listing has nothing to do: what is left is start-up) as
separate processes and takes each one's CPU time (user + system), the best of ``--runs``;
beside them the same for a bare ``python -c "import duckdb"`` (the least a command
that opens a warehouse can cost) and an empty ``python -c pass``. The children keep
their bytecode in a temporary cache (as an installed package does) and one warm-up
run fills it. Prints its figures last.

    .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGET_CPU_S = 0.5
# a listing from each stage the steward opens most
_LISTINGS = (
    ("partner", "list"),
    ("agreement", "list"),
    ("feed", "list"),
    ("submissions", "list"),
    ("user", "list"),
    ("audit", "verify"),
    ("retention", "due"),
    ("status",),
)


def _cpu_seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    """The least CPU time (user + system) of ``runs`` runs, after one warm-up run."""
    best = float("inf")
    for attempt in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if attempt:  # the first run only fills the bytecode cache
            best = min(best, used)
    return round(best, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backbone-bench-startup-") as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        warehouse = Path(tmp) / "warehouse"
        backbone = [sys.executable, "-m", "backbone"]
        subprocess.run(
            [*backbone, "init", str(warehouse)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        figures: dict[str, Any] = {
            "python_cpu_s": _cpu_seconds(
                [sys.executable, "-c", "pass"], env, args.runs
            ),
            "import_duckdb_cpu_s": _cpu_seconds(
                [sys.executable, "-c", "import duckdb"], env, args.runs
            ),
            "help_cpu_s": _cpu_seconds([*backbone, "--help"], env, args.runs),
            "info_cpu_s": _cpu_seconds(
                [*backbone, "info", "--warehouse", str(warehouse)], env, args.runs
            ),
        }
        listings = {
            " ".join(command): _cpu_seconds(
                [*backbone, *command, "--warehouse", str(warehouse)], env, args.runs
            )
            for command in _LISTINGS
        }
        figures["listings_cpu_s"] = listings
        figures["slowest_start_cpu_s"] = max(
            figures["info_cpu_s"], figures["help_cpu_s"], *listings.values()
        )
        figures["target_cpu_s"] = TARGET_CPU_S
    print("startup: " + json.dumps(figures))


if __name__ == "__main__":
    main()
