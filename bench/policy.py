"""Benchmark: the cost of governance on the demo community (12,000 students x 6 years).

Builds the demo with `backbone demo run` (or reuses ``--warehouse``), then times, as
the demo's users: the steward's row-level read of every attendance event (the largest
table), a district's pseudonymous read of program rows about its own students, a
release of enrollment counts by school and grade through the gate (cells, atoms, LP
audit), the same release again (audited against the first through the ledger), and a
walk of the whole audit chain. Prints its figures last.

    .venv/bin/python bench/policy.py [--students N] [--warehouse DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(label: str, figures: dict[str, object], work):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = work()
    figures[label] = round(time.perf_counter() - start, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=12_000)
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backbone-bench-policy-") as tmp:
        warehouse = args.warehouse
        if warehouse is None:
            out = Path(tmp) / "demo"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "backbone",
                    "demo",
                    "run",
                    "--out",
                    str(out),
                    "--students",
                    str(args.students),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            warehouse = out / "warehouse"
        from backbone import Warehouse

        figures: dict[str, object] = {}
        with Warehouse.open(warehouse) as wh:
            steward = wh.access(wh.users.get("steward"), "early_warning")
            rows = _timed(
                "steward_reads_attendance_s",
                figures,
                lambda: steward.rows("attendance_event"),
            )
            figures["attendance_rows"] = rows.table.num_rows
            district = wh.access(
                wh.users.get("d01-northfield.analyst"), "early_warning"
            )
            served = _timed(
                "district_reads_program_rows_s",
                figures,
                lambda: district.rows("program_participation"),
            )
            figures["district_program_rows"] = served.table.num_rows
            counts = wh.access(wh.users.get("steward"), "shared_measurement")
            first = _timed(
                "release_school_by_grade_s",
                figures,
                lambda: counts.count(
                    "enrollment",
                    ["school_id", "entry_grade_level"],
                    where={"school_year": [2026]},
                ),
            )
            figures["release_cells"] = first.cells
            figures["release_suppressed"] = first.suppressed
            second = _timed(
                "overlapping_release_s",
                figures,
                lambda: counts.count(
                    "enrollment", ["entry_grade_level"], where={"school_year": [2026]}
                ),
            )
            figures["overlapping_release_suppressed"] = second.suppressed
            check = _timed("audit_verify_s", figures, lambda: wh.audit.verify())
            figures["audit_entries"] = check.entries
            figures["audit_intact"] = check.ok
        print("policy: " + json.dumps(figures))


if __name__ == "__main__":
    main()
