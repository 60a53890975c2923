"""Benchmark: the heavy stages on DuckDB and on Spark ``local[2]``, in the same run.

* Linkage: the partner records of ``bench/linkage.py`` (the demo generator at scale,
  spelled as each partner's system spells them), linked by ``run_linkage`` once on
  DuckDB and once with the model trained and scored on Spark (the linkage input
  through the exchange, the scored pairs back; clustering and person ids in the
  warehouse). Each run is a child process of its own.
* Indicators: the warehouse of ``bench/indicators.py`` (students, schools, one
  school year of daily attendance), its early-warning components computed once on
  DuckDB and once on Spark (the enrollments, attendance and calendar written to the
  exchange as Parquet partitioned by provider and school year, the SQL translated,
  the components back), each in a child process of its own.

Memory is the peak resident size of the child's whole process tree (the JVM
included), sampled every 0.2 s. Prints, last: for each stage and engine, seconds,
peak memory, the Spark/DuckDB ratio, and whether the answers agree (pairwise F1
within 0.001; components equal value for value by checksum).

    .venv/bin/python bench/spark.py [--records 1000000] [--students 1200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def measured(command: list[str]) -> tuple[dict[str, object], float, float]:
    """Run ``command`` (it prints a JSON line last); its figures, wall seconds and
    the peak resident GB of its process tree."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"{command} failed ({child.returncode})")
    return json.loads(out.strip().splitlines()[-1]), seconds, peak / 1e9


def indicators_phase(folder: Path, engine: str) -> None:
    """Time the components of the generated warehouse on ``engine``; print JSON."""
    import duckdb

    from backbone import Warehouse
    from backbone.engines import scratch
    from backbone.engines.offload import EngineChoice, offloaded
    from backbone.measures.definitions import default_definitions
    from backbone.measures.indicator_sql import components_sql
    from backbone.model.schema import DERIVED_FROM

    sys.path.insert(0, str(HERE))
    from indicators import CUTOFF, SCHOOL_YEAR, YEAR_BEGIN  # type: ignore[import-not-found]

    with Warehouse.open(folder) as wh:
        choice = EngineChoice.of(wh.settings, wh.path, engine)
    sql, params = components_sql(
        default_definitions(),
        version=1,
        school_year=SCHOOL_YEAR,
        year_begin=YEAR_BEGIN,
        start_month=7,
        cutoff=CUTOFF,
    )
    # the stage's own way: its inputs in a private database (here attached, read
    # only), the SQL run there or sent with them to Spark
    con = scratch()
    con.execute(f"ATTACH '{folder / 'backbone.duckdb'}' AS w (READ_ONLY)")
    con.execute("USE w")
    started = time.perf_counter()
    # what the stage copies for the job: the facts indicators are derived from
    tables = [f"analytic.{e}" for e in sorted(set(DERIVED_FROM["student_indicator"]))]
    tables.append("ref.calendar_date")
    with offloaded(choice, con, tables) as run:
        result = run.table(sql, params)
    seconds = time.perf_counter() - started
    check = (
        duckdb.connect()
        .from_arrow(result)
        .aggregate(
            "count(*), sum(days_enrolled), sum(days_absent), "
            "sum(hash(provider_partner_id, student_local_id, days_enrolled, days_absent))"
        )
        .fetchall()[0]
    )
    print(json.dumps({"seconds": round(seconds, 1), "check": [str(v) for v in check]}))


def generate_phase(folder: Path, students: int) -> None:
    from backbone import Warehouse
    from backbone.engines import set_option

    sys.path.insert(0, str(HERE))
    from indicators import generate  # type: ignore[import-not-found]

    wh = Warehouse.init(folder)
    set_option(wh._con, "memory_limit", "10GB")
    set_option(wh._con, "preserve_insertion_order", False)
    generate(wh._con, students)
    rows = wh._con.execute("SELECT count(*) FROM analytic.attendance_event").fetchall()
    wh.close()
    print(json.dumps({"attendance_rows": int(rows[0][0])}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--students", type=int, default=1_200_000)
    parser.add_argument("--skip", choices=["linkage", "indicators"], default=None)
    parser.add_argument("--phase", choices=["generate", "indicators"], default=None)
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.phase == "generate":
        generate_phase(args.out, args.students)
        return
    if args.phase == "indicators":
        indicators_phase(args.out, args.engine)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="backbone-bench-spark-") as tmp:
        if args.skip != "linkage":
            records = Path(tmp) / "records"
            records.mkdir()
            linkage = [sys.executable, str(HERE / "linkage.py")]
            subprocess.run(
                [*linkage, "--phase", "simulate", "--out", str(records),
                 "--records", str(args.records)],
                check=True,
            )  # fmt: skip
            linked = {}
            for engine in ("duckdb", "spark"):
                out = Path(tmp) / f"link-{engine}"
                out.mkdir()
                (out / "records.parquet").symlink_to(records / "records.parquet")
                figures, seconds, peak = measured(
                    [*linkage, "--phase", "link", "--out", str(out), "--engine", engine]
                )
                linked[engine] = figures
                print(f"linkage on {engine}: {seconds:.0f} s, {peak:.2f} GB, {figures}",
                      flush=True)  # fmt: skip
                rows.append(("linkage", engine, figures["seconds"], peak, figures))
        if args.skip != "indicators":
            folder = Path(tmp) / "indicators"
            generated, seconds, _ = measured(
                [sys.executable, __file__, "--phase", "generate", "--out", str(folder),
                 "--students", str(args.students)]
            )  # fmt: skip
            print(f"generated {generated} in {seconds:.0f} s", flush=True)
            for engine in ("duckdb", "spark"):
                figures, seconds, peak = measured(
                    [sys.executable, __file__, "--phase", "indicators",
                     "--out", str(folder), "--engine", engine]
                )  # fmt: skip
                print(f"indicators on {engine}: {seconds:.0f} s, {peak:.2f} GB, {figures}",
                      flush=True)  # fmt: skip
                rows.append(("indicators", engine, figures["seconds"], peak, figures))
    print()
    if args.skip != "linkage":
        print(f"linkage, {args.records:,} partner records (requested)")
    if args.skip != "indicators":
        print(f"indicators, {args.students:,} students, {generated['attendance_rows']:,} "
              "attendance rows")  # fmt: skip
    print(f"{'stage':<12}{'engine':<8}{'seconds':>9}{'peak GB':>9}  answer")
    by: dict[tuple[str, str], tuple[float, dict[str, object]]] = {}
    for stage, engine, seconds, peak, figures in rows:
        by[stage, engine] = (float(seconds), figures)  # type: ignore[arg-type]
        answer = (
            f"F1 {figures['f1']}, {figures['persons']:,} persons"
            if stage == "linkage"
            else f"{int(figures['check'][0]):,} component rows"  # type: ignore[index]
        )
        print(f"{stage:<12}{engine:<8}{seconds:>9.1f}{peak:>9.2f}  {answer}")
    for stage in ("linkage", "indicators"):
        if (stage, "spark") in by:
            (d, fd), (s, fs) = by[stage, "duckdb"], by[stage, "spark"]
            same = (
                abs(float(fd["f1"]) - float(fs["f1"])) <= 0.001  # type: ignore[arg-type]
                if stage == "linkage"
                else fd["check"] == fs["check"]
            )
            print(
                f"{stage}: Spark local[2] / DuckDB = {s / d:.1f}x; same answer: {same}"
            )


if __name__ == "__main__":
    main()
