"""Benchmark: validate and load 10 million attendance rows from one CSV.

Builds a one-district warehouse (agreement, feed, mapping, 50,000 enrollments), writes
a 10M-row attendance CSV with unique natural keys and a sprinkling of bad rows, then
times ``wh.ingest.submit``. Prints, last: rows/s, peak resident memory, the time
DuckDB's bare ``read_csv`` takes on the same file (the ratio to beat), and how long
the warehouse file was held: while the file is read and checked it is handed back,
and another process (started then) reads the warehouse.
Target on the 2-core machine: >= 500,000 rows/s, peak < 2 GB.

    .venv/bin/python bench/ingest.py [--rows N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ingest_fixtures import make_warehouse

from backbone.engines import literal, set_option

STUDENTS = 50_000
READER = """
import time
started = time.perf_counter()
from backbone import Warehouse
with Warehouse.open({path!r}, read_only=True) as wh:
    wh.ingest.list()
print(time.perf_counter() - started)
"""
DAYS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="override engine.memory_limit (default: the setting's default)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="backbone-bench-ingest-"))
    try:
        run(tmp, args.rows, args.memory_limit)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, rows: int, memory_limit: str | None) -> None:
    on = date(2026, 1, 20)
    wh = make_warehouse(tmp)
    if memory_limit:
        set_option(wh._con, "memory_limit", memory_limit)
    con = duckdb.connect()
    enroll = tmp / "enroll.csv"
    con.execute(
        f"""COPY (SELECT 'S' || lpad(i::VARCHAR, 6, '0') AS id, 'HS01' AS school, '2025-08-25' AS entry,
                   '9' AS grade, '' AS exit, '' AS why FROM range({STUDENTS}) t(i)) TO {literal(str(enroll))} (HEADER)"""
    )
    with wh.session() as s:  # a new warehouse, no user yet: whoever set it up
        wh.ingest.submit(s, "d1", "records", [enroll], on=on)
    attendance = tmp / "attendance.csv"
    per_student = max(1, rows // STUDENTS)
    con.execute(
        f"""COPY (SELECT 'S' || lpad((i // {per_student} % {STUDENTS})::VARCHAR, 6, '0') AS id,
                   'HS01' AS school,
                   strftime(DATE '2025-08-25' + (i % {per_student} + (i // ({per_student} * {STUDENTS})) * {per_student})::INT, '%Y-%m-%d') AS date,
                   CASE WHEN i % 100003 = 7 THEN 'Z' WHEN i % 3 = 0 THEN 'U' WHEN i % 3 = 1 THEN 'E' ELSE 'T' END AS code,
                   '' AS note
            FROM range({rows}) t(i)) TO {literal(str(attendance))} (HEADER)"""
    )
    size_mb = attendance.stat().st_size / 1e6
    started = time.perf_counter()
    con.execute(
        "CREATE TABLE bare AS SELECT * FROM read_csv(?, header = true, "
        "all_varchar = true)",
        [str(attendance)],
    )
    bare = con.execute("SELECT count(*) FROM bare").fetchall()[0][0]
    bare_s = time.perf_counter() - started
    con.execute("DROP TABLE bare")
    con.close()
    marks: dict[str, float] = {}
    reader: list[subprocess.Popen[str]] = []

    def told(message: str) -> None:
        marks[message.split()[0]] = time.perf_counter()
        if message.startswith("reading"):  # another process reads meanwhile
            reader.append(
                subprocess.Popen(
                    [sys.executable, "-c", READER.format(path=str(wh.path))],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )

    started = time.perf_counter()
    with wh.session() as s:
        [result] = wh.ingest.submit(
            s, "d1", "attendance", [attendance], on=on, progress=told
        )
    load_s = time.perf_counter() - started
    out, err = reader[0].communicate(timeout=600)
    assert reader[0].returncode == 0, err
    reader_s = float(out.split()[-1])
    away_s = marks["loading"] - marks["reading"]
    wh.close()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    assert bare == result.rows_read == result.rows_loaded + result.rows_quarantined
    print(f"file                  {size_mb:,.0f} MB, {result.rows_read:,} rows")
    print(f"loaded / quarantined  {result.rows_loaded:,} / {result.rows_quarantined:,}")
    print(f"bare read_csv         {bare_s:.1f} s (every column read into a table)")
    print(
        f"submit (validate+load) {load_s:.1f} s = {load_s / bare_s:.1f}x bare read_csv"
    )
    print(
        f"throughput            {result.rows_read / load_s:,.0f} rows/s (target >= 500,000)"
    )
    print(f"peak memory           {peak_gb:.2f} GB (target < 2 GB)")
    print(
        f"warehouse held        {load_s - away_s:.1f} s of {load_s:.1f} s (handed back "
        f"{away_s:.1f} s while read and checked); a reader meanwhile got in "
        f"after {reader_s:.2f} s"
    )


if __name__ == "__main__":
    main()
